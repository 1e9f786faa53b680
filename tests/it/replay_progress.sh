#!/usr/bin/env bash
# civibus-adapter replay's progress line (adapters/civibus_adapter.c, docs/operations.md):
#   1. --progress with stderr a file: one line a second, "N lines read (P%), A acked, K
#      nacked, R/s (average R/s), T elapsed, ETA ...", lines read and acked never going
#      back, no terminal control characters, the last line at 100.0% with every record
#      acked; the summary on stdout is unchanged;
#   2. stderr a file and no --progress (a service's journal): no progress line at all;
#   3. stderr a terminal (script(1) gives it a pty): the line is drawn in place (\r, erase
#      to the end of line) without --progress, and ends with a newline.
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
