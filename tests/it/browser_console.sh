#!/usr/bin/env bash
# The agents' console signs in once (issue 21, item 1; docs/web.md "Signing in"), tested
# with curl as a browser would behave, against the real API and PostgreSQL:
#   - a token exchanged for a session: Set-Cookie civibus_session (HttpOnly,
#     SameSite=Strict, Path=/; Secure behind a TLS proxy), the CSRF token; only the
#     session id's SHA-256 stored; the sign-in audited;
#   - the cookie authenticates reads as the token would, and the role's rules still hold
#     (an agent of one service gets 403 on another's queue);
#   - a write from a session without X-CSRF-Token (what a forged cross-site form sends) is
#     403, with it 201;
#   - the session ends: logout (cookie cleared, row gone), idle expiry, absolute expiry,
#     the token revoked; a forged or altered cookie is refused; a wrong token gets 401
#     and stores nothing;
#   - then in Debian's chromium (tests/browser/console.mjs): sign in, a citizen found as you
#     type, one timeline across services where another service's summary, channel and code
#     never reach the browser, the service filter, 360 px, logout; axe-core on each view.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
API_YAML_EXTRA="web:
  dir: $ROOT/web
  session_idle_min: 30
  session_max_hours: 10" api_setup browser-console 30
J=$W/jar
signin() {   # signin TOKEN [extra curl args]: status in S, headers in $W/h, body in $W/body
    local t=$1; shift
    S=$(curl -s -D "$W/h" -o "$W/body" -w '%{http_code}' -c "$J" -H 'Content-Type: application/json' \
        --data-binary "{\"token\": \"$t\"}" "$@" "$U/v1/sessions")
}
cget() { S=$(curl -s -o "$W/body" -w '%{http_code}' -b "$J" "$@"); }
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }

# ---- signing in --------------------------------------------------------------------------------
signin "$T_DECH"
[ "$S" = 201 ] || fail "sign-in: $S $(cat "$W/body")"
cookie=$(tr -d '\r' <"$W/h" | sed -n 's/^[Ss]et-[Cc]ookie: //p')
case "$cookie" in civibus_session=*"; Path=/; HttpOnly; SameSite=Strict; Max-Age=36000") ;;
    *) fail "cookie attributes: $cookie" ;; esac
SID=$(echo "$cookie" | sed 's/^civibus_session=\([0-9a-f]*\);.*/\1/')
[ ${#SID} = 64 ] || fail "session id: $SID"
CSRF=$(js 'd["csrf_token"]')
[ "$(js 'd["role"] + "," + d["service"] + "," + str(d["idle_minutes"])')" = "agent,dechets,30" ] || fail "session: $(cat "$W/body")"
[ "$(q "select count(*) from api_sessions where id_hash = encode(sha256('$SID'::bytea), 'hex')")" = 1 ] \
    && [ "$(q "select count(*) from api_sessions where id_hash = '$SID'")" = 0 ] || fail "the session id is not stored hashed"
sleep 0.3
[ "$(q "select count(*) from api_audit where action = 'session_open'")" = 1 ] || fail "sign-in not audited"
grep -q "$SID\|$T_DECH" "$W/api.log" && fail "a session id or a token in the API's log"
ok "a token exchanged for a session: HttpOnly SameSite=Strict cookie, CSRF token, only its SHA-256 stored, audited"

signin "$T_DECH" -H 'X-Forwarded-Proto: https'
tr -d '\r' <"$W/h" | grep -q '^Set-Cookie: .*; Secure$' || fail "no Secure behind a TLS proxy: $(cat "$W/h")"
signin "0000000000000000000000000000000000000000000000000000000000000000"
[ "$S" = 401 ] || fail "a wrong token: $S"
signin "not a token"
[ "$S" = 401 ] || fail "garbage: $S"
[ "$(q "select count(*) from api_sessions")" = 2 ] || fail "a refused sign-in stored a session"
signin "$T_DECH"                      # the jar holds this one from now on
SID=$(tr -d '\r' <"$W/h" | sed -n 's/^Set-Cookie: civibus_session=\([0-9a-f]*\);.*/\1/p')
CSRF=$(js 'd["csrf_token"]')
ok "Secure behind a TLS proxy; a wrong token or garbage gets 401 and stores nothing"

# ---- reading and writing with the session ------------------------------------------------------
cget "$U/v1/session"
[ "$S" = 200 ] && [ "$(js 'd["csrf_token"]')" = "$CSRF" ] || fail "GET /v1/session: $S $(cat "$W/body")"
cget "$U/v1/services/dechets/queue"
[ "$S" = 200 ] || fail "own queue with the session: $S"
cget "$U/v1/services/voirie/queue"
[ "$S" = 403 ] || fail "another service's queue with an agent's session: $S"
get /v1/session "$T_DECH"
[ "$S" = 404 ] || fail "GET /v1/session with a bearer token: $S"
ok "the cookie reads as its token would, with the same rules (another service's queue: 403)"

REQ='{"channel": "guichet", "category": "encombrants", "description": "Un canapé", "citizen": {"last_name": "MARTIN", "first_name": "Léa"}}'
cget -H 'Content-Type: application/json' --data-binary "$REQ" "$U/v1/requests"
[ "$S" = 403 ] && [ "$(js 'd["error"]["code"]')" = csrf ] || fail "a write without X-CSRF-Token: $S $(cat "$W/body")"
cget -H 'Content-Type: application/json' -H "X-CSRF-Token: ${CSRF:0:63}$([ "${CSRF:63:1}" = a ] && echo b || echo a)" --data-binary "$REQ" "$U/v1/requests"
[ "$S" = 403 ] || fail "a write with a wrong X-CSRF-Token: $S"
n=$(q "select count(*) from requests")
cget -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" --data-binary "$REQ" "$U/v1/requests"
[ "$S" = 201 ] && [ "$(q "select count(*) from requests")" = $((n + 1)) ] || fail "a write with X-CSRF-Token: $S $(cat "$W/body")"
ok "a write from a session: 403 without its CSRF token or with a wrong one (a forged form), 201 with it"

# ---- forged cookies ------------------------------------------------------------------------------
last=${SID:63:1}; other=$([ "$last" = a ] && echo b || echo a)
for c in "civibus_session=${SID:0:63}$other" "civibus_session=$(printf '%064d' 0)" "civibus_session=../../x" \
         "civibus_session=$SID$SID" "other=1; civibus_session=" ; do
    S=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $c" "$U/v1/services/dechets/queue")
    [ "$S" = 401 ] || fail "a forged cookie '$c': $S"
done
S=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: a=b; civibus_session=$SID; c=d" "$U/v1/services/dechets/queue")
[ "$S" = 200 ] || fail "the cookie among others: $S"
ok "an altered, zero, oversized or empty cookie is 401; among other cookies it is found"

# ---- the session ends ----------------------------------------------------------------------------
q "update api_sessions set last_seen_at = now() - interval '31 minutes' where id_hash = encode(sha256('$SID'::bytea), 'hex')"
cget "$U/v1/session"; [ "$S" = 401 ] || fail "idle for 31 minutes: $S"
signin "$T_DECH"; SID=$(tr -d '\r' <"$W/h" | sed -n 's/^Set-Cookie: civibus_session=\([0-9a-f]*\);.*/\1/p'); CSRF=$(js 'd["csrf_token"]')
q "update api_sessions set expires_at = now() - interval '1 second' where id_hash = encode(sha256('$SID'::bytea), 'hex')"
cget "$U/v1/session"; [ "$S" = 401 ] || fail "past its absolute expiry: $S"
signin "$T_DECH"; SID=$(tr -d '\r' <"$W/h" | sed -n 's/^Set-Cookie: civibus_session=\([0-9a-f]*\);.*/\1/p'); CSRF=$(js 'd["csrf_token"]')
cget -X POST "$U/v1/session/logout"; [ "$S" = 403 ] || fail "logout without CSRF: $S"
S=$(curl -s -D "$W/h" -o "$W/body" -w '%{http_code}' -b "$J" -c "$J" -X POST -H "X-CSRF-Token: $CSRF" "$U/v1/session/logout")
[ "$S" = 200 ] || fail "logout: $S"
tr -d '\r' <"$W/h" | grep -q '^Set-Cookie: civibus_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0$' || fail "logout does not clear the cookie"
[ "$(q "select count(*) from api_sessions where id_hash = encode(sha256('$SID'::bytea), 'hex')")" = 0 ] || fail "logout left the session"
S=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: civibus_session=$SID" "$U/v1/session")
[ "$S" = 401 ] || fail "the cookie after logout: $S"
signin "$T_DECH"; SID=$(tr -d '\r' <"$W/h" | sed -n 's/^Set-Cookie: civibus_session=\([0-9a-f]*\);.*/\1/p')
"$CTL" --config "$W/api.yaml" token revoke "$(q "select token_id from api_sessions where id_hash = encode(sha256('$SID'::bytea), 'hex')")" >/dev/null 2>&1 \
    || q "update api_tokens set revoked_at = now() where id = (select token_id from api_sessions where id_hash = encode(sha256('$SID'::bytea), 'hex'))"
cget "$U/v1/session"; [ "$S" = 401 ] || fail "the token revoked, its session still works: $S"
ok "a session ends: idle 30 minutes, past its absolute expiry, at logout (cookie cleared, row gone), its token revoked"

# ---- the console in the browser ------------------------------------------------------------------
T_B=$("$CTL" --config "$W/api.yaml" token create --role agent --service dechets 2>/dev/null)
# a citizen of the waste service who also called the roads service and wrote to the civil
# registry: registered at the counter by a supervisor, as the front office does
CIT=$(q "select citizen_id from requests where service = 'dechets' and citizen_id is not null order by id limit 1")
q "insert into service_categories (category, service) values ('nid_de_poule', 'voirie'), ('acte_naissance', 'etat_civil')
   on conflict do nothing"
for b in '"channel": "telephone", "category": "nid_de_poule", "service": "voirie", "description": "Un trou devant le 4 rue des Lilas"' \
         '"channel": "courrier", "category": "acte_naissance", "service": "etat_civil", "description": "Copie intégrale demandée"'; do
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $T_SUP" -H 'Content-Type: application/json' \
        --data-binary "{$b, \"citizen_id\": $CIT}" "$U/v1/requests")
    [ "$S" = 201 ] || fail "registering a request of another service: $S $(cat "$W/body")"
done
row=$(q "select r.citizen_id || '|' || count(*) || '|' || count(*) filter (where r.service = 'dechets') || '|' ||
                count(distinct r.service)
         from requests r where r.citizen_id = $CIT group by r.citizen_id")
[ -n "$row" ] || fail "no citizen with requests in two services, one of them dechets, in the demo data"
IFS='|' read -r CIT NREQ NOWN NSERV <<<"$row"
NAME=$(q "select identity->>'family_name' from citizen_sources where citizen_id = $CIT and identity->>'family_name' is not null limit 1")
[ -n "$NAME" ] || fail "citizen $CIT has no name"
B=$ROOT/tests/browser
"$B/install.sh" "$W/npm.log" 2>"$W/npm.err" || fail "$(cat "$W/npm.err")"
at_exit "pkill -f -- '--user-data-dir=/tmp/playwright' 2>/dev/null; true"
BASE_URL=$U TOKEN=$T_B SERVICE=dechets SERVICE_FR="Propreté et déchets" NAME=$NAME CITIZEN=$CIT \
    REQUESTS=$NREQ OWN=$NOWN SERVICES=$NSERV OUT_DIR=$B/out timeout 240 node "$B/console.mjs" >"$W/browser.log" 2>&1
rc=$?
cat "$W/browser.log"
[ $rc -eq 0 ] || fail "the browser test (console.mjs) failed: rc $rc"
ok "the console in chromium: sign-in, search, one timeline, hidden fields, filter, 360 px, logout"
