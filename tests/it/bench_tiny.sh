#!/usr/bin/env bash
# `make bench` at BENCH_TINY=1 (10,000 events): it runs in under 90 s, writes
# results.json with every key as a number (the ingest, the latency, the HTTP timeline and
# status through civibus-api, peak memory of the hub, the API and an adapter), prints the
# table, and leaves no cluster or temporary folder behind. A session
# with synchronous_commit off (PGOPTIONS) makes the run invalid: refused, no results.
# san: skip   (a benchmark measures the optimised build)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d "${CIVIBUS_TEST_TMP:-/tmp}/it-bench-tiny.XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

start=$SECONDS
BENCH_TINY=1 BENCH_OUT=$W/out bash "$ROOT/tests/bench/run.sh" >"$W/table.txt" 2>"$W/bench.log" \
    || { tail -n 30 "$W/bench.log" >&2; fail "make bench (tiny) failed"; }
took=$((SECONDS - start))
[ "$took" -le 90 ] || fail "tiny run took $took s (limit 90 s)"
ok "tiny run in $took s"

python3 - "$W/out/results.json" <<'EOF' || fail "results.json is not as expected"
import json, sys
r = json.load(open(sys.argv[1]))
def number(k):
    v = r.get(k)
    assert isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, "%s: %r" % (k, v)
for k in ("copy_eps", "naive_eps", "civibus_eps", "ack_p50_ms", "ack_p99_ms", "hub_rss_kb",
          "adapter_rss_kb", "timeline_p50_ms", "timeline_p99_ms", "timeline_rps", "status_p50_ms",
          "status_p99_ms", "status_rps", "api_rss_kb"):
    number(k)
import os
if os.geteuid() == 0:      # the mail stage needs root (Postfix)
    m = r["mail"]
    assert m["mails"] == 200 and m["notify_not_sent"] == 0, m
    assert m["intake_per_second"] > 0 and m["notify_per_second"] > 0, m
pg = r["pages"]             # the console and the dashboard in chromium
assert pg["citizens"] == 20 and pg["requests_drawn"] > 0 and not pg["errors"], pg
assert 0 < pg["timeline_p50_ms"] <= pg["timeline_p99_ms"] and pg["dashboard_p50_ms"] > 0, pg
per = r["cpu_us_per_event"]["civibus"]
bound = r["cpu_bound_eps"]
assert bound["all_cores"] == round(r["machine"]["nproc"] * 1e6 / sum(per.values())), bound
assert bound["one_postgresql_core"] == round(1e6 / per["postgresql"]), bound
for name in ("timeline", "status"):
    h = r["http"][name]
    assert h["requests"] == 3000 and h["errors"] == 0 and h["non2xx"] == 0, h
    assert h["ok"] + h["unanswered"] == 3000, h
    assert h["p50_ms"] <= h["p99_ms"] <= h["max_ms"], h
assert r["curve_adapters"] is None, r["curve_adapters"]      # BENCH_CURVE=1 only
assert r["events"] == 10000, r["events"]
assert r["ack_p50_ms"] <= r["ack_p99_ms"], (r["ack_p50_ms"], r["ack_p99_ms"])
assert r["latency"]["settled"] == r["latency"]["count"] == 5000, r["latency"]
pg = r["pg_settings"]
assert pg["fsync"] == "on" and pg["synchronous_commit"] != "off", pg
assert abs(r["ratio_civibus_copy"] - r["civibus_eps"] / r["copy_eps"]) < 1e-9
assert set(r["targets"]) == {"civibus_vs_copy", "civibus_vs_naive", "city_year", "ack_p99", "hub_rss",
                            "timeline_p99", "linkage_precision", "linkage_recall"}
lk = r["linkage"]
assert lk["people"] == 2000 and 0 < lk["precision"] <= 1 and 0 < lk["recall"] <= 1, lk
EOF
ok "results.json: every key, numbers for the ingest, latency, HTTP and memory figures"

for line in "COPY ceiling" "naive: 1 transaction per event" "civibus: 3 adapters" "send-to-ACK p99" \
            "agent timeline p99 (HTTP) at 1,000 req/s" "citizen status p99 (HTTP) at 1,000 req/s" \
            "API peak RSS (VmHWM)" "fsync=on" "synchronous_commit=on" "identity linkage: 2,000 people"; do
    grep -q "$line" "$W/table.txt" || fail "the table lacks '$line'"
done
cmp -s "$W/table.txt" "$W/out/results.txt" || fail "results.txt differs from the printed table"
ok "the table is printed and saved"

tmp=$(sed -n 's/.*starting PostgreSQL in \(.*\)\/pg$/\1/p' "$W/bench.log")
[ -n "$tmp" ] || fail "no temporary folder named in the log"
[ ! -e "$tmp" ] || fail "$tmp left behind"
ok "temporary folder and cluster removed"

PGOPTIONS="-c synchronous_commit=off" BENCH_TINY=1 BENCH_OUT=$W/invalid \
    bash "$ROOT/tests/bench/run.sh" >/dev/null 2>"$W/invalid.log"
rc=$?
[ "$rc" -ne 0 ] || fail "a run with synchronous_commit off was not refused"
grep -q "invalid run: synchronous_commit is off" "$W/invalid.log" || fail "refusal reason: $(tail -n 3 "$W/invalid.log")"
[ ! -e "$W/invalid/results.json" ] || fail "an invalid run wrote results"
tmp=$(sed -n 's/.*starting PostgreSQL in \(.*\)\/pg$/\1/p' "$W/invalid.log")
if [ -z "$tmp" ] || [ -e "$tmp" ]; then fail "the refused run left '$tmp' behind"; fi
ok "a run with synchronous_commit off is refused, and cleans up"
