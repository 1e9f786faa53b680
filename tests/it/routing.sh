#!/usr/bin/env bash
# Routing and dispatch (issue 20 item 2; docs/routing.md), with the shipped deploy/routing.yaml,
# against the real hub, API, PostgreSQL, the dechets adapter (webhook driver + commands) and
# the waste software's simulator (tests/sim/dechets.py serve):
#   - end to end: POST /v1/requests (encombrants) → dechets → one command delivered → the
#     software creates ENC-… → its status changes come back into the same request (same
#     tracking code, one timeline, no second request);
#   - the rules: first match wins, keywords whole words without case or accents, the triage
#     queue by default (no command: it has no software), a service the agent chose kept;
#   - re-routing by an agent: one timeline, a second command once (the same POST again is a
#     409), another service's agent refused (403), an unknown service 400;
#   - the hub killed (-9) with a routed command not yet delivered: delivered once on restart;
#   - an attacker's description: every keyword, SQL, 4,000 bytes: one command, tables intact;
#   - the race of docs/routing.md: the software's first webhook before its answer: the link
#     is refused and recorded ('conflict'), the two records stay apart, nothing is lost.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
SIM=$ROOT/tests/sim/dechets.py
api_setup routing 20 "demo:$ROOT/deploy/mappings/demo.yaml" "dechets:$ROOT/adapters/dechets/mapping.yaml"
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
post() {   # post BODY [TOKEN]
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer ${2:-$T_SUP}" \
        -H 'Content-Type: application/json' --data-binary "$1" "$U/v1/requests")
}
route() {  # route CODE BODY TOKEN
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $3" \
        -H 'Content-Type: application/json' --data-binary "$2" "$U/v1/requests/$1/route")
}
# the triage queue and the roads service as the mailbox and the roads' software would have left them
q "insert into service_categories (category, service) values ('divers', 'accueil'), ('voirie', 'voirie') on conflict do nothing"
T_ACC=$("$CTL" --config "$W/api.yaml" token create --role agent --service accueil 2>/dev/null)
T_VOI=$("$CTL" --config "$W/api.yaml" token create --role agent --service voirie 2>/dev/null)
[ ${#T_ACC} -eq 64 ] && [ ${#T_VOI} -eq 64 ] || fail "token create"

# the hub again, with the city's routing rules
hub_stop
printf 'routing: %s\ncommands:\n  result_timeout_ms: 60000\n' "$ROOT/deploy/routing.yaml" >>"$W/hub.yaml"
restart_hub() { mv "$W/hub.log" "$W/hub.log.$(date +%s%N)"; hub_start; }
restart_hub
grep -q "routing: 5 rules from" "$W/hub.log" || fail "routing not loaded: $(grep routing "$W/hub.log")"
[ "$(q "select count(*) from routing_rules")" = 5 ] && [ "$(q "select default_service from routing_config")" = accueil ] \
    || fail "rules not in the database"

SIM_PID= ADAPTER_PID=
at_exit '[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; [ -n "$ADAPTER_PID" ] && kill -9 "$ADAPTER_PID" 2>/dev/null'
SECRET_FILE=$W/webhook.secret PORT_FILE=$W/webhook.port
python3 -c 'import secrets; print(secrets.token_hex(24))' >"$SECRET_FILE"; chmod 600 "$SECRET_FILE"
API_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
    cat "$W/adapter.yaml"
    printf 'driver:\n  kind: webhook\n  source: dechets\n  port: 0\n  port_file: webhook.port\n  path: /webhooks/dechets\n'
    printf '  signature:\n    header: X-Signature\n    prefix: "sha256="\n    secret_file: webhook.secret\n'
    printf 'commands:\n  timeout_ms: 5000\n  max_attempts: 100\n  backoff_ms: 100\n  backoff_max_ms: 400\n'
    printf '  kinds:\n    demande_create:\n      url: "http://127.0.0.1:%s/api/demandes"\n' "$API_PORT"
    printf '      idempotency_header: Idempotency-Key\n      reference: numero\n'
} >"$W/dechets.yaml"
adapter_start() {
    rm -f "$PORT_FILE"
    "$ADAPTER" run --config "$W/dechets.yaml" >>"$W/adapter.log" 2>&1 &
    ADAPTER_PID=$!
    for _ in $(seq 1 100); do [ -s "$PORT_FILE" ] && return 0; sleep 0.1; done
    fail "adapter did not start: $(tail -n 3 "$W/adapter.log")"
}
adapter_stop() { kill -TERM "$ADAPTER_PID"; wait "$ADAPTER_PID" 2>/dev/null; ADAPTER_PID=; }
sim_start() {  # [ARGS...]
    python3 "$SIM" serve --api-port "$API_PORT" --port-file "$PORT_FILE" --secret-file "$SECRET_FILE" \
        --step-ms 400 --max-seconds 300 "$@" >"$W/sim.out" 2>>"$W/sim.log" &
    SIM_PID=$!
    for _ in $(seq 1 50); do grep -q listening "$W/sim.out" 2>/dev/null && return 0; sleep 0.1; done
    fail "the simulator did not start"
}
sim_stop() { kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null; SIM_PID=; }
stats() { curl -s "http://127.0.0.1:$API_PORT/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_for() {   # wait_for SQL EXPECTED WHAT [SECONDS]
    local i got
    for i in $(seq 1 $(( ${4:-20} * 10 ))); do
        got=$(q "$1"); [ "$got" = "$2" ] && return 0; sleep 0.1
    done
    fail "$3: '$got', expected '$2'"
}
sim_start
adapter_start
requests_before=$(q "select count(*) from requests")

# 1. end to end: the counter registers a bulky-waste pickup
C=$(q "select citizen_id from citizen_sources where source = 'demo' and source_citizen_id = 'U-4'")
post "{\"channel\": \"guichet\", \"category\": \"encombrants\", \"description\": \"Un canapé et un matelas\", \"citizen_id\": $C}"
[ "$S" = 201 ] || fail "register: $S $(cat "$W/body")"
CODE=$(js 'd["tracking_code"]'); RID=$(js 'd["request_id"]')
[ "$(q "select service_to || ',' || reason from request_routes where request_id = $RID")" = "dechets,kept" ] \
    || fail "routing decision: $(q "select * from request_routes where request_id = $RID")"
[ "$(q "select count(*) || ',' || min(idempotency_key) || ',' || min(kind) from commands where request_id = $RID")" = "1,route-$RID-1,demande_create" ] \
    || fail "the command: $(q "select id, idempotency_key, kind from commands where request_id = $RID")"
wait_for "select status from commands where request_id = $RID" done "the command"
REF=$(q "select result->>'reference' from commands where request_id = $RID")
[[ "$REF" =~ ^ENC-[0-9]{6}$ ]] || fail "the software's id: $REF"
[ "$(stats "d['demandes']['$REF']['reference_civibus']")" = "$CODE" ] || fail "the payload's tracking code"
[ "$(stats "'usager' in d['demandes']['$REF']['keys'] and 'commentaire' in d['demandes']['$REF']['keys']")" = True ] \
    || fail "the payload lacks the citizen or the description: $(stats "d['demandes']['$REF']['keys']")"
wait_for "select link from request_routes where request_id = $RID" linked "the link"
[ "$(q "select request_id from request_sources where source = 'dechets' and source_record_id = '$REF'")" = "$RID" ] \
    || fail "request_sources does not link $REF"
wait_for "select status from requests where id = $RID" resolved "the software's statuses" 30
[ "$(q "select count(*) from events where request_id = $RID and source = 'dechets' and kind <> 'command_result'")" = 3 ] \
    || fail "the software's 3 changes"
[ "$(q "select count(*) from requests")" = $((requests_before + 1)) ] || fail "the software's record made a request of its own"
[ "$(q "select tracking_code from requests where id = $RID")" = "$CODE" ] || fail "the tracking code changed"
get "/v1/requests/$RID" "$T_SUP"
[ "$(js "','.join(e['source'] for e in d['events'])")" = "accueil,dechets,dechets,dechets,dechets" ] \
    || [ "$(js "sorted(e['source'] for e in d['events'])")" = "['accueil', 'dechets', 'dechets', 'dechets', 'dechets']" ] \
    || fail "one timeline: $(js "[(e['source'], e['status']) for e in d['events']]")"
get "/v1/track/$CODE"
[ "$S" = 200 ] && grep -q resolved "$W/body" || fail "the citizen's tracking page: $S"
ok "POST /v1/requests → dechets → one command → the software's $REF → its 3 status changes in the same request ($CODE), one timeline"

# 2. the rules
reg() {   # reg DESCRIPTION [CATEGORY] [CHANNEL] → $RID, $CODE
    local body
    body=$(python3 -c "import json,sys; print(json.dumps({'channel': sys.argv[3], 'category': sys.argv[2], 'description': sys.argv[1], 'citizen_id': $C}))" \
        "$1" "${2:-divers}" "${3:-telephone}")
    post "$body"
    [ "$S" = 201 ] || fail "register '$1': $S $(cat "$W/body")"
    RID=$(js 'd["request_id"]'); CODE=$(js 'd["tracking_code"]')
}
svc() { q "select service from requests where id = $RID"; }
reg "JE VOUDRAIS FAIRE ENLEVER UN CANAPE"
[ "$(svc)" = dechets ] && [ "$(q "select rule_name from request_routes where request_id = $RID")" = "dechets par mots" ] \
    || fail "upper case, no accent: $(svc)"
[ "$(q "select count(*) from commands where request_id = $RID")" = 1 ] || fail "no command for a keyword route"
[ "$(q "select count(*) from events where request_id = $RID and kind = 'routed' and service = 'dechets'")" = 1 ] \
    || fail "the routed event"
reg "Un nid-de-poule sur la chaussée, près de l’école"
[ "$(svc)" = voirie ] && [ "$(q "select count(*) from commands where request_id = $RID")" = 0 ] \
    || fail "voirie (no software): $(svc)"
reg "Le trottoir est encombré par une machine à laver"
[ "$(svc)" = dechets ] || fail "first match wins (dechets before voirie): $(svc)"
reg "Mes canapéxyz et trottoirs sont sales"
[ "$(svc)" = accueil ] && [ "$(q "select reason from request_routes where request_id = $RID")" = default ] \
    || fail "keywords are whole words (canapéxyz, trottoirs): $(svc)"
[ "$(q "select count(*) from commands where request_id = $RID")" = 0 ] \
    && [ "$(q "select count(*) from events where request_id = $RID and kind = 'routed'")" = 0 ] \
    || fail "the triage queue: no command, no routed event"
TRIAGE=$CODE TRIAGE_ID=$RID
reg "Acte de naissance de mon fils" bac_casse
[ "$(svc)" = dechets ] && [ "$(q "select reason from request_routes where request_id = $RID")" = kept ] \
    || fail "a service given by the category is kept: $(svc)"
ok "first match wins, whole words without case or accents, the triage queue by default, a given service kept"

# 3. re-routing by an agent
N0=$(stats "d['created']")
route "$TRIAGE" '{"service": "dechets"}' "$T_VOI"
[ "$S" = 403 ] || fail "an agent of voirie re-routes a triage request: $S $(cat "$W/body")"
route "$TRIAGE" '{"service": "piscine"}' "$T_ACC"
[ "$S" = 400 ] || fail "unknown service: $S"
route "$TRIAGE" '{"service": "dechets", "x": 1}' "$T_ACC"
[ "$S" = 400 ] || fail "unknown key: $S"
route "ACDEFHJKLMN" '{"service": "dechets"}' "$T_ACC"
[ "$S" = 409 ] || fail "a mistyped code: $S"
[ "$(q "select service from requests where id = $TRIAGE_ID")" = accueil ] \
    && [ "$(q "select count(*) from commands where request_id = $TRIAGE_ID")" = 0 ] || fail "a refusal changed something"
route "$TRIAGE" '{"service": "dechets"}' "$T_ACC"
[ "$S" = 200 ] && [ "$(js 'd["previous_service"]')" = accueil ] || fail "re-route: $S $(cat "$W/body")"
route "$TRIAGE" '{"service": "dechets"}' "$T_ACC"
[ "$S" = 403 ] || fail "the same re-route again, by the accueil agent (no longer their service): $S"
route "$TRIAGE" '{"service": "dechets"}' "$T_SUP"
[ "$S" = 409 ] || fail "the same re-route again: $S"
[ "$(q "select count(*) || ',' || min(idempotency_key) from commands where request_id = $TRIAGE_ID")" = "1,route-$TRIAGE_ID-2" ] \
    || fail "one command for the re-route: $(q "select idempotency_key from commands where request_id = $TRIAGE_ID")"
wait_for "select link from request_routes where request_id = $TRIAGE_ID and seq = 2" linked "the re-route's link"
wait_for "select status from requests where id = $TRIAGE_ID" resolved "the re-routed request's statuses" 30
[ "$(stats "d['created']")" = $((N0 + 1)) ] || fail "the software created $(( $(stats "d['created']") - N0 )) requests"
[ "$(q "select tracking_code from requests where id = $TRIAGE_ID")" = "$TRIAGE" ] \
    && [ "$(q "select count(distinct request_id) from events where request_id = $TRIAGE_ID or source_record_id = (select reference from request_routes where request_id = $TRIAGE_ID and seq = 2)")" = 1 ] \
    || fail "the re-routed request split"
route "$TRIAGE" '{"service": "voirie"}' "$T_SUP"
[ "$S" = 409 ] || fail "re-route of a resolved request: $S"
sleep 0.3
[ "$(q "select count(*) from api_audit where action = 'request_route' and request_id = $TRIAGE_ID")" -ge 1 ] || fail "not audited"
ok "an agent re-routes: same code, one timeline, one more command, once; another service's agent 403, unknown service 400"

# 4. the hub killed with a routed command not yet delivered
adapter_stop
reg "Un matelas à enlever"
hub_kill9
[ "$(q "select status from commands where request_id = $RID")" = pending ] || fail "the command before the restart"
restart_hub
adapter_start
wait_for "select status from commands where request_id = $RID" done "the command after the restart"
hub_kill9; restart_hub
sleep 1
[ "$(q "select count(*) from commands where request_id = $RID")" = 1 ] \
    && [ "$(stats "sum(1 for v in d['demandes'].values() if v['reference_civibus'] == '$CODE')")" = 1 ] \
    || fail "dispatched more than once"
ok "the hub killed (-9) around a routed command: delivered once"

# 5. an attacker's description
kw=$(python3 -c "print(' '.join(['canapé', 'trottoir', 'acte de naissance', 'matelas'] * 200)[:3900])")
reg "$kw"
[ "$(svc)" = dechets ] && [ "$(q "select count(*) from commands where request_id = $RID")" = 1 ] || fail "every keyword: $(svc)"
reg "x'); DELETE FROM commands; DROP TABLE routing_rules; -- \\\\m.*\\\\M (canapé|.*)"
[ "$(q "select count(*) from routing_rules")" = 5 ] && [ "$(q "select count(*) from commands")" -ge 4 ] || fail "SQL in a description"
[ "$(svc)" = dechets ] || fail "the SQL description: $(svc)"
post "{\"channel\": \"guichet\", \"category\": \"divers\", \"description\": \"$(head -c 5000 /dev/zero | tr '\0' a)\", \"citizen_id\": $C}"
[ "$S" = 400 ] || fail "a 5,000-byte description: $S"
ok "a description with every keyword, SQL or regex text: one command, first rule; 5,000 bytes refused"

# 6. the race: the software's first webhook before its answer
sim_stop; sim_start --push-before
reg "Un canapé, vite"
for _ in $(seq 1 200); do
    LINK=$(q "select link from request_routes where request_id = $RID"); [ -n "$LINK" ] && break; sleep 0.1
done
REF=$(q "select reference from request_routes where request_id = $RID")
wait_for "select count(*) from events where source = 'dechets' and source_record_id = '$REF' and kind <> 'command_result'" 3 \
    "the software's changes of $REF" 30
case "$LINK" in
conflict)
    [ "$(q "select count(*) from request_sources where source = 'dechets' and source_record_id = '$REF' and request_id <> $RID")" = 1 ] \
        || fail "the early record"
    ok "the software's webhook before its answer: the link refused and recorded as a conflict, its 3 changes kept on its own record" ;;
linked)
    [ "$(q "select count(distinct request_id) from events where source = 'dechets' and source_record_id = '$REF'")" = 1 ] \
        || fail "linked, but the changes are split"
    ok "the software's webhook before its answer (the result came first all the same): linked, its 3 changes in the request" ;;
*) fail "the race: link '$LINK'" ;;
esac

grep -qi "dupont\|usager1@\|canapé" "$W/hub.log" "$W/adapter.log" "$W/sim.log" && fail "personal data in a log"
ok "no personal data in the logs"
