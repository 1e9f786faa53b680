#!/usr/bin/env python3
"""conformance.py — drives a real civibus hub through every rule of docs/protocol.md.

    conformance.py --endpoint EP --hub-cert HUB_PUBLIC_CERT --adapter-cert ADAPTER_SECRET_CERT
                   --max-message-bytes N [--command] [--only NAME]

Written from docs/protocol.md alone, as a second implementation of the adapter side would
be: python3-zmq, CURVE keys from keygen's certificate files (or zmq.curve_keypair() for a key
the hub does not know), every receive bounded by a timeout. The adapter certificate must
belong to a source whose mapping is tests/protocol/mapping.yaml; --command says one
command waits for that source (the suite answers it first). Records carry ids the wrapper
(tests/it/protocol_conformance.sh) then looks for in PostgreSQL: what a refused EVENT held
must not be stored.

Prints one TAP-like line per check ("ok - ..." / "not ok - ...: why"); exits 1 if any failed.
Each check must fail when the hub misbehaves: every expectation is an exact frame list.
"""
import argparse
import json
import re
import sys
import time
import traceback

import zmq

from civibus_wire import Conn, SESSION_RE, WireError, answers, is_number, next_answer, read_cert, show

MARKER = "PERSONAL-MARKER-7f3a"   # stands for personal data: must never reach the hub's log
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def rec(rid, v=1, **over):
    r = {"id": rid, "v": v, "type": "A", "etat": "NEW", "date": "2024-03-05T10:00:00Z",
         "note": MARKER + " " + rid}
    r.update(over)
    return r


class Suite:
    def __init__(self, args):
        self.args = args
        self.ctx = zmq.Context.instance()
        self.hub_public, _ = read_cert(args.hub_cert)
        self.public, self.secret = read_cert(args.adapter_cert)
        if not self.secret:
            raise WireError("%s has no secret-key" % args.adapter_cert)
        self.conns = []

    def conn(self, hub_public=None, public=None, secret=None):
        c = Conn(self.ctx, self.args.endpoint, hub_public or self.hub_public, public or self.public,
                 secret or self.secret)
        self.conns.append(c)
        return c

    def session(self):
        c = self.conn()
        c.hello()
        return c

    def close_all(self):
        for c in self.conns:
            c.close()
        self.conns = []


def expect_error(conn, code, command, session, number, timeout_ms=3000, skip_answers=False):
    """The next message is ERROR | code | text | command | session | number, exactly.
    skip_answers: ACK/NACK of conn's session before it are allowed (an EVENT committed
    before the refused one may be answered first)."""
    while True:
        msg = conn.recv(timeout_ms)
        if skip_answers and msg and msg[0] in (b"ACK", b"NACK") and msg[1] == conn.session:
            continue
        break
    want = [b"ERROR", code.encode(), None, command.encode(), session or b"", str(number).encode()
            if number is not None else b""]
    if msg is None or len(msg) != 6 or msg[:2] != want[:2] or msg[3:] != want[3:] or not msg[2]:
        raise WireError("expected ERROR %s naming %s %s %s, got %s"
                        % (code, command or "-", (session or b"-").decode(), number, show(msg)))
    return msg


def expect_nothing(conn, ms, what):
    msg = conn.recv(ms)
    if msg is not None:
        raise WireError("expected nothing (%s), got %s" % (what, show(msg)))


def expect_ended(conn, session):
    """The session is over: its PING gets ERROR unknown_session naming it."""
    conn.send(b"PING", session)
    expect_error(conn, "unknown_session", "PING", session, None)


def expect_alive(conn):
    conn.send(b"PING", conn.session)
    msg = conn.recv(3000)
    if msg != [b"PONG", conn.session]:
        raise WireError("expected PONG %s, got %s" % (conn.session.decode(), show(msg)))


def send_window(conn, records, first_seq=1, timeout_ms=10000):
    """Sends records as EVENTs first_seq.. keeping at most `window` unanswered (the
    adapter's side of the window); returns {seq: outcome}."""
    window = conn.welcome["window"]
    out = {}
    seq = first_seq
    waiting = set()
    todo = list(records)
    deadline = time.monotonic() + timeout_ms / 1000.0
    while todo or waiting:
        while todo and len(waiting) < window:
            conn.event(seq, todo.pop(0))
            waiting.add(seq)
            seq += 1
        one = next_answer(conn, waiting, deadline)
        out.update(one)
        waiting -= set(one)
    return out


# ---------------------------------------------------------------- keys and handshake

@check
def keys_are_z85_certificates(t):
    """keygen's certificate files hold 40-character Z85 keys in their curve section"""
    pub, sec = read_cert(t.args.hub_cert)
    if len(pub) != 40 or sec is not None:
        raise WireError("the hub's public certificate: public-key %r, secret-key present: %s" % (pub, bool(sec)))
    if len(t.public) != 40 or len(t.secret) != 40:
        raise WireError("the adapter's secret certificate lacks one of its keys")
    # the public key of a secret key is what the certificate says it is
    if zmq.curve_public(t.secret) != t.public:
        raise WireError("the certificate's public-key does not belong to its secret-key")


@check
def unknown_key_gets_nothing(t):
    """an adapter key the hub does not list gets nothing back, not even an ERROR"""
    public, secret = zmq.curve_keypair()
    c = t.conn(public=public, secret=secret)
    c.send(b"HELLO", b"CIVIBUS/1", b"intruder")
    expect_nothing(c, 1500, "unknown key")


@check
def wrong_hub_key_gets_nothing(t):
    """a wrong hub public key gets nothing back"""
    c = t.conn(hub_public=zmq.curve_keypair()[0])
    c.send(b"HELLO", b"CIVIBUS/1", b"wrong hub key")
    expect_nothing(c, 1500, "wrong hub key")


# ----------------------------------------------------------------------------- HELLO

@check
def hello_welcome(t):
    """HELLO gets WELCOME | 32 lower-case hex | window | max_event_bytes | heartbeat_ms"""
    c = t.conn()
    c.hello()
    if c.welcome["max_event_bytes"] >= t.args.max_message_bytes:
        raise WireError("max_event_bytes %d not below max_message_bytes" % c.welcome["max_event_bytes"])
    c2 = t.conn()
    c2.send(b"HELLO", b"CIVIBUS/1")        # the description is optional
    msg = c2.expect("WELCOME")
    if not SESSION_RE.match(msg[1]) or msg[1] == c.session:
        raise WireError("second WELCOME %s" % show(msg))


@check
def hello_bad_protocol(t):
    """HELLO CIVIBUS/0, CIVIBUS/1.2 or CIVIBUS/2 gets ERROR bad_protocol naming HELLO"""
    for version in (b"CIVIBUS/0", b"CIVIBUS/1.2", b"CIVIBUS/2", b"civibus/1.1"):
        c = t.conn()
        c.send(b"HELLO", version, b"conformance.py")
        expect_error(c, "bad_protocol", "HELLO", None, None)


@check
def hello_malformed(t):
    """HELLO without its protocol, or with extra frames, gets ERROR malformed"""
    c = t.conn()
    c.send(b"HELLO")
    expect_error(c, "malformed", "HELLO", None, None)
    c.send(b"HELLO", b"CIVIBUS/1", b"desc", b"extra")
    expect_error(c, "malformed", "HELLO", None, None)


# ------------------------------------------------------------ commands (first: they repeat)

@check
def outbound_command(t):
    """COMMAND after HELLO; RESULT gets RESULT_ACK (every copy); unknown id RESULT_NACK; bad RESULT ERROR"""
    if not t.args.command:
        raise WireError("the wrapper queued no command (--command)")
    c = t.conn()
    c.hello()
    deadline = time.monotonic() + 10
    while not c.commands and time.monotonic() < deadline:
        msg = c.recv(500)
        if msg is not None:
            raise WireError("expected COMMAND, got %s" % show(msg))
        c.send(b"PING", c.session)
        c.expect("PONG")
    if not c.commands:
        raise WireError("no COMMAND within 10 s of WELCOME")
    cmd = c.commands.pop(0)
    if len(cmd) != 6 or cmd[1] != c.session or not is_number(cmd[2]):
        raise WireError("malformed COMMAND %s" % show(cmd))
    if not re.fullmatch(rb"[A-Za-z0-9_.-]{1,64}", cmd[3]) or not re.fullmatch(rb"[A-Za-z0-9_.:-]{8,128}", cmd[4]):
        raise WireError("COMMAND kind or key out of the documented alphabet: %s" % show(cmd))
    if not isinstance(json.loads(cmd[5]), dict):
        raise WireError("COMMAND payload is not a JSON object")
    cid = cmd[2]
    detail = json.dumps({"http_status": 201, "reference": "CONF-1", "attempts": 1})
    for copy in range(2):
        c.send(b"RESULT", c.session, cid, b"done", detail)
        msg = c.expect("RESULT_ACK", 5000)
        if msg != [b"RESULT_ACK", c.session, cid]:
            raise WireError("copy %d: %s" % (copy + 1, show(msg)))
    c.send(b"RESULT", c.session, b"987654321", b"done", b"{}")
    msg = c.expect("RESULT_NACK", 5000)
    if msg != [b"RESULT_NACK", c.session, b"987654321", b"unknown_command"]:
        raise WireError("unknown command id: %s" % show(msg))
    c.send(b"RESULT", c.session, cid, b"maybe", b"{}")
    expect_error(c, "malformed", "RESULT", c.session, int(cid))
    expect_ended(c, c.session)
    old = c.session
    c.hello()
    c.send(b"RESULT", old, cid, b"done", detail)
    expect_error(c, "unknown_session", "RESULT", old, int(cid))
    expect_alive(c)                      # an ERROR about an older session leaves this one


# ------------------------------------------------------------------------- EVENT

@check
def event_ack_duplicate_id_reused(t):
    """a record is ACKed; the same again (duplicate) and the same id with new content (id_reused) too"""
    c = t.session()
    got = send_window(c, [rec("OK-1"), rec("OK-1"), rec("OK-1", note="changed")])
    if got != {1: "ACK", 2: "ACK", 3: "ACK"}:
        raise WireError("answers %s" % got)


@check
def ack_kinds_with_1_1(t):
    """with CIVIBUS/1.1 each ACK names its ranges: stored, duplicate, id_reused (CIVIBUS/1's stay 3 frames)"""
    c = t.conn()
    c.hello(version=b"CIVIBUS/1.1")
    rid = "K11-%d" % int(time.time() * 1000)
    got = send_window(c, [rec(rid), rec(rid + "-b")])
    if got != {1: "ACK:stored", 2: "ACK:stored"}:
        raise WireError("first answers %s" % got)
    got = send_window(c, [rec(rid), rec(rid, note="changed"), rec(rid + "-c"), rec(rid + "-b")], first_seq=3)
    if got != {3: "ACK:duplicate", 4: "ACK:id_reused", 5: "ACK:stored", 6: "ACK:duplicate"}:
        raise WireError("second answers %s" % got)
    old = t.session()                      # CIVIBUS/1: the same records, plain 3-frame ACKs
    got = send_window(old, [rec(rid), rec(rid + "-b")])
    if got != {1: "ACK", 2: "ACK"}:
        raise WireError("CIVIBUS/1 answers %s" % got)


@check
def nack_reason_codes(t):
    """every bad record gets a NACK naming its sequence and the documented reason"""
    c = t.session()
    meb = c.welcome["max_event_bytes"]
    big = json.dumps(rec("BIG-1", pad="x" * meb))
    if len(big) >= t.args.max_message_bytes:
        raise WireError("cannot build a too_large record under max_message_bytes")
    cases = [
        ("invalid_json", b"{not json"),
        ("invalid_json", b"[1,2,3]"),
        ("invalid_json", b'{"id":"NUL\\u0000"}'),
        ("invalid_utf8", b'{"id":"\xff\xfe"}'),
        ("too_large", big.encode()),
        ("missing_field", rec("X", id=None)),
        ("bad_type", rec("BADTYPE-1", cat={"x": 1})),
        ("bad_date", rec("BADDATE-1", date="2024-02-30T10:00:00Z")),
        ("unmapped_value", rec("UNMAPPED-1", etat="WHAT")),
        ("no_rule", rec("NORULE-1", type="B")),
        ("invalid_event", rec("I" * 201)),
    ]
    got = send_window(c, [r for _, r in cases])
    want = {i + 1: "NACK:" + code for i, (code, _) in enumerate(cases)}
    if got != want:
        raise WireError("answers %s, wanted %s" % (got, want))
    # the record frame missing, or followed by an extra frame: NACK malformed
    n = len(cases)
    c.send(b"EVENT", c.session, str(n + 1))
    c.send(b"EVENT", c.session, str(n + 2), json.dumps(rec("EXTRA-1")), b"extra")
    got = answers(c, [n + 1, n + 2])
    if got != {n + 1: "NACK:malformed", n + 2: "NACK:malformed"}:
        raise WireError("malformed EVENTs: %s" % got)
    # a NACK is final: the same record again gets the same NACK
    got = send_window(c, [b"{not json"], first_seq=n + 3)
    if got != {n + 3: "NACK:invalid_json"}:
        raise WireError("resent bad record: %s" % got)


@check
def pipelining_within_window(t):
    """3 x window EVENTs, never more than window unanswered: each sequence answered exactly once"""
    c = t.session()
    w = c.welcome["window"]
    records = [rec("PIPE-%d" % i) for i in range(3 * w)]
    got = send_window(c, records)
    if sorted(got) != list(range(1, 3 * w + 1)) or set(got.values()) != {"ACK"}:
        raise WireError("answers %s" % got)


# ------------------------------------------------------------- sequence and window rules

@check
def sequence_zero(t):
    """sequence 0 gets ERROR bad_sequence naming the session and 0; the session ends"""
    c = t.session()
    c.event(0, rec("SEQ0-1"))
    expect_error(c, "bad_sequence", "EVENT", c.session, 0)
    expect_ended(c, c.session)


@check
def sequence_reused(t):
    """a reused sequence gets ERROR bad_sequence; nothing of that session is answered after; resending in a new session works"""
    c = t.session()
    c.event(1, rec("REUSE-1"))
    c.event(2, rec("REUSE-2A"))
    c.event(2, rec("REUSE-2B"))
    expect_error(c, "bad_sequence", "EVENT", c.session, 2, skip_answers=True)
    expect_nothing(c, 700, "an answer on a session an ERROR ended")
    c.hello()
    got = send_window(c, [rec("REUSE-1"), rec("REUSE-2A")])
    if got != {1: "ACK", 2: "ACK"}:
        raise WireError("resent in the new session: %s" % got)


@check
def sequence_gap(t):
    """a gap (1 then 3) gets ERROR bad_sequence naming 3"""
    c = t.session()
    c.event(1, rec("GAP-1"))
    c.event(3, rec("GAP-3"))
    expect_error(c, "bad_sequence", "EVENT", c.session, 3, skip_answers=True)
    expect_ended(c, c.session)


@check
def sequence_not_a_number(t):
    """a sequence that is not a decimal number gets ERROR malformed naming the session, no number"""
    c = t.session()
    for bad in (b"one", b"-1", b" 1", b"+1", b"1.0", b"18446744073709551616"):
        c.event(bad.decode(), rec("NAN-1"))
        expect_error(c, "malformed", "EVENT", c.session, None)
        c.hello()


@check
def window_exceeded(t):
    """window + 1 EVENTs in flight: ERROR window_exceeded naming window + 1; answered EVENTs leave the window"""
    c = t.session()
    w = c.welcome["window"]
    for i in range(1, w + 2):
        c.event(i, rec("WIN-%d" % i))
    expect_error(c, "window_exceeded", "EVENT", c.session, w + 1, skip_answers=True)
    expect_nothing(c, 700, "an answer on a session an ERROR ended")
    c.hello()
    got = send_window(c, [rec("WIN-%d" % i) for i in range(1, w + 1)])
    got.update(send_window(c, [rec("WIN-AGAIN-%d" % i) for i in range(1, w + 1)], first_seq=w + 1))
    if sorted(got) != list(range(1, 2 * w + 1)) or set(got.values()) != {"ACK"}:
        raise WireError("two windows one after the other: %s" % got)


# ------------------------------------------------------------------ sessions and connections

@check
def wrong_session_while_live(t):
    """an EVENT naming another session gets ERROR unknown_session naming it; the live session goes on"""
    c = t.session()
    other = b"0123456789abcdef0123456789abcdef"
    c.event(1, rec("WRONG-1"), session=other)
    expect_error(c, "unknown_session", "EVENT", other, 1)
    expect_alive(c)
    if send_window(c, [rec("WRONG-2")]) != {1: "ACK"}:
        raise WireError("the live session lost its sequence")


@check
def garbage_session_frame(t):
    """a session frame that is not a session id gets ERROR unknown_session naming none; the session on this connection ends"""
    c = t.session()
    c.event(1, rec("GARBAGE-1"), session=b"xyz")
    expect_error(c, "unknown_session", "EVENT", None, 1)
    expect_ended(c, c.session)
    c.send(b"EVENT")
    expect_error(c, "malformed", "EVENT", None, None)


@check
def message_over_max_message_bytes(t):
    """a frame over max_message_bytes: no answer, and the session's next message gets ERROR unknown_session"""
    c = t.session()
    c.event(1, b"x" * (t.args.max_message_bytes + 1))
    expect_nothing(c, 1000, "libzmq drops the connection")
    expect_ended(c, c.session)
    c.hello()
    if send_window(c, [rec("AFTER-BIG-1")]) != {1: "ACK"}:
        raise WireError("no ACK on the new session")


@check
def session_on_another_connection(t):
    """the open session's id on another connection gets ERROR unknown_session and ends the session"""
    a = t.session()
    b = t.conn()
    b.send(b"PING", a.session)
    expect_error(b, "unknown_session", "PING", a.session, None)
    expect_ended(a, a.session)


@check
def hello_replaces_session(t):
    """a new HELLO replaces the session: the old one gets ERROR unknown_session, the new one PONG"""
    a = t.session()
    s1 = a.session
    a.hello()
    expect_ended(a, s1)
    expect_alive(a)
    b = t.session()                     # from another connection too
    expect_ended(a, a.session)
    expect_alive(b)


@check
def ping_pong(t):
    """PING gets PONG | session; PING without a session or with extra frames gets ERROR malformed"""
    c = t.session()
    expect_alive(c)
    c.send(b"PING")
    expect_error(c, "malformed", "PING", None, None)
    c.hello()
    c.send(b"PING", c.session, b"extra")
    expect_error(c, "malformed", "PING", c.session, None)
    expect_ended(c, c.session)


@check
def bye(t):
    """BYE gets no answer and ends the session"""
    c = t.session()
    c.send(b"BYE", c.session)
    expect_nothing(c, 500, "BYE")
    expect_ended(c, c.session)


@check
def unknown_command(t):
    """an unknown command gets ERROR malformed naming no command; the session on this connection ends"""
    c = t.session()
    c.send(b"FROB", c.session)
    expect_error(c, "malformed", "", None, None)
    expect_ended(c, c.session)


@check
def heartbeats_keep_a_session(t):
    """PINGs every heartbeat_ms keep a session past 3 x heartbeat_ms"""
    c = t.session()
    hb = c.welcome["heartbeat_ms"] / 1000.0
    end = time.monotonic() + 4 * hb + 1
    while time.monotonic() < end:
        time.sleep(hb)
        expect_alive(c)


@check
def silent_session_forgotten(t):
    """a session silent for 3 x heartbeat_ms is forgotten"""
    c = t.session()
    time.sleep(3 * c.welcome["heartbeat_ms"] / 1000.0 + 1.5)   # the hub looks once a second
    expect_ended(c, c.session)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--hub-cert", required=True)
    ap.add_argument("--adapter-cert", required=True)
    ap.add_argument("--max-message-bytes", type=int, required=True)
    ap.add_argument("--command", action="store_true")
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    t = Suite(args)
    failures = 0
    started = time.monotonic()
    for fn in CHECKS:
        if args.only and fn.__name__ not in args.only:
            continue
        try:
            fn(t)
            print("ok - %s: %s" % (fn.__name__, fn.__doc__.strip()))
        except WireError as e:
            failures += 1
            print("not ok - %s: %s\n#   %s" % (fn.__name__, fn.__doc__.strip(), e))
        except Exception:
            failures += 1
            print("not ok - %s: %s\n#   %s" % (fn.__name__, fn.__doc__.strip(),
                                               traceback.format_exc().replace("\n", "\n#   ")))
        finally:
            t.close_all()
        sys.stdout.flush()
    print("# %d checks, %d failed, %.1f s" % (len(CHECKS), failures, time.monotonic() - started))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
