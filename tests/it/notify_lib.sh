# tests/it/notify_lib.sh — shared by the notifier's integration tests (sourced after lib.sh;
# not a test itself). Real PostgreSQL and hub (migrations), real Postfix + Dovecot
# (tests/mail/mailctl.sh), the real bin/civibus-notify.
#
#   notify_setup NAME          database, hub, mail servers, reply key, $W/notify.yaml
#                              (NOTIFY_YAML_EXTRA: more top-level blocks)
#   notify_start / notify_stop / notify_kill9
#   register EMAIL             a counter request for a self-declared citizen: prints its code
#   event CODE STATUS [KIND] [CATEGORY] [HELPER_EMAIL]   a new event on the request (cv_ingest)
#   settle [SECONDS]           waits until nothing is due or sending in the ledger
#   mailbox                    the citizen's mailbox (IMAP) into $W/mbox.json
#   mails FILTER               how many mails of $W/mbox.json match a python expression on m
[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0
NOTIFY=$ROOT/$BIN/civibus-notify

notify_setup() {
    it_setup "$1"
    hub_start
    q "INSERT INTO service_categories (category, service) VALUES ('encombrants', 'dechets')" >/dev/null
    bash "$ROOT/tests/mail/mailctl.sh" start "$W" >"$W/mail.env" 2>"$W/mail.err" || fail "mail servers: $(cat "$W/mail.err")"
    at_exit 'bash "$ROOT/tests/mail/mailctl.sh" stop --purge "$W" >/dev/null 2>&1'
    eval "$(cat "$W/mail.env")"
    head -c 48 /dev/urandom | base64 >"$W/reply_secret"
    chmod 600 "$W/reply_secret"
    cp -r "$ROOT/deploy/notify/templates" "$W/templates"
    notify_config
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL' || fail "test helper function"
CREATE FUNCTION t_event(p_code text, p_status text, p_kind text DEFAULT 'accueil_guichet',
                        p_category text DEFAULT NULL, p_helper text DEFAULT NULL,
                        p_due timestamptz DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r record; v_key text; v_block jsonb; v_raw jsonb; v_rec text; o record;
    v_id text := 't-' || replace(gen_random_uuid()::text, '-', '');
BEGIN
    SELECT * INTO r FROM requests WHERE tracking_code = p_code;
    SELECT sr.source_record_id, sr.raw::jsonb INTO v_rec, v_raw FROM source_records sr
    WHERE sr.request_id = r.id AND sr.source = 'accueil' LIMIT 1;
    SELECT cs.source_citizen_id, cs.identity INTO v_key, v_block FROM citizen_sources cs
    WHERE cs.source = 'accueil' AND cs.citizen_id = r.citizen_id LIMIT 1;
    IF p_helper IS NOT NULL THEN v_raw := v_raw || jsonb_build_object('helper_email', p_helper); END IF;
    SELECT * INTO o FROM cv_ingest(ARRAY[0], ARRAY['accueil'], ARRAY[encode(sha256(convert_to(v_id, 'UTF8')), 'hex')],
        ARRAY[v_key], convert_to(cv_tracking_code(), 'UTF8'), ARRAY[v_id], ARRAY[p_kind], ARRAY[v_rec],
        ARRAY[r.request_ref], ARRAY[r.service], ARRAY[COALESCE(p_category, r.category)], ARRAY[r.channel::text],
        ARRAY[p_status], ARRAY[NULL::text], ARRAY[NULL::text],
        ARRAY[to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')],
        ARRAY[to_char(p_due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')],     -- the source's own due date
        ARRAY[NULL::text], ARRAY['{}'], ARRAY[v_block::text], ARRAY[v_raw::text]);
    RETURN o.o_outcome;
END $$;
SQL
}

# notify_config [QUIET_START QUIET_END]
notify_config() {
    {
        printf 'postgres:\n  conninfo: "host=%s port=%s user=%s dbname=%s"\n' "$PGHOST" "$PGPORT" "$PGUSER" "$DB"
        printf 'public_url: https://demarches.civibus.test/\ncity: "Mairie de Civibus"\nstart_from: end\n'
        printf 'poll_ms: 100\nbatch: 50\ncoalesce_s: %s\ntimezone: Europe/Paris\n' "${COALESCE_S:-2}"
        [ -n "${1:-}" ] && printf 'quiet_hours: {start: "%s", end: "%s"}\n' "$1" "$2"
        printf 'retry: {base_s: 1, max_s: 2, max_attempts: 50}\n'
        printf 'mail:\n  smtp_url: %s\n  tls: optional\n  from: ne-pas-repondre@civibus.test\n' "$CIVIBUS_SMTP_URL"
        printf '  from_name: "Mairie de Civibus"\n  intake: %s\n  reply_secret_file: reply_secret\n' "$CIVIBUS_CITY_MAIL"
        printf '  templates: templates\n  timeout_s: 10\n'
        [ -n "${NOTIFY_YAML_EXTRA:-}" ] && printf '%s\n' "$NOTIFY_YAML_EXTRA"
    } >"$W/notify.yaml"
}

notify_start() {
    "$NOTIFY" --config "$W/notify.yaml" >>"$W/notify.log" 2>&1 &
    NOTIFY_PID=$!
    at_exit 'kill $NOTIFY_PID 2>/dev/null'
    local i
    for i in $(seq 1 50); do
        grep -q "main: running" "$W/notify.log" 2>/dev/null && return 0
        kill -0 "$NOTIFY_PID" 2>/dev/null || fail "notifier exited: $(tail -5 "$W/notify.log")"
        sleep 0.1
    done
    fail "notifier did not start: $(tail -5 "$W/notify.log")"
}

notify_stop() {
    kill -TERM "$NOTIFY_PID" 2>/dev/null; wait "$NOTIFY_PID" 2>/dev/null; local rc=$?
    [ $rc -eq 0 ] || fail "notifier exit $rc: $(tail -5 "$W/notify.log")"
}

notify_kill9() { kill -9 "$NOTIFY_PID" 2>/dev/null; wait "$NOTIFY_PID" 2>/dev/null; true; }

register() {
    q "SELECT cv_intake_register(jsonb_build_object('channel', 'guichet', 'category', 'encombrants',
         'description', 'Canapé à enlever', 'citizen', jsonb_build_object('last_name', 'Test', 'email', '$1')),
         'test')->>'tracking_code'"
}

event() {   # values go to psql as variables (:'name'), never into the SQL text
    local r
    r=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -v code="$1" -v st="$2" -v kind="${3:-accueil_guichet}" \
          -v cat="${4:-}" -v helper="${5:-}" <<'SQL'
SELECT t_event(:'code', :'st', :'kind', NULLIF(:'cat', ''), NULLIF(:'helper', ''));
SQL
)
    [ "$r" = stored ] || fail "event $1 $2: $r"
}

settle() {
    local i
    for i in $(seq 1 $(( ${1:-15} * 10 ))); do
        [ "$(q "SELECT count(*) FROM notifications WHERE state = 'sending' OR (state = 'planned' AND not_before <= now())")" = 0 ] \
            && [ "$(q "SELECT last_event_id = (SELECT COALESCE(max(id), 0) FROM events) FROM notify_cursor")" = t ] && return 0
        sleep 0.1
    done
    fail "the ledger did not settle: $(q "SELECT state, count(*) FROM notifications GROUP BY 1")"
}

mailbox() {
    python3 - "$CIVIBUS_MAIL_IMAP_PORT" "$W/mbox.json" <<'PY'
import imaplib, email, json, sys
from email.header import decode_header, make_header
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login('citoyen', 'citoyen-secret')
M.select('INBOX', readonly=True)
out = []
for num in M.search(None, 'ALL')[1][0].split():
    raw = M.fetch(num, '(RFC822)')[1][0][1]
    msg = email.message_from_bytes(raw)
    parts = {}
    for p in msg.walk():
        if not p.is_multipart():
            parts[p.get_content_type()] = p.get_payload(decode=True).decode('utf-8')
    out.append({'to': msg['To'], 'subject': str(make_header(decode_header(msg['Subject']))),
                'reply_to': msg['Reply-To'], 'message_id': msg['Message-ID'], 'auto': msg['Auto-Submitted'],
                'xars': msg['X-Auto-Response-Suppress'], 'headers': [k.lower() for k in msg.keys()],
                'type': msg.get_content_type(), 'text': parts.get('text/plain', ''),
                'html': parts.get('text/html', ''), 'raw_head': raw.split(b'\r\n\r\n')[0].decode('latin-1')})
json.dump(out, open(sys.argv[2], 'w'))
PY
}

mails() {
    python3 -c "
import json,sys
ms = json.load(open('$W/mbox.json'))
print(sum(1 for m in ms if ($1)))"
}

# waits until the mailbox holds N mails matching FILTER (Postfix delivers asynchronously)
wait_mails() {
    local i
    for i in $(seq 1 ${3:-100}); do
        mailbox; [ "$(mails "$1")" -ge "$2" ] && return 0
        sleep 0.2
    done
    fail "the mailbox has $(mails "$1") mails matching $1, not $2"
}
