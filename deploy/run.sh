#!/usr/bin/env bash
# deploy/run.sh [stop] — what `make run` and `make stop` do.
#
# Starts a throwaway PostgreSQL under ./var (or $CIVIBUS_VAR), the hub with
# deploy/civibus.yaml, and the replay adapter on the sample data; writes var/run.env;
# then waits: Ctrl-C (or `make stop` from another terminal) stops everything.
# DETACH=1 leaves everything running and returns.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VAR=${CIVIBUS_VAR:-$ROOT/var}
mkdir -p "$VAR/log" "$VAR/keys" "$VAR/pg"

stop_all() {
    if [ -f "$VAR/hub.pid" ]; then
        kill -TERM "$(cat "$VAR/hub.pid")" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$(cat "$VAR/hub.pid")" 2>/dev/null || break; sleep 0.1; done
        rm -f "$VAR/hub.pid"
    fi
    bash deploy/pgctl.sh stop "$VAR/pg" >/dev/null 2>&1
    echo "civibus stopped"
}

if [ "${1:-}" = stop ]; then
    [ -f "$VAR/run.pid" ] && kill -TERM "$(cat "$VAR/run.pid")" 2>/dev/null
    stop_all
    exit 0
fi

bash deploy/pgctl.sh start "$VAR/pg" >"$VAR/log/pg-start.log" 2>&1 || { cat "$VAR/log/pg-start.log"; exit 1; }
eval "$(bash deploy/pgctl.sh env "$VAR/pg")"
cat >"$VAR/run.env" <<ENV
export PGHOST=$PGHOST
export PGPORT=$PGPORT
export PGUSER=$PGUSER
export PGDATABASE=$PGDATABASE
export CIVIBUS_ADAPTERS_ENDPOINT=tcp://127.0.0.1:5560
export CIVIBUS_PUBLISH_ENDPOINT=tcp://127.0.0.1:5561
ENV

for k in hub demo; do
    [ -f "$VAR/keys/${k}_secret" ] || bin/civibus-adapter keygen --out "$VAR/keys/$k" >/dev/null
done
CONFIG=deploy/civibus.yaml
if [ "$VAR" != "$ROOT/var" ]; then
    # a var folder elsewhere (tests): same config, paths rewritten
    sed "s|\.\./var/|$VAR/|g; s|\.\./schemas|$ROOT/schemas|; s|mappings/demo.yaml|$ROOT/deploy/mappings/demo.yaml|" \
        deploy/civibus.yaml >"$VAR/civibus.yaml"
    CONFIG=$VAR/civibus.yaml
fi
sed "s|\.\./\.\./var/|$VAR/|g" deploy/adapters/demo.yaml >"$VAR/adapter-demo.yaml"

trap 'stop_all; exit 0' INT TERM
bin/civibus-hub --config "$CONFIG" >>"$VAR/log/hub.log" 2>&1 &
echo $! >"$VAR/hub.pid"
for _ in $(seq 1 100); do grep -q "listening for adapters" "$VAR/log/hub.log" 2>/dev/null && break; sleep 0.1; done
grep -q "listening for adapters" "$VAR/log/hub.log" || { tail -n 20 "$VAR/log/hub.log"; stop_all; exit 1; }

echo "replaying the sample data (deploy/sample/demo.jsonl) through the demo adapter..."
bin/civibus-adapter replay --config "$VAR/adapter-demo.yaml" --source demo \
    --file deploy/sample/demo.jsonl --timeout 60 2>>"$VAR/log/adapter-demo.log"

cat <<MSG

civibus is running.
  hub log:        $VAR/log/hub.log
  adapter log:    $VAR/log/adapter-demo.log
  database:       . $VAR/run.env && psql -c 'select source, status, occurred_at from events order by id limit 10'
  dead letters:   . $VAR/run.env && psql -c 'select source, reason, detail from dead_letters'
  send more:      bin/civibus-adapter replay --config $VAR/adapter-demo.yaml --source demo --file FILE.jsonl
Stop with Ctrl-C, or 'make stop' from another terminal.
MSG
if [ "${DETACH:-0}" = 1 ]; then
    trap - INT TERM
    exit 0
fi
echo $$ >"$VAR/run.pid"
wait "$(cat "$VAR/hub.pid")"
stop_all
