#!/usr/bin/env bash
# The file side tells the truth (issue 19, item 5): `civibus-adapter run` with the
# file-drop driver reports, for each settled file, how many of its records went in and
# why the others did not, from the hub's ACKs and NACKs.
#   1. a good file: INFO "5 stored, 0 duplicates, 0 dead-lettered", done/, no sidecar
#   2. a partly dead file (2 rows with a bad date): WARN with the counts and bad_date 2,
#      done/ with <name>.reason giving the counts
#   3. a file whose every record is dead-lettered (a required column missing): error/,
#      not done/, with <name>.reason giving the counts and missing_field 4, and a WARN
#   4. a comma-separated file read with the default ';': WARN with the header hint,
#      error/ at once, none of its rows submitted to the hub; a tab header alone too
#   5. the same good file dropped again: 0 stored, 5 duplicates; a next export that
#      repeats its lines and adds two: 2 stored, 5 duplicates (the hub's ACKs say which)
#   6. metrics_file: the same counts, per source, outcome and reason code
#   7. no value read from the files in the adapter's log
. "$(dirname "$0")/lib.sh"
ADA_PID=
ada_kill() { [ -n "$ADA_PID" ] && { kill -9 "$ADA_PID" 2>/dev/null; wait "$ADA_PID" 2>/dev/null; }; ADA_PID=; }
at_exit "ada_kill"

# a small mapping: id, statut and date are required (date as dd/mm/yyyy hh:mm)
MAPDIR=$(mktemp -d /tmp/it-filedrop-map.XXXXXX)
at_exit "rm -rf '$MAPDIR'"
cat >"$MAPDIR/mapping.yaml" <<'EOF'
mapping_version: 1
source: fdt
timezone: Europe/Paris
rules:
  - kind: demande_test
    fields:
      source_record_id: {path: id}
      event_id: {join: [id, date]}
      request_ref: {path: id}
      service: {const: dechets}
      category: {const: autre}
      channel: {const: web}
      status: {path: statut, case: upper, map: {RECU: received, CLOS: closed}}
      occurred_at: {path: date, format: "%d/%m/%Y %H:%M"}
EOF
it_setup filedrop_truth "fdt:$MAPDIR/mapping.yaml"
INBOX=$W/inbox
mkdir -p "$INBOX"
cp "$W/adapter.yaml" "$W/adapter-run.yaml"
cat >>"$W/adapter-run.yaml" <<EOF
driver:
  kind: filedrop
  source: fdt
  inbox: $INBOX
  poll_ms: 100
  metrics_file: $W/filedrop.prom
  csv:
    match: ["*.csv"]
EOF

"$HUB" --config "$W/hub.yaml" --check-config >/dev/null 2>"$W/check.err" || fail "hub config: $(cat "$W/check.err")"
hub_start
"$ADAPTER" run --config "$W/adapter-run.yaml" >>"$W/adapter.log" 2>&1 &
ADA_PID=$!

events() { q "select count(*) from events where source = 'fdt'"; }
dead() { q "select count(*) from dead_letters where source = 'fdt'"; }

# drop NAME CONTENT — written under a temporary name, then renamed (as exporters do)
drop() { printf '%s' "$2" >"$INBOX/.$1.tmp" && mv "$INBOX/.$1.tmp" "$INBOX/$1"; }

# wait_file PATH — the file appears within 20 s
wait_file() {
    local i
    for i in $(seq 1 100); do
        [ -f "$1" ] && return 0
        kill -0 "$ADA_PID" 2>/dev/null || { tail -n 20 "$W/adapter.log" >&2; fail "the adapter exited"; }
        sleep 0.2
    done
    tail -n 20 "$W/adapter.log" >&2
    fail "no $1 after 20 s (inbox: $(ls "$INBOX"))"
}

# log_line LEVEL FILE — the adapter's settle line about FILE at LEVEL
log_line() { grep -E "$1 .*file $2: " "$W/adapter.log" | grep -E "moved to" | tail -n 1; }

# expect_line LEVEL FILE TEXT — the last settle line about FILE is at LEVEL and holds TEXT
expect_line() {
    local line; line=$(log_line "$1" "$2")
    echo "$line" | grep -q -- "$3" || fail "$2: '$line' is not '$1 ... $3' ($(grep "$2" "$W/adapter.log"))"
}

# sidecar_has PATH LINE... — the sidecar holds each of these lines
sidecar_has() {
    local side=$1 want; shift
    [ -f "$side" ] || fail "no $side"
    for want in "$@"; do grep -qxF -- "$want" "$side" || fail "$side lacks '$want': $(cat "$side")"; done
}

GOOD='id;statut;date
G-1;RECU;01/03/2024 10:00
G-2;RECU;01/03/2024 10:05
G-3;CLOS;01/03/2024 10:10
G-4;RECU;01/03/2024 10:15
G-5;CLOS;01/03/2024 10:20
'

# ---- 1. a good file --------------------------------------------------------------------
drop good.csv "$GOOD"
wait_file "$INBOX/done/good.csv"
expect_line INFO good.csv "5 records: 5 stored, 0 duplicates, 0 dead-lettered; moved to $INBOX/done/good.csv"
[ ! -f "$INBOX/done/good.csv.reason" ] || fail "a good file got a sidecar: $(cat "$INBOX/done/good.csv.reason")"
[ "$(events)" = 5 ] || fail "$(events) events after the good file"
ok "a good file: INFO 5 stored, 0 duplicates, 0 dead-lettered; done/, no sidecar"

# ---- 2. a partly dead file ---------------------------------------------------------------
drop partly.csv 'id;statut;date
P-1;RECU;02/03/2024 10:00
P-2;RECU;30/02/2024 10:05
P-3;CLOS;02/03/2024 10:10
P-4;RECU;31/02/2024 10:15
P-5;CLOS;02/03/2024 10:20
'
wait_file "$INBOX/done/partly.csv"
expect_line WARN partly.csv "some records did not go in: 5 records: 3 stored, 0 duplicates, 2 dead-lettered (bad_date 2)"
sidecar_has "$INBOX/done/partly.csv.reason" "records: 5" "stored: 3" "dead: 2" "reason bad_date: 2"
[ "$(events)" = 8 ] && [ "$(dead)" = 2 ] || fail "$(events) events, $(dead) dead letters after the partly dead file"
ok "a partly dead file: WARN 3 stored, 2 dead-lettered (bad_date 2); done/ with its sidecar"

# ---- 3. every record dead ----------------------------------------------------------------
drop dead.csv 'id;etat;date
D-1;RECU;03/03/2024 10:00
D-2;RECU;03/03/2024 10:05
D-3;CLOS;03/03/2024 10:10
D-4;RECU;03/03/2024 10:15
'
wait_file "$INBOX/error/dead.csv"
[ ! -f "$INBOX/done/dead.csv" ] || fail "the dead file is in done/ too"
sidecar_has "$INBOX/error/dead.csv.reason" "records: 4" "stored: 0" "duplicates: 0" "dead: 4" "refused: 0" \
    "unknown: 0" "reason missing_field: 4" \
    "summary: every record was dead-lettered by the hub: 4 records: 0 stored, 0 duplicates, 4 dead-lettered (missing_field 4)"
expect_line WARN dead.csv "every record was dead-lettered by the hub: 4 records: 0 stored, 0 duplicates, 4 dead-lettered (missing_field 4).*moved to $INBOX/error/dead.csv"
[ "$(dead)" = 6 ] || fail "$(dead) dead letters after the dead file"
ok "every record dead: error/ with dead.csv.reason (4 dead, missing_field 4), WARN"

# ---- 4. a comma file read with ';' --------------------------------------------------------
before=$(q "select count(*) from source_records")
drop comma.csv 'id,statut,date
C-1,RECU,04/03/2024 10:00
C-2,RECU,04/03/2024 10:05
'
wait_file "$INBOX/error/comma.csv"
grep -q "the header reads as one column but contains ','; is \`separator: ','\` missing in the adapter config?" \
    "$INBOX/error/comma.csv.reason" || fail "comma reason: $(cat "$INBOX/error/comma.csv.reason")"
grep -E "WARN .*comma.csv.*the header reads as one column but contains ','" "$W/adapter.log" >/dev/null \
    || fail "no header hint in the log: $(grep comma.csv "$W/adapter.log")"
sleep 0.5
[ "$(q "select count(*) from source_records")" = "$before" ] && [ "$(dead)" = 6 ] \
    || fail "rows of the comma file reached the hub"
drop tabs.csv "$(printf 'id\tstatut\tdate\n')"        # a header alone, tab-separated
wait_file "$INBOX/error/tabs.csv"
grep -q "the header reads as one column but contains a tab; is \`separator: tab\` missing" \
    "$INBOX/error/tabs.csv.reason" || fail "tabs reason: $(cat "$INBOX/error/tabs.csv.reason")"
ok "a comma file with the default separator: the header hint, error/ at once, nothing submitted (a tab header alone too)"

# ---- 5. the same file twice ----------------------------------------------------------------
drop good.csv "$GOOD"
wait_file "$INBOX/done/good-2.csv"
expect_line INFO good.csv "5 records: 0 stored, 5 duplicates, 0 dead-lettered; the same content as good.csv, settled before; moved to $INBOX/done/good-2.csv"
[ "$(events)" = 8 ] || fail "$(events) events after the copy"
ok "the same file dropped twice: 0 stored, 5 duplicates"

# ---- 5b. the next export repeats the last one's lines ---------------------------------------
# not a copy: the hub's ACKs (CIVIBUS/1.1) say which records were stored before
drop next.csv "${GOOD}G-6;RECU;01/03/2024 10:25
G-7;RECU;01/03/2024 10:30
"
wait_file "$INBOX/done/next.csv"
expect_line INFO next.csv "7 records: 2 stored, 5 duplicates, 0 dead-lettered; moved to $INBOX/done/next.csv"
[ "$(events)" = 10 ] || fail "$(events) events after the overlapping file"
ok "an export repeating the last one's lines: 2 stored, 5 duplicates, told per record by the hub"

# ---- 6. metrics ----------------------------------------------------------------------------
M=$W/filedrop.prom
for want in \
    'civibus_filedrop_files_total{source="fdt",outcome="done"} 3' \
    'civibus_filedrop_files_total{source="fdt",outcome="partly_dead"} 1' \
    'civibus_filedrop_files_total{source="fdt",outcome="dead"} 1' \
    'civibus_filedrop_files_total{source="fdt",outcome="unreadable"} 2' \
    'civibus_filedrop_records_total{source="fdt",outcome="stored"} 10' \
    'civibus_filedrop_records_total{source="fdt",outcome="duplicate"} 10' \
    'civibus_filedrop_records_total{source="fdt",outcome="dead"} 6' \
    'civibus_filedrop_records_total{source="fdt",outcome="refused"} 0' \
    'civibus_filedrop_dead_records_total{source="fdt",reason="bad_date"} 2' \
    'civibus_filedrop_dead_records_total{source="fdt",reason="missing_field"} 4'; do
    grep -qxF "$want" "$M" || fail "metrics lack '$want': $(cat "$M")"
done
ok "the metrics file: files by outcome, records stored/duplicate/dead, dead records by reason"

# ---- 7. no values in the log -----------------------------------------------------------------
kill -TERM "$ADA_PID"; wait "$ADA_PID"; rc=$?; ADA_PID=
[ "$rc" -eq 0 ] || fail "adapter exit $rc on SIGTERM"
for v in G-1 P-2 D-3 C-1 RECU 30/02/2024; do
    ! grep -q -- "$v" "$W/adapter.log" || fail "the log holds a value: $v"
done
ok "no value read from the files in the adapter's log"
