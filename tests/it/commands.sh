#!/usr/bin/env bash
# Outbound commands (docs/commands.md): a command waits in the outbox while its adapter is
# away; the adapter retries while the software is down; killed with SIGKILL after the
# software performed the command but before it answered, and restarted, the adapter:
#   - sends it again with the same Idempotency-Key        → performed once, done
#   - looks it up by our reference first                  → performed once, done
#   - has neither (at-least-once)                         → performed twice, flagged
# Each result lands in the timeline (a command_result event) and in the commands row;
# a result produced while the hub is down is kept by the adapter and recorded later;
# an unknown kind fails cleanly; no personal data in logs or events.
. "$(dirname "$0")/lib.sh"
it_setup commands

SIM_PID= ADAPTER_PID=
at_exit '[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; [ -n "$ADAPTER_PID" ] && kill -9 "$ADAPTER_PID" 2>/dev/null'

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TARGET=http://127.0.0.1:$PORT

printf 'commands:\n  result_timeout_ms: 60000\n' >>"$W/hub.yaml"
cp "$W/adapter.yaml" "$W/adapter-run.yaml"
cat >>"$W/adapter-run.yaml" <<EOF
driver:
  kind: none
  source: demo
commands:
  timeout_ms: 15000
  max_attempts: 100
  backoff_ms: 100
  backoff_max_ms: 400
  kinds:
    pickup_idem:
      url: "$TARGET/idem/pickups"
      idempotency_header: Idempotency-Key
      headers:
        X-Civibus-Command: "{id}"
      reference: id
    pickup_lookup:
      url: "$TARGET/lookup/pickups"
      reference_field: external_ref
      lookup_url: "$TARGET/lookup/pickups?external_ref={key}"
      reference: id
    pickup_unsafe:
      url: "$TARGET/unsafe/pickups"
      reference: id
EOF

# a bad kind is refused at start-up with file:line (exit 2)
sed "s|$TARGET/unsafe/pickups|$TARGET/unsafe/{payload.nom}/{nom}|" "$W/adapter-run.yaml" >"$W/adapter-bad.yaml"
"$ADAPTER" run --config "$W/adapter-bad.yaml" >"$W/bad.out" 2>&1
rc=$?
line=$(grep -n "unsafe/{payload.nom}/{nom}" "$W/adapter-bad.yaml" | cut -d: -f1)
[ "$rc" -eq 2 ] && grep -q "adapter-bad.yaml:$line: 'url': unknown placeholder '{nom}'" "$W/bad.out" \
    || fail "bad command kind: exit $rc, $(cat "$W/bad.out")"
ok "a bad command template is refused at start-up: $(head -c 120 "$W/bad.out")"

adapter_start() {
    "$ADAPTER" run --config "$W/adapter-run.yaml" >>"$W/adapter.log" 2>&1 &
    ADAPTER_PID=$!
}
adapter_kill9() { kill -9 "$ADAPTER_PID"; wait "$ADAPTER_PID" 2>/dev/null; ADAPTER_PID=; }
sim_start() {  # [ARGS...]
    python3 "$ROOT/tests/sim/command_target.py" --port "$PORT" --max-seconds 300 "$@" \
        >"$W/sim.out" 2>>"$W/sim.log" &
    SIM_PID=$!
    for _ in $(seq 1 50); do grep -q listening "$W/sim.out" 2>/dev/null && return 0; sleep 0.1; done
    fail "the simulator did not start"
}
sim_stop() { kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null; SIM_PID=; }
stat_of() {  # created.idem | busy | ...
    python3 - "$TARGET" "$1" <<'PY'
import json, sys, urllib.request
value = json.load(urllib.request.urlopen(sys.argv[1] + "/stats", timeout=5))
for part in sys.argv[2].split("."):
    value = value[part]
print(value)
PY
}
# wait_for SECONDS "shell condition" what
wait_for() {
    local i
    for i in $(seq 1 $(($1 * 10))); do eval "$2" && return 0; sleep 0.1; done
    fail "$3 (after $1 s)"
}
# insert KIND [REQUEST_ID] — prints the command id; the payload holds personal data
insert() {
    q "insert into commands (source, kind, request_id, payload)
       values ('demo', '$1', ${2:-null},
               '{\"usager\": {\"nom\": \"DUPONT\", \"adresse\": \"12 rue de l''Église\"}, \"volume_m3\": 2}')
       returning id"
}
status_of() { q "select status from commands where id = $1"; }

hub_start
gen_demo 3 >"$W/records.jsonl"
replay demo "$W/records.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay exit $REPLAY_RC"
REQ=$(q "select min(id) from requests")

# ---- 1. waits in the outbox while the adapter is away -----------------------------------
A=$(insert pickup_idem "$REQ")
sleep 1.5
[ "$(q "select status || ' ' || deliveries from commands where id = $A")" = "pending 0" ] \
    || fail "command without adapter: $(q "select status, deliveries from commands where id = $A")"
ok "command $A waits in the outbox (pending) while no adapter is connected"

# ---- 2. the software is down: delivered, retried ---------------------------------------
adapter_start
wait_for 20 '[ "$(grep -c "command $A (pickup_idem): attempt [0-9]* failed (Couldn.t connect" "$W/adapter.log")" -ge 3 ]' \
    "no retries logged while the software is down"
[ "$(status_of "$A")" = sent ] || fail "command $A: $(status_of "$A"), expected sent"
ok "delivered to the adapter (sent); retries logged while the software is down"

# ---- 3. idempotency key: killed after the software created it, before it answered --------
sim_start --create-delay-ms 4000
wait_for 20 '[ "$(stat_of busy)" = 1 ]' "the adapter's request did not reach the software"
adapter_kill9
[ "$(stat_of created.idem)" = 1 ] || fail "created: $(stat_of created)"
ok "adapter killed with SIGKILL while the software was answering (pickup created)"
adapter_start
wait_for 30 '[ "$(status_of "$A")" = done ]' "command $A not done after the restart"
grep -q "command $A (pickup_idem) resumed after a restart: an attempt's outcome is unknown, retrying with the same idempotency key" \
    "$W/adapter.log" || fail "the restart did not resume command $A as uncertain"
[ "$(stat_of created.idem)" = 1 ] || fail "idempotent command performed $(stat_of created.idem) times"
[ "$(q "select possible_duplicate::text || ' ' || (result->>'reference') || ' ' || (result->>'http_status')
        from commands where id = $A")" = "false ENC-000001 200" ] \
    || fail "command $A row: $(q "select possible_duplicate, result from commands where id = $A")"
[ "$(q "select count(*) from events where kind = 'command_result' and event_id = 'command:$A:done'
        and request_id = $REQ and source_status = 'command_done' and id = (select result_event_id from commands where id = $A)")" = 1 ] \
    || fail "no command_result event for $A"
ok "idempotency key: performed once, done, reference ENC-000001, command_result event in the timeline"

# ---- 4. lookup by our reference --------------------------------------------------------------
B=$(insert pickup_lookup "$REQ")
wait_for 20 '[ "$(stat_of busy)" = 1 ]' "command $B did not reach the software"
adapter_kill9
adapter_start
wait_for 30 '[ "$(status_of "$B")" = done ]' "command $B not done after the restart"
[ "$(stat_of created.lookup)" = 1 ] || fail "looked-up command performed $(stat_of created.lookup) times"
[ "$(q "select possible_duplicate::text || ' ' || (result->>'found_by_lookup') from commands where id = $B")" = "false true" ] \
    || fail "command $B row: $(q "select possible_duplicate, result from commands where id = $B")"
ok "lookup: found by our reference after the restart, performed once, not flagged"

# ---- 5. neither: at-least-once, flagged -----------------------------------------------------
C=$(insert pickup_unsafe "$REQ")
wait_for 20 '[ "$(stat_of busy)" = 1 ]' "command $C did not reach the software"
adapter_kill9
adapter_start
wait_for 30 '[ "$(status_of "$C")" = done ]' "command $C not done after the restart"
[ "$(stat_of created.unsafe)" = 2 ] || fail "unsafe command performed $(stat_of created.unsafe) times, expected 2"
[ "$(q "select possible_duplicate from commands where id = $C")" = t ] || fail "command $C not flagged possible_duplicate"
grep -q "command $C (pickup_unsafe) resumed after a restart: .*at-least-once" "$W/adapter.log" \
    || fail "the at-least-once resume of $C is not logged"
ok "no idempotency key nor lookup: sent again (at-least-once), flagged possible_duplicate"

# ---- 6. a result produced while the hub is down is recorded later --------------------------
sim_stop
D=$(insert pickup_idem "$REQ")
wait_for 20 'grep -q "command $D (pickup_idem): attempt [0-9]* failed" "$W/adapter.log"' "command $D not attempted"
hub_kill9
sim_start
wait_for 20 'grep -q "command $D (pickup_idem) done" "$W/adapter.log"' "command $D not performed while the hub is down"
[ "$(status_of "$D")" = sent ] || fail "command $D: $(status_of "$D") while the hub was down"
hub_start
wait_for 30 '[ "$(status_of "$D")" = done ]' "the result of $D was not recorded after the hub came back"
[ "$(q "select count(*) from events where event_id = 'command:$D:done'")" = 1 ] || fail "no single event for $D"
ok "result kept by the adapter while the hub was down (SIGKILL), recorded once after"

# ---- 7. an unknown kind fails; a command without a request has no event -----------------
E=$(insert pickup_teleport)
wait_for 20 '[ "$(status_of "$E")" = failed ]' "unknown kind: command $E not failed"
q "select error from commands where id = $E" | grep -q "unknown command kind 'pickup_teleport'" \
    || fail "command $E error: $(q "select error from commands where id = $E")"
[ "$(q "select coalesce(result_event_id::text, 'none') from commands where id = $E")" = none ] \
    || fail "a command without a request got an event"
ok "unknown kind: failed with its reason; no request, no event"

# ---- 8. every result once; no personal data outside the commands payload --------------------
[ "$(q "select count(*) from events where kind = 'command_result'")" = 4 ] \
    || fail "command_result events: $(q "select string_agg(event_id, ',') from events where kind = 'command_result'")"
[ "$(q "select count(*) from commands where status = 'done'")" = 4 ] || fail "done commands"
grep -qiE 'DUPONT|Église' "$W/hub.log" "$W/adapter.log" && fail "personal data in the logs"
q "select row_to_json(e)::text from events e" | grep -qiE 'DUPONT|Église' && fail "personal data in events"
ok "4 command_result events, one per result; no personal data in logs or events"

# ---- 9. an adapter without a 'commands' section refuses commands (no endless redelivery) -----
kill -TERM "$ADAPTER_PID"; wait "$ADAPTER_PID" 2>/dev/null; ADAPTER_PID=
F=$(insert pickup_idem "$REQ")
replay demo "$W/records.jsonl" --rate 2 --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay exit $REPLAY_RC"
wait_for 10 '[ "$(status_of "$F")" = failed ]' "command $F not refused by an adapter without commands"
q "select error from commands where id = $F" | grep -q "performs no commands" || fail "command $F error"
ok "an adapter without a 'commands' section answers failed"

hub_stop || fail "hub did not stop cleanly"
ok "hub and adapter stopped cleanly"
