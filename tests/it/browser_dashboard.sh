#!/usr/bin/env bash
# The city's dashboard (issue 21, item 3; docs/web.md) against the real hub, API and
# PostgreSQL, in Debian's chromium (tests/browser/dashboard.mjs):
#   - GET /v1/dashboard: supervisors only (an agent 403, no token 401), a bad year 400; a
#     wrong costs file stops civibus-api with file:line: reason;
#   - the page's figures — requests in the year, by channel, by service, past due, median
#     and 90th percentile response times from requested_at, cost by channel, the saving of
#     moving half of the counter and letter requests online — equal what this script
#     computes with its own SQL on the tables (not on the dashboard's views);
#   - axe-core, 360 px, the slider with the keyboard; screenshots.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
T3=${CIVIBUS_TEST_TMP:-/tmp}/dash-demo3-$$.yaml
sed 's/service: {const: dechets}/service: {const: voirie}/; s/^source: demo$/source: demo3/;
     s|^\(      occurred_at: {path: date, format: "%d/%m/%Y %H:%M"}\)$|\1\n      requested_at: {path: depose, format: "%d/%m/%Y %H:%M"}|' \
    "$ROOT/deploy/mappings/demo.yaml" >"$T3"
grep -q 'requested_at: {path: depose' "$T3" || { rm -f "$T3"; echo "FAIL: the demo3 mapping" >&2; exit 1; }
at_exit "rm -f '$T3'"
cat >"${CIVIBUS_TEST_TMP:-/tmp}/dash-costs-$$.yaml" <<'YAML'
per_contact:
  guichet: 12
  web: 3
  courrier: 4.5
  telephone:
YAML
COSTS=${CIVIBUS_TEST_TMP:-/tmp}/dash-costs-$$.yaml
at_exit "rm -f '$COSTS'"
API_YAML_EXTRA="web:
  dir: $ROOT/web
dashboard:
  costs_file: $COSTS" api_setup browser-dashboard 40 "demo:$ROOT/deploy/mappings/demo.yaml" "demo3:$T3"

# ---- requests of the roads service with their filing time, answered or not --------------------
Y=$(date +%Y)
d() {   # d DAYS HOURS: 2 January 09:00 of this year, plus that
    python3 -c "import datetime as t, sys; print((t.datetime($Y, 1, 2, 9) + t.timedelta(days=int(sys.argv[1]), hours=int(sys.argv[2]))).strftime('%d/%m/%Y %H:%M'))" "$1" "$2"
}
rec() {   # id version statut canal date depose [echeance]
    printf '{"id": "%s", "version": %s, "type": "autre", "statut": "%s", "canal": "%s", "date": "%s", "depose": "%s"%s, "objet": "voirie"}\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" "${7:+, \"echeance\": \"$7\"}"
}
{
    rec V-1 1 RECU GUICHET "$(d 0 0)" "$(d 0 0)"
    rec V-1 2 TRAITE GUICHET "$(d 2 0)" "$(d 0 0)"
    rec V-2 1 RECU COURRIER "$(d 0 1)" "$(d 0 1)"
    rec V-2 2 CLOS COURRIER "$(d 5 1)" "$(d 0 1)"
    rec V-3 1 RECU TEL "$(d 0 2)" "$(d 0 2)"
    rec V-3 2 TRAITE TEL "$(d 1 2)" "$(d 0 2)"
    rec V-4 1 RECU WEB "$(d 0 3)" "$(d 0 3)" "01/01/$Y"
    rec V-5 1 RECU GUICHET "$(d 0 4)" "$(d 0 4)"
} >"$W/v.jsonl"
replay demo3 "$W/v.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay demo3: $(cat "$W/replay.out")"
[ "$(q "select count(*) from requests where service = 'voirie' and requested_at is not null")" = 5 ] || fail "demo3 requests"

# ---- the endpoint ---------------------------------------------------------------------------------
get "/v1/dashboard?year=$Y" "$T_SUP"; [ "$S" = 200 ] || fail "supervisor: $S $(cat "$W/body")"
get "/v1/dashboard?year=$Y" "$T_DECH"; [ "$S" = 403 ] || fail "an agent reads the dashboard: $S"
get "/v1/dashboard"; [ "$S" = 401 ] || fail "no token: $S"
get "/v1/dashboard?year=12" "$T_SUP"; [ "$S" = 400 ] || fail "year 12: $S"
printf 'per_contact:\n  guichet: 12\n  fax: 3\n' >"$W/bad-costs.yaml"
sed "s|costs_file: .*|costs_file: $W/bad-costs.yaml|" "$W/api.yaml" >"$W/api-bad.yaml"
"$API" --config "$W/api-bad.yaml" >"$W/bad.log" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "bad-costs.yaml:3: unknown key 'fax'" "$W/bad.log" || fail "a wrong costs file: rc $rc $(cat "$W/bad.log")"
printf 'per_contact:\n  guichet: -4\n' >"$W/bad-costs.yaml"
"$API" --config "$W/api-bad.yaml" >"$W/bad.log" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "bad-costs.yaml:2: 'guichet': an amount in euros" "$W/bad.log" || fail "a negative cost: rc $rc $(cat "$W/bad.log")"
ok "GET /v1/dashboard: supervisors only (agent 403, no token 401), a bad year 400; a wrong costs line stops the API with file:line"

# ---- what the page must show, computed here from the tables --------------------------------------
YR="extract(year from coalesce(requested_at, created_at) at time zone 'Europe/Paris') = $Y"
TOTAL=$(q "select count(*) from requests where $YR")
BY_CHANNEL=$(q "select string_agg(coalesce(channel::text, 'inconnu') || '=' || n, ',' order by 1) from
                (select channel, count(*) n from requests where $YR group by 1) s")
OVERDUE=$(q "select string_agg(coalesce(service, '') || '=' || n, ',' order by 1) from
             (select service, count(*) n from requests where due_at < now()
              and status in ('received', 'acknowledged', 'in_progress') group by 1) s")
RT=$(q "select round(percentile_cont(0.5) within group (order by extract(epoch from status_occurred_at - requested_at)))
           || ',' || round(percentile_cont(0.9) within group (order by extract(epoch from status_occurred_at - requested_at)))
        from requests where service = 'voirie' and status in ('resolved', 'closed') and requested_at is not null and $YR")
NG=$(q "select count(*) from requests where channel = 'guichet' and $YR")
NC=$(q "select count(*) from requests where channel = 'courrier' and $YR")
SAVING=$(python3 -c "print(round(0.5 * ($NG * (12 - 3) + $NC * (4.5 - 3)), 2))")
COST=$(python3 -c "print(round($NG * 12 + $(q "select count(*) from requests where channel = 'web' and $YR") * 3 + $NC * 4.5, 2))")
[ "$RT" = "172800,380160" ] || fail "the test's own response times: $RT (expected a median of 2 days and a 90th percentile of 4.4 days, of 1, 2 and 5 days)"

B=$ROOT/tests/browser
"$B/install.sh" "$W/npm.log" 2>"$W/npm.err" || fail "$(cat "$W/npm.err")"
at_exit "pkill -f -- '--user-data-dir=/tmp/playwright' 2>/dev/null; true"
BASE_URL=$U TOKEN_SUP=$T_SUP TOKEN_AGENT=$T_DECH YEAR=$Y TOTAL=$TOTAL BY_CHANNEL=$BY_CHANNEL OVERDUE=$OVERDUE \
    RT=$RT SAVING=$SAVING COST=$COST OUT_DIR=$B/out timeout 240 node "$B/dashboard.mjs" >"$W/browser.log" 2>&1
rc=$?
cat "$W/browser.log"
[ $rc -eq 0 ] || fail "the browser test (dashboard.mjs) failed: rc $rc"
ok "the dashboard in chromium: every figure equals the tables' (computed apart), accessible, 360 px"
