#!/usr/bin/env bash
# tests/run.sh [all|unit|valgrind|chaos] — the test runner behind `make test`.
#
#   all       build; unit tests (cmocka) and integration tests (tests/it/*.sh) against a
#             throwaway PostgreSQL; then the same again built with ASan+UBSan (SAN=1)
#   unit      unit tests only (normal build)
#   valgrind  unit tests under valgrind (leaks are errors)
#   chaos     the long crash test (CHAOS=long: 10 hub kills, 1,000,000 events)
#
# Each unit test (one process per test: tests/unit/cv_test.h) and each integration script
# counts once. The last line is "N passed, N failed".
# The PostgreSQL cluster lives in a fresh temporary folder and is stopped on every exit.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
mode=${1:-all}
passed=0 failed=0 failures=()
TMP=$(mktemp -d /tmp/civibus-test.XXXXXX)
chmod 755 "$TMP"
export CIVIBUS_TEST_TMP=$TMP PG_DIR=$TMP/pg

cleanup() {
    # stray processes of ours, then the cluster
    pkill -f "$TMP/" 2>/dev/null
    [ -d "$TMP/pg" ] && bash deploy/pgctl.sh stop --purge "$TMP/pg" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

record() {  # name rc logfile
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); echo "PASS $1"
    else
        failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1 (exit $2)"
        tail -n 40 "$3" | sed 's/^/    | /'
    fi
}

build() {  # SAN value
    make -s -j2 SAN="$1" all tests-bin >"$TMP/build-$1.log" 2>&1
    local rc=$?
    record "build (SAN=$1)" $rc "$TMP/build-$1.log"
    return $rc
}

start_pg() {
    [ -d "$TMP/pg" ] && return 0
    mkdir -p "$TMP/pg"
    if ! bash deploy/pgctl.sh start "$TMP/pg" >"$TMP/pg.log" 2>&1; then
        record "postgresql start" 1 "$TMP/pg.log"; return 1
    fi
    eval "$(bash deploy/pgctl.sh env "$TMP/pg")"
}

# Each unit test in a process of its own, under its own timeout (tests/unit/cv_test.h):
# the program lists its tests, then runs once per test name. A test that hangs or
# crashes is named; the others still run.
unit_tests() {  # build dir, wrapper...
    local dir=$1; shift
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] && [ -f "$t" ] || continue
        local prog; prog=$(basename "$t")
        local names; names=$("$t" --list 2>"$TMP/$prog.list.err") && [ -n "$names" ] || {
            record "unit $prog --list${SANTAG:-}" 1 "$TMP/$prog.list.err"; continue; }
        for name in $names; do
            local log="$TMP/$prog.$name${SANTAG:-}.log"
            timeout "${UNIT_TIMEOUT:-300}" "$@" "$t" "$name" >"$log" 2>&1
            local rc=$?
            [ $rc -eq 124 ] && echo "timed out after ${UNIT_TIMEOUT:-300} s" >>"$log"
            record "unit $prog $name${SANTAG:-}" $rc "$log"
        done
    done
}

it_tests() {  # build dir, bin dir
    export BUILD=$1 BIN=$2
    for t in tests/it/*.sh; do
        [ -f "$t" ] || continue
        case "$(basename "$t")" in lib.sh|*_lib.sh) continue ;; esac
        if [ -n "${SANTAG:-}" ] && grep -q '^# san: skip' "$t"; then continue; fi
        local name; name="it $(basename "$t" .sh)${SANTAG:-}"
        local log="$TMP/it-$(basename "$t" .sh)${SANTAG:-}.log"
        local start=$SECONDS
        timeout 900 bash "$t" >"$log" 2>&1
        local rc=$?
        echo "    ($((SECONDS - start)) s)"
        record "$name" $rc "$log"
    done
}

case "$mode" in
all)
    build 0 && start_pg && { unit_tests build; it_tests build bin; }
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    SANTAG=" [asan+ubsan]"
    build 1 && start_pg && { unit_tests build-san; it_tests build-san build-san/bin; }
    ;;
unit)
    start_pg && unit_tests build
    ;;
valgrind)
    start_pg && unit_tests build valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=99 --suppressions=tests/valgrind.supp --quiet
    ;;
chaos)
    start_pg || exit 1
    export BUILD=build BIN=bin CHAOS=long
    timeout 5400 bash tests/it/crash_kill9.sh >"$TMP/chaos.log" 2>&1
    record "chaos (long crash test)" $? "$TMP/chaos.log"
    ;;
*)
    echo "usage: tests/run.sh [all|unit|valgrind|chaos]" >&2; exit 2 ;;
esac

echo
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
