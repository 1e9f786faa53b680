#!/usr/bin/env bash
# PostgreSQL goes away while an adapter streams: the hub holds ACKs back, stops reading
# once store.pending_max_bytes are uncommitted (the adapter waits), and when PostgreSQL
# is back every event is stored exactly once and acknowledged.
. "$(dirname "$0")/lib.sh"
N=3000
IT_PENDING=65536 it_setup backpressure
hub_start
gen_demo "$N" >"$W/records.jsonl"

bash "$ROOT/deploy/pgctl.sh" kill "$PG_DIR" >/dev/null || fail "could not stop PostgreSQL"
"$ADAPTER" replay --config "$W/adapter.yaml" --source demo --file "$W/records.jsonl" --timeout 300 \
    >"$W/replay.out" 2>>"$W/replay.log" &
RPID=$!
for _ in $(seq 1 200); do
    grep -q "not reading from adapters" "$W/hub.log" && break
    sleep 0.1
done
grep -q "not reading from adapters" "$W/hub.log" || { bash "$ROOT/deploy/pgctl.sh" start "$PG_DIR" >/dev/null; fail "hub did not stop reading"; }
ok "PostgreSQL down: hub stopped reading at its byte cap"
kill -0 $RPID 2>/dev/null || { bash "$ROOT/deploy/pgctl.sh" start "$PG_DIR" >/dev/null; fail "adapter finished while PostgreSQL was down"; }
grep -q "^ACK\|acked [1-9]" "$W/replay.out" && fail "something was acknowledged while PostgreSQL was down"
sleep 2
kill -0 "$HUB_PID" || fail "hub died while PostgreSQL was down"
bash "$ROOT/deploy/pgctl.sh" start "$PG_DIR" >/dev/null || fail "could not restart PostgreSQL"
ok "PostgreSQL back"
wait $RPID || fail "replay exit $?: $(cat "$W/replay.out")"
grep -qx "sent $N acked $N nacked 0" "$W/replay.out" || fail "replay said: $(cat "$W/replay.out")"
[ "$(q "select count(*) from events")" = "$N" ] || fail "events: $(q "select count(*) from events")"
grep -q "reading from adapters again" "$W/hub.log" || fail "hub did not log that it reads again"
ok "$N events stored once after the outage; hub resumed reading"
hub_stop
