"""civibus_wire — a minimal CIVIBUS/1 adapter connection, written from docs/protocol.md.

Nothing here comes from the C sources: keys are read from the certificate files
`civibus-adapter keygen` writes (docs/protocol.md, "Keys") or made with
zmq.curve_keypair(); frames are bytes; every receive has a timeout.
"""
import json
import re
import time

import zmq

SESSION_RE = re.compile(rb"^[0-9a-f]{32}$")
Z85_RE = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


class WireError(Exception):
    """A protocol expectation did not hold."""


def read_cert(path):
    """(public, secret or None) of a CZMQ certificate file, as 40-character Z85 bytes."""
    keys = {}
    section = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            if not line[0].isspace():
                section = line.strip()
                continue
            m = re.match(r'\s+([a-z-]+)\s*=\s*"(.*)"\s*$', line)
            if m and section == "curve":
                keys[m.group(1)] = m.group(2)
    public = keys.get("public-key")
    if not public or not Z85_RE.match(public):
        raise WireError("%s: no 40-character Z85 public-key in its curve section" % path)
    secret = keys.get("secret-key")
    if secret is not None and not Z85_RE.match(secret):
        raise WireError("%s: secret-key is not 40 characters of Z85" % path)
    return public.encode(), secret.encode() if secret else None


def is_number(frame):
    return re.fullmatch(rb"[0-9]{1,20}", frame) is not None and int(frame) < 2 ** 64


class Conn:
    """One DEALER connection to the hub, with CURVE."""

    def __init__(self, ctx, endpoint, hub_public, public, secret, linger=0):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.curve_serverkey = hub_public
        self.sock.curve_publickey = public
        self.sock.curve_secretkey = secret
        self.sock.linger = linger
        self.sock.connect(endpoint)
        self.session = None
        self.welcome = None
        self.commands = []          # COMMAND messages set aside (they may come at any time)
        self.last_send = time.monotonic()

    def close(self):
        self.sock.close(0)

    def send(self, *frames):
        self.sock.send_multipart([f if isinstance(f, bytes) else str(f).encode() for f in frames])
        self.last_send = time.monotonic()

    def recv(self, timeout_ms, keep_commands=True):
        """Next message as a list of bytes frames, or None after timeout_ms.
        COMMANDs are set aside in self.commands unless keep_commands is False."""
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1):
                return None
            msg = self.sock.recv_multipart()
            if keep_commands and msg and msg[0] == b"COMMAND":
                self.commands.append(msg)
                continue
            return msg

    def expect(self, command, timeout_ms=3000):
        msg = self.recv(timeout_ms)
        if msg is None:
            raise WireError("expected %s, got nothing in %d ms" % (command, timeout_ms))
        if msg[0] != command.encode():
            raise WireError("expected %s, got %s" % (command, show(msg)))
        return msg

    def hello(self, description=b"conformance.py", timeout_ms=6000, version=b"CIVIBUS/1"):
        """HELLO, then WELCOME within 6 s (docs: the wait for WELCOME). Returns the session.
        version CIVIBUS/1.1 makes each ACK name what its ranges are."""
        self.version = version
        self.send(b"HELLO", version, description)
        msg = self.expect("WELCOME", timeout_ms)
        if len(msg) != 5 or not SESSION_RE.match(msg[1]) or not all(is_number(f) for f in msg[2:]):
            raise WireError("malformed WELCOME %s" % show(msg))
        self.session = msg[1]
        self.welcome = {"window": int(msg[2]), "max_event_bytes": int(msg[3]), "heartbeat_ms": int(msg[4])}
        if min(self.welcome.values()) <= 0:
            raise WireError("WELCOME with a zero parameter %s" % show(msg))
        return self.session

    def event(self, seq, record, session=None):
        if isinstance(record, (dict, list)):
            record = json.dumps(record, separators=(",", ":"))
        self.send(b"EVENT", session or self.session, str(seq), record)


def parse_ranges(text):
    """The sequence numbers of an ACK's ranges ("1-3,5"); WireError if malformed."""
    out = []
    prev = 0
    for item in text.split(b","):
        m = re.fullmatch(rb"([0-9]{1,20})(?:-([0-9]{1,20}))?", item)
        if not m:
            raise WireError("malformed ACK ranges %r" % text)
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo or lo <= prev:
            raise WireError("ACK ranges not ascending %r" % text)
        out.extend(range(lo, hi + 1))
        prev = hi
    return out


def show(msg, limit=160):
    """A message for a failure line (frames joined by |, cut)."""
    if msg is None:
        return "(nothing)"
    text = b" | ".join(f[:60] for f in msg).decode("utf-8", "replace")
    return text[:limit]


def next_answer(conn, waiting, deadline):
    """The next ACK or NACK of conn's session: {seq: "ACK" or "NACK:<reason>"} for the
    sequence numbers it settles ("ACK:<kind>" with CIVIBUS/1.1, whose ACKs have a fourth
    frame, stored, duplicate or id_reused; with CIVIBUS/1 they have exactly three). For the
    sequence numbers it settles, all of which must be in `waiting` (a second answer for a
    seq, or one for a seq nobody sent, fails). Sends PING whenever nothing was sent for
    heartbeat_ms, as docs/protocol.md asks of an adapter, and skips the PONGs."""
    heartbeat = conn.welcome["heartbeat_ms"] / 1000.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            raise WireError("no answer for %s" % sorted(waiting)[:10])
        if now - conn.last_send >= heartbeat:
            conn.send(b"PING", conn.session)
        wait = min(deadline, conn.last_send + heartbeat) - time.monotonic()
        msg = conn.recv(max(int(wait * 1000), 1))
        if msg is None or (msg[0] == b"PONG" and msg[1:] == [conn.session]):
            continue
        v11 = getattr(conn, "version", b"CIVIBUS/1") == b"CIVIBUS/1.1"
        if msg[0] == b"ACK" and len(msg) == 3 and msg[1] == conn.session and not v11:
            numbers = parse_ranges(msg[2])
            outcome = "ACK"
        elif (msg[0] == b"ACK" and len(msg) == 4 and msg[1] == conn.session and v11
              and msg[3] in (b"stored", b"duplicate", b"id_reused")):
            numbers = parse_ranges(msg[2])
            outcome = "ACK:" + msg[3].decode()
        elif msg[0] == b"NACK" and len(msg) == 4 and msg[1] == conn.session and is_number(msg[2]):
            numbers = [int(msg[2])]
            outcome = "NACK:" + msg[3].decode()
        else:
            raise WireError("unexpected %s while waiting for answers" % show(msg))
        for n in numbers:
            if n not in waiting:
                raise WireError("answer %s for sequence %d, which is not waiting for one" % (outcome, n))
        return {n: outcome for n in numbers}


def answers(conn, seqs, timeout_ms=5000):
    """Waits for the answer of every sequence number in seqs: {seq: outcome}."""
    waiting = set(seqs)
    got = {}
    deadline = time.monotonic() + timeout_ms / 1000.0
    while waiting:
        one = next_answer(conn, waiting, deadline)
        got.update(one)
        waiting -= set(one)
    return got
