#!/usr/bin/env bash
# GET /healthz of civibus-api (docs/operations.md, "Health"): 200 while the primary answers,
# without a token and without personal data; PostgreSQL stopped → 503 primary_down within 3 s,
# each answer quick (the watcher's findings, never a wait on PostgreSQL), data routes 503 too;
# PostgreSQL frozen (SIGSTOP: accepts nothing, answers nothing) → 503 as well, not a hang;
# back to 200 once it answers again; civibus_api_primary_up in /metrics follows. (SIGHUP
# reloads: tests/it/api_reload.sh.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
api_setup health 5
PGD=$(bash "$ROOT/deploy/pgctl.sh" status "$PG_DIR" >/dev/null 2>&1 && readlink -f "$PG_DIR/cluster")
at_exit 'bash "$ROOT/deploy/pgctl.sh" status "$PG_DIR" >/dev/null 2>&1 || bash "$ROOT/deploy/pgctl.sh" start "$PG_DIR" >/dev/null 2>&1'

js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
get /healthz; [ "$S" = 200 ] || fail "healthz: $S $(cat "$W/body")"
[ "$(js 'd["status"], d["primary"], "replica" in d')" = "ok ok False" ] || fail "healthz body: $(cat "$W/body")"
curl -s -D "$W/h" -o /dev/null "$U/healthz"
grep -qi '^Cache-Control: no-store' "$W/h" || fail "healthz cacheable"
grep -qi '^Strict-Transport-Security' "$W/h" && fail "HSTS over plain HTTP"
get /metrics; grep -q '^civibus_api_primary_up 1$' "$W/body" || fail "primary_up not 1"
grep -q 'civibus_api_replica' "$W/body" && fail "replica metrics without a replica"
ok "healthz 200 ok, no token, no replica; primary_up 1"

# timed PATH: status in $S, seconds in $T (curl gives up after 5 s: a hang fails)
timed() { local o; o=$(curl -s --max-time 5 -o "$W/body" -w '%{http_code} %{time_total}' ${2:+-H "Authorization: Bearer $2"} "$U$1"); S=${o% *}; T=${o#* }; }
bash "$ROOT/deploy/pgctl.sh" stop "$PG_DIR" >/dev/null || fail "cannot stop PostgreSQL"
t0=$(date +%s.%N); seen=
while :; do
    timed /healthz
    awk -v t="$T" 'BEGIN { exit !(t < 1) }' || fail "healthz took ${T}s with PostgreSQL stopped"
    [ "$S" = 503 ] && { seen=$(echo "$(date +%s.%N) - $t0" | bc); break; }
    [ "$S" = 200 ] || fail "healthz $S while stopping"
    awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { exit !(a - b > 3) }' && fail "still 200 3 s after PostgreSQL stopped"
    sleep 0.1
done
[ "$(js 'd["status"], d["reason"], d["primary"]')" = "unavailable primary_down down" ] || fail "503 body: $(cat "$W/body")"
grep -qiE 'password|host=|dbname|user=' "$W/body" && fail "healthz leaks connection details"
ok "PostgreSQL stopped: healthz 503 primary_down after ${seen}s, each answer under 1 s"
timed "/v1/citizens?name=dupont" "$T_SUP"
[ "$S" = 503 ] || fail "a read with PostgreSQL stopped: $S"
awk -v t="$T" 'BEGIN { exit !(t < 3) }' || fail "a read took ${T}s with PostgreSQL stopped"
get /metrics; grep -q '^civibus_api_primary_up 0$' "$W/body" || fail "primary_up not 0: $(grep primary_up "$W/body")"
ok "reads 503 at once (${T}s), primary_up 0"

bash "$ROOT/deploy/pgctl.sh" start "$PG_DIR" >/dev/null || fail "cannot restart PostgreSQL"
for i in $(seq 1 40); do get /healthz; [ "$S" = 200 ] && break; sleep 0.1; done
[ "$S" = 200 ] || fail "healthz not back to 200 after a restart: $S $(cat "$W/body")"
get "/v1/citizens?name=dupont" "$T_SUP"; [ "$S" = 200 ] || fail "reads not back: $S"
ok "PostgreSQL back: healthz 200 within 4 s, reads served"

# frozen: every process of the cluster stopped (SIGSTOP): connections open, nothing answers
PM=$(head -1 "$PGD/data/postmaster.pid")
FROZEN="$PM $(pgrep -d ' ' -P "$PM")"
thaw() { kill -CONT $FROZEN 2>/dev/null; }
at_exit thaw
kill -STOP $FROZEN || fail "cannot freeze PostgreSQL"
t0=$(date +%s.%N)
while :; do
    timed /healthz
    awk -v t="$T" 'BEGIN { exit !(t < 1) }' || { thaw; fail "healthz took ${T}s with PostgreSQL frozen"; }
    [ "$S" = 503 ] && break
    awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { exit !(a - b > 4) }' && { thaw; fail "still 200 4 s after PostgreSQL froze"; }
    sleep 0.1
done
seen=$(echo "$(date +%s.%N) - $t0" | bc)
thaw
[ "$(js 'd["reason"]')" = primary_down ] || fail "frozen: $(cat "$W/body")"
for i in $(seq 1 50); do get /healthz; [ "$S" = 200 ] && break; sleep 0.1; done
[ "$S" = 200 ] || fail "healthz not back after a thaw: $S $(cat "$W/body")"
grep -q "did not answer SELECT 1 within 1000 ms" "$W/api.log" || fail "no log line for the primary down"
[ "$(grep -c "did not answer SELECT 1" "$W/api.log")" -le 2 ] || fail "the primary down logged more than once per outage"
ok "PostgreSQL frozen: 503 after ${seen}s (health_timeout_ms 1000), back to 200 after; logged once per outage"
api_stop
ok "SIGTERM stops the API cleanly (exit 0)"
