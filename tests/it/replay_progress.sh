#!/usr/bin/env bash
# civibus-adapter replay's progress line (adapters/civibus_adapter.c, docs/operations.md):
#   1. --progress with stderr a file: one line a second, "N lines read (P%), A acked, K
#      nacked, R/s (average R/s), T elapsed, ETA ...", lines read and acked never going
#      back, no terminal control characters, the last line at 100.0% with every record
#      acked; the summary on stdout is unchanged;
#   2. stderr a file and no --progress (a service's journal): no progress line at all;
#   3. stderr a terminal (script(1) gives it a pty): the line is drawn in place (\r, erase
#      to the end of line) without --progress, and ends with a newline;
#   4. civibusctl remap and dead-letters replay (api/ctl_progress.c): with --progress their
#      phase's line ends at N/N (100.0%) with the command's counts; nothing on stderr
#      without it; on a terminal the line is drawn in place. stdout is only the summary.
. "$(dirname "$0")/lib.sh"
it_setup replay_progress
gen_demo 300 >"$W/r.jsonl" || fail "gen_demo"
hub_start

# 1. --progress to a file: 300 records at 100/s, about 3 s
replay demo "$W/r.jsonl" --rate 100 --progress --timeout 60
[ "$REPLAY_RC" = 0 ] || fail "replay --progress exited $REPLAY_RC: $(tail -n 5 "$W/replay.log")"
grep -qx "sent 300 acked 300 nacked 0" "$W/replay.out" || fail "stdout: $(cat "$W/replay.out")"
grep '^replay: ' "$W/replay.log" >"$W/p.txt"
n=$(wc -l <"$W/p.txt")
[ "$n" -ge 3 ] || fail "$n progress lines for a 3 s replay: $(cat "$W/replay.log")"
grep -q $'\r\|\033' "$W/replay.log" && fail "terminal control characters in a file"
re='^replay: ([0-9]+) lines read \(([0-9.]+)%\), ([0-9]+) acked, ([0-9]+) nacked, [0-9]+/s \(average [0-9]+/s\), [0-9]+m[0-9]{2}s elapsed(, ETA [0-9]+m[0-9]{2}s)?$'
grep -Evq "$re" "$W/p.txt" && fail "a progress line not in the format: $(grep -Ev "$re" "$W/p.txt" | head -n 2)"
sed -E "s/$re/\1 \3/" "$W/p.txt" | awk '$1 < r || $2 < a { bad = 1 } { r = $1; a = $2 } END { exit bad }' \
    || fail "lines read or acked went back: $(cat "$W/p.txt")"
tail -n 1 "$W/p.txt" | grep -Eq '^replay: 300 lines read \(100\.0%\), 300 acked, 0 nacked, .* elapsed$' \
    || fail "last progress line: $(tail -n 1 "$W/p.txt")"
head -n 1 "$W/p.txt" | grep -q ', ETA ' || fail "no ETA while reading a file of known size: $(head -n 1 "$W/p.txt")"
ok "--progress to a file: $n lines, the last at 100.0% with 300 acked"

# 2. no --progress, stderr not a terminal: nothing
: >"$W/replay.log"
gen_demo 50 1000 >"$W/r2.jsonl"
replay demo "$W/r2.jsonl" --rate 25 --timeout 60
[ "$REPLAY_RC" = 0 ] || fail "replay exited $REPLAY_RC"
grep -q '^replay: .*lines read' "$W/replay.log" && fail "progress on a non-terminal without --progress: $(cat "$W/replay.log")"
ok "no progress line on a non-terminal unless asked"

# 3. a terminal
if command -v script >/dev/null 2>&1; then
    gen_demo 50 2000 >"$W/r3.jsonl"
    script -qec "$ADAPTER replay --config $W/adapter.yaml --source demo --file $W/r3.jsonl --rate 25 --timeout 60" \
        "$W/tty.out" >/dev/null 2>&1 </dev/null || fail "replay on a pty failed: $(tr '\r\033' '^~' <"$W/tty.out" | tail -c 400)"
    grep -q $'\r\033\[Kreplay: 50 lines read (100.0%), 50 acked' "$W/tty.out" \
        || fail "no in-place line on a terminal: $(tr '\r\033' '^~' <"$W/tty.out" | tail -c 400)"
    [ "$(grep -o $'\033\\[Kreplay:' "$W/tty.out" | wc -l)" -ge 2 ] || fail "fewer than two redraws on a terminal"
    ok "on a terminal: the line is redrawn in place, the last one ends the line"
fi

# 4. civibusctl's long commands
CTL=$BINDIR/civibusctl
python3 - "$W/bad.jsonl" <<'PY'
import json, sys
out = open(sys.argv[1], "w")
for i in range(1, 4):
    out.write(json.dumps({"id": "BAD-%d" % i, "version": 1, "type": "encombrants", "statut": "EN_COURS",
                          "canal": "TEL", "date": "99/99/2024 10:15", "objet": "x"}) + "\n")
PY
: >"$W/replay.log"
replay demo "$W/bad.jsonl" --timeout 30
[ "$(q "select count(*) from dead_letters where source = 'demo'")" = 3 ] || fail "expected 3 dead letters: $(q "select string_agg(reason, ',') from dead_letters")"
n=$(q "select count(*) from source_records where source = 'demo' and raw is not null")
"$CTL" remap --hub-config "$W/hub.yaml" --source demo --dry-run --progress >"$W/remap.out" 2>"$W/remap.err" \
    || fail "remap --progress: $(cat "$W/remap.err")"
grep -q "^remap demo (dry run: nothing written): $n record(s) read, 0 changed" "$W/remap.out" || fail "remap stdout: $(cat "$W/remap.out")"
tail -n 1 "$W/remap.err" | grep -Eq "^remap demo: records compared: $n/$n \(100\.0%\), 0 changed, 0 not mapped, [0-9]+/s \(average [0-9]+/s\), [0-9]+m[0-9]{2}s elapsed$" \
    || fail "remap's progress line: $(cat "$W/remap.err")"
"$CTL" remap --hub-config "$W/hub.yaml" --source demo --dry-run >"$W/remap.out" 2>"$W/remap.err" || fail "remap"
[ -s "$W/remap.err" ] && fail "remap writes on a non-terminal without --progress: $(cat "$W/remap.err")"
"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo --dry-run --progress >"$W/dl.out" 2>"$W/dl.err" \
    || fail "dead-letters replay --progress: $(cat "$W/dl.err")"
grep -q "3 dead letter(s) read, 0 stored, 0 duplicate(s) (already stored), 3 still dead" "$W/dl.out" || fail "dead-letters stdout: $(cat "$W/dl.out")"
tail -n 1 "$W/dl.err" | grep -Eq '^dead-letters replay demo: mapped: 3/3 \(100\.0%\), 3 still dead, .* elapsed$' \
    || fail "dead-letters' progress line: $(cat "$W/dl.err")"
"$CTL" dead-letters replay --hub-config "$W/hub.yaml" --source demo --dry-run >"$W/dl.out" 2>"$W/dl.err" || fail "dead-letters replay"
[ -s "$W/dl.err" ] && fail "dead-letters replay writes on a non-terminal without --progress: $(cat "$W/dl.err")"
if command -v script >/dev/null 2>&1; then
    script -qec "$CTL remap --hub-config $W/hub.yaml --source demo --dry-run" "$W/tty2.out" >/dev/null 2>&1 </dev/null \
        || fail "remap on a pty failed"
    grep -q $'\r\033\[Kremap demo: records compared: '"$n/$n" "$W/tty2.out" || fail "remap on a terminal: $(tr '\r\033' '^~' <"$W/tty2.out" | tail -c 300)"
fi
ok "civibusctl remap and dead-letters replay: --progress lines, silent on a non-terminal, in place on a terminal"
