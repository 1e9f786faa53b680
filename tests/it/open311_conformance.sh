#!/usr/bin/env bash
# Open311 GeoReport v2 conformance: every answer of every endpoint, in JSON and in XML, for
# every kind of caller (no token, an agent of the service, an agent of another service, a
# supervisor), is checked against the specification's fields: services (service_code,
# service_name, description, metadata, type, keywords, group), requests (every field of a
# service request on every item, service_request_id never missing, status open|closed,
# W3C date-times), POST (200, service_request_id / service_notice / account_id) and every
# error ([{code, description}] / <errors><error><code/><description/></error></errors>, the
# code equal to the HTTP status: 400, 401, 404, 405, 413, 414, 429, 431). Then what the public
# list may show: without a token only open311.public_categories, never a tracking code nor
# anything of a person, a description and an address only in open311.public_details;
# comma-separated service_request_id, service_code and status lists; every item's
# service_request_id (a tracking code or id-<id>) is the id GET requests/{id} answers, with
# the same item for the same caller (id-<id> of a category that is not public: 404
# without a token).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
API_PER_MINUTE=1000 API_YAML_EXTRA='http:
  max_url_bytes: 4096
  max_header_bytes: 4096
  max_body_bytes: 4096
open311:
  public_categories: [encombrants, depot_sauvage]
  public_details: [depot_sauvage]' api_setup open311_conformance 40
O=/open311/v2
expect() { [ "$S" = "$1" ] || fail "$2: status $S, body $(head -c 300 "$W/body")"; }
q "insert into service_categories (category, service) values ('nid_de_poule', 'voirie')" >/dev/null
T_VOIR=$("$CTL" --config "$W/api.yaml" token create --role agent --service voirie 2>/dev/null)
[ ${#T_VOIR} = 64 ] || fail "voirie token"

# web requests: one in a public category with details (its description and address may be
# shown), one in a public category without, one in a category that is not public
post() {  # FORMAT DATA → $S, body
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-binary "$2" "$U$O/requests.$1")
}
post json "service_code=depot_sauvage&description=Gravats+devant+le+4+rue+Haute&address_string=4+rue+Haute&lat=48.8566&long=2.3522&first_name=Zo%C3%A9&last_name=PUBLICPERSON&email=zoe.public%40example.fr&phone=0611223344"
expect 200 "POST depot_sauvage"
C_DETAILS=$(python3 -c "import json; print(json.load(open('$W/body'))[0]['service_request_id'])")
post xml "service_code=encombrants&description=Canap%C3%A9+SECRETDESC&address_string=9+rue+Basse&last_name=HIDDENPERSON&email=h%40example.fr"
expect 200 "POST encombrants (xml)"
C_PUBLIC=$(python3 -c "import xml.etree.ElementTree as E; print(E.parse('$W/body').getroot().find('request/service_request_id').text)")
post json "service_code=bac_casse&description=Bac+PRIVATEDESC&last_name=PRIVATEPERSON"
expect 200 "POST bac_casse"
C_PRIVATE=$(python3 -c "import json; print(json.load(open('$W/body'))[0]['service_request_id'])")
for c in "$C_DETAILS" "$C_PUBLIC" "$C_PRIVATE"; do [ ${#c} = 11 ] || fail "tracking code $c"; done

export O3_URL=$U O3_SUP=$T_SUP O3_DECH=$T_DECH O3_VOIR=$T_VOIR O3_CODES="$C_DETAILS,$C_PUBLIC,$C_PRIVATE"
export O3_CATS=$(q "select string_agg(distinct category, ',') from service_categories")
python3 - <<'PY' || fail "Open311 answers do not conform"
import json, os, re, socket, sys, urllib.error, urllib.parse, urllib.request
import xml.etree.ElementTree as ET

base = os.environ["O3_URL"]
TOKENS = {"anonymous": None, "supervisor": os.environ["O3_SUP"], "dechets": os.environ["O3_DECH"],
          "voirie": os.environ["O3_VOIR"]}
CODES = os.environ["O3_CODES"].split(",")
errors = []
checked = {"answers": 0, "items": 0}
W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
SERVICE = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
REQUEST = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
           "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
           "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]
POSTED = ["service_request_id", "service_notice", "account_id"]

def call(path, token=None, method="GET", data=None, headers=None):
    req = urllib.request.Request(base + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()

def parse(path, ctype, body, where):
    """The answer as a list of dicts, from JSON or from XML (outer / inner elements)."""
    xml = path.split("?")[0].endswith(".xml")
    if xml:
        if not ctype.startswith("text/xml"):
            errors.append("%s: content type %s" % (where, ctype)); return None, None
        if not body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'):
            errors.append("%s: no XML declaration" % where)
        root = ET.fromstring(body)
        return root.tag, [{c.tag: (c.text or "") for c in item} | {"_tag": item.tag} for item in root]
    if not ctype.startswith("application/json"):
        errors.append("%s: content type %s" % (where, ctype)); return None, None
    d = json.loads(body)
    if not isinstance(d, list):
        errors.append("%s: not an array: %r" % (where, d)); return None, None
    return None, d

def fields(items, required, where, outer, want_outer, want_inner):
    if outer is not None and outer != want_outer:
        errors.append("%s: root <%s>, expected <%s>" % (where, outer, want_outer))
    for i, it in enumerate(items):
        checked["items"] += 1
        if outer is not None and it.get("_tag") != want_inner:
            errors.append("%s[%d]: element <%s>, expected <%s>" % (where, i, it.get("_tag"), want_inner))
        for k in required:
            if k not in it:
                errors.append("%s[%d]: missing %s" % (where, i, k))

def check_services(path):
    status, ctype, body = call(path)
    checked["answers"] += 1
    outer, items = parse(path, ctype, body, path)
    if status != 200 or items is None:
        errors.append("%s: %d" % (path, status)); return
    fields(items, SERVICE, path, outer, "services", "service")
    for s in items:
        if not s.get("service_code") or not s.get("service_name"):
            errors.append("%s: empty service_code/name %r" % (path, s))
        if str(s.get("metadata")).lower() not in ("true", "false"):
            errors.append("%s: metadata %r" % (path, s.get("metadata")))
        if s.get("type") not in ("realtime", "batch", "blackbox"):
            errors.append("%s: type %r" % (path, s.get("type")))

def check_requests(path, token, who):
    status, ctype, body = call(path, token)
    checked["answers"] += 1
    where = "%s (%s)" % (path, who)
    outer, items = parse(path, ctype, body, where)
    if status != 200 or items is None:
        errors.append("%s: %d %s" % (where, status, body[:200])); return []
    fields(items, REQUEST, where, outer, "service_requests", "request")
    for it in items:
        sid = it.get("service_request_id")
        if not sid or not isinstance(sid, str):
            errors.append("%s: service_request_id %r" % (where, sid))
        if it.get("status") not in ("open", "closed"):
            errors.append("%s: status %r" % (where, it.get("status")))
        if not it.get("service_code") or not it.get("service_name"):
            errors.append("%s: service_code/name %r" % (where, it))
        if not W3C.match(it.get("requested_datetime") or ""):
            errors.append("%s: requested_datetime %r" % (where, it.get("requested_datetime")))
        for k in ("updated_datetime", "expected_datetime"):
            v = it.get(k)
            if v not in (None, "") and not W3C.match(v):
                errors.append("%s: %s %r" % (where, k, v))
    return items

def check_error(path, status_wanted, token=None, method="GET", data=None, headers=None, raw=None):
    if raw is not None:                          # a request urllib would not send
        s = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10)
        s.sendall(raw)
        resp = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
        s.close()
        head, _, body = resp.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        ctype = next((l.split(b":", 1)[1].strip().decode() for l in head.split(b"\r\n")
                      if l.lower().startswith(b"content-type:")), "")
    else:
        status, ctype, body = call(path, token, method, data, headers)
    checked["answers"] += 1
    where = "%s %s (error %d)" % (method, path[:60], status_wanted)
    if status != status_wanted:
        errors.append("%s: status %d: %s" % (where, status, body[:200])); return
    outer, items = parse(path, ctype, body, where)
    if items is None:
        return
    if outer is not None and outer != "errors":
        errors.append("%s: root <%s>" % (where, outer))
    if len(items) != 1:
        errors.append("%s: %d errors" % (where, len(items))); return
    e = items[0]
    if outer is not None and e.get("_tag") != "error":
        errors.append("%s: element <%s>" % (where, e.get("_tag")))
    if str(e.get("code")) != str(status_wanted) or (outer is None and not isinstance(e.get("code"), int)):
        errors.append("%s: code %r" % (where, e.get("code")))
    if not e.get("description"):
        errors.append("%s: no description" % where)

PII = re.compile(r"PUBLICPERSON|HIDDENPERSON|PRIVATEPERSON|zoe\.public|0611223344|usager|DUPONT|@example", re.I)
for fmt in ("json", "xml"):
    check_services("/open311/v2/services.%s" % fmt)
    lists = {}
    for who, token in TOKENS.items():
        lists[who] = check_requests("/open311/v2/requests.%s" % fmt, token, who)
        for code in CODES:
            one = check_requests("/open311/v2/requests/%s.%s" % (code, fmt), None, "by its code")
            if [r["service_request_id"] for r in one] != [code]:
                errors.append("requests/%s.%s: %r" % (code, fmt, one))
        # the id an item shows is the id GET requests/{id} takes, and the item is the same
        for it in lists[who][:4]:
            sid = it["service_request_id"]
            one = check_requests("/open311/v2/requests/%s.%s" % (sid, fmt), token, who + ", an item's id")
            if one != [it]:
                errors.append("requests/%s.%s (%s): %r, the list showed %r" % (sid, fmt, who, one, it))
    anon = lists["anonymous"]
    body = json.dumps(anon)
    if PII.search(body):
        errors.append("anonymous list (%s) shows personal data: %s" % (fmt, PII.search(body).group(0)))
    if "PRIVATEDESC" in body or "SECRETDESC" in body or "9 rue Basse" in body:
        errors.append("anonymous list (%s) shows a description or an address of a category without details" % fmt)
    cats = {r["service_code"] for r in anon}
    if not cats or not cats <= {"encombrants", "depot_sauvage"}:
        errors.append("anonymous list (%s): categories %r" % (fmt, cats))
    if any(r["service_request_id"] in CODES or not r["service_request_id"].startswith("id-") for r in anon):
        errors.append("anonymous list (%s) shows a tracking code" % fmt)
    # id-<id> of a category that is not public: not found without a token, found with one
    private = [r["service_request_id"] for r in lists["voirie"] if r["service_code"] == "bac_casse"]
    if not private or not private[0].startswith("id-"):
        errors.append("the voirie list (%s) lacks bac_casse as id-<id>" % fmt)
    else:
        check_error("/open311/v2/requests/%s.%s" % (private[0], fmt), 404)
        one = check_requests("/open311/v2/requests/%s.%s" % (private[0], fmt), TOKENS["voirie"], "voirie, private id")
        if [r["service_request_id"] for r in one] != [private[0]] or one[0].get("description") not in (None, ""):
            errors.append("requests/%s.%s (voirie): %r" % (private[0], fmt, one))
        got = check_requests("/open311/v2/requests.%s?service_request_id=%s,%s" % (fmt, private[0], CODES[0]),
                             TOKENS["supervisor"], "id-<id> and a code")
        if len(got) != 2 or CODES[0] not in [r["service_request_id"] for r in got]:
            errors.append("service_request_id=id-<id>,code (%s): %r" % (fmt, got))
    for bad in ("id-0", "id-x", "id-", "id-01"):
        check_error("/open311/v2/requests/%s.%s" % (bad, fmt), 404)
    det = [r for r in anon if r["service_code"] == "depot_sauvage" and r.get("description")]
    if not any("Gravats" in r["description"] and r.get("address") == "4 rue Haute" for r in det):
        errors.append("anonymous list (%s): the public details are missing: %r" % (fmt, det[:2]))
    if not all(str(r.get("lat")).startswith("48.85") for r in det if r.get("address") == "4 rue Haute"):
        errors.append("anonymous list (%s): lat %r" % (fmt, [r.get("lat") for r in det]))
    if any(r.get("description") not in (None, "") for r in anon if r["service_code"] == "encombrants"):
        errors.append("anonymous list (%s): a description of encombrants" % fmt)
    own = {r["service_request_id"] for r in lists["dechets"]}
    if not set(CODES) <= own:
        errors.append("the dechets agent's list (%s) lacks the tracking codes" % fmt)
    if len(lists["voirie"]) != len(lists["dechets"]):
        errors.append("the voirie agent sees %d items, dechets %d (%s)" % (len(lists["voirie"]), len(lists["dechets"]), fmt))
    if any(r["service_request_id"] in CODES or not r["service_request_id"].startswith("id-")
           or r.get("description") not in (None, "") or r.get("address") not in (None, "") for r in lists["voirie"]):
        errors.append("another service's agent (%s) sees a tracking code, a description or an address" % fmt)
    if len(lists["supervisor"]) < len(CODES):
        errors.append("supervisor list (%s)" % fmt)

    # comma-separated lists
    got = check_requests("/open311/v2/requests.%s?service_request_id=%s,%s" % (fmt, CODES[0], CODES[2].lower()), TOKENS["supervisor"], "ids")
    if sorted(r["service_request_id"] for r in got) != sorted([CODES[0], CODES[2]]):
        errors.append("service_request_id list (%s): %r" % (fmt, [r["service_request_id"] for r in got]))
    got = check_requests("/open311/v2/requests.%s?service_code=encombrants,bac_casse" % fmt, TOKENS["supervisor"], "codes")
    if not got or {r["service_code"] for r in got} - {"encombrants", "bac_casse"}:
        errors.append("service_code list (%s): %r" % (fmt, {r["service_code"] for r in got}))
    both = check_requests("/open311/v2/requests.%s?status=open,closed" % fmt, TOKENS["supervisor"], "statuses")
    if len(both) != len(lists["supervisor"]):
        errors.append("status=open,closed (%s): %d of %d" % (fmt, len(both), len(lists["supervisor"])))
    check_requests("/open311/v2/requests.%s?service_code=bac_casse" % fmt, None, "anonymous, private category") == [] \
        or errors.append("the anonymous list shows bac_casse when asked (%s)" % fmt)

    # POST: 200 and the specification's answer, form and JSON
    for ctype, data in (("application/x-www-form-urlencoded", b"service_code=encombrants&description=Conformance"),
                        ("application/json", b'{"service_code": "encombrants", "description": "Conformance"}')):
        status, rtype, body = call("/open311/v2/requests.%s" % fmt, method="POST", data=data,
                                   headers={"Content-Type": ctype})
        checked["answers"] += 1
        where = "POST requests.%s (%s)" % (fmt, ctype)
        outer, items = parse("/open311/v2/requests.%s" % fmt, rtype, body, where)
        if status != 200 or not items or len(items) != 1:
            errors.append("%s: %d %s" % (where, status, body[:200])); continue
        fields(items, POSTED, where, outer, "service_requests", "request")
        if len(items[0].get("service_request_id") or "") != 11:
            errors.append("%s: service_request_id %r" % (where, items[0].get("service_request_id")))

    # every error in the specification's format, with its HTTP status as code
    p = "/open311/v2/requests.%s" % fmt
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    check_error(p + "?status=maybe", 400)
    check_error(p + "?service_request_id=A,,B", 400, TOKENS["supervisor"])
    check_error(p, 400, method="POST", data=b"description=no+service", headers=form)
    check_error(p, 400, method="POST", data=b"service_code=nope&description=x", headers=form)
    check_error(p, 400, method="POST", data=b"service_code=encombrants&description=a%00b", headers=form)
    check_error(p + "?" + "&".join("p%d=1" % i for i in range(500)), 400)
    check_error(p, 401, "0" * 64)
    check_error("/open311/v2/requests/AAAAAAAAAA.%s" % fmt, 404)
    check_error("/open311/v2/nothing.%s" % fmt, 404)
    check_error(p, 405, method="DELETE")
    check_error(p, 413, method="POST", data=b"x" * 5000, headers=form)
    check_error(p + "?" + "a" * 5000, 414)
    check_error(p, 431, raw=("GET %s HTTP/1.1\r\nHost: x\r\nX-Filler: %s\r\nConnection: close\r\n\r\n"
                             % (p, "a" * 5000)).encode())
    check_error(p, 400, raw=("GET %s?service_code=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                             % (p, "%FF")).encode())

for e in errors:
    print("ERROR", e, file=sys.stderr)
print("%d answers, %d items checked" % (checked["answers"], checked["items"]))
sys.exit(1 if errors else 0)
PY
ok "every Open311 answer (services, requests, one request, POST, errors; JSON and XML; every caller) has the specification's fields"

# 429 in Open311's format: a fresh API with a budget of 2 lookups a minute
sed 's/  per_minute: 1000/  per_minute: 2/' "$W/api.yaml" >"$W/api2.yaml"
"$API" --config "$W/api2.yaml" >"$W/api2.log" 2>&1 &
API2_PID=$!
at_exit 'kill $API2_PID 2>/dev/null'
for i in $(seq 1 50); do grep -q "listening on" "$W/api2.log" && break; sleep 0.1; done
U2=http://127.0.0.1:$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/api2.log")
for fmt in json xml; do
    for i in 1 2 3; do S=$(curl -s -o "$W/body" -w '%{http_code}' "$U2$O/requests/$C_PUBLIC.$fmt"); done
    expect 429 "third lookup ($fmt)"
    if [ $fmt = json ]; then
        [ "$(python3 -c "import json; d=json.load(open('$W/body')); print(d[0]['code'], bool(d[0]['description']))")" = "429 True" ] || fail "429 json: $(cat "$W/body")"
    else
        [ "$(python3 -c "import xml.etree.ElementTree as E; d=E.parse('$W/body').getroot(); print(d.tag, d.find('error/code').text)")" = "errors 429" ] || fail "429 xml: $(cat "$W/body")"
    fi
done
S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $T_SUP" "$U2$O/requests.json"); expect 200 "a token is not limited by the anonymous budget"
ok "429 in Open311's format; the anonymous budget does not limit a token"
api_stop
