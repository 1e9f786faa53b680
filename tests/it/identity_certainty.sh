#!/usr/bin/env bash
# Identity certainty (issue 18, item 1; docs/identity.md "Certainty"), against the real hub,
# PostgreSQL and civibus-api, with curl as an agent would use it:
#   - the agent's view gives each field's level: a back-office block 'logiciel', an Open311
#     form 'declare';
#   - POST /v1/citizens/{id}/check raises fields to 'agent' with the document's kind; what
#     a careless clerk or an attacker sends is refused (an identity card does not prove an
#     e-mail, unknown fields and documents, a field the block lacks, another service's
#     citizen, a pair of someone else), and nothing changes then;
#   - a self-declared e-mail checked by reaching the person becomes a link target: a
#     back-office record with it joins that citizen, which an unchecked one never does;
#   - a new value from the software drops the check of that field only; a rectification
#     with a document checks the new value, one without drops the check;
#   - a source declared certified (level 4) shows 'certifie'; the export carries it all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
api_setup identity_certainty 20
O=/open311/v2
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
post() {   # post PATH TOKEN BODY
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
        --data-binary "$3" "$U$1")
}
form() {   # form BODY: an anonymous Open311 POST; its citizen in $FORM
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-binary "$1" "$U$O/requests.json")
    [ "$S" = 200 ] || fail "Open311 POST: $S $(cat "$W/body")"
    FORM=$(q "select citizen_id from requests where tracking_code = '$(js 'd[0]["service_request_id"]')'")
    FORM_KEY=$(q "select source_citizen_id from citizen_sources where citizen_id = $FORM")
}
# the certainty the timeline shows for field $3 of the pair whose key is $2, of citizen $1, as agent $4
level() {
    get "/v1/citizens/$1/timeline" "${4:-$T_DECH}"
    [ "$S" = 200 ] || fail "timeline $1: $S $(cat "$W/body")"
    js "[i['certainty'].get('$3') for i in d['citizen']['identities'] if i['source_citizen_id'] == '$2'][0]"
}

# 1. the agent's view: a back-office block is 'logiciel', a form 'declare'
C=$(q "select citizen_id from citizen_sources where source = 'demo' and source_citizen_id = 'U-4'")
[ -n "$C" ] || fail "no demo citizen U-4"
[ "$(level "$C" U-4 family_name)" = logiciel ] || fail "a back-office name: $(cat "$W/body")"
[ "$(js "[sorted(i['certainty']) for i in d['citizen']['identities'] if i['source_citizen_id'] == 'U-4'][0]")" = \
  "['address', 'birth_date', 'email', 'family_name', 'given_names', 'phone']" ] \
    || fail "the fields with a level: $(cat "$W/body")"
form "service_code=encombrants&description=Bac+cass%C3%A9&first_name=L%C3%A9a&last_name=Martin&email=lea.martin%40example.fr"
[ "$(level "$FORM" "$FORM_KEY" email)" = declare ] || fail "a form's e-mail: $(cat "$W/body")"
[ "$(q "select string_agg(distinct certainty::text || declared::text, ',') from citizen_identifiers where citizen_id = $FORM")" = 1true ] \
    || fail "the form's identifiers are not level 1 and declared"
ok "the agent's view gives each field's certainty: a back-office 'logiciel', a form 'declare'"

# 2. what a careless clerk or an attacker sends is refused, and changes nothing
P="\"source\": \"demo\", \"source_citizen_id\": \"U-4\""
try() {   # try EXPECTED_STATUS BODY [TOKEN] [CITIZEN]
    post "/v1/citizens/${4:-$C}/check" "${3:-$T_DECH}" "$2"
    [ "$S" = "$1" ] || fail "check $2: $S (want $1) $(cat "$W/body")"
}
try 400 "{$P, \"fields\": [\"email\"], \"document\": \"cni\"}"
grep -q "does not prove email" "$W/body" || fail "the refusal does not say why: $(cat "$W/body")"
try 400 "{$P, \"fields\": [\"address\"], \"document\": \"passeport\"}"
try 400 "{$P, \"fields\": [\"birth_date\"], \"document\": \"carte_vitale\"}"
try 400 "{$P, \"fields\": [\"nir\"], \"document\": \"cni\"}"
try 400 "{$P, \"fields\": [\"birth_date}\", \"email\"], \"document\": \"cni\"}"
try 400 "{$P, \"fields\": [], \"document\": \"cni\"}"
try 400 "{$P, \"fields\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\"], \"document\": \"cni\"}"
try 400 "{$P, \"fields\": \"birth_date\", \"document\": \"cni\"}"
try 400 "{$P, \"fields\": [\"birth_date\"]}"
try 400 "not json"
try 400 "{$P, \"fields\": [\"birth_name\"], \"document\": \"cni\"}"      # the block has no birth name
grep -q "has no birth_name" "$W/body" || fail "absent field: $(cat "$W/body")"
try 404 "{\"source\": \"demo\", \"source_citizen_id\": \"U-5\", \"fields\": [\"birth_date\"], \"document\": \"cni\"}"
try 409 "{\"source\": \"demo\", \"source_citizen_id\": \"U-5\", \"fields\": [\"birth_date\"], \"document\": \"cni\"}" "$T_SUP"
try 404 "{$P, \"fields\": [\"birth_date\"], \"document\": \"cni\"}" "$T_DECH" 999999
q "insert into service_categories (service, category) values ('urbanisme', 'permis_construire') on conflict do nothing" >/dev/null
T_URBA=$("$CTL" --config "$W/api.yaml" token create --role agent --service urbanisme 2>/dev/null)
[ ${#T_URBA} -eq 64 ] || fail "token for urbanisme"
try 404 "{$P, \"fields\": [\"birth_date\"], \"document\": \"cni\"}" "$T_URBA"
S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "{$P, \"fields\": [\"birth_date\"], \"document\": \"cni\"}" "$U/v1/citizens/$C/check")
[ "$S" = 401 ] || fail "a check without a token: $S"
[ "$(q "select count(*) from citizen_checks")" = 0 ] || fail "a refused check left a row"
ok "refused: a document that does not prove the field, unknown fields and documents, absent fields, another service's citizen, someone else's pair"

# 3. an agent checks the names and the birth date on an identity card
try 200 "{$P, \"fields\": [\"family_name\", \"given_names\", \"birth_date\", \"birth_date\"], \"document\": \"cni\"}"
[ "$(js 'd["checked"]')" = 3 ] || fail "checked: $(cat "$W/body")"
[ "$(level "$C" U-4 birth_date)" = agent ] || fail "birth date after the check: $(cat "$W/body")"
[ "$(js "[i['certainty']['email'] for i in d['citizen']['identities'] if i['source_citizen_id'] == 'U-4'][0]")" = logiciel ] \
    || fail "the e-mail was not checked"
[ "$(js "[[(c['field'], c['document']) for c in i['checks']] for i in d['citizen']['identities'] if i['source_citizen_id'] == 'U-4'][0]")" = \
  "[('birth_date', 'cni'), ('family_name', 'cni'), ('given_names', 'cni')]" ] || fail "checks: $(cat "$W/body")"
[ "$(q "select min(certainty)::text || max(certainty)::text from citizen_identifiers where source = 'demo' and source_citizen_id = 'U-4' and kind = 'name_birth'")" = 33 ] \
    || fail "name + birth date identifiers not at level 3"
[ "$(q "select certainty from citizen_identifiers where source = 'demo' and source_citizen_id = 'U-4' and kind = 'name_address'")" = 2 ] \
    || fail "name + address is as sure as the address (unchecked)"
sleep 0.3
[ "$(q "select count(*) from api_audit where action = 'citizen_check' and citizen_id = $C")" -ge 1 ] \
    || fail "the check is not audited"
ok "a check raises the fields to 'agent' with the document's kind; identifiers follow their least sure field; audited"

# 4. a self-declared e-mail becomes a link target only once checked
form "service_code=encombrants&description=Autre&first_name=Paul&last_name=Roux&email=paul.roux%40example.fr"
UNCHECKED=$FORM
form "service_code=encombrants&description=Bac&first_name=L%C3%A9a&last_name=Martin&email=lea.martin2%40example.fr"
post "/v1/citizens/$FORM/check" "$T_DECH" "{\"source\": \"open311\", \"source_citizen_id\": \"$FORM_KEY\", \"fields\": [\"email\"], \"document\": \"contact_confirme\"}"
[ "$S" = 200 ] || fail "check of the form's e-mail: $S $(cat "$W/body")"
[ "$(level "$FORM" "$FORM_KEY" email)" = agent ] || fail "form e-mail after check"
[ "$(level "$FORM" "$FORM_KEY" family_name)" = declare ] || fail "the form's name stays self-declared"
[ "$(q "select certainty || ',' || declared from citizen_identifiers where citizen_id = $FORM and kind = 'email'")" = "3,false" ] \
    || fail "the checked e-mail's identifier"
cat >"$W/d2.jsonl" <<'EOF'
{"id": "D-901", "version": 1, "type": "encombrants", "statut": "EN_COURS", "canal": "GUICHET", "date": "02/03/2024 09:01", "echeance": "02/04/2024", "objet": "Demande", "usager": {"id": "U-901", "nom": "MARTIN", "prenom": "Léa", "naissance": "01/02/1990", "email": "lea.martin2@example.fr", "tel": "06 98 76 54 31", "adresse": "9 rue Neuve"}}
{"id": "D-902", "version": 1, "type": "encombrants", "statut": "EN_COURS", "canal": "GUICHET", "date": "02/03/2024 09:02", "echeance": "02/04/2024", "objet": "Demande", "usager": {"id": "U-902", "nom": "ROUX", "prenom": "Paul", "naissance": "03/04/1980", "email": "paul.roux@example.fr", "tel": "06 98 76 54 32", "adresse": "10 rue Neuve"}}
EOF
replay demo "$W/d2.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"
[ "$(q "select citizen_id from citizen_sources where source = 'demo' and source_citizen_id = 'U-901'")" = "$FORM" ] \
    || fail "the back-office record did not join the citizen whose e-mail an agent checked"
[ "$(q "select rule from citizen_sources where source = 'demo' and source_citizen_id = 'U-901'")" = email ] || fail "rule"
other=$(q "select citizen_id from citizen_sources where source = 'demo' and source_citizen_id = 'U-902'")
[ -n "$other" ] && [ "$other" != "$UNCHECKED" ] || fail "a back-office record joined an unchecked form's citizen"
ok "a checked self-declared e-mail is a link target; an unchecked one never is"

# 5. a new value from the software drops that field's check only
sed -e 's/"version": 1/"version": 2/' "$W/d1.jsonl" | grep '"id": "U-4"' | head -1 \
    | sed -e 's/"naissance": "12\/05\/1971"/"naissance": "13\/05\/1971"/' \
          -e 's/"date": "[^"]*"/"date": "29\/03\/2024 10:00"/' >"$W/d3.jsonl"
[ -s "$W/d3.jsonl" ] || fail "no record of U-4 to send again"
replay demo "$W/d3.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay 3: $(cat "$W/replay.out")"
[ "$(q "select identity->>'birth_date' from citizen_sources where source = 'demo' and source_citizen_id = 'U-4'")" = 1971-05-13 ] \
    || fail "the new birth date was not stored: $(cat "$W/d3.jsonl") $(cat "$W/replay.out") $(q "select identity from citizen_sources where source_citizen_id = 'U-4'")"
[ "$(q "select string_agg(field, ',' order by field) from citizen_checks where source = 'demo' and source_citizen_id = 'U-4'")" = \
  "family_name,given_names" ] || fail "checks after a new birth date: $(q "select string_agg(field, ',') from citizen_checks")"
[ "$(level "$C" U-4 birth_date)" = logiciel ] || fail "the new birth date shows as checked"
ok "a new value from the software drops the check of that field, and only that one"

# 6. rectification: with a document the new value is checked, without the check goes
post "/v1/citizens/$C/rectify" "$T_SUP" "{$P, \"field\": \"birth_date\", \"value\": \"1971-05-12\", \"document\": \"passeport\"}"
[ "$S" = 200 ] || fail "rectify with a document: $S $(cat "$W/body")"
[ "$(level "$C" U-4 birth_date)" = agent ] || fail "rectified with a passport, not checked"
post "/v1/citizens/$C/rectify" "$T_SUP" "{$P, \"field\": \"email\", \"value\": \"u4@example.fr\", \"document\": \"cni\"}"
[ "$S" = 400 ] || fail "rectify an e-mail 'proved' by an identity card: $S"
[ "$(q "select identity->>'email' from citizen_sources where source = 'demo' and source_citizen_id = 'U-4'")" = usager4@example.fr ] \
    || fail "a refused rectification changed the block"
post "/v1/citizens/$C/rectify" "$T_SUP" "{$P, \"field\": \"family_name\", \"value\": \"DUPOND\"}"
[ "$S" = 200 ] || fail "rectify without a document: $S $(cat "$W/body")"
[ "$(level "$C" U-4 family_name)" = logiciel ] || fail "a rectified name kept the old value's check"
[ "$(q "select min(certainty) from citizen_identifiers where source = 'demo' and source_citizen_id = 'U-4' and kind = 'name_birth'")" = 2 ] \
    || fail "identifiers after the rectification"
ok "rectify with a document checks the new value; without one the old value's check goes"

# 7. a certified source; the export holds the levels and the checks
q "insert into identity_sources (source, channel, certainty) values ('demo', 'test: certified', 4)" >/dev/null
echo '{"id": "D-903", "version": 1, "type": "encombrants", "statut": "RECU", "canal": "WEB", "date": "02/03/2024 09:03", "echeance": "02/04/2024", "objet": "Demande", "usager": {"id": "U-903", "nom": "BLANC", "prenom": "Inès", "naissance": "05/06/1985", "email": "ines.blanc@example.fr"}}' >"$W/d4.jsonl"
replay demo "$W/d4.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay 4: $(cat "$W/replay.out")"
C4=$(q "select citizen_id from citizen_sources where source = 'demo' and source_citizen_id = 'U-903'")
[ "$(level "$C4" U-903 email)" = certifie ] || fail "a certified source's field: $(cat "$W/body")"
get "/v1/citizens/$C/export" "$T_SUP"
[ "$S" = 200 ] || fail "export: $S"
[ "$(js "[(i['certainty']['birth_date'], [c['document'] for c in i['checks']]) for i in d['identities'] if i['source_citizen_id'] == 'U-4'][0]")" = \
  "('agent', ['passeport', 'cni'])" ] || fail "export identities: $(js "d['identities']")"
js "[c['actor'] for i in d['identities'] for c in i['checks']]" | grep -q "token:" || fail "the export names no actor"
ok "a certified source shows 'certifie'; the export carries each field's level and the checks"

# erasure takes the checks too
q "select cv_citizen_erase($C)" >/dev/null
[ "$(q "select count(*) from citizen_checks where source = 'demo' and source_citizen_id = 'U-4'")" = 0 ] || fail "checks survive erasure"
ok "erasure removes the checks"
api_stop
