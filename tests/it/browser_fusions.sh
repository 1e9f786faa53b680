#!/usr/bin/env bash
# The console's duplicates view (#/fusions, docs/web.md) in Debian's chromium, against the
# real hub, API (with web.dir) and PostgreSQL: two merge proposals made as an outsider
# makes them (anonymous Open311 forms carrying stored citizens' e-mails), a supervisor
# signs in, merges one (checked in SQL: the younger citizen merged into the older, the
# proposal accepted by the supervisor's token) and rejects the other (status rejected,
# the two citizens apart, not proposed again); a stale page gets the 409 sentence; 1280
# and 360 px screenshots in tests/browser/out; an agent sees no menu entry and a French
# refusal at #/fusions; axe-core on each state (tests/browser/fusions.mjs).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
API_YAML_EXTRA="web:
  dir: $ROOT/web" api_setup browser-fusions 30
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
# propose EMAIL: an anonymous form with a stored citizen's e-mail (its family name, an
# initial); prints "proposal|citizen_a|citizen_b"
propose() {
    local victim fam form code lo hi
    victim=$(q "select citizen_id from citizen_identifiers where kind = 'email' and value = '$1' and not declared limit 1")
    fam=$(q "select identity->>'family_name' from citizen_sources where citizen_id = $victim
             and identity->>'family_name' is not null limit 1")
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-binary "service_code=encombrants&description=Rappel&first_name=J&last_name=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$fam")&email=${1/@/%40}" \
        "$U/open311/v2/requests.json")
    [ "$S" = 200 ] || fail "Open311 POST: $S $(cat "$W/body")"
    code=$(js 'd[0]["service_request_id"]')
    form=$(q "select citizen_id from requests where tracking_code = '$code'")
    [ -n "$form" ] || fail "the form's request $code has no citizen"
    lo=$(( victim < form ? victim : form )); hi=$(( victim < form ? form : victim ))
    q "select id || '|' || citizen_a || '|' || citizen_b from merge_proposals
       where citizen_a = $lo and citizen_b = $hi and status = 'open'"
}
mapfile -t MAILS < <(q "select value from citizen_identifiers where kind = 'email' and not declared
                        group by value having count(distinct citizen_id) = 1 order by value limit 2")
[ ${#MAILS[@]} = 2 ] || fail "the demo data has no two e-mails of one citizen each"
IFS='|' read -r P1 A1 B1 <<<"$(propose "${MAILS[0]}")"
IFS='|' read -r P2 A2 B2 <<<"$(propose "${MAILS[1]}")"
[ -n "$P1" ] && [ -n "$P2" ] || fail "no open proposals: $(q "select * from merge_proposals")"
SUP_ID=$(q "select id from api_tokens where token_hash = encode(sha256('$T_SUP'::bytea), 'hex')")
ok "two open proposals from anonymous forms: $P1 ($A1, $B1) and $P2 ($A2, $B2)"

B=$ROOT/tests/browser
"$B/install.sh" "$W/npm.log" 2>"$W/npm.err" || fail "$(cat "$W/npm.err")"
at_exit "pkill -f -- '--user-data-dir=/tmp/playwright' 2>/dev/null; true"
BASE_URL=$U SUP=$T_SUP AGENT=$T_DECH P1=$P1 A1=$A1 B1=$B1 P2=$P2 A2=$A2 B2=$B2 MAIL1=${MAILS[0]} \
    OUT_DIR=$B/out timeout 240 node "$B/fusions.mjs" >"$W/browser.log" 2>&1
rc=$?
cat "$W/browser.log"
[ $rc -eq 0 ] || fail "the browser test (fusions.mjs) failed: rc $rc"

# what the clicks did, in the database
[ "$(q "select coalesce(merged_into::text, 'none') from citizens where id = $B1")" = "$A1" ] \
    || fail "citizen $B1 is not merged into $A1: $(q "select * from citizens where id in ($A1, $B1)")"
[ "$(q "select merged_into is null from citizens where id = $A1")" = t ] || fail "the older citizen $A1 was absorbed"
[ "$(q "select status || '|' || decided_by from merge_proposals where id = $P1")" = "accepted|token:$SUP_ID" ] \
    || fail "proposal $P1: $(q "select * from merge_proposals where id = $P1")"
[ "$(q "select count(*) from citizen_merges where keep = $A1 and absorb = $B1 and actor = 'token:$SUP_ID'")" = 1 ] \
    || fail "no merge record for $A1 <- $B1"
[ "$(q "select status || '|' || decided_by from merge_proposals where id = $P2")" = "rejected|token:$SUP_ID" ] \
    || fail "proposal $P2: $(q "select * from merge_proposals where id = $P2")"
[ "$(q "select count(*) from citizens where id in ($A2, $B2) and merged_into is null")" = 2 ] || fail "pair $P2 was merged"
q "select cv_identity_propose()" >/dev/null
[ "$(q "select count(*) from merge_proposals where citizen_a = $A2 and citizen_b = $B2")" = 1 ] || fail "pair $P2 proposed again"
sleep 0.3
[ "$(q "select count(*) from api_audit where action = 'citizen_merge' and token_id = $SUP_ID")" = 1 ] &&
[ "$(q "select count(*) from api_audit where action = 'proposal_reject' and token_id = $SUP_ID")" = 1 ] \
    || fail "the answers' audit rows: $(q "select action, count(*) from api_audit group by action")"
ok "in the database: $B1 merged into $A1 (proposal accepted), proposal $P2 rejected and not proposed again, both audited"
