#!/usr/bin/env bash
# POST /v1/merge-proposals/{id}/reject (docs/identity.md, docs/api.md): a supervisor answers
# a merge proposal "two different people". Against the real hub, API and PostgreSQL:
#   - proposals made the way an outsider makes them: anonymous Open311 POSTs carrying a
#     stored citizen's e-mail (rule declared_email, or email_conflict when the names
#     differ: open at once);
#   - an agent gets 403 and the proposal stays open; without a token 401;
#   - a supervisor rejects: 200 with the pair, status 'rejected', decided_by 'token:<id>',
#     an api_audit row 'proposal_reject' naming the actor's token and the first citizen;
#   - rejected twice, an unknown id, an accepted one (merged): 409, nothing changes;
#     a path id that is not a number: 409 too (no such proposal);
#   - the list no longer shows it; cv_identity_propose() never proposes the pair again,
#     and the citizens stay apart;
#   - a merge of a proposal's pair marks it accepted (cv_citizen_merge), so rejecting it
#     afterwards is 409.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
api_setup api_proposals 30
O=/open311/v2
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
post() {   # post PATH TOKEN [BODY]: status in S, body in $W/body
    S=$(curl -s -o "$W/body" -w '%{http_code}' -X POST ${2:+-H "Authorization: Bearer $2"} \
        -H 'Content-Type: application/json' --data-binary "${3:-}" "$U$1")
}
# propose EMAIL: an anonymous form with a stored citizen's e-mail; prints the proposal's id
propose() {
    local victim fam form code lo hi
    victim=$(q "select citizen_id from citizen_identifiers where kind = 'email' and value = '$1' and not declared limit 1")
    [ -n "$victim" ] || fail "no demo citizen with $1"
    fam=$(q "select identity->>'family_name' from citizen_sources where citizen_id = $victim
             and identity->>'family_name' is not null limit 1")
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-binary "service_code=encombrants&description=Rappel&first_name=J&last_name=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$fam")&email=${1/@/%40}" \
        "$U$O/requests.json")
    [ "$S" = 200 ] || fail "Open311 POST: $S $(cat "$W/body")"
    code=$(js 'd[0]["service_request_id"]')
    form=$(q "select citizen_id from requests where tracking_code = '$code'")
    [ -n "$form" ] || fail "the form's request $code has no citizen"
    lo=$(( victim < form ? victim : form )); hi=$(( victim < form ? form : victim ))
    q "select id from merge_proposals where citizen_a = $lo and citizen_b = $hi and status = 'open'
       and rule in ('declared_email', 'email_conflict')"
}
# two e-mails each held by one stored citizen only
mapfile -t MAILS < <(q "select value from citizen_identifiers where kind = 'email' and not declared
                        group by value having count(distinct citizen_id) = 1 order by value limit 2")
[ ${#MAILS[@]} = 2 ] || fail "the demo data has no two e-mails of one citizen each"
P1=$(propose "${MAILS[0]}"); [ -n "$P1" ] || fail "no open proposal for ${MAILS[0]}: $(q "select * from merge_proposals")"
P2=$(propose "${MAILS[1]}"); [ -n "$P2" ] || fail "no open proposal for ${MAILS[1]}"
IFS='|' read -r A1 B1 <<<"$(q "select citizen_a || '|' || citizen_b from merge_proposals where id = $P1")"
ok "two open proposals ($P1, $P2) from anonymous forms"

# ---- who may ------------------------------------------------------------------------------------
post "/v1/merge-proposals/$P1/reject" "$T_DECH"
[ "$S" = 403 ] || fail "an agent rejects: $S $(cat "$W/body")"
post "/v1/merge-proposals/$P1/reject" ""
[ "$S" = 401 ] || fail "no token: $S"
[ "$(q "select status || coalesce(decided_by, '') from merge_proposals where id = $P1")" = open ] \
    || fail "a refused call changed the proposal"
ok "an agent gets 403, no token 401; the proposal stays open"

# ---- rejecting ------------------------------------------------------------------------------------
SUP_ID=$(q "select id from api_tokens where token_hash = encode(sha256('$T_SUP'::bytea), 'hex')")
[ -n "$SUP_ID" ] || fail "the supervisor's token row"
post "/v1/merge-proposals/$P1/reject" "$T_SUP"
[ "$S" = 200 ] || fail "reject: $S $(cat "$W/body")"
[ "$(js 'd["id"], d["status"], d["citizen_a"], d["citizen_b"]' | tr -d "(),' ")" = "${P1}rejected${A1}${B1}" ] \
    || fail "the answer: $(cat "$W/body")"
[ "$(q "select status || '|' || decided_by || '|' || (decided_at is not null) from merge_proposals where id = $P1")" \
    = "rejected|token:$SUP_ID|true" ] || fail "the row: $(q "select * from merge_proposals where id = $P1")"
sleep 0.3
[ "$(q "select count(*) from api_audit where action = 'proposal_reject' and token_id = $SUP_ID and citizen_id = $A1")" = 1 ] \
    || fail "not audited: $(q "select * from api_audit where action = 'proposal_reject'")"
get /v1/merge-proposals "$T_SUP"
[ "$S" = 200 ] || fail "list: $S"
[ "$(js "[p['id'] for p in d['items'] if p['id'] == $P1]")" = "[]" ] || fail "the rejected proposal is still listed"
[ "$(js "[p['id'] for p in d['items'] if p['id'] == $P2]")" = "[$P2]" ] || fail "the other proposal is not listed"
ok "a supervisor rejects: 200 with the pair, rejected by token:$SUP_ID, audited, off the list"

post "/v1/merge-proposals/$P1/reject" "$T_SUP"
[ "$S" = 409 ] && [ "$(js 'd["error"]["code"]')" = conflict ] || fail "rejected twice: $S $(cat "$W/body")"
post "/v1/merge-proposals/999999999/reject" "$T_SUP"
[ "$S" = 409 ] || fail "an unknown proposal: $S"
post "/v1/merge-proposals/abc/reject" "$T_SUP"
[ "$S" = 409 ] || fail "a path id that is not a number: $S"
post "/v1/merge-proposals/-1/reject" "$T_SUP"
[ "$S" = 409 ] || fail "a negative id: $S"
[ "$(q "select count(*) from api_audit where action = 'proposal_reject'")" = 1 ] || fail "a refusal was audited as done"
ok "rejected twice, unknown, not a number: 409, nothing audited"

# ---- never proposed again ------------------------------------------------------------------------
q "select cv_identity_propose()" >/dev/null
[ "$(q "select count(*) || '|' || min(status) from merge_proposals where citizen_a = $A1 and citizen_b = $B1")" = "1|rejected" ] \
    || fail "the pair proposed again: $(q "select * from merge_proposals where citizen_a = $A1 and citizen_b = $B1")"
[ "$(q "select count(*) from citizens where id in ($A1, $B1) and merged_into is null")" = 2 ] || fail "the pair was merged"
get /v1/merge-proposals "$T_SUP"
[ "$(js "[p for p in d['items'] if p['citizen_a'] == $A1 and p['citizen_b'] == $B1]")" = "[]" ] \
    || fail "the pair is listed again after cv_identity_propose"
ok "cv_identity_propose() does not propose the rejected pair again; the two citizens stay apart"

# ---- a merged pair's proposal is accepted, then not rejectable -----------------------------------
IFS='|' read -r A2 B2 <<<"$(q "select citizen_a || '|' || citizen_b from merge_proposals where id = $P2")"
post "/v1/citizens/$A2/merge" "$T_SUP" "{\"absorb\": $B2}"
[ "$S" = 200 ] || fail "merge: $S $(cat "$W/body")"
[ "$(q "select status || '|' || decided_by from merge_proposals where id = $P2")" = "accepted|token:$SUP_ID" ] \
    || fail "the merge did not accept the proposal: $(q "select * from merge_proposals where id = $P2")"
post "/v1/merge-proposals/$P2/reject" "$T_SUP"
[ "$S" = 409 ] || fail "rejecting an accepted proposal: $S"
[ "$(q "select status from merge_proposals where id = $P2")" = accepted ] || fail "an accepted proposal changed"
ok "a merge marks its proposal accepted; rejecting it then is 409"
api_stop
