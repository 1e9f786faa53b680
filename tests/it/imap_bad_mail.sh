#!/usr/bin/env bash
# tests/it/imap_bad_mail.sh — bad mails through Dovecot (IMAP APPEND with curl, and one
# through Postfix), the imap adapter and the real hub: a 30 MB mail (larger than
# max_mail_bytes), a mail with no text part, an unterminated boundary, a MIME tree nested
# 100 deep, an unknown charset, a subject with encoded CR/LF and RFC 2047 garbage, a
# From with no address, a forged tracking code, bytes that are no mail at all. Each is
# stored (with what could be read, and its problems named) or dead-lettered with a
# reason; every mail ends flagged and a good mail after them is still a request.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adapter_lib.sh"
. "$(dirname "$0")/mail_lib.sh"
SRC=courriel
MAP=$ROOT/adapters/courriel/mapping.yaml
it_setup imap_bad_mail "$SRC:$MAP"

mail_start
AUTH="$CIVIBUS_CITY_IMAP_USER:$CIVIBUS_CITY_IMAP_PASSWORD"
count() { curl -sS --max-time 20 -u "$AUTH" "$CIVIBUS_IMAP_URL/INBOX" -X "UID SEARCH $1" | tr -d '\r' \
          | sed -n 's/^\* SEARCH//p' | wc -w; }

python3 - "$W/bad" "$CIVIBUS_CITY_MAIL" <<'PY' || fail "mail generator"
import base64, os, sys
out, to = sys.argv[1], sys.argv[2]
os.makedirs(out)
def mail(name, headers, body, ctype="text/plain; charset=utf-8", from_="Jeanne <jeanne@exemple.fr>"):
    h = [f"From: {from_}", f"To: {to}", f"Message-ID: <{name}@exemple.fr>",
         "Date: Mon, 07 Dec 2026 10:00:00 +0100", "MIME-Version: 1.0", f"Content-Type: {ctype}"] + headers
    open(f"{out}/{name}.eml", "wb").write(("\r\n".join(h) + "\r\n\r\n").encode() + body + b"\r\n")
# 30 MB: a text part, then 30 MB of base64
big = base64.encodebytes(os.urandom(22 * 1024 * 1024))
mail("big", ["Subject: Photos du trottoir"],
     b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVoici les photos (big).\r\n"
     b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
     b"Content-Disposition: attachment; filename=\"x.bin\"\r\n\r\n" + big + b"\r\n--B--",
     'multipart/mixed; boundary="B"')
mail("notext", ["Subject: Sans texte (notext)"],
     b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     + base64.encodebytes(b"\x00\x01binaire") + b"--B--", 'multipart/mixed; boundary="B"')
mail("unterminated", ["Subject: Frontiere ouverte"],
     b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nTexte sans fin (unterminated).\r\n--B\r\nContent-Type: text/plain\r\n\r\nsuite",
     'multipart/mixed; boundary="B"')
nested = b""
for d in range(100):
    nested += f"--b{d}\r\nContent-Type: multipart/mixed; boundary=\"b{d + 1}\"\r\n\r\n".encode()
nested += b"--b100\r\nContent-Type: text/plain\r\n\r\nau fond (deep)\r\n--b100--\r\n"
for d in reversed(range(100)):
    nested += f"--b{d}--\r\n".encode()
mail("deep", ["Subject: Poupees russes (deep)"], nested, 'multipart/mixed; boundary="b0"')
mail("charset", ["Subject: Jeu de caracteres"], "Texte \xe9trange (charset).".encode("latin-1"),
     "text/plain; charset=x-inconnu-42")
mail("crlf", ["Subject: =?utf-8?Q?ligne1=0D=0ABcc:_victime@exemple.fr?= =?utf-8?B?####?= =?nosuch?Q?x?= =?utf-8?Q?fin"],
     b"Sujet piege (crlf).")
mail("nofrom", ["Subject: Anonyme"], b"Pas d'adresse (nofrom).", from_="Jean Dupont")
mail("forged", ["Subject: Re: demande KXD7-M4RT-9C"], b"Code invente (forged).")
open(f"{out}/garbage.eml", "wb").write(os.urandom(3000).replace(b"\n", b" ") + b"\r\n")
mail("good", ["Subject: Lampadaire"], b"Tout va bien (good).")
PY

{ cat "$W/adapter.yaml"; imap_driver "batch: 5" "max_mail_bytes: 20971520"; } >"$W/adapter-run.yaml"
# the 30 MB mail goes through Postfix, the others by APPEND
curl -sS --max-time 60 --mail-from jeanne@exemple.fr --mail-rcpt "$CIVIBUS_CITY_MAIL" -T "$W/bad/big.eml" \
    "$CIVIBUS_SMTP_URL" >>"$W/smtp.log" 2>&1 || fail "SMTP send of the 30 MB mail"
NAMES="notext unterminated deep charset crlf nofrom forged garbage good"
for n in $NAMES; do
    curl -sS --max-time 20 -u "$AUTH" -T "$W/bad/$n.eml" "$CIVIBUS_IMAP_URL/INBOX" >>"$W/append.log" 2>&1 \
        || fail "APPEND of $n"
done
# curl's APPEND files a mail as \Seen: made unseen again, as a delivered mail is
curl -sS --max-time 20 -u "$AUTH" "$CIVIBUS_IMAP_URL/INBOX" -X 'UID STORE 1:* -FLAGS.SILENT (\Seen)' \
    >>"$W/append.log" 2>&1 || fail "STORE -FLAGS \\Seen"
N=10
for _ in $(seq 1 150); do [ "$(count ALL)" -eq $N ] && break; sleep 0.2; done
[ "$(count ALL)" -eq $N ] || fail "the mailbox has $(count ALL) mails, not $N"
ok "$N bad and good mails in the mailbox (a 30 MB one through Postfix)"

hub_start
q "INSERT INTO identity_declared_sources (source, channel) VALUES ('$SRC', 'boîte mail de la mairie')" >/dev/null
ada_start
settled() { [ "$(count UNSEEN)" -eq 0 ] \
            && [ $(( $(q "select count(*) from events") + $(q "select count(*) from dead_letters") )) -ge $N ]; }
wait_until 90 settled || fail "not settled: $(count UNSEEN) unseen, $(q "select count(*) from events") events, $(q "select count(*) from dead_letters") dead letters"
sleep 1
ada_stop
ev=$(q "select count(*) from events"); dl=$(q "select count(*) from dead_letters")
[ $((ev + dl)) -eq $N ] || fail "$ev events + $dl dead letters for $N mails"
[ "$(q "select count(*) from dead_letters where coalesce(reason, '') = ''")" -eq 0 ] || fail "a dead letter without a reason"
ok "every mail flagged: $ev stored, $dl dead-lettered with a reason"

rec() { q "select raw::jsonb->>'$2' from source_records where raw::jsonb->>'event_id' is not null
           and (raw::jsonb->>'body' like '%($1)%' or raw::jsonb->>'subject' like '%($1)%') limit 1"; }
probs() { q "select coalesce(raw::jsonb->'problems', '[]')::text from source_records
             where raw::jsonb->>'body' like '%($1)%' or raw::jsonb->>'subject' like '%($1)%' limit 1"; }
[ "$(rec big too_large)" = true ] || fail "30 MB mail: too_large not set ($(rec big too_large))"
[ "$(rec big body)" = "Voici les photos (big)." ] || fail "30 MB mail: body '$(rec big body)'"
ok "the 30 MB mail: stored with its text, too_large, the rest not read"
probs notext | grep -q "no text part" || fail "no text part: $(probs notext)"
[ "$(rec unterminated body)" = "Texte sans fin (unterminated)." ] || fail "unterminated: '$(rec unterminated body)'"
probs deep | grep -q "MIME tree too deep" || fail "deep: $(probs deep)"
probs charset | grep -q "unknown charset" || fail "charset: $(probs charset)"
rec charset body | grep -qF "Texte étrange (charset)." || fail "unknown charset body: $(rec charset body)"
ok "no text part, unterminated boundary, 100 levels deep, unknown charset: stored, problems named"
s=$(q "select summary from source_records where raw::jsonb->>'body' like '%(crlf)%'")
[ -n "$s" ] || fail "the CR/LF subject mail was not stored"
case "$s" in *$'\r'*|*$'\n'*) fail "a CR or LF left in the summary: '$s'";; esac
echo "$s" | grep -q "ligne1 Bcc: victime" || fail "crlf subject: '$s'"
ok "encoded CR/LF and RFC 2047 garbage in the subject: one line ('$s')"
probs nofrom | grep -q "From without an address" || fail "nofrom: $(probs nofrom)"
[ "$(q "select coalesce(e.citizen_id::text, '-') from events e join source_records s using (source, source_record_id)
        where s.raw::jsonb->>'body' like '%(nofrom)%'")" = "-" ] || fail "a From without an address made a citizen"
ok "a From with no address: stored, no citizen, problem named"
[ "$(q "select count(*) from requests r join source_records s on s.request_id = r.id
        where s.raw::jsonb->>'body' like '%(forged)%'")" = 1 ] || fail "forged code: not a request of its own"
[ "$(q "select count(*) from events e join source_records s using (source, source_record_id)
        where s.raw::jsonb->>'body' like '%(good)%' and e.kind = 'courriel'")" = 1 ] || fail "the good mail is not a request"
ok "a forged tracking code is a new request; the good mail after the bad ones is a request"
[ "$(q "select count(*) from requests")" -ge $((N - 1)) ] || fail "requests: $(q "select count(*) from requests")"
echo "imap_bad_mail: all checks passed"
