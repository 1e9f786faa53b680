#!/usr/bin/env bash
# Every channel in, the right service out, the citizen told (issue 20's "done when";
# docs/intake.md, docs/routing.md, docs/notifications.md). Real PostgreSQL, hub, API,
# Postfix + Dovecot, the city's mailbox adapter (imap), the waste software's adapter
# (webhooks + commands) and its simulator (tests/sim/dechets.py serve), civibus-notify:
#   - five requests about bulky waste, one per channel: a mail to the city (email), the
#     counter (guichet), the phone (telephone), a letter (courrier) through POST
#     /v1/requests, the web form (Open311 POST);
#   - each is routed to dechets by deploy/routing.yaml, its software gets one command and
#     creates its own record, whose status changes come back into the same request;
#   - each citizen's mailbox gets one acknowledgement with the tracking code and the
#     status page link, then exactly one mail per status change, nothing else.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
. "$(dirname "$0")/adapter_lib.sh"
. "$(dirname "$0")/mail_lib.sh"
SIM=$ROOT/tests/sim/dechets.py
API_YAML_EXTRA='open311:
  public_categories: [encombrants]' \
api_setup flow 5 "demo:$ROOT/deploy/mappings/demo.yaml" "dechets:$ROOT/adapters/dechets/mapping.yaml" \
    "courriel:$ROOT/adapters/courriel/mapping.yaml"
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }

# the hub again: the mailbox self-declared, the city's routing rules
hub_stop
sed -i '/- name: courriel/a\    identity: declared' "$W/hub.yaml"
printf 'routing: %s\ncommands:\n  result_timeout_ms: 60000\n' "$ROOT/deploy/routing.yaml" >>"$W/hub.yaml"
mv "$W/hub.log" "$W/hub.log.1"
hub_start
grep -q "routing: 5 rules from" "$W/hub.log" || fail "routing not loaded"

# mail servers
mail_start
head -c 48 /dev/urandom | base64 >"$W/reply_secret"; chmod 600 "$W/reply_secret"

PIDS=()
at_exit 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done'
# the waste software and its adapter
python3 -c 'import secrets; print(secrets.token_hex(24))' >"$W/webhook.secret"; chmod 600 "$W/webhook.secret"
API_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
    sed -n '/^hub:/,/^sources:/p' "$W/adapter.yaml"
    sed -n '/^  dechets:/,/spool_dir/p' "$W/adapter.yaml"
    printf 'driver:\n  kind: webhook\n  source: dechets\n  port: 0\n  port_file: webhook.port\n  path: /webhooks/dechets\n'
    printf '  signature:\n    header: X-Signature\n    prefix: "sha256="\n    secret_file: webhook.secret\n'
    printf 'commands:\n  timeout_ms: 5000\n  max_attempts: 100\n  backoff_ms: 100\n  backoff_max_ms: 400\n'
    printf '  kinds:\n    demande_create:\n      url: "http://127.0.0.1:%s/api/demandes"\n' "$API_PORT"
    printf '      idempotency_header: Idempotency-Key\n      reference: numero\n'
} >"$W/dechets.yaml"
"$ADAPTER" run --config "$W/dechets.yaml" >>"$W/dechets.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$W/webhook.port" ] && break; sleep 0.1; done
[ -s "$W/webhook.port" ] || fail "the dechets adapter did not start: $(tail -3 "$W/dechets.log")"
python3 "$SIM" serve --api-port "$API_PORT" --port-file "$W/webhook.port" --secret-file "$W/webhook.secret" \
    --step-ms 1500 --max-seconds 300 >"$W/sim.out" 2>>"$W/sim.log" & PIDS+=($!)
for _ in $(seq 1 50); do grep -q listening "$W/sim.out" 2>/dev/null && break; sleep 0.1; done
# the city's mailbox
{
    sed -n '/^hub:/,/^sources:/p' "$W/adapter.yaml"
    sed -n '/^  courriel:/,/spool_dir/p' "$W/adapter.yaml"
    imap_driver "reply_secret_file: $W/reply_secret"
} >"$W/courriel.yaml"
"$ADAPTER" run --config "$W/courriel.yaml" >>"$W/adapter.log" 2>&1 & PIDS+=($!)
ADA_PID=$!          # wait_until (adapter_lib.sh) stops at once if the mailbox's adapter dies
# the notifier
{
    printf 'postgres:\n  conninfo: "host=%s port=%s user=%s dbname=%s"\n' "$PGHOST" "$PGPORT" "$PGUSER" "$DB"
    printf 'public_url: https://demarches.civibus.test/\ncity: "Mairie de Civibus"\nstart_from: end\n'
    printf 'poll_ms: 100\nbatch: 50\ncoalesce_s: 0\ntimezone: Europe/Paris\nretry: {base_s: 1, max_s: 2, max_attempts: 50}\n'
    printf 'mail:\n  smtp_url: %s\n  tls: optional\n  from: ne-pas-repondre@civibus.test\n' "$CIVIBUS_SMTP_URL"
    printf '  from_name: "Mairie de Civibus"\n  intake: %s\n  reply_secret_file: reply_secret\n' "$CIVIBUS_CITY_MAIL"
    printf '  templates: %s\n  timeout_s: 10\n' "$ROOT/deploy/notify/templates"
} >"$W/notify.yaml"
"$BINDIR/civibus-notify" --config "$W/notify.yaml" >>"$W/notify.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 50); do grep -q "main: running" "$W/notify.log" 2>/dev/null && break; sleep 0.1; done
grep -q "main: running" "$W/notify.log" || fail "the notifier did not start: $(tail -3 "$W/notify.log")"
ok "hub with routing, API, mail servers, the mailbox and the waste software's adapters, the notifier"

# ---- five contacts, five channels ---------------------------------------------------------
CODES=()
printf 'From: Jeanne Courriel <citoyen+email@civibus.test>\r\nTo: %s\r\nSubject: Encombrants devant chez moi\r\nMessage-ID: <flow-1@exemple.fr>\r\n\r\nBonjour, un canapé à enlever devant le 3 rue des Lilas.\r\n' \
    "$CIVIBUS_CITY_MAIL" | curl -sS --max-time 20 "$CIVIBUS_SMTP_URL" --mail-from citoyen+email@civibus.test \
    --mail-rcpt "$CIVIBUS_CITY_MAIL" -T - || fail "SMTP"
for ch in guichet telephone courrier; do
    S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $T_SUP" -H 'Content-Type: application/json' \
        --data-binary "{\"channel\": \"$ch\", \"category\": \"encombrants\", \"description\": \"Un matelas à enlever ($ch)\",
                        \"citizen\": {\"last_name\": \"Flux\", \"first_name\": \"$ch\", \"email\": \"citoyen+$ch@civibus.test\"}}" \
        "$U/v1/requests")
    [ "$S" = 201 ] || fail "POST /v1/requests $ch: $S $(cat "$W/body")"
    CODES+=("$ch:$(js 'd["tracking_code"]')")
done
S=$(curl -s -o "$W/body" -w '%{http_code}' --data-urlencode service_code=encombrants \
    --data-urlencode "description=Un frigo à enlever (web)" --data-urlencode last_name=Flux \
    --data-urlencode email=citoyen+web@civibus.test "$U/open311/v2/requests.json")
[ "$S" = 200 ] || fail "Open311 POST: $S $(cat "$W/body")"
CODES+=("web:$(js 'd[0]["service_request_id"]')")
for _ in $(seq 1 100); do
    e=$(q "select r.tracking_code from requests r join source_records s on s.request_id = r.id where s.source = 'courriel'")
    [ -n "$e" ] && break; sleep 0.2
done
[ -n "$e" ] || fail "the mail did not become a request: $(tail -3 "$W/adapter.log")"
CODES+=("email:$e")
ok "five contacts registered: ${CODES[*]}"

# ---- routed, dispatched, created by the software, its statuses back ------------------------
done_all() {
    local c
    for c in "${CODES[@]}"; do
        [ "$(q "select status from requests where tracking_code = '${c#*:}'")" = resolved ] || return 1
    done
}
wait_until 90 done_all || fail "not all resolved: $(q "select tracking_code, channel, service, status from requests where tracking_code in ($(printf "'%s'," "${CODES[@]#*:}" | sed 's/,$//'))")"
for c in "${CODES[@]}"; do
    ch=${c%%:*} code=${c#*:}
    row=$(q "select r.channel || ',' || r.service || ',' ||
                    (select count(*) from commands m where m.request_id = r.id and m.kind = 'demande_create') || ',' ||
                    (select count(*) from request_sources rs where rs.request_id = r.id and rs.source = 'dechets') || ',' ||
                    (select count(*) from events e where e.request_id = r.id and e.source = 'dechets')
             from requests r where r.tracking_code = '$code'")
    IFS=, read -r rch svc ncmd nlink nev <<<"$row"
    [ "$rch" = "$ch" ] && [ "$svc" = dechets ] && [ "$ncmd" = 1 ] && [ "$nlink" = 1 ] && [ "$nev" -ge 2 ] \
        || fail "$ch ($code): channel,service,commands,software records,software events = $row"
done
[ "$(q "select count(*) || ',' || count(distinct request_id) from request_sources where source = 'dechets'")" = 5,5 ] \
    || fail "the software's records are not one per request: $(q "select request_id, source_record_id from request_sources where source = 'dechets'")"
ok "each routed to dechets, one command each, the software's record linked, its status changes in the same request"

# ---- the citizens' mail ---------------------------------------------------------------------
mailbox() {  # the citizens' mailbox (citoyen, every +tag) into $W/mbox.json
python3 - "$CIVIBUS_MAIL_IMAP_PORT" "$W/mbox.json" <<'PY'
import imaplib, email, json, sys
from email.header import decode_header, make_header
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1])); M.login('citoyen', 'citoyen-secret'); M.select('INBOX', readonly=True)
out = []
for num in M.search(None, 'ALL')[1][0].split():
    msg = email.message_from_bytes(M.fetch(num, '(RFC822)')[1][0][1])
    text = next((p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == 'text/plain'), '')
    out.append({'to': msg['To'], 'subject': str(make_header(decode_header(msg['Subject']))), 'text': text,
                'reply_to': msg['Reply-To']})
json.dump(out, open(sys.argv[2], 'w'))
PY
}
mailbox
expect_mails() {  # the acknowledgement and one per status change: what the timeline says
    q "with e as (select e.status, lag(e.status) over (order by e.id) as before from events e
                  join requests r on r.id = e.request_id where r.tracking_code = '$1')
       select 1 + count(*) filter (where before is not null and status is distinct from before) from e"
}
settled() {
    for c in "${CODES[@]}"; do
        python3 - "$W/mbox.json" "citoyen+${c%%:*}@civibus.test" "$(expect_mails "${c#*:}")" <<'PY' || return 1
import json, sys
ms = [m for m in json.load(open(sys.argv[1])) if sys.argv[2] in (m['to'] or '')]
sys.exit(0 if len(ms) >= int(sys.argv[3]) else 1)
PY
    done
}
for _ in $(seq 1 60); do
    settled && break
    sleep 1
    mailbox
done
sleep 3      # anything more would be a mail too many
mailbox
for c in "${CODES[@]}"; do
    ch=${c%%:*} code=${c#*:} want=$(expect_mails "${c#*:}")
    python3 - "$W/mbox.json" "citoyen+$ch@civibus.test" "$code" "$want" <<'PY' || fail "the mails of $ch ($code)"
import json, sys
addr, code, want = sys.argv[2], sys.argv[3], int(sys.argv[4])
ms = [m for m in json.load(open(sys.argv[1])) if addr in (m['to'] or '')]
assert len(ms) == want, (addr, len(ms), want, [m['subject'] for m in ms])
assert all(code in m['subject'] for m in ms), [m['subject'] for m in ms]
assert all(('/suivi/' + code) in m['text'] for m in ms), "a mail without the status page link"
assert all(m['reply_to'].startswith('<mairie+' + code + '-') for m in ms), [m['reply_to'] for m in ms]
# one acknowledgement ("Votre demande ... est bien reçue"); Postfix may deliver it after a
# status mail sent a second later: the mailbox's order is not the sending order
assert sum('bien re' in m['subject'] for m in ms) == 1, [m['subject'] for m in ms]
print("   ", addr, len(ms), "mails:", "; ".join(m['subject'] for m in ms))
PY
done
[ "$(q "select count(*) from notifications where state not in ('sent', 'coalesced')")" = 0 ] \
    || fail "ledger: $(q "select template, state, last_error, count(*) from notifications group by 1, 2, 3")"
ok "each citizen: one acknowledgement with the code and the status page link, then exactly one mail per status change"

# the request's page says what each citizen was told (no address, no content); another
# service's view does not
q "insert into service_categories (category, service) values ('voirie', 'voirie') on conflict do nothing"
T_VOI=$("$CTL" --config "$W/api.yaml" token create --role agent --service voirie 2>/dev/null)
[ ${#T_VOI} -eq 64 ] || fail "token create voirie"
for c in "${CODES[@]}"; do
    id=$(q "select id from requests where tracking_code = '${c#*:}'")
    curl -fsS -H "Authorization: Bearer $T_DECH" "$U/v1/requests/$id" >"$W/body" || fail "GET /v1/requests/$id"
    python3 - "$W/body" "$(expect_mails "${c#*:}")" <<'PY' || fail "the notifications of ${c#*:}: $(cat "$W/body")"
import json, sys
d = json.load(open(sys.argv[1])); n = [x for x in d["notifications"] if x["state"] == "sent"]
assert len(n) == int(sys.argv[2]) and n[0]["template"] == "accuse_reception", n
assert all(x["recipient"] == "citizen" and x["channel"] == "email" and x["done_at"] for x in n), n
assert "civibus.test" not in json.dumps(d["notifications"]), "an address in the answer"
PY
    curl -fsS -H "Authorization: Bearer $T_VOI" "$U/v1/requests/$id" >"$W/body" || fail "GET as voirie"
    python3 -c "import json,sys; sys.exit('notifications' in json.load(open('$W/body')))" || fail "another service sees the notifications"
done
ok "GET /v1/requests/{id}: the notifications sent, without address or content; not in another service's view"
