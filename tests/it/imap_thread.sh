#!/usr/bin/env bash
# tests/it/imap_thread.sh — replies thread into their request, and one mail received
# twice is stored once (docs/intake.md, "E-mail"), against real Postfix + Dovecot, the
# real hub and two imap adapters (the city's mailboxes mairie and accueil, sources
# courriel and courriel2):
#   - one mail sent to both mailboxes: one event, one request; the same mail appended
#     again (a new UID: what a UIDVALIDITY change does) is still one event;
#   - replies: by the signed reply address (mairie+CODE-sig@, delivered to mairie by
#     the + delimiter, from another sender), by the code in the subject (dashed), by
#     In-Reply-To against a mail received and against a mail we sent (mail_threads
#     'out'), by References to a reply: each an event on the request, with the
#     request's status, the request's status, service and citizen unchanged;
#   - a forged signature, a code with a wrong check character, a well-formed code of no
#     request: new requests.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adapter_lib.sh"
. "$(dirname "$0")/mail_lib.sh"
MAP=$ROOT/adapters/courriel/mapping.yaml
it_setup imap_thread "courriel:$MAP" "courriel2:@MAP2@"
sed 's/^source: courriel$/source: courriel2/' "$MAP" >"$W/mapping2.yaml"
sed -i "s|mapping: @MAP2@|mapping: $W/mapping2.yaml|" "$W/hub.yaml"
grep -q "mapping: $W/mapping2.yaml" "$W/hub.yaml" || fail "second mapping not set"

mail_start
D=$CIVIBUS_MAIL_DOMAIN
imap_as() { curl -sS --max-time 10 -u "$1" "$CIVIBUS_IMAP_URL/INBOX" -X "$2" | tr -d '\r'; }
uids_of() { imap_as "$1" "UID SEARCH $2" | sed -n 's/^\* SEARCH//p' | xargs; }
A_AUTH="$CIVIBUS_CITY_IMAP_USER:$CIVIBUS_CITY_IMAP_PASSWORD"
B_AUTH="$CIVIBUS_CITY2_IMAP_USER:$CIVIBUS_CITY2_IMAP_PASSWORD"

head -c 48 /dev/urandom | base64 >"$W/reply_secret"
chmod 600 "$W/reply_secret"
printf '%s\n' "$CIVIBUS_CITY_IMAP_PASSWORD" >"$W/a.password"
printf '%s\n' "$CIVIBUS_CITY2_IMAP_PASSWORD" >"$W/b.password"
chmod 600 "$W/a.password" "$W/b.password"
adapter_conf() { # SOURCE USER PASSWORD_FILE
    cat <<EOF
hub:
  endpoint: ipc://$W/hub.sock
  public_key_file: keys/hub
sources:
  $1:
    secret_key_file: keys/$1_secret
    spool_dir: spool/$1
driver:
  kind: imap
  source: $1
  url: $CIVIBUS_IMAP_URL
  user: $2
  password_file: $3
  reply_secret_file: $W/reply_secret
  poll_ms: 200
  batch: 10
EOF
}
adapter_conf courriel "$CIVIBUS_CITY_IMAP_USER" "$W/a.password" >"$W/adapter-run.yaml"
adapter_conf courriel2 "$CIVIBUS_CITY2_IMAP_USER" "$W/b.password" >"$W/adapter-b.yaml"
B_PID=
at_exit '[ -n "$B_PID" ] && kill -9 "$B_PID" 2>/dev/null'

hub_start
for s in courriel courriel2; do
    q "INSERT INTO identity_declared_sources (source, channel) VALUES ('$s', 'boîte mail de la mairie')" >/dev/null \
        || fail "cannot declare $s"
done
ada_start
"$ADAPTER" run --config "$W/adapter-b.yaml" >>"$W/adapter-b.log" 2>&1 &
B_PID=$!

# send FILE RCPT... — one SMTP transaction
send() {
    local f=$1 args=(); shift
    for r in "$@"; do args+=(--mail-rcpt "$r"); done
    curl -sS --max-time 20 --mail-from "expediteur@exemple.fr" "${args[@]}" -T "$f" "$CIVIBUS_SMTP_URL" \
        >>"$W/smtp.log" 2>&1 || fail "SMTP send of $f"
}
# mail NAME FROM TO SUBJECT [HEADER...] — writes $W/NAME.eml, body "(NAME)"
mail() {
    local name=$1 from=$2 to=$3 subject=$4; shift 4
    {
        printf 'From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@exemple.fr>\r\n' "$from" "$to" "$subject" "$name"
        printf 'Date: Mon, 07 Dec 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n'
        for h in "$@"; do printf '%s\r\n' "$h"; done
        printf '\r\nMessage (%s).\r\n' "$name"
    } >"$W/$name.eml"
}
events() { q "select count(*) from events where source like 'courriel%'"; }
unseen() { echo $(( $(uids_of "$A_AUTH" UNSEEN | wc -w) + $(uids_of "$B_AUTH" UNSEEN | wc -w) )); }
settled() { # settled N: N events, and both mailboxes flagged
    [ "$(events)" -eq "$1" ] && [ "$(unseen)" -eq 0 ]
}
req_of() { # the request of the mail whose body says (NAME)
    q "select request_id from source_records where source like 'courriel%' and raw::jsonb->>'body' like '%($1)%' limit 1"
}

# 1. the same mail in two mailboxes: stored once
mail m1 "Jeanne <jeanne@exemple.fr>" "mairie@$D, accueil@$D" "Nid de poule rue Haute"
send "$W/m1.eml" "mairie@$D" "accueil@$D"
wait_until 30 settled 1 || fail "m1: $(events) events, $(unseen) unseen"
sleep 1
[ "$(events)" -eq 1 ] || fail "the mail received in two mailboxes made $(events) events"
[ "$(q "select count(*) from requests")" -eq 1 ] || fail "two requests for one mail"
[ "$(q "select count(*) from dead_letters")" -eq 0 ] || fail "dead letters: $(q "select reason from dead_letters")"
R=$(req_of m1)
[ -n "$R" ] || fail "no request for m1"
H1=$(printf '%s' "m1@exemple.fr" | sha256sum | cut -c1-64)
[ "$(q "select request_id || ' ' || direction from mail_threads where message_id_hash = '$H1'")" = "$R in" ] \
    || fail "m1's Message-ID is not in mail_threads for its request"
ok "one mail in two mailboxes (two sources): one event, one request, its Message-ID in mail_threads"

# the same mail appended again to mairie (a new UID, as after a UIDVALIDITY change)
curl -sS --max-time 10 -u "$A_AUTH" -T "$W/m1.eml" "$CIVIBUS_IMAP_URL/INBOX" >>"$W/smtp.log" 2>&1 || fail "APPEND"
wait_until 30 settled 1 || fail "m1 again: $(events) events, $(unseen) unseen"
sleep 1
[ "$(events)" -eq 1 ] || fail "the same mail under a new UID made a second event"
grep -q "duplicate" "$W/adapter.log" "$W/adapter-b.log" 2>/dev/null || true
ok "the same mail under a new UID: still one event (dedupe by Message-ID hash)"

CODE=$(q "select tracking_code from requests where id = $R")
[ "${#CODE}" -eq 11 ] || fail "tracking code '$CODE'"
CIT=$(q "select coalesce(citizen_id::text, '-') from requests where id = $R")
# the back office has taken it on (stands for a status that software reports)
q "update requests set status = 'in_progress', service = 'voirie' where id = $R" >/dev/null
read -r SIG DASHED BADCHECK NOCODE < <(python3 - "$W/reply_secret" "$CODE" <<'PY'
import base64, hashlib, hmac, random, sys
key = open(sys.argv[1], "rb").read().rstrip(b" \t\r\n")
code = sys.argv[2]
sig = base64.b32encode(hmac.new(key, b"civibus-reply:" + code.encode(), hashlib.sha256).digest()).decode().lower()[:10]
A = "ACDEFHJKLMNPRTUVWXY34679"
ok = lambda c: sum((i + 1) * A.index(x) for i, x in enumerate(c)) % 29 == 0
bad = code[:10] + next(x for x in A if x != code[10])       # the check character changed
assert not ok(bad)
while True:                                                  # a valid code of no request
    c = "".join(random.choice(A) for _ in range(11))
    if ok(c) and c != code:
        break
print(sig, code[:4] + "-" + code[4:8] + "-" + code[8:], bad, c)
PY
)
[ -n "$NOCODE" ] || fail "code helper"
OUT=$(printf '%s' "notif-1@$D" | sha256sum | cut -c1-64)
q "insert into mail_threads (message_id_hash, request_id, direction) values ('$OUT', $R, 'out')" >/dev/null

# 2. replies (all to mairie)
mail r1 "Voisin <voisin@exemple.fr>" "mairie+$CODE-$SIG@$D" "Re: votre demande"
send "$W/r1.eml" "mairie+$CODE-$SIG@$D"
mail r2 "Jeanne <jeanne@exemple.fr>" "mairie@$D" "Re: demande $DASHED : photo"
send "$W/r2.eml" "mairie@$D"
mail r3 "Jeanne <jeanne@exemple.fr>" "mairie@$D" "Re: Nid de poule" "In-Reply-To: <m1@exemple.fr>"
send "$W/r3.eml" "mairie@$D"
mail r4 "Jeanne <jeanne@exemple.fr>" "mairie@$D" "Re: accusé de réception" "In-Reply-To: <notif-1@$D>"
send "$W/r4.eml" "mairie@$D"
wait_until 30 settled 5 || fail "replies: $(events) events, $(unseen) unseen"
mail r5 "Jeanne <jeanne@exemple.fr>" "mairie@$D" "Re: Re: votre demande" \
     "References: <unknown@ailleurs.fr> <r1@exemple.fr>" "In-Reply-To: <r1@exemple.fr>"
send "$W/r5.eml" "mairie@$D"
# 3. forged: a wrong signature, a wrong check character, a code of no request
mail f1 "Escroc <escroc@exemple.fr>" "mairie+$CODE-aaaaaaaaaa@$D" "Re: votre demande"
send "$W/f1.eml" "mairie+$CODE-aaaaaaaaaa@$D"
mail f2 "Jeanne <jeanne@exemple.fr>" "mairie@$D" "Re: demande $BADCHECK"
send "$W/f2.eml" "mairie@$D"
mail f3 "Jeanne <jeanne@exemple.fr>" "mairie@$D" "Re: demande $NOCODE"
send "$W/f3.eml" "mairie@$D"
wait_until 30 settled 9 || fail "forged: $(events) events, $(unseen) unseen"
sleep 1
[ "$(q "select count(*) from dead_letters")" -eq 0 ] || fail "dead letters: $(q "select reason from dead_letters")"

for r in r1 r2 r3 r4 r5; do
    [ "$(req_of $r)" = "$R" ] || fail "reply $r did not thread into request $R (got '$(req_of $r)')"
done
ok "replies threaded: signed reply address (+ delimiter, another sender), dashed code in the subject, In-Reply-To to a mail received and to one we sent, References to a reply"
[ "$(q "select count(*) from events where request_id = $R")" -eq 6 ] || fail "request $R has $(q "select count(*) from events where request_id = $R") events"
st=$(q "select string_agg(distinct status, ',') from events e join source_records s
        on s.source = e.source and s.source_record_id = e.source_record_id
        where e.request_id = $R and s.raw::jsonb->>'body' like '%(r%'")
[ "$st" = in_progress ] || fail "a reply's event status: '$st' (the request's own expected)"
[ "$(q "select status || ' ' || service || ' ' || coalesce(citizen_id::text, '-') from requests where id = $R")" = "in_progress voirie $CIT" ] \
    || fail "a reply changed its request: $(q "select status || ' ' || service || ' ' || coalesce(citizen_id::text, '-') from requests where id = $R")"
[ "$(q "select count(*) from events where request_id = $R and transition_flagged")" -eq 0 ] || fail "a reply flagged a transition"
V=$(q "select e.citizen_id from events e join source_records s on s.source = e.source and s.source_record_id = e.source_record_id
       where s.raw::jsonb->>'body' like '%(r1)%'")
[ -n "$V" ] && [ "$V" != "$CIT" ] || fail "the other sender's reply: citizen '$V' (request's: $CIT)"
ok "a reply carries its request's status, changes neither its status, service nor citizen; another sender stays apart"

for f in f1 f2 f3; do
    fr=$(req_of $f)
    [ -n "$fr" ] && [ "$fr" != "$R" ] || fail "forged $f threaded into $R"
done
[ "$(q "select count(*) from requests")" -eq 4 ] || fail "$(q "select count(*) from requests") requests, expected 4"
ok "a forged signature, a wrong check character, a code of no request: each a new request"
ada_stop
kill -TERM "$B_PID"; wait "$B_PID"; B_PID=
echo "imap_thread: all checks passed"
