#!/usr/bin/env bash
# The console's front office and queue in Debian's chromium (issue 21 item 1; docs/web.md):
# tests/browser/accueil.mjs registers a letter with its scan (a text file renamed .pdf is
# refused first, in French; a double click registers once), a phone call from a citizen's
# page, and reads the service's queue (overdue first, then due soon); then SQL checks what
# was stored: one letter with its registration number and its attachment, the call in the
# citizen's file, the refused letter nowhere.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
API_YAML_EXTRA="web:
  dir: $ROOT/web
attachments:
  dir: attachments" api_setup browser-accueil 30
CIT=$(q "select citizen_id from requests where citizen_id is not null and service = 'dechets' order by id limit 1")
NAME=$(q "select identity->>'family_name' from citizen_sources where citizen_id = $CIT and identity->>'family_name' is not null limit 1")
[ -n "$NAME" ] || fail "no named citizen in the demo data"
# a late and a soon request of the waste service
OVER=$(q "update requests set due_at = now() - interval '4 days', status = 'in_progress' where id = (select id from requests where service = 'dechets' order by id limit 1) returning tracking_code")
SOON=$(q "update requests set due_at = now() + interval '1 day', status = 'in_progress' where id = (select id from requests where service = 'dechets' and tracking_code <> '$OVER' order by id limit 1) returning tracking_code")
[ -n "$OVER" ] && [ -n "$SOON" ] || fail "no waste requests to put in the queue"
# what the notifier would have written about one of the citizen's requests (the ledger)
NOTIFIED=$(q "select tracking_code from requests where citizen_id = $CIT and service = 'dechets' order by id limit 1")
q "insert into notifications (event_id, request_id, recipient, channel, template, status, address, state, attempts, done_at)
   select e.id, e.request_id, 'citizen', 'email', 'accuse_reception', 'received', 'x@exemple.fr', 'sent', 1, now()
   from events e join requests r on r.id = e.request_id where r.tracking_code = '$NOTIFIED' order by e.id limit 1" >/dev/null \
    || fail "a notification row"
printf '%%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%%%EOF\n' >"$W/lettre.pdf"
printf 'ceci n est pas un PDF\n' >"$W/faux.pdf"
before=$(q "select count(*) from requests")

B=$ROOT/tests/browser
"$B/install.sh" "$W/npm.log" 2>"$W/npm.err" || fail "$(cat "$W/npm.err")"
at_exit "pkill -f -- '--user-data-dir=/tmp/playwright' 2>/dev/null; true"
BASE_URL=$U TOKEN=$T_DECH CITIZEN=$CIT CITIZEN_NAME=$NAME PDF=$W/lettre.pdf FAKE=$W/faux.pdf OVERDUE=$OVER SOON=$SOON NOTIFIED=$NOTIFIED \
    OUT_DIR=$B/out timeout 240 node "$B/accueil.mjs" >"$W/browser.log" 2>&1
rc=$?
cat "$W/browser.log"
[ $rc -eq 0 ] || fail "the browser test (accueil.mjs) failed: rc $rc"
LETTER=$(sed -n 's/^CODE_LETTER=//p' "$W/browser.log")
CALL=$(sed -n 's/^CODE_CITIZEN=//p' "$W/browser.log")
row=$(q "select r.channel || ',' || r.service || ',' || coalesce(r.request_ref, '-') || ',' ||
                (select count(*) from attachments a where a.request_id = r.id)
         from requests r where r.tracking_code = '$LETTER'")
case "$row" in courrier,dechets,20[0-9][0-9]-[0-9]*,1) ;; *) fail "the letter: $row" ;; esac
[ "$(q "select channel || ',' || citizen_id from requests where tracking_code = '$CALL'")" = "telephone,$CIT" ] \
    || fail "the call is not in citizen $CIT's file: $(q "select channel, citizen_id from requests where tracking_code = '$CALL'")"
[ "$(q "select count(*) from requests")" = $((before + 2)) ] || fail "requests: $(q "select count(*) from requests") (expected $((before + 2)): the refused letter or the double click stored something)"
[ "$(q "select count(*) from citizen_sources where identity->>'family_name' = 'Lettre-Navigateur'")" = 1 ] \
    || fail "the letter's declared citizen"
ok "stored: the letter with its number and its scan, the call in the citizen's file, nothing for the refusals"
