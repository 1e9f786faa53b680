#!/usr/bin/env bash
# GET /v1/requests/count: the number of requests matching service, status, channel,
# category and a creation span (from included, to excluded), equal to the database's count
# for every filter; an agent counts their own service only (service= another: 403); bad
# values 400; no token 401; not audited (a count reads no one's data).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
api_setup api_count 30
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
expect() { [ "$S" = "$1" ] || fail "$2: status $S, body $(head -c 300 "$W/body")"; }
count() {  # QUERY TOKEN SQL-WHERE
    get "/v1/requests/count$1" "$2"; expect 200 "count$1"
    [ "$(js 'd["count"]')" = "$(q "select count(*) from requests r where $3")" ] \
        || fail "count$1: $(cat "$W/body"), the database says $(q "select count(*) from requests r where $3")"
}
q "insert into service_categories (category, service) values ('nid_de_poule', 'voirie')" >/dev/null
q "insert into requests (tracking_code, service, category, channel, status, status_occurred_at, status_event_id, created_at)
   values ('ACDEFHJKLM', 'voirie', 'nid_de_poule', 'telephone', 'received', now(), 0, '2020-01-01T00:00:00Z')" >/dev/null
audit_before=$(q "select count(*) from api_audit")
CAT=$(q "select category from requests where service = 'dechets' and category is not null limit 1")
ST=$(q "select status from requests where service = 'dechets' limit 1")
CH=$(q "select channel from requests where service = 'dechets' limit 1")
count "" "$T_SUP" "true"
[ "$(js 'd["count"]')" -gt 1 ] || fail "no requests counted"
count "?service=dechets" "$T_SUP" "service = 'dechets'"
count "?service=voirie" "$T_SUP" "service = 'voirie'"
count "?status=$ST" "$T_SUP" "status = '$ST'"
count "?channel=$CH&category=$CAT" "$T_SUP" "channel = '$CH' and category = '$CAT'"
count "?from=2021-01-01T00:00:00Z" "$T_SUP" "created_at >= '2021-01-01T00:00:00Z'"
count "?to=2021-01-01T00:00:00Z" "$T_SUP" "created_at < '2021-01-01T00:00:00Z'"
[ "$(js 'd["count"]')" = 1 ] || fail "to: $(cat "$W/body")"
count "?service=nope" "$T_SUP" "service = 'nope'"
[ "$(js 'd["count"]')" = 0 ] || fail "an unknown service counts"
ok "supervisors count by service, status, channel, category, from and to"

count "" "$T_DECH" "service = 'dechets'"
count "?service=dechets&channel=$CH" "$T_DECH" "service = 'dechets' and channel = '$CH'"
get "/v1/requests/count?service=voirie" "$T_DECH"; expect 403 "an agent counting another service"
ok "an agent counts their own service only (another service: 403)"

for bad in status=maybe channel=pigeon from=yesterday2 to=2024-13-45 service= ; do
    get "/v1/requests/count?$bad" "$T_SUP"; expect 400 "$bad"
    [ -n "$(js 'd["error"]["message"]')" ] || fail "$bad: error format"
done
get "/v1/requests/count"; expect 401 "no token"
get "/v1/requests/count/x" "$T_SUP"; expect 404 "a path below count"
sleep 0.3
[ "$(q "select count(*) from api_audit")" = "$audit_before" ] || fail "a count was audited"
ok "bad values 400, no token 401, nothing audited"
api_stop
