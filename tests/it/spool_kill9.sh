#!/usr/bin/env bash
# spool_kill9 — kill -9 a process appending to a spool at random moments;
# after each kill, every record it reported as synced must be there, intact,
# its ids never reused and its position never ahead of its records
# (see tests/tools/spool_torture.c for what is checked).
#
#   BUILD=build|build-san bash tests/it/spool_kill9.sh     (from the repo root)
#   SPOOL_KILL9_ROUNDS=n to change the number of kills (default 8)
set -u
BUILD=${BUILD:-build}
ROUNDS=${SPOOL_KILL9_ROUNDS:-8}
TOOL=$BUILD/tools/spool_torture

fail() { echo "spool_kill9: FAIL: $*"; exit 1; }

if [ ! -x "$TOOL" ]; then
    san=; [ "$BUILD" = build-san ] && san=SAN=1
    make -s $san "$TOOL" >/dev/null || fail "cannot build $TOOL"
fi

WORK=$(mktemp -d /tmp/spool_kill9.XXXXXX) || fail "mktemp"
trap 'rm -rf "$WORK"' EXIT
SPOOL=$WORK/spool
PRINTED=$WORK/printed            # complete lines of every run, in order
cuts=0                           # kills that left a torn record to cut

for round in $(seq 1 "$ROUNDS"); do
    out=$WORK/run.$round
    "$TOOL" run "$SPOOL" >"$out" 2>"$WORK/err.$round" &
    pid=$!
    sleep "0.$(( 5 + RANDOM % 55 ))"
    kill -9 "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null     # no "Killed" job notice
    rc=$?
    if [ "$rc" -ne 137 ] && [ "$rc" -ne 0 ]; then
        cat "$WORK/err.$round"
        fail "round $round: spool_torture exited with $rc"
    fi
    # a line cut by the kill has no newline: drop it
    if [ -n "$(tail -c1 "$out")" ]; then head -n -1 "$out"; else cat "$out"; fi >>"$PRINTED"
    if ! report=$("$TOOL" verify "$SPOOL" <"$PRINTED" 2>&1); then
        echo "$report"
        fail "round $round: verify failed after kill -9"
    fi
    case $report in *"cut a torn"*) cuts=$((cuts + 1)) ;; esac
done

[ -s "$PRINTED" ] || fail "spool_torture never synced a batch"
echo "spool_kill9: $ROUNDS kills survived ($cuts left a torn record); last check: ${report#*ok: }"
exit 0
