#!/usr/bin/env bash
# Fixing what was stored (docs/operations.md): a forgotten status in a `map:` dead-letters
# every record that has it; once the mapping is fixed, `civibusctl dead-letters replay`
# stores them exactly once (same event id and content hash as the hub would give them), a
# second replay stores nothing, and a dead letter whose payload still does not map stays
# dead with its reason while the others go in. Dead letters written into the table by hand
# (an event id reused with other content, a payload that is no object, another source's)
# overwrite nothing and stay dead. `dead-letters list` never shows a payload.
. "$(dirname "$0")/lib.sh"
CTL=$BINDIR/civibusctl
M=$(mktemp -d /tmp/it-dlreplay-mappings.XXXXXX)
at_exit 'rm -rf "$M"'
# the demo mapping without CLOS in the status map (the status has no default)
grep -v 'CLOS: closed' "$ROOT/deploy/mappings/demo.yaml" >"$M/demo.yaml"
grep -q CLOS "$M/demo.yaml" && fail "CLOS still in the broken mapping"
it_setup dl_replay "demo:$M/demo.yaml"
hub_start

# 6 records: 4 closed (dead-lettered now), 2 in progress; one closed record also has a
# bad birth date, which the fix does not cure; one record's type is not in any map but
# category has a default.
python3 - "$W/in.jsonl" <<'PY'
import json, sys
out = open(sys.argv[1], "w")
for i in range(1, 7):
    r = {"id": "D-%d" % i, "version": 1, "type": "encombrants",
         "statut": "CLOS" if i <= 4 else "EN_COURS", "canal": "TEL",
         "date": "0%d/03/2024 10:15" % i, "echeance": "10/03/2024", "objet": "Demande %d" % i,
         "usager": {"id": "U-%d" % i, "nom": "NOM%d" % i, "prenom": "Prénom", "naissance": "12/05/1971",
                    "email": "u%d@example.fr" % i, "tel": "06 12 34 56 7%d" % i}}
    if i == 4:
        r["usager"]["naissance"] = "31/02/1971"    # no such day: bad_date, fix or not
    out.write(json.dumps(r, ensure_ascii=False) + "\n")
PY
replay demo "$W/in.jsonl"
[ "$(q "SELECT count(*) FROM events WHERE source = 'demo'")" = 2 ] || fail "expected 2 events before the fix"
[ "$(q "SELECT count(*) FROM dead_letters WHERE source = 'demo' AND reason = 'unmapped_value'")" = 4 ] \
    || fail "expected 4 unmapped_value dead letters: $(q "SELECT string_agg(reason, ',') FROM dead_letters")"
[ "$(q "SELECT count(*) FROM dead_letters WHERE source = 'demo'")" = 4 ] || fail "expected 4 dead letters"
ok "a forgotten status dead-letters its records"

# list: counts by reason and the newest ids, never the payload
PGDATABASE=$DB "$CTL" dead-letters list --source demo --limit 2 >"$W/list.out" 2>"$W/list.err" || fail "list: $(cat "$W/list.err")"
grep -q "unmapped_value *4 waiting, 0 replayed" "$W/list.out" || fail "list counts: $(cat "$W/list.out")"
[ "$(grep -c '^  #' "$W/list.out")" = 2 ] || fail "list --limit 2: $(cat "$W/list.out")"
grep -qE "NOM|example\.fr|Demande" "$W/list.out" && fail "list shows personal data"
ok "dead-letters list: counts by reason, newest ids, no payload"

# before the fix, a replay stores nothing and everything stays dead
"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo >"$W/r0.out" 2>"$W/r0.err" \
    || fail "replay before the fix: $(cat "$W/r0.err")"
grep -q "4 dead letter(s) read, 0 stored, 0 duplicate(s) (already stored), 4 still dead" "$W/r0.out" \
    || fail "replay before the fix: $(cat "$W/r0.out")"

# the fix: CLOS: closed is back; the hub restarts with it
hub_stop
cp "$ROOT/deploy/mappings/demo.yaml" "$M/demo.yaml"
hub_start

"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo --dry-run >"$W/dry.out" 2>"$W/dry.err" \
    || fail "dry run: $(cat "$W/dry.err")"
grep -q "would be): 4 dead letter(s) read, 3 stored, 0 duplicate(s) (already stored), 1 still dead" "$W/dry.out" \
    || fail "dry run: $(cat "$W/dry.out")"
[ "$(q "SELECT count(*) FROM events WHERE source = 'demo'")" = 2 ] || fail "the dry run stored events"
[ "$(q "SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL")" = 0 ] || fail "the dry run marked"
ok "dead-letters replay --dry-run says what would go in and writes nothing"

"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo >"$W/r1.out" 2>"$W/r1.err" \
    || fail "replay: $(cat "$W/r1.err")"
grep -q "4 dead letter(s) read, 3 stored, 0 duplicate(s) (already stored), 1 still dead" "$W/r1.out" \
    || fail "replay: $(cat "$W/r1.out")"
grep -q "bad_date: 1" "$W/r1.out" || fail "the record that still does not map: $(cat "$W/r1.out")"
[ "$(q "SELECT count(*) FROM events WHERE source = 'demo'")" = 5 ] || fail "expected 5 events after replay"
[ "$(q "SELECT count(*) FROM requests WHERE status = 'closed'")" = 3 ] || fail "expected 3 closed requests"
[ "$(q "SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL AND replayed_event IN (SELECT id FROM events)")" = 3 ] \
    || fail "expected 3 dead letters marked replayed with their event"
[ "$(q "SELECT reason || '/' || replay_reason FROM dead_letters WHERE replayed_at IS NULL")" = unmapped_value/bad_date ] \
    || fail "the dead letter that stays keeps its row and reason, and the reason of its last replay"
[ "$(q "SELECT count(*) FROM fix_runs WHERE command = 'dead-letters replay' AND run_by = 'civibusctl'
         AND (counts->>'stored')::int = 3")" = 1 ] || fail "audit row"
ok "after the fix, replay stores the 3 records that now map; the 4th stays dead (bad_date)"

# exactly as the hub would: same event id and content hash as a re-dropped file
replay demo "$W/in.jsonl"
[ "$(q "SELECT count(*) FROM events WHERE source = 'demo'")" = 5 ] || fail "re-dropping the file made duplicates"
[ "$(q "SELECT count(*) FROM dead_letters WHERE reason = 'id_reused'")" = 0 ] \
    || fail "the replayed events differ from the hub's (id_reused)"
ok "the replayed events are the hub's own: re-dropping the file adds nothing"

"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo >"$W/r2.out" 2>"$W/r2.err" \
    || fail "second replay: $(cat "$W/r2.err")"
# (the re-dropped file dead-lettered record 4 again, now as bad_date: a second dead letter)
grep -q "2 dead letter(s) read, 0 stored, 0 duplicate(s) (already stored), 2 still dead" "$W/r2.out" || fail "second replay: $(cat "$W/r2.out")"
[ "$(q "SELECT count(*) FROM events WHERE source = 'demo'")" = 5 ] || fail "the second replay stored again"
ok "a second replay stores nothing"

# a dead letter that was not from the mapping (invalid JSON) is never replayed; others are kept
printf '{"id": "D-9", "statut": \n' >"$W/bad.jsonl"
replay demo "$W/bad.jsonl"
[ "$(q "SELECT count(*) FROM dead_letters WHERE reason = 'invalid_json'")" = 1 ] || fail "invalid_json dead letter"
"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo >"$W/r3.out" 2>"$W/r3.err" \
    || fail "third replay: $(cat "$W/r3.err")"
grep -q "2 dead letter(s) read, 0 stored" "$W/r3.out" || fail "invalid_json must not be replayed: $(cat "$W/r3.out")"
[ "$(q "SELECT count(*) FROM dead_letters")" = 6 ] || fail "a dead letter was lost"
"$CTL" dead-letters list --hub-config "$W/hub.yaml" --source demo >"$W/list2.out" || fail "list after"
grep -q "unmapped_value *1 waiting, 3 replayed" "$W/list2.out" || fail "list after: $(cat "$W/list2.out")"
ok "a payload that still does not map stays dead with its reason; nothing else is lost"

# dead letters nobody should trust (written into the table by hand): one whose record
# reuses the event id of a stored event with other content, one whose payload is a JSON
# array, one of another source. A replay overwrites no stored event and touches no other
# source; they stay dead with their reasons.
hash5=$(q "SELECT content_hash FROM events WHERE event_id = 'D-5|1'")
[ -n "$hash5" ] || fail "D-5 version 1 should be stored: $(q "SELECT string_agg(event_id, ',') FROM events")"
q "INSERT INTO dead_letters (source, reason, detail, payload, payload_hash, payload_bytes) VALUES
   ('demo', 'unmapped_value', 'by hand', convert_to('{\"id\": \"D-5\", \"version\": 1, \"type\": \"encombrants\",
     \"statut\": \"CLOS\", \"canal\": \"TEL\", \"date\": \"01/01/2024 10:00\", \"objet\": \"autre\"}', 'UTF8'), 'h1', 1),
   ('demo', 'bad_type', 'by hand', convert_to('[1, 2]', 'UTF8'), 'h2', 1),
   ('other', 'unmapped_value', 'by hand', convert_to('{\"id\": \"X\"}', 'UTF8'), 'h3', 1)" >/dev/null
events_before=$(q "SELECT count(*) FROM events")
"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo >"$W/r5.out" 2>"$W/r5.err" \
    || fail "replay of the hand-made dead letters: $(cat "$W/r5.err")"
grep -q "4 dead letter(s) read, 0 stored, 0 duplicate(s) (already stored), 4 still dead" "$W/r5.out" \
    || fail "hand-made dead letters: $(cat "$W/r5.out")"
grep -q "id_reused: 1" "$W/r5.out" && grep -q "invalid_json: 1" "$W/r5.out" || fail "reasons: $(cat "$W/r5.out")"
[ "$(q "SELECT count(*) FROM events")" = "$events_before" ] || fail "a hand-made dead letter was stored"
[ "$(q "SELECT content_hash FROM events WHERE event_id = 'D-5|1'")" = "$hash5" ] || fail "the stored event changed"
[ "$(q "SELECT replay_reason FROM dead_letters WHERE payload_hash = 'h1'")" = id_reused ] || fail "h1's replay reason"
[ "$(q "SELECT count(*) FROM dead_letters WHERE source = 'other' AND replay_tried_at IS NULL AND replayed_at IS NULL")" = 1 ] \
    || fail "another source's dead letter was touched"
ok "a dead letter reusing a stored event's id, or holding no object, stays dead; nothing stored is overwritten"

"$CTL" dead-letters replay --source demo >/dev/null 2>&1; [ $? = 2 ] || fail "replay without --hub-config: usage"
"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source nosuch >/dev/null 2>&1; [ $? = 2 ] \
    || fail "unknown source: usage"
"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo --reason invalid_json >/dev/null 2>&1; [ $? = 2 ] \
    || fail "--reason invalid_json is not replayable: usage"
"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo --reason date >/dev/null 2>&1; [ $? = 2 ] \
    || fail "--reason date (part of bad_date) is not a reason: usage"
"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo --reason bad_date --dry-run >"$W/r4.out" 2>&1 \
    || fail "--reason bad_date: $(cat "$W/r4.out")"
grep -q "1 dead letter(s) read" "$W/r4.out" || fail "--reason bad_date reads the bad_date one only: $(cat "$W/r4.out")"
ok "usage errors exit 2; --reason filters"
