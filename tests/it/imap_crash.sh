#!/usr/bin/env bash
# tests/it/imap_crash.sh — 2,000 mails through Dovecot, the imap adapter and the hub,
# with kill -9 of the adapter, kill -9 of the hub and PostgreSQL stopped with
# `-m immediate` (deploy/pgctl.sh kill) during the intake: every mail becomes exactly
# one event and one request (no duplicate, none lost), and every mail ends flagged \Seen.
# The mails are delivered by LMTP straight into Dovecot (one session: fast).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adapter_lib.sh"
. "$(dirname "$0")/mail_lib.sh"
SRC=courriel
MAP=$ROOT/adapters/courriel/mapping.yaml
N=${IMAP_CRASH_N:-2000}
it_setup imap_crash "$SRC:$MAP"

mail_start
AUTH="$CIVIBUS_CITY_IMAP_USER:$CIVIBUS_CITY_IMAP_PASSWORD"
count() { curl -sS --max-time 20 -u "$AUTH" "$CIVIBUS_IMAP_URL/INBOX" -X "UID SEARCH $1" | tr -d '\r' \
          | sed -n 's/^\* SEARCH//p' | wc -w; }

t0=$(date +%s)
python3 - "$CIVIBUS_MAIL_LMTP_PORT" "$CIVIBUS_CITY_MAIL" "$N" <<'PY' || fail "LMTP delivery"
import smtplib, sys
port, to, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = smtplib.LMTP("127.0.0.1", port)
for i in range(1, n + 1):
    msg = (f"From: Citoyen {i} <c{i}@exemple.fr>\r\nTo: {to}\r\nSubject: Demande {i}\r\n"
           f"Message-ID: <crash-{i}@exemple.fr>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0100\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\nDemande numéro {i} (crash-{i}).\r\n").encode()
    s.sendmail(f"c{i}@exemple.fr", [to], msg)
s.quit()
PY
[ "$(count ALL)" -eq "$N" ] || fail "the mailbox has $(count ALL) mails, not $N"
ok "$N mails delivered by LMTP in $(( $(date +%s) - t0 )) s"

{ cat "$W/adapter.yaml"; imap_driver "batch: 50"; } >"$W/adapter-run.yaml"
hub_start
q "INSERT INTO identity_declared_sources (source, channel) VALUES ('$SRC', 'boîte mail de la mairie')" >/dev/null
events() { q "select count(*) from events where source = '$SRC'" 2>/dev/null || echo 0; }
at_least() { [ "$(events)" -ge "$1" ]; }
t0=$(date +%s)
ada_start

wait_until 60 at_least $((N * 15 / 100)) || fail "intake too slow: $(events) events"
ada_kill
ok "adapter killed -9 at $(events) events"
ada_start

wait_until 60 at_least $((N * 40 / 100)) || fail "intake too slow: $(events) events"
hub_kill9
ok "hub killed -9 at $(events) events"
sleep 0.5
hub_start

wait_until 60 at_least $((N * 65 / 100)) || fail "intake too slow: $(events) events"
bash "$ROOT/deploy/pgctl.sh" kill "$PG_DIR" >/dev/null || fail "could not stop PostgreSQL"
ok "PostgreSQL stopped with -m immediate"
sleep 2
bash "$ROOT/deploy/pgctl.sh" start "$PG_DIR" >/dev/null || fail "could not restart PostgreSQL"
eval "$(bash "$ROOT/deploy/pgctl.sh" env "$PG_DIR")"
ok "PostgreSQL restarted at $(events) events"

all_done() { [ "$(events)" -eq "$N" ] && [ "$(count UNSEEN)" -eq 0 ]; }
wait_until 120 all_done || fail "after the crashes: $(events) events, $(count UNSEEN) mails not flagged"
sleep 1
ada_stop
ok "intake of $N mails with three crashes in $(( $(date +%s) - t0 )) s"

[ "$(events)" -eq "$N" ] || fail "$(events) events for $N mails"
[ "$(q "select count(distinct event_id) from events where source = '$SRC'")" -eq "$N" ] || fail "duplicate event ids"
[ "$(q "select count(*) from request_sources where source = '$SRC'")" -eq "$N" ] || fail "not one request per mail"
[ "$(q "select count(*) from requests")" -eq "$N" ] || fail "$(q "select count(*) from requests") requests"
[ "$(q "select count(distinct raw::jsonb->>'message_id_hash') from source_records where source = '$SRC'")" -eq "$N" ] \
    || fail "not one record per distinct mail"
[ "$(q "select count(*) from mail_threads where direction = 'in'")" -eq "$N" ] || fail "mail_threads rows"
[ "$(q "select count(*) from dead_letters")" -eq 0 ] || fail "dead letters: $(q "select reason from dead_letters limit 3")"
[ "$(count UNSEEN)" -eq 0 ] && [ "$(count SEEN)" -eq "$N" ] || fail "not every mail flagged"
ok "$N mails: $N events, $N requests, no duplicate, none lost, every mail flagged"
echo "imap_crash: all checks passed"
