#!/usr/bin/env bash
# tests/it/imap_intake.sh — the e-mail channel end to end, against real mail servers
# (tests/mail/mailctl.sh: Postfix delivering into Dovecot), the real hub and the imap
# adapter (adapters/courriel): 20 mails sent by SMTP to the city's mailbox (quoted-
# printable Latin-1, base64 UTF-8, Windows-1252, ISO-8859-15, HTML only, an auto-reply)
# become exactly one request each, channel email, the auto-reply marked; mails are
# flagged \Seen only after the hub's ACK; kill -9 of the adapter before any ACK and again
# mid-intake, then a restart: still exactly one request per mail.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adapter_lib.sh"
. "$(dirname "$0")/mail_lib.sh"
SRC=courriel
MAP=$ROOT/adapters/courriel/mapping.yaml
N=20
it_setup imap_intake "$SRC:$MAP"

mail_start
AUTH="$CIVIBUS_CITY_IMAP_USER:$CIVIBUS_CITY_IMAP_PASSWORD"
imap() { curl -sS --max-time 10 -u "$AUTH" "$CIVIBUS_IMAP_URL/INBOX" -X "$1" | tr -d '\r'; }
uids() { imap "UID SEARCH $1" | sed -n 's/^\* SEARCH//p' | xargs; }
UIDV=$(curl -sS --max-time 10 -u "$AUTH" "$CIVIBUS_IMAP_URL/" -X 'STATUS INBOX (UIDVALIDITY)' \
       | tr -d '\r' | sed -n 's/.*UIDVALIDITY \([0-9]*\).*/\1/p')
[ -n "$UIDV" ] || fail "no UIDVALIDITY"

# the 20 mails (tests/tools-free: written here, one per file)
python3 - "$W/mails" "$CIVIBUS_CITY_MAIL" <<'PY' || fail "mail generator"
import base64, os, quopri, sys
from email.header import Header
out, to = sys.argv[1], sys.argv[2]
os.makedirs(out)
def mail(i, headers, body, ctype, cte):
    h = [f"From: Citoyen {i} <citoyen{i}@Exemple.FR>", f"To: {to}",
         f"Message-ID: <m{i}@exemple.fr>", f"Date: Mon, 07 Dec 2026 10:{i:02d}:00 +0100",
         "MIME-Version: 1.0", f"Content-Type: {ctype}", f"Content-Transfer-Encoding: {cte}"] + headers
    open(f"{out}/{i:02d}.eml", "wb").write(("\r\n".join(h) + "\r\n\r\n").encode() + body + b"\r\n")
for i in range(1, 21):
    token = f"jeton-{i}"
    if i <= 10:      # quoted-printable Latin-1, subject RFC 2047 Q
        subj = Header(f"Trottoir abîmé n°{i}", "iso-8859-1").encode()
        body = quopri.encodestring(f"Bonjour, le trottoir est abîmé devant l'école ({token}). Merci à vous.".encode("latin-1"))
        mail(i, [f"Subject: {subj}"], body, "text/plain; charset=ISO-8859-1", "quoted-printable")
    elif i == 11:    # base64 UTF-8, subject RFC 2047 B
        subj = "=?UTF-8?B?" + base64.b64encode("Éclairage public en panne ☀".encode()).decode() + "?="
        body = base64.encodebytes(f"Le lampadaire ne s'allume plus, rue de l'Église ({token}).".encode())
        mail(i, [f"Subject: {subj}"], body, "text/plain; charset=utf-8", "base64")
    elif i == 12:    # HTML only
        body = f"<html><head><style>p{{color:red}}</style></head><body><p>Poubelle <b>débordante</b> &amp; odeurs</p><p>({token})</p></body></html>".encode()
        mail(i, ["Subject: Poubelle"], body, "text/html; charset=utf-8", "8bit")
    elif i == 13:    # an auto-reply
        mail(i, ["Subject: Réponse automatique : absent", "Auto-Submitted: auto-replied"],
             f"Je suis absent jusqu'au 15 ({token}).".encode(), "text/plain; charset=utf-8", "8bit")
    elif i == 14:    # Windows-1252: euro sign and curly apostrophe
        mail(i, ["Subject: =?windows-1252?Q?Facture_=80?="],
             f"Facture de 12 € pour l’eau ({token}).".encode("cp1252"), "text/plain; charset=windows-1252", "8bit")
    elif i == 15:    # ISO-8859-15: the euro sign is 0xA4
        mail(i, ["Subject: Tarif cantine"],
             f"La cantine coûte 3 € ({token}).".encode("iso-8859-15"), "text/plain; charset=iso-8859-15", "8bit")
    else:            # multipart/alternative, plain + html
        b = "frontiere-" + str(i)
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBruit de chantier la nuit ({token}).\r\n"
                f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Bruit de chantier</p>\r\n--{b}--").encode()
        mail(i, ["Subject: Bruit"], body, f'multipart/alternative; boundary="{b}"', "7bit")
PY
for f in "$W"/mails/*.eml; do
    curl -sS --max-time 20 --mail-from "sender@exemple.fr" --mail-rcpt "$CIVIBUS_CITY_MAIL" -T "$f" \
        "$CIVIBUS_SMTP_URL" >>"$W/smtp.log" 2>&1 || fail "SMTP send of $f"
done
count_mails() { [ "$(uids ALL | wc -w)" -eq "$N" ]; }
for _ in $(seq 1 100); do count_mails && break; sleep 0.2; done
count_mails || fail "the mailbox has $(uids ALL | wc -w) mails, not $N"
[ "$(uids UNSEEN | wc -w)" -eq "$N" ] || fail "mails already seen before the adapter ran"
ok "$N mails delivered by Postfix into the city's Dovecot mailbox"

{ cat "$W/adapter.yaml"; imap_driver "mailbox: INBOX" "flag: \Seen" "batch: 3"; } >"$W/adapter-run.yaml"

# 1. no hub: the adapter reads and spools, nothing is ACKed, so nothing may be flagged
ada_start
wait_until 20 grep -q "mails submitted" "$W/adapter.log" || fail "the adapter submitted nothing: $(tail -5 "$W/adapter.log")"
sleep 1
[ "$(uids SEEN | wc -w)" -eq 0 ] || fail "mails flagged without any ACK: $(uids SEEN)"
ada_kill
[ "$(uids SEEN | wc -w)" -eq 0 ] || fail "mails flagged after kill -9 without any ACK"
ok "without a hub: mails read and spooled, none flagged; adapter killed -9"

# 2. the hub up (the source self-declared, level 1), the adapter again; killed -9 mid-intake
hub_start
q "INSERT INTO identity_declared_sources (source, channel) VALUES ('$SRC', 'boîte mail de la mairie')" >/dev/null \
    || fail "cannot declare the source"
events() { q "select count(*) from events where source = '$SRC'"; }
ada_start
has_events() { [ "$(events)" -ge 1 ]; }
wait_until 30 has_events || fail "no event after 30 s: $(tail -5 "$W/adapter.log")"
ada_kill
seen=$(uids SEEN)
ok "adapter killed -9 with $(events) events stored and $(echo "$seen" | wc -w) mails flagged"
# every flagged mail has its event (flagged only after the ACK)
for u in $seen; do
    [ "$(q "select count(*) from events where source = '$SRC' and event_id = '$UIDV.$u'")" = 1 ] \
        || fail "mail UID $u is flagged but has no event"
done
ok "every flagged mail has its event"

# 3. restart: everything ends flagged, exactly one event and one request per mail
ada_start
all_done() { [ "$(uids UNSEEN | wc -w)" -eq 0 ] && [ "$(events)" -eq "$N" ]; }
wait_until 60 all_done || fail "after 60 s: $(events) events, unseen: $(uids UNSEEN); $(tail -5 "$W/adapter.log")"
sleep 1
ada_stop
[ "$(events)" -eq "$N" ] || fail "$(events) events for $N mails"
[ "$(q "select count(distinct event_id) from events where source = '$SRC'")" -eq "$N" ] || fail "duplicate event ids"
[ "$(q "select count(*) from request_sources where source = '$SRC'")" -eq "$N" ] || fail "not one request per mail"
[ "$(q "select count(*) from dead_letters where source = '$SRC'")" -eq 0 ] \
    || fail "dead letters: $(q "select reason || ' ' || coalesce(detail, '') from dead_letters where source = '$SRC'")"
[ "$(q "select count(*) from events where source = '$SRC' and channel = 'email'")" -eq "$N" ] || fail "channel not email"
for u in $(uids ALL); do
    [ "$(q "select count(*) from events where source = '$SRC' and event_id = '$UIDV.$u'")" = 1 ] \
        || fail "mail UID $u has no event of id $UIDV.$u"
done
ok "$N mails, $N events, $N requests, channel email, every mail flagged"

# 4. what the records say: decoded subjects and bodies, the auto-reply apart
sr() { q "select $1 from source_records where source = '$SRC' and raw::jsonb->>'body' like '%($2)%'
          or (source = '$SRC' and extra->>'body' like '%($2)%')" ; }
summ() { q "select s.summary from source_records s where s.source = '$SRC' and s.raw::jsonb->>'body' like '%($1)%'"; }
body() { q "select s.raw::jsonb->>'body' from source_records s where s.source = '$SRC' and s.raw::jsonb->>'body' like '%($1)%'"; }
[ "$(summ jeton-3)" = "Trottoir abîmé n°3" ] || fail "Latin-1 Q subject: '$(summ jeton-3)'"
body jeton-3 | grep -qF "le trottoir est abîmé devant l'école (jeton-3). Merci à vous." || fail "QP Latin-1 body: $(body jeton-3)"
[ "$(summ jeton-11)" = "Éclairage public en panne ☀" ] || fail "base64 UTF-8 subject: '$(summ jeton-11)'"
body jeton-11 | grep -qF "rue de l'Église (jeton-11)" || fail "base64 body: $(body jeton-11)"
b12=$(body jeton-12)
echo "$b12" | grep -qF "Poubelle débordante & odeurs" || fail "HTML reduced: '$b12'"
echo "$b12" | grep -q '[<>]\|color' && fail "HTML tags or style left: '$b12'"
[ "$(q "select s.raw::jsonb->>'html_only' from source_records s where s.source = '$SRC' and s.raw::jsonb->>'body' like '%(jeton-12)%'")" = true ] \
    || fail "html_only not set"
[ "$(summ jeton-14)" = "Facture €" ] || fail "Windows-1252 subject: '$(summ jeton-14)'"
body jeton-14 | grep -qF "Facture de 12 € pour l’eau" || fail "Windows-1252 body: $(body jeton-14)"
body jeton-15 | grep -qF "La cantine coûte 3 €" || fail "ISO-8859-15 body: $(body jeton-15)"
body jeton-17 | grep -qF "Bruit de chantier la nuit" || fail "multipart/alternative: plain part expected"
ok "subjects and bodies decoded (QP Latin-1, base64 UTF-8, HTML only, Windows-1252, ISO-8859-15, alternative)"

auto=$(q "select e.kind || ' ' || e.status || ' ' || coalesce(e.outcome::text, '-') || ' ' || (s.raw::jsonb->>'automatic_reason')
          from events e join source_records s on s.source = e.source and s.source_record_id = e.source_record_id
          where e.source = '$SRC' and s.raw::jsonb->>'automatic' = 'true'")
[ "$auto" = "courriel_automatique closed no_action auto-submitted" ] || fail "auto-reply: '$auto'"
[ "$(q "select count(*) from events where source = '$SRC' and kind = 'courriel'")" -eq $((N - 1)) ] || fail "kinds"
ok "the auto-reply is marked (automatic, auto-submitted) and kept apart"

# requested_at from the Date header (10:MM +01:00 = 09:MM UTC); the sender as citizen, self-declared
[ "$(q "select to_char(requested_at at time zone 'UTC', 'HH24:MI') from events e join source_records s
        on s.source = e.source and s.source_record_id = e.source_record_id
        where e.source = '$SRC' and s.raw::jsonb->>'body' like '%(jeton-5)%'")" = "09:05" ] || fail "requested_at"
n=$(q "select count(*) from events where source = '$SRC' and citizen_id is not null")
[ "$n" -eq $((N - 1)) ] || fail "$n events with a citizen, expected $((N - 1))"
[ "$(q "select count(*) from citizen_sources where source = '$SRC' and not declared")" -eq 0 ] \
    || fail "a sender's identity is not marked self-declared"
ok "requested_at from Date, sender as a self-declared citizen (level 1)"
# 5. a second wave of 30 mails sent while the adapter runs, killed -9 in the middle of it
M=30
ada_start
for i in $(seq 1 $M); do
    printf 'From: vague@exemple.fr\r\nTo: %s\r\nSubject: vague %s\r\nMessage-ID: <v%s@exemple.fr>\r\nDate: Mon, 07 Dec 2026 11:00:00 +0100\r\n\r\nDeuxieme vague (vague-%s).\r\n' \
        "$CIVIBUS_CITY_MAIL" "$i" "$i" "$i" >"$W/v.eml"
    curl -sS --max-time 20 --mail-from vague@exemple.fr --mail-rcpt "$CIVIBUS_CITY_MAIL" -T "$W/v.eml" \
        "$CIVIBUS_SMTP_URL" >>"$W/smtp.log" 2>&1 || fail "SMTP send (second wave)"
done
some_new() { [ "$(events)" -gt "$N" ]; }
wait_until 30 some_new || fail "no event of the second wave"
ada_kill
at_kill=$(events)
ok "second wave: adapter killed -9 with $at_kill of $((N + M)) events stored"
ada_start
all_done2() { [ "$(uids UNSEEN | wc -w)" -eq 0 ] && [ "$(events)" -eq $((N + M)) ]; }
wait_until 60 all_done2 || fail "second wave: $(events) events, unseen: $(uids UNSEEN)"
sleep 1
ada_stop
[ "$(events)" -eq $((N + M)) ] || fail "$(events) events for $((N + M)) mails"
[ "$(q "select count(*) from request_sources where source = '$SRC'")" -eq $((N + M)) ] || fail "not one request per mail"
ok "after the restart: $((N + M)) mails, $((N + M)) events and requests, all flagged"
echo "imap_intake: all checks passed"
