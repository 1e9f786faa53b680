#!/usr/bin/env bash
# Crash test: while one adapter streams N events, the hub is killed with SIGKILL several
# times and restarted, and PostgreSQL is stopped with `-m immediate` once and restarted.
# At the end every event is stored exactly once and the adapter saw every event settled.
#   default: 100,000 events, 3 hub kills, 1 PostgreSQL restart
#   CHAOS=long (make chaos): 1,000,000 events, 10 hub kills
. "$(dirname "$0")/lib.sh"
N=${CRASH_EVENTS:-100000}; KILLS=3
if [ "${CHAOS:-}" = long ]; then N=1000000; KILLS=10; fi
IT_BATCH=1000 it_setup crash_kill9
hub_start
gen_demo "$N" >"$W/records.jsonl"

"$ADAPTER" replay --config "$W/adapter.yaml" --source demo --file "$W/records.jsonl" --timeout 1800 \
    >"$W/replay.out" 2>>"$W/replay.log" &
RPID=$!
count() { q "select count(*) from events"; }
wait_count() {  # reach at least $1 events, or fail
    local i
    for i in $(seq 1 1200); do
        [ "$(count)" -ge "$1" ] && return 0
        kill -0 $RPID 2>/dev/null || return 0
        sleep 0.1
    done
    fail "stalled below $1 events (at $(count))"
}

step=$((N / (KILLS + 2)))
for k in $(seq 1 "$KILLS"); do
    wait_count $((k * step))
    hub_kill9
    ok "hub killed with SIGKILL at $(count) events"
    sleep 0.3
    hub_start
done
wait_count $(((KILLS + 1) * step))
bash "$ROOT/deploy/pgctl.sh" kill "$PG_DIR" >/dev/null || fail "could not stop PostgreSQL"
ok "PostgreSQL stopped with -m immediate at $(PGCONNECT_TIMEOUT=2 count 2>/dev/null || echo '?') events"
sleep 1
bash "$ROOT/deploy/pgctl.sh" start "$PG_DIR" >/dev/null || fail "could not restart PostgreSQL"
ok "PostgreSQL restarted"

wait $RPID
rc=$?
[ "$rc" -eq 0 ] || fail "replay exit $rc: $(cat "$W/replay.out"); $(tail -n 5 "$W/replay.log")"
grep -qx "sent $N acked $N nacked 0" "$W/replay.out" || fail "replay said: $(cat "$W/replay.out")"
[ "$(count)" = "$N" ] || fail "events: $(count), expected $N"
[ "$(q "select count(distinct (source, event_id)) from events")" = "$N" ] || fail "an event is stored twice"
[ "$(q "select count(*) from dead_letters")" = 0 ] || fail "unexpected dead letters: $(q "select string_agg(distinct reason, ',') from dead_letters")"
ok "$N events stored exactly once across $KILLS hub kills and a PostgreSQL crash"
hub_stop
