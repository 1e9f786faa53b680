#!/usr/bin/env bash
# `make run` (deploy/run.sh) on its own folder: starts its PostgreSQL, the hub, the API and
# the demo adapter; var/run.env lets psql see the sample events and curl the API with the
# demo token (var/api-token, 0600, never printed); replaying the sample again leaves
# the count unchanged; the malformed sample record is a dead letter; `make stop` stops all.
# san: skip   (uses the normal build, like `make run`)
. "$(dirname "$0")/lib.sh"
W=$(mktemp -d "${CIVIBUS_TEST_TMP:-/tmp}/it-make-run.XXXXXX"); chmod 755 "$W"
export CIVIBUS_VAR=$W/var
cleanup_run() {
    bash "$ROOT/deploy/run.sh" stop >/dev/null 2>&1
    bash "$ROOT/deploy/pgctl.sh" stop --purge "$W/var/pg" >/dev/null 2>&1
}
at_exit cleanup_run
DETACH=1 bash "$ROOT/deploy/run.sh" >"$W/run.out" 2>&1 || { cat "$W/run.out"; fail "make run failed"; }
grep -q "civibus is running" "$W/run.out" || fail "no banner: $(cat "$W/run.out")"
[ -f "$W/var/run.env" ] || fail "no var/run.env"
(
    unset PGHOST PGPORT PGUSER PGDATABASE
    . "$W/var/run.env"
    for v in PGHOST PGPORT PGDATABASE CIVIBUS_ADAPTERS_ENDPOINT; do [ -n "${!v:-}" ] || fail "run.env lacks $v"; done
    n=$(psql -X -A -t -c "select count(*) from events where source = 'demo'")
    [ "$n" = 80 ] || fail "sample events: $n, expected 80"
    r=$(psql -X -A -t -c "select count(distinct request_id) from events where source = 'demo'")
    [ "$r" = 60 ] || fail "sample requests: $r, expected 60"
    d=$(psql -X -A -t -c "select reason from dead_letters where source = 'demo'")
    [ "$d" = invalid_json ] || fail "sample dead letter: $d"
    for s in etat-civil urbanisme dechets; do
        c=$(psql -X -A -t -c "select count(*) from events where source = '$s'")
        [ "${c:-0}" -gt 0 ] || fail "no events from $s in the timeline"
    done
    psql -X -A -t -c "select source || ': ' || count(*) from events group by source order by source" | sed 's/^/    /'
    # the agents' API answers with the demo token: a citizen of the sample, then their timeline
    [ -n "${CIVIBUS_API_URL:-}" ] || fail "run.env lacks CIVIBUS_API_URL"
    tok=$(cat "$W/var/api-token") && [ -n "$tok" ] || fail "no var/api-token"
    [ "$(stat -c %a "$W/var/api-token")" = 600 ] || fail "var/api-token is readable by others"
    grep -q "$tok" "$W/run.out" "$W"/var/log/*.log && fail "the API token was printed or logged"
    curl -fsS -H "Authorization: Bearer $tok" "$CIVIBUS_API_URL/v1/citizens?name=dupont" >"$W/search.json" \
        || fail "citizen search through the API failed"
    cid=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["items"][0]["id"])' "$W/search.json") \
        || fail "no citizen named Dupont through the API: $(cat "$W/search.json")"
    curl -fsS -H "Authorization: Bearer $tok" "$CIVIBUS_API_URL/v1/citizens/$cid/timeline" >"$W/timeline.json" \
        || fail "timeline through the API failed"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["events"] and d["requests"], d' \
        "$W/timeline.json" || fail "empty timeline through the API"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$CIVIBUS_API_URL/v1/citizens?name=dupont")" = 401 ] \
        || fail "the API answered without a token"
    "$ROOT/bin/civibus-adapter" replay --config "$W/var/adapter-demo.yaml" --source demo \
        --file "$ROOT/deploy/sample/demo.jsonl" --timeout 30 >"$W/again.out" 2>/dev/null || fail "second replay failed"
    [ "$(psql -X -A -t -c "select count(*) from events where source = 'demo'")" = 80 ] || fail "second replay changed the count"
) || exit 1
# the mail flow (as root: the mail servers run): a mail to the city becomes a request routed
# to the waste service, whose software gets it; the citizen's mailbox gets the acknowledgement
if [ "$(id -u)" -eq 0 ]; then (
    unset PGHOST PGPORT PGUSER PGDATABASE
    . "$W/var/run.env"
    for v in CIVIBUS_SMTP_URL CIVIBUS_CITY_MAIL CIVIBUS_CITIZEN_IMAP_URL CIVIBUS_CITIZEN_IMAP_USER; do
        [ -n "${!v:-}" ] || fail "run.env lacks $v"
    done
    grep -q "curl -sS \$CIVIBUS_SMTP_URL --mail-from" "$W/run.out" || fail "the banner does not say how to send a mail"
    printf 'From: Jeanne <%s>\r\nTo: %s\r\nSubject: Un canape a enlever (make run)\r\n\r\nUn canapé encombrant devant le 3 rue des Lilas.\r\n' \
        "$CIVIBUS_CITIZEN_MAIL" "$CIVIBUS_CITY_MAIL" |
        curl -sS --max-time 20 "$CIVIBUS_SMTP_URL" --mail-from "$CIVIBUS_CITIZEN_MAIL" --mail-rcpt "$CIVIBUS_CITY_MAIL" -T - \
        || fail "SMTP to the city"
    for _ in $(seq 1 60); do
        code=$(psql -X -A -t -c "select r.tracking_code from requests r join source_records s on s.request_id = r.id
                                  where s.source = 'courriel' and s.summary like '%(make run)%' and r.service = 'dechets'")
        [ -n "$code" ] && [ "$(psql -X -A -t -c "select count(*) from commands where kind = 'demande_create'
                                  and request_id = (select id from requests where tracking_code = '$code')")" = 1 ] && break
        sleep 1
    done
    [ -n "$code" ] || fail "the mail did not become a request routed to dechets"
    got=
    for _ in $(seq 1 60); do
        n=$(curl -sS --max-time 10 -u "$CIVIBUS_CITIZEN_IMAP_USER:$CIVIBUS_CITIZEN_IMAP_PASSWORD" "$CIVIBUS_CITIZEN_IMAP_URL" \
                 -X 'UID SEARCH ALL' | tr -d '\r' | sed -n 's/^\* SEARCH//p' | wc -w)
        if [ "$n" -ge 1 ]; then
            got=$(curl -sS --max-time 10 -u "$CIVIBUS_CITIZEN_IMAP_USER:$CIVIBUS_CITIZEN_IMAP_PASSWORD" \
                       "$CIVIBUS_CITIZEN_IMAP_URL;UID=1")
            break
        fi
        sleep 1
    done
    echo "$got" | grep -q "^Reply-To: <mairie+$code-" || fail "no acknowledgement for $code in the citizen's mailbox"
    echo "    a mail to the city: request $code, routed to dechets, acknowledged to the citizen"
) || exit 1; fi
ok "make run: 80 sample events, 60 requests, 1 dead letter, and requests of the three softwares in one timeline; the API serves a citizen's timeline with the demo token; replay again: unchanged"
bash "$ROOT/deploy/run.sh" stop >/dev/null || fail "make stop failed"
ls "$W"/var/pids/*.pid >/dev/null 2>&1 && fail "processes left behind: $(ls "$W"/var/pids)"
pgrep -f "$W/var" >/dev/null && fail "a process of this run is still alive"
ok "make stop stopped everything"
