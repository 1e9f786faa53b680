#!/usr/bin/env bash
# Signed citizen links over real HTTP: civibusctl makes one for a citizen; it shows that
# citizen's requests (in pages, latest first; no one else's, no personal data) and is audited; an
# altered link is 404, a revoked one 410; links are off without a key; a link for a citizen
# that does not exist is refused by civibusctl.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
API_LINKS=1 api_setup api_links 30
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
expect() { [ "$S" = "$1" ] || fail "$2: status $S, body $(head -c 300 "$W/body")"; }

CID=$(q "select citizen_id from requests where citizen_id is not null order by id limit 1")
LINK=$("$CTL" --config "$W/api.yaml" link create --citizen "$CID" --days 2 2>"$W/link.err") || fail "link create: $(cat "$W/link.err")"
LID=$(sed -n 's/^link id \([0-9a-f]*\).*/\1/p' "$W/link.err")
[ ${#LID} -eq 32 ] || fail "link id: $(cat "$W/link.err")"
"$CTL" --config "$W/api.yaml" link create --citizen 99999999 2>/dev/null && fail "link for a citizen that does not exist"
"$CTL" --config "$W/api.yaml" link create --citizen "$CID" --days 31 2>/dev/null && fail "link longer than max_days"

get "$LINK"; expect 200 "citizen link"
[ "$(js 'sorted(r["tracking_code"] for r in d["requests"])')" = "$(q "select coalesce(json_agg(tracking_code order by tracking_code), '[]') from requests where citizen_id = $CID" | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)))')" ] \
    || fail "link shows other requests: $(head -c 300 "$W/body")"
grep -qiE 'usager|DUPONT|@|identity|summary' "$W/body" && fail "personal data via the link"
sleep 0.3
[ "$(q "select count(*) from api_audit where action = 'citizen_link' and citizen_id = $CID and role = 'citizen'")" = 1 ] || fail "link read not audited"
[ "$(js "(d['limit'], d['offset'], d['next_offset'])")" = "(50, 0, None)" ] || fail "link default page: $(head -c 300 "$W/body")"
# pages of one request: newest first, until next_offset is null
NEWEST=$(q "select string_agg(tracking_code, ',' order by created_at desc, id desc) from requests where citizen_id = $CID")
[ "$(echo "$NEWEST" | tr ',' '\n' | wc -l)" -ge 2 ] || fail "the paging test needs a citizen with 2 requests or more"
off=0; seen=""
while :; do
    get "$LINK?limit=1&offset=$off"; expect 200 "link page at $off"
    [ "$(js "len(d['requests'])")" = 1 ] || fail "link page $off: $(head -c 300 "$W/body")"
    seen="${seen:+$seen,}$(js "d['requests'][0]['tracking_code']")"
    next=$(js "d['next_offset']")
    [ "$next" = None ] && break
    [ "$next" = $((off + 1)) ] || fail "link next_offset $next after $off"
    off=$next
done
[ "$seen" = "$NEWEST" ] || fail "link pages gave $seen, expected newest first $NEWEST"
get "$LINK?limit=2"; expect 200 "link page of 2"
[ "$(js "[r['tracking_code'] for r in d['requests']]")" = "$(echo "$NEWEST" | cut -d, -f1,2 | python3 -c 'import sys; print(list(reversed(sys.stdin.read().strip().split(","))))')" ] \
    || fail "a link page lists its requests in creation order: $(head -c 300 "$W/body")"
get "$LINK?limit=0"; expect 400 "link limit 0"
ok "a link shows its citizen's requests only, audited, in pages of the latest requests"

# the citizen is merged into another one by a supervisor: the link follows the merge
OTHERCID=$(q "select citizen_id from requests where citizen_id is not null and citizen_id <> $CID order by id limit 1")
MID=$(q "select cv_citizen_merge($OTHERCID, $CID, 'test')")
get "$LINK"; expect 200 "citizen link after a merge"
[ "$(js 'len(d["requests"])')" = "$(q "select count(*) from requests where citizen_id = $OTHERCID")" ] \
    || fail "the link does not follow the merge: $(head -c 300 "$W/body")"
q "select cv_citizen_split($MID, 'test')" >/dev/null
get "$LINK"; expect 200 "citizen link after the split"
[ "$(js 'len(d["requests"])')" = "$(q "select count(*) from requests where citizen_id = $CID")" ] || fail "the link does not come back after the split"
ok "a link follows a merge of its citizen, and comes back after the split"

BAD=$(echo "$LINK" | sed 's/\(.*\)\(.\)$/\1/')$( [ "${LINK: -1}" = 0 ] && echo 1 || echo 0)
get "$BAD"; expect 404 "altered link"
OTHER=$(echo "$LINK" | sed "s|/v1/me/$CID\.|/v1/me/$((CID + 1)).|")
get "$OTHER"; expect 404 "another citizen id"
get "/v1/me/..%2F..%2Fetc"; [ "${S:0:1}" = 4 ] || fail "garbage: $S"
"$CTL" --config "$W/api.yaml" link revoke "$LID" || fail "revoke"
get "$LINK"; expect 410 "revoked link"
[ "$(js 'd["error"]["code"]')" = revoked ] || fail "revoked body"
ok "altered links 404, revoked link 410"
api_stop
