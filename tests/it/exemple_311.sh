#!/usr/bin/env bash
# The example 311 source end to end (adapters/exemple-311/): a US-style 311 export of
# 2,000 rows written by tests/tools/gen_311.py -> `civibus-adapter run` with
# adapters/exemple-311/adapter.yaml (file-drop driver, CSV with "," and quoted fields) ->
# hub with adapters/exemple-311/mapping.yaml (America/Chicago) -> PostgreSQL:
#   1. the file settles in done/; the counts of events and requests by channel, service,
#      category, status and outcome equal the counts the test computes from the CSV itself
#      (python csv module, the mapping's tables written here again);
#   2. the dirty rows (dates that do not parse or do not exist, unknown statuses) are dead
#      letters with the right reason and field, never their value; the sidecar counts them;
#   3. requested_at, occurred_at and due_at of every row are the Chicago wall-clock time
#      converted to UTC (Python's zoneinfo), and the fixed rows are checked against
#      literal values: both clock changes of 2018 (a gap, a repeated hour), 12:xx AM/PM;
#   4. addresses (commas, quotes) are the request's location, no citizen is created;
#   5. the same file dropped again stores nothing twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adapter_lib.sh"
MAP=$ROOT/adapters/exemple-311/mapping.yaml
GEN=$ROOT/tests/tools/gen_311.py
SRC=exemple-311
N=${N311:-2000}
FILE=sr-export-20181201.csv
it_setup exemple_311 "$SRC:$MAP"
INBOX=$W/exports
mkdir -p "$INBOX"

# the test's hub and sources sections, then the driver section of
# adapters/exemple-311/adapter.yaml pointed at the test's folder, polling every 100 ms
cp "$W/adapter.yaml" "$W/adapter-run.yaml"
sed -n '/^driver:/,$p' "$ROOT/adapters/exemple-311/adapter.yaml" | sed -E \
    -e "s|^(  inbox:).*|\1 $INBOX|" -e '/^  (done_dir|error_dir):/d' \
    -e 's|^(  poll_ms:).*|\1 100|' >>"$W/adapter-run.yaml"
grep -q "inbox: $INBOX" "$W/adapter-run.yaml" || fail "inbox not rewritten"

# drop FILE: written elsewhere, then renamed into the inbox as the 311 system does
drop() { cp "$1" "$INBOX/.$FILE.tmp" && mv "$INBOX/.$FILE.tmp" "$INBOX/$FILE"; }
done_file() { [ -f "$INBOX/done/$1" ]; }
# counts of everything the hub keeps for the source, one line
snapshot() {
    q "select (select count(*) from events where source = '$SRC') || ' ' || (select count(*) from requests)
        || ' ' || (select count(*) from request_sources where source = '$SRC')
        || ' ' || (select count(*) from source_records where source = '$SRC')
        || ' ' || (select count(*) from dead_letters where source = '$SRC')
        || ' ' || (select count(*) from citizens) || ' ' || (select coalesce(max(id), 0) from events)"
}

python3 "$GEN" --rows "$N" --out "$W/$FILE" || fail "generator"
python3 "$GEN" --rows "$N" | cmp -s - "$W/$FILE" || fail "the generator is not deterministic"
[ "$(python3 -c "import csv,sys; print(sum(1 for _ in csv.DictReader(open(sys.argv[1], newline=''))))" "$W/$FILE")" = "$N" ] \
    || fail "the generated file has not $N rows"

hub_start
grep -q "no 'timezone:'" "$W/hub.log" && fail "the hub warns about a timezone the mapping has: $(grep timezone "$W/hub.log")"
ada_start
drop "$W/$FILE"
wait_until 90 done_file "$FILE" || fail "after 90 s the file is not in done/: $(ls -R "$INBOX"); $(q "select count(*) from events")"
ok "$N-row 311 export read and settled, in done/"

# ---- 1-3. what the CSV says, against what PostgreSQL holds -----------------------------
ts() { echo "to_char($1 at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"; }
q "select source_record_id || '	' || coalesce(channel::text, '-') || '	' || coalesce(service, '-')
     || '	' || coalesce(category, '-') || '	' || status::text || '	' || coalesce(outcome::text, '-')
     || '	' || coalesce(outcome_reason, '-') || '	' || coalesce(outcome_ref, '-')
     || '	' || coalesce($(ts requested_at), '-') || '	' || $(ts occurred_at)
     || '	' || coalesce($(ts due_at), '-') || '	' || coalesce(source_channel, '-') || '	' || coalesce(source_status, '-')
   from events where source = '$SRC'" >"$W/events.tsv" || fail "events query"
q "select r.channel::text || '	' || r.service || '	' || r.status::text || '	' || coalesce(r.outcome::text, '-')
   from requests r join request_sources rs on rs.request_id = r.id where rs.source = '$SRC'" >"$W/requests.tsv"
q "select convert_from(payload, 'UTF8')::json->>'SRNumber' || '	' || reason || '	' || coalesce(detail, '')
   from dead_letters where source = '$SRC'" >"$W/dead.tsv" || fail "dead letters query"

python3 - "$W/$FILE" "$W/events.tsv" "$W/requests.tsv" "$W/dead.tsv" <<'PY' || fail "the stored events differ from the file (see above)"
import csv, sys
from collections import Counter
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

chicago = ZoneInfo("America/Chicago")
FMT = "%m/%d/%Y %I:%M:%S %p"
# the mapping's tables, written again (adapters/exemple-311/mapping.yaml)
SERVICE = {"CDOT": "voirie", "Streets and Sanitation": "proprete", "Water Management": "eau",
           "Buildings": "urbanisme", "Police": "tranquillite_publique", "Forestry": "espaces_verts"}
CATEGORY = {"Pothole in Street": "nid_de_poule", "Street Light Out": "eclairage_public",
            "Graffiti Removal": "tag", "Bulk Pickup": "encombrants", "Rodent Baiting": "deratisation",
            "Abandoned Vehicle": "vehicule_abandonne", "Water Leak": "fuite_eau",
            "Building Violation": "infraction_urbanisme", "Noise Complaint": "bruit"}
CHANNEL = {"Phone": "telephone", "Email": "email", "Web": "web", "Walk-in": "guichet",
           "Mail": "courrier", "API": "api", "Internal": "interne", "System": "api"}
STATUS = {"Open": "received", "In Progress": "in_progress", "Pending": "waiting_citizen",
          "Closed": "closed", "Cancelled": "cancelled"}
OUTCOME = {"Fixed": "done", "Completed": "done", "Duplicate": "duplicate",
           "Referred to another agency": "transferred", "No action needed": "no_action",
           "Unable to locate": "no_action", "Invalid request": "refused",
           "Withdrawn by requester": "withdrawn"}
DATES = [("requested_at", "CreatedDate"), ("occurred_at", "StatusDate"), ("due_at", "DueDate")]

def utc(text):
    local = datetime.strptime(text, FMT)
    return local.replace(tzinfo=chicago).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

def expected(row):
    """(event fields, None) or (None, (reason, detail prefix))"""
    for field, col in DATES:
        if row[col]:
            try:
                datetime.strptime(row[col], FMT)
            except ValueError:
                return None, ("bad_date", "%s: the value at path '%s' " % (field, col))
    if row["SRStatus"] not in STATUS:
        return None, ("unmapped_value", "status: the value at path 'SRStatus' has no entry in 'map' and there is no 'default'")
    res = row["Resolution"]
    return {"channel": CHANNEL[row["MethodReceived"]] if row["MethodReceived"] else "inconnu",
            "service": SERVICE[row["Agency"]], "category": CATEGORY.get(row["SRType"], "autre"),
            "status": STATUS[row["SRStatus"]], "outcome": OUTCOME[res] if res else "-",
            "outcome_reason": res or "-", "outcome_ref": row["DuplicateOf"] or "-",
            "requested_at": utc(row["CreatedDate"]), "occurred_at": utc(row["StatusDate"]),
            "due_at": utc(row["DueDate"]) if row["DueDate"] else "-",
            "source_channel": row["MethodReceived"] or "-", "source_status": row["SRStatus"]}, None

KEYS = ["channel", "service", "category", "status", "outcome", "outcome_reason", "outcome_ref",
        "requested_at", "occurred_at", "due_at", "source_channel", "source_status"]
good, dead = {}, {}
for row in csv.DictReader(open(sys.argv[1], encoding="utf-8", newline="")):
    ev, dl = expected(row)
    if ev:
        good[row["SRNumber"]] = ev
    else:
        dead[row["SRNumber"]] = (dl, row)
stored = {}
for line in open(sys.argv[2], encoding="utf-8"):
    f = line.rstrip("\n").split("\t")
    if f[0] in stored:
        print("FAIL: %s stored twice" % f[0]); sys.exit(1)
    stored[f[0]] = dict(zip(KEYS, f[1:]))
bad = 0
def check(what, want, got):
    global bad
    if want != got:
        bad += 1
        if bad <= 20:
            print("FAIL: %s: expected %s, stored %s" % (what, want, got))

# 1. counts by channel, service, category, status, outcome: events and requests
check("events", len(good), len(stored))
for k in ["channel", "service", "category", "status", "outcome"]:
    check("events by " + k, sorted(Counter(e[k] for e in good.values()).items()),
          sorted(Counter(e[k] for e in stored.values()).items()))
reqs = [l.rstrip("\n").split("\t") for l in open(sys.argv[3], encoding="utf-8")]
for i, k in enumerate(["channel", "service", "status", "outcome"]):
    check("requests by " + k, sorted(Counter(e[k] for e in good.values()).items()),
          sorted(Counter(r[i] for r in reqs).items()))
print("counts: %d events; channels %s; statuses %s; outcomes %s" % (len(stored),
      dict(Counter(e["channel"] for e in stored.values())), dict(Counter(e["status"] for e in stored.values())),
      dict(Counter(e["outcome"] for e in stored.values()))))

# 3. every row's fields and dates, exactly
for sr, ev in good.items():
    if sr in stored:
        check(sr, ev, stored[sr])

# 2. the dirty rows are dead letters, with their reason and field, never their value
got_dead = {}
for line in open(sys.argv[4], encoding="utf-8"):
    sr, reason, detail = line.rstrip("\n").split("\t", 2)
    got_dead[sr] = (reason, detail)
check("dead-lettered rows", sorted(dead), sorted(got_dead))
for sr, ((reason, prefix), row) in dead.items():
    r, d = got_dead.get(sr, ("-", "-"))
    if r != reason or not d.startswith(prefix):
        check("dead letter of " + sr, (reason, prefix + "..."), (r, d))
    for col in ["CreatedDate", "StatusDate", "DueDate", "SRStatus"]:
        if row[col] and row[col] in d:
            check("dead letter of %s holds the value of %s" % (sr, col), "no value", d)
print("dead letters: %s" % dict(Counter(r for r, _ in got_dead.values())))
if bad > 20:
    print("FAIL: ... %d differences in all" % bad)
sys.exit(1 if bad or not good or len(dead) < 5 else 0)
PY
ok "events and requests by channel, service, category, status and outcome = the CSV's counts; every row's dates exact"
ok "the dirty rows are dead letters: $(q "select string_agg(reason || ' ' || n, ', ' order by reason) from (select reason, count(*) n from dead_letters where source = '$SRC' group by 1) t")"

# the dirty rows are the file's last 7 (tests/tools/gen_311.py, DIRTY): their exact details
F="'%m/%d/%Y %I:%M:%S %p'"
sr() { printf 'SR18-%08d' $((N - 7 + $1)); }
cat >"$W/dead.expected" <<EOF
$(sr 1)	bad_date	occurred_at: the value at path 'StatusDate' is not a real date in format $F: day 31 does not exist in April
$(sr 2)	bad_date	requested_at: the value at path 'CreatedDate' does not match format $F: a month (%m) is outside 1-12 at character 1
$(sr 3)	bad_date	occurred_at: the value at path 'StatusDate' does not match format $F: an hour (%I) is outside 1-12 at character 12
$(sr 4)	bad_date	occurred_at: the value at path 'StatusDate' does not match format $F: expected a space before '%p' at character 20 (the end of the text)
$(sr 5)	bad_date	due_at: the value at path 'DueDate' does not match format $F: a month (%m) is outside 1-12 at character 1
$(sr 6)	unmapped_value	status: the value at path 'SRStatus' has no entry in 'map' and there is no 'default'
$(sr 7)	unmapped_value	status: the value at path 'SRStatus' has no entry in 'map' and there is no 'default'
EOF
LC_ALL=C sort "$W/dead.tsv" | diff "$W/dead.expected" - >"$W/dead.diff" || fail "dead letters: $(cat "$W/dead.diff")"
ok "31 April, an ISO date, 13:05 PM, no AM/PM, month 0, two unknown statuses: each its reason, field and place"

REASON=$INBOX/done/$FILE.reason
grep -qx "dead: 7" "$REASON" && grep -qx "reason bad_date: 5" "$REASON" && grep -qx "reason unmapped_value: 2" "$REASON" \
    || fail "the sidecar: $(cat "$REASON" 2>/dev/null)"
grep -q "WARN filedrop: file $FILE: some records did not go in: $N records: $((N - 7)) stored, 0 duplicates, 7 dead-lettered (bad_date 5, unmapped_value 2)" \
    "$W/adapter.log" || fail "the settle line: $(grep "file $FILE" "$W/adapter.log")"
ok "the sidecar and the adapter's log count them: 7 dead-lettered (bad_date 5, unmapped_value 2)"

# the fixed rows against literal values (independent of Python's zone rules)
at() { q "select $(ts requested_at) || ' ' || $(ts occurred_at) from events where source = '$SRC' and source_record_id = 'SR18-0000000$1'"; }
expect_at() {  # row, requested_at occurred_at, why
    [ "$(at "$1")" = "$2" ] || fail "row $1 ($3): stored $(at "$1"), expected $2"
}
expect_at 1 "2018-04-12T16:11:26Z 2018-04-13T19:40:00Z" "11:11:26 AM and 02:40 PM, CDT"
expect_at 2 "2018-03-11T05:30:00Z 2018-03-11T08:15:00Z" "11:30 PM CST the day before the change, 03:15 AM CDT after it"
expect_at 3 "2018-04-12T05:05:00Z 2018-04-12T17:45:10Z" "12:05 AM is 00:05, 12:45:10 PM is 12:45:10"
expect_at 4 "2018-03-11T08:30:00Z 2018-03-11T14:00:00Z" "02:30 AM in the spring gap, read at -06:00"
expect_at 5 "2018-11-04T03:00:00Z 2018-11-04T06:30:00Z" "01:30 AM repeated in the autumn: the first one, CDT"
expect_at 7 "2019-01-01T05:59:59Z 2019-01-01T06:00:00Z" "11:59:59 PM and 12:00:00 AM on New Year's Eve, CST"
[ "$(q "select $(ts occurred_at) from events where source_record_id = 'SR18-00000011'")" = "2018-05-06T05:59:59Z" ] \
    || fail "row 11: 12:59:59 AM"
[ "$(q "select $(ts due_at) from events where source_record_id = 'SR18-00000001'")" = "2018-04-19T16:11:26Z" ] || fail "row 1: due_at"
ok "requested_at and occurred_at exact across both clock changes of 2018 and at 12:xx AM / PM"

# ---- 4. addresses are locations, never citizens -----------------------------------------
[ "$(q "select count(*) from citizens")" = 0 ] || fail "citizens were created: $(q "select count(*) from citizens")"
[ "$(q "select count(*) from events where source = '$SRC' and citizen_id is not null")" = 0 ] || fail "events with a citizen"
[ "$(q "select count(*) from citizen_sources where source = '$SRC'")" = 0 ] || fail "citizen_sources rows"
loc() { q "select coalesce(location::text, 'null') from source_records where source = '$SRC' and source_record_id = 'SR18-$1'"; }
[ "$(q "select location->>'address' || '|' || (location->>'postcode') || '|' || (location->>'lat') || '|' || (location->>'lon')
        from source_records where source_record_id = 'SR18-00000001'")" = '1200 W "Old" Madison St, Apt 3|60622|41.8817|-87.6575' ] \
    || fail "row 1's location: $(loc 00000001)"
[ "$(q "select (location->>'address') || '|' || coalesce(location->>'lat', 'no lat') from source_records where source_record_id = 'SR18-00000003'")" \
    = "63rd & Cottage Grove, NE corner|no lat" ] || fail "row 3's location: $(loc 00000003)"
[ "$(q "select location->>'address' from source_records where source_record_id = 'SR18-00000012'")" = "3900 N Lincoln Ave, Piñata Café" ] \
    || fail "row 12's address (UTF-8): $(loc 00000012)"
[ "$(loc 00000010)" = null ] || fail "row 10 (no address, no coordinates) has a location: $(loc 00000010)"
[ "$(q "select outcome::text || '|' || outcome_reason || '|' || outcome_ref from requests r join request_sources rs on rs.request_id = r.id
        where rs.source = '$SRC' and rs.source_record_id = 'SR18-00000006'")" = "duplicate|Duplicate|SR18-00000001" ] \
    || fail "row 6: the duplicate of row 1"
ok "addresses with commas, quotes and accents are the requests' locations (empty lat/long left out); no citizen created"
if grep -Eq "Madison|Cottage Grove|Sheridan" "$W/adapter.log" "$W/hub.log"; then
    fail "an address in a log: $(grep -Eh "Madison|Cottage Grove|Sheridan" "$W/adapter.log" "$W/hub.log" | head -n 2)"
fi
ok "no address in the adapter's or the hub's log"

# ---- 5. the same file dropped again: nothing stored twice ------------------------------
before=$(snapshot)
drop "$W/$FILE"
wait_until 90 done_file "${FILE%.csv}-2.csv" || fail "the file dropped again is not in done/: $(ls "$INBOX" "$INBOX/done")"
[ "$(snapshot)" = "$before" ] || fail "dropping the file again changed the store: $before -> $(snapshot)"
grep -q "file $FILE: .*$N records: 0 stored, $((N - 7)) duplicates, 7 dead-lettered.*the same content as $FILE, settled before" \
    "$W/adapter.log" || fail "the second settle line: $(grep "file $FILE" "$W/adapter.log" | tail -n 1)"
ok "the same file dropped again: nothing stored twice (events, requests, dead letters: $before)"

ada_stop
hub_stop || fail "hub exit on SIGTERM"
