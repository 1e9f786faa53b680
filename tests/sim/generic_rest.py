#!/usr/bin/env python3
"""tests/sim/generic_rest.py — a plain paginated REST API serving JSON-lines files.

For a source plugged in with YAML alone (adapters/bibliotheque/): any software whose API
lists records page by page with an opaque page token. The names of the parameters and
of the response's keys are options, so one simulator plays many softwares:

    GET PATH?TOKEN_PARAM=T&PAGE_SIZE_PARAM=N
        -> {RECORDS_KEY: [records], NEXT_KEY: "next token" | null}

NEXT_KEY may be dotted ("pagination.suivant" -> {"pagination": {"suivant": ...}}). The
token is opaque to clients (an offset, encoded). The last page has no next token; asked
again later it holds what was added since (records of --later, appended after
--later-after seconds), with a next token once it is full: a change feed.

Auth: --bearer TOKEN or --basic USER:PASSWORD (401 otherwise).
--fail-every K answers HTTP 503 to every K-th request.
The first stdout line is the port (127.0.0.1, --port 0 picks a free one). --log FILE
writes one JSON line per request (number, token offset, count, next offset). Stops on
SIGTERM/SIGINT or after --max-seconds. Python standard library only.
"""
import argparse
import base64
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def encode_token(offset):
    return base64.urlsafe_b64encode(("p:%d" % offset).encode()).decode().rstrip("=")


def decode_token(token):
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    if not raw.startswith("p:"):
        raise ValueError(token)
    return int(raw[2:])


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def nest(key, value):
    out = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


class Handler(BaseHTTPRequestHandler):
    server_version = "GenericRestSim/1.0"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        st = self.server.state
        a = st["args"]
        url = urlparse(self.path)
        if url.path != a.path:
            return self.reply(404, {"error": "not found"})
        auth = self.headers.get("Authorization", "")
        if a.bearer and auth != "Bearer " + a.bearer:
            return self.reply(401, {"error": "unauthorized"})
        if a.basic and auth != "Basic " + base64.b64encode(a.basic.encode()).decode():
            return self.reply(401, {"error": "unauthorized"})
        with st["lock"]:
            st["n"] += 1
            n = st["n"]
            records = st["records"]
        if a.fail_every and n % a.fail_every == 0:
            self.note({"n": n, "status": 503})
            return self.reply(503, {"error": "maintenance"})
        q = parse_qs(url.query)
        try:
            token = q.get(a.token_param, [None])[0]
            offset = decode_token(token) if token else 0
            size = max(1, min(500, int(q.get(a.page_size_param, [str(a.page_size)])[0])))
        except ValueError:
            self.note({"n": n, "status": 400})
            return self.reply(400, {"error": "bad parameter"})
        page = records[offset:offset + size]
        end = offset + len(page)
        nxt = encode_token(end) if end < len(records) else None
        body = {a.records_key: page}
        body.update(nest(a.next_key, nxt))
        self.note({"n": n, "status": 200, "offset": offset if token else None, "count": len(page),
                   "next": end if nxt else None})
        self.reply(200, body)

    def note(self, entry):
        st = self.server.state
        if st["log"]:
            with st["lock"]:
                st["log"].write(json.dumps(entry) + "\n")
                st["log"].flush()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="JSON lines: one record per line")
    p.add_argument("--later", help="JSON lines appended after --later-after seconds")
    p.add_argument("--later-after", type=float, default=2.0)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--path", default="/api/items")
    p.add_argument("--records-key", default="items")
    p.add_argument("--next-key", default="next")
    p.add_argument("--token-param", default="cursor")
    p.add_argument("--page-size-param", default="limit")
    p.add_argument("--page-size", type=int, default=20)
    p.add_argument("--bearer")
    p.add_argument("--basic", help="USER:PASSWORD")
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--log")
    p.add_argument("--max-seconds", type=float, default=600)
    args = p.parse_args()

    state = {"args": args, "lock": threading.Lock(), "n": 0, "records": load(args.data),
             "log": open(args.log, "a", encoding="utf-8") if args.log else None}
    later = load(args.later) if args.later else []
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = state
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    print(srv.server_address[1], flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.monotonic()
    deadline = started + args.max_seconds
    while not stop.wait(0.1) and time.monotonic() < deadline:
        if later and time.monotonic() - started >= args.later_after:
            with state["lock"]:
                state["records"] = state["records"] + later
            later = []
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
