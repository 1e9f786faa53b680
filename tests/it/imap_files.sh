#!/usr/bin/env bash
# A mail's files (issue 20 item 1; docs/attachments.md "Mail"): a mail with a PDF, a PNG
# and a "PDF" that is a text file, through Postfix, Dovecot, the imap adapter
# (attachments_dir: the API's folder) and the hub (courriel: attachments: true):
#   - the PDF and the PNG are kept in the content-addressed folder (0600) and given to the
#     mail's request; the fake is refused, the record says so by its rank, not its name;
#   - civibus-api lists them on the request and serves them byte for byte;
#   - a reply to the request brings its own file into the same request;
#   - a software's record naming a file's hash (a source without attachments: true)
#     attaches nothing: only the sources the configuration names are believed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
. "$(dirname "$0")/adapter_lib.sh"
. "$(dirname "$0")/mail_lib.sh"
API_YAML_EXTRA='attachments:
  dir: attachments' api_setup imap_files 3 "demo:$ROOT/deploy/mappings/demo.yaml" \
    "courriel:$ROOT/adapters/courriel/mapping.yaml"
hub_stop
sed -i '/- name: courriel/a\    identity: declared\n    attachments: true' "$W/hub.yaml"
mv "$W/hub.log" "$W/hub.log.1"
hub_start
[ "$(q "select string_agg(source, ',') from attachment_sources")" = courriel ] || fail "attachment_sources: $(q "select * from attachment_sources")"

mail_start
{ cat "$W/adapter.yaml"; imap_driver "attachments_dir: $W/attachments" "max_attachment_bytes: 1048576"; } >"$W/adapter-run.yaml"
python3 - "$W" <<'PY' || fail "the test's files"
import base64, struct, sys, zlib
w = sys.argv[1]
open(w + "/scan.pdf", "wb").write(b"%PDF-1.4\n1 0 obj <<>> endobj\n% courrier de Mme Martin\ntrailer <<>>\n%%EOF\n")
raw = b"\x00\xff\x00\x00"
png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
png += struct.pack(">I", zlib.crc32(png[12:29]) & 0xffffffff)
idat = zlib.compress(raw)
png += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat) & 0xffffffff)
png += struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND") & 0xffffffff)
open(w + "/trottoir.png", "wb").write(png)
open(w + "/virus.pdf", "wb").write(b"MZ this is no pdf\n")
PY
send() {  # send SUBJECT MESSAGE-ID [IN-REPLY-TO] FILE...
    python3 - "$CIVIBUS_SMTP_URL" "$CIVIBUS_CITY_MAIL" "$@" <<'PY' || fail "SMTP"
import smtplib, sys, os
from email.message import EmailMessage
url, to, subject, mid, irt, *files = sys.argv[1:]
m = EmailMessage()
m["From"] = "Jeanne Martin <citoyen+files@civibus.test>"; m["To"] = to; m["Subject"] = subject
m["Message-ID"] = mid
if irt != "-": m["In-Reply-To"] = irt
m.set_content("Bonjour, voici les pièces.")
for f in files:
    kind = ("image", "png") if f.endswith(".png") else ("application", "pdf")
    m.add_attachment(open(f, "rb").read(), maintype=kind[0], subtype=kind[1], filename="../../" + os.path.basename(f))
host, port = url.split("//")[1].split(":")
s = smtplib.SMTP(host, int(port)); s.send_message(m); s.quit()
PY
}
send "Trottoir abîmé, photos jointes" "<files-1@exemple.fr>" - "$W/scan.pdf" "$W/trottoir.png" "$W/virus.pdf"
ada_start
has() { [ "$(q "select count(*) from events where source = 'courriel'")" -ge "$1" ]; }
wait_until 60 has 1 || fail "the mail did not arrive"
RID=$(q "select request_id from events where source = 'courriel' order by id limit 1")
row=$(q "select string_agg(mime || ':' || size || ':' || coalesce(name, '-'), ',' order by mime) from attachments where request_id = $RID")
pdf_size=$(stat -c %s "$W/scan.pdf"); png_size=$(stat -c %s "$W/trottoir.png")
[ "$row" = "application/pdf:$pdf_size:scan.pdf,image/png:$png_size:trottoir.png" ] || fail "attachments of the mail's request: $row"
probs=$(q "select raw->'problems' from source_records where source = 'courriel'")
echo "$probs" | grep -q "file 3 not kept: not a PDF, JPEG or PNG file" || fail "the fake's problem: $probs"
echo "$probs" | grep -q "virus" && fail "a problem names the file: $probs"
SHA=$(sha256sum "$W/scan.pdf" | cut -c1-64)
f="$W/attachments/${SHA:0:2}/$SHA"
[ -f "$f" ] && [ "$(stat -c %a "$f")" = 600 ] || fail "the PDF in the folder: $(ls -la "$W/attachments" 2>&1)"
ok "a mail's PDF and PNG kept (0600, names without their folder) and given to its request; the fake refused by its rank"

curl -fsS -H "Authorization: Bearer $T_SUP" "$U/v1/requests/$RID/attachments" >"$W/list.json" || fail "GET attachments"
python3 -c "import json,sys; d=json.load(open('$W/list.json')); items=d.get('items', d) if isinstance(d, dict) else d; assert len(items)==2, d" \
    || fail "the list: $(cat "$W/list.json")"
curl -fsS -H "Authorization: Bearer $T_SUP" -o "$W/back.pdf" "$U/v1/requests/$RID/attachments/$SHA" || fail "GET the PDF"
cmp -s "$W/back.pdf" "$W/scan.pdf" || fail "the PDF served differs"
ok "civibus-api lists the mail's two files and serves the PDF byte for byte"

CODE=$(q "select tracking_code from requests where id = $RID")
send "Re: Votre demande $CODE" "<files-2@exemple.fr>" "<files-1@exemple.fr>" "$W/trottoir.png" "$W/virus.pdf"
wait_until 60 has 2 || fail "the reply did not arrive"
[ "$(q "select count(distinct request_id) from events where source = 'courriel'")" = 1 ] || fail "the reply made a request of its own"
[ "$(q "select count(*) from attachments where request_id = $RID")" = 2 ] || fail "the same PNG again made a second row"
ok "a reply's files join the same request (the same PNG: one row)"

# a software's record that names the PDF's hash: attaches nothing
printf '{"id": "D-900", "version": 1, "type": "bac_casse", "statut": "EN_COURS", "canal": "WEB", "date": "02/03/2024 09:01", "objet": "x", "files": [{"sha256": "%s", "mime": "application/pdf", "size": 10}], "usager": {"id": "U-900", "nom": "X"}}\n' "$SHA" >"$W/forged.jsonl"
replay demo "$W/forged.jsonl" --timeout 30
[ "$REPLAY_RC" = 0 ] || fail "replay: $REPLAY_RC"
[ "$(q "select count(*) from attachments where source = 'demo'")" = 0 ] || fail "a software's record attached a file"
ok "a source without attachments: true names a file's hash: nothing attached"
ada_stop
