#!/usr/bin/env bash
# Open311 GeoReport v2 over real HTTP: services from the categories (JSON and XML), a web
# request POSTed (form and JSON) enters the timeline through cv_ingest (source open311,
# channel web, status received, its citizen and description stored where personal data
# lives), then GET by its id (the tracking code) round-trips in JSON and XML; the list with
# its filters (updated_after / updated_before ...) shows without a token only the public
# categories (none configured here) and hides the tracking code from other services; errors
# use the specification's format and are 4xx. (Every field of every answer:
# open311_conformance.sh.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
api_setup api_open311 20
O=/open311/v2
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
xml() { python3 -c "import xml.etree.ElementTree as E; d=E.parse('$W/body').getroot(); print($1)"; }
post() {  # PATH CONTENT-TYPE DATA
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Content-Type: $2" --data-binary "$3" "$U$1")
}
expect() { [ "$S" = "$1" ] || fail "$2: status $S, body $(head -c 300 "$W/body")"; }

get "$O/services.json"; expect 200 services.json
[ "$(js '",".join(sorted(s["service_code"] for s in d))')" = "$(q "select string_agg(distinct category, ',' order by category) from requests")" ] \
    || fail "services: $(cat "$W/body")"
[ "$(js 'all(s["group"] == "dechets" and s["metadata"] is False and s["type"] == "realtime" for s in d)')" = True ] || fail "service fields"
get "$O/services.xml"; expect 200 services.xml
[ "$(xml '",".join(sorted(s.find("service_code").text for s in d.findall("service")))')" = "$(q "select string_agg(distinct category, ',' order by category) from requests")" ] \
    || fail "services.xml: $(cat "$W/body")"
ok "services in JSON and XML, from the categories"

before=$(q "select count(*) from events")
post "$O/requests.json" application/x-www-form-urlencoded \
    "service_code=encombrants&description=Canap%C3%A9+devant+le+12+rue+de+l%E2%80%99%C3%89glise&first_name=Zo%C3%A9&last_name=WEBCITIZEN&email=zoe.web%40example.fr&address_string=12+rue+de+l%E2%80%99%C3%89glise"
expect 200 "POST form"
CODE=$(js 'd[0]["service_request_id"]')
[ ${#CODE} -eq 11 ] || fail "POST answer: $(cat "$W/body")"
[ "$(q "select count(*) from events")" = $((before + 1)) ] || fail "no event"
[ "$(q "select e.source || ',' || e.channel || ',' || e.status || ',' || e.service || ',' || e.category from events e join requests r on r.id = e.request_id where r.tracking_code = '$CODE'")" = "open311,web,received,dechets,encombrants" ] \
    || fail "event: $(q "select row_to_json(e) from events e join requests r on r.id = e.request_id where r.tracking_code = '$CODE'")"
[ "$(q "select summary from source_records sr join requests r on r.id = sr.request_id where r.tracking_code = '$CODE'")" = "Canapé devant le 12 rue de l’Église" ] || fail "summary"
[ "$(q "select cs.identity->>'email' from citizen_sources cs join requests r on r.citizen_id = cs.citizen_id where r.tracking_code = '$CODE' and cs.source = 'open311'")" = "zoe.web@example.fr" ] || fail "citizen"
ok "POST (form) entered the timeline: source open311, channel web, received, citizen and description stored"

get "$O/requests/$CODE.json"; expect 200 "GET one (json)"
[ "$(js 'd[0]["service_request_id"] + "," + d[0]["status"] + "," + d[0]["status_notes"] + "," + d[0]["service_code"] + "," + d[0]["agency_responsible"]')" = "$CODE,open,received,encombrants,dechets" ] \
    || fail "GET one: $(cat "$W/body")"
grep -qiE 'WEBCITIZEN|zoe|Canap' "$W/body" && fail "personal data in the public GET"
get "$O/requests/$CODE.xml"; expect 200 "GET one (xml)"
[ "$(xml 'd.tag + "," + d.find("request/service_request_id").text + "," + d.find("request/status").text')" = "service_requests,$CODE,open" ] || fail "GET xml: $(cat "$W/body")"
post "$O/requests.xml" application/json '{"service_code": "bac_casse", "description": "Bac cassé", "email": "x@example.fr", "lat": 48.85}'
expect 200 "POST json, xml answer"
CODE2=$(xml 'd.find("request/service_request_id").text')
get "$O/requests/$CODE2.json"; expect 200 "GET the JSON-posted one"
[ "$(js 'd[0]["service_code"]')" = bac_casse ] || fail "second request"
ok "POST then GET round-trip in JSON and XML"

get "$O/requests.json?service_code=encombrants&status=open&updated_after=2000-01-01T00:00:00Z"; expect 200 "list without token"
[ "$(js 'len(d)')" = 0 ] || fail "the anonymous list shows a category that is not public: $(head -c 300 "$W/body")"
get "$O/requests.json" "0000000000000000000000000000000000000000000000000000000000000000"; expect 401 "list with a bad token"
[ "$(js 'd[0]["code"]')" = 401 ] || fail "401 format"
get "$O/requests.json?service_code=encombrants&status=open&updated_after=2000-01-01T00:00:00Z" "$T_SUP"; expect 200 "list"
[ "$(js "'$CODE' in [r.get('service_request_id') for r in d]")" = True ] || fail "list lacks the posted request"
[ "$(js 'all(r["service_code"] == "encombrants" and r["status"] == "open" for r in d)')" = True ] || fail "list filters"
get "$O/requests.json?updated_before=2000-01-01T00:00:00Z" "$T_SUP"; expect 200 "updated_before"
[ "$(js 'len(d)')" = 0 ] || fail "updated_before"
get "$O/requests.json?service_request_id=$CODE" "$T_SUP"; expect 200 "by id"
[ "$(js 'len(d)')" = 1 ] || fail "by id"
get "$O/requests.xml?start_date=2000-01-01" "$T_SUP"; expect 200 "list xml"
[ "$(xml 'len(d.findall("request")) > 0')" = True ] || fail "list xml"
q "insert into service_categories (category, service) values ('nid_de_poule', 'voirie')" >/dev/null
T_VOIR=$("$CTL" --config "$W/api.yaml" token create --role agent --service voirie 2>/dev/null)
get "$O/requests.json?service_request_id=$CODE" "$T_VOIR"; expect 200 "list for another service"
[ "$(js 'd[0]["service_request_id"].startswith("id-") and d[0]["description"] is None')" = True ] \
    || fail "another service sees the tracking code or the description: $(head -c 300 "$W/body")"
ok "requests list: public categories only without a token, filters incl. updated_after/updated_before, tracking code hidden from other services"

# pages: page (1-based) and page_size (default 100, at most 1000), newest first
NCAT=$(q "select count(*) from requests where category is not null")
get "$O/requests.json" "$T_SUP"; expect 200 "list, default page"
[ "$(js 'len(d)')" = "$NCAT" ] || fail "default page: $(js 'len(d)') items, $NCAT requests"
ALL=$(js '",".join(r["service_request_id"] for r in d)')
get "$O/requests.json?page_size=3" "$T_SUP"; expect 200 "page 1"
P1=$(js '",".join(r["service_request_id"] for r in d)')
get "$O/requests.json?page_size=3&page=2" "$T_SUP"; expect 200 "page 2"
P2=$(js '",".join(r["service_request_id"] for r in d)')
[ "$P1,$P2" = "$(echo "$ALL" | cut -d, -f1-6)" ] || fail "pages 1 and 2 ($P1 / $P2) are not the list's first six ($ALL)"
get "$O/requests.json?page_size=1000&page=1000000" "$T_SUP"; expect 200 "a page past the end"
[ "$(js 'len(d)')" = 0 ] || fail "a page past the end is not empty"
for bad in page=0 page=-1 page=x page=1000001 page_size=0 page_size=1001 page_size=1e3 "page_size="; do
    get "$O/requests.json?$bad" "$T_SUP"; expect 400 "$bad"
    [ "$(js 'd[0]["code"]')" = 400 ] && js 'd[0]["description"]' | grep -q page || fail "$bad: not Open311's error: $(cat "$W/body")"
done
get "$O/requests.xml?page_size=0"; expect 400 "page_size=0 (xml, anonymous)"
[ "$(xml 'd.tag + "," + d.find("error/code").text')" = "errors,400" ] || fail "xml page error: $(cat "$W/body")"
ok "requests list in pages: page / page_size, the next page follows, bad values 400 in Open311's format"

post "$O/requests.json" application/x-www-form-urlencoded "description=x"; expect 400 "no service_code"
[ "$(js 'd[0]["code"]')" = 400 ] && [ -n "$(js 'd[0]["description"]')" ] || fail "error format"
post "$O/requests.json" application/x-www-form-urlencoded "service_code=nope&description=x"; expect 400 "unknown service"
post "$O/requests.json" application/json '{"service_code": "encombrants", "description": '; expect 400 "malformed JSON"
post "$O/requests.json" application/json '{"service_code": ["encombrants"], "description": "x"}'; expect 400 "wrong type"
post "$O/requests.json" application/json '[1,2]'; expect 400 "not an object"
post "$O/requests.json" application/x-www-form-urlencoded "service_code=encombrants&description=%FF%FE"; expect 400 "invalid UTF-8 form"
post "$O/requests.json" application/x-www-form-urlencoded "service_code=encombrants&description=%G1"; expect 400 "bad escape"
post "$O/requests.json" text/plain "hello"; expect 400 "content type"
post "$O/requests.json" application/x-www-form-urlencoded "service_code=encombrants%27%3B+DROP+TABLE+events%3B--&description=x"; expect 400 "sql in service_code"
post "$O/requests.xml" application/x-www-form-urlencoded "description=x"; expect 400 "xml error"
[ "$(xml 'd.tag + "," + d.find("error/code").text')" = "errors,400" ] || fail "xml error format: $(cat "$W/body")"
get "$O/requests/AAAAAAAAAA.json"; expect 404 "unknown id"
get "$O/requests.json?start_date=yesterday" "$T_SUP"; expect 400 "bad date"
get "$O/requests.json?start_date=2024-13-45" "$T_SUP"; expect 400 "impossible date"
get "$O/requests.json?status=maybe" "$T_SUP"; expect 400 "bad status"
get "$O/requests.csv"; expect 404 "unknown format"
S=$(curl -s -o "$W/body" -w '%{http_code}' -X DELETE "$U$O/requests.json"); expect 405 "DELETE"
S=$(printf 'service_code=encombrants&description=Canap\000Nuit' | curl -s -o "$W/body" -w '%{http_code}' \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @- "$U$O/requests.json")
expect 400 "a raw NUL byte in a form field"
[ "$(q "select count(*) from events where source = 'open311'")" = 2 ] || fail "refused POSTs wrote something"
! grep -qiE 'WEBCITIZEN|zoe|Canap' "$W/api.log" || fail "personal data in the API log"
ok "bad input: 4xx in Open311's error format (JSON and XML), nothing stored, nothing personal logged"
api_stop
