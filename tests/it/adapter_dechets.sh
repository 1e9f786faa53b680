#!/usr/bin/env bash
# The déchets adapter end to end: the waste-management software's simulator
# (tests/sim/dechets.py) POSTs signed webhooks to `civibus-adapter run` (webhook driver,
# adapters/dechets/mapping.yaml on the hub) → hub → PostgreSQL.
#   - config errors stop the adapter with file:line (exit 2);
#   - the HTTP surface: 405, 404, 401 (no or bad signature), 413, 400, 202;
#   - every record the software got a 2xx for is stored exactly once, mapped without
#     dead letters; forged signatures get 401 and store nothing; bodies that are not JSON
#     get 202 and become dead letters (the documented choice), with their hash logged;
#   - the adapter killed with kill -9 mid-stream and restarted while the software keeps
#     posting (and retrying): nothing lost, nothing duplicated;
#   - spool full (tiny spool, hub stopped): 503 with Retry-After; the records the software
#     retries are stored once the hub is back;
#   - body: array, secret from the environment: one POST, several records.
. "$(dirname "$0")/lib.sh"
SIM=$ROOT/tests/sim/dechets.py
it_setup adapter_dechets "dechets:$ROOT/adapters/dechets/mapping.yaml"

ADAPTER_PID= SIM_PID=
at_exit '[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; [ -n "$ADAPTER_PID" ] && kill -9 "$ADAPTER_PID" 2>/dev/null'

SECRET_FILE=$W/webhook.secret
PORT_FILE=$W/webhook.port
WH_PATH=/webhooks/dechets
python3 -c 'import secrets; print(secrets.token_hex(24))' >"$SECRET_FILE"
chmod 600 "$SECRET_FILE"

# config FILE SPOOL_MAX_BYTES [DRIVER LINES...] — lib.sh's hub and sources, then ours
config() {
    local file=$1 max=$2; shift 2
    {
        cat "$W/adapter.yaml"
        printf 'spool:\n  max_bytes: %s\nlimits:\n  max_event_bytes: 16384\n' "$max"
        printf 'driver:\n  kind: webhook\n  source: dechets\n  port: 0\n  port_file: webhook.port\n'
        printf '  path: %s\n  retry_after_s: 1\n  max_connections: 16\n' "$WH_PATH"
        for line in "$@"; do printf '  %s\n' "$line"; done
    } >"$file"
}
SIG_FILE=("signature:" "  header: X-Signature" "  prefix: \"sha256=\"" "  secret_file: webhook.secret")

adapter_start() {  # CONFIG
    rm -f "$PORT_FILE"
    "$ADAPTER" run --config "$1" >>"$W/adapter.log" 2>&1 &
    ADAPTER_PID=$!
    local i
    for i in $(seq 1 100); do
        [ -s "$PORT_FILE" ] && return 0
        kill -0 "$ADAPTER_PID" 2>/dev/null || fail "adapter exited at start-up: $(tail -n 3 "$W/adapter.log")"
        sleep 0.1
    done
    fail "adapter did not write its port file within 10 s"
}
adapter_stop() {
    kill -TERM "$ADAPTER_PID"
    wait "$ADAPTER_PID"
    local rc=$?
    ADAPTER_PID=
    return $rc
}
once() { python3 "$SIM" once --port-file "$PORT_FILE" --path "$WH_PATH" --secret-file "$SECRET_FILE" "$@"; }
# accepted RESULTS — event ids the software got a 2xx for, sorted
accepted() {
    python3 -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["kind"] == "record" and 200 <= r["status"] < 300: print(r["event_id"])' "$1" | sort
}
stored() { q "select event_id from events where source = 'dechets' and event_id like '$1%' order by 1"; }
wait_events() {  # PREFIX N — until N events with that prefix are stored (60 s)
    local i
    for i in $(seq 1 600); do
        [ "$(q "select count(*) from events where event_id like '$1%'")" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "only $(q "select count(*) from events where event_id like '$1%'") of $2 '$1' events stored after 60 s"
}
record() {  # NUMERO — a small valid record of the software
    printf '{"evenement":"demande.creee","demande":{"numero":"%s","type":"BAC_CASSE","statut":"NOUVELLE","revision":1,"canal":"PORTAIL","creee_le":"2024-06-03 09:00:00","modifiee_le":"2024-06-03 09:00:00","commentaire":"Bac jaune fendu"},"usager":{"id":"USG-00042","nom":"DUPONT","prenom":"J-P","email":"jp.dupont@example.fr","telephone":"0612345678"}}' "$1"
}

# ---- config errors -------------------------------------------------------------------
config "$W/bad1.yaml" 1073741824 "portt: 1" "${SIG_FILE[@]}"
"$ADAPTER" run --config "$W/bad1.yaml" >/dev/null 2>"$W/bad.err"; rc=$?
[ $rc -eq 2 ] || fail "unknown key: exit $rc, expected 2"
grep -qE "bad1.yaml:[0-9]+: unknown key 'portt'" "$W/bad.err" || fail "unknown key said: $(cat "$W/bad.err")"
config "$W/bad2.yaml" 1073741824 "signature:" "  secret_env: CIVIBUS_TEST_NO_SUCH_SECRET"
env -u CIVIBUS_TEST_NO_SUCH_SECRET "$ADAPTER" run --config "$W/bad2.yaml" >/dev/null 2>"$W/bad.err"; rc=$?
[ $rc -eq 2 ] && grep -qE "bad2.yaml:[0-9]+: .*CIVIBUS_TEST_NO_SUCH_SECRET.* not set" "$W/bad.err" \
    || fail "missing secret variable: exit $rc: $(cat "$W/bad.err")"
config "$W/bad3.yaml" 1073741824
"$ADAPTER" run --config "$W/bad3.yaml" >/dev/null 2>"$W/bad.err"; rc=$?
[ $rc -eq 2 ] && grep -qE "bad3.yaml:[0-9]+: .*needs a 'signature' section" "$W/bad.err" \
    || fail "no signature section: exit $rc: $(cat "$W/bad.err")"
ok "config errors: exit 2 with file:line (unknown key, secret variable unset, no signature)"

# ---- the HTTP surface ----------------------------------------------------------------
hub_start
config "$W/dechets.yaml" 1073741824 "${SIG_FILE[@]}"
adapter_start "$W/dechets.yaml"
probe=$(record DEC-SONDE-000001)
[ "$(once --method GET --body "$probe" | tr '\n' ' ')" = "405 Allow: POST " ] || fail "GET: $(once --method GET)"
[ "$(once --path /autre --body "$probe")" = 404 ] || fail "wrong path: $(once --path /autre --body "$probe")"
[ "$(once --path "$WH_PATH" --signature none --body "$probe")" = 401 ] || fail "no signature not 401"
[ "$(once --signature bad --body "$probe")" = 401 ] || fail "bad signature not 401"
[ "$(once --body-size 20000)" = 413 ] || fail "20 kB body (max_body_bytes 16384) not 413"
[ "$(once --body "")" = 400 ] || fail "empty body not 400"
[ "$(once --body "$probe")" = 202 ] || fail "signed record not 202"
wait_events DEC-SONDE 1
[ "$(q "select count(*) from events")" = 1 ] || fail "refused requests stored something"
ok "HTTP: 405 (Allow: POST), 404, 401 unsigned, 401 bad signature, 413, 400; signed record 202 and stored"

# ---- kill -9 mid-stream while the software keeps posting ------------------------------
python3 "$SIM" send --port-file "$PORT_FILE" --path "$WH_PATH" --secret-file "$SECRET_FILE" \
    --requests 150 --concurrency 4 --rate 100 --garbage 6 --forged 4 --max-backoff 0.5 \
    --max-seconds 150 --results "$W/b.results" >"$W/b.summary" 2>"$W/sim.log" &
SIM_PID=$!
for i in $(seq 1 400); do
    [ "$(q "select count(*) from events where event_id like 'DEC-2024%'")" -ge 80 ] && break
    sleep 0.05
done
kill -0 "$SIM_PID" 2>/dev/null || fail "the simulator finished before the adapter could be killed"
kill -9 "$ADAPTER_PID"; wait "$ADAPTER_PID" 2>/dev/null; ADAPTER_PID=
at=$(q "select count(*) from events where event_id like 'DEC-2024%'")
sleep 1                                   # the software meets a closed port, and retries
adapter_start "$W/dechets.yaml"
wait "$SIM_PID"; rc=$?; SIM_PID=
[ $rc -eq 0 ] || fail "simulator exit $rc: $(cat "$W/b.summary")"
summary=$(cat "$W/b.summary")
accepted "$W/b.results" >"$W/b.accepted"
n=$(wc -l <"$W/b.accepted")
[ "$at" -lt "$n" ] || fail "the adapter was killed after everything was stored ($at of $n)"
grep -q "abandoned 0 refused 0 " <<<"$summary" || fail "records not accepted: $summary"
grep -qE "conn_errors [1-9]" <<<"$summary" || fail "the software never met the dead adapter: $summary"
ok "adapter killed with SIGKILL at $at of $n events and restarted; software: $summary"

wait_events DEC-2024 "$n"
sleep 0.5
stored DEC-2024 >"$W/b.stored"
diff "$W/b.accepted" "$W/b.stored" >"$W/b.diff" || fail "stored events differ from the 2xx'd records: $(head "$W/b.diff")"
[ "$(q "select count(*) from events where event_id like 'DEC-2024%'")" = "$n" ] || fail "duplicates"
ok "every record answered 2xx stored exactly once ($n events)"

grep -q "forged_401 4/4 " <<<"$summary" || fail "forged records not all 401: $summary"
[ "$(q "select count(*) from events where source_record_id like 'FAUX%'")" = 0 ] || fail "forged record stored"
q "select encode(payload, 'escape') from dead_letters" | grep -q FAUX && fail "forged record dead-lettered"
ok "forged signatures (wrong key, no header): 401, nothing stored"

grep -q "garbage 6/6 " <<<"$summary" || fail "garbage bodies not all answered 2xx: $summary"
python3 -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["kind"] == "garbage": print(r["sha256"])' "$W/b.results" | sort >"$W/garbage.sha"
q "select payload_hash from dead_letters where reason in ('invalid_json', 'invalid_utf8') order by 1" >"$W/dead.sha"
diff "$W/garbage.sha" "$W/dead.sha" >/dev/null || fail "garbage bodies and dead letters differ"
[ "$(q "select count(*) from dead_letters")" = 6 ] \
    || fail "unexpected dead letters: $(q "select string_agg(reason || ': ' || coalesce(detail, ''), '; ') from dead_letters")"
while read -r sha; do
    grep -q "not JSON (sha256 ${sha:0:16}" "$W/adapter.log" || fail "no log line names garbage body ${sha:0:16}"
done <"$W/garbage.sha"
ok "6 bodies that are not JSON: 202, dead-lettered by the hub, each named by its hash in the log; no other dead letter"

# the mapping: Paris wall-clock time (a time that did not exist), statuses, the citizen
[ "$(q "select to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from events where event_id = 'DEC-2024-000008|1'")" \
    = "2024-03-31 01:30" ] || fail "DEC-2024-000008|1: Paris 02:30 on 31 March (clocks jump) not stored as 01:30Z"
[ "$(q "select count(distinct status) from events where source = 'dechets'")" -ge 5 ] || fail "statuses not mapped"
[ "$(q "select count(distinct category) from events where source = 'dechets'")" = 4 ] || fail "categories not mapped"
[ "$(q "select identity->>'email' from citizen_sources where source = 'dechets' and source_citizen_id = 'USG-00107'")" \
    = "aminata.ndiaye@example.fr" ] || fail "citizen e-mail not lower-cased"
ok "mapping: Paris times to UTC, $(q "select count(distinct status) from events") statuses, 4 categories, citizens"

grep -qiE "DUPONT|N'DIAYE|Aminata|@example|Église|0612345678" "$W/adapter.log" "$W/sim.log" "$W/hub.log" \
    && fail "personal data in a log"
ok "no personal data in the adapter, simulator or hub logs"

# ---- a burst: more senders than max_connections (16), no pause -----------------------
python3 "$SIM" send --port-file "$PORT_FILE" --path "$WH_PATH" --secret-file "$SECRET_FILE" \
    --requests 150 --prefix DER --seed 7 --concurrency 24 --max-backoff 0.5 \
    --max-seconds 120 --results "$W/r.results" >"$W/r.summary" 2>>"$W/sim.log" \
    || fail "burst: $(cat "$W/r.summary")"
accepted "$W/r.results" >"$W/r.accepted"
n=$(wc -l <"$W/r.accepted")
wait_events DER-2024 "$n"
sleep 0.5
stored DER-2024 >"$W/r.stored"
diff "$W/r.accepted" "$W/r.stored" >/dev/null || fail "burst: stored events differ from the 2xx'd records"
ok "burst of 24 senders over 16 connections: $n records, each stored once ($(cat "$W/r.summary"))"

# ---- spool full: 503 with Retry-After, then everything retried is stored ---------------
adapter_stop || fail "adapter did not stop cleanly on SIGTERM"
[ -e "$PORT_FILE" ] && fail "port file left behind after a clean stop"
hub_stop
config "$W/tiny.yaml" 1048576 "${SIG_FILE[@]}"
adapter_start "$W/tiny.yaml"
: >"$W/sim.log"
python3 "$SIM" send --port-file "$PORT_FILE" --path "$WH_PATH" --secret-file "$SECRET_FILE" \
    --requests 120 --prefix DEP --pad 6000 --concurrency 4 --max-backoff 1 \
    --max-seconds 150 --results "$W/c.results" >"$W/c.summary" 2>>"$W/sim.log" &
SIM_PID=$!
for i in $(seq 1 300); do
    grep -q "HTTP 503 (Retry-After 1)" "$W/sim.log" && break
    sleep 0.1
done
grep -q "HTTP 503 (Retry-After 1)" "$W/sim.log" || fail "the software never got 503 with Retry-After from a full spool"
[ "$(once --body "$(record DEC-SONDE-000002)" | tr '\n' ' ')" = "503 Retry-After: 1 " ] || fail "probe with a full spool not 503"
ok "spool full with the hub away: 503 with Retry-After: 1"
hub_start
wait "$SIM_PID"; rc=$?; SIM_PID=
[ $rc -eq 0 ] || fail "simulator exit $rc after the hub came back: $(cat "$W/c.summary")"
summary=$(cat "$W/c.summary")
grep -qE "busy_503 [1-9][0-9]* retry_after [1-9]" <<<"$summary" || fail "no 503 with Retry-After counted: $summary"
accepted "$W/c.results" >"$W/c.accepted"
n=$(wc -l <"$W/c.accepted")
wait_events DEP-2024 "$n"
sleep 0.5
stored DEP-2024 >"$W/c.stored"
diff "$W/c.accepted" "$W/c.stored" >/dev/null || fail "spool-full phase: stored events differ from the 2xx'd records"
[ "$(q "select count(*) from events where source_record_id = 'DEC-SONDE-000002'")" = 0 ] || fail "a 503'd probe was stored"
ok "hub back: every record the software retried is stored once ($n events; $summary)"
adapter_stop || fail "adapter did not stop cleanly"

# ---- body: array, secret from the environment --------------------------------------------
config "$W/array.yaml" 1073741824 "body: array" "signature:" "  secret_env: CIVIBUS_TEST_DECHETS_SECRET"
export CIVIBUS_TEST_DECHETS_SECRET; CIVIBUS_TEST_DECHETS_SECRET=$(cat "$SECRET_FILE")
adapter_start "$W/array.yaml"
[ "$(once --body "[$(record DEC-LOT-000001), $(record DEC-LOT-000002),
  $(record DEC-LOT-000003)]")" = 202 ] || fail "array of 3 records not 202"
wait_events DEC-LOT 3
ok "body: array: one POST of 3 records, 3 events (secret from the environment)"
adapter_stop || fail "adapter did not stop cleanly"
hub_stop || fail "hub did not stop cleanly"
