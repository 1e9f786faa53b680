#!/usr/bin/env bash
# The citizen's status page (issue 21, item 2; docs/web.md) in Debian's chromium, driven by
# playwright-core (tests/browser/suivi.mjs), against the real API, hub and PostgreSQL:
#   - the pages' headers: a strict Content-Security-Policy, nosniff, no Referer, no framing,
#     ETag and 304; a POST to a page is 405; a file outside web/ or a dot file is 404;
#   - at 360 px: the form (French, axe-core finds no serious or critical violation,
#     keyboard order), a code typed as on a receipt shows the request's status in plain
#     words, its service and history, no horizontal scroll; /suivi/CODE (a notification's
#     link) opens it; a mistyped, an unknown and an empty code each get one calm sentence;
#     first load under 100 kB; no console error; screenshots in tests/browser/out/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
command -v node >/dev/null && [ -x "${CHROMIUM:-/usr/bin/chromium}" ] \
    || fail "node and chromium are needed (deploy/deps.sh test installs them)"
API_YAML_EXTRA="web:
  dir: $ROOT/web" api_setup browser-suivi 40

# ---- headers, methods, paths (curl) ---------------------------------------------------------
H=$(curl -s -D - -o "$W/page" "$U/suivi/")
echo "$H" | grep -qi "^content-security-policy: default-src 'none'; script-src 'self'" || fail "no strict CSP: $H"
for h in "x-content-type-options: nosniff" "referrer-policy: no-referrer" "x-frame-options: deny" \
         "content-type: text/html; charset=utf-8"; do
    echo "$H" | tr -d '\r' | grep -qix "$h" || fail "header '$h' missing: $H"
done
grep -q '<html lang="fr">' "$W/page" || fail "the page is not lang=fr"
grep -qi '<script>' "$W/page" && fail "an inline script (the CSP would block it)"
etag=$(echo "$H" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
[ -n "$etag" ] || fail "no ETag"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$U/suivi/")" = 304 ] || fail "no 304 for a matching ETag"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/suivi/")" = 405 ] || fail "POST on a page"
for p in /assets/../../etc/passwd /assets/.gitignore /assets/nothing.js /suivi/a/b /assets/README.md; do
    s=$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$U$p")
    case "$s" in 400|404) ;; *) fail "$p: $s" ;; esac
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/assets/suivi.js")" = 200 ] || fail "suivi.js"
get /v1/track/NOPE; [ "$S" != 200 ] || fail "the API still answers beside the pages"
ok "pages: strict CSP, nosniff, no-referrer, DENY framing, ETag/304, 405 for POST, nothing outside web/"

# a web.dir that is not there stops start-up with the reason
sed "s|dir: $ROOT/web|dir: $W/no-such-web|" "$W/api.yaml" >"$W/api-bad.yaml"
"$API" --config "$W/api-bad.yaml" >"$W/api-bad.log" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "no-such-web: cannot read the pages' folder (web.dir)" "$W/api-bad.log" \
    || fail "a missing web.dir: rc $rc $(cat "$W/api-bad.log")"
ok "a missing web.dir stops civibus-api at start-up, naming the folder"

# ---- a request with a history ----------------------------------------------------------------
rec() {   # id version type statut canal date
    printf '{"id": "%s", "version": %s, "type": "%s", "statut": "%s", "canal": "%s", "date": "%s", "objet": "demande"}\n' "$@"
}
{
    rec S-1 1 encombrants RECU TEL "02/12/2026 09:15"
    rec S-1 2 encombrants EN_COURS TEL "03/12/2026 14:00"
    rec S-1 3 encombrants ATTENTE_USAGER TEL "04/12/2026 10:30"
} >"$W/s.jsonl"
replay demo "$W/s.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"
row=$(q "select r.tracking_code || '|' || r.status || '|' || coalesce(r.service, '') || '|' ||
                (select count(*) from (select status, lag(status) over (order by occurred_at, id) p
                                       from events where request_id = r.id) s
                 where p is distinct from status)
         from requests r
         where r.request_ref = 'S-1'")
[ -n "$row" ] || fail "no request with two statuses in the demo data"
IFS='|' read -r CODE STATUS SERVICE HISTORY <<<"$row"
fr() { python3 -c "import json,sys; print(json.load(open('$ROOT/web/assets/textes-fr.json')).get(sys.argv[1], sys.argv[2]))" "$1" "$2"; }
STATUS_FR=$(fr "statut.$STATUS" "$STATUS")
SERVICE_FR=$(fr "service.$SERVICE" "${SERVICE//_/ }")
MISTYPED=${CODE:0:3}${CODE:4:1}${CODE:3:1}${CODE:5}
[ "$MISTYPED" != "$CODE" ] || MISTYPED=${CODE:0:6}$( [ "${CODE:6:1}" = A ] && echo C || echo A )${CODE:7}
UNKNOWN=$(python3 -c "
A='ACDEFHJKLMNPRTUVWXY34679'
for x in A:
    b = 'ACDEFHJKLM' + x
    s = sum((i + 1) * A.index(ch) for i, ch in enumerate(b))
    c = ((29 - s % 29) * 8) % 29
    if c < 24 and b + A[c] != '$CODE':
        print(b + A[c]); break")

# ---- the browser -------------------------------------------------------------------------------
B=$ROOT/tests/browser
"$B/install.sh" "$W/npm.log" 2>"$W/npm.err" || fail "$(cat "$W/npm.err")"
at_exit "pkill -f -- '--user-data-dir=/tmp/playwright' 2>/dev/null; true"
# the day the citizen asked (requested_at; the demo source gives none: the day it was stored)
FILED_FR=$(q "select to_char(coalesce(requested_at, created_at) at time zone 'Europe/Paris', 'FMDD FMMM YYYY')
              from requests where tracking_code = '$CODE'" | python3 -c "
import sys; d, m, y = sys.stdin.read().split()
print(d, 'janvier février mars avril mai juin juillet août septembre octobre novembre décembre'.split()[int(m) - 1], y)")
BASE_URL=$U FILED_FR=$FILED_FR CODE=$CODE STATUS_FR=$STATUS_FR SERVICE_FR=$SERVICE_FR HISTORY=$HISTORY \
    UNKNOWN=$UNKNOWN MISTYPED=$MISTYPED OUT_DIR=$B/out \
    timeout 180 node "$B/suivi.mjs" >"$W/browser.log" 2>&1
rc=$?
cat "$W/browser.log"
[ $rc -eq 0 ] || fail "the browser test (suivi.mjs) failed: rc $rc"
for f in suivi-accueil-360 suivi-demande-360 suivi-inconnu-360; do
    [ -s "$B/out/$f.png" ] || fail "no screenshot $f.png"
done
ok "the status page in chromium at 360 px (screenshots in tests/browser/out/)"
