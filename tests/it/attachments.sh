#!/usr/bin/env bash
# Attachments of front-office requests (issue 20, item 1; docs/attachments.md), with curl
# against the real API, hub and PostgreSQL, and the real folder:
#   - a letter with its scan (a PDF) and a photo (a PNG): 201 lists them (sha256, mime,
#     size, name); listed and downloaded byte-identical, with the stored type,
#     Content-Disposition (RFC 8187) and nosniff; files 0600 in 0700 folders;
#   - the same file on another request is stored once on disk; a sha256 of ANOTHER
#     request's attachment, a malformed one, another service's agent, no token: 404 / 403 /
#     401, and the citizen's tracking page shows no file; every read audited;
#   - what a careless clerk or an attacker sends: a renamed .exe, an oversize file, bad
#     base64 (line breaks, no padding, stray characters), too many files, an unknown
#     member, a body over the cap (and the larger cap needs a token), a path-traversal and
#     bidi-trick name (cleaned) — refused with the field's index, never a value, nothing stored;
#   - erasure deletes the rows, `civibusctl attachments gc` then deletes the files no row
#     names (keeping fresh ones, and those still named by another request), stray .tmp
#     files older than an hour; --dry-run deletes nothing; a lost file is 503 and gc warns;
#   - a folder open to others stops the configuration.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
API_YAML_EXTRA='attachments:
  max_bytes: 200000
  max_files: 3
  max_total_bytes: 300000' api_setup attachments 20
AD=$W/var/attachments
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
post() {   # post BODYFILE [TOKEN]
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer ${2:-$T_DECH}" \
        -H 'Content-Type: application/json' --data-binary "@$1" "$U/v1/requests")
}
files_on_disk() { find "$AD" -type f ! -name '.*' 2>/dev/null | wc -l; }
requests() { q "select count(*) from requests"; }

# the files: a PDF, a PNG, an .exe renamed .pdf, a PDF over max_bytes
python3 - "$W" <<'EOF'
import os, sys, zlib, struct
w = sys.argv[1]
open(f"{w}/scan.pdf", "wb").write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + os.urandom(50000) + b"\n%%EOF\n")
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)) \
      + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"") + os.urandom(3000)
open(f"{w}/photo.png", "wb").write(png)
open(f"{w}/virus.exe", "wb").write(b"MZ\x90\x00\x03" + os.urandom(4000))
open(f"{w}/big.pdf", "wb").write(b"%PDF-1.7\n" + os.urandom(200001))
open(f"{w}/other.pdf", "wb").write(b"%PDF-1.5\n" + os.urandom(1000))
EOF
body() {   # body OUT CITIZEN_JSON FILE:NAME... (NAME may be 'null'); CATEGORY from $CAT
    python3 - "$@" <<'EOF'
import base64, json, sys
out, who, *files = sys.argv[1:]
atts = []
for f in files:
    path, name = f.split(":", 1)
    a = {"content_base64": base64.b64encode(open(path, "rb").read()).decode()}
    if name != "null":
        a["name"] = name
    atts.append(a)
b = {"channel": "courrier", "category": __import__("os").environ.get("CAT", "encombrants"),
     "description": "Lettre scannée", **json.loads(who), "attachments": atts}
open(out, "w").write(json.dumps(b))
EOF
}
C1=$(q "select citizen_id from citizen_sources where source = 'demo' and source_citizen_id = 'U-4'")
C2=$(q "select citizen_id from citizen_sources where source = 'demo' and source_citizen_id = 'U-5'")
[ -n "$C1" ] && [ -n "$C2" ] && [ "$C1" != "$C2" ] || fail "two demo citizens"

# 1. a letter with its scan and a photo
body "$W/b1.json" "{\"citizen_id\": $C1}" "$W/scan.pdf:Courrier 2026 été.pdf" "$W/photo.png:/home/agent/../../etc/photo.png"
post "$W/b1.json"
[ "$S" = 201 ] || fail "letter with attachments: $S $(cat "$W/body")"
R1=$(js 'd["request_id"]')
[ -n "$(js 'd["registration_number"]')" ] || fail "a letter without its registration number"
PDF=$(sha256sum "$W/scan.pdf" | cut -c1-64); PNG=$(sha256sum "$W/photo.png" | cut -c1-64)
[ "$(js '";".join("%s,%s,%s,%s" % (a["sha256"], a["mime"], a["size"], a["name"]) for a in d["attachments"])')" = \
  "$PDF,application/pdf,$(stat -c %s "$W/scan.pdf"),Courrier 2026 été.pdf;$PNG,image/png,$(stat -c %s "$W/photo.png"),photo.png" ] \
    || fail "the 201's attachments: $(cat "$W/body")"
[ "$(q "select count(*) || ',' || min(source) || ',' || bool_and(source_record_id like 'accueil-%') from attachments where request_id = $R1")" = "2,accueil,true" ] \
    || fail "the rows: $(q "select count(*) || ',' || min(source) || ',' || bool_and(source_record_id like 'accueil-%') from attachments where request_id = $R1")"
[ -f "$AD/${PDF:0:2}/$PDF" ] && [ -f "$AD/${PNG:0:2}/$PNG" ] || fail "the files are not in the folder: $(find "$AD")"
[ "$(stat -c %a "$AD" "$AD/${PDF:0:2}" "$AD/${PDF:0:2}/$PDF" | tr '\n' ' ')" = "700 700 600 " ] \
    || fail "permissions: $(stat -c '%a %n' "$AD" "$AD/${PDF:0:2}" "$AD/${PDF:0:2}/$PDF")"
ok "a letter with a PDF and a PNG: 201 lists them, one row each, files 0600 in 0700 folders"

# 2. listed, and downloaded byte-identical with the right headers
get "/v1/requests/$R1/attachments" "$T_DECH"
[ "$S" = 200 ] && [ "$(js '",".join(a["sha256"] for a in d["attachments"])')" = "$PDF,$PNG" ] || fail "list: $S $(cat "$W/body")"
dl() {   # dl REQUEST SHA TOKEN: bytes in $W/dl, headers in $W/hdr
    S=$(curl -s -D "$W/hdr" -o "$W/dl" -w '%{http_code}' -H "Authorization: Bearer $3" "$U/v1/requests/$1/attachments/$2")
}
dl "$R1" "$PDF" "$T_DECH"
[ "$S" = 200 ] && cmp -s "$W/dl" "$W/scan.pdf" || fail "PDF download: $S"
grep -qi '^content-type: application/pdf' "$W/hdr" && grep -qi '^x-content-type-options: nosniff' "$W/hdr" \
    && grep -qiF "content-disposition: attachment; filename=\"Courrier 2026 __t__.pdf\"; filename*=UTF-8''Courrier%202026%20%C3%A9t%C3%A9.pdf" "$W/hdr" \
    || fail "PDF headers: $(cat "$W/hdr")"
dl "$R1" "$PNG" "$T_SUP"
[ "$S" = 200 ] && [ "$(sha256sum "$W/dl" | cut -c1-64)" = "$PNG" ] && grep -qi '^content-type: image/png' "$W/hdr" \
    && grep -qiF "filename*=UTF-8''photo.png" "$W/hdr" || fail "PNG download (supervisor): $S $(cat "$W/hdr")"
S=$(curl -s -I -o "$W/hdr" -w '%{http_code}' -H "Authorization: Bearer $T_DECH" "$U/v1/requests/$R1/attachments/$PDF")
[ "$S" = 200 ] && grep -qi "^content-length: $(stat -c %s "$W/scan.pdf")" "$W/hdr" || fail "HEAD: $S"
ok "listed, downloaded byte-identical (sha256sum) with the stored type, Content-Disposition (RFC 8187) and nosniff"

# 3. the same file on another request: stored once; no oracle across requests
n_files=$(files_on_disk)
body "$W/b2.json" "{\"citizen_id\": $C2}" "$W/scan.pdf:null" "$W/scan.pdf:twice.pdf"
post "$W/b2.json"
[ "$S" = 201 ] || fail "second letter: $S $(cat "$W/body")"
R2=$(js 'd["request_id"]')
[ "$(js 'len(d["attachments"])')" = 1 ] && [ "$(js 'd["attachments"][0]["name"]')" = None ] || fail "the same bytes twice in one request: one row: $(cat "$W/body")"
[ "$(files_on_disk)" = "$n_files" ] || fail "the same file was stored twice on disk"
dl "$R2" "$PDF" "$T_DECH"
[ "$S" = 200 ] && grep -qiF "filename*=UTF-8''${PDF:0:12}.pdf" "$W/hdr" || fail "a nameless attachment's download: $S $(cat "$W/hdr")"
dl "$R2" "$PNG" "$T_DECH"
[ "$S" = 404 ] || fail "request 1's PNG through request 2: $S"
for bad in "${PNG^^}" "${PNG:0:63}" "${PNG}0" "zz${PNG:2}" "%2e%2e%2f${PNG:0:55}"; do
    dl "$R2" "$bad" "$T_DECH"
    [ "$S" = 404 ] || [ "$S" = 400 ] || fail "sha '$bad': $S"
done
dl 99999999 "$PDF" "$T_DECH"
[ "$S" = 404 ] || fail "an unknown request: $S"
q "insert into service_categories (category, service) values ('nid_de_poule', 'voirie') on conflict do nothing"
T_VOIR=$("$CTL" --config "$W/api.yaml" token create --role agent --service voirie 2>/dev/null)
get "/v1/requests/$R1/attachments" "$T_VOIR"; [ "$S" = 403 ] || fail "another service's agent lists: $S"
dl "$R1" "$PDF" "$T_VOIR"; [ "$S" = 403 ] || fail "another service's agent downloads: $S"
dl "$R1" "0000000000000000000000000000000000000000000000000000000000000000" "$T_VOIR"
[ "$S" = 403 ] || fail "another service's agent, unknown sha (must not differ): $S"
S=$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/requests/$R1/attachments/$PDF"); [ "$S" = 401 ] || fail "no token: $S"
CODE=$(q "select tracking_code from requests where id = $R1")
get "/v1/track/$CODE"
[ "$S" = 200 ] && ! grep -q "$PDF\|attachment\|Courrier 2026" "$W/body" || fail "the tracking page shows a file: $(cat "$W/body")"
sleep 0.3
[ "$(q "select count(*) from api_audit where action = 'request_attachments' and request_id = $R1 and citizen_id = $C1")" = 1 ] \
    && [ "$(q "select count(*) from api_audit where action = 'request_attachment' and request_id = $R1 and citizen_id = $C1")" = 3 ] \
    && [ "$(q "select count(*) from api_audit where action = 'request_attachment' and request_id = $R2 and citizen_id = $C2")" = 1 ] \
    || fail "audit: $(q "select action, request_id, citizen_id, role from api_audit where action like 'request_attach%'")"
ok "the same file twice is stored once; another request's sha, bad shas, another service, no token: 404/403/401; reads audited"

# 4. what a careless clerk or an attacker sends
before=$(requests); n_files=$(files_on_disk); n_rows=$(q "select count(*) from attachments")
refused() {   # refused STATUS WORDS BODYFILE [TOKEN]
    post "$3" "${4:-}"
    [ "$S" = "$1" ] || fail "$3: $S (want $1) $(cat "$W/body")"
    [ -z "$2" ] || grep -qF "$2" "$W/body" || fail "$3: the answer does not say '$2': $(cat "$W/body")"
    ! grep -q "virus\|QUJD\|TVq\|JVBER" "$W/body" || fail "$3: the answer holds a value: $(cat "$W/body")"
}
body "$W/r1.json" "{\"citizen_id\": $C1}" "$W/scan.pdf:ok.pdf" "$W/virus.exe:virus.pdf"
refused 400 "attachments[1] is not a PDF, JPEG or PNG" "$W/r1.json"
body "$W/r2.json" "{\"citizen_id\": $C1}" "$W/big.pdf:big.pdf"
refused 400 "attachments[0] is larger than 200000 bytes" "$W/r2.json"
body "$W/r3.json" "{\"citizen_id\": $C1}" "$W/other.pdf:a" "$W/other.pdf:b" "$W/other.pdf:c" "$W/other.pdf:d"
refused 400 "at most 3 files" "$W/r3.json"
b64bad() {   # b64bad OUT PYTHON-EXPR-OF-b (the good base64 text)
    python3 -c "
import base64, json
b = base64.b64encode(open('$W/other.pdf', 'rb').read()).decode()
json.dump({'channel': 'courrier', 'category': 'encombrants', 'description': 'x', 'citizen_id': $C1,
           'attachments': [{'name': 'x.pdf', 'content_base64': $2}]}, open('$1', 'w'))"
}
b64bad "$W/r4.json" "b[:76] + '\n' + b[76:]";  refused 400 "attachments[0].content_base64 is not base64" "$W/r4.json"
b64bad "$W/r5.json" "b.rstrip('=')[:-1]";     refused 400 "attachments[0].content_base64 is not base64" "$W/r5.json"
b64bad "$W/r6.json" "b[:8] + '*' + b[9:]";     refused 400 "attachments[0].content_base64 is not base64" "$W/r6.json"
b64bad "$W/r7.json" "b.replace('+', '-')";     grep -q -- '-' "$W/r7.json" && { refused 400 "not base64" "$W/r7.json"; }
b64bad "$W/r8.json" "''";                       refused 400 "attachments[0].content_base64 is required" "$W/r8.json"
printf '{"channel": "courrier", "category": "encombrants", "description": "x", "citizen_id": %s, "attachments": [{"name": "x", "content_base64": "JVBERi0x", "sha256": "%s"}]}' "$C1" "$PDF" >"$W/r9.json"
refused 400 "attachments[0]: unknown member" "$W/r9.json"
printf '{"channel": "courrier", "category": "encombrants", "description": "x", "citizen_id": %s, "attachments": {"name": "x"}}' "$C1" >"$W/r10.json"
refused 400 "attachments is a list" "$W/r10.json"
# the body cap: the attachments' cap with a token, http.max_body_bytes without one
python3 -c "print('{\"channel\": \"courrier\", \"x\": \"' + 'A' * 600000 + '\"}')" >"$W/huge.json"
refused 413 "" "$W/huge.json"
python3 -c "print('{\"channel\": \"courrier\", \"x\": \"' + 'A' * 100000 + '\"}')" >"$W/mid.json"
S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$W/mid.json" "$U/v1/requests")
[ "$S" = 413 ] || fail "100 kB without a token (the larger cap needs one): $S"
post "$W/mid.json"; [ "$S" = 400 ] || fail "100 kB with a token is read (and refused for what it says): $S"
[ "$(requests)" = "$before" ] && [ "$(files_on_disk)" = "$n_files" ] && [ "$(q "select count(*) from attachments")" = "$n_rows" ] \
    || fail "a refused upload stored something"
grep -q "virus\|JVBER\|TVq\|Courrier 2026\|photo.png" "$W/api.log" && fail "a name or a file's bytes in the log"
ok "a renamed .exe, an oversize file, bad base64, too many files, unknown members, an over-cap body: refused by index, nothing stored"

# names: path, control and bidi characters taken out, 255 bytes at most (on a character)
long=$(python3 -c "print('é' * 200 + '.pdf')")
body "$W/b3.json" "{\"citizen_id\": $C1}" "$W/other.pdf:..\\\\..\\\\windows\\\\..  fact$(printf '\u202e')fdp.exe" "$W/photo.png:$long"
post "$W/b3.json"
[ "$S" = 201 ] || fail "names to clean: $S $(cat "$W/body")"
R3=$(js 'd["request_id"]')
[ "$(js 'repr(d["attachments"][0]["name"])')" = "'factfdp.exe'" ] || fail "a path/bidi name: $(js 'repr(d["attachments"][0]["name"])')"
[ "$(js 'len(d["attachments"][1]["name"].encode())')" -le 255 ] && [ "$(js 'd["attachments"][1]["name"].startswith("éé")')" = True ] \
    || fail "a long name: $(js 'repr(d["attachments"][1]["name"])')"
ok "names cleaned: no path, no control or bidi characters, at most 255 bytes on a character boundary"

# 5. erasure, then gc: dry run, grace, stray temporary files, files still named
OTHER=$(sha256sum "$W/other.pdf" | cut -c1-64)
printf '%%PDF-1.3\norphan %s\n' "$RANDOM$RANDOM" >"$W/orphan.pdf"
CAT=piscine body "$W/b5.json" "{\"citizen_id\": $C1}" "$W/orphan.pdf:orphan.pdf"
post "$W/b5.json"
[ "$S" = 400 ] || fail "a refused registration with a good file: $S $(cat "$W/body")"
ORPH=$(sha256sum "$W/orphan.pdf" | cut -c1-64)
[ -f "$AD/${ORPH:0:2}/$ORPH" ] || fail "the refused registration's file was not written first"
"$CTL" --config "$W/api.yaml" citizen erase "$C1" >"$W/erase.out" 2>&1 || fail "erase: $(cat "$W/erase.out")"
[ "$(q "select count(*) from attachments a join requests r on r.id = a.request_id where r.citizen_id = $C1")" = 0 ] \
    || fail "erasure left attachment rows"
[ "$(q "select count(*) from attachments where request_id = $R2")" = 1 ] || fail "erasure took another citizen's rows"
get "/v1/requests/$R1/attachments" "$T_SUP"
[ "$(js 'len(d["attachments"])')" = 0 ] || fail "the erased citizen's request still lists files"
mkdir -p "$AD/aa"; : >"$AD/aa/.${PDF}.123.tmp"; touch -d '2 hours ago' "$AD/aa/.${PDF}.123.tmp"
: >"$AD/aa/.${PNG}.456.tmp"
snapshot() { find "$AD" -type f | sort | xargs sha256sum; }
snapshot >"$W/snap0"
"$CTL" --config "$W/api.yaml" attachments gc --dry-run --grace-minutes 0 >"$W/gc0.out" 2>&1 || fail "gc --dry-run: $(cat "$W/gc0.out")"
grep -q "dry run.*: 3 files deleted .*, 1 stray temporary files deleted" "$W/gc0.out" || fail "gc --dry-run counts: $(cat "$W/gc0.out")"
snapshot | cmp -s - "$W/snap0" || fail "gc --dry-run deleted something"
"$CTL" --config "$W/api.yaml" attachments gc >"$W/gc1.out" 2>&1 || fail "gc: $(cat "$W/gc1.out")"
grep -q "^attachments gc: 0 files deleted (0 bytes), 1 stray temporary files deleted (0 bytes); kept: 1 named by a row, 3 unnamed but younger than 60 minutes" "$W/gc1.out" \
    || fail "gc within the grace: $(cat "$W/gc1.out")"
[ -f "$AD/${PNG:0:2}/$PNG" ] && [ -f "$AD/${ORPH:0:2}/$ORPH" ] && [ -f "$AD/aa/.${PNG}.456.tmp" ] && [ ! -e "$AD/aa/.${PDF}.123.tmp" ] \
    || fail "gc within the grace deleted a fresh file, or kept an old .tmp"
touch -d '2 hours ago' "$AD/${PNG:0:2}/$PNG" "$AD/${OTHER:0:2}/$OTHER" "$AD/${PDF:0:2}/$PDF"
"$CTL" --config "$W/api.yaml" attachments gc >"$W/gc2.out" 2>&1 || fail "gc: $(cat "$W/gc2.out")"
bytes=$(( $(stat -c %s "$W/photo.png") + $(stat -c %s "$W/other.pdf") ))
grep -q "^attachments gc: 2 files deleted ($bytes bytes), 0 stray .*kept: 1 named by a row, 1 unnamed but younger" "$W/gc2.out" \
    || fail "gc after the grace: $(cat "$W/gc2.out") (want 2 files, $bytes bytes)"
[ ! -e "$AD/${PNG:0:2}/$PNG" ] && [ ! -e "$AD/${OTHER:0:2}/$OTHER" ] && [ -f "$AD/${PDF:0:2}/$PDF" ] && [ -f "$AD/${ORPH:0:2}/$ORPH" ] \
    || fail "gc deleted the wrong files"
dl "$R2" "$PDF" "$T_DECH"
[ "$S" = 200 ] && cmp -s "$W/dl" "$W/scan.pdf" || fail "the file another request still names: $S"
grep -q "Courrier\|photo\|orphan\|@" "$W/gc2.out" && fail "a name in gc's output"
ok "erasure deletes the rows; gc deletes unnamed files past the grace, old .tmp files, keeps fresh and still-named ones; --dry-run deletes nothing"

# 6. a lost file: 503 to the reader, gc warns; a folder open to others stops the config
rm "$AD/${PDF:0:2}/$PDF"
dl "$R2" "$PDF" "$T_DECH"; [ "$S" = 503 ] || fail "a lost file: $S"
grep -q "attachment $PDF is missing" "$W/api.log" || fail "the lost file is not logged"
"$CTL" --config "$W/api.yaml" attachments gc >"$W/gc3.out" 2>&1
grep -q "WARNING: 1 attachment rows name a file that is not in" "$W/gc3.out" || fail "gc does not warn of the lost file: $(cat "$W/gc3.out")"
chmod 755 "$AD"
"$CTL" --config "$W/api.yaml" token list >/dev/null 2>"$W/mode.err" && fail "a folder open to others accepted"
grep -q "api.yaml:.*open to others (mode 755)" "$W/mode.err" || fail "the mode refusal: $(cat "$W/mode.err")"
chmod 700 "$AD"
ok "a lost file is 503 and logged, gc warns of it; a folder open to others stops the configuration with file:line"
api_stop
