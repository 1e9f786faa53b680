#!/usr/bin/env bash
# The adapter is killed with SIGKILL mid-stream and started again: its spool resends what
# was not settled, and every event is stored exactly once.
. "$(dirname "$0")/lib.sh"
N=${ADAPTER_EVENTS:-20000}
it_setup adapter_kill9
hub_start
gen_demo "$N" >"$W/records.jsonl"

"$ADAPTER" replay --config "$W/adapter.yaml" --source demo --file "$W/records.jsonl" --rate 4000 \
    >/dev/null 2>>"$W/replay.log" &
RPID=$!
for i in $(seq 1 300); do
    [ "$(q "select count(*) from events")" -ge $((N / 3)) ] && break
    sleep 0.05
done
kill -9 $RPID; wait $RPID 2>/dev/null
at=$(q "select count(*) from events")
[ "$at" -lt "$N" ] || fail "the adapter finished before it could be killed"
ok "adapter killed with SIGKILL at $at events"

replay demo "$W/records.jsonl" --timeout 600
[ "$REPLAY_RC" -eq 0 ] || fail "second replay exit $REPLAY_RC"
[ "$(q "select count(*) from events")" = "$N" ] || fail "events: $(q "select count(*) from events"), expected $N"
ok "after restart: $N events, each once ($(cat "$W/replay.out"))"
hub_stop
