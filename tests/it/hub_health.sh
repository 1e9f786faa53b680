#!/usr/bin/env bash
# The hub's GET /healthz (docs/operations.md, "Health"), served beside /metrics: 200 when
# the database answers and the writer commits; 503 "unreachable" when no new connection
# to the database is possible, back to 200 when it is; 503 "stuck" when a batch waits for
# its commit longer than store.stuck_after_s (a lock held on events), back to 200 once it
# commits, and the event is then stored once; no host, user or record in the answer.
. "$(dirname "$0")/lib.sh"
it_setup hub_health
sed -i 's|^  publish: .*|&\n  metrics: "127.0.0.1:0"|; s|^store:$|&\n  stuck_after_s: 1|' "$W/hub.yaml"
hub_start
PORT=$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$W/hub.log" | tail -n1)
[ -n "$PORT" ] || fail "no metrics port in the hub log"
URL=http://127.0.0.1:$PORT/healthz

health() {  # prints "CODE BODY"
    curl -s --max-time 10 -o "$W/health.json" -w '%{http_code}' "$URL" >"$W/health.code"
    echo "$(cat "$W/health.code") $(cat "$W/health.json")"
}
# holds 'PYTHON EXPRESSION' — true of the last answer's JSON (d); python3, not jq: a bare
# Debian has only the former
holds() { python3 -c "import json, sys; d = json.load(open('$W/health.json')); sys.exit(0 if ($1) else 1)" 2>/dev/null; }
expect_soon() {  # CODE 'python expression on d' — within 10 s
    local i got
    for i in $(seq 1 50); do
        got=$(health)
        [ "${got%% *}" = "$1" ] && holds "$2" && return 0
        sleep 0.2
    done
    fail "expected $1 with $2, got: $got"
}

got=$(health)
[ "${got%% *}" = 200 ] || fail "a healthy hub: $got"
holds 'd["status"] == "ok" and d["database"] == "ok" and d["writer"] == "ok"' \
    || fail "healthy body: $got"
curl -s --max-time 5 -D "$W/h.txt" -o /dev/null "$URL"
grep -qi '^content-type: application/json' "$W/h.txt" || fail "content type: $(cat "$W/h.txt")"
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST -d x "$URL")
[ "$code" = 405 ] || fail "POST /healthz: $code"
ok "healthy: $got"

# no new connection to the database: unhealthy, and the answer names no host or user
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER DATABASE $DB ALLOW_CONNECTIONS false" >/dev/null || fail "cannot close the database"
at_exit "psql -X -q -d postgres -c 'ALTER DATABASE $DB ALLOW_CONNECTIONS true' >/dev/null 2>&1"
t0=$(date +%s)
expect_soon 503 'd["status"] == "unhealthy" and d["database"] == "unreachable"'
[ $(( $(date +%s) - t0 )) -le 6 ] || fail "the unhealthy answer took more than 6 s"
grep -qiE "$PGHOST|$PGUSER|$DB" "$W/health.json" && fail "the answer names the server: $(cat "$W/health.json")"
grep -q "PostgreSQL does not answer" "$W/hub.log" || fail "no WARN in the hub log"
psql -X -q -d postgres -c "ALTER DATABASE $DB ALLOW_CONNECTIONS true" >/dev/null
expect_soon 200 'd["database"] == "ok"'
ok "database refusing connections: 503 unreachable, then 200 again"

# a lock on events holds the writer's batch: stuck after 1 s, healthy once it commits
psql -X -q -d "$DB" -c "BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" \
    >/dev/null 2>&1 &
LOCKER=$!
at_exit "kill $LOCKER 2>/dev/null"
for i in $(seq 1 50); do
    [ "$(q "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 'events' AND l.mode = 'AccessExclusiveLock' AND l.granted")" -ge 1 ] && break
    sleep 0.1
done
gen_demo 3 >"$W/records.jsonl"
replay demo "$W/records.jsonl" --timeout 60 &
REPLAYER=$!
expect_soon 503 'd["writer"] == "stuck" and d["uncommitted_seconds"] >= 1'
got=$(health)
ok "a batch held by a lock: $got"
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$REPLAYER"
grep -qx "sent 3 acked 3 nacked 0" "$W/replay.out" || fail "replay said: $(cat "$W/replay.out")"
expect_soon 200 'd["writer"] == "ok" and d["uncommitted_seconds"] == 0'
[ "$(q "SELECT count(*) FROM events")" = 3 ] || fail "events stored: $(q "SELECT count(*) FROM events")"
grep -q "the writer commits again" "$W/hub.log" || fail "no recovery line in the hub log"
ok "the lock gone: the batch commits once, 200 again"
echo "PASS hub_health"
