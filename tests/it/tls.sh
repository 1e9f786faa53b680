#!/usr/bin/env bash
# TLS (docs/operations.md, "TLS").
#
# 1. civibus-api's own HTTPS: a throwaway root CA, an intermediate and a certificate for
#    localhost made here with openssl; tls.certificate holds the leaf and the intermediate
#    (a chain), tls.key the key (0600). curl with the root only: 200, Strict-Transport-Security
#    on every answer (404 and 413 too), the console's cookie Secure; TLS 1.0 / 1.1 refused,
#    1.2 and 1.3 served; plain HTTP to the port gets no answer; trusted proxies still give the
#    audit the X-Forwarded-For address. Start-up refusals, each `file:line: reason` and exit 2:
#    a missing file, a key open to others (0644), a key that is not the certificate's, a file
#    that is not PEM, a broken certificate; plain HTTP on a non-loopback address without
#    listen.insecure_http (and with it: starts).
# 2. sslmode=verify-full to PostgreSQL: nothing to code (conninfo goes to libpq as it is),
#    proven here. A second throwaway cluster, ssl=on with a certificate for localhost from the
#    test's CA and password authentication over TLS only (hostssl, scram-sha-256). It is the
#    ONE cluster of the tests that listens on TCP (127.0.0.1, a free port picked at run
#    time), not on a Unix socket alone (listen_addresses=''): verify-full checks the
#    server's name against its certificate, which needs a host name, and libpq never uses TLS
#    over a Unix socket. It runs as the postgres user in a fresh folder and is stopped on
#    every exit path (at_exit, run by lib.sh's EXIT trap). The hub and the API connect with
#    host=localhost (hostaddr=127.0.0.1: a root whose localhost is ::1 first) sslmode=verify-full
#    sslrootcert=CA.pem and work; with another CA, or with
#    a server certificate for another name, both refuse to start with libpq's reason
#    (certificate verify failed / does not match host name), and never print the password.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
command -v openssl >/dev/null || fail "openssl is needed"
api_setup tls 5
C=$W/certs; mkdir -p "$C"
osl() { openssl "$@" >>"$C/openssl.log" 2>&1 || fail "openssl $1: $(tail -3 "$C/openssl.log")"; }
# ca NAME SUBJECT [SIGNER]: a CA certificate (self-signed without SIGNER)
ca() {
    osl req -new -newkey rsa:2048 -nodes -keyout "$C/$1.key" -subj "/CN=$2" -out "$C/$1.csr"
    printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$C/$1.ext"
    if [ -z "${3:-}" ]; then osl x509 -req -in "$C/$1.csr" -signkey "$C/$1.key" -days 2 -extfile "$C/$1.ext" -out "$C/$1.pem"
    else osl x509 -req -in "$C/$1.csr" -CA "$C/$3.pem" -CAkey "$C/$3.key" -CAcreateserial -days 2 -extfile "$C/$1.ext" -out "$C/$1.pem"; fi
}
# leaf NAME CN SIGNER: a server certificate for CN (and 127.0.0.1)
leaf() {
    osl req -new -newkey rsa:2048 -nodes -keyout "$C/$1.key" -subj "/CN=$2" -out "$C/$1.csr"
    printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$2" >"$C/$1.ext"
    osl x509 -req -in "$C/$1.csr" -CA "$C/$3.pem" -CAkey "$C/$3.key" -CAcreateserial -days 2 -extfile "$C/$1.ext" -out "$C/$1.pem"
    chmod 600 "$C/$1.key"
}
ca root "civibus test root"; ca inter "civibus test intermediate" root
leaf api localhost inter
cat "$C/api.pem" "$C/inter.pem" >"$C/api-chain.pem"
ca other "another CA"; leaf stranger localhost other     # a key that is not api's

# tls_yaml FILE CERT KEY [ADDRESS] [EXTRA]: a config over the test database
tls_yaml() {
    printf 'postgres:\n  conninfo: "host=%s port=%s user=%s dbname=%s"\nlisten:\n  address: %s\n  port: 0\n%s\naudit:\n  flush_ms: 50\nhttp:\n  max_body_bytes: 4096\n  trusted_proxies: [127.0.0.1]\n' \
        "$PGHOST" "$PGPORT" "$PGUSER" "$DB" "${4:-127.0.0.1}" "${5:-}" >"$1"
    [ -n "$2" ] && printf 'tls:\n  certificate: %s\n  key: %s\n' "$2" "$3" >>"$1"
}
# refused FILE PATTERN WHAT: exit 2 and `FILE:N: ...PATTERN` on stderr
refused() {
    if [ -n "${NOLEAK:-}" ]; then     # GnuTLS 3.7.9 leaks the certificate it failed to parse
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$API" --config "$1" >"$W/refused.out" 2>&1 &
    else "$API" --config "$1" >"$W/refused.out" 2>&1 & fi
    local p=$!
    ( sleep 10; kill $p 2>/dev/null ) & local k=$!
    wait $p; local rc=$?; kill $k 2>/dev/null
    [ $rc -eq 2 ] || fail "$3: exit $rc, expected 2: $(cat "$W/refused.out")"
    grep -qE "^$1:[0-9]+: .*$2" "$W/refused.out" || fail "$3: not file:line: $(cat "$W/refused.out")"
}
tls_yaml "$W/t1.yaml" "$C/missing.pem" "$C/api.key"; refused "$W/t1.yaml" "'certificate': cannot read" "a missing certificate"
chmod 644 "$C/api.key"; tls_yaml "$W/t2.yaml" "$C/api-chain.pem" "$C/api.key"; refused "$W/t2.yaml" "open to others \(mode 644\): chmod 600" "a key open to others"
chmod 600 "$C/api.key"
tls_yaml "$W/t3.yaml" "$C/api-chain.pem" "$C/stranger.key"; refused "$W/t3.yaml" "'tls': the certificate and key are refused.*do not match" "a key of another certificate"
echo "not a certificate" >"$C/junk.pem"; tls_yaml "$W/t4.yaml" "$C/junk.pem" "$C/api.key"; refused "$W/t4.yaml" "holds no PEM certificate" "junk"
sed '3s/./X/g' "$C/api.pem" >"$C/broken.pem"; tls_yaml "$W/t5.yaml" "$C/broken.pem" "$C/api.key"; NOLEAK=1 refused "$W/t5.yaml" "are refused.*DER" "a broken certificate"
tls_yaml "$W/t6.yaml" "$C/api.key" "$C/api.key"; refused "$W/t6.yaml" "no PEM certificate" "a key as the certificate"
tls_yaml "$W/t7.yaml" "" "" 0.0.0.0; refused "$W/t7.yaml" "plain HTTP only on loopback; give tls: or set listen.insecure_http: true" "plain HTTP on 0.0.0.0"
grep -q "t7.yaml:4:" "$W/refused.out" || fail "the refusal names listen.address's line: $(cat "$W/refused.out")"
tls_yaml "$W/t8.yaml" "" "" 0.0.0.0 "  insecure_http: true"
"$API" --config "$W/t8.yaml" >"$W/t8.log" 2>&1 & P8=$!
for i in $(seq 1 50); do grep -q "listening on" "$W/t8.log" && break; sleep 0.1; done
kill $P8; wait $P8
grep -q "listening on http://0.0.0.0:" "$W/t8.log" || fail "insecure_http: true did not start: $(cat "$W/t8.log")"
ok "start-up refusals with file:line (missing, 0644 key, mismatched key, junk, broken, plain HTTP on 0.0.0.0); insecure_http starts"

tls_yaml "$W/tls.yaml" "$C/api-chain.pem" "$C/api.key"
"$API" --config "$W/tls.yaml" >"$W/tls.log" 2>&1 & TPID=$!
at_exit 'kill $TPID 2>/dev/null'
for i in $(seq 1 50); do grep -q "listening on" "$W/tls.log" && break; sleep 0.1; done
TP=$(sed -n 's/.*listening on https:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/tls.log")
[ -n "$TP" ] || fail "TLS API did not start: $(cat "$W/tls.log")"
TU=https://localhost:$TP
sc() { curl -s --max-time 5 --cacert "$C/root.pem" -o "$W/tbody" -D "$W/th" -w '%{http_code}' "$@"; }
[ "$(sc "$TU/healthz")" = 200 ] || fail "healthz over TLS: $(cat "$W/tbody")"
grep -qi '^Strict-Transport-Security: max-age=31536000' "$W/th" || fail "no HSTS: $(cat "$W/th")"
[ "$(sc "$TU/nowhere")" = 404 ] && grep -qi '^Strict-Transport-Security' "$W/th" || fail "no HSTS on a 404"
[ "$(sc -H "Authorization: Bearer $T_SUP" "$TU/v1/citizens?name=dupont")" = 200 ] || fail "search over TLS"
[ "$(sc -H 'Content-Type: application/json' --data-binary @<(head -c 6000 /dev/zero | tr '\0' a) "$TU/v1/sessions")" = 413 ] \
    && grep -qi '^Strict-Transport-Security' "$W/th" || fail "413 over TLS"
[ "$(sc -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @<(head -c 6000 /dev/zero | tr '\0' a) "$TU/v1/sessions")" = 413 ] \
    || fail "a chunked body over the limit over TLS: $(cat "$W/th")"
[ "$(sc -H 'Content-Type: application/json' -d "{\"token\":\"$T_SUP\"}" "$TU/v1/sessions")" = 201 ] || fail "sign-in over TLS: $(cat "$W/tbody")"
grep -i '^Set-Cookie:' "$W/th" | grep -q '; Secure' || fail "the session cookie is not Secure over TLS: $(grep -i set-cookie "$W/th")"
curl -s --max-time 5 -o /dev/null "$TU/healthz" && fail "a certificate not checked against the root was accepted"
ok "HTTPS with a chain: healthz, search, 404 and 413 with HSTS, Secure cookie; an unknown root refused"

# protocol versions: 1.2 and 1.3 served, 1.0 and 1.1 refused by the server (the client allows them)
for v in tls1_2 tls1_3; do
    echo | openssl s_client -connect 127.0.0.1:$TP -servername localhost -CAfile "$C/root.pem" -$v >"$W/s_$v" 2>&1 \
        && grep -q "Verify return code: 0" "$W/s_$v" || fail "$v refused: $(tail -5 "$W/s_$v")"
done
for v in tls1 tls1_1; do
    echo | openssl s_client -connect 127.0.0.1:$TP -servername localhost -$v -cipher 'DEFAULT@SECLEVEL=0' >"$W/s_$v" 2>&1 \
        && fail "$v accepted: $(grep -E 'Protocol|Cipher' "$W/s_$v" | head -3)"
    grep -qE "^New, \(NONE\)|no protocols available|alert protocol version|wrong version|handshake failure|unsupported protocol" "$W/s_$v" \
        || fail "$v: not a refused handshake: $(tail -5 "$W/s_$v")"
done
out=$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$TP/healthz"); [ "$out" = 200 ] && fail "plain HTTP answered on the TLS port"
ok "TLS 1.2 and 1.3 served, 1.0 and 1.1 refused, plain HTTP gets no answer"

# trusted proxies over TLS: the audit's client is X-Forwarded-For's
before=$(q "select count(*) from api_audit where client = '198.51.100.7'")
[ "$(sc -H "Authorization: Bearer $T_SUP" -H 'X-Forwarded-For: 198.51.100.7' "$TU/v1/citizens?name=dupont")" = 200 ] || fail "search via proxy"
for i in $(seq 1 30); do [ "$(q "select count(*) from api_audit where client = '198.51.100.7'")" -gt "$before" ] && break; sleep 0.1; done
[ "$(q "select count(*) from api_audit where client = '198.51.100.7'")" -gt "$before" ] || fail "X-Forwarded-For not honoured over TLS"
# /metrics: loopback only here (no http.metrics_from); a client through the proxy gets 404
[ "$(sc "$TU/metrics")" = 200 ] && grep -q '^civibus_api_primary_up 1$' "$W/tbody" || fail "/metrics from loopback"
[ "$(sc -H 'X-Forwarded-For: 198.51.100.7' "$TU/metrics")" = 404 ] || fail "/metrics answered a client off loopback"
grep -q civibus "$W/tbody" && fail "/metrics' 404 holds metrics"
kill -TERM $TPID; wait $TPID || fail "TLS API exit $?"
ok "trusted proxy's X-Forwarded-For in the audit over TLS; /metrics 404 to a client off loopback; clean stop"

# ---- 2. PostgreSQL with sslmode=verify-full ----
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else (cd / && "$@"); fi; }
T=$(mktemp -d /tmp/civibus-tlspg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$T"
chmod 700 "$T"
at_exit "as_pg '$PG_BIN/pg_ctl' -D '$T/data' -m immediate stop >/dev/null 2>&1; rm -rf '$T'"
PW=$(openssl rand -hex 12)
echo "$PW" >"$T/pw"; [ "$(id -u)" = 0 ] && chown postgres "$T/pw"
as_pg "$PG_BIN/initdb" -D "$T/data" -U civibus --auth-local=trust --auth-host=scram-sha-256 --pwfile="$T/pw" >"$W/initdb.log" 2>&1 \
    || fail "initdb: $(tail -3 "$W/initdb.log")"
leaf pgsrv localhost root; leaf pgother other.example root
install_cert() {   # the server's certificate and key, readable by postgres only
    cp "$C/$1.pem" "$T/data/server.crt"; cp "$C/$1.key" "$T/data/server.key"
    [ "$(id -u)" = 0 ] && chown postgres "$T/data/server.crt" "$T/data/server.key"
    chmod 600 "$T/data/server.key"
}
install_cert pgsrv
PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >>"$T/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT2
unix_socket_directories = '$T'
ssl = on
ssl_min_protocol_version = 'TLSv1.2'
fsync = on
synchronous_commit = on
CONF
printf 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n' >"$T/data/pg_hba.conf"
[ "$(id -u)" = 0 ] && chown postgres "$T/data/pg_hba.conf"
as_pg "$PG_BIN/pg_ctl" -D "$T/data" -l "$T/server.log" -w start >/dev/null || fail "the TLS cluster did not start: $(tail -5 "$T/server.log")"
psql -X -q -h "$T" -p "$PORT2" -U civibus -d postgres -c "CREATE DATABASE tlsdb" || fail "create tlsdb"
ok "a cluster with ssl=on on 127.0.0.1:$PORT2 (hostssl, scram)"

DSN="host=localhost hostaddr=127.0.0.1 port=$PORT2 user=civibus password=$PW dbname=tlsdb sslmode=verify-full sslrootcert=$C/root.pem"
sed "s|^  conninfo: .*|  conninfo: \"$DSN\"|" "$W/hub.yaml" >"$W/hub-tls.yaml"
"$HUB" --config "$W/hub-tls.yaml" >"$W/hub-tls.log" 2>&1 & HP=$!
at_exit 'kill $HP 2>/dev/null'
for i in $(seq 1 100); do grep -q "listening for adapters" "$W/hub-tls.log" && break; kill -0 $HP 2>/dev/null || break; sleep 0.1; done
grep -q "listening for adapters" "$W/hub-tls.log" || fail "hub over verify-full: $(tail -5 "$W/hub-tls.log")"
[ "$(psql -X -A -t -h "$T" -p "$PORT2" -U civibus -d tlsdb -c "select count(*) from schema_migrations")" -gt 5 ] || fail "migrations not applied over TLS"
kill -TERM $HP; wait $HP
[ "$(psql -X -A -t -h "$T" -p "$PORT2" -U civibus -d tlsdb -c "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) where s.ssl")" -ge 0 ] || true
printf 'postgres:\n  conninfo: "%s"\nlisten:\n  port: 0\n' "$DSN" >"$W/api-pg.yaml"
"$API" --config "$W/api-pg.yaml" >"$W/api-pg.log" 2>&1 & AP=$!
at_exit 'kill $AP 2>/dev/null'
for i in $(seq 1 50); do grep -q "listening on" "$W/api-pg.log" && break; sleep 0.1; done
P3=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/api-pg.log")
[ -n "$P3" ] || fail "API over verify-full: $(cat "$W/api-pg.log")"
[ "$(curl -s -o "$W/b3" -w '%{http_code}' "http://127.0.0.1:$P3/healthz")" = 200 ] || fail "healthz over verify-full: $(cat "$W/b3")"
# the API's connections are TLS ones (pg_stat_ssl), TLS 1.2 or 1.3
ssl=$(psql -X -A -t -h "$T" -p "$PORT2" -U civibus -d tlsdb -c "select string_agg(distinct s.version, ',') from pg_stat_ssl s join pg_stat_activity a using (pid) where a.application_name = 'civibus-api-health' and s.ssl")
case "$ssl" in TLSv1.2|TLSv1.3) ;; *) fail "the API's connection is not TLS: '$ssl'" ;; esac
kill -TERM $AP; wait $AP
ok "hub and API over sslmode=verify-full (the API's connections $ssl)"

# refusals: another CA; a certificate for another name
expect_refusal() {   # WHAT PATTERN CONNINFO
    printf 'postgres:\n  conninfo: "%s"\nlisten:\n  port: 0\n' "$3" >"$W/api-bad.yaml"
    timeout 20 "$API" --config "$W/api-bad.yaml" >"$W/api-bad.log" 2>&1; local rc=$?
    [ $rc -eq 1 ] || fail "$1: API exit $rc: $(cat "$W/api-bad.log")"
    grep -q "cannot connect to PostgreSQL.*$2" "$W/api-bad.log" || fail "$1: API's reason: $(cat "$W/api-bad.log")"
    sed "s|^  conninfo: .*|  conninfo: \"$3\"|" "$W/hub.yaml" >"$W/hub-bad.yaml"
    timeout 20 "$HUB" --config "$W/hub-bad.yaml" >"$W/hub-bad.log" 2>&1; rc=$?
    [ $rc -ne 0 ] || fail "$1: hub started"
    grep -q "$2" "$W/hub-bad.log" || fail "$1: hub's reason: $(tail -5 "$W/hub-bad.log")"
    grep -q "$PW" "$W/api-bad.log" "$W/hub-bad.log" && fail "$1: the password is printed"
    return 0
}
expect_refusal "another CA" "certificate verify failed" "${DSN/sslrootcert=$C\/root.pem/sslrootcert=$C/other.pem}"
as_pg "$PG_BIN/pg_ctl" -D "$T/data" -w stop >/dev/null
install_cert pgother
as_pg "$PG_BIN/pg_ctl" -D "$T/data" -l "$T/server.log" -w start >/dev/null || fail "restart with another name"
expect_refusal "a certificate for other.example" 'does not match host name "localhost"' "$DSN"
ok "another CA and another name: hub and API refuse to start with libpq's reason, no password printed"
