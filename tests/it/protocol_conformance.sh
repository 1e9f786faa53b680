#!/usr/bin/env bash
# The adapter protocol's conformance suite (tests/protocol/conformance.py: Python and
# python3-zmq, written from docs/protocol.md alone) against the real hub: every command,
# reason code and edge case of the doc. Then what the wire cannot show: a refused EVENT
# (bad sequence, over the window, wrong or garbage session) stored nothing, a duplicate
# stored once, the command's result recorded, and no record content in the hub's log.
. "$(dirname "$0")/lib.sh"

PY=
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import zmq; assert zmq.has("curve")' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || fail "no python3 with zmq and CURVE (apt-get install python3-zmq; deploy/deps.sh lists it)"

IT_WINDOW=16 IT_DELAY=100 it_setup protocol_conformance "conf:$ROOT/tests/protocol/mapping.yaml"
printf 'commands:\n  result_timeout_ms: 60000\n' >>"$W/hub.yaml"
MMB=$(sed -n 's/^  max_message_bytes: //p' "$W/hub.yaml")
hub_start
CMD=$(q "insert into commands (source, kind, payload) values ('conf', 'conformance_probe', '{\"volume_m3\": 2}')
         returning id")

PYTHONDONTWRITEBYTECODE=1 "$PY" "$ROOT/tests/protocol/conformance.py" --endpoint "ipc://$W/hub.sock" --hub-cert "$W/keys/hub" \
    --adapter-cert "$W/keys/conf_secret" --max-message-bytes "$MMB" --command | tee "$W/conformance.out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || fail "conformance suite: $(grep -c '^not ok' "$W/conformance.out") checks failed"
ok "conformance suite: $(grep -c '^ok' "$W/conformance.out") checks"

kill -0 "$HUB_PID" || fail "hub died"
refused=$(q "select string_agg(source_record_id, ',') from events where source_record_id in
             ('REUSE-2B', 'GAP-3', 'WIN-17', 'SEQ0-1', 'NAN-1', 'WRONG-1', 'GARBAGE-1')")
[ -z "$refused" ] || fail "refused EVENTs were stored: $refused"
[ "$(q "select count(*) from events where source_record_id in ('REUSE-1', 'REUSE-2A', 'GAP-1', 'WIN-1', 'WIN-16')
        group by source_record_id having count(*) <> 1")" = "" ] || fail "a resent record stored twice"
[ "$(q "select count(*) from events where source_record_id in ('REUSE-1', 'REUSE-2A', 'GAP-1', 'WIN-16')")" = 4 ] \
    || fail "records accepted before a refusal were not stored"
[ "$(q "select count(*) from events where source_record_id = 'OK-1'")" = 1 ] || fail "OK-1 not stored once"
[ "$(q "select count(*) from dead_letters where reason = 'id_reused'")" = 2 ] || fail "id_reused not dead-lettered (once by CIVIBUS/1, once by 1.1)"
[ "$(q "select count(*) from dead_letters where reason = 'malformed'")" = 2 ] \
    || fail "malformed EVENTs not dead-lettered: $(q "select reason, count(*) from dead_letters group by 1")"
[ "$(q "select status from commands where id = $CMD")" = done ] || fail "command $CMD not done"
ok "refused EVENTs stored nothing; resends and duplicates stored once; dead letters and the result committed"

grep -q "PERSONAL-MARKER" "$W/hub.log" && fail "a record's content reached the hub's log"
grep -q "refused (bad_sequence): session" "$W/hub.log" || fail "a refusal ending a session is not logged"
ok "the hub's log names refusals and sessions, never record contents"
hub_stop || fail "hub did not stop cleanly"
