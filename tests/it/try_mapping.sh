#!/usr/bin/env bash
# civibus-hub --try-mapping SOURCE FILE (issue 19, item 3): a sample export mapped with
# the source's mapping and the adapter's file-drop settings, nothing stored.
#   1. a ';' CSV: counts by category, channel, status and outcome, records, mapped and
#      dead equal to the file's own (computed here by python), each dead-letter reason
#      with its count and the first record's number and line; exit 1 (some dead)
#   2. a ',' CSV read with the default separator: the header hint, exit 1
#   3. an XML export (driver's xml.record, origin object): counts, exit 0
#   4. JSON lines: not JSON, not an object, a bad status: reasons, exit 1
#   5. a US 311 CSV (',' separator, "%m/%d/%Y %I:%M:%S %p" dates, America/Chicago):
#      requested_at, location (lat/lon) and outcome counts, the first event's times
#   6. usage and config errors: exit 2 (unknown source, a bad adapter config key as
#      file:line, a driver of another source, XML without --adapter-config, no file)
#   7. nothing stored: the database has no table at all (the hub never connected), and
#      no value of the files in stderr (nothing logged)
. "$(dirname "$0")/lib.sh"

MAPDIR=$(mktemp -d /tmp/it-try-mapping.XXXXXX)
at_exit "rm -rf '$MAPDIR'"
cat >"$MAPDIR/fr.yaml" <<'EOF'
mapping_version: 1
source: fr
timezone: Europe/Paris
rules:
  - kind: demande
    fields:
      source_record_id: {path: id}
      event_id: {join: [id, date]}
      service: {const: voirie}
      category: {path: categorie, default: autre}
      channel: {path: canal, case: lower, map: {web: web, guichet: guichet, courrier: courrier}}
      status: {path: statut, case: upper, map: {RECU: received, EN_COURS: in_progress, CLOS: closed}}
      occurred_at: {path: date, format: "%d/%m/%Y %H:%M"}
      outcome.code: {path: issue, map: {FAIT: done, DOUBLON: duplicate}}
EOF
cat >"$MAPDIR/us311.yaml" <<'EOF'
mapping_version: 1
source: us311
timezone: America/Chicago
rules:
  - kind: sr
    fields:
      source_record_id: {path: sr}
      event_id: {join: [sr, status, status_date]}
      service: {const: voirie}
      category: {path: type, map: {Pothole: nid_de_poule, Graffiti: tag}, default: autre}
      channel: {path: method, map: {Phone: telephone, Web: web, Internal: interne}, default: inconnu}
      status: {path: status, map: {Open: received, "In Progress": in_progress, Closed: closed}}
      occurred_at: {path: status_date, format: "%m/%d/%Y %I:%M:%S %p"}
      requested_at: {path: created, format: "%m/%d/%Y %I:%M:%S %p"}
      location.lat: {path: lat}
      location.lon: {path: lon}
      outcome.code: {path: resolution, map: {Fixed: done, Duplicate: duplicate}}
    extra: none
EOF
it_setup try_mapping "fr:$MAPDIR/fr.yaml" "us311:$MAPDIR/us311.yaml"
tm() {   # tm OUTNAME ARGS... — runs --try-mapping, stdout in $W/OUTNAME.out, exit code in $RC
    local name=$1; shift
    "$HUB" --config "$W/hub.yaml" --try-mapping "$@" >"$W/$name.out" 2>"$W/$name.err"
    RC=$?
}
mkdir -p "$W/nowhere-inbox-not-created"; rmdir "$W/nowhere-inbox-not-created"
adapter_for() {  # adapter_for SOURCE FILE DRIVER-LINES...: an adapter config with a file-drop driver
    local src=$1 out=$2; shift 2
    { cat "$W/adapter.yaml"; echo "driver:"; echo "  kind: filedrop"; echo "  source: $src"
      echo "  inbox: $W/nowhere-inbox-not-created"; printf '  %s\n' "$@"; } >"$out"
}
adapter_for fr "$W/adapter-fr.yaml" "origin_key: _export" "origin_fields: [format, line]" \
    "csv:" "  match: ['*.csv']" "xml:" "  record: dossier"
adapter_for us311 "$W/adapter-us.yaml" "csv:" "  separator: ','"

# ---- the files, and their own counts ---------------------------------------
python3 - "$W" <<'EOF'
import json, random, sys
W = sys.argv[1]
random.seed(19)
status = {"RECU": "received", "EN_COURS": "in_progress", "CLOS": "closed"}
chan = {"WEB": "web", "Guichet": "guichet", "courrier": "courrier"}
rows, exp = [], {"records": 0, "mapped": 0, "dead": 0, "category": {}, "channel": {}, "status": {},
                 "outcome": {}, "reasons": {}}
def count(k, v): exp[k][v] = exp[k].get(v, 0) + 1
for i in range(1, 61):
    st = random.choice(list(status)); ca = random.choice(list(chan)); cat = random.choice(["nid", "tag", ""])
    date = "%02d/03/2024 %02d:%02d" % (random.randint(1, 28), random.randint(0, 23), random.randint(0, 59))
    issue = random.choice(["", "FAIT", "DOUBLON"])
    fault = random.random()
    exp["records"] += 1
    if fault < 0.1:
        date = "31/04/2024 10:00"; why = "bad_date"
    elif fault < 0.15:
        st = "PERDU"; why = "unmapped_value"
    else:
        why = None
    if why:
        exp["dead"] += 1
        r = exp["reasons"].setdefault(why, {"n": 0, "first": i})
        r["n"] += 1
    else:
        exp["mapped"] += 1
        count("category", cat or "autre"); count("channel", chan[ca]); count("status", status[st])
        count("outcome", {"": "(none)", "FAIT": "done", "DOUBLON": "duplicate"}[issue])
    rows.append(("D-%03d" % i, st, date, ca, cat, issue))
with open(W + "/fr.csv", "w", encoding="utf-8") as f:
    f.write("id;statut;date;canal;categorie;issue\n")
    for r in rows:
        f.write(";".join(r) + "\n")
with open(W + "/comma.csv", "w") as f:
    f.write("id,statut,date,canal,categorie,issue\n")
    for r in rows[:5]:
        f.write(",".join(r) + "\n")
json.dump(exp, open(W + "/fr.expected.json", "w"))
# XML: the good rows only, as attributes and elements
good = [r for r in rows if r[1] in status and not r[2].startswith("31/04")]
with open(W + "/fr.xml", "w", encoding="utf-8") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<export>\n')
    for r in good:
        f.write('  <dossier id="%s" statut="%s"><date>%s</date><canal>%s</canal>%s%s</dossier>\n' % (
            r[0], r[1], r[2], r[3], "<categorie>%s</categorie>" % r[4] if r[4] else "",
            "<issue>%s</issue>" % r[5] if r[5] else ""))
    f.write('</export>\n')
json.dump({"records": len(good), "mapped": len(good), "dead": 0}, open(W + "/fr-xml.expected.json", "w"))
# JSON lines: 3 good, a line that is not JSON, an array, a bad status
with open(W + "/fr.jsonl", "w") as f:
    for r in good[:3]:
        f.write(json.dumps({"id": r[0], "statut": r[1], "date": r[2], "canal": r[3]}) + "\n")
    f.write("{not json\n\n[1, 2]\n")
    f.write(json.dumps({"id": "J-9", "statut": "PERDU", "date": "01/03/2024 10:00", "canal": "web"}) + "\n")
json.dump({"records": 6, "mapped": 3, "dead": 3,
           "reasons": {"invalid_json": {"n": 2, "first": 4}, "unmapped_value": {"n": 1, "first": 6}}},
          open(W + "/fr-jsonl.expected.json", "w"))
# a US 311 export: 12-hour clock, lat/lon sometimes blank, a 13 PM
us = [("SR-1", "04/12/2018 11:11:26 PM", "04/13/2018 12:05:00 AM", "Closed", "Pothole", "Phone", "41.8781", "-87.6298", "Fixed"),
      ("SR-2", "04/12/2018 12:30:00 PM", "04/14/2018 09:00:00 AM", "In Progress", "Graffiti", "Web", "", "", ""),
      ("SR-3", "", "04/14/2018 01:00:00 PM", "Open", "Streetlight", "Internal", "41.9", "-87.7", ""),
      ("SR-4", "04/15/2018 13:00:00 PM", "04/15/2018 01:00:00 PM", "Closed", "Pothole", "Web", "41.8", "-87.6", "Duplicate"),
      ("SR-5", "04/16/2018 08:00:00 AM", "04/17/2018 10:15:00 AM", "Closed", "Pothole", "Web", "41.85", "-87.65", "Duplicate")]
with open(W + "/us311.csv", "w") as f:
    f.write("sr,created,status_date,status,type,method,lat,lon,resolution\n")
    for r in us:
        f.write(",".join(r) + "\n")
json.dump({"records": 5, "mapped": 4, "dead": 1,
           "category": {"nid_de_poule": 2, "tag": 1, "autre": 1},
           "channel": {"telephone": 1, "web": 2, "interne": 1},
           "status": {"closed": 2, "in_progress": 1, "received": 1},
           "outcome": {"done": 1, "duplicate": 1, "(none)": 2},
           "reasons": {"bad_date": {"n": 1, "first": 4}}}, open(W + "/us311.expected.json", "w"))
EOF
[ -s "$W/fr.csv" ] || fail "the test files were not written"

# check_report OUT EXPECTED — the report's counts and reasons are the file's own
cat >"$W/check.py" <<'EOF'
import json, re, sys
out, exp = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
def fail(m): sys.exit("%s: %s\n--- report:\n%s" % (sys.argv[1], m, out))
for k in ("records", "mapped", "dead"):
    m = re.search(r"^%s: +(\d+)$" % k, out, re.M)
    if not m or int(m.group(1)) != exp[k]: fail("%s: %s, expected %d" % (k, m and m.group(1), exp[k]))
for k in ("category", "channel", "status", "outcome"):
    if k not in exp: continue
    m = re.search(r"^by %s:\n((?:  .*\n)*)" % k, out, re.M)
    if not m: fail("no 'by %s:' section" % k)
    got = {l.split()[0]: int(l.split()[1]) for l in m.group(1).splitlines()}
    if got != exp[k]: fail("by %s: %s, expected %s" % (k, got, exp[k]))
for why, r in exp.get("reasons", {}).items():
    m = re.search(r"^  %s: (\d+) records?, e\.g\. record (\d+) \(line (\d+)\): (.+)$" % why, out, re.M)
    if not m: fail("no reason line for %s" % why)
    if int(m.group(1)) != r["n"] or int(m.group(2)) != r["first"]:
        fail("%s: %s records, first %s; expected %d, first %d" % (why, m.group(1), m.group(2), r["n"], r["first"]))
n = len(re.findall(r"^  \S+: \d+ records?, e\.g\.", out, re.M))
if n != len(exp.get("reasons", {})): fail("%d reasons listed, expected %d" % (n, len(exp.get("reasons", {}))))
EOF
check_report() { python3 "$W/check.py" "$1" "$2" || fail "report of $(basename "$1")"; }

# ---- 1. a ';' CSV ------------------------------------------------------------
tm fr-csv fr "$W/fr.csv" --adapter-config "$W/adapter-fr.yaml"
[ "$RC" = 1 ] || fail "some records are dead: exit $RC, expected 1 ($(cat "$W/fr-csv.err"))"
check_report "$W/fr-csv.out" "$W/fr.expected.json"
grep -q "bad_date: .*occurred_at: the value at path 'date' is not a real date" "$W/fr-csv.out" || fail "bad_date detail"
grep -q "unmapped_value: .*status: the value at path 'statut' has no entry in 'map'" "$W/fr-csv.out" || fail "unmapped detail"
[ "$(grep -c '^record [0-9]* (line [0-9]*):$' "$W/fr-csv.out")" = 3 ] || fail "not 3 events printed"
grep -q '"format": "csv"' "$W/fr-csv.out" || fail "the origin object (origin_key) is not in the events"
grep -q "read as csv: separator ';'" "$W/fr-csv.out" || fail "the reading settings are not shown"
[ ! -e "$W/nowhere-inbox-not-created" ] || fail "the driver's inbox was created"
ok "';' CSV: counts, reasons with examples, 3 events, exit 1"

# ---- 2. a ',' CSV read with the default separator ----------------------------
tm comma fr "$W/comma.csv" --adapter-config "$W/adapter-fr.yaml"
[ "$RC" = 1 ] || fail "the hint case: exit $RC, expected 1"
grep -qF "the header reads as one column but contains ','; add \`separator: ','\` to the source's driver settings" \
    "$W/comma.out" || fail "no separator hint: $(cat "$W/comma.out")"
tm comma-nocfg fr "$W/comma.csv"
grep -qF "add \`separator: ','\`" "$W/comma-nocfg.out" || fail "no hint with the driver's defaults"
ok "',' CSV with the default separator: the header hint, exit 1"

# ---- 3. XML -------------------------------------------------------------------
tm fr-xml fr "$W/fr.xml" --adapter-config "$W/adapter-fr.yaml"
[ "$RC" = 0 ] || fail "XML, every record maps: exit $RC ($(cat "$W/fr-xml.out" "$W/fr-xml.err"))"
check_report "$W/fr-xml.out" "$W/fr-xml.expected.json"
grep -q '"format": "xml"' "$W/fr-xml.out" || fail "XML origin"
ok "XML export: every record maps, exit 0"

# ---- 4. JSON lines -------------------------------------------------------------
tm fr-jsonl fr "$W/fr.jsonl"
[ "$RC" = 1 ] || fail "JSON lines: exit $RC, expected 1"
check_report "$W/fr-jsonl.out" "$W/fr-jsonl.expected.json"
grep -q "invalid_json: 2 records, e.g. record 4 (line 4): record is not valid JSON" "$W/fr-jsonl.out" \
    || fail "invalid_json example"
ok "JSON lines: invalid_json and unmapped_value with examples"

# ---- 5. a US 311 export, 12-hour clock, requested_at and location ---------------
tm us us311 "$W/us311.csv" --adapter-config "$W/adapter-us.yaml"
[ "$RC" = 1 ] || fail "us311: exit $RC, expected 1 ($(cat "$W/us.err"))"
check_report "$W/us.out" "$W/us311.expected.json"
grep -qx "requested_at: 3 of 4 events" "$W/us.out" || fail "requested_at count: $(grep requested_at: "$W/us.out")"
grep -qx "location: 3 of 4 events (with lat/lon: 3)" "$W/us.out" || fail "location count"
# SR-1: 11:11:26 PM CDT (-5) is 04:11:26Z the next day; 12:05 AM is five past midnight
grep -q '"requested_at": "2018-04-13T04:11:26Z"' "$W/us.out" || fail "SR-1 requested_at (PM)"
grep -q '"occurred_at": "2018-04-13T05:05:00Z"' "$W/us.out" || fail "SR-1 occurred_at (12:05 AM)"
grep -q '"lat": 41.8781' "$W/us.out" || fail "SR-1 lat"
grep -q "bad_date: 1 record, e.g. record 4 (line 5): requested_at: .*an hour (%I) is outside 1-12" "$W/us.out" \
    || fail "13 PM reason: $(grep bad_date "$W/us.out")"
ok "US 311 CSV: 12-hour clock, requested_at, location and outcome counts"

# ---- 6. usage and config errors: exit 2 ------------------------------------------
tm e1 nosuch "$W/fr.csv"
[ "$RC" = 2 ] && grep -q "no source 'nosuch'" "$W/e1.err" || fail "unknown source: $RC $(cat "$W/e1.err")"
sed 's/^  origin_key: _export/  origin_keys: _export/' "$W/adapter-fr.yaml" >"$W/adapter-bad.yaml"
tm e2 fr "$W/fr.csv" --adapter-config "$W/adapter-bad.yaml"
[ "$RC" = 2 ] && grep -qE "adapter-bad.yaml:[0-9]+: unknown key 'origin_keys'" "$W/e2.err" \
    || fail "bad adapter key: $RC $(cat "$W/e2.err")"
tm e3 fr "$W/us311.csv" --adapter-config "$W/adapter-us.yaml"
[ "$RC" = 2 ] && grep -qE "adapter-us.yaml:[0-9]+: the driver serves source 'us311', not 'fr'" "$W/e3.err" \
    || fail "driver of another source: $RC $(cat "$W/e3.err")"
tm e4 fr "$W/fr.xml"
[ "$RC" = 2 ] && grep -q "needs --adapter-config" "$W/e4.err" || fail "XML without adapter config: $RC"
tm e5 fr "$W/missing.csv"
[ "$RC" = 2 ] && grep -q "missing.csv: No such file" "$W/e5.err" || fail "no file: $RC $(cat "$W/e5.err")"
"$HUB" --config "$W/hub.yaml" --try-mapping fr >/dev/null 2>&1; [ $? = 2 ] || fail "--try-mapping without FILE"
"$HUB" --config "$W/hub.yaml" --adapter-config "$W/adapter-fr.yaml" >/dev/null 2>&1; [ $? = 2 ] \
    || fail "--adapter-config without --try-mapping"
"$HUB" --help | grep -q "personal data" || fail "--help does not say the output holds personal data"
ok "usage and config errors: exit 2 with file:line"

# ---- 7. nothing stored, nothing logged ---------------------------------------------
[ "$(q "select count(*) from pg_tables where schemaname = 'public'")" = 0 ] \
    || fail "the database has tables: the hub connected"
for f in "$W"/fr-csv.err "$W"/fr-xml.err "$W"/fr-jsonl.err "$W"/us.err; do
    grep -qE "D-0|SR-|41\.8|RECU" "$f" && fail "a value of the file in $(basename "$f")"
done
ok "nothing stored (no table in the database), no value on stderr"
