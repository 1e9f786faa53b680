#!/usr/bin/env bash
# civibus-api over real HTTP against a PostgreSQL filled by the real hub: start-up checks,
# tokens and roles (docs/access.md: an agent sees other services' requests without their
# content), citizen search and timeline, a request and its events, open and overdue requests,
# audit rows for every read of a citizen's data, tracking codes (one request only, rate
# limited), bad input (413, invalid UTF-8, traversal, SQL metacharacters, a NUL, unknown ids →
# 4xx JSON, never 5xx; 405 with its Allow header).
. "$(dirname "$0")/lib.sh"
API=$ROOT/$BIN/civibus-api
CTL=$ROOT/$BIN/civibusctl
sed 's/service: {const: dechets}/service: {const: voirie}/; s/^source: demo$/source: demo2/' \
    "$ROOT/deploy/mappings/demo.yaml" >"${CIVIBUS_TEST_TMP:-/tmp}/api-demo2-$$.yaml"
it_setup api "demo:$ROOT/deploy/mappings/demo.yaml" "demo2:${CIVIBUS_TEST_TMP:-/tmp}/api-demo2-$$.yaml"
mv "${CIVIBUS_TEST_TMP:-/tmp}/api-demo2-$$.yaml" "$W/demo2.yaml"
sed -i "s|mapping: .*api-demo2-$$.yaml|mapping: $W/demo2.yaml|" "$W/hub.yaml"

# the API refuses a database without its migration
cat >"$W/api.yaml" <<YAML
postgres:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$DB"
listen:
  port: 0
http:
  threads: 3
  max_body_bytes: 4096
tracking:
  per_minute: 8
audit:
  flush_ms: 50
YAML
"$API" --config "$W/api.yaml" >"$W/api0.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "lacks migration 005" "$W/api0.log" || fail "API started without 005 (rc $rc)"
printf 'postgres:\n  conninfo: x\nhttp:\n  threads: many\n' >"$W/bad.yaml"
"$API" --config "$W/bad.yaml" 2>"$W/bad.err"; rc=$?
[ $rc -eq 2 ] && grep -q "bad.yaml:4:" "$W/bad.err" || fail "bad config: rc $rc $(cat "$W/bad.err")"
ok "refuses a database without 005 and a bad config (file:line)"

hub_start
gen_demo 40 >"$W/d1.jsonl"
replay demo "$W/d1.jsonl" --timeout 60
[ "$REPLAY_RC" -eq 0 ] || fail "replay demo: $(cat "$W/replay.out")"
# voirie's citizens are other people (names, birth date): identity resolution must not join them
gen_demo 10 1001 | sed 's/"nom": "[^"]*"/"nom": "VOIRIEPERSON"/; s/"naissance": "[^"]*"/"naissance": "01\/01\/1990"/' >"$W/d2.jsonl"
replay demo2 "$W/d2.jsonl" --timeout 60
[ "$REPLAY_RC" -eq 0 ] || fail "replay demo2: $(cat "$W/replay.out")"
[ "$(q "select count(*) from requests")" = 50 ] || fail "requests: $(q "select count(*) from requests")"

"$API" --config "$W/api.yaml" >"$W/api.log" 2>&1 &
API_PID=$!
at_exit 'kill $API_PID 2>/dev/null'
for i in $(seq 1 50); do grep -q "listening on" "$W/api.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/api.log")
[ -n "$PORT" ] || fail "API did not start: $(cat "$W/api.log")"
U=http://127.0.0.1:$PORT

# get URL [TOKEN] → body in $W/body, status in $S
get() {
    if [ -n "${2:-}" ]; then S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $2" "$U$1")
    else S=$(curl -s -o "$W/body" -w '%{http_code}' "$U$1"); fi
}
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
expect() { [ "$S" = "$1" ] || fail "$2: status $S, body $(head -c 300 "$W/body")"; }

get /healthz; expect 200 healthz
[ "$(js 'd["status"]')" = ok ] || fail "healthz body"

T_DECH=$("$CTL" --config "$W/api.yaml" token create --role agent --service dechets --label a1 2>/dev/null)
T_VOIR=$("$CTL" --config "$W/api.yaml" token create --role agent --service voirie 2>/dev/null)
T_SUP=$("$CTL" --config "$W/api.yaml" token create --role supervisor 2>/dev/null)
T_REV=$("$CTL" --config "$W/api.yaml" token create --role admin 2>/dev/null)
[ ${#T_DECH} -eq 64 ] && [ ${#T_SUP} -eq 64 ] || fail "token create"
"$CTL" --config "$W/api.yaml" token create --role agent 2>/dev/null && fail "agent without service accepted"
[ "$(q "select count(*) from api_tokens where token_hash = encode(sha256('$T_DECH'), 'hex')")" = 1 ] \
    || fail "token not stored as its sha256"
[ "$(q "select count(*) from api_tokens where token_hash = '$T_DECH'")" = 0 ] || fail "token stored in clear"
"$CTL" --config "$W/api.yaml" token revoke "$(q "select id from api_tokens where role = 'admin'")" || fail "revoke"
ok "civibusctl: tokens created (sha256 stored), revoked"

get /v1/requests/1; expect 401 "no token"
get /v1/requests/1 "$T_REV"; expect 401 "revoked token"
get /v1/requests/1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; expect 401 "unknown token"
[ "$(js 'd["error"]["code"]')" = unauthorized ] || fail "401 body"
ok "no, unknown or revoked token: 401 JSON"

# a déchets request seen by its own service, by another service, by a supervisor
RD=$(q "select id from requests where service = 'dechets' order by id limit 1")
RV=$(q "select id from requests where service = 'voirie' order by id limit 1")
get "/v1/requests/$RD" "$T_DECH"; expect 200 "own request"
[ "$(js '",".join(sorted(d.keys()))')" = "category,channel,citizen_id,created_at,due_at,due_kind,events,flagged,id,location,notifications,outcome,outcome_reason,outcome_ref,overdue,paused_seconds,request_ref,requested_at,service,status,status_at,summary,tracking_code,updated_at" ] \
    || fail "own view keys: $(js '",".join(sorted(d.keys()))')"
[ "$(js 'len(d["events"]) > 0 and "source_status" in d["events"][0]')" = True ] || fail "own events"
get "/v1/requests/$RD" "$T_VOIR"; expect 200 "other service's request"
[ "$(js '",".join(sorted(d.keys()))')" = "category,created_at,due_at,due_kind,events,id,outcome,overdue,paused_seconds,requested_at,service,status,status_at,updated_at" ] \
    || fail "other view keys: $(js '",".join(sorted(d.keys()))')"
[ "$(js '",".join(sorted(d["events"][0].keys()))')" = "category,due_at,id,occurred_at,outcome,request_id,requested_at,service,status" ] \
    || fail "other view event keys: $(js '",".join(sorted(d["events"][0].keys()))')"
grep -qiE 'DUPONT|usager|Église|summary|tracking' "$W/body" && fail "content leaked to another service"
get "/v1/requests/$RV" "$T_SUP"; expect 200 "supervisor"
[ "$(js '"summary" in d and "tracking_code" in d')" = True ] || fail "supervisor view"
ok "access table: own service sees all, other service category/status/dates only, supervisor all"

# citizen search, timeline; the other service does not find déchets citizens
get "/v1/citizens?email=usager7@example.fr" "$T_DECH"; expect 200 "search by email"
[ "$(js 'len(d["items"])')" = 1 ] || fail "search email: $(cat "$W/body")"
CID=$(js 'd["items"][0]["id"]')
[ "$(js 'any(i["identity"]["email"] == "usager7@example.fr" for i in d["items"][0]["identities"])')" = True ] || fail "identity: $(head -c 600 "$W/body")"
get "/v1/citizens?email=usager7@example.fr" "$T_VOIR"; expect 200 "search other service"
[ "$(js 'len(d["items"])')" = 0 ] || fail "voirie agent found a déchets citizen"
get "/v1/citizens?address=75019&limit=1" "$T_DECH"; expect 200 "search by address, paged"
[ "$(js 'len(d["items"])')" = 1 ] && [ "$(js 'd["next_offset"]')" = 1 ] || fail "page: $(head -c 300 "$W/body")"
get "/v1/citizens?name=a%C3%AFssatou" "$T_DECH"; expect 200 "search by name"
[ "$(js 'len(d["items"]) >= 1 and all(any(i["identity"]["given_names"] == "Aïssatou" for i in c["identities"]) for c in d["items"])')" = True ] || fail "name search: $(head -c 300 "$W/body")"
if [ "$(q "select to_regprocedure('cv_fold(text)') is not null")" = t ]; then   # 004: folded names
    get "/v1/citizens?name=AISSATOU%20n%20diaye" "$T_DECH"; expect 200 "folded name search"
    [ "$(js 'len(d["items"]) >= 1')" = True ] || fail "accent-insensitive name search: $(head -c 300 "$W/body")"
fi
get "/v1/citizens?phone=%2B33612340707" "$T_SUP"; expect 200 "search by phone"
[ "$(js 'len(d["items"]) >= 1')" = True ] || fail "phone search"
TC=$(q "select tracking_code from requests where id = $RD")
get "/v1/citizens?tracking_code=$TC" "$T_DECH"; expect 200 "search by tracking code"
[ "$(js 'd["items"][0]["id"]')" = "$(q "select citizen_id from requests where id = $RD")" ] || fail "tracking search"
get "/v1/citizens?address=rue%20de%20l%E2%80%99%C3%89glise&limit=1" "$T_SUP"; expect 200 "search by address"
# the same person made a voirie request (as identity resolution would link it)
q "update requests set citizen_id = $CID where id = $RV" >/dev/null
get "/v1/citizens/$CID/timeline" "$T_DECH"; expect 200 "timeline"
[ "$(js 'sorted(set(r["service"] for r in d["requests"]))')" = "['dechets', 'voirie']" ] || fail "cross-service timeline"
[ "$(js '[("summary" in r) for r in d["requests"] if r["service"] == "voirie"]')" = "[False]" ] && [ "$(js 'all("kind" not in e for e in d["events"] if e["service"] == "voirie")')" = True ] || fail "voirie content shown to déchets"
[ "$(js 'all("summary" in r for r in d["requests"] if r["service"] == "dechets")')" = True ] || fail "own content missing"
# the timeline's objects carry exactly the fields of docs/access.md's table for each view
# (api/api_timeline.c writes it from rows with that table): own and other service for an
# agent, everything for a supervisor
keysets() { js "sorted(set(','.join(sorted(o.keys())) for o in d['$1'] if $2))"; }
REQ_OWN="['category,channel,citizen_id,created_at,due_at,due_kind,flagged,id,location,outcome,outcome_reason,outcome_ref,overdue,paused_seconds,request_ref,requested_at,service,status,status_at,summary,tracking_code,updated_at']"
REQ_OTHER="['category,created_at,due_at,due_kind,id,outcome,overdue,paused_seconds,requested_at,service,status,status_at,updated_at']"
EV_OWN="['category,due_at,id,kind,occurred_at,outcome,outcome_reason,outcome_ref,received_at,request_id,requested_at,service,source,source_status,status,transition_flagged']"
EV_OTHER="['category,due_at,id,occurred_at,outcome,request_id,requested_at,service,status']"
[ "$(js "','.join(d.keys()) + ' ' + ','.join(sorted(d['citizen'].keys()))")" = "citizen,requests,events,limit,offset,next_offset id,identities" ] \
    || fail "timeline shape: $(head -c 300 "$W/body")"
[ "$(keysets requests "o['service'] == 'dechets'")" = "$REQ_OWN" ] || fail "own requests: $(keysets requests "o['service'] == 'dechets'")"
[ "$(keysets requests "o['service'] != 'dechets'")" = "$REQ_OTHER" ] || fail "other requests: $(keysets requests "o['service'] != 'dechets'")"
[ "$(keysets events "o['service'] == 'dechets'")" = "$EV_OWN" ] || fail "own events: $(keysets events "o['service'] == 'dechets'")"
[ "$(keysets events "o['service'] != 'dechets'")" = "$EV_OTHER" ] || fail "other events: $(keysets events "o['service'] != 'dechets'")"
[ "$(js "[(o['created_at'], o['id']) for o in d['requests']] == sorted((o['created_at'], o['id']) for o in d['requests'])")" = True ] || fail "requests out of order"
[ "$(js "[(o['occurred_at'], o['id']) for o in d['events']] == sorted((o['occurred_at'], o['id']) for o in d['events'])")" = True ] || fail "events out of order"
[ "$(js "len(d['requests'])")" = "$(q "select count(*) from requests where citizen_id = $CID")" ] || fail "timeline requests count"
get "/v1/citizens/$CID/timeline" "$T_VOIR"; expect 200 "timeline for voirie"
[ "$(js 'all("summary" not in r and "tracking_code" not in r for r in d["requests"] if r["service"] == "dechets")')" = True ] || fail "déchets content shown to voirie"
get "/v1/citizens/$CID/timeline" "$T_SUP"; expect 200 "supervisor timeline"
[ "$(keysets requests True)" = "$REQ_OWN" ] && [ "$(keysets events True)" = "$EV_OWN" ] \
    && [ "$(js "','.join(sorted(d['citizen'].keys()))")" = "id,identities" ] || fail "supervisor timeline keys"
[ "$(js "len(d['requests'])")" = "$(q "select count(*) from requests where citizen_id = $CID")" ] \
    && [ "$(js "len(d['events'])")" = "$(q "select count(*) from events e join requests r on r.id = e.request_id where r.citizen_id = $CID")" ] \
    || fail "supervisor timeline: $(head -c 300 "$W/body")"
grep -q '": \|" :' "$W/body" && fail "timeline body not compact"
[ "$(js "(d['limit'], d['offset'], d['next_offset'])")" = "(50, 0, None)" ] || fail "timeline default page"
# pages of one request, newest first, each with its own events, until next_offset is null
NREQ=$(q "select count(*) from requests where citizen_id = $CID")
[ "$NREQ" -ge 2 ] || fail "the paging test needs a citizen with 2 requests or more"
NEWEST=$(q "select string_agg(id::text, ',' order by created_at desc, id desc) from requests where citizen_id = $CID")
off=0; seen=""
while :; do
    get "/v1/citizens/$CID/timeline?limit=1&offset=$off" "$T_SUP"; expect 200 "timeline page at $off"
    [ "$(js "len(d['requests'])")" = 1 ] || fail "timeline page $off: $(head -c 300 "$W/body")"
    rid=$(js "d['requests'][0]['id']")
    [ "$(js "all(e['request_id'] == $rid for e in d['events'])")" = True ] || fail "timeline page $off carries events of other requests"
    [ "$(js "len(d['events'])")" = "$(q "select count(*) from events where request_id = $rid")" ] || fail "timeline page $off events"
    seen="${seen:+$seen,}$rid"
    next=$(js "d['next_offset']")
    [ "$next" = None ] && break
    [ "$next" = $((off + 1)) ] || fail "timeline next_offset $next after $off"
    off=$next
done
[ "$seen" = "$NEWEST" ] || fail "timeline pages gave requests $seen, expected newest first $NEWEST"
get "/v1/citizens/$CID/timeline?limit=1&offset=$NREQ" "$T_SUP"; expect 200 "timeline past the end"
[ "$(js "(len(d['requests']), len(d['events']), d['next_offset'])")" = "(0, 0, None)" ] || fail "timeline past the end: $(head -c 300 "$W/body")"
get "/v1/citizens/$CID/timeline?limit=0" "$T_SUP"; expect 400 "timeline limit 0"
get "/v1/citizens/$CID/timeline?limit=1&offset=1" "$T_VOIR"; expect 200 "agent timeline page"
[ "$(js "(len(d['requests']), d['requests'][0]['id'])")" = "(1, $(echo "$NEWEST" | cut -d, -f2))" ] || fail "agent timeline page: $(head -c 300 "$W/body")"
OTHER=$(q "select citizen_id from requests where service = 'dechets' and citizen_id <> $CID limit 1")
get "/v1/citizens/$OTHER/timeline" "$T_VOIR"; expect 404 "citizen unknown to voirie"
ok "search by name/email/phone/address/tracking code, paginated; cross-service timeline filtered per request, in pages of the latest requests"

get "/v1/services/dechets/requests?limit=5" "$T_DECH"; expect 200 "open requests"
[ "$(js 'len(d["items"])')" = 5 ] && [ "$(js 'd["next_offset"]')" = 5 ] || fail "open page"
[ "$(js 'all(r["service"] == "dechets" and r["status"] in ("received","acknowledged","in_progress","waiting_citizen") for r in d["items"])')" = True ] || fail "open filter"
get "/v1/requests/overdue?service=dechets&limit=200" "$T_VOIR"; expect 200 "overdue"
N=$(q "select count(*) from requests where service = 'dechets' and due_at < now() and status in ('received','acknowledged','in_progress','waiting_citizen')")
[ "$(js 'len(d["items"])')" = "$N" ] || fail "overdue count $(js 'len(d["items"])') vs $N"
[ "$(js 'all("summary" not in r for r in d["items"])')" = True ] || fail "overdue content to another service"
ok "open requests of a service, overdue requests (filtered by view)"

get /v1/merge-proposals "$T_DECH"; expect 403 "proposals for an agent"
get /v1/merge-proposals "$T_SUP"
if [ "$(q "select to_regclass('merge_proposals') is not null")" = t ]; then expect 200 "proposals"
else expect 404 "proposals without 004"; fi

# audit: every read of a citizen's data, with who
sleep 0.5
A=$(q "select count(*) from api_audit where action = 'citizen_timeline' and citizen_id = $CID and token_id = (select id from api_tokens where token_hash = encode(sha256('$T_DECH'), 'hex'))")
[ "$A" = 1 ] || fail "timeline read audited $A times"
[ "$(q "select count(*) from api_audit where action = 'request' and request_id = $RD")" = 2 ] || fail "request reads not audited"
[ "$(q "select count(*) from api_audit where action = 'citizen_search'")" -ge 4 ] || fail "searches not audited"
q "select row_to_json(a)::text from api_audit a" | grep -qiE 'usager|DUPONT|@' && fail "personal data in the audit"
ok "reads audited (who, what, when), no personal data in the audit"

# tracking code: that request only, no personal data, rate limited
get "/v1/track/$TC"; expect 200 "tracking"
[ "$(js 'd["tracking_code"]')" = "$TC" ] || fail "tracking body"
[ "$(js '",".join(sorted(d.keys()))')" = "category,created_at,due_at,history,requested_at,service,status,status_at,tracking_code" ] || fail "tracking keys"
grep -qiE 'usager|DUPONT|citizen' "$W/body" && fail "personal data via tracking code"
get "/v1/track/$(echo "$TC" | tr 'A-Z' 'a-z')"; expect 200 "lower-case code"
get /v1/track/AAAAAAAAAA; expect 404 "unknown code"
get "/v1/track/'%20OR%201=1--"; expect 404 "sql in code"
limited=0
for i in $(seq 1 10); do get "/v1/track/$TC"; [ "$S" = 429 ] && limited=1; done
[ $limited = 1 ] || fail "tracking lookups not rate limited"
ok "tracking code shows its request only; lookups rate limited (429)"

# bad input: never a 5xx, always JSON
big=$(head -c 10000 /dev/zero | tr '\0' a)
S=$(curl -s -o "$W/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $T_SUP" --data "$big" "$U/v1/citizens"); expect 413 "body over the limit"
S=$(curl -s -o "$W/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $T_SUP" --data-binary $'{"a":"\xff"}' "$U/v1/citizens"); expect 400 "invalid utf-8 body"
get "/v1/requests/..%2F..%2Fetc%2Fpasswd" "$T_SUP"; [ "${S:0:1}" = 4 ] || fail "traversal: $S"
get "/../../etc/passwd" "$T_SUP"; [ "${S:0:1}" = 4 ] || fail "traversal 2: $S"
get "/v1/requests/1%20OR%201=1" "$T_SUP"; expect 404 "sql in id"
get "/v1/requests/99999999999" "$T_SUP"; expect 404 "unknown id"
get "/v1/requests/99999999999999999999999" "$T_SUP"; expect 404 "huge id"
get "/v1/citizens?name=%27%3B%20DROP%20TABLE%20events%3B--" "$T_SUP"; expect 200 "sql in a search value"
[ "$(js 'len(d["items"])')" = 0 ] || fail "sql search found something"
get "/v1/citizens?email=%FF%FE" "$T_SUP"; expect 400 "invalid utf-8 query"
get "/v1/citizens?limit=abc&name=ab" "$T_SUP"; expect 400 "bad limit"
get "/v1/services/dechets/requests?offset=-1" "$T_SUP"; expect 400 "bad offset"
get "/v1/nothing" "$T_SUP"; expect 404 "unknown path"
S=$(curl -s -o "$W/body" -w '%{http_code}' -X DELETE -D "$W/headers" -H "Authorization: Bearer $T_SUP" "$U/v1/requests/$RD"); expect 405 "DELETE"
grep -qi '^Allow: GET, HEAD' "$W/headers" || fail "405 without its Allow header: $(cat "$W/headers")"
get "/v1/requests/$RD%00" "$T_SUP"; expect 400 "NUL in an id"
get "/v1/citizens?name=ab%00cd" "$T_SUP"; expect 400 "NUL in a query value"
[ "$(q "select count(*) from events")" -gt 0 ] || fail "events gone"
! grep -qiE 'DUPONT|usager[0-9]+@|Église' "$W/api.log" || fail "personal data in the API log"
kill -0 $API_PID || fail "API died"
ok "bad input: 4xx JSON errors, no crash, nothing personal in the log"

# the thread pool under load: 300 requests, 16 at a time, all answered, none refused
seq 1 300 | xargs -P 16 -I{} curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $T_SUP" \
    "$U/v1/requests/$RD" >"$W/load.out"
[ "$(grep -c '^200$' "$W/load.out")" = 300 ] || fail "under load: $(sort "$W/load.out" | uniq -c)"
# the audit is written in batches off the request path: wait for it (bounded), on a busy machine too
for _ in $(seq 1 50); do
    [ "$(q "select count(*) from api_audit where action = 'request' and request_id = $RD")" -ge 302 ] && break
    sleep 0.1
done
[ "$(q "select count(*) from api_audit where action = 'request' and request_id = $RD")" = 302 ] \
    || fail "audit rows under load: $(q "select count(*) from api_audit where action = 'request' and request_id = $RD")"
ok "300 concurrent reads answered by the thread pool, each audited"

# name and address search go through the trigram indexes of 007_search.sql once the table
# is big enough for them to pay: 20,000 more pairs, then a search that must find one of
# them, with the index scan counted by PostgreSQL's statistics
if [ "$(q "select to_regclass('citizen_sources_search_name') is not null")" = t ]; then
    q "insert into citizens (id) select 900000 + g from generate_series(1, 20000) g" >/dev/null
    q "insert into citizen_sources (source, source_citizen_id, citizen_id, identity)
       select 'bulk', 'B' || g, 900000 + g, jsonb_build_object('family_name', 'NOM' || g,
              'given_names', 'Prénom', 'address', jsonb_build_object('line1', g || ' rue Verte',
              'postcode', '69001'))
       from generate_series(1, 20000) g" >/dev/null
    q "analyze citizen_sources" >/dev/null
    scans() { q "select coalesce(sum(idx_scan), 0) from pg_stat_user_indexes
                 where indexrelname in ('citizen_sources_search_name', 'citizen_sources_search_address')"; }
    before=$(scans)
    get "/v1/citizens?name=nom12345" "$T_SUP"; expect 200 "indexed name search"
    [ "$(js '[c["id"] for c in d["items"]]')" = "[912345]" ] || fail "indexed name search: $(head -c 300 "$W/body")"
    get "/v1/citizens?address=12345%20Rue%20verte" "$T_SUP"; expect 200 "indexed address search"
    [ "$(js '[c["id"] for c in d["items"]]')" = "[912345]" ] || fail "indexed address search: $(head -c 300 "$W/body")"
    for _ in $(seq 1 150); do [ "$(scans)" -ge $((before + 2)) ] && break; sleep 0.1; done
    [ "$(scans)" -ge $((before + 2)) ] || fail "name/address search did not use the trigram indexes"
    ok "name and address search served by the trigram indexes (20,000 pairs)"

    # a citizen's timeline reads their requests through requests_citizen (011), not the table
    q "insert into requests (tracking_code, service, category, status, status_occurred_at,
                             status_event_id, citizen_id)
       select translate(lpad(g::text, 10, '0'), '0123456789', 'ACDEFHJKLM'), 'voirie', 'x',
              'received', now(), 0, 900000 + g
       from generate_series(1, 20000) g" >/dev/null
    q "analyze requests" >/dev/null
    rscans() { q "select idx_scan from pg_stat_user_indexes where indexrelname = 'requests_citizen'"; }
    before=$(rscans)
    get "/v1/citizens/912345/timeline" "$T_SUP"; expect 200 "timeline of a bulk citizen"
    [ "$(js 'len(d["requests"])')" = 1 ] || fail "bulk timeline: $(head -c 300 "$W/body")"
    for _ in $(seq 1 150); do [ "$(rscans)" -ge $((before + 1)) ] && break; sleep 0.1; done
    [ "$(rscans)" -ge $((before + 1)) ] || fail "the timeline did not use requests_citizen"
    ok "a citizen's timeline served by the requests_citizen index (20,000 more requests)"
fi

get /metrics
grep -q '^civibus_api_requests_total{class="4xx"} [1-9]' "$W/body" || fail "metrics: $(cat "$W/body")"

kill -TERM $API_PID; wait $API_PID; rc=$?
[ $rc -eq 0 ] || fail "API exit $rc: $(tail -5 "$W/api.log")"
ok "API stopped cleanly"
