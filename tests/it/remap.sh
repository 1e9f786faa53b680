#!/usr/bin/env bash
# Fixing what was stored (docs/operations.md): a source mapped with the wrong `timezone:`
# (UTC where its export writes Paris wall-clock time) stores times an hour or two off. Once
# the mapping is fixed, `civibusctl remap` writes correction events (append-only timeline,
# through cv_ingest) and the requests' times are right, although the corrected times are
# EARLIER than the wrong ones (a correction takes the projection: docs/schema.md,
# "Corrections"); a second remap writes nothing; --dry-run writes nothing; a later
# ordinary event still moves the request on; a record that no longer maps is counted.
. "$(dirname "$0")/lib.sh"
CTL=$BINDIR/civibusctl
M=$(mktemp -d /tmp/it-remap-mappings.XXXXXX)
at_exit 'rm -rf "$M"'
sed 's|^timezone: Europe/Paris|timezone: UTC|' "$ROOT/deploy/mappings/demo.yaml" >"$M/demo.yaml"
grep -q '^timezone: UTC' "$M/demo.yaml" || fail "the wrong mapping"
it_setup remap "demo:$M/demo.yaml"
hub_start

# D-1: winter (Paris = UTC+1), D-2: summer (UTC+2), D-3: two versions, D-4: summer
cat >"$W/in.jsonl" <<'JSON'
{"id": "D-1", "version": 1, "type": "encombrants", "statut": "RECU", "canal": "TEL", "date": "04/03/2024 10:15", "echeance": "10/03/2024", "objet": "a", "usager": {"id": "U-1", "nom": "NOMUN"}}
{"id": "D-2", "version": 1, "type": "bac_casse", "statut": "EN_COURS", "canal": "WEB", "date": "04/07/2024 09:00", "echeance": "10/07/2024", "objet": "b", "usager": {"id": "U-2", "nom": "NOMDEUX"}}
{"id": "D-3", "version": 1, "type": "encombrants", "statut": "RECU", "canal": "TEL", "date": "05/03/2024 08:00", "objet": "c"}
{"id": "D-3", "version": 2, "type": "encombrants", "statut": "TRAITE", "canal": "TEL", "date": "06/03/2024 16:30", "objet": "c"}
JSON
replay demo "$W/in.jsonl"
[ "$(q "SELECT count(*) FROM events")" = 4 ] || fail "expected 4 events"
st() { q "SELECT to_char(r.status_occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || r.status
          || ' ' || COALESCE(to_char(r.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '-')
          FROM requests r WHERE r.request_ref = '$1'"; }
[ "$(st D-1)" = "2024-03-04 10:15 received 2024-03-10 00:00" ] || fail "wrong mapping, D-1: $(st D-1)"
ok "the wrong time zone stores wrong times"

hub_stop
cp "$ROOT/deploy/mappings/demo.yaml" "$M/demo.yaml"
hub_start

events_before=$(q "SELECT count(*) FROM events")
"$CTL" remap --hub-config "$W/hub.yaml" --source demo --dry-run >"$W/dry.out" 2>"$W/dry.err" \
    || fail "remap --dry-run: $(cat "$W/dry.err")"
grep -q "remap demo (dry run: nothing written): 3 record(s) read, 3 changed, 0 could not be mapped now" "$W/dry.out" \
    || fail "dry run: $(cat "$W/dry.out")"
grep -q "occurred_at: 3" "$W/dry.out" || fail "dry run by field: $(cat "$W/dry.out")"
[ "$(q "SELECT count(*) FROM events")" = "$events_before" ] || fail "the dry run wrote events"
[ "$(q "SELECT count(*) FROM fix_runs")" = 0 ] || fail "the dry run wrote an audit row"
[ "$(st D-1)" = "2024-03-04 10:15 received 2024-03-10 00:00" ] || fail "the dry run moved D-1"
ok "remap --dry-run counts the changes and writes nothing"

"$CTL" remap --hub-config "$W/hub.yaml" --source demo >"$W/r1.out" 2>"$W/r1.err" || fail "remap: $(cat "$W/r1.err")"
grep -q "3 record(s) read, 3 changed, 0 could not be mapped now" "$W/r1.out" || fail "remap: $(cat "$W/r1.out")"
grep -q "due_at: 2" "$W/r1.out" || fail "remap by field (due_at): $(cat "$W/r1.out")"
grep -q "correction events: 3 written, 0 duplicate(s), 0 refused" "$W/r1.out" || fail "remap: $(cat "$W/r1.out")"
[ "$(q "SELECT count(*) FROM events WHERE kind = 'correction' AND event_id LIKE 'remap:%'")" = 3 ] \
    || fail "expected 3 correction events"
[ "$(st D-1)" = "2024-03-04 09:15 received 2024-03-09 23:00" ] || fail "D-1 after remap: $(st D-1)"
[ "$(st D-2)" = "2024-07-04 07:00 in_progress 2024-07-09 22:00" ] || fail "D-2 after remap: $(st D-2)"
[ "$(st D-3)" = "2024-03-06 15:30 resolved -" ] || fail "D-3 after remap: $(st D-3)"
# the wrong events are still in the timeline (append-only); the corrections come after them
[ "$(q "SELECT count(*) FROM events WHERE kind <> 'correction'")" = 4 ] || fail "the original events must stay"
[ "$(q "SELECT count(*) FROM requests r JOIN events e ON e.id = r.status_event_id WHERE e.kind = 'correction'")" = 3 ] \
    || fail "each request's state must come from its correction"
[ "$(q "SELECT count(*) FROM fix_runs WHERE command = 'remap' AND run_by = 'civibusctl' AND source = 'demo'
         AND (counts->>'written')::int = 3 AND (counts->'by_field'->>'occurred_at')::int = 3")" = 1 ] \
    || fail "audit row: $(q "SELECT counts FROM fix_runs")"
ok "remap writes correction events; the requests' times are right (earlier than the wrong ones)"

"$CTL" remap --hub-config "$W/hub.yaml" --source demo >"$W/r2.out" 2>"$W/r2.err" || fail "remap 2: $(cat "$W/r2.err")"
grep -q "3 record(s) read, 0 changed, 0 could not be mapped now" "$W/r2.out" || fail "second remap: $(cat "$W/r2.out")"
[ "$(q "SELECT count(*) FROM events")" = $((events_before + 3)) ] || fail "the second remap wrote events"
ok "a second remap writes nothing"

# re-dropping the file changes nothing (same event ids, same hashes)
replay demo "$W/in.jsonl"
[ "$(q "SELECT count(*) FROM events")" = $((events_before + 3)) ] || fail "re-dropping the file added events"
[ "$(st D-1)" = "2024-03-04 09:15 received 2024-03-09 23:00" ] || fail "re-drop moved D-1: $(st D-1)"
# a later ordinary event moves the request on, compared with the corrected time (10:00Z is
# later than the corrected 09:15Z, earlier than the wrong 10:15Z)
echo '{"id": "D-1", "version": 2, "type": "encombrants", "statut": "EN_COURS", "canal": "TEL", "date": "04/03/2024 11:00", "objet": "a", "usager": {"id": "U-1", "nom": "NOMUN"}}' >"$W/next.jsonl"
replay demo "$W/next.jsonl"
[ "$(st D-1)" = "2024-03-04 10:00 in_progress -" ] || fail "a later event after the correction: $(st D-1)"
ok "after a correction the ordinary rule applies: a later event moves the request on"

# --since: only records at or after the date
"$CTL" remap --hub-config "$W/hub.yaml" --source demo --since 2024-07-01 --dry-run >"$W/since.out" 2>&1 \
    || fail "remap --since: $(cat "$W/since.out")"
grep -q "1 record(s) read, 0 changed" "$W/since.out" || fail "remap --since: $(cat "$W/since.out")"

# a mapping that no longer maps a record: counted, nothing written
hub_stop
grep -v 'TRAITE: resolved' "$ROOT/deploy/mappings/demo.yaml" >"$M/demo.yaml"
"$CTL" remap --hub-config "$W/hub.yaml" --source demo >"$W/r3.out" 2>"$W/r3.err" || fail "remap 3: $(cat "$W/r3.err")"
grep -q "3 record(s) read, 0 changed, 1 could not be mapped now" "$W/r3.out" || fail "unmapped: $(cat "$W/r3.out")"
grep -q "unmapped_value: 1" "$W/r3.out" || fail "unmapped by reason: $(cat "$W/r3.out")"
grep -qE "NOMUN|NOMDEUX" "$W/r1.out" "$W/r2.out" "$W/r3.out" && fail "remap printed personal data"
ok "a record the current mapping cannot map is counted with its reason, and nothing is written"
