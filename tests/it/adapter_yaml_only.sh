#!/usr/bin/env bash
# A fourth software plugged in with YAML alone: the libraries (adapters/bibliotheque/:
# adapter.yaml + mapping.yaml, no C, no rebuild) served by the generic REST simulator
# (tests/sim/generic_rest.py: page tokens, basic auth, a 503 now and then). Checks:
#   - config mistakes stop the adapter with "file:line: reason" (exit 2)
#   - every record of the sample, and those the software adds later, is stored once
#   - the same person as in the other softwares ("Jean Pierre Dupont") is stored as this
#     software writes him, under its own reader card number
#   - when caught up the adapter asks again for its last page token, never for page 1
#   - neither the password nor personal data reach the adapter's log
. "$(dirname "$0")/lib.sh"
DIR=$ROOT/adapters/bibliotheque
export BIBLIOTHEQUE_API_PASSWORD="pw-$$-$RANDOM"
SIM_PID= ADA_PID=
sim_stop() { [ -n "$SIM_PID" ] && { kill -TERM "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; }; SIM_PID=; }
ada_kill() { [ -n "$ADA_PID" ] && { kill -9 "$ADA_PID" 2>/dev/null; wait "$ADA_PID" 2>/dev/null; }; ADA_PID=; }
at_exit "ada_kill; sim_stop"

grep -rqil --include="*.[ch]" biblioth "$ROOT"/adapters "$ROOT"/hub "$ROOT"/lib \
    && fail "some C file knows about the bibliothèque: it must need YAML only"

it_setup adapter_yaml_only "bibliotheque:$DIR/mapping.yaml"

# records the software writes while the adapter runs: new requests and new states
python3 - "$W/later.jsonl" <<'PY'
import json, sys
lecteur = {"carte": "B-004412", "nom": "Dupont", "prenom": "Jean Pierre", "naissance": "1971-05-12",
           "mel": "jp.dupont@example.fr", "tel": "+33 6 12 34 56 78"}
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for i in range(12):
        rec = {"ref": "RES-2024-%05d" % (900 + i // 2), "type": "reservation",
               "etat": ["EN_ATTENTE", "DISPONIBLE"][i % 2], "horodatage": "2024-11-04 %02d:%02d:00" % (9 + i // 6, i * 4),
               "origine": "portail", "site": "Médiathèque Jacques-Prévert", "lecteur": lecteur,
               "document": {"titre": "Notre-Dame de Paris", "cote": "R HUG"}}
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
PY
cat "$DIR/sample.jsonl" "$W/later.jsonl" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print("%s|%s|%s" % (r["ref"], r["etat"], r["horodatage"]))' | LC_ALL=C sort >"$W/expected.sorted"
N=$(wc -l <"$W/expected.sorted")

python3 "$ROOT/tests/sim/generic_rest.py" --data "$DIR/sample.jsonl" --later "$W/later.jsonl" --later-after 4 \
    --path /ws/v2/demandes-lecteurs --records-key resultats --next-key pagination.suivant \
    --token-param curseur --page-size-param nb --basic "civibus:$BIBLIOTHEQUE_API_PASSWORD" \
    --fail-every 4 --log "$W/sim.log" --max-seconds 120 >"$W/sim.port" 2>"$W/sim.err" &
SIM_PID=$!
for _ in $(seq 1 100); do
    PORT=$(head -n 1 "$W/sim.port" 2>/dev/null); [ -n "$PORT" ] && break
    kill -0 "$SIM_PID" 2>/dev/null || fail "simulator exited: $(cat "$W/sim.err")"; sleep 0.1
done
[ -n "$PORT" ] || fail "simulator did not print its port"

# the adapter config: the test's hub and sources, then the library's driver section
cp "$W/adapter.yaml" "$W/adapter-run.yaml"
sed -n '/^driver:/,$p' "$DIR/adapter.yaml" | sed -E -e "s|http://127\.0\.0\.1:[0-9]+|http://127.0.0.1:$PORT|" \
    -e 's|^(  poll_interval_ms:).*|\1 300|' -e 's|^(  rate_limit:).*|\1 20|' >>"$W/adapter-run.yaml"
echo "  retry: {initial_ms: 100, max_ms: 1000}" >>"$W/adapter-run.yaml"

# ---- configuration mistakes: file:line: reason, exit 2
sed 's|^  records_path:|  record_path:|' "$W/adapter-run.yaml" >"$W/adapter-typo.yaml"
line=$(grep -n '^  record_path:' "$W/adapter-typo.yaml" | cut -d: -f1)
"$ADAPTER" run --config "$W/adapter-typo.yaml" >/dev/null 2>"$W/typo.err"
rc=$?
[ "$rc" -eq 2 ] || fail "a misspelt key: exit $rc, expected 2"
grep -q "adapter-typo.yaml:$line: unknown key 'record_path'" "$W/typo.err" || fail "misspelt key: $(cat "$W/typo.err")"
env -u BIBLIOTHEQUE_API_PASSWORD "$ADAPTER" run --config "$W/adapter-run.yaml" >/dev/null 2>"$W/env.err"
rc=$?
[ "$rc" -eq 2 ] || fail "unset password variable: exit $rc, expected 2"
grep -Eq "adapter-run.yaml:[0-9]+: environment variable BIBLIOTHEQUE_API_PASSWORD .*is not set" "$W/env.err" \
    || fail "unset variable: $(cat "$W/env.err")"
ok "config mistakes are reported as file:line: reason"

# ---- the run
hub_start
"$ADAPTER" run --config "$W/adapter-run.yaml" >>"$W/adapter.log" 2>&1 &
ADA_PID=$!
for _ in $(seq 1 200); do
    [ "$(q "select count(*) from events where source = 'bibliotheque'")" -ge "$N" ] && break
    kill -0 "$ADA_PID" 2>/dev/null || fail "adapter exited: $(tail -n 5 "$W/adapter.log")"
    sleep 0.2
done
sleep 1
kill -TERM "$ADA_PID"; wait "$ADA_PID"; rc=$?; ADA_PID=
[ "$rc" -eq 0 ] || fail "adapter exit code $rc after SIGTERM"

q "select event_id from events where source = 'bibliotheque'" | LC_ALL=C sort >"$W/stored.sorted"
diff -q "$W/expected.sorted" "$W/stored.sorted" >/dev/null \
    || fail "stored ids differ: $(diff "$W/expected.sorted" "$W/stored.sorted" | head -n 5 | tr '\n' ' ')"
[ "$(q "select count(*) from dead_letters where source = 'bibliotheque'")" = 0 ] || fail "dead letters"
who=$(q "select identity->>'family_name' || '|' || (identity->>'given_names') || '|' || (identity->>'birth_date')
         from citizen_sources where source = 'bibliotheque' and source_citizen_id = 'B-004412'")
[ "$who" = "DUPONT|Jean Pierre|1971-05-12" ] || fail "reader B-004412 stored as '$who'"
[ "$(q "select count(*) from events where source = 'bibliotheque' and kind = 'reservation' and status = 'waiting_citizen'")" -gt 0 ] \
    || fail "no reservation waiting at the hold shelf"
ok "$N library events stored once (12 added while the adapter ran), reader stored as the library writes him"

python3 - "$W/sim.log" <<'PY' || fail "page tokens"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
ok = [r for r in reqs if r.get("status") == 200]
if sum(1 for r in ok if r["offset"] is None) != 1:
    sys.exit("page 1 (no token) was asked for %d times" % sum(1 for r in ok if r["offset"] is None))
if not any(r["status"] == 503 for r in reqs):
    sys.exit("the simulator answered no 503")
if max(r["offset"] or 0 for r in ok) < 58:
    sys.exit("the records added later were never read")
PY
grep -q "failed: HTTP 503 (attempt 1)" "$W/adapter.log" || fail "no log line for the 503s"
grep -q "$BIBLIOTHEQUE_API_PASSWORD" "$W/adapter.log" && fail "the password appears in the adapter log"
grep -Eqi "dupont|jp\.dupont|curseur=" "$W/adapter.log" && fail "personal data or a query string in the adapter log"
ok "page tokens followed, page 1 read once, 503s retried, no secret in the log"
sim_stop
hub_stop
