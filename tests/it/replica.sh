#!/usr/bin/env bash
# The API's read replica (docs/operations.md, "Read replica"): a primary of the test's own
# (deploy/pgctl.sh, wal_level=replica), a streaming replica made by pg_basebackup -R, both on
# Unix sockets only (replication over the socket: a `local replication` line), the hub on the
# primary and civibus-api with postgres.read_dsn = the replica, max_replica_lag_s = 4.
#   - /healthz 200 with the replica ok; civibus_api_replica_up 1, lag near 0 when idle;
#   - reads come from the replica: WAL replay paused (pg_wal_replay_pause()), a record
#     stored on the primary by the hub; the API's count does not show it; the audit row of a
#     search lands on the primary (the paused replica has it not);
#   - read your own writes: an Open311 POST while replay is paused, then the same client's
#     GET of it: 200 (from the primary); another caller: 404 (the replica has not replayed it);
#   - lag visible in /metrics and /healthz while paused; over 4 s: /healthz 503
#     replica_lagging, reads from the primary (the count shows the record), fallbacks counted;
#     replay resumed: back to the replica, 200;
#   - the replica stopped: /healthz 503 replica_down, reads still 200 (the primary), logged
#     once; started again: back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else (cd / && "$@"); fi; }

# the primary: pgctl's cluster with WAL for a standby
PRI=$(mktemp -d "${CIVIBUS_TEST_TMP:-/tmp}/replica-pri.XXXXXX"); chmod 755 "$PRI"
at_exit "bash '$ROOT/deploy/pgctl.sh' stop --purge '$PRI' >/dev/null 2>&1"
bash "$ROOT/deploy/pgctl.sh" start "$PRI" >/dev/null || fail "cannot start the primary"
PCL=$(readlink -f "$PRI/cluster")
printf 'wal_level = replica\nmax_wal_senders = 4\n' >>"$PCL/data/postgresql.conf"
echo "local replication all trust" >>"$PCL/data/pg_hba.conf"
bash "$ROOT/deploy/pgctl.sh" restart "$PRI" >/dev/null || fail "cannot restart the primary"
eval "$(bash "$ROOT/deploy/pgctl.sh" env "$PRI")"      # the test's database is made there
# the replica: a base backup, streaming (-R writes primary_conninfo and standby.signal)
REP=$(mktemp -d /tmp/civibus-replica.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$REP"
chmod 700 "$REP"
at_exit "as_pg '$PG_BIN/pg_ctl' -D '$REP/data' -m fast stop >/dev/null 2>&1; rm -rf '$REP'"
as_pg "$PG_BIN/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -D "$REP/data" -R -X stream >"$REP/bb.log" 2>&1 \
    || fail "pg_basebackup: $(tail -3 "$REP/bb.log")"
printf "unix_socket_directories = '%s'\nhot_standby = on\nwal_receiver_status_interval = 1s\n" "$REP" >>"$REP/data/postgresql.conf"
rep_start() { as_pg "$PG_BIN/pg_ctl" -D "$REP/data" -l "$REP/server.log" -w start >/dev/null || fail "the replica did not start: $(tail -5 "$REP/server.log")"; }
rep_stop() { as_pg "$PG_BIN/pg_ctl" -D "$REP/data" -m fast -w stop >/dev/null; }
rep_start
rq() { psql -X -q -A -t -h "$REP" -p "$PGPORT" -U "$PGUSER" -d "$DB" -c "$1"; }
[ "$(psql -X -A -t -h "$REP" -p "$PGPORT" -U "$PGUSER" -d postgres -c 'select pg_is_in_recovery()')" = t ] || fail "not a standby"
ok "primary and streaming replica (pg_basebackup -R), Unix sockets only"

api_setup replica 10
api_stop
sed -i "s|^  conninfo: .*|&\n  read_dsn: \"host=$REP port=$PGPORT user=$PGUSER dbname=$DB\"\n  max_replica_lag_s: 4|" "$W/api.yaml"
"$API" --config "$W/api.yaml" >"$W/api.log" 2>&1 &
API_PID=$!
for i in $(seq 1 50); do grep -q "listening on" "$W/api.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/api.log"); [ -n "$PORT" ] || fail "API: $(cat "$W/api.log")"
U=http://127.0.0.1:$PORT
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
metric() { curl -s "$U/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
for i in $(seq 1 30); do get /healthz; [ "$S" = 200 ] && break; sleep 0.1; done
[ "$S" = 200 ] && [ "$(js 'd["replica"]["state"]')" = ok ] || fail "healthz with a replica: $S $(cat "$W/body")"
sleep 2
[ "$(metric civibus_api_replica_up)" = 1 ] || fail "replica_up: $(metric civibus_api_replica_up)"
awk -v l="$(metric civibus_api_replica_lag_seconds)" 'BEGIN { exit !(l < 1.5) }' || fail "idle lag: $(metric civibus_api_replica_lag_seconds)"
get "/v1/requests/count" "$T_SUP"; [ "$S" = 200 ] || fail "count: $S"; N=$(js 'd["count"]')
[ "$N" = "$(q 'select count(*) from requests')" ] || fail "count $N"
r0=$(metric civibus_api_replica_reads_total); [ "$r0" -gt 0 ] || fail "no read served by the replica"
ok "healthz 200 replica ok, idle lag $(metric civibus_api_replica_lag_seconds)s, $r0 reads from the replica"

# replay paused: the primary moves on, the API's reads do not
rq "select pg_wal_replay_pause()" >/dev/null
for i in $(seq 1 30); do [ "$(rq 'select pg_get_wal_replay_pause_state()')" = paused ] && break; sleep 0.1; done
gen_demo 1 5001 >"$W/d2.jsonl"; replay demo "$W/d2.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"
[ "$(q 'select count(*) from requests')" = $((N + 1)) ] || fail "the primary did not store the record"
get "/v1/requests/count" "$T_SUP"; [ "$(js 'd["count"]')" = "$N" ] || fail "the count came from the primary: $(cat "$W/body")"
ab=$(q "select count(*) from api_audit where action = 'citizen_search'")
get "/v1/citizens?name=dupont" "$T_SUP"; [ "$S" = 200 ] || fail "search: $S"
for i in $(seq 1 30); do [ "$(q "select count(*) from api_audit where action = 'citizen_search'")" -gt "$ab" ] && break; sleep 0.1; done
[ "$(q "select count(*) from api_audit where action = 'citizen_search'")" -gt "$ab" ] || fail "the search's audit row is not on the primary"
[ "$(rq "select count(*) from api_audit where action = 'citizen_search'")" = "$ab" ] || fail "the paused replica has the audit row"
ok "replay paused: the count is the replica's ($N, the primary has $((N + 1))); the audit row is on the primary"

# read your own writes
post311() { S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "$1" "$U/open311/v2/requests.json"); }
post311 "service_code=encombrants&description=Matelas&email=ryw%40example.fr"
[ "$S" = 200 ] || fail "Open311 POST: $S $(cat "$W/body")"; CODE=$(js 'd[0]["service_request_id"]')
get "/open311/v2/requests/$CODE.json"; [ "$S" = 200 ] || fail "the writer's own GET: $S (not read from the primary)"
get "/open311/v2/requests/$CODE.json" "$T_DECH"; [ "$S" = 404 ] || fail "another caller's GET: $S (expected 404 from the paused replica)"
ok "read your own writes: the POSTing client reads its request (primary), another caller not yet (replica)"

# lag visible (the watcher samples once a second: on a loaded machine its figure may
# trail the clock by a sample, so wait for it, up to 10 s), then over max_replica_lag_s:
# the primary serves
for i in $(seq 1 100); do
    l=$(metric civibus_api_replica_lag_seconds); awk -v l="$l" 'BEGIN { exit !(l >= 1.5) }' && break; sleep 0.1
done
awk -v l="$l" 'BEGIN { exit !(l >= 1.5) }' || fail "lag not visible while paused: $l"
get /healthz; awk -v l="$(js 'd["replica"]["lag_seconds"]')" 'BEGIN { exit !(l >= 1.5) }' || fail "healthz lag: $(cat "$W/body")"
[ "$(metric civibus_api_replica_lag_bytes)" -gt 0 ] || fail "lag bytes: $(metric civibus_api_replica_lag_bytes)"
for i in $(seq 1 60); do get /healthz; [ "$S" = 503 ] && break; sleep 0.1; done
[ "$S" = 503 ] && [ "$(js 'd["reason"], d["replica"]["state"]')" = "replica_lagging lagging" ] || fail "lag over the maximum: $S $(cat "$W/body")"
f0=$(metric civibus_api_replica_fallbacks_total)
get "/v1/requests/count" "$T_SUP"; [ "$(js 'd["count"]')" = $((N + 2)) ] || fail "lagging: not read from the primary: $(cat "$W/body")"
[ "$(metric civibus_api_replica_fallbacks_total)" -gt "$f0" ] || fail "fallback not counted"
grep -q "replica lags .* over postgres.max_replica_lag_s (4): reads go to the primary" "$W/api.log" || fail "lagging not logged"
ok "paused: lag ${l}s in /metrics and /healthz; over 4 s: 503 replica_lagging, reads from the primary, counted"
rq "select pg_wal_replay_resume()" >/dev/null
for i in $(seq 1 50); do get /healthz; [ "$S" = 200 ] && break; sleep 0.1; done
[ "$S" = 200 ] || fail "not back after resume: $(cat "$W/body")"
r1=$(metric civibus_api_replica_reads_total)
get "/v1/requests/count" "$T_SUP"; [ "$(js 'd["count"]')" = $((N + 2)) ] || fail "after resume: $(cat "$W/body")"
[ "$(metric civibus_api_replica_reads_total)" -gt "$r1" ] || fail "not read from the replica after resume"
ok "replay resumed: 200, reads from the replica again"

# writes work (intake through the primary) and the replica going away costs no answer
rep_stop
for i in $(seq 1 40); do get /healthz; [ "$S" = 503 ] && break; sleep 0.1; done
[ "$S" = 503 ] && [ "$(js 'd["reason"]')" = replica_down ] || fail "replica stopped: $S $(cat "$W/body")"
for k in 1 2 3; do get "/v1/citizens?name=dupont" "$T_SUP"; [ "$S" = 200 ] || fail "a read with the replica down: $S"; done
get "/v1/requests/count" "$T_SUP"; [ "$(js 'd["count"]')" = $((N + 2)) ] || fail "count with the replica down"
post311 "service_code=encombrants&description=Frigo&email=ryw2%40example.fr"; [ "$S" = 200 ] || fail "a write with the replica down: $S"
[ "$(metric civibus_api_replica_up)" = 0 ] || fail "replica_up not 0"
[ "$(grep -c "replica unreachable" "$W/api.log")" = 1 ] || fail "replica down logged $(grep -c "replica unreachable" "$W/api.log") times"
rep_start
for i in $(seq 1 50); do get /healthz; [ "$S" = 200 ] && break; sleep 0.1; done
[ "$S" = 200 ] || fail "not back after the replica restarted: $(cat "$W/body")"
grep -q "replica usable" "$W/api.log" || fail "back not logged"
ok "replica stopped: 503 replica_down, reads and writes served by the primary, logged once; back after a start"
api_stop
