#!/usr/bin/env bash
# Replay → hub → PostgreSQL: every record stored once, malformed ones dead-lettered with
# their reason, a second replay stores nothing new, an id reused with other content is
# ACKed and dead-lettered, an unknown CURVE key is refused (exit 3) and stores nothing.
. "$(dirname "$0")/lib.sh"
it_setup ingest_basic
hub_start

gen_demo 1000 >"$W/records.jsonl"
echo '{"id": "BROKEN-1", "version": 1, "type": ' >>"$W/records.jsonl"           # invalid JSON
echo '{"version": 1, "type": "encombrants", "statut": "RECU"}' >>"$W/records.jsonl"  # no id
printf '{"id":"BAD-UTF8","nom":"\xff\xfe"}\n' >>"$W/records.jsonl"                # invalid UTF-8

"$ROOT/$BUILD/tools/sub" "ipc://$W/pub.sock" 1000 5000 >"$W/pub.out" &
SUBPID=$!
sleep 0.5
replay demo "$W/records.jsonl" --timeout 60
[ "$REPLAY_RC" -eq 0 ] || fail "replay exit $REPLAY_RC: $(cat "$W/replay.out")"
grep -qx "sent 1003 acked 1000 nacked 3" "$W/replay.out" || fail "replay said: $(cat "$W/replay.out")"
ok "first replay: $(cat "$W/replay.out")"

[ "$(q "select count(*) from events")" = 1000 ] || fail "events: $(q "select count(*) from events")"
[ "$(q "select count(distinct (source, event_id)) from events")" = 1000 ] || fail "duplicate events"
[ "$(q "select count(*) from requests")" = 1000 ] || fail "requests: $(q "select count(*) from requests")"
ok "1000 events and 1000 requests stored"

wait $SUBPID || fail "subscriber got $(wc -l <"$W/pub.out") of 1000 published events"
cut -f2 "$W/pub.out" | sort -n -c 2>/dev/null || fail "published seqs not in commit order"
[ "$(cut -f2 "$W/pub.out" | sort -u | wc -l)" = 1000 ] || fail "published seqs not unique"
[ "$(cut -f2 "$W/pub.out" | tail -n1)" = "$(q "select max(id) from events")" ] || fail "last published seq is not max(events.id)"
grep -qiE 'DUPONT|usager|Église|"citizen"' "$W/pub.out" && fail "personal data published"
[ "$(cut -f1 "$W/pub.out" | sort -u)" = "$(q "select string_agg(distinct service, E'\n' order by service) from events")" ] || fail "topics are not the services"
grep -q '"tracking_code":"[A-Z0-9]\{11\}"' "$W/pub.out" || fail "published events lack a tracking code"
ok "1000 events published in commit order, topic = service, no personal data"

reasons=$(q "select string_agg(reason, ',' order by reason) from dead_letters")
[ "$reasons" = "invalid_json,invalid_utf8,missing_field" ] || fail "dead letter reasons: $reasons"
ok "dead letters: $reasons"

# no personal data in the timeline, in dead-letter details, or in the hub log
q "select row_to_json(e)::text from events e" | grep -qiE 'DUPONT|usager[0-9]+@|Église' \
    && fail "personal data in events"
q "select coalesce(string_agg(detail, ' '), '') from dead_letters" | grep -qiE 'DUPONT|BROKEN|encombrants' \
    && fail "record values in dead-letter details"
grep -qiE 'DUPONT|usager[0-9]+@|Église' "$W/hub.log" && fail "personal data in the hub log"
ok "no personal data in events, dead-letter details or logs"

# the same file again: nothing new stored, everything settled
replay demo "$W/records.jsonl" --timeout 60
[ "$REPLAY_RC" -eq 0 ] || fail "second replay exit $REPLAY_RC"
grep -qx "sent 1003 acked 1000 nacked 3" "$W/replay.out" || fail "second replay said: $(cat "$W/replay.out")"
[ "$(q "select count(*) from events")" = 1000 ] || fail "second replay changed the event count"
ok "second replay: event count unchanged"

# same event id (id + version), different content: ACKed, dead-lettered as id_reused
gen_demo 1 7 1 | sed 's/"objet": "[^"]*"/"objet": "contenu modifié"/' >"$W/reused.jsonl"
replay demo "$W/reused.jsonl" --timeout 30
grep -qx "sent 1 acked 1 nacked 0" "$W/replay.out" || fail "id reuse replay said: $(cat "$W/replay.out")"
[ "$(q "select count(*) from dead_letters where reason = 'id_reused'")" = 1 ] || fail "no id_reused dead letter"
[ "$(q "select count(*) from events")" = 1000 ] || fail "id reuse stored an event"
ok "id reused with other content: ACKed and dead-lettered"

# a record over max_event_bytes (16 KiB here) is NACKed too_large by the hub or refused by the adapter
python3 -c 'import json; print(json.dumps({"id": "BIG-1", "version": 1, "objet": "x" * 20000}))' >"$W/big.jsonl"
replay demo "$W/big.jsonl" --timeout 30
[ "$(q "select count(*) from events where source_record_id = 'BIG-1'")" = 0 ] || fail "oversized record stored"
ok "oversized record not stored ($(cat "$W/replay.out"))"

# an adapter whose key the hub does not know: exit 3, nothing stored
before=$(q "select count(*) from events")
gen_demo 5 5000 >"$W/intruder.jsonl"
REPLAY_CONFIG=$W/adapter-intruder.yaml replay demo "$W/intruder.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 3 ] || fail "unknown key: replay exit $REPLAY_RC, expected 3"
[ "$(q "select count(*) from events")" = "$before" ] || fail "unknown key stored events"
ok "unknown CURVE key: exit 3, nothing stored"

hub_stop || fail "hub did not stop cleanly"
grep -q "stopped" "$W/hub.log" || fail "hub did not log its stop"
ok "hub stopped cleanly"
