#!/usr/bin/env bash
# Broken protocol input (wrong version, unknown command, missing frames, bad numbers,
# unknown session, a message over the hard size limit, after which the session's next
# message ends it visibly) gets the documented answers and never stops the hub or loses
# another event. The whole protocol is checked by protocol_conformance.sh.
. "$(dirname "$0")/lib.sh"
it_setup protocol_abuse
hub_start
"$ROOT/$BUILD/tools/rawclient" "ipc://$W/hub.sock" "$W/keys/hub" "$W/keys/demo_secret" || fail "rawclient checks failed"
kill -0 "$HUB_PID" || fail "hub died"
[ "$(q "select count(*) from events where source_record_id = 'RAW-1'")" = 1 ] || fail "RAW-1 not stored"
[ "$(q "select count(*) from dead_letters where reason = 'invalid_json'")" = 1 ] || fail "array record not dead-lettered"
[ "$(q "select count(*) from dead_letters where reason = 'malformed' and payload_bytes = 0")" = 1 ] \
    || fail "EVENT without its record not dead-lettered malformed"
grep -q "max_message_bytes" "$W/hub.log" || fail "dropped connection not logged"
[ "$(q "select count(*) from dead_letters where reason = 'too_large' and payload_bytes = 20000 and length(payload) <= 1024 and payload_hash ~ '^[0-9a-f]{64}$'")" = 1 ] \
    || fail "too_large dead letter lacks its first bytes and hash: $(q "select reason, payload_bytes, length(payload) from dead_letters")"
ok "hub alive, well-formed event stored, abuse dead-lettered and logged"
hub_stop
