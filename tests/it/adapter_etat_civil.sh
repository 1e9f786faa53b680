#!/usr/bin/env bash
# The état civil adapter end to end: the registry simulator (tests/sim/etat_civil.py)
# -> `civibus-adapter run` with adapters/etat-civil/adapter.yaml (REST driver, since
# cursor) -> hub with adapters/etat-civil/mapping.yaml -> PostgreSQL.
#   1. clean: every version stored exactly once (ids compared), the two bad records
#      dead-lettered, DUPONT Jean-Pierre stored as the registry writes him; no secret and
#      no personal data in the adapter's log
#   2. faults: HTTP 500s, 2 s answers, truncated JSON pages, the API down for 3 s while
#      versions keep arriving: still every version once; each fault logged and retried
#   3. kill -9 mid-stream, restart: nothing lost, nothing twice, and the first request
#      after the restart carries the saved cursor (minus the overlap), not the first page
. "$(dirname "$0")/lib.sh"
MAP=$ROOT/adapters/etat-civil/mapping.yaml
SIM=$ROOT/tests/sim/etat_civil.py
export ETAT_CIVIL_API_TOKEN="secret-token-$$-$RANDOM"
SIM_PID= ADA_PID=

sim_stop() { [ -n "$SIM_PID" ] && { kill -TERM "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; }; SIM_PID=; }
ada_kill() { [ -n "$ADA_PID" ] && { kill -9 "$ADA_PID" 2>/dev/null; wait "$ADA_PID" 2>/dev/null; }; ADA_PID=; }
at_exit "ada_kill; sim_stop"

# sim_start ARGS... — the simulator with its log and expected ids in $W; port in SIM_PORT
sim_start() {
    python3 "$SIM" --token "$ETAT_CIVIL_API_TOKEN" --log "$W/sim.log" --expect "$W/expected.txt" \
        --bad-records --max-seconds 240 "$@" >"$W/sim.port" 2>>"$W/sim.err" &
    SIM_PID=$!
    for _ in $(seq 1 100); do
        SIM_PORT=$(head -n 1 "$W/sim.port" 2>/dev/null)
        [ -n "$SIM_PORT" ] && return 0
        kill -0 "$SIM_PID" 2>/dev/null || fail "simulator exited: $(cat "$W/sim.err")"
        sleep 0.1
    done
    fail "simulator did not print its port"
}

# The adapter config: the test's hub and sources sections, then the driver section of
# adapters/etat-civil/adapter.yaml pointed at the simulator, with test-sized waits.
make_config() {
    cp "$W/adapter.yaml" "$W/adapter-run.yaml"
    sed -n '/^driver:/,$p' "$ROOT/adapters/etat-civil/adapter.yaml" | sed -E \
        -e "s|http://127\.0\.0\.1:[0-9]+|http://127.0.0.1:$SIM_PORT|" \
        -e 's|^(  poll_interval_ms:).*|\1 300|' -e 's|^(  rate_limit:).*|\1 50|' \
        -e 's|^(    max_ms:).*|\1 2000|' -e 's|^(    initial_ms:).*|\1 200|' >>"$W/adapter-run.yaml"
    grep -q "127.0.0.1:$SIM_PORT" "$W/adapter-run.yaml" || fail "driver url not rewritten"
}

ada_start() {
    "$ADAPTER" run --config "$W/adapter-run.yaml" >>"$W/adapter.log" 2>&1 &
    ADA_PID=$!
}

ada_stop() {
    kill -TERM "$ADA_PID" 2>/dev/null
    wait "$ADA_PID"
    local rc=$?
    ADA_PID=
    [ "$rc" -eq 0 ] || { tail -n 20 "$W/adapter.log" >&2; fail "adapter exit code $rc after SIGTERM"; }
}

events() { q "select count(*) from events where source = 'etat-civil'"; }

# wait_events N SECONDS
wait_events() {
    local i
    for i in $(seq 1 $(($2 * 5))); do
        [ "$(events)" -ge "$1" ] && return 0
        kill -0 "$ADA_PID" 2>/dev/null || { tail -n 20 "$W/adapter.log" >&2; fail "adapter exited"; }
        sleep 0.2
    done
    tail -n 20 "$W/adapter.log" >&2
    fail "only $(events) of $1 events after $2 s"
}

# every expected id exactly once, nothing else
check_ids() {
    LC_ALL=C sort "$W/expected.txt" >"$W/expected.sorted"
    q "select event_id from events where source = 'etat-civil'" | LC_ALL=C sort >"$W/stored.sorted"
    diff -q "$W/expected.sorted" "$W/stored.sorted" >/dev/null \
        || fail "$1: stored ids differ from the simulator's ($(diff "$W/expected.sorted" "$W/stored.sorted" | head -n 5 | tr '\n' ' '))"
    [ "$(events)" -eq "$(wc -l <"$W/expected.txt")" ] || fail "$1: event count"
}

check_dead_letters() {
    local got
    got=$(q "select string_agg(reason, ',' order by reason) from dead_letters where source = 'etat-civil'")
    [ "$got" = "bad_date,invalid_json" ] || fail "$1: dead letters '$got', expected bad_date,invalid_json"
}

check_logs_clean() {
    grep -q "$ETAT_CIVIL_API_TOKEN" "$W/adapter.log" && fail "the API token appears in the adapter log"
    grep -Eq "DUPONT|LEFÈVRE|example\.fr|06 12 34 56 78|modifie_depuis=" "$W/adapter.log" \
        && fail "personal data or a query string appears in the adapter log"
    return 0
}

# ------------------------------------------------------------------ 1. clean run
it_setup adapter_etat_civil "etat-civil:$MAP"
hub_start
sim_start
make_config
ada_start
N=$(wc -l <"$W/expected.txt")
wait_events "$N" 60
sleep 1                                        # a late duplicate would show up now
ada_stop
check_ids "clean run"
check_dead_letters "clean run"
dupont=$(q "select identity->>'family_name' || '|' || (identity->>'given_names') || '|' || (identity->>'birth_date') || '|' || (identity->>'email')
            from citizen_sources where source = 'etat-civil' and source_citizen_id = 'USG-000077'")
[ "$dupont" = "DUPONT|Jean-Pierre, Marcel|1971-05-12|jp.dupont@example.fr" ] || fail "DUPONT stored as '$dupont'"
lefevre=$(q "select identity->>'birth_name' from citizen_sources where source = 'etat-civil' and source_citizen_id = 'USG-000102'")
[ "$lefevre" = "MARTIN" ] || fail "birth name of USG-000102: '$lefevre'"
grep -q "did not move the cursor" "$W/adapter.log" || fail "the nightly batch (more versions in one second than a page) was not seen"
check_logs_clean
ok "clean run: $N versions stored once, 2 dead letters, DUPONT Jean-Pierre as the registry writes him"
sim_stop
hub_stop

# ------------------------------------------------------------------ 2. faults
it_setup adapter_etat_civil_faults "etat-civil:$MAP"
hub_start
sim_start --release-per-second 150 --fail-every 5 --garbage-every 7 --slow-every 9 --slow-ms 2000 \
    --down-after 12 --down-seconds 3
make_config
ada_start
N=$(wc -l <"$W/expected.txt")
wait_events "$N" 90
sleep 1
ada_stop
check_ids "faults"
check_dead_letters "faults"
grep -q "failed: HTTP 500 (attempt" "$W/adapter.log" || fail "no log line for the HTTP 500s"
grep -q "body is not valid JSON" "$W/adapter.log" || fail "no log line for the invalid JSON pages"
grep -Eq "failed: .*(refused|connect)" "$W/adapter.log" || fail "no log line for the API being down"
grep -q "answers again after" "$W/adapter.log" || fail "no recovery log line"
grep -q '"fault": "slow"' "$W/sim.log" || fail "the simulator answered no slow page"
grep -q '"down"' "$W/sim.log" || fail "the simulator was never down"
check_logs_clean
ok "faults (500s, slow, invalid JSON, down 3 s): $N versions stored once, retries logged"
sim_stop
hub_stop

# ------------------------------------------------------------------ 3. kill -9 and restart
it_setup adapter_etat_civil_kill9 "etat-civil:$MAP"
hub_start
sim_start --release-per-second 120
make_config
ada_start
N=$(wc -l <"$W/expected.txt")
wait_events $((N / 3)) 60
kill -9 "$ADA_PID"; wait "$ADA_PID" 2>/dev/null; ADA_PID=
at=$(events)
[ "$at" -lt "$N" ] || fail "the adapter finished before it could be killed"
before=$(wc -l <"$W/sim.log")
ada_start
wait_events "$N" 60
sleep 1
ada_stop
check_ids "kill -9"
check_dead_letters "kill -9"
python3 - "$W/sim.log" "$before" <<'PY' || fail "the restarted adapter did not resume from its saved cursor"
import json, sys
from datetime import datetime, timedelta
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
cut = int(sys.argv[2])
reqs_before = [e for e in lines[:cut] if e.get("status") == 200]
reqs_after = [e for e in lines[cut:] if "n" in e]
cursors = {datetime.fromisoformat(e["max_maj"]) for e in reqs_before if e.get("max_maj")}
first = reqs_after[0]
if not first.get("since"):
    sys.exit("first request after the restart has no since cursor (page 1)")
since = datetime.fromisoformat(first["since"]) + timedelta(seconds=2)   # the overlap
if since not in cursors:
    sys.exit("since %s + overlap is no cursor the first run reached" % first["since"])
if any(not e.get("since") for e in reqs_after):
    sys.exit("the restarted adapter read the first page again")
if since <= min(cursors):
    sys.exit("the restart went back to the first cursor")
print("first request after restart: since=%s" % first["since"])
PY
check_logs_clean
ok "kill -9 at $at of $N events, restart: every version once, resumed from the saved cursor"
sim_stop
hub_stop
