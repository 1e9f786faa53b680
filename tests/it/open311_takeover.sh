#!/usr/bin/env bash
# The attack of issue 18, as an outsider would try it with curl: an anonymous Open311 POST
# carrying a known citizen's e-mail (and only an initial, so that no veto can stop it) and
# a service the attacker picks. The request must get a citizen of its own, never the
# victim's: the victim's timeline does not show it, the agents of the chosen service see
# none of the victim's data through it, and an open merge proposal waits for an agent
# (rule declared_email). A back-office record arriving later with the e-mail the form
# declared is not attached to the form's citizen either.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
api_setup open311_takeover 20
O=/open311/v2
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }

# the victim: a citizen the demo software knows, with a phone and a birth date
victim=$(q "select citizen_id from citizen_identifiers where kind = 'email' and value = 'usager4@example.fr' limit 1")
[ -n "$victim" ] || fail "no demo citizen with usager4@example.fr"
phone=$(q "select identity->>'phone' from citizen_sources where citizen_id = $victim limit 1")
[ -n "$phone" ] || fail "the victim has no phone to leak"
req_before=$(q "select count(*) from requests where citizen_id = $victim")

S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "service_code=encombrants&description=Rappel&first_name=J&last_name=Dupont&email=usager4%40example.fr" \
    "$U$O/requests.json")
[ "$S" = 200 ] || fail "POST: $S $(cat "$W/body")"
CODE=$(js 'd[0]["service_request_id"]')
attacker=$(q "select citizen_id from requests where tracking_code = '$CODE'")
[ -n "$attacker" ] && [ "$attacker" != "$victim" ] || fail "the posted request joined citizen $attacker (victim $victim)"
[ "$(q "select count(*) from requests where citizen_id = $victim")" = "$req_before" ] || fail "the victim's requests changed"
[ "$(q "select rule || ',' || declared from citizen_sources where citizen_id = $attacker")" = "new,true" ] \
    || fail "the form's pair: $(q "select rule || ',' || declared from citizen_sources where citizen_id = $attacker")"
lo=$(( victim < attacker ? victim : attacker )); hi=$(( victim < attacker ? attacker : victim ))
[ "$(q "select rule || ',' || status from merge_proposals where citizen_a = $lo and citizen_b = $hi")" = "declared_email,open" ] \
    || fail "no open declared_email proposal between $victim and $attacker"
ok "an anonymous POST with a citizen's e-mail gets a citizen of its own and a proposal, not the citizen's file"

# through the API, as the agent of the service the attacker chose
get "/v1/citizens/$victim/timeline" "$T_DECH"
[ "$S" = 200 ] || fail "victim timeline: $S"
grep -q "$CODE" "$W/body" && fail "the posted request is in the victim's timeline"
get "/v1/citizens/$attacker/timeline" "$T_DECH"
[ "$S" = 200 ] || fail "form citizen timeline: $S $(cat "$W/body")"
grep -q "$CODE" "$W/body" || fail "the form's own timeline lacks its request"
digits=$(echo "$phone" | tr -cd '0-9' | tail -c 8)
grep -q "1971-05-12\|$digits" "$W/body" && fail "the victim's phone or birth date shows through the form's citizen"
[ "$(js 'len(d["requests"])')" = 1 ] || fail "the form's citizen shows other requests: $(cat "$W/body")"
ok "the chosen service's agent sees only what the form carried"

# the periodic proposals keep it a proposal; a back-office record later is not attached
# to what the form declared
q "select cv_identity_propose()" >/dev/null
[ "$(q "select citizen_id from requests where tracking_code = '$CODE'")" = "$attacker" ] || fail "re-linked after proposals"
S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "service_code=encombrants&description=Autre&last_name=Nouveau&email=nouveau.venu%40example.fr" \
    "$U$O/requests.json")
[ "$S" = 200 ] || fail "second POST: $S"
form2=$(q "select r.citizen_id from requests r where r.tracking_code = '$(js 'd[0]["service_request_id"]')'")
echo '{"id": "D-900", "version": 1, "type": "encombrants", "statut": "EN_COURS", "canal": "GUICHET", "date": "02/03/2024 09:01", "echeance": "02/04/2024", "objet": "Demande", "usager": {"id": "U-900", "nom": "NOUVEAU", "prenom": "Léa", "naissance": "01/02/1990", "email": "nouveau.venu@example.fr", "tel": "06 98 76 54 32", "adresse": "9 rue Neuve"}}' >"$W/d2.jsonl"
replay demo "$W/d2.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"
real=$(q "select citizen_id from citizen_sources where source = 'demo' and source_citizen_id = 'U-900'")
[ -n "$real" ] && [ "$real" != "$form2" ] || fail "the back-office record attached to the form's citizen ($real)"
ok "a back-office record is never attached to an identity a form declared"
api_stop
