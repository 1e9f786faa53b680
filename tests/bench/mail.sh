#!/usr/bin/env bash
# tests/bench/mail.sh [MAILS] — the mail benchmark of `make bench` (docs/performance.md):
#   intake    MAILS mails delivered by LMTP into the city's mailbox (real Dovecot), then the
#             imap adapter started: mails per second from its start to the last mail's
#             request committed in PostgreSQL (through the real hub, mapping, cv_ingest,
#             identity, the mail flagged \Seen after its ACK);
#   notifier  civibus-notify then started on that timeline (start_from: beginning):
#             acknowledgements per second from its start to the last one accepted by the
#             real Postfix (250), delivered into the citizen's Dovecot mailbox.
# Prints one JSON line (MAIL_OUT=FILE also writes it there). Needs root (Postfix).
set -u
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/../it/adapter_lib.sh"
. "$(dirname "$0")/../it/mail_lib.sh"
N=${1:-2000}
fail() {    # the adapter's and the notifier's last words with the reason
    echo "FAIL: $*" >&2
    for f in adapter.log notify.log; do [ -f "$W/$f" ] && grep -v " INFO " "$W/$f" | tail -n 5 | sed "s/^/  $f: /" >&2; done
    exit 1
}
it_setup bench_mail "courriel:$ROOT/adapters/courriel/mapping.yaml"
sed -i '/- name: courriel/a\    identity: declared' "$W/hub.yaml"
mail_start
python3 - "$CIVIBUS_MAIL_LMTP_PORT" "$CIVIBUS_CITY_MAIL" "$N" <<'PY' || fail "LMTP delivery"
import smtplib, sys
port, to, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = smtplib.LMTP("127.0.0.1", port)
for i in range(1, n + 1):
    msg = (f"From: Citoyenne {i} <citoyen+b{i}@civibus.test>\r\nTo: {to}\r\nSubject: Trottoir abîmé rue {i}\r\n"
           f"Message-ID: <bench-{i}@exemple.fr>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0100\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour, le trottoir devant le {i} est abîmé.\r\n").encode()
    s.sendmail(f"citoyen+b{i}@civibus.test", [to], msg)
s.quit()
PY
hub_start
head -c 48 /dev/urandom | base64 >"$W/reply_secret"; chmod 600 "$W/reply_secret"
{ cat "$W/adapter.yaml"; imap_driver "batch: 100" "reply_secret_file: $W/reply_secret"; } >"$W/adapter-run.yaml"
requests() { q "select count(*) from requests where channel = 'email'"; }
all_in() { [ "$(requests)" -ge "$N" ]; }
t0=$(date +%s.%N)
ada_start
wait_until 1200 all_in || fail "intake: $(requests) of $N requests after 20 minutes"
t1=$(date +%s.%N)
ada_stop

{
    printf 'postgres:\n  conninfo: "host=%s port=%s user=%s dbname=%s"\n' "$PGHOST" "$PGPORT" "$PGUSER" "$DB"
    printf 'public_url: https://demarches.civibus.test/\ncity: "Mairie de Civibus"\nstart_from: beginning\n'
    printf 'poll_ms: 100\nbatch: 200\ncoalesce_s: 0\ntimezone: Europe/Paris\nretry: {base_s: 1, max_s: 2, max_attempts: 50}\n'
    printf 'mail:\n  smtp_url: %s\n  tls: none\n  from: ne-pas-repondre@civibus.test\n' "$CIVIBUS_SMTP_URL"
    printf '  from_name: "Mairie de Civibus"\n  intake: %s\n  reply_secret_file: reply_secret\n' "$CIVIBUS_CITY_MAIL"
    printf '  templates: %s\n  timeout_s: 30\n' "$ROOT/deploy/notify/templates"
} >"$W/notify.yaml"
sent() { q "select count(*) from notifications where template = 'accuse_reception' and state = 'sent'"; }
all_sent() { [ "$(sent)" -ge "$N" ]; }
t2=$(date +%s.%N)
"$BINDIR/civibus-notify" --config "$W/notify.yaml" >>"$W/notify.log" 2>&1 &
ADA_PID=$!          # wait_until stops at once if the notifier dies
at_exit 'kill $ADA_PID 2>/dev/null'
wait_until 1200 all_sent || fail "notifier: $(sent) of $N sent after 20 minutes: $(q "select state, last_error, count(*) from notifications group by 1, 2")"
t3=$(date +%s.%N)
bad=$(q "select count(*) from notifications where state not in ('sent')")
python3 - "$N" "$t0" "$t1" "$t2" "$t3" "$bad" "${MAIL_OUT:-}" <<'PY'
import json, sys
n, t0, t1, t2, t3, bad, out = int(sys.argv[1]), *map(float, sys.argv[2:6]), int(sys.argv[6]), sys.argv[7]
r = {"mails": n, "intake_seconds": round(t1 - t0, 2), "intake_per_second": round(n / (t1 - t0), 1),
     "notify_seconds": round(t3 - t2, 2), "notify_per_second": round(n / (t3 - t2), 1), "notify_not_sent": bad}
print(json.dumps(r))
if out:
    open(out, "w").write(json.dumps(r) + "\n")
PY
