#!/usr/bin/env bash
# tests/it/imap_dsn.sh — a permanent delivery failure turns e-mail off for the address,
# only for a mail we sent (docs/intake.md, "E-mail"; schemas/sql/functions/suppressions.sql),
# against real Postfix + Dovecot, the imap adapter and the real hub:
#   - two citizens' mails make requests R and R2; the notifier's part is played by SQL:
#     its ledger rows (notifications, channel email, one attempt) and the Message-IDs of
#     the mails it sent (mail_threads 'out'), as notify/cv_notifier.c writes them;
#   - a mail with one of those Message-IDs is sent through Postfix to a mailbox that
#     does not exist: Dovecot refuses it (550 5.1.1), Postfix writes the bounce itself
#     (a real DSN, the mail returned as message/rfc822) to mairie@: the address is in
#     email_suppressions ('bounce_permanent', "dsn 5.1.1, event N"), the DSN is kept as a
#     closed courriel_automatique event without citizen, no request of kind courriel is
#     made and no request is touched; a notification planned to it afterwards is skipped;
#   - DSNs shaped like Postfix's for our Message-IDs: 5.2.2 (mailbox full) and 4.4.1
#     (delayed): nothing suppressed;
#   - forged DSNs: an unknown Message-ID; our Message-ID of R2 naming R's citizen; our
#     Message-ID of R naming an address we never mailed; no returned headers at all:
#     each recorded, nothing suppressed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adapter_lib.sh"
. "$(dirname "$0")/mail_lib.sh"
SRC=courriel
MAP=$ROOT/adapters/courriel/mapping.yaml
it_setup imap_dsn "$SRC:$MAP"

mail_start
D=$CIVIBUS_MAIL_DOMAIN
AUTH="$CIVIBUS_CITY_IMAP_USER:$CIVIBUS_CITY_IMAP_PASSWORD"
unseen() { curl -sS --max-time 10 -u "$AUTH" "$CIVIBUS_IMAP_URL/INBOX" -X "UID SEARCH UNSEEN" | tr -d '\r' \
           | sed -n 's/^\* SEARCH//p' | wc -w; }

{ cat "$W/adapter.yaml"; imap_driver "batch: 10"; } >"$W/adapter-run.yaml"
hub_start
q "INSERT INTO identity_declared_sources (source, channel) VALUES ('$SRC', 'boîte mail de la mairie')" >/dev/null
ada_start

# send FILE FROM RCPT — one SMTP transaction
send() {
    curl -sS --max-time 20 --mail-from "$2" --mail-rcpt "$3" -T "$1" "$CIVIBUS_SMTP_URL" >>"$W/smtp.log" 2>&1 \
        || fail "SMTP send of $1"
}
events() { q "select count(*) from events where source = '$SRC'"; }
settled() { [ "$(events)" -eq "$1" ] && [ "$(unseen)" -eq 0 ]; }
req_of() { q "select request_id from source_records where source = '$SRC' and raw::jsonb->>'body' like '%($1)%' limit 1"; }
hash() { printf '%s' "$1" | sha256sum | cut -c1-64; }
reqs() { q "select string_agg(id || ' ' || status || ' ' || coalesce(citizen_id::text, '-') || ' ' || updated_at, ',' order by id)
            from requests where id in ($R, $R2)"; }

# 1. two citizens' requests
python3 - "$W" "$D" <<'PY' || fail "mail generator"
import sys
w, d = sys.argv[1], sys.argv[2]
def mail(name, frm, to, subject, body, mid):
    open(f"{w}/{name}.eml", "w").write(
        f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n"
        f"Date: Mon, 07 Dec 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
mail("m1", "Jeanne <jeanne@exemple.fr>", f"mairie@{d}", "Trottoir", "Le trottoir (m1).", "m1@exemple.fr")
mail("m2", "Paul <paul@exemple.fr>", f"mairie@{d}", "Lampadaire", "Le lampadaire (m2).", "m2@exemple.fr")
# what the notifier sent to an address that does not exist (Postfix will bounce it)
mail("out", f"Mairie <mairie@{d}>", f"ancien.locataire@{d}", "Votre demande", "Accusé de réception (out).",
     f"notif-a@{d}")
PY
send "$W/m1.eml" jeanne@exemple.fr "mairie@$D"
send "$W/m2.eml" paul@exemple.fr "mairie@$D"
wait_until 30 settled 2 || fail "m1, m2: $(events) events, $(unseen) unseen"
R=$(req_of m1); R2=$(req_of m2)
[ -n "$R" ] && [ -n "$R2" ] && [ "$R" != "$R2" ] || fail "requests '$R' '$R2'"

# the notifier's ledger and Message-IDs (notify/cv_notifier.c, s_claim); the store may
# have planned the acknowledgements already (functions/notify.sql): those rows are reused
ledger() { # REQUEST RECIPIENT ADDRESS MESSAGE-ID
    q "insert into notifications (event_id, request_id, recipient, channel, template, status, address, state, attempts, done_at,
                                 message_id_hash)
       select e.id, $1, '$2', 'email', 'accuse_reception', 'received', '$3', 'sent', 1, now(), '$(hash "$4")'
       from events e where e.request_id = $1
       on conflict (event_id, recipient, channel) do update
           set address = excluded.address, state = 'sent', attempts = 1, done_at = now(),
               message_id_hash = excluded.message_id_hash" >/dev/null \
        || fail "ledger row $2"
    q "insert into mail_threads (message_id_hash, request_id, direction) values ('$(hash "$4")', $1, 'out')" >/dev/null \
        || fail "mail_threads $4"
}
ledger "$R" citizen jeanne@exemple.fr "notif-j@$D"
ledger "$R" helper "Ancien.Locataire@$D" "notif-a@$D"
ledger "$R" supervisor:accueil plein@exemple.fr "notif-b@$D"
ledger "$R" supervisor:voirie lent@exemple.fr "notif-c@$D"
ledger "$R2" citizen paul@exemple.fr "notif-d@$D"
REQS=$(reqs)

# 2. a real bounce: Postfix accepts, Dovecot's LMTP refuses the unknown user (5.1.1),
# Postfix returns the mail to its sender mairie@ in a DSN it writes
send "$W/out.eml" "mairie@$D" "ancien.locataire@$D"
wait_until 60 settled 3 || fail "no bounce from Postfix: $(events) events, $(unseen) unseen; $(tail -n 5 "$CIVIBUS_MAIL_DIR/log/postfix.log")"
sleep 1
[ "$(q "select count(*) from dead_letters")" -eq 0 ] || fail "dead letters: $(q "select reason from dead_letters")"
BOUNCE=$(q "select e.id from events e join source_records s on s.source = e.source and s.source_record_id = e.source_record_id
            where s.extra ? 'dsn'")
[ -n "$BOUNCE" ] || fail "the bounce has no dsn in its extra: $(q "select extra from source_records order by record_at desc limit 1")"
[ "$(q "select extra->'dsn'->'recipients'->0->>'status' || ' ' || (extra->'dsn'->>'returned_message_id_hash' = '$(hash "notif-a@$D")')
        from source_records where extra ? 'dsn'")" = "5.1.1 true" ] \
    || fail "the bounce's dsn: $(q "select extra->'dsn' from source_records where extra ? 'dsn'")"
[ "$(q "select address || ' ' || reason || ' ' || detail from email_suppressions")" = "ancien.locataire@$D bounce_permanent dsn 5.1.1, event $BOUNCE" ] \
    || fail "suppressions: '$(q "select address || ' ' || reason || ' ' || coalesce(detail, '-') from email_suppressions")'"
ok "a real Postfix bounce (5.1.1) of a mail we sent: the address is suppressed (bounce_permanent, dsn 5.1.1, its event)"
ev=$(q "select kind || ' ' || status || ' ' || coalesce(outcome::text, '-') || ' ' || coalesce(citizen_id::text, '-') from events where id = $BOUNCE")
[ "$ev" = "courriel_automatique closed no_action -" ] || fail "the bounce's event: $ev"
[ "$(q "select count(*) from events where kind = 'courriel'")" -eq 2 ] || fail "a bounce made a courriel request"
[ "$(q "select request_id from events where id = $BOUNCE")" != "$R" ] || fail "the bounce threaded into R"
ok "the bounce is kept, closed, no_action, without citizen; no courriel request made"

# the notifier now skips it (functions/notify.sql, cv_notify_person)
q "select cv_notify_person(NULL, $R, 'helper-test', 'email', 'changement_statut', 'in_progress', 'ANCIEN.LOCATAIRE@$D', 'immediate', 0, 'Europe/Paris', '08:00')" >/dev/null \
    || fail "cv_notify_person"
[ "$(q "select state || ' ' || last_error from notifications where recipient = 'helper-test'")" = "skipped suppressed" ] \
    || fail "a notification to the suppressed address: $(q "select state || ' ' || coalesce(last_error, '-') from notifications where recipient = 'helper-test'")"
ok "a notification planned to the suppressed address afterwards is skipped (suppressed)"

# 3. DSNs shaped like Postfix's: transient ones for our Message-IDs, and forged ones
python3 - "$W" "$D" <<'PY' || fail "DSN generator"
import sys
w, d = sys.argv[1], sys.argv[2]
def dsn(name, rcpt, action, status, mid, returned=True):
    b = f"B{name}.1796605310/mail.{d}"
    parts = [
        f"Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"This is the mail system at host mail.{d}. ({name})\r\n",
        f"Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mail.{d}\r\nX-Postfix-Queue-ID: 4C1D2E3F4A\r\n"
        f"X-Postfix-Sender: rfc822; mairie@{d}\r\nArrival-Date: Mon,  7 Dec 2026 10:00:00 +0100 (CET)\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\nAction: {action}\r\n"
        f"Status: {status}\r\nRemote-MTA: dns; mx.exemple.fr\r\n"
        f"Diagnostic-Code: smtp; 552 {status} <{rcpt}>: mailbox problem\r\n"]
    if returned:
        parts.append(f"Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"
                     f"From: Mairie <mairie@{d}>\r\nTo: {rcpt}\r\nSubject: Votre demande\r\n"
                     f"Message-ID: <{mid}>\r\nDate: Mon, 07 Dec 2026 09:59:59 +0100\r\n")
    body = "This is a MIME-encapsulated message.\r\n\r\n" + "".join(f"--{b}\r\n{p}\r\n" for p in parts) + f"--{b}--\r\n"
    open(f"{w}/{name}.eml", "w").write(
        f"From: MAILER-DAEMON@mail.{d} (Mail Delivery System)\r\nTo: mairie@{d}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{b}\"\r\n"
        f"Message-Id: <dsn-{name}@mail.{d}>\r\nDate: Mon,  7 Dec 2026 10:00:05 +0100 (CET)\r\n\r\n" + body)
dsn("full", "plein@exemple.fr", "failed", "5.2.2", f"notif-b@{d}")
dsn("delayed", "lent@exemple.fr", "delayed", "4.4.1", f"notif-c@{d}")
dsn("forged1", "jeanne@exemple.fr", "failed", "5.1.1", f"jamais-envoye@{d}")   # not ours
dsn("forged2", "jeanne@exemple.fr", "failed", "5.1.1", f"notif-d@{d}")         # ours, R2; jeanne is R's
dsn("forged3", "victime@exemple.fr", "failed", "5.1.1", f"notif-j@{d}")        # ours, R; never mailed
dsn("forged4", "jeanne@exemple.fr", "failed", "5.1.1", f"notif-j@{d}", returned=False)
# ours about R (the supervisor's), naming the citizen mailed about R by another mail
dsn("forged5", "jeanne@exemple.fr", "failed", "5.1.1", f"notif-b@{d}")
PY
for n in full delayed forged1 forged2 forged3 forged4 forged5; do send "$W/$n.eml" "mailer-daemon@$D" "mairie@$D"; done
wait_until 30 settled 10 || fail "DSNs: $(events) events, $(unseen) unseen"
sleep 1
[ "$(q "select count(*) from dead_letters")" -eq 0 ] || fail "dead letters: $(q "select reason from dead_letters")"
[ "$(q "select count(*) from source_records where extra ? 'dsn'")" -eq 8 ] \
    || fail "$(q "select count(*) from source_records where extra ? 'dsn'") records with a dsn, expected 8"
[ "$(q "select count(*) from source_records where extra->'dsn'->'recipients'->0->>'status' = '5.2.2'
        and extra->'dsn'->>'returned_message_id_hash' = '$(hash "notif-b@$D")'")" -eq 1 ] || fail "the 5.2.2 DSN not read"
[ "$(q "select count(*) from source_records where extra->'dsn'->'recipients'->0->>'recipient' = 'jeanne@exemple.fr'
        and extra->'dsn'->>'returned_message_id_hash' = '$(hash "notif-d@$D")'")" -eq 1 ] || fail "forged2 not read as a DSN"
[ "$(q "select string_agg(address, ',') from email_suppressions")" = "ancien.locataire@$D" ] \
    || fail "suppressed: $(q "select string_agg(address || ' ' || coalesce(detail, '-'), ', ') from email_suppressions")"
ok "5.2.2 (mailbox full) and 4.4.1 (delayed) for mails we sent: nothing suppressed"
ok "forged DSNs (unknown Message-ID; ours naming another request's address; ours naming an address never mailed; no returned headers; ours naming an address of the same request that another mail went to): recorded, nothing suppressed"
[ "$(q "select count(*) from events where kind = 'courriel_automatique' and status = 'closed' and citizen_id is null")" -eq 8 ] \
    || fail "the DSNs' events: $(q "select string_agg(kind || ' ' || status, ', ') from events where kind <> 'courriel'")"
[ "$(reqs)" = "$REQS" ] || fail "R or R2 changed: '$(reqs)' (was '$REQS')"
[ "$(q "select count(*) from events where request_id in ($R, $R2)")" -eq 2 ] || fail "a DSN threaded into R or R2"
ok "every DSN a closed courriel_automatique event without citizen; R and R2 untouched"

# 4. the real bounce appended again (a new UID, the same Message-ID): one event, one suppression
BOUNCE_UID=$(curl -sS --max-time 10 -u "$AUTH" "$CIVIBUS_IMAP_URL/INBOX" -X "UID SEARCH FROM MAILER-DAEMON@mail.$D SUBJECT Undelivered" \
             | tr -d '\r' | sed -n 's/^\* SEARCH//p' | awk '{print $1}')
[ -n "$BOUNCE_UID" ] || fail "the bounce is not in the mailbox"
curl -sS --max-time 10 -u "$AUTH" "$CIVIBUS_IMAP_URL/INBOX;UID=$BOUNCE_UID" -o "$W/bounce.eml" || fail "FETCH the bounce"
grep -q "report-type=delivery-status" "$W/bounce.eml" || fail "the bounce Postfix wrote is no delivery-status report"
q "delete from email_suppressions" >/dev/null
curl -sS --max-time 10 -u "$AUTH" -T "$W/bounce.eml" "$CIVIBUS_IMAP_URL/INBOX" >>"$W/smtp.log" 2>&1 || fail "APPEND"
# curl's APPEND files a mail as \Seen: made unseen again, as a delivered mail is
NEW_UID=$(curl -sS --max-time 10 -u "$AUTH" "$CIVIBUS_IMAP_URL/INBOX" -X "UID SEARCH ALL" | tr -d '\r' \
          | sed -n 's/^\* SEARCH//p' | awk '{print $NF}')
[ "$NEW_UID" -gt "$BOUNCE_UID" ] || fail "the appended copy's UID $NEW_UID"
curl -sS --max-time 10 -u "$AUTH" "$CIVIBUS_IMAP_URL/INBOX" -X "UID STORE $NEW_UID -FLAGS.SILENT (\\Seen)" >>"$W/smtp.log" 2>&1 \
    || fail "STORE -FLAGS"
wait_until 30 settled 10 || fail "again: $(events) events, $(unseen) unseen"
sleep 1
[ "$(events)" -eq 10 ] || fail "the same bounce under a new UID made an event"
[ "$(q "select count(*) from email_suppressions")" -eq 0 ] || fail "a duplicate DSN suppressed again (it is not a new event)"
ok "the same bounce under a new UID: a duplicate, no new event, no suppression written again (an agent's delete stands)"
ada_stop

# 5. the store's rule against extras no driver writes (any source's extra may name "dsn")
HB=$(hash "notif-b@$D"); HC=$(hash "notif-c@$D")
supp() { q "select cv_dsn_suppress(ARRAY['$1'], ARRAY[0::bigint])"; }
many=$(python3 -c "
import json
r = [{'recipient': 'r%d@x.fr' % i, 'action': 'failed', 'status': '5.1.1'} for i in range(50)]
r.append({'recipient': 'lent@exemple.fr', 'action': 'failed', 'status': '5.1.1'})
print(json.dumps({'dsn': {'returned_message_id_hash': '$HC', 'recipients': r}}))")
[ "$(supp '{"dsn": {"returned_message_id_hash": "'$HB'", "recipients": [{"recipient": "plein@exemple.fr", "action": "failed", "status": "5.02.2"}]}}')" = 0 ] \
    || fail "5.02.2 passed for a permanent status"
[ "$(supp '{"dsn": {"returned_message_id_hash": "'$HC'", "recipients": {"recipient": "lent@exemple.fr"}}}')" = 0 ] || fail "recipients not an array"
[ "$(supp '{"dsn": {"returned_message_id_hash": ["'$HC'"], "recipients": [{"recipient": "lent@exemple.fr", "action": "failed", "status": "5.1.1"}]}}')" = 0 ] \
    || fail "a hash that is not a string"
[ "$(supp '{"dsn": {"returned_message_id_hash": "'$HC'", "recipients": ["lent@exemple.fr", 5, null]}}')" = 0 ] || fail "recipients not objects"
[ "$(supp '{"dsn": {"returned_message_id_hash": "'$HC'", "recipients": [{"recipient": "lent@exemple.fr", "action": "Failed", "status": "5.1.1"}]}}')" = 0 ] \
    || fail "an action not in the driver's form"
[ "$(supp "$many")" = 0 ] || fail "the 51st recipient was read"
[ "$(q "select count(*) from email_suppressions")" -eq 0 ] || fail "suppressions: $(q "select string_agg(address, ',') from email_suppressions")"
[ "$(supp '{"dsn": {"returned_message_id_hash": "'$HC'", "recipients": [{"recipient": "LENT@Exemple.fr", "action": "failed", "status": "5.4.4"}]}}')" = 1 ] \
    || fail "a well-formed permanent DSN for notif-c"
[ "$(q "select address || ' ' || detail from email_suppressions")" = "lent@exemple.fr dsn 5.4.4, event 0" ] \
    || fail "the row: $(q "select address || ' ' || detail from email_suppressions")"
[ "$(supp '{"dsn": {"returned_message_id_hash": "'$HC'", "recipients": [{"recipient": "lent@exemple.fr", "action": "failed", "status": "5.1.1"}]}}')" = 0 ] \
    || fail "a second DSN for a suppressed address wrote again"
ok "the store's rule alone: 5.02.2, malformed recipients, a 51st recipient refused; the ledger's address suppressed once"
echo "imap_dsn: all checks passed"
