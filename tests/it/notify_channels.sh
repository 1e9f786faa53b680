#!/usr/bin/env bash
# civibus-notify's other channels (docs/notifications.md) against real PostgreSQL, hub,
# Postfix + Dovecot and a real HTTP receiver (a Python server on a loopback port that
# records every POST's headers and body and answers the codes the test queues):
#   a. webhooks: one POST per event, signed X-Civibus-Signature: sha256=HMAC over the exact
#      body; no e-mail, name or phone in it; a 500 retried then delivered once; a 404
#      failed for good; the connection closed after the body, or kill -9 while the POST
#      waits for its answer: unknown, never again;
#   b. SMS through the gateway: the citizen with a phone and sms 'immediate' gets one SMS
#      per status change with the tracking code, the token from token_file; a 503 retried;
#      a placeholder (06 00 00 00 00), a shared and a garbage phone skipped with the reason;
#   c. a citizen's daily digest: no mail at once, one mail at digest_at listing the changes;
#   d. the services' digest: one mail per service at digest.at with the overdue and
#      soon-due open requests, once a day even across a restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/notify_lib.sh"
notify_setup notify_channels

# --- the receiver: POST /NAME appends {headers, body, code} to $W/posts.NAME; the answer is
# the first line of $W/codes.NAME (consumed; 0: no answer, the connection closed; -1: no answer
# until $W/release exists), else 200
cat >"$W/recv.py" <<'PY'
import http.server, json, os, sys, threading, time
W = sys.argv[1]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        name = self.path.strip('/')
        code, cf = 200, os.path.join(W, 'codes.' + name)
        with lock:
            if os.path.exists(cf):
                lines = open(cf).read().split()
                if lines:
                    code = int(lines[0])
                    open(cf, 'w').write('\n'.join(lines[1:]))
            rec = {'headers': {k.lower(): v for k, v in self.headers.items()}, 'body': body.decode('latin-1'),
                   'code': code}
            with open(os.path.join(W, 'posts.' + name), 'a') as f:
                f.write(json.dumps(rec) + '\n')
        if code == 0:            # the body read, then the connection closed without an answer
            self.close_connection = True
            return
        if code < 0:             # no answer until $W/release exists (the test kills the sender meanwhile)
            for i in range(300):
                if os.path.exists(os.path.join(W, 'release')):
                    break
                time.sleep(0.1)
            code = 200
        try:
            self.send_response(code)
            self.send_header('Content-Length', '2')
            self.end_headers()
            self.wfile.write(b'{}')
        except OSError:
            pass
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
s.daemon_threads = True
open(os.path.join(W, 'recv.port.tmp'), 'w').write(str(s.server_address[1]))
os.rename(os.path.join(W, 'recv.port.tmp'), os.path.join(W, 'recv.port'))
s.serve_forever()
PY
python3 "$W/recv.py" "$W" 2>"$W/recv.err" &
RECV_PID=$!
at_exit 'kill $RECV_PID 2>/dev/null'
for i in $(seq 1 50); do [ -s "$W/recv.port" ] && break; sleep 0.1; done
PORT=$(cat "$W/recv.port") || fail "the receiver did not start: $(cat "$W/recv.err")"

head -c 32 /dev/urandom | base64 >"$W/wh_secret"; chmod 600 "$W/wh_secret"
printf 'tok-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$W/sms_token"; chmod 600 "$W/sms_token"
TOKEN=$(head -1 "$W/sms_token")
CHANNELS="webhooks:
  - name: sig
    url: http://127.0.0.1:$PORT/hook
    secret_file: wh_secret
sms:
  url: http://127.0.0.1:$PORT/sms
  token_file: sms_token
  default: off"
NOTIFY_YAML_EXTRA=$CHANNELS notify_config

ledger() {   # ledger CODE CHANNEL [TEMPLATE]: state,last_error,attempts of each row, by id
    q "SELECT string_agg(state || ',' || COALESCE(last_error, '') || ',' || attempts, ' ' ORDER BY n.id)
       FROM notifications n JOIN requests r ON r.id = n.request_id
       WHERE r.tracking_code = '$1' AND n.channel = '$2' AND ('${3:-}' = '' OR n.template = '${3:-}')"
}
posts() {    # posts NAME PYTHON-FILTER-ON-p (p: {headers, body, code, j: the body's JSON}): a count
    python3 - "$W/posts.$1" "$2" <<'PY'
import json, os, sys
ps = [json.loads(l) for l in open(sys.argv[1])] if os.path.exists(sys.argv[1]) else []
for p in ps:
    p['j'] = json.loads(p['body'].encode('latin-1').decode('utf-8'))
print(sum(1 for p in ps if eval(sys.argv[2])))
PY
}
wait_posts() {   # wait_posts NAME FILTER N
    local i
    for i in $(seq 1 100); do [ "$(posts "$1" "$2")" -ge "$3" ] && return 0; sleep 0.1; done
    fail "$(posts "$1" "$2") POSTs to /$1 match $2, not $3"
}
# sets the phone the citizen's identity holds, as a source's record would bring it
set_phone() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -v code="$1" -v phone="$2" >/dev/null <<'SQL' || fail "set_phone"
UPDATE citizen_sources cs SET identity = cs.identity || jsonb_build_object('phone', :'phone')
FROM requests r WHERE r.tracking_code = :'code' AND cs.citizen_id = r.citizen_id;
SQL
}
pref() {     # pref CODE CHANNEL MODE
    q "INSERT INTO notification_preferences (citizen_id, channel, mode) SELECT citizen_id, '$2', '$3'
       FROM requests WHERE tracking_code = '$1'" >/dev/null
}

# a bad line of the new blocks stops the start with file:line
bad() {   # bad SED-EXPRESSION EXPECTED [EXTRA-YAML]
    sed "$1" "$W/notify.yaml" >"$W/bad.yaml"
    [ -n "${3:-}" ] && printf '%s\n' "$3" >>"$W/bad.yaml"
    "$NOTIFY" --config "$W/bad.yaml" --check-config >"$W/check.out" 2>&1; local rc=$?
    [ $rc = 2 ] && grep -q "bad.yaml:[0-9]*: .*$2" "$W/check.out" || fail "bad config ($2): $rc $(cat "$W/check.out")"
}
bad "s|url: http://127.0.0.1:$PORT/hook|url: ftp://127.0.0.1/hook|" "url is http:// or https://"
bad "s|default: off|default: parfois|" "default is off, immediate or digest"
bad "s|name: sig|name: Sig Ville|" "name is up to 40 of a-z 0-9 _ -"
bad "" "the supervisor's e-mail address" "digest: {at: \"07:30\", services: {dechets: \"chef <x@y>, z@w\"}}"
bad "" "digest needs services" "digest: {at: \"07:30\"}"
chmod 644 "$W/sms_token"
bad "" "readable by others than its owner"
chmod 600 "$W/sms_token"
"$NOTIFY" --config "$W/notify.yaml" --check-config >"$W/check.out" 2>&1 || fail "the test's config: $(cat "$W/check.out")"
ok "bad webhook, sms and digest lines stop the start with file:line"

# ----------------------------------------------------------------------------- a. webhooks
notify_start
A=$(register citoyen+wa@civibus.test)
settle; wait_posts hook "p['j']['tracking_code'] == '$A'" 1
event "$A" in_progress
settle; wait_posts hook "p['j']['tracking_code'] == '$A'" 2
echo 500 >"$W/codes.hook"
event "$A" resolved
settle 20; wait_posts hook "p['j']['tracking_code'] == '$A' and p['code'] == 200" 3
echo 404 >"$W/codes.hook"
B=$(register citoyen+wb@civibus.test)
settle; wait_posts hook "p['j']['tracking_code'] == '$B'" 1
echo 0 >"$W/codes.hook"
C=$(register citoyen+wc@civibus.test)
settle; wait_posts hook "p['j']['tracking_code'] == '$C'" 1
sleep 2   # a retry would come within retry.base_s
[ "$(ledger "$C" webhook)" = "unknown,curl_52,1" ] && [ "$(posts hook "p['j']['tracking_code'] == '$C'")" = 1 ] \
    || fail "no answer after the body: $(ledger "$C" webhook), $(posts hook "p['j']['tracking_code'] == '$C'") POSTs"
[ "$(ledger "$A" webhook)" = "sent,,1 sent,,1 sent,,2" ] || fail "webhook ledger of A: $(ledger "$A" webhook)"
[ "$(ledger "$B" webhook)" = "failed,http_404,1" ] || fail "webhook ledger of B (404): $(ledger "$B" webhook)"
python3 - "$W/posts.hook" "$W/wh_secret" "$A" "$B" <<'PY' || fail "the webhooks' POSTs"
import json, hmac, hashlib, sys
ps = [json.loads(l) for l in open(sys.argv[1])]
key = open(sys.argv[2], 'rb').read().rstrip()
A, B = sys.argv[3], sys.argv[4]
for p in ps:
    body = p['body'].encode('latin-1')
    want = 'sha256=' + hmac.new(key, body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(p['headers'].get('x-civibus-signature', ''), want), p['headers']
    assert p['headers']['content-type'] == 'application/json', p['headers']
    # one byte changed: the signature no longer holds (what a receiver checks)
    assert 'sha256=' + hmac.new(key, body.replace(b'"', b"'", 1), hashlib.sha256).hexdigest() != want
    j = json.loads(body)
    assert set(j) == {'notification', 'event', 'template', 'tracking_code', 'status', 'service', 'category',
                      'status_page'}, sorted(j)
    assert '@' not in p['body'] and 'Test' not in p['body'] and 'citizen' not in p['body'], p['body']
    assert j['status_page'] == 'https://demarches.civibus.test/suivi/' + j['tracking_code'], j
a = [dict(json.loads(p['body']), code=p['code']) for p in ps]
ok_a = [x for x in a if x['tracking_code'] == A and x['code'] == 200]
assert [x['template'] for x in ok_a] == ['accuse_reception', 'changement_statut', 'changement_statut'], ok_a
assert [x['status'] for x in ok_a] == ['received', 'in_progress', 'resolved'], ok_a
assert len({x['event'] for x in ok_a}) == 3, 'one POST per event'
res = [x for x in a if x['tracking_code'] == A and x['status'] == 'resolved']
assert [x['code'] for x in res] == [500, 200] and res[0]['notification'] == res[1]['notification'], res
assert [x['code'] for x in a if x['tracking_code'] == B] == [404], 'a 404 is not retried'
PY
# kill -9 while a POST waits for its answer: unknown at the restart, never POSTed again
echo -1 >"$W/codes.hook"
K=$(register citoyen+wk@civibus.test)
wait_posts hook "p['j']['tracking_code'] == '$K'" 1
[ "$(ledger "$K" webhook)" = "sending,,1" ] || fail "the POST in flight: $(ledger "$K" webhook)"
notify_kill9
touch "$W/release"
notify_start
settle; sleep 2
[ "$(ledger "$K" webhook)" = "unknown,interrupted,1" ] && [ "$(posts hook "p['j']['tracking_code'] == '$K'")" = 1 ] \
    || fail "after kill -9: $(ledger "$K" webhook), $(posts hook "p['j']['tracking_code'] == '$K'") POSTs"
grep -q "notify: 1 interrupted send(s) recorded unknown" "$W/notify.log" || fail "the restart does not count it"
ok "webhooks: one POST per event, HMAC-SHA256 over the exact body, no personal data; a 500 retried once then delivered, a 404 failed for good, no answer after the body or kill -9 during the POST: unknown, never sent again"

# ----------------------------------------------------------------------------- b. SMS
notify_stop
S=$(register citoyen+sms@civibus.test);  set_phone "$S" "06 12 34 56 78"; pref "$S" sms immediate
Z=$(register citoyen+zero@civibus.test); set_phone "$Z" "0600000000";     pref "$Z" sms immediate
G=$(register citoyen+abc@civibus.test);  set_phone "$G" "abc";            pref "$G" sms immediate
O=$(register citoyen+off@civibus.test);  set_phone "$O" "06 98 76 54 32"     # no preference: default off
M=$(register citoyen+mairie@civibus.test); set_phone "$M" "01 23 45 67 01"; pref "$M" sms immediate
q "INSERT INTO shared_identifiers (kind, value_hash, holders) VALUES ('phone', cv_identifier_hash('phone', '+33123456701'), 40)" >/dev/null
notify_start
settle; wait_posts sms "'$S' in p['j']['text']" 1
event "$S" in_progress
settle; wait_posts sms "'$S' in p['j']['text']" 2
echo 503 >"$W/codes.sms"
event "$S" resolved
settle 20; wait_posts sms "'$S' in p['j']['text'] and p['code'] == 200" 3
sleep 1
[ "$(ledger "$S" sms)" = "sent,,1 sent,,1 sent,,2" ] || fail "sms ledger: $(ledger "$S" sms)"
[ "$(ledger "$Z" sms)" = "skipped,placeholder_phone,0" ] || fail "placeholder phone: $(ledger "$Z" sms)"
[ "$(ledger "$G" sms)" = "skipped,bad_address,0" ] || fail "garbage phone: $(ledger "$G" sms)"
[ "$(ledger "$M" sms)" = "skipped,shared_phone,0" ] || fail "shared phone: $(ledger "$M" sms)"
[ "$(ledger "$O" sms)" = "skipped,preference_off,0" ] || fail "default off: $(ledger "$O" sms)"
[ "$(q "SELECT count(*) FROM notifications WHERE channel = 'sms' AND state = 'skipped' AND address IS NOT NULL")" = 0 ] \
    || fail "a skipped SMS row keeps its number"
python3 - "$W/posts.sms" "$TOKEN" "$S" <<'PY' || fail "the SMS POSTs"
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1])]
for p in ps:
    p['body'] = p['body'].encode('latin-1').decode('utf-8')   # the recorder keeps the bytes
tok, S = sys.argv[2], sys.argv[3]
assert all(p['headers'].get('authorization') == 'Bearer ' + tok for p in ps), 'the token'
assert all(json.loads(p['body'])['to'] == '+33612345678' for p in ps), [json.loads(p['body'])['to'] for p in ps]
ok = [json.loads(p['body']) for p in ps if p['code'] == 200]
assert len(ok) == 3 and len({x['reference'] for x in ok}) == 3, ok
assert all(S in x['text'] and 'https://demarches.civibus.test/suivi/' + S in x['text'] for x in ok), ok
assert 'reçue' in ok[0]['text'] and 'en cours' in ok[1]['text'] and 'traitée' in ok[2]['text'], ok
assert [p['code'] for p in ps].count(503) == 1
PY
[ "$(posts sms "'$Z' in p['j']['text'] or '$G' in p['j']['text'] or '$O' in p['j']['text'] or '$M' in p['j']['text']")" = 0 ] \
    || fail "an SMS to a skipped number"
grep -q "$TOKEN" "$W/notify.log" && fail "the gateway token in the log"
grep -q "612345678" "$W/notify.log" && fail "a phone number in the log"
ok "SMS: one per status change with the code and link, Bearer token, E.164 number; a 503 retried; placeholder, shared, garbage phones and default off skipped with the reason"

# ----------------------------------------------------------------------------- c. citizen digest
notify_stop
D=$(register citoyen+dig@civibus.test); pref "$D" email digest
# digest_at: the next minute, or the one after when less than 20 s are left
[ "$(date +%S | sed 's/^0//')" -ge 40 ] && AHEAD=2 || AHEAD=1
DAT=$(TZ=Europe/Paris date -d "+$AHEAD minute" +%H:%M)
NOTIFY_YAML_EXTRA="$CHANNELS
digest_at: \"$DAT\"" notify_config
notify_start
event "$D" in_progress
sleep 3
event "$D" waiting_citizen
settle
[ "$(ledger "$D" email)" = "planned,,0 planned,,0 planned,,0" ] || fail "digest rows: $(ledger "$D" email)"
[ "$(q "SELECT count(DISTINCT template) || ',' || min(template) FROM notifications n JOIN requests r ON r.id = n.request_id
        WHERE r.tracking_code = '$D' AND n.channel = 'email'")" = "1,digest_citoyen" ] || fail "digest template"
mailbox; [ "$(mails "'+dig@' in m['to']")" = 0 ] || fail "a citizen with a digest got a mail at once"
# the SMTP server is down at digest_at: the digest's rows are retried together
PF=$CIVIBUS_MAIL_DIR/postfix
/usr/sbin/postfix -c "$PF" stop >/dev/null 2>&1
for i in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$CIVIBUS_MAIL_SMTP_PORT") 2>/dev/null || break; sleep 0.1; done
DSQL="FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$D' AND n.channel = 'email'"
for i in $(seq 1 1500); do
    [ "$(q "SELECT bool_and(attempts >= 2 AND state = 'planned' AND last_error = 'curl_7') $DSQL")" = t ] && break
    sleep 0.1
done
[ "$(q "SELECT count(DISTINCT attempts) || ',' || min(attempts) $DSQL")" = "1,$(q "SELECT max(attempts) $DSQL")" ] \
    || fail "the digest's rows were not tried together: $(ledger "$D" email)"
/usr/sbin/postfix -c "$PF" start >/dev/null 2>&1 || fail "postfix start"
for i in $(seq 1 300); do [ "$(q "SELECT count(*) $DSQL AND state = 'planned'")" = 0 ] && break; sleep 0.1; done
wait_mails "'+dig@' in m['to']" 1
sleep 1; mailbox
[ "$(q "SELECT string_agg(DISTINCT state || ',' || COALESCE(last_error, '-'), ' ') || ',' || count(DISTINCT attempts) || ',' || (min(attempts) >= 3) $DSQL")" = "sent,-,1,true" ] \
    || fail "digest ledger: $(ledger "$D" email)"
python3 - "$W/mbox.json" "$D" "$W/reply_secret" <<'PY' || fail "the citizen's digest"
import json, sys, hmac, hashlib, base64
ms = [m for m in json.load(open(sys.argv[1])) if '+dig@' in m['to']]
D = sys.argv[2]
assert len(ms) == 1, len(ms)
m = ms[0]
assert m['subject'].startswith('[Mairie] Vos demandes : 3 '), m['subject']
t = m['text']
lines = [l for l in t.split('\n') if l.startswith('- ')]
assert len(lines) == 3 and all(D in l for l in lines), t
assert 'reçue' in lines[0] and 'en cours' in lines[1] and 'en attente de votre réponse' in lines[2], lines
assert 'https://demarches.civibus.test/suivi/' + D in t and D in m['html'], t
key = open(sys.argv[3], 'rb').read().rstrip()
sig = base64.b32encode(hmac.new(key, b'civibus-reply:' + D.encode(), hashlib.sha256).digest()).decode().lower()[:10]
assert m['reply_to'] and ('+%s-%s@' % (D, sig)) in m['reply_to'], m['reply_to']
PY
ok "citizen digest: nothing at once, one mail at digest_at ($DAT) listing the three changes, replies thread; SMTP down: its rows retried together, one mail"

# ----------------------------------------------------------------------------- d. services' digest
# t_event (notify_lib.sh) with the source's own due date (docs/deadlines.md: it wins)
due() { [ "$(q "SELECT t_event('$1', '$2', p_due => now() + interval '$3')")" = stored ] || fail "due $1"; }
L=$(register citoyen+late@civibus.test);  due "$L" in_progress "-2 days"
N=$(register citoyen+soon@civibus.test);  due "$N" acknowledged "+1 day"
F=$(register citoyen+far@civibus.test);   due "$F" in_progress "+10 days"
R=$(register citoyen+done@civibus.test);  due "$R" resolved "-3 days"
[ "$(q "SELECT count(*) FROM requests WHERE tracking_code = '$L' AND due_at < now() - interval '1 day'")" = 1 ] \
    || fail "the overdue request: $(q "SELECT due_at, due_kind FROM requests WHERE tracking_code = '$L'")"
settle
notify_stop
SUP="digest:
  at: \"%s\"
  soon_days: 2
  services:
    dechets: citoyen+chef@civibus.test
    voirie: citoyen+voirie@civibus.test"
# at: one hour ahead first (no digest yet), then the current minute (due now)
LATER=$(TZ=Europe/Paris date -d '+1 hour' +%H:%M)
if [ "$LATER" \> "$(TZ=Europe/Paris date +%H:%M)" ]; then
    NOTIFY_YAML_EXTRA="$CHANNELS
$(printf "$SUP" "$LATER")" notify_config
    notify_start; sleep 2; notify_stop
    [ "$(q "SELECT count(*) FROM notifications WHERE recipient LIKE 'supervisor:%'")" = 0 ] || fail "a digest before digest.at"
fi
NOW=$(TZ=Europe/Paris date +%H:%M)
NOTIFY_YAML_EXTRA="$CHANNELS
$(printf "$SUP" "$NOW")" notify_config
notify_start
settle; wait_mails "'+chef@' in m['to'] or '+voirie@' in m['to']" 2
notify_stop; notify_start
sleep 3; settle; mailbox
[ "$(mails "'+chef@' in m['to']")" = 1 ] && [ "$(mails "'+voirie@' in m['to']")" = 1 ] \
    || fail "digest mails after a restart: chef $(mails "'+chef@' in m['to']"), voirie $(mails "'+voirie@' in m['to']")"
[ "$(q "SELECT string_agg(recipient || ',' || state || ',' || (digest_day = (now() AT TIME ZONE 'Europe/Paris')::date), ' ' ORDER BY recipient)
        FROM notifications WHERE recipient LIKE 'supervisor:%'")" = "supervisor:dechets,sent,true supervisor:voirie,sent,true" ] \
    || fail "digest ledger: $(q "SELECT recipient, state, digest_day FROM notifications WHERE recipient LIKE 'supervisor:%'")"
python3 - "$W/mbox.json" "$L" "$N" "$F" "$R" <<'PY' || fail "the services' digest"
import json, sys
ms = json.load(open(sys.argv[1]))
L, N, F, R = sys.argv[2:6]
c = [m for m in ms if '+chef@' in m['to']][0]
t = c['text']
assert 'dechets' in c['subject'], c['subject']
lines = [l for l in t.split('\n') if l.startswith('- ')]
late = [l for l in lines if 'EN RETARD' in l]
assert any(L in l for l in late) and not any(N in l for l in late), lines
assert any(N in l and 'bientôt' in l for l in lines), lines
assert F not in t and R not in t, 'a far or resolved request listed'
assert c['reply_to'] is None, c['reply_to']
v = [m for m in ms if '+voirie@' in m['to']][0]
assert 'Aucune demande' in v['text'] and '0 en retard' in v['subject'], v
PY
# the digest counts its lines: the subject says how many are late
grep -q "citoyen+" "$W/notify.log" && fail "an address in the notifier's log"
notify_stop
ok "services' digest: one mail per service at digest.at (overdue, soon due; not the far or resolved ones), once a day across a restart"
