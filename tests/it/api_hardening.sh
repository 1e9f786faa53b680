#!/usr/bin/env bash
# civibus-api against what an outsider tried (the "trust" issue), over real sockets on
# 127.0.0.1, each bounded in time and count:
#   - search wildcards (%%, __, --) that folded to nothing and listed everyone: 400;
#   - 500 query parameters (hung 30 s), an over-long target, oversized headers and body:
#     414 / 400 / 431 / 413 at once, with a JSON error (Open311's format under /open311/);
#   - slow clients: a head trickled byte by byte is cut at http.header_timeout_s, and one
#     address holds at most http.per_address_connections sockets (the rest closed at once);
#   - trusted proxies: their X-Forwarded-For decides the address of limits and audit (the
#     right-most untrusted entry; what the client wrote to the left is ignored), anyone
#     else's X-Forwarded-For is ignored;
#   - the rate limit is a token bucket: a burst across a minute boundary gets per_minute;
#   - NUL and invalid UTF-8 in form fields and JSON bodies: 400, nothing stored;
#   - "bearer" in any case; every 401 carries WWW-Authenticate;
#   - civibusctl refuses a token for a service the timeline does not know;
#   - citizen searches by tracking code (who owns it) are limited per token;
#   - a list's audit row names the citizens it showed ("who saw this citizen").
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
API_PER_MINUTE=5 API_OWNER_PER_MINUTE=3 API_YAML_EXTRA='http:
  threads: 2
  max_url_bytes: 4096
  max_params: 20
  max_header_bytes: 4096
  max_body_bytes: 4096
  header_timeout_s: 2
  per_address_connections: 6' api_setup api_hardening 30
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
expect() { [ "$S" = "$1" ] || fail "$2: status $S, body $(head -c 300 "$W/body")"; }
jerr() { [ "$(js 'd["error"]["code"] + ":" + str(bool(d["error"]["message"]))')" = "$1:True" ] || fail "$2: not a JSON error $1: $(head -c 200 "$W/body")"; }
# timed REQUEST → status in $S, seconds in $T
timed() { local out; rm -f "$W/body"; out=$(curl -s -m 10 -o "$W/body" -w '%{http_code} %{time_total}' "$@"); S=${out% *}; T=${out#* }; }
quick() { python3 -c "import sys; sys.exit(0 if float('$T') < 2 else 1)" || fail "$1 took $T s"; }

# ---- search wildcards: the whole directory through %% ----
total=$(q "select count(*) from citizens")
[ "$total" -ge 2 ] || fail "the demo has $total citizens"
for v in %25%25 __ -- %25_ '%20%20%20' ; do
    get "/v1/citizens?name=$v" "$T_SUP"; expect 400 "name=$v"; jerr bad_parameter "name=$v"
    get "/v1/citizens?address=$v" "$T_SUP"; expect 400 "address=$v"
done
get "/v1/citizens?name=a%25" "$T_SUP"; expect 400 "one letter and a wildcard"
get "/v1/citizens?name=%25zq%25" "$T_SUP"; expect 200 "wildcards around letters"
[ "$(js 'len(d["items"])')" = 0 ] || fail "%zq% matched someone: $(head -c 300 "$W/body")"
get "/v1/citizens?name=dupont" "$T_SUP"; expect 200 "a real name"
[ "$(js 'len(d["items"])')" -ge 1 ] && [ "$(js 'len(d["items"])')" -lt "$total" ] || fail "name=dupont: $(head -c 300 "$W/body")"
get "/v1/citizens?phone=--" "$T_SUP"; expect 400 "phone without digits"
get "/v1/citizens?email=%25" "$T_SUP"; expect 400 "email wildcard"
ok "search values need 2 letters or digits after folding; LIKE wildcards match nothing special"

# ---- limits answered at once ----
params=$(python3 -c "print('&'.join('p%d=v' % i for i in range(500)))")
timed -H "Authorization: Bearer $T_SUP" "$U/v1/citizens?name=ab&$params"; expect 400 "500 parameters"; quick "500 parameters"
jerr too_many_parameters "500 parameters"
timed -H "Authorization: Bearer $T_SUP" "$U/v1/citizens?name=ab&$(python3 -c "print('&'.join('p%d=v' % i for i in range(19)))")"
expect 200 "20 parameters (the limit)"
timed "$U/v1/track/$(head -c 5000 /dev/zero | tr '\0' A)"; expect 414 "long target"; quick "long target"; jerr uri_too_long "414"
timed "$U/v1/track/x?$(head -c 100000 /dev/zero | tr '\0' a)"; expect 414 "100 kB target"; quick "100 kB target"
timed -H "X-Filler: $(head -c 5000 /dev/zero | tr '\0' a)" "$U/healthz"; expect 431 "big header"; quick "big header"; jerr headers_too_large 431
timed -H "X-Filler: $(head -c 60000 /dev/zero | tr '\0' a)" "$U/healthz"; expect 431 "huge header (libmicrohttpd's own 431)"; quick "huge header"
timed -X POST -H 'Content-Type: application/json' --data-binary "$(head -c 20000 /dev/zero | tr '\0' a)" "$U/open311/v2/requests.json"
expect 413 "big body"; quick "big body"
[ "$(js 'd[0]["code"]')" = 413 ] || fail "413 under /open311/ not in Open311's format: $(cat "$W/body")"
timed -X POST -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary "$(head -c 6000 /dev/zero | tr '\0' a)" "$U/open311/v2/requests.json"
expect 413 "chunked body over the limit"; quick "chunked body over the limit"
[ "$(js 'd[0]["code"]')" = 413 ] || fail "chunked 413: $(cat "$W/body")"
head -c 200000 /dev/zero | tr '\0' a >"$W/big"
timed -X POST -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$W/big" "$U/open311/v2/requests.json"
[ "$S" = 000 ] || [ "$S" = 413 ] || fail "chunked body 50 times the limit: $S"; quick "chunked body 50 times the limit"
timed "$U/open311/v2/requests.xml?$params"; expect 400 "Open311 parameters"
python3 -c "import xml.etree.ElementTree as E; d=E.parse('$W/body').getroot(); assert d.tag == 'errors' and d.find('error/code').text == '400'" \
    || fail "Open311 XML error: $(cat "$W/body")"
get /metrics; grep -q 'civibus_api_refused_total{limit="parameters"} [1-9]' "$W/body" || fail "refusals not counted"
kill -0 $API_PID || fail "API died"
ok "500 parameters 400, long target 414, big headers 431, big bodies 413: at once, as JSON (Open311's format under /open311/)"

# ---- a chunked body is answered 413 the moment it passes the limit, not at its end ----
python3 - "$PORT" <<'PY' || fail "chunked body over the limit: no early 413"
import socket, sys, json
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Transfer-Encoding: chunked\r\n\r\n")
chunk = b"a" * 5000                    # over max_body_bytes (4096); the body goes on (no last chunk)
s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
resp = b""
try:
    while b"\r\n\r\n" not in resp or len(resp.split(b"\r\n\r\n", 1)[1]) < 10:
        c = s.recv(4096)
        if not c:
            break
        resp += c
except socket.timeout:
    sys.exit("no answer within 3 s while the body is unfinished: %r" % resp[:200])
head, _, body = resp.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 413"), head
assert b"connection: close" in head.lower() and b"application/json" in head.lower(), head
n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
while len(body) < n:
    body += s.recv(4096)
assert json.loads(body)[0]["code"] == 413, body
PY
kill -0 $API_PID || fail "API died"
ok "a chunked body over the limit: 413 (Open311's JSON) at once, while the client still sends"

# ---- heads over libmicrohttpd's pool: its own answer (docs/api.md says why), counted, not a warning ----
get /metrics; h0=$(sed -n 's/^civibus_api_refused_total{limit="headers"} //p' "$W/body"); u0=$(sed -n 's/^civibus_api_refused_total{limit="url"} //p' "$W/body")
python3 - "$PORT" <<'PY' || fail "a head over the pool"
import socket, sys
for req, want in ((b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 300000 + b"\r\n\r\n", b"431"),
                  (b"GET /healthz?" + b"a" * 300000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414")):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    try:
        s.sendall(req)
    except OSError:
        pass                           # answered and closed before the whole head was sent
    resp = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            resp += c
    except OSError:
        pass
    assert resp.startswith(b"HTTP/1.1 " + want), resp[:200]
PY
get /metrics
[ "$(sed -n 's/^civibus_api_refused_total{limit="headers"} //p' "$W/body")" -gt "$h0" ] || fail "libmicrohttpd's 431 not counted"
[ "$(sed -n 's/^civibus_api_refused_total{limit="url"} //p' "$W/body")" -gt "$u0" ] || fail "libmicrohttpd's 414 not counted"
! grep -E 'WARN http|EXTERNAL_LOGGER' "$W/api.log" || fail "libmicrohttpd's messages logged as warnings"
grep -q 'INFO http: libmicrohttpd answered 431 itself' "$W/api.log" || fail "libmicrohttpd's 431 not logged"
ok "a head over libmicrohttpd's pool: its 414 / 431, counted in civibus_api_refused_total, logged at INFO, no warning"

# ---- slow clients: header deadline, connections per address ----
get /healthz; expect 200 "healthz before"
HOST=127.0.0.1 PORT=$PORT python3 - <<'PY' || fail "slow clients"
import os, socket, time
host, port = os.environ["HOST"], int(os.environ["PORT"])
def opened():
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return s
def closed(s, wait):
    s.settimeout(wait)
    try:
        return s.recv(100) == b""
    except socket.timeout:
        return False
    except OSError:
        return True
t0 = time.time()
slow = [opened() for _ in range(6)]             # the per-address limit
time.sleep(0.3)
extra = socket.create_connection((host, port), timeout=5)
assert closed(extra, 2), "a 7th connection from one address was served"
# trickle one header byte every 0.4 s: never silent, never complete
deadline = time.time() + 6
alive = list(slow)
while alive and time.time() < deadline:
    for s in list(alive):
        try:
            s.sendall(b"X")
        except OSError:
            alive.remove(s); continue
        if closed(s, 0.05):
            alive.remove(s)
    time.sleep(0.4)
elapsed = time.time() - t0
assert not alive, "%d trickling connections still open after %.1f s" % (len(alive), elapsed)
assert elapsed < 5, "cut after %.1f s (header_timeout_s is 2)" % elapsed
for s in slow:
    s.close()
time.sleep(0.3)
ok = socket.create_connection((host, port), timeout=5)
ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
ok.settimeout(5)
assert ok.recv(100).startswith(b"HTTP/1.1 200"), "not served after the slow ones were cut"
print("cut after %.1f s" % elapsed)
PY
get /metrics
grep -q 'civibus_api_connections_cut_total [1-9]' "$W/body" && grep -q 'civibus_api_connections_refused_total [1-9]' "$W/body" \
    || fail "metrics: $(grep connections "$W/body")"
ok "a trickled head is cut at header_timeout_s; one address holds per_address_connections sockets"

# ---- trusted proxies: a second API that trusts 127.0.0.1 ----
sed 's/  port: 0/  port: 0/' "$W/api.yaml" >"$W/api2.yaml"
printf '  trusted_proxies: [127.0.0.1]\n' >>"$W/api2.yaml"    # the http: block is the file's last
"$API" --config "$W/api2.yaml" >"$W/api2.log" 2>&1 &
API2_PID=$!
at_exit 'kill $API2_PID 2>/dev/null'
for i in $(seq 1 50); do grep -q "listening on" "$W/api2.log" && break; sleep 0.1; done
U2=http://127.0.0.1:$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/api2.log")
TC=$(q "select tracking_code from requests order by id limit 1")
track() { S=$(curl -s -o "$W/body" -w '%{http_code}' -H "X-Forwarded-For: $2" "$1/v1/track/$TC"); }
n=0; for i in 1 2 3 4 5 6; do track "$U2" "203.0.113.9, 198.51.100.1"; [ "$S" = 200 ] && n=$((n + 1)); done
[ $n = 5 ] && [ "$S" = 429 ] || fail "through the proxy, 198.51.100.1 got $n lookups then $S"
track "$U2" "198.51.100.1"; expect 429 "the same client with another left part"
track "$U2" "198.51.100.2"; expect 200 "another client behind the proxy"
n=0; for i in 1 2 3 4 5 6; do track "$U" "198.51.100.$((10 + i))"; [ "$S" = 200 ] && n=$((n + 1)); done
[ $n = 5 ] || fail "an untrusted client's X-Forwarded-For was honoured: $n lookups passed"
sleep 0.5
[ "$(q "select count(*) from api_audit where action = 'track' and client = '198.51.100.1'")" = 5 ] \
    || fail "audit client: $(q "select string_agg(distinct host(client), ',') from api_audit where action = 'track'")"
[ "$(q "select count(*) from api_audit where client = '203.0.113.9' or client <<= '198.51.100.8/29'")" = 0 ] \
    || fail "a spoofed address reached the audit"
[ "$(q "select count(*) from api_audit where action = 'track' and client = '127.0.0.1'")" = 5 ] || fail "direct client's address"
ok "trusted proxy: X-Forwarded-For's right-most untrusted address counts (limits, audit); ignored from others"

# ---- NUL and invalid UTF-8 in bodies ----
O=/open311/v2
# through the trusted API, each from its own address: the posts are rate limited per address
np=0
post() { np=$((np + 1)); S=$(curl -s -o "$W/body" -w '%{http_code}' -H "X-Forwarded-For: 192.0.2.$np" \
    -H "Content-Type: $1" --data-binary "$2" "$U2$O/requests.json"); }
CAT=$(q "select category from requests limit 1")
before=$(q "select count(*) from events")
post application/x-www-form-urlencoded "service_code=$CAT&description=Canap%00Nuit"; expect 400 "%00 in a form field"
post application/x-www-form-urlencoded "service_code=$CAT%00x&description=y"; expect 400 "%00 in service_code"
post application/x-www-form-urlencoded "service_code=$CAT&description=%C3%28"; expect 400 "invalid UTF-8 once decoded"
post application/x-www-form-urlencoded "service_code=$CAT&description=a%01b"; expect 400 "a control character"
post application/json "{\"service_code\": \"$CAT\", \"description\": \"Canap\\u0000Nuit\"}"; expect 400 "\\u0000 in JSON"
S=$(printf '{"service_code": "%s", "description": "a\000b"}' "$CAT" | curl -s -o "$W/body" -w '%{http_code}' \
    -H 'Content-Type: application/json' -H "X-Forwarded-For: 192.0.2.99" --data-binary @- "$U2$O/requests.json")
expect 400 "raw NUL in JSON"
S=$(curl -s -o "$W/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $T_SUP" -H 'Content-Type: application/json' \
    --data-binary '{"source": "demo\u0000x", "source_citizen_id": "1"}' "$U/v1/citizens/1/detach"); expect 400 "\\u0000 in an identity body"
[ "$(q "select count(*) from events")" = "$before" ] || fail "a refused POST stored something"
ok "NUL (raw, %00, \\u0000) and invalid UTF-8 in form fields and JSON bodies: 400, nothing stored"

# ---- token bucket across a minute boundary (the old counter let 2 x per_minute through) ----
now=$(date +%s.%N)
python3 -c "import time; time.sleep((60 - $now % 60 - 0.8) % 60)"
n=0; for i in $(seq 1 10); do track "$U2" "198.51.100.77"; [ "$S" = 200 ] && n=$((n + 1)); done
[ $n -le 6 ] || fail "$n of 10 lookups passed across a minute boundary (per_minute 5)"
ok "a burst across a minute boundary: $n of 10 lookups (per_minute 5)"
kill $API2_PID; wait $API2_PID 2>/dev/null


# ---- authentication scheme, WWW-Authenticate ----
for scheme in bearer BEARER BeArEr; do
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: $scheme $T_SUP" "$U/v1/requests/1"); expect 200 "scheme $scheme"
done
S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer   $T_SUP" "$U/v1/requests/1"); expect 200 "several spaces"
S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer$T_SUP" "$U/v1/requests/1"); expect 401 "no space"
S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Basic $T_SUP" "$U/v1/requests/1"); expect 401 "another scheme"
for path in /v1/requests/1 /open311/v2/requests.json; do
    S=$(curl -s -o "$W/body" -D "$W/headers" -w '%{http_code}' -H "Authorization: Bearer nope" "$U$path"); expect 401 "bad token $path"
    grep -qi '^WWW-Authenticate: Bearer' "$W/headers" || fail "401 of $path without WWW-Authenticate: $(cat "$W/headers")"
done
ok "the scheme is case-insensitive; every 401 says WWW-Authenticate: Bearer"

# ---- tokens only for services that exist ----
ntok=$(q "select count(*) from api_tokens")
"$CTL" --config "$W/api.yaml" token create --role agent --service dechetz >/dev/null 2>"$W/ctl.err"; rc=$?
[ $rc = 2 ] && grep -q "no service 'dechetz'" "$W/ctl.err" || fail "token for an unknown service: rc $rc $(cat "$W/ctl.err")"
[ "$(q "select count(*) from api_tokens")" = "$ntok" ] || fail "the token was stored"
ok "civibusctl refuses a token for a service the timeline does not know"

# ---- owner lookups by tracking code: per token ----
n=0; for i in 1 2 3 4 5; do get "/v1/citizens?tracking_code=$TC" "$T_DECH"; [ "$S" = 200 ] && n=$((n + 1)); done
[ $n = 3 ] && [ "$S" = 429 ] || fail "owner lookups: $n passed, then $S"
jerr rate_limited "owner lookup 429"
get "/v1/citizens?tracking_code=$TC" "$T_SUP"; expect 200 "another token has its own budget"
get "/v1/citizens?name=dupont" "$T_DECH"; expect 200 "a search by name is not an owner lookup"
ok "searches by tracking code: owner_per_minute per token, then 429"

# ---- the read log: a list's audit row names its citizens ----
get "/v1/services/dechets/requests?limit=5" "$T_DECH"; expect 200 "open requests"
want=$(js '",".join(str(c) for c in sorted(set(r["citizen_id"] for r in d["items"] if r.get("citizen_id"))))')
[ -n "$want" ] || fail "the page shows no citizen"
get "/open311/v2/requests.json?service_code=$CAT" "$T_DECH"; expect 200 "Open311 list"
sleep 0.5
got=$(q "select array_to_string(array(select unnest(citizen_ids) order by 1), ',') from api_audit where action = 'service_requests' order by id desc limit 1")
[ "$got" = "$want" ] || fail "service_requests audit names $got, the page showed $want"
c1=${want%%,*}
[ "$(q "select count(*) from api_audit where (citizen_id = $c1 or citizen_ids @> array[$c1::bigint]) and action in ('service_requests', 'open311_requests')")" -ge 1 ] \
    || fail "who saw citizen $c1: the lists are missing"
[ "$(q "select count(*) from api_audit where action = 'open311_requests' and cardinality(citizen_ids) > 0")" -ge 1 ] \
    || fail "the Open311 list's audit names no citizen"
ok "a list's audit row holds the ids of the citizens it showed"
api_stop
