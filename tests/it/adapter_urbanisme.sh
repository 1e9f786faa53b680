#!/usr/bin/env bash
# The urbanisme adapter end to end: the ADS software's export folder
# (tests/sim/urbanisme.py) -> `civibus-adapter run` with adapters/urbanisme/adapter.yaml
# (file-drop driver, CSV and XML) -> hub with adapters/urbanisme/mapping.yaml -> PostgreSQL.
#   1. exports written under temporary names then renamed, over time: every record of the
#      good files stored exactly once (ids compared; two exports overlap), the decision
#      dated 30 February dead-lettered, the truncated CSV and XML moved to error/ with a
#      reason naming the line and none of their records stored, the good files in done/,
#      the unfinished temporary file left alone; Windows-1252 text intact; due dates =
#      filing date + the legal time limit of the dossier's kind (checked in Python);
#      "Dupont / Jean Pierre" stored as this software writes him; no personal data in
#      the adapter's log
#   2. kill -9 in the middle of a 20,000-row export, restart: every record stored once,
#      and the restart resumed inside the file (it did not submit the file again)
. "$(dirname "$0")/lib.sh"
MAP=$ROOT/adapters/urbanisme/mapping.yaml
SIM=$ROOT/tests/sim/urbanisme.py
ADA_PID=
ada_kill() { [ -n "$ADA_PID" ] && { kill -9 "$ADA_PID" 2>/dev/null; wait "$ADA_PID" 2>/dev/null; }; ADA_PID=; }
at_exit "ada_kill"

it_setup adapter_urbanisme "urbanisme:$MAP"
INBOX=$W/exports
mkdir -p "$INBOX"

# The adapter config: the test's hub and sources sections, then the driver section of
# adapters/urbanisme/adapter.yaml pointed at the test's folder, polling every 100 ms.
cp "$W/adapter.yaml" "$W/adapter-run.yaml"
sed -n '/^driver:/,$p' "$ROOT/adapters/urbanisme/adapter.yaml" | sed -E \
    -e "s|^(  inbox:).*|\1 $INBOX|" -e '/^  (done_dir|error_dir):/d' \
    -e 's|^(  poll_ms:).*|\1 100|' >>"$W/adapter-run.yaml"
grep -q "inbox: $INBOX" "$W/adapter-run.yaml" || fail "inbox not rewritten"

ada_start() {
    "$ADAPTER" run --config "$W/adapter-run.yaml" >>"$W/adapter.log" 2>&1 &
    ADA_PID=$!
}

ada_stop() {
    kill -TERM "$ADA_PID" 2>/dev/null
    wait "$ADA_PID"
    local rc=$?
    ADA_PID=
    [ "$rc" -eq 0 ] || fail "adapter exit $rc on SIGTERM"
}

events() { q "select count(*) from events where source = 'urbanisme'"; }

# wait_until SECONDS CONDITION... — polls the condition every 0.2 s
wait_until() {
    local limit=$1 i; shift
    for i in $(seq 1 $((limit * 5))); do
        "$@" && return 0
        kill -0 "$ADA_PID" 2>/dev/null || { tail -n 20 "$W/adapter.log" >&2; fail "the adapter exited"; }
        sleep 0.2
    done
    return 1
}

# no export left in the folder (the unfinished temporary file aside)
inbox_empty() { [ -z "$(find "$INBOX" -maxdepth 1 -type f -name '[!.]*' -print -quit)" ]; }

hub_start
ada_start

# ---- 1. the day's exports --------------------------------------------------------------
python3 "$SIM" --out "$INBOX" --scenario it --interval-ms 300 --chunk-ms 80 --seed 7 \
    --expect "$W/expected.txt" --dead "$W/dead.txt" --max-seconds 60 >"$W/sim.out" 2>"$W/sim.err" \
    || fail "simulator: $(cat "$W/sim.err")"
head -n 1 "$W/sim.out" | grep -qx ready || fail "simulator did not start"
N=$(wc -l <"$W/expected.txt")
[ "$N" -gt 50 ] || fail "the simulator expects only $N events"
stored_all() { [ "$(events)" -ge "$N" ] && inbox_empty && [ "$(q "select count(*) from dead_letters")" -ge 1 ]; }
wait_until 60 stored_all || fail "after 60 s: $(events) of $N events; inbox: $(ls "$INBOX")"
q "select event_id from events where source = 'urbanisme' order by 1" >"$W/stored.txt"
LC_ALL=C sort "$W/expected.txt" >"$W/expected.sorted"
LC_ALL=C sort "$W/stored.txt" >"$W/stored.sorted"
cmp -s "$W/expected.sorted" "$W/stored.sorted" \
    || fail "stored events differ from the expected ones: $(diff "$W/expected.sorted" "$W/stored.sorted" | head -n 5)"
ok "$N events stored, each once, from 3 overlapping CSV exports and 2 XML exports"

[ "$(q "select count(*) || ' ' || min(reason) from dead_letters where source = 'urbanisme'")" = "1 bad_date" ] \
    || fail "dead letters: $(q "select reason, detail from dead_letters")"
q "select detail from dead_letters" | grep -q "occurred_at: the value at path 'date_signature'" \
    || fail "dead letter detail: $(q "select detail from dead_letters")"
ok "the decision signed on 30 February is dead-lettered (bad_date)"

for f in dossiers-20240315.csv dossiers-20240316.csv dossiers-20240317.csv arretes-20240318.xml arretes-20240319.xml; do
    [ -f "$INBOX/done/$f" ] || fail "$f is not in done/ ($(ls "$INBOX/done"))"
done
[ -f "$INBOX/error/dossiers-20240319.csv" ] || fail "the truncated CSV is not in error/"
grep -qx "line 5: the file ends inside the quoted field opened at line 4 (a truncated file?)" \
    "$INBOX/error/dossiers-20240319.csv.reason" || fail "reason: $(cat "$INBOX/error/dossiers-20240319.csv.reason")"
[ -f "$INBOX/error/arretes-20240322.xml" ] || fail "the truncated XML is not in error/"
grep -Eq "^line [0-9]+: (unclosed token|no element found|not well-formed)" "$INBOX/error/arretes-20240322.xml.reason" \
    || fail "XML reason: $(cat "$INBOX/error/arretes-20240322.xml.reason")"
[ "$(q "select count(*) from events where source_record_id = 'PA 075056 24 00112'")" = 0 ] \
    || fail "records of the truncated CSV were stored"
[ -f "$INBOX/.export-999.tmp" ] || fail "the unfinished temporary file was touched"
ok "good files in done/, truncated CSV and XML in error/ with their line, none of their rows stored"

# Windows-1252 and UTF-8 exports give the same text
[ "$(q "select count(*) from source_records where summary like '%œil-de-bœuf%'")" -gt 0 ] || fail "œ lost"
[ "$(q "select count(*) from source_records where summary like '%450 000 €)%'")" -gt 0 ] || fail "€ lost"
[ "$(q "select count(*) from source_records where summary like '%d’une maison individuelle « côté jardin »%'")" -gt 0 ] \
    || fail "’ « » lost"
[ "$(q "select count(*) from source_records where summary like '%Pièces complémentaires : plan de masse; notice%'")" -gt 0 ] \
    || fail "a quoted line break lost"
ok "accents, œ, €, ’, « » and quoted line breaks intact"

# the same person as this software writes him
[ "$(q "select identity->>'family_name' || '/' || (identity->>'given_names') || '/' || (identity->>'birth_date')
         || '/' || (identity->>'phone') || '/' || (identity->>'email')
        from citizen_sources where source = 'urbanisme' and source_citizen_id = 'PET-00412'")" \
    = "Dupont/Jean Pierre/1971-05-12/+33 6 12 34 56 78/jp.dupont@example.fr" ] \
    || fail "Dupont: $(q "select identity from citizen_sources where source_citizen_id = 'PET-00412'")"
ok "Dupont / Jean Pierre, born 12/05/1971, +33 6 12 34 56 78, stored as the ADS software writes him"

# due dates and occurred_at of every CSV row, recomputed in Python from the files read
q "select event_id || '	' || to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || '	'
     || coalesce(to_char(due_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-')
   from events where kind = 'dossier_urbanisme'" >"$W/dates.txt"
python3 - "$INBOX/done" "$W/dates.txt" <<'PY' || fail "dates differ (see above)"
import csv, io, sys, os, calendar
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
paris = ZoneInfo("Europe/Paris")
months = {"DP": 1, "DPMI": 1, "PCMI": 2, "PC": 3, "PA": 3, "PD": 2, "CUA": 1, "CUB": 2}
stored = {}
for line in open(sys.argv[2], encoding="utf-8"):
    eid, occ, due = line.rstrip("\n").split("\t")
    stored[eid] = (occ, due)
def utc(dt):
    return dt.replace(tzinfo=paris).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
checked, bad = 0, 0
for name in sorted(os.listdir(sys.argv[1])):
    if not name.endswith(".csv"):
        continue
    raw = open(os.path.join(sys.argv[1], name), "rb").read()
    text = raw[3:].decode("utf-8") if raw.startswith(b"\xef\xbb\xbf") else raw.decode("cp1252")
    for row in csv.DictReader(io.StringIO(text, newline=""), delimiter=";"):
        eid = "%s|%s|%s" % (row["N° dossier"], row["État"], row["Date état"])
        filed = datetime.strptime(row["Date dépôt"], "%d/%m/%Y")
        m = filed.month - 1 + months[row["Nature"].upper()]
        y, m = filed.year + m // 12, m % 12 + 1
        due = filed.replace(year=y, month=m, day=min(filed.day, calendar.monthrange(y, m)[1]))
        want = (utc(datetime.strptime(row["Date état"], "%d/%m/%Y %H:%M")), utc(due))
        checked += 1
        if stored.get(eid) != want:
            bad += 1
            print("event %s: stored %s, expected %s" % (eid, stored.get(eid), want))
print("%d rows checked" % checked)
sys.exit(1 if bad or checked == 0 else 0)
PY
ok "due dates (DP 1 month, PCMI 2, PC 3, CUa 1, CUb 2...) and Paris times converted to UTC"

if grep -Eqi "dupont|jean pierre|12 34 56 78|example\.fr|véranda|PET-00" "$W/adapter.log"; then
    fail "personal data in the adapter's log: $(grep -Ei "dupont|jean pierre|12 34 56 78|example\.fr|PET-00" "$W/adapter.log" | head -n 2)"
fi
ok "no personal data in the adapter's log"

# ---- 2. kill -9 in the middle of a big export ------------------------------------------
BIG=20000
base=$(events)
python3 "$SIM" --out "$INBOX" --scenario big --records $BIG --chunk-ms 0 --expect "$W/big.txt" \
    --max-seconds 60 >"$W/sim-big.out" 2>"$W/sim.err" || fail "simulator: $(cat "$W/sim.err")"
# kill once 2,000 rows are stored AND the adapter has made some of their ACKs durable
# (its spool's settled.log changed): a kill between the two would rightly resend them all
settled() { stat -c %s "$W/spool/urbanisme/settled.log" 2>/dev/null || echo 0; }
settled0=$(settled)
mid() { [ "$(events)" -ge $((base + 2000)) ] && [ "$(settled)" != "$settled0" ]; }
wait_until 60 mid || fail "the big export is not being stored and settled: $(events) events"
ada_kill
at=$(events)
[ "$at" -lt $((base + BIG)) ] || fail "the adapter finished the file before it could be killed"
[ -f "$INBOX/dossiers-20240430-reprise.csv" ] || fail "the big file left the inbox before it was settled"
ok "adapter killed with SIGKILL at $((at - base)) of $BIG rows"

lines_before=$(wc -l <"$W/adapter.log")
ada_start
big_done() { [ "$(events)" -ge $((base + BIG)) ] && [ -f "$INBOX/done/dossiers-20240430-reprise.csv" ]; }
wait_until 90 big_done || fail "after restart: $(( $(events) - base )) of $BIG rows"
[ "$(events)" = $((base + BIG)) ] || fail "events: $(events), expected $((base + BIG))"
q "select event_id from events where source = 'urbanisme' and event_id like 'PC 075056 24 9%' order by 1" \
    >"$W/big-stored.txt"
LC_ALL=C sort "$W/big.txt" | cmp -s - "$W/big-stored.txt" || fail "the big export's events differ"
tail -n +"$((lines_before + 1))" "$W/adapter.log" >"$W/adapter-restart.log"
resumed=$(sed -n 's/.*file dossiers-20240430-reprise.csv: resuming at record \([0-9]*\) of .*/\1/p' \
    "$W/adapter-restart.log" | head -n 1)
[ -n "$resumed" ] && [ "$resumed" -gt 1 ] || fail "the restart did not resume inside the file: $(grep filedrop "$W/adapter-restart.log" | head -n 3)"
resent=$(sed -n 's/.* \([0-9]*\) unsettled records from a previous run will be sent first.*/\1/p' \
    "$W/adapter-restart.log" | head -n 1)
resent=${resent:-0}
[ $((resent + BIG - resumed + 1)) -lt "$BIG" ] \
    || fail "the restart sent $resent spooled + rows $resumed..$BIG: the whole file again"
ok "after restart: $BIG rows each once; resumed at row $resumed, $resent spooled records resent (not the file)"

ada_stop
hub_stop
