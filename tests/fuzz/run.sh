#!/usr/bin/env bash
# tests/fuzz/run.sh time|runs [TARGET...] — runs the libFuzzer harnesses of tests/fuzz/
# (built by `make fuzz-bin` into build-fuzz/fuzz/), one after the other; `make fuzz` and
# `make fuzz-long` call it.
#
#   time   each target for FUZZ_SECONDS seconds (default 30)
#   runs   each target for FUZZ_RUNS executions (default 1,000,000)
#
# For each target: first its regression inputs (tests/fuzz/<target>/regressions/, each a
# crash found once and fixed) are replayed, then libFuzzer starts from its seed corpus
# (tests/fuzz/<target>/corpus/, read only) and its working corpus (build-fuzz/corpus/
# <target>/, kept between runs), replays both, and fuzzes. Any sanitizer report, failed
# check, leak, timeout (10 s per input) or out-of-memory (2 GiB) fails the target; the
# input is saved under build-fuzz/artifacts/<target>/ and named in the line. One line per
# target, then "N passed, N failed" last; exit 1 when a target failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-time}
shift || true
case "$mode" in
time) budget=(-max_total_time="${FUZZ_SECONDS:-30}") ;;
runs) budget=(-runs="${FUZZ_RUNS:-1000000}") ;;
*)    echo "usage: tests/fuzz/run.sh time|runs [TARGET...]" >&2; exit 2 ;;
esac
B=build-fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in tests/fuzz/*/fuzz_*.c; do
        t=$(basename "$(dirname "$src")")
        targets+=("$t")
    done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ] && export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
passed=0
failed=0
failures=()

fail() {  # TARGET REASON
    echo "FAIL fuzz $1: $2"
    failed=$((failed + 1))
    failures+=("$1")
}

for t in "${targets[@]}"; do
    bin=$B/fuzz/$t
    if [ ! -x "$bin" ]; then
        fail "$t" "no binary $bin (make fuzz-bin)"
        continue
    fi
    work=$B/corpus/$t art=$B/artifacts/$t/ log=$B/logs/$t.log tmp=$B/tmp/$t
    mkdir -p "$work" "$art" "$B/logs" "$tmp"
    rm -f "$art"/*
    : >"$log"
    regs=()
    if [ -d "tests/fuzz/$t/regressions" ]; then
        mapfile -t regs < <(find "tests/fuzz/$t/regressions" -type f ! -name '.*' ! -name '*.md' | sort)
    fi
    if [ ${#regs[@]} -gt 0 ]; then
        TMPDIR=$tmp timeout 300 "$bin" -timeout=10 -rss_limit_mb=2048 "${regs[@]}" </dev/null >>"$log" 2>&1
        rc=$?
        if [ $rc -ne 0 ]; then
            fail "$t" "a regression input fails again (exit $rc; log: $log)"
            continue
        fi
    fi
    start=$(date +%s)
    # the whole run is bounded too: a hang of libFuzzer itself must not stall CI
    limit=$([ "$mode" = time ] && echo $(( ${FUZZ_SECONDS:-30} * 2 + 300 )) || echo 21600)
    TMPDIR=$tmp timeout "$limit" "$bin" "${budget[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$art" "$work" "tests/fuzz/$t/corpus" </dev/null >>"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    corpus=$(find "$work" -type f | wc -l)
    input=$(find "$art" -type f | head -n1)
    if [ $rc -ne 0 ]; then
        why=$(grep -m1 -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz check failed" "$log" \
              | cut -c1-200)
        fail "$t" "exit $rc after ${secs}s: ${why:-see the log}${input:+; input: $input}; log: $log"
        continue
    fi
    if [ "$mode" = runs ] && [ "${execs:-0}" -lt "${FUZZ_RUNS:-1000000}" ]; then
        fail "$t" "only ${execs:-0} executions of ${FUZZ_RUNS:-1000000} (log: $log)"
        continue
    fi
    echo "PASS fuzz $t: ${execs:-?} executions in ${secs}s, ${#regs[@]} regressions replayed, corpus $corpus"
    passed=$((passed + 1))
    rm -rf "$tmp"
done
echo
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
