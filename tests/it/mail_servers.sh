#!/usr/bin/env bash
# tests/it/mail_servers.sh — the test mail servers (tests/mail/mailctl.sh) work and leave
# nothing behind: a mail sent by SMTP (curl, libcurl's SMTP) to the city's address is read
# back by IMAP (curl, libcurl's IMAP) from the city's mailbox; nothing listens outside
# loopback; a wrong password is refused; after stop no process and no port is left.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MAILCTL="$ROOT/tests/mail/mailctl.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

W=$(mktemp -d "${CIVIBUS_TEST_TMP:-/tmp}/it-mail.XXXXXX")
chmod 755 "$W"
trap 'bash "$MAILCTL" stop --purge "$W" >/dev/null 2>&1; rm -rf "$W"' EXIT

bash "$MAILCTL" start "$W" >"$W/env" 2>"$W/start.err" || { cat "$W/start.err" >&2; fail "mailctl start"; }
# shellcheck disable=SC1091
. "$W/env"
ok "servers started (smtp $CIVIBUS_MAIL_SMTP_PORT, imap $CIVIBUS_MAIL_IMAP_PORT)"

# loopback only: every socket of these ports is bound to 127.0.0.1
for port in "$CIVIBUS_MAIL_SMTP_PORT" "$CIVIBUS_MAIL_IMAP_PORT" "$CIVIBUS_MAIL_LMTP_PORT"; do
    addrs=$(ss -Hltn "sport = :$port" | awk '{print $4}' | sort -u)
    [ -n "$addrs" ] || fail "nothing listens on port $port"
    [ "$addrs" = "127.0.0.1:$port" ] || fail "port $port listens on: $addrs"
done
ok "SMTP, IMAP and LMTP listen on 127.0.0.1 only"

token="civibus-$$-$RANDOM"
printf 'From: Jeanne Dupont <jeanne@exemple.fr>\r\nTo: %s\r\nSubject: =?ISO-8859-1?Q?Trottoir_ab=EEm=E9?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nBonjour, %s\r\n' \
    "$CIVIBUS_CITY_MAIL" "$token" >"$W/mail.eml"
curl -sS --max-time 20 --mail-from jeanne@exemple.fr --mail-rcpt "$CIVIBUS_CITY_MAIL" \
    -T "$W/mail.eml" "$CIVIBUS_SMTP_URL" >"$W/smtp.out" 2>&1 || { cat "$W/smtp.out" >&2; fail "SMTP send"; }
ok "mail accepted by SMTP"

# a recipient outside civibus.test is refused (no open relay)
if curl -sS --max-time 20 --mail-from jeanne@exemple.fr --mail-rcpt someone@example.org \
        -T "$W/mail.eml" "$CIVIBUS_SMTP_URL" >/dev/null 2>&1; then
    fail "the SMTP server relays to outside domains"
fi
ok "outside recipients refused"

imap="$CIVIBUS_IMAP_URL"
auth="$CIVIBUS_CITY_IMAP_USER:$CIVIBUS_CITY_IMAP_PASSWORD"
found=""
for _ in $(seq 1 100); do
    uids=$(curl -sS --max-time 10 -u "$auth" "$imap/INBOX" -X 'UID SEARCH ALL' 2>/dev/null \
        | tr -d '\r' | sed -n 's/^\* SEARCH//p' | xargs)
    [ -n "$uids" ] && { found=$uids; break; }
    sleep 0.1
done
[ -n "$found" ] || fail "no mail in the city's mailbox after 10 s"
uid=${found##* }
curl -sS --max-time 10 -u "$auth" "$imap/INBOX;UID=$uid" >"$W/read.eml" || fail "IMAP fetch of UID $uid"
grep -q "$token" "$W/read.eml" || fail "the mail read back lacks its body"
grep -q '^Subject: =?ISO-8859-1?Q?Trottoir_ab=EEm=E9?=' "$W/read.eml" || fail "the subject was changed"
ok "mail read back by IMAP (UID $uid)"

# the citizen's mailbox is separate, and a wrong password is refused
n=$(curl -sS --max-time 10 -u "$CIVIBUS_CITIZEN_IMAP_USER:$CIVIBUS_CITIZEN_IMAP_PASSWORD" \
        "$imap/INBOX" -X 'UID SEARCH ALL' | tr -d '\r' | sed -n 's/^\* SEARCH//p' | wc -w)
[ "$n" -eq 0 ] || fail "the citizen's mailbox got the city's mail"
if curl -sS --max-time 10 -u "mairie:wrong" "$imap/INBOX" -X 'UID SEARCH ALL' >/dev/null 2>&1; then
    fail "a wrong password was accepted"
fi
ok "mailboxes separate, wrong password refused"

# the folder for handled mails exists (the imap driver may move mails there)
curl -sS --max-time 10 -u "$auth" "$imap/" | grep -q 'Traite' || fail "no Traite folder"
ok "folder Traite exists"

bash "$MAILCTL" stop "$W" 2>"$W/stop.err" || { cat "$W/stop.err" >&2; fail "mailctl stop"; }
grep -q 'killed' "$W/stop.err" && fail "stop had to kill leftovers: $(cat "$W/stop.err")"
left=$(bash "$MAILCTL" leftovers "$W" | xargs)
[ -z "$left" ] || fail "processes left after stop: $left"
for port in "$CIVIBUS_MAIL_SMTP_PORT" "$CIVIBUS_MAIL_IMAP_PORT" "$CIVIBUS_MAIL_LMTP_PORT"; do
    [ -z "$(ss -Hltn "sport = :$port")" ] || fail "port $port still listening after stop"
done
bash "$MAILCTL" status "$W" >/dev/null && fail "status says running after stop"
ok "nothing left after stop"

# start again on the same folder: the mail is still there (data in DIR)
bash "$MAILCTL" start "$W" >/dev/null 2>"$W/start2.err" || { cat "$W/start2.err" >&2; fail "restart"; }
curl -sS --max-time 10 -u "$auth" "$imap/INBOX;UID=$uid" | grep -q "$token" || fail "mail lost across restart"
bash "$MAILCTL" stop --purge "$W" 2>/dev/null || fail "stop --purge"
[ -e "$W/mail" ] && fail "stop --purge left $W/mail"
ok "restart keeps the mailbox; --purge removes it"
echo "mail_servers: all checks passed"
