#!/usr/bin/env bash
# SIGHUP makes civibus-api read its pages and its costs again without a restart
# (docs/operations.md, "Reloading"): a corrected text of the catalogue is served with a new
# ETag, the dashboard's cost per contact follows costs.yaml; a careless edit (a file whose
# name breaks the rules, a costs.yaml with a bad amount) is logged with its reason and the
# running pages and costs stay; the API keeps its pid and answers throughout; SIGTERM
# still stops it cleanly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
mkdir -p /tmp/civibus-api-reload.$$ && WEB=/tmp/civibus-api-reload.$$/web
at_exit "rm -rf /tmp/civibus-api-reload.$$"
cp -r "$ROOT/web" "$WEB"
printf 'per_contact:\n  guichet: 12\n  web: 3\n' >"/tmp/civibus-api-reload.$$/costs.yaml"
API_YAML_EXTRA=$(printf 'web:\n  dir: %s\ndashboard:\n  costs_file: /tmp/civibus-api-reload.%s/costs.yaml' "$WEB" "$$") \
    api_setup api_reload 5
PID=$API_PID

reload() {  # SIGHUP, then wait for the reload's last line
    local before; before=$(grep -c "the rest of the configuration" "$W/api.log")
    kill -HUP "$PID"
    for i in $(seq 1 50); do
        [ "$(grep -c "the rest of the configuration" "$W/api.log")" -gt "$before" ] && return 0
        sleep 0.1
    done
    fail "no reload line within 5 s: $(tail -3 "$W/api.log")"
}
etag() { curl -s -D - -o "$W/page" "$U/assets/textes-fr.json" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p'; }
cost() {  # the dashboard's cost per contact of a channel
    get /v1/dashboard "$T_SUP"; [ "$S" = 200 ] || fail "dashboard: $S $(cat "$W/body")"
    python3 -c "import json; d=json.load(open('$W/body')); print([c['unit_cost'] for c in d['costs'] if c['channel'] == '$1'][0])"
}

e1=$(etag)
[ -n "$e1" ] || fail "no ETag on the catalogue"
grep -q "Suivre ma demande" "$W/page" || grep -q "suivi" "$W/page" || fail "catalogue: $(head -c 200 "$W/page")"
python3 - "$WEB/assets/textes-fr.json" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["_reload_test"] = "Texte corrigé par la mairie"
json.dump(d, open(p, "w"), ensure_ascii=False)
PY
[ "$(etag)" = "$e1" ] || fail "the file on disk was served before any SIGHUP"
reload
e2=$(etag)
[ -n "$e2" ] && [ "$e2" != "$e1" ] || fail "ETag after the reload: $e2 (was $e1)"
grep -q "Texte corrigé par la mairie" "$W/page" || fail "the corrected text is not served"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $e1" "$U/assets/textes-fr.json")
[ "$code" = 200 ] || fail "the old ETag still matched: $code"
grep -q "reload: SIGHUP: [0-9]* files of $WEB read again" "$W/api.log" || fail "no 'read again' line"
ok "a corrected text served after SIGHUP, with a new ETag"

# careless edits: a file whose name breaks the rules; a bad amount — logged, nothing changes
touch "$WEB/assets/Mauvais Nom.js"
printf 'per_contact:\n  guichet: -5\n' >"/tmp/civibus-api-reload.$$/costs.yaml"
reload
grep -q "reload: .*Mauvais Nom.js.*the pages served stay as they were" "$W/api.log" \
    || fail "a bad file name: $(grep reload: "$W/api.log" | tail -n3)"
grep -q "reload: .*costs.yaml:[0-9]*: .*the dashboard's costs stay as they were" "$W/api.log" \
    || fail "a bad amount: $(grep reload: "$W/api.log" | tail -n3)"
[ "$(etag)" = "$e2" ] || fail "the pages changed after a failed reload"
kill -0 "$PID" || fail "the API died"
ok "a bad file name or amount: logged with its reason, pages and costs kept"

# the costs follow the file once it is right
rm -f "$WEB/assets/Mauvais Nom.js"
before=$(cost guichet)
printf 'per_contact:\n  guichet: 15\n  web: 3\n' >"/tmp/civibus-api-reload.$$/costs.yaml"
reload
after=$(cost guichet)
[ "${before%.0}" = 12 ] && [ "${after%.0}" = 15 ] || fail "costs: before '$before', after '$after'"
ok "the cost per contact follows costs.yaml after SIGHUP ($before → $after)"

[ "$(pgrep -f "civibus-api --config $W/api.yaml" | head -n1)" = "$PID" ] || fail "the API was restarted"
api_stop
ok "same process throughout; SIGTERM stops it cleanly"
echo "PASS api_reload"
