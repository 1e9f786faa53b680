#!/usr/bin/env bash
# The front office registers requests (issue 20, item 1; docs/intake.md): POST /v1/requests
# with curl, as a counter agent's page would, against the real API, hub and PostgreSQL.
#   - a counter visit for a citizen found by search: 201 with a tracking code at once, the
#     request in that citizen's timeline, channel guichet, the agent's token the actor;
#   - a phone call with what the caller says: self-declared, a citizen of its own and a
#     proposal, never attached to the file of the person whose e-mail was given;
#   - a letter: a yearly registration number, drawn once per letter, requested_at the day
#     it arrived; an identity card seen at the counter checks the names and birth date;
#   - what a careless clerk or an attacker sends is refused with words naming the field,
#     and stores nothing: unknown channel or category, empty description, both or neither
#     of citizen_id and citizen, an unknown citizen, a future date, a bad e-mail, no token,
#     a citizen's role.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
API_PER_MINUTE=3 api_setup intake 20
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
post() {   # post BODY [TOKEN]
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer ${2:-$T_DECH}" \
        -H 'Content-Type: application/json' --data-binary "$1" "$U/v1/requests")
}
requests() { q "select count(*) from requests"; }

# 1. a counter visit for a citizen the agent found
C=$(q "select citizen_id from citizen_sources where source = 'demo' and source_citizen_id = 'U-4'")
post "{\"channel\": \"guichet\", \"category\": \"encombrants\", \"description\": \"Canapé et matelas\\nà enlever\", \"citizen_id\": $C}"
[ "$S" = 201 ] || fail "counter visit: $S $(cat "$W/body")"
CODE=$(js 'd["tracking_code"]')
[[ "$CODE" =~ ^[ACDEFHJKLMNPRTUVWXY34679]{11}$ ]] || fail "tracking code (10 drawn + a check): $CODE"
[ "$(js 'd["citizen_id"]')" = "$C" ] && [ "$(js 'd["service"]')" = dechets ] || fail "answer: $(cat "$W/body")"
[ "$(q "select channel || ',' || status || ',' || citizen_id || ',' || (requested_at is not null) from requests where tracking_code = '$CODE'")" = "guichet,received,$C,true" ] \
    || fail "the stored request"
get "/v1/citizens/$C/timeline" "$T_DECH"
grep -q "$CODE" "$W/body" || fail "the request is not in the citizen's timeline"
get "/v1/track/$CODE"
[ "$S" = 200 ] || fail "the citizen cannot follow the code: $S"
sleep 0.3
[ "$(q "select count(*) from api_audit where action = 'request_register' and citizen_id = $C")" = 1 ] || fail "not audited"
ok "a counter visit for a found citizen: 201 with a tracking code, in the citizen's timeline, audited"

# the code read aloud and typed back wrong: caught before any lookup, free of the budget
swapped=${CODE:0:3}${CODE:4:1}${CODE:3:1}${CODE:5}
wrong=${CODE:0:6}$( [ "${CODE:6:1}" = A ] && echo C || echo A )${CODE:7}
for bad in "$swapped" "$wrong" "$swapped" "$wrong" "$swapped"; do
    [ "$bad" = "$CODE" ] && continue
    get "/v1/track/$bad"
    [ "$S" = 400 ] && grep -q '"mistyped"' "$W/body" || fail "a mistyped code $bad: $S $(cat "$W/body")"
done
get "/v1/track/${CODE:0:4}-${CODE:4:4}-${CODE:8}"
[ "$S" = 200 ] || fail "the code as written on a receipt, after 5 mistyped tries (3 a minute): $S"
valid_unknown() {   # an 11-character code whose check holds, of a request that does not exist
    python3 -c "
A='ACDEFHJKLMNPRTUVWXY34679'
for b in ('ACDEFHJKL' + x for x in A):
    for l in A:
        s = sum((i + 1) * A.index(ch) for i, ch in enumerate(b + l))
        c = ((29 - s % 29) * 8) % 29
        if c < 24 and b + l + A[c] != '$CODE':
            print(b + l + A[c])
" | sed -n "${1}p"
}
statuses=""
for i in 1 2 3; do get "/v1/track/$(valid_unknown $i)"; statuses="$statuses $S"; done
[ "$statuses" = " 404 429 429" ] || fail "well-formed unknown codes spend the budget (3 a minute, 2 spent): $statuses"
ok "a mistyped code (one wrong or two swapped characters) is 400 mistyped before any lookup, and costs no budget"

# 2. a phone call: what the caller says is self-declared
victim_email=$(q "select identity->>'email' from citizen_sources where source = 'demo' and source_citizen_id = 'U-4'")
post "{\"channel\": \"telephone\", \"category\": \"bac_casse\", \"description\": \"Bac cassé\", \"citizen\": {\"last_name\": \"Dupont\", \"first_name\": \"J\", \"email\": \"$victim_email\", \"phone\": \"06 11 22 33 44\"}}"
[ "$S" = 201 ] || fail "phone call: $S $(cat "$W/body")"
P=$(js 'd["citizen_id"]')
[ "$P" != "$C" ] || fail "a caller's stated e-mail attached the request to that citizen's file"
[ "$(q "select rule || ',' || declared || ',' || certainty from citizen_sources where citizen_id = $P")" = "new,true,1" ] \
    || fail "the caller's identity: $(q "select rule, declared, certainty from citizen_sources where citizen_id = $P")"
lo=$(( C < P ? C : P )); hi=$(( C < P ? P : C ))
[ "$(q "select rule from merge_proposals where citizen_a = $lo and citizen_b = $hi and status = 'open'")" = declared_email ] \
    || fail "no proposal for an agent to confirm"
ok "a phone call's stated identity is self-declared: a citizen of its own and a proposal"

# 3. letters: a registration number each, the arrival day, an identity card checked
yesterday=$(date -u -d '1 day ago' +%Y-%m-%dT09:30:00Z)
post "{\"channel\": \"courrier\", \"category\": \"encombrants\", \"description\": \"Lettre manuscrite\", \"requested_at\": \"$yesterday\", \"citizen\": {\"last_name\": \"Martin\", \"first_name\": \"Léa\", \"birth_date\": \"1990-02-01\", \"address\": {\"line1\": \"9 rue Neuve\", \"postcode\": \"75019\", \"city\": \"Paris\"}}, \"checked_document\": \"cni\", \"location\": {\"address\": \"9 rue Neuve\", \"lat\": 48.88, \"lon\": 2.38}}"
[ "$S" = 201 ] || fail "letter: $S $(cat "$W/body")"
N1=$(js 'd["registration_number"]'); L1=$(js 'd["citizen_id"]')
post "{\"channel\": \"courrier\", \"category\": \"encombrants\", \"description\": \"Deuxième lettre\", \"requested_at\": \"$yesterday\", \"citizen_id\": $C}"
[ "$S" = 201 ] || fail "second letter: $S"
N2=$(js 'd["registration_number"]')
year=$(TZ=Europe/Paris date -d "$yesterday" +%Y)
[[ "$N1" =~ ^$year-[0-9]{6}$ ]] && [ "${N2%-*}" = "$year" ] && [ $((10#${N2#*-})) = $((10#${N1#*-} + 1)) ] \
    || fail "registration numbers: $N1 then $N2"
[ "$(q "select request_ref || ',' || to_char(requested_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') from requests where request_ref = '$N1'")" = "$N1,$yesterday" ] \
    || fail "the letter's request: $(q "select request_ref, requested_at from requests where request_ref = '$N1'")"
[ "$(q "select string_agg(field || ':' || document, ',' order by field) from citizen_checks where source = 'accueil'")" = \
  "birth_date:cni,family_name:cni,given_names:cni" ] || fail "the identity card's checks"
[ "$(q "select sr.location->>'address' from requests r join source_records sr on sr.request_id = r.id where r.request_ref = '$N1'")" = "9 rue Neuve" ] \
    || fail "the letter's location"
[ "$(q "select identity->'address'->>'line1' from citizen_sources where citizen_id = $L1")" = "9 rue Neuve" ] || fail "the writer's address"
ok "letters get consecutive registration numbers and their arrival day; an identity card seen checks names and birth date"

# 4. what a careless clerk or an attacker sends
before=$(requests)
refused() {   # refused STATUS WORDS BODY [TOKEN]
    post "$3" "${4:-}"
    [ "$S" = "$1" ] || fail "$3: $S (want $1) $(cat "$W/body")"
    [ -z "$2" ] || grep -q "$2" "$W/body" || fail "$3: the answer does not say '$2': $(cat "$W/body")"
}
refused 400 "channel" '{"channel": "fax", "category": "encombrants", "description": "x", "citizen_id": 1}'
refused 400 "channel" '{"channel": "web", "category": "encombrants", "description": "x", "citizen_id": 1}'
refused 400 "no such service" '{"channel": "guichet", "category": "piscine", "description": "x", "citizen_id": 1}'
refused 400 "no such service" "{\"channel\": \"guichet\", \"category\": \"encombrants\", \"service\": \"urbanismе\", \"description\": \"x\", \"citizen_id\": $C}"
refused 400 "description" '{"channel": "guichet", "category": "encombrants", "description": "   ", "citizen_id": 1}'
refused 400 "one of them" "{\"channel\": \"guichet\", \"category\": \"encombrants\", \"description\": \"x\", \"citizen_id\": $C, \"citizen\": {\"last_name\": \"X\"}}"
refused 400 "one of them" '{"channel": "guichet", "category": "encombrants", "description": "x"}'
refused 409 "" '{"channel": "guichet", "category": "encombrants", "description": "x", "citizen_id": 99999999}'
refused 400 "requested_at" "{\"channel\": \"courrier\", \"category\": \"encombrants\", \"description\": \"x\", \"citizen_id\": $C, \"requested_at\": \"2099-01-01T00:00:00Z\"}"
refused 400 "citizen.email" '{"channel": "telephone", "category": "encombrants", "description": "x", "citizen": {"last_name": "X", "email": "pas-un-mail"}}'
refused 400 "citizen.birth_date" '{"channel": "guichet", "category": "encombrants", "description": "x", "citizen": {"last_name": "X", "birth_date": "31/02/1990"}}'
refused 400 "control" '{"channel": "guichet", "category": "encombrants", "description": "x", "citizen": {"last_name": "X\u0007Y"}}'
refused 400 "" 'not json'
refused 400 "" '[1, 2]'
S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary '{}' "$U/v1/requests")
[ "$S" = 401 ] || fail "no token: $S"
[ "$(requests)" = "$before" ] || fail "a refused registration stored a request"
[ "$(q "select last from courrier_numbers where year = $year")" = "$((10#${N2#*-}))" ] || fail "a refused letter drew a number"
grep -q "pas-un-mail\|31/02/1990" "$W/api.log" && fail "a refused value is in the log"
ok "refused with words naming the field, nothing stored, no number drawn, no value in the log"
api_stop
