#!/usr/bin/env bash
# deploy/run.sh [stop] — what `make run` and `make stop` do.
#
# Starts, all on this machine: a throwaway PostgreSQL under ./var (or $CIVIBUS_VAR), the
# hub (deploy/civibus.yaml), the agents' API (deploy/api.yaml, on 127.0.0.1:8480, with a
# supervisor token for the demo in var/api-token), the replay adapter on the sample data,
# and three simulated back-office softwares with their adapters — état civil (REST API),
# urbanisme (CSV/XML exports), déchets (webhooks) — so one timeline fills from three
# silos. As root, also the mail flow (docs/intake.md, docs/notifications.md): throwaway
# Postfix + Dovecot on loopback ports (tests/mail/mailctl.sh, under var/mail), the city's
# mailbox read by the imap adapter (source courriel), routing to the services
# (deploy/routing.yaml; the waste software creates what is routed to it) and civibus-notify
# telling the citizens by mail. Each program connects to PostgreSQL as its own role
# (deploy/pgctl.sh creates them; the migrations run first, as civibus_owner).
# Writes var/run.env; then waits: Ctrl-C (or `make stop`
# from another terminal) stops everything.
# DETACH=1 leaves everything running and returns.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VAR=${CIVIBUS_VAR:-$ROOT/var}
SOFTWARES="etat-civil urbanisme dechets"
mkdir -p "$VAR/log" "$VAR/keys" "$VAR/pg" "$VAR/pids" "$VAR/exports/urbanisme"

stop_pid() {  # pid file
    local pid; pid=$(cat "$1" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    rm -f "$1"
}

stop_all() {
    for f in "$VAR"/pids/sim-*.pid "$VAR"/pids/adapter-*.pid "$VAR"/pids/notify.pid "$VAR"/pids/api.pid; do
        [ -f "$f" ] && stop_pid "$f"
    done
    [ -f "$VAR/pids/hub.pid" ] && stop_pid "$VAR/pids/hub.pid"
    [ -d "$VAR/mail" ] && bash tests/mail/mailctl.sh stop "$VAR" >/dev/null 2>&1
    bash deploy/pgctl.sh stop "$VAR/pg" >/dev/null 2>&1
    echo "civibus stopped"
}

if [ "${1:-}" = stop ]; then
    [ -f "$VAR/pids/run.pid" ] && kill -TERM "$(cat "$VAR/pids/run.pid")" 2>/dev/null && rm -f "$VAR/pids/run.pid"
    stop_all
    exit 0
fi

start() {  # name, command...: runs in the background, logs to var/log/NAME.log
    local name=$1; shift
    "$@" >>"$VAR/log/$name.log" 2>&1 &
    echo $! >"$VAR/pids/$name.pid"
}

bash deploy/pgctl.sh start "$VAR/pg" >"$VAR/log/pg-start.log" 2>&1 || { cat "$VAR/log/pg-start.log"; exit 1; }
eval "$(bash deploy/pgctl.sh env "$VAR/pg")"
cat >"$VAR/run.env" <<ENV
export PGHOST=$PGHOST
export PGPORT=$PGPORT
export PGUSER=$PGUSER
export PGDATABASE=$PGDATABASE
export CIVIBUS_ADAPTERS_ENDPOINT=tcp://127.0.0.1:5560
export CIVIBUS_PUBLISH_ENDPOINT=tcp://127.0.0.1:5561
export CIVIBUS_API_URL=http://127.0.0.1:8480
# PGUSER above is the cluster's superuser (for you and the tests). The programs connect
# each as its own role (deploy/sql/roles.sql, docs/operations.md "Database roles"):
# migrations civibus_owner, hub civibus_hub, API civibus_api, civibusctl civibus_admin,
# notifier civibus_notify. See what the API may do: psql -U civibus_api
ENV

# the mail servers (root only: Postfix's master runs as root); their ports go to run.env
MAIL=0
if [ "$(id -u)" -eq 0 ] && command -v postfix >/dev/null 2>&1 && command -v dovecot >/dev/null 2>&1; then
    if bash tests/mail/mailctl.sh start "$VAR" >"$VAR/mail.env" 2>"$VAR/log/mail-start.log"; then
        MAIL=1
        . "$VAR/mail.env"
        grep -E 'CIVIBUS_(SMTP_URL|IMAP_URL|CITY_MAIL|CITIZEN_MAIL|CITIZEN_IMAP_USER|CITIZEN_IMAP_PASSWORD)=' \
            "$VAR/mail.env" >>"$VAR/run.env"
        echo "export CIVIBUS_CITIZEN_IMAP_URL=$CIVIBUS_IMAP_URL/INBOX" >>"$VAR/run.env"
    else
        echo "the mail servers did not start (see $VAR/log/mail-start.log): no mail flow in this run"
    fi
else
    echo "not root, or Postfix/Dovecot missing: no mail flow in this run (make run as root installs them)"
fi

# keys and the simulated softwares' secrets, made once per var folder
for k in hub demo courriel $SOFTWARES; do
    [ -f "$VAR/keys/${k}_secret" ] || bin/civibus-adapter keygen --out "$VAR/keys/$k" >/dev/null
done
# the key of the signed reply addresses, shared by civibus-notify and the imap adapter
[ -s "$VAR/keys/reply_secret" ] || (umask 077; head -c 48 /dev/urandom | base64 >"$VAR/keys/reply_secret")
if [ ! -f "$VAR/secrets.env" ]; then
    umask 077
    printf 'export ETAT_CIVIL_API_TOKEN=%s\nexport CIVIBUS_DECHETS_WEBHOOK_SECRET=%s\n' \
        "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$VAR/secrets.env"
    umask 022
fi
. "$VAR/secrets.env"

# configs: used in place for ./var; copied with rewritten paths for another var folder
CONFIG=deploy/civibus.yaml
if [ "$VAR" != "$ROOT/var" ]; then
    sed "s|\.\./var/|$VAR/|g; s|\.\./schemas|$ROOT/schemas|; s|\.\./adapters/|$ROOT/adapters/|; s|mappings/demo.yaml|$ROOT/deploy/mappings/demo.yaml|; s|^deadlines: deadlines.yaml|deadlines: $ROOT/deploy/deadlines.yaml|; s|^routing: routing.yaml|routing: $ROOT/deploy/routing.yaml|" \
        deploy/civibus.yaml >"$VAR/civibus.yaml"
    CONFIG=$VAR/civibus.yaml
fi
sed "s|\.\./\.\./var/|$VAR/|g" deploy/adapters/demo.yaml >"$VAR/adapter-demo.yaml"
for s in $SOFTWARES; do
    sed "s|\.\./\.\./var/|$VAR/|g" "adapters/$s/adapter.yaml" >"$VAR/adapter-$s.yaml"
done
if [ "$MAIL" = 1 ]; then
    mkdir -p "$VAR/secrets"
    (umask 077; printf '%s\n' "$CIVIBUS_CITY_IMAP_PASSWORD" >"$VAR/secrets/courriel.password")
    sed "s|\.\./\.\./var/|$VAR/|g; s|^\(  url:\).*|\1 $CIVIBUS_IMAP_URL|; s|^\(  user:\).*|\1 $CIVIBUS_CITY_IMAP_USER|;
         s|^\(  poll_ms:\).*|\1 1000|" adapters/courriel/adapter.yaml >"$VAR/adapter-courriel.yaml"
    printf '  reply_secret_file: %s\n' "$VAR/keys/reply_secret" >>"$VAR/adapter-courriel.yaml"
    sed "s|^\(  conninfo:\).*|\1 \"\"|; s|^public_url:.*|public_url: http://127.0.0.1:8480|;
         s|^city:.*|city: \"Mairie de Civibus (démonstration)\"|;
         s|^\(  smtp_url:\).*|\1 $CIVIBUS_SMTP_URL|; s|^\(  tls:\).*|\1 none|;
         s|^\(  from:\).*|\1 ne-pas-repondre@$CIVIBUS_MAIL_DOMAIN|; s|^\(  intake:\).*|\1 $CIVIBUS_CITY_MAIL|;
         s|^\(  reply_secret_file:\).*|\1 $VAR/keys/reply_secret|; s|^\(  templates:\).*|\1 $ROOT/deploy/notify/templates|;
         s|^coalesce_s:.*|coalesce_s: 5|; /^quiet_hours:/d" \
        deploy/notify.yaml >"$VAR/notify.yaml"      # a demo: no quiet hours, short coalescing
fi

trap 'stop_all; exit 0' INT TERM
# the migrations, as the schema's owner; a var/pg made before the roles existed has its
# schema owned by the superuser: migrated as it (rm -rf var/pg once to get the roles' layout)
MIGRATOR=civibus_owner
owner=$(psql -X -A -t -c "SELECT coalesce((SELECT pg_get_userbyid(relowner) FROM pg_class
        WHERE oid = to_regclass('public.schema_migrations')), pg_get_userbyid(datdba))
        FROM pg_database WHERE datname = current_database()" 2>>"$VAR/log/hub.log")
if [ "$owner" != civibus_owner ]; then
    MIGRATOR=$PGUSER
    echo "note: the database in $VAR/pg predates the roles (its schema belongs to $owner): migrated as $PGUSER"
fi
PGUSER=$MIGRATOR bin/civibus-hub --config "$CONFIG" --migrate >>"$VAR/log/hub.log" 2>&1 \
    || { tail -n 20 "$VAR/log/hub.log"; stop_all; exit 1; }
start hub env PGUSER=civibus_hub bin/civibus-hub --config "$CONFIG"
for _ in $(seq 1 100); do grep -q "listening for adapters" "$VAR/log/hub.log" 2>/dev/null && break; sleep 0.1; done
grep -q "listening for adapters" "$VAR/log/hub.log" || { tail -n 20 "$VAR/log/hub.log"; stop_all; exit 1; }

# the agents' API on the same database (the hub has applied the migrations), and once per
# var folder a supervisor token for trying it (kept in var/api-token, never printed)
sed 's|^\(  conninfo:\).*|\1 ""|; s|^\(  dir:\) \.\./web$|\1 '"$ROOT"'/web|; s|^\(  dir:\) \.\./var/attachments$|\1 '"$VAR"'/attachments|; s|^\(  costs_file:\) costs.yaml$|\1 '"$ROOT"'/deploy/costs.yaml|' deploy/api.yaml >"$VAR/api.yaml"
start api env PGUSER=civibus_api bin/civibus-api --config "$VAR/api.yaml"
if [ ! -s "$VAR/api-token" ]; then
    (umask 077; PGUSER=civibus_admin bin/civibusctl token create --role supervisor --label "make run" >"$VAR/api-token" \
        2>>"$VAR/log/api.log") || { echo "could not create the demo API token (see $VAR/log/api.log)"; stop_all; exit 1; }
fi
for _ in $(seq 1 50); do (echo >/dev/tcp/127.0.0.1/8480) 2>/dev/null && break; sleep 0.1; done
(echo >/dev/tcp/127.0.0.1/8480) 2>/dev/null || { tail -n 20 "$VAR/log/api.log"; stop_all; exit 1; }

echo "replaying the sample data (deploy/sample/demo.jsonl) through the demo adapter..."
bin/civibus-adapter replay --config "$VAR/adapter-demo.yaml" --source demo \
    --file deploy/sample/demo.jsonl --timeout 60 2>>"$VAR/log/adapter-demo.log"

echo "starting the simulated softwares and their adapters: $SOFTWARES"
start sim-etat-civil python3 tests/sim/etat_civil.py --port 8081 --token "$ETAT_CIVIL_API_TOKEN" \
    --release-per-second 2 --max-seconds 86400
start sim-urbanisme python3 tests/sim/urbanisme.py --out "$VAR/exports/urbanisme" --scenario demo \
    --interval-ms 10000 --max-seconds 86400
for s in $SOFTWARES; do
    start "adapter-$s" bin/civibus-adapter run --config "$VAR/adapter-$s.yaml"
done
for _ in $(seq 1 50); do (echo >/dev/tcp/127.0.0.1/8091) 2>/dev/null && break; sleep 0.1; done
start sim-dechets python3 tests/sim/dechets.py send --port 8091 --secret-env CIVIBUS_DECHETS_WEBHOOK_SECRET \
    --requests 50 --rate 20 --max-seconds 600
# the waste software's own API: creates the requests routed to it (POST /api/demandes) and
# sends their status changes back, one step every 20 s
start sim-dechets-api python3 tests/sim/dechets.py serve --port 8091 --api-port 8092 \
    --secret-env CIVIBUS_DECHETS_WEBHOOK_SECRET --step-ms 20000 --max-seconds 86400
if [ "$MAIL" = 1 ]; then
    echo "starting the city's mailbox adapter and the notifier"
    start adapter-courriel bin/civibus-adapter run --config "$VAR/adapter-courriel.yaml"
    start notify env PGUSER=civibus_notify bin/civibus-notify --config "$VAR/notify.yaml"
fi

echo "waiting for the first requests of each software..."
for _ in $(seq 1 60); do
    n=$(psql -X -A -t -c "select count(distinct source) from events where source in ('etat-civil','urbanisme','dechets')" 2>/dev/null)
    [ "${n:-0}" = 3 ] && break
    sleep 1
done
psql -X -c "select source, count(*) as events, count(distinct request_id) as requests from events group by source order by source"

cat <<MSG
civibus is running.
  hub log:        $VAR/log/hub.log   (adapters and simulators: $VAR/log/)
  database:       . $VAR/run.env && psql -c 'select source, service, status, occurred_at from events order by id desc limit 20'
  dead letters:   . $VAR/run.env && psql -c 'select source, reason, detail from dead_letters'
  agents' console: http://127.0.0.1:8480/console/   (sign in with the token in $VAR/api-token)
  dashboard:      http://127.0.0.1:8480/tableau-de-bord/   (the same sign-in: a supervisor's token)
  citizen's page: http://127.0.0.1:8480/suivi/   (a tracking code: . $VAR/run.env && psql -Atc 'select tracking_code from requests limit 1')
  agents' API:    curl -s -H "Authorization: Bearer \$(cat $VAR/api-token)" 'http://127.0.0.1:8480/v1/citizens?name=dupont'
                  then /v1/citizens/ID/timeline (docs/api.md; API log: $VAR/log/api.log)
  send more:      bin/civibus-adapter replay --config $VAR/adapter-demo.yaml --source demo --file FILE.jsonl
MSG
if [ "$MAIL" = 1 ]; then
cat <<MSG
  write to the city (a mail becomes a request, routed by its words; the citizen gets an
  acknowledgement, then a mail at each status change):
                  . $VAR/run.env; printf 'From: Jeanne <%s>\\r\\nTo: %s\\r\\nSubject: Un canapé à enlever\\r\\n\\r\\nBonjour, un canapé encombrant devant le 3 rue des Lilas.\\r\\n' \\
                    \$CIVIBUS_CITIZEN_MAIL \$CIVIBUS_CITY_MAIL | curl -sS \$CIVIBUS_SMTP_URL --mail-from \$CIVIBUS_CITIZEN_MAIL --mail-rcpt \$CIVIBUS_CITY_MAIL -T -
  the citizen's mailbox: . $VAR/run.env; curl -sS -u \$CIVIBUS_CITIZEN_IMAP_USER:\$CIVIBUS_CITIZEN_IMAP_PASSWORD "\$CIVIBUS_CITIZEN_IMAP_URL" -X 'UID SEARCH ALL'
                  then curl -sS -u \$CIVIBUS_CITIZEN_IMAP_USER:\$CIVIBUS_CITIZEN_IMAP_PASSWORD "\$CIVIBUS_CITIZEN_IMAP_URL;UID=1"
  notifications:  . $VAR/run.env && psql -c 'select template, state, last_error, done_at from notifications order by id desc limit 10'
MSG
fi
echo "Stop with Ctrl-C, or 'make stop' from another terminal."
if [ "${DETACH:-0}" = 1 ]; then
    trap - INT TERM
    exit 0
fi
echo $$ >"$VAR/pids/run.pid"
while kill -0 "$(cat "$VAR/pids/hub.pid" 2>/dev/null)" 2>/dev/null; do sleep 1; done
stop_all
