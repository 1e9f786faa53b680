#!/usr/bin/env bash
# civibus-notify (issue 20 item 3; docs/notifications.md) against real PostgreSQL, hub,
# Postfix and Dovecot: the citizen's mailbox, read over IMAP, receives one acknowledgement
# and one mail per status change, with the tracking code, the status page link, a valid
# signed Reply-To, our Message-ID recorded in mail_threads and the anti-loop headers;
#   - status changes within coalesce_s make one mail (the latest status);
#   - a preference off, a suppressed address, an automatic mail: no mail, the ledger says why;
#   - a helper who filed for the citizen gets a copy;
#   - an attacker's category with CR/LF and markup writes no header and no HTML;
#   - quiet hours hold the mail until their end; SMTP down then up: retried, delivered once;
#   - a bad config line or an unknown placeholder stops the start with file:line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/notify_lib.sh"
notify_setup notify

# a bad config stops the start with file:line
sed 's/  tls: optional/  tls: maybe/' "$W/notify.yaml" >"$W/bad.yaml"
"$NOTIFY" --config "$W/bad.yaml" --check-config >"$W/check.out" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "bad.yaml:[0-9]*: tls is required, optional or none" "$W/check.out" || fail "bad tls: $rc $(cat "$W/check.out")"
mkdir "$W/badtpl" && cp "$W"/templates/* "$W/badtpl/" && printf '\n{{nom_du_citoyen}}\n' >>"$W/badtpl/changement_statut.html"
sed 's|templates: templates|templates: badtpl|' "$W/notify.yaml" >"$W/bad.yaml"
"$NOTIFY" --config "$W/bad.yaml" --check-config >"$W/check.out" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "changement_statut.html:[0-9]*: unknown placeholder {{nom_du_citoyen}}" "$W/check.out" || fail "bad template: $rc $(cat "$W/check.out")"
chmod 644 "$W/reply_secret"
"$NOTIFY" --config "$W/notify.yaml" --check-config >"$W/check.out" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "notify.yaml:[0-9]*: .*owner only" "$W/check.out" || fail "key readable by all: $rc $(cat "$W/check.out")"
chmod 600 "$W/reply_secret"
sed "s|templates: notify/templates|templates: $ROOT/deploy/notify/templates|; s|reply_secret_file: .*|reply_secret_file: $W/reply_secret|" \
    "$ROOT/deploy/notify.yaml" >"$W/deploy.yaml"
"$NOTIFY" --config "$W/deploy.yaml" --check-config >"$W/check.out" 2>&1 || fail "deploy/notify.yaml: $(cat "$W/check.out")"
ok "a bad tls value, an unknown placeholder, a key others can read: file:line; deploy/notify.yaml passes"

# an old request before the first start: start_from end tells nobody about it
OLD=$(register citoyen+ancien@civibus.test)
notify_start

# 1. acknowledgement
A=$(register citoyen+a@civibus.test)
settle
wait_mails "'+a@' in m['to']" 1
[ "$(q "SELECT state || ',' || template || ',' || attempts FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$A'")" = "sent,accuse_reception,1" ] \
    || fail "ledger: $(q "SELECT * FROM notifications")"
curl -s --url "$CIVIBUS_IMAP_URL/INBOX;UID=1" --user citoyen:citoyen-secret >"$W/m1.eml" || fail "curl IMAP"
grep -q "^Auto-Submitted: auto-generated" "$W/m1.eml" && grep -q "^X-Auto-Response-Suppress: All" "$W/m1.eml" || fail "anti-loop headers"
python3 - "$W/mbox.json" "$W/reply_secret" "$A" <<'PY' || fail "the acknowledgement's contents"
import json, sys, hmac, hashlib, base64, re
ms = [m for m in json.load(open(sys.argv[1])) if '+a@' in m['to']]
m, code = ms[0], sys.argv[3]
key = open(sys.argv[2], 'rb').read().rstrip()
sig = base64.b32encode(hmac.new(key, b'civibus-reply:' + code.encode(), hashlib.sha256).digest()).decode().lower()[:10]
assert m['reply_to'] == '<mairie+%s-%s@civibus.test>' % (code, sig), m['reply_to']
assert code in m['subject'] and m['subject'].startswith('[Mairie] '), m['subject']
assert m['type'] == 'multipart/alternative', m['type']
link = 'https://demarches.civibus.test/suivi/' + code
assert link in m['text'] and ('href="%s"' % link) in m['html'], 'link'
assert 'reçue' in m['subject'], m['subject']
assert re.match(r'^<[0-9a-f]{32}@civibus\.test>$', m['message_id']), m['message_id']
print(hashlib.sha256(m['message_id'][1:-1].encode()).hexdigest(), file=open(sys.argv[1] + '.mid', 'w'))
PY
MID=$(cat "$W/mbox.json.mid")
[ "$(q "SELECT r.tracking_code || ',' || t.direction FROM mail_threads t JOIN requests r ON r.id = t.request_id WHERE t.message_id_hash = '$MID'")" = "$A,out" ] \
    || fail "the Message-ID is not in mail_threads"
[ "$(mails "'+ancien@' in m['to']")" = 0 ] && [ "$(q "SELECT count(*) FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$OLD'")" = 0 ] \
    || fail "a request stored before the first start was notified"
ok "acknowledgement: code in the subject, status page link, signed Reply-To, Message-ID in mail_threads, anti-loop headers"

# 2. one mail per status change; changes within coalesce_s: one mail, the latest status
event "$A" in_progress
settle; wait_mails "'+a@' in m['to']" 2
[ "$(mails "'+a@' in m['to'] and 'en cours' in m['subject'] and '$A' in m['subject']")" = 1 ] || fail "status change mail"
event "$A" acknowledged; event "$A" in_progress; event "$A" resolved
settle; wait_mails "'+a@' in m['to']" 3
sleep 1; mailbox
[ "$(mails "'+a@' in m['to']")" = 3 ] && [ "$(mails "'+a@' in m['to'] and 'traitée' in m['subject']")" = 1 ] || fail "coalescing: $(mails "'+a@' in m['to']") mails"
[ "$(q "SELECT string_agg(state, ',' ORDER BY n.id) FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$A' AND template = 'changement_statut'")" = "sent,coalesced,coalesced,sent" ] \
    || fail "ledger after coalescing: $(q "SELECT string_agg(state, ',' ORDER BY id) FROM notifications")"
ok "one mail per status change; three changes within coalesce_s make one mail with the latest status"

# 3. preference off, suppressed address, automatic mail, a helper's copy
P=$(register citoyen+pref@civibus.test)
settle
q "INSERT INTO notification_preferences (citizen_id, channel, mode) SELECT citizen_id, 'email', 'off' FROM requests WHERE tracking_code = '$P'" >/dev/null
event "$P" in_progress
q "INSERT INTO email_suppressions (address, reason) VALUES ('citoyen+supp@civibus.test', 'bounce_permanent')" >/dev/null
S=$(register citoyen+supp@civibus.test)
H=$(register citoyen+h@civibus.test)
event "$H" in_progress accueil_guichet "" citoyen+aide@civibus.test
event "$H" resolved courriel_automatique
settle; wait_mails "'+aide@' in m['to'] and 'en cours' in m['subject']" 1; wait_mails "'+h@' in m['to']" 2    # Postfix delivers in its own time; the helper may get the acknowledgement too
sleep 1; mailbox
[ "$(q "SELECT last_error FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$P' AND template = 'changement_statut'")" = preference_off ] \
    || fail "preference off: $(q "SELECT * FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$P'")"
[ "$(mails "'+pref@' in m['to']")" = 1 ] || fail "preference off: $(mails "'+pref@' in m['to']") mails (the acknowledgement only)"
[ "$(q "SELECT state || ',' || last_error || ',' || (address IS NULL) FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$S'")" = "skipped,suppressed,true" ] \
    && [ "$(mails "'+supp@' in m['to']")" = 0 ] || fail "suppressed address"
[ "$(mails "'+aide@' in m['to'] and '$H' in m['subject'] and 'en cours' in m['subject']")" = 1 ] && [ "$(mails "'+h@' in m['to']")" = 2 ] \
    || fail "helper copy: $(mails "'+aide@' in m['to']") / citizen $(mails "'+h@' in m['to']")"
[ "$(q "SELECT count(*) FROM notifications n JOIN events e ON e.id = n.event_id WHERE e.kind = 'courriel_automatique'")" = 0 ] \
    || fail "an automatic mail's event was notified"
ok "a preference off, a suppressed address: no mail, the ledger says why; a helper's copy; no mail for an automatic mail"

# 4. an attacker's values: no header, no markup
X=$(register citoyen+x@civibus.test)
sed -i '1s/.*/Objet: Votre demande {{code}} : {{statut}} ({{categorie}})/' "$W/templates/changement_statut.txt"
notify_stop; notify_start
event "$X" in_progress accueil_guichet $'<script>alert(1)</script> & "q"\r\nBcc: citoyen+evil@civibus.test\r\n\r\nX-Injected: 1'
settle; wait_mails "'+x@' in m['to']" 2
sleep 1; mailbox
python3 - "$W/mbox.json" <<'PY' || fail "injection"
import json, sys
ms = [m for m in json.load(open(sys.argv[1])) if '+x@' in m['to'] and 'en cours' in m['subject']]
assert len(ms) == 1, len(ms)
m = ms[0]
assert 'bcc' not in m['headers'] and 'x-injected' not in m['headers'], m['headers']
assert '<script>' not in m['html'] and '&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;' in m['html'], m['html']
assert '\r' not in m['subject'] and '\n' not in m['subject'] and 'Bcc' in m['subject'], repr(m['subject'])
assert all(not l.lower().startswith(('bcc:', 'x-injected:')) for l in m['raw_head'].split('\r\n'))
PY
[ "$(mails "'+evil@' in m['to']")" = 0 ] || fail "the injected Bcc received a mail"
ok "CR/LF and a Bcc in a value stay inside the encoded subject; markup is escaped in the HTML part"

# 5. quiet hours: held until their end
notify_stop
notify_config "$(TZ=Europe/Paris date -d '-1 hour' +%H:%M)" "$(TZ=Europe/Paris date -d '+1 hour' +%H:%M)"
notify_start
Q=$(register citoyen+q@civibus.test)
sleep 2
[ "$(q "SELECT state FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$Q'")" = planned ] || fail "quiet hours: not held"
notify_stop
notify_config "$(TZ=Europe/Paris date -d '-2 hour' +%H:%M)" "$(TZ=Europe/Paris date -d '-1 hour' +%H:%M)"
notify_start
settle; wait_mails "'+q@' in m['to']" 1
ok "quiet hours hold the mail; sent once they are over"

# 6. SMTP down, then up: retried, delivered once
PF=$CIVIBUS_MAIL_DIR/postfix
/usr/sbin/postfix -c "$PF" stop >/dev/null 2>&1
for i in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$CIVIBUS_MAIL_SMTP_PORT") 2>/dev/null || break; sleep 0.1; done
D=$(register citoyen+down@civibus.test)
for i in $(seq 1 100); do
    [ "$(q "SELECT attempts >= 2 FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$D'")" = t ] && break
    sleep 0.1
done
[ "$(q "SELECT state || ',' || last_error FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$D'")" = "planned,curl_7" ] \
    || fail "SMTP down: $(q "SELECT state, last_error, attempts FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$D'")"
/usr/sbin/postfix -c "$PF" start >/dev/null 2>&1 || fail "postfix start"
settle 20; wait_mails "'+down@' in m['to']" 1
sleep 1; mailbox
[ "$(mails "'+down@' in m['to']")" = 1 ] || fail "SMTP back: $(mails "'+down@' in m['to']") mails"
ok "SMTP down: retried with back-off (connect), delivered once when it is back"

# the ledger holds no content; the log no address
grep -q "civibus.test" "$W/notify.log" && fail "an address in the notifier's log"
notify_stop
ok "no address in the log; clean stop"
