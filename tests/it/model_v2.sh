#!/usr/bin/env bash
# Schema version 2 (issue 19, item 2; docs/schema.md, docs/mapping.md), end to end against
# the real hub, PostgreSQL and civibus-api: a 311-style export (one row per request, its
# latest status) maps when the citizen asked (requested_at), where (location) and how it
# ended (outcome), with the channels machines and staff use (api, interne).
#   - the stored request carries them; response times come from requested_at;
#   - a location never creates a citizen (neither from a back-office row nor from an
#     Open311 POST's address_string, which used to become a citizen's address);
#   - the API shows them in the caller's view (another service's agent gets no location);
#     Open311 answers requested_datetime and lat/long from them;
#   - dirty values: a swapped latitude is dead-lettered (bad_type) without its value in the
#     detail, a French decimal comma reads, a late row does not overwrite requested_at.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
API_YAML_EXTRA=$'open311:\n  public_categories: [nid_de_poule, tag]\n  public_details: [nid_de_poule]' \
    api_setup model_v2 4 "demo:$ROOT/deploy/mappings/demo.yaml" "voirie311:$ROOT/tests/it/data/voirie311.yaml"
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
citizens_before=$(q "select count(*) from citizens")

cat >"$W/sr.jsonl" <<'EOF'
{"sr": "SR-1", "type": "Pothole", "status": "Closed", "method": "Internal", "created": "2024-03-01T08:15:00", "status_date": "2024-03-05T16:15:00", "address": "12 rue de la Paix", "zip": "75002", "lat": "48,8686", "lon": "2.3316", "resolution": "Fixed"}
{"sr": "SR-2", "type": "Pothole", "status": "Closed", "method": "API", "created": "2024-03-02T09:00:00", "status_date": "2024-03-02T11:00:00", "address": "12 rue de la Paix", "zip": "75002", "resolution": "Duplicate", "resolution_note": "même trou que SR-1", "dup_of": "SR-1"}
{"sr": "SR-3", "type": "Graffiti", "status": "In Progress", "method": "Phone", "created": "2024-03-03T10:00:00", "status_date": "2024-03-04T10:00:00", "address": "3 quai de la Tournelle", "zip": "75005", "lat": 48.8505, "lon": 2.3546}
{"sr": "SR-4", "type": "Pothole", "status": "Open", "method": "Web", "created": "2024-03-06T07:00:00", "status_date": "2024-03-06T07:00:00", "address": "1 avenue Foch", "lat": "6862000", "lon": "652000"}
{"sr": "SR-5", "type": "Graffiti", "status": "Closed", "method": "Internal", "created": "2024-03-01T12:00:00", "status_date": "2024-03-11T12:00:00", "resolution": "Transferred", "resolution_note": "RATP"}
EOF
replay voirie311 "$W/sr.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"

# 1. what was stored
[ "$(q "select count(*) from requests where service = 'voirie'")" = 4 ] || fail "requests: $(q "select count(*) from requests where service = 'voirie'")"
row() { q "select r.channel || '|' || to_char(r.requested_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') || '|' || coalesce(r.outcome, '-') || '|' || coalesce(r.outcome_reason, '-') || '|' || coalesce(r.outcome_ref, '-') from requests r join request_sources rs on rs.request_id = r.id where rs.source = 'voirie311' and rs.source_record_id = '$1'"; }
[ "$(row SR-1)" = "interne|2024-03-01 07:15|done|-|-" ] || fail "SR-1: $(row SR-1)"
[ "$(row SR-2)" = "api|2024-03-02 08:00|duplicate|même trou que SR-1|SR-1" ] || fail "SR-2: $(row SR-2)"
[ "$(row SR-5)" = "interne|2024-03-01 11:00|transferred|RATP|-" ] || fail "SR-5: $(row SR-5)"
[ "$(q "select location->>'lat' || ',' || (location->>'lon') || ',' || (location->>'city') from source_records where source_record_id = 'SR-1'")" = "48.8686,2.3316,Paris" ] \
    || fail "SR-1 location (decimal comma): $(q "select location from source_records where source_record_id = 'SR-1'")"
[ "$(q "select requested_at is not null and outcome = 'duplicate' from events where source = 'voirie311' and source_record_id = 'SR-2'")" = t ] \
    || fail "the event does not keep requested_at and outcome"
ok "requested_at, location (a decimal comma too), outcome with reason and ref, channels api and interne are stored"

# 2. a location is never a citizen; a swapped latitude is dead, without its value
[ "$(q "select count(*) from citizens")" = "$citizens_before" ] || fail "a location created a citizen"
[ "$(q "select count(*) from events where source = 'voirie311' and citizen_id is not null")" = 0 ] || fail "voirie events with a citizen"
dl=$(q "select reason || ': ' || detail from dead_letters where source = 'voirie311'")
case "$dl" in "bad_type: location.lat: the value at path 'lat' is not a number of degrees from -90 to 90"*) ;;
    *) fail "SR-4's dead letter: $dl" ;; esac
echo "$dl" | grep -q "6862000" && fail "the dead letter holds the value"
ok "a location creates no citizen; an impossible latitude is dead-lettered, its value not in the detail"

# 3. response times from requested_at: SR-1 4 days 8 hours, SR-2 2 hours, SR-5 10 days
[ "$(q "select percentile_cont(0.5) within group (order by extract(epoch from status_occurred_at - requested_at) / 3600) from requests where service = 'voirie' and status in ('resolved', 'closed')")" = 104 ] \
    || fail "median response time in hours"
ok "response times are computed from requested_at (median 104 h)"

# 4. a late row (an older status) keeps requested_at; a later one without it keeps it too
printf '%s\n' '{"sr": "SR-1", "type": "Pothole", "status": "In Progress", "method": "Internal", "created": "2024-02-01T08:00:00", "status_date": "2024-03-02T09:00:00"}' \
    '{"sr": "SR-3", "type": "Graffiti", "status": "Closed", "method": "Phone", "status_date": "2024-03-08T10:00:00", "resolution": "Fixed"}' >"$W/late.jsonl"
replay voirie311 "$W/late.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay late: $(cat "$W/replay.out")"
[ "$(row SR-1)" = "interne|2024-03-01 07:15|done|-|-" ] || fail "a late row changed SR-1: $(row SR-1)"
[ "$(row SR-3)" = "telephone|2024-03-03 09:00|done|-|-" ] || fail "SR-3 after its closing row: $(row SR-3)"
ok "a late row changes neither requested_at nor the outcome; a closing row without requested_at keeps it"

# 5. the API, in the caller's view
T_VOIR=$("$CTL" --config "$W/api.yaml" token create --role agent --service voirie 2>/dev/null)
R2=$(q "select request_id from request_sources where source_record_id = 'SR-2'")
get "/v1/requests/$R2" "$T_VOIR"
[ "$S" = 200 ] || fail "GET request: $S"
[ "$(js "d['requested_at'][:16] + ' ' + d['outcome'] + ' ' + d['outcome_ref'] + ' ' + d['location']['address'] + ' ' + d['channel']")" = \
  "2024-03-02T08:00 duplicate SR-1 12 rue de la Paix api" ] || fail "own view: $(cat "$W/body")"
get "/v1/requests/$R2" "$T_DECH"
[ "$S" = 200 ] || fail "GET request as another service: $S"
[ "$(js "('location' in d, 'outcome_ref' in d, d['outcome'], d['requested_at'][:10])")" = "(False, False, 'duplicate', '2024-03-02')" ] \
    || fail "another service's view: $(cat "$W/body")"
ok "the API shows requested_at, outcome and location in the owner's view; another service gets no location"

# 6. Open311: requested_datetime and lat/long from the request
CODE1=$(q "select r.tracking_code from requests r join request_sources rs on rs.request_id = r.id where rs.source_record_id = 'SR-1'")
S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $T_SUP" "$U/open311/v2/requests/$CODE1.json")
[ "$S" = 200 ] || fail "Open311 GET: $S $(cat "$W/body")"
[ "$(js "d[0]['requested_datetime'] + ' ' + str(d[0]['lat']) + ' ' + str(d[0]['long']) + ' ' + d[0]['address'] + ' ' + d[0]['zipcode']")" = \
  "2024-03-01T07:15:00Z 48.8686 2.3316 12 rue de la Paix 75002" ] || fail "Open311 item: $(cat "$W/body")"
CODE3=$(q "select r.tracking_code from requests r join request_sources rs on rs.request_id = r.id where rs.source_record_id = 'SR-3'")
S=$(curl -s -o "$W/body" -w '%{http_code}' "$U/open311/v2/requests/$CODE3.json")
[ "$S" = 200 ] || fail "Open311 GET of a public category without details: $S"
[ "$(js "(d[0]['address'], d[0]['zipcode'], d[0]['lat'], d[0]['long'])")" = "(None, None, None, None)" ] \
    || fail "a category without public details shows where: $(cat "$W/body")"
ok "Open311's requested_datetime, address, zipcode, lat and long come from the request; hidden where details are not public"

# 7. an Open311 POST's address is the request's location, never a citizen's address
before=$(q "select count(*) from citizens")
S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "service_code=nid_de_poule&description=Trou&address_string=8+rue+Lepic&lat=48.8847&long=2.3339" \
    "$U/open311/v2/requests.json")
[ "$S" = 200 ] || fail "Open311 POST: $S $(cat "$W/body")"
C7=$(js 'd[0]["service_request_id"]')
[ "$(q "select count(*) from citizens")" = "$before" ] || fail "an address_string created a citizen"
[ "$(q "select sr.location->>'address' || ',' || (sr.location->>'lat') || ',' || (r.requested_at is not null) from requests r join request_sources rs on rs.request_id = r.id join source_records sr on sr.source = rs.source and sr.source_record_id = rs.source_record_id where r.tracking_code = '$C7'")" = "8 rue Lepic,48.8847,true" ] \
    || fail "the POST's location"
S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "service_code=nid_de_poule&description=Trou&address_string=8+rue+Lepic&lat=148.8&long=2.3" "$U/open311/v2/requests.json")
[ "$S" = 400 ] || fail "a POST with lat 148.8: $S"
S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "service_code=nid_de_poule&description=Trou&last_name=Roux&address_string=8+rue+Lepic" "$U/open311/v2/requests.json")
[ "$S" = 200 ] || fail "POST with a name: $S"
C8=$(js 'd[0]["service_request_id"]')
[ "$(q "select cs.identity->'address' from requests r join citizen_sources cs on cs.citizen_id = r.citizen_id where r.tracking_code = '$C8'")" = null ] \
    || fail "the request's address went into the citizen's identity"
ok "an Open311 POST's address_string and lat/long are the request's location: no citizen, no citizen address"
api_stop
