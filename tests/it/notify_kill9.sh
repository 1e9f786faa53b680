#!/usr/bin/env bash
# The notifier's promises under crashes and odd SMTP answers (docs/notifications.md):
#   - kill -9 in the middle of a burst of 200 acknowledgements, then a restart: no citizen
#     gets a mail twice, every request has its one ledger row, sent (and in the mailbox) or
#     unknown (the send in flight), and the unknown ones are counted in the restart's log;
#   - an SMTP server that takes the whole message then drops the connection without its
#     answer: unknown, never sent again; 451 at RCPT: retried; 550: failed, never again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/notify_lib.sh"
COALESCE_S=0 notify_setup notify_kill9
notify_start

q "SELECT count(cv_intake_register(jsonb_build_object('channel', 'guichet', 'category', 'encombrants',
     'description', 'rafale', 'citizen', jsonb_build_object('last_name', 'Rafale', 'email', 'citoyen+b' || i || '@civibus.test')),
     'test')) FROM generate_series(1, 200) i" >/dev/null
for i in $(seq 1 200); do
    [ "$(q "SELECT count(*) FROM notifications WHERE state = 'sent'")" -ge 40 ] && break
    sleep 0.05
done
notify_kill9
sent_before=$(q "SELECT count(*) FROM notifications WHERE state = 'sent'")
[ "$sent_before" -ge 40 ] && [ "$sent_before" -lt 200 ] || fail "the kill did not land mid-burst ($sent_before sent)"
sending=$(q "SELECT count(*) FROM notifications WHERE state = 'sending'")
notify_start
settle 60
grep -q "notify: $sending interrupted send(s) recorded unknown" "$W/notify.log" || fail "the restart does not count the unknown sends: $(grep interrupted "$W/notify.log")"
[ "$(q "SELECT count(*) FROM notifications")" = 200 ] && [ "$(q "SELECT count(DISTINCT request_id) FROM notifications")" = 200 ] \
    || fail "ledger rows: $(q "SELECT count(*) FROM notifications")"
unknown=$(q "SELECT count(*) FROM notifications WHERE state = 'unknown'")
sent=$(q "SELECT count(*) FROM notifications WHERE state = 'sent'")
[ "$unknown" = "$sending" ] && [ "$unknown" -le 1 ] && [ $((sent + unknown)) = 200 ] \
    || fail "after the restart: $sent sent, $unknown unknown ($sending were sending)"
wait_mails "'+b' in m['to']" "$sent" 150
sleep 2; mailbox
python3 - "$W/mbox.json" "$sent" "$unknown" <<'PY' || fail "the mailbox after kill -9"
import json, sys, collections
ms = [m for m in json.load(open(sys.argv[1])) if '+b' in m['to']]
per = collections.Counter(m['to'] for m in ms)
assert max(per.values()) == 1, [a for a, n in per.items() if n > 1]
sent, unknown = int(sys.argv[2]), int(sys.argv[3])
assert sent <= len(ms) <= sent + unknown, (len(ms), sent, unknown)
PY
# every sent row's address has its mail
q "SELECT n.id FROM notifications n WHERE state = 'sent'" >/dev/null
ok "kill -9 mid-burst of 200: no mail twice, none lost ($sent sent, $unknown unknown and counted at restart)"

# an SMTP server of our own that misbehaves on purpose
notify_stop
cat >"$W/smtp_sim.py" <<'PY'
import socket, sys, threading
mode, port_file, count_file = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 0)); s.listen(5)
open(port_file, 'w').write(str(s.getsockname()[1]))
n = 0
while True:
    c, _ = s.accept(); n += 1
    open(count_file, 'w').write(str(n))
    f = c.makefile('rb')
    c.sendall(b'220 sim ESMTP\r\n')
    while True:
        line = f.readline()
        if not line: break
        cmd = line.strip().upper()
        if cmd.startswith(b'EHLO') or cmd.startswith(b'HELO'): c.sendall(b'250 sim\r\n')
        elif cmd.startswith(b'MAIL'): c.sendall(b'250 ok\r\n')
        elif cmd.startswith(b'RCPT'):
            open(count_file + '.rcpt', 'ab').write(line)
            c.sendall(b'451 4.3.0 try later\r\n' if mode == '451' else b'550 5.1.1 no such user\r\n' if mode == '550' else b'250 ok\r\n')
        elif cmd == b'DATA':
            c.sendall(b'354 go\r\n')
            while f.readline() not in (b'.\r\n', b''): pass
            if mode == 'drop':
                c.shutdown(socket.SHUT_RDWR); break
            c.sendall(b'250 queued\r\n')
        elif cmd == b'QUIT': c.sendall(b'221 bye\r\n'); break
        else: c.sendall(b'250 ok\r\n')
    c.close()
PY
sim() {   # sim MODE: the simulator on a free port, the notifier pointed at it
    python3 "$W/smtp_sim.py" "$1" "$W/sim.port" "$W/sim.count" &
    SIM_PID=$!; at_exit 'kill $SIM_PID 2>/dev/null'
    rm -f "$W/sim.count" "$W/sim.count.rcpt"
    for i in $(seq 1 50); do [ -s "$W/sim.port" ] && break; sleep 0.1; done
    sed -i "s|smtp_url: .*|smtp_url: smtp://127.0.0.1:$(cat "$W/sim.port")|" "$W/notify.yaml"
    notify_start
}
sim_end() { notify_stop; kill $SIM_PID; wait $SIM_PID 2>/dev/null; rm -f "$W/sim.port"; }
row() { q "SELECT state || ',' || COALESCE(last_error, '-') FROM notifications n JOIN requests r ON r.id = n.request_id WHERE r.tracking_code = '$1'"; }

sim drop
U=$(register citoyen+drop@civibus.test)
for i in $(seq 1 100); do [ "$(row "$U" | cut -d, -f1)" = unknown ] && break; sleep 0.1; done
sleep 3
[ "$(row "$U" | cut -d, -f1)" = unknown ] && [ "$(cat "$W/sim.count")" = 1 ] || fail "connection lost after the data: $(row "$U"), $(cat "$W/sim.count") connection(s)"
sim_end
sim 451
T=$(register citoyen+later@civibus.test)
for i in $(seq 1 100); do [ "$(cat "$W/sim.count" 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.1; done
[ "$(row "$T")" = "planned,smtp_451" ] && [ "$(cat "$W/sim.count")" -ge 2 ] || fail "451: $(row "$T")"
sim_end
sim 550
F=$(register citoyen+nobody@civibus.test)
for i in $(seq 1 100); do [ "$(row "$F" | cut -d, -f1)" = failed ] && break; sleep 0.1; done
sleep 2
# the 451 one (still planned) is tried again here too: only this address's attempts count
tries=$(grep -c 'citoyen+nobody@' "$W/sim.count.rcpt")
[ "$(row "$F")" = "failed,smtp_550" ] && [ "$tries" = 1 ] || fail "550: $(row "$F"), $tries attempt(s)"
sim_end
ok "lost after the data: unknown, never again; 451: retried; 550: failed, never again"
