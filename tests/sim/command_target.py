#!/usr/bin/env python3
"""tests/sim/command_target.py — a back-office API that outbound commands act on: the
waste software's "create a bulky-waste pickup" endpoint, in three flavours.

  command_target.py --port P [--create-delay-ms MS] [--fail-first N] [--max-seconds S]

  POST /idem/pickups     honours the Idempotency-Key header: the first request with a key
                         creates a pickup; any later one with the same key gets the same
                         pickup back (200) and creates nothing.
  POST /lookup/pickups   no idempotency key, but stores the body's "external_ref" (our
                         reference) with the pickup;
  GET  /lookup/pickups?external_ref=R   a JSON array of the pickups with that reference.
  POST /unsafe/pickups   neither: every request creates a pickup.
  GET  /stats            {"created": {"idem": n, "lookup": n, "unsafe": n},
                          "requests": n, "busy": n}   (busy: requests being answered)

  Created pickups answer 201 {"id": "ENC-000001", "status": "PLANIFIEE"}.
  --create-delay-ms: the FIRST creation of each endpoint creates the pickup, then sleeps
  before answering (so a test can kill the adapter while the software has performed the
  command but not answered). --fail-first N: the first N POSTs get 503 (nothing created).

Binds 127.0.0.1:P (the port is chosen by the test, which needs it in the adapter's config
before the simulator runs: the simulator starts "down"). Prints "listening P" once ready.
Standard library only; stops after --max-seconds and on SIGTERM. Logs (stderr) name
endpoints, pickup ids and statuses only, never the payload (personal data).
"""
import argparse
import http.server
import json
import signal
import socketserver
import sys
import threading
import time
import urllib.parse

lock = threading.Lock()
state = {"created": {"idem": 0, "lookup": 0, "unsafe": 0}, "requests": 0, "busy": 0,
         "next": 1, "by_key": {}, "by_ref": {}, "delayed": set(), "failed": 0}
args = None


def log(text):
    print(f"command_target: {text}", file=sys.stderr, flush=True)


def create(flavour, ref=None):
    """A new pickup (called with the lock held)."""
    pickup = {"id": f"ENC-{state['next']:06d}", "status": "PLANIFIEE"}
    state["next"] += 1
    state["created"][flavour] += 1
    if ref is not None:
        state["by_ref"].setdefault(ref, []).append(pickup)
    log(f"{flavour}: created {pickup['id']}")
    return pickup


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/stats":
            with lock:
                self.answer(200, {"created": dict(state["created"]), "requests": state["requests"],
                                  "busy": state["busy"]})
            return
        if url.path == "/lookup/pickups":
            ref = urllib.parse.parse_qs(url.query).get("external_ref", [""])[0]
            with lock:
                found = list(state["by_ref"].get(ref, []))
            log(f"lookup: {len(found)} found")
            self.answer(200, found)
            return
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        flavour = self.path.strip("/").split("/")[0]
        if self.path not in ("/idem/pickups", "/lookup/pickups", "/unsafe/pickups"):
            self.answer(404, {"error": "not found"})
            return
        try:
            body = json.loads(raw)
            assert isinstance(body, dict)
        except Exception:
            self.answer(400, {"error": "the body must be a JSON object"})
            return
        with lock:
            state["requests"] += 1
            if state["failed"] < args.fail_first:
                state["failed"] += 1
                log(f"{flavour}: 503 (failing on purpose)")
                self.answer(503, {"error": "temporarily unavailable"})
                return
            key = self.headers.get("Idempotency-Key") if flavour == "idem" else None
            if flavour == "idem" and not key:
                self.answer(400, {"error": "Idempotency-Key required"})
                return
            if key and key in state["by_key"]:
                pickup = state["by_key"][key]
                log(f"idem: key seen again, {pickup['id']} returned")
                self.answer(200, pickup)
                return
            pickup = create(flavour, body.get("external_ref") if flavour == "lookup" else None)
            if key:
                state["by_key"][key] = pickup
            delay = args.create_delay_ms > 0 and flavour not in state["delayed"]
            if delay:
                state["delayed"].add(flavour)
            state["busy"] += 1
        try:
            if delay:
                log(f"{flavour}: {pickup['id']} created, answering in {args.create_delay_ms} ms")
                time.sleep(args.create_delay_ms / 1000)
            self.answer(201, pickup)
        except (BrokenPipeError, ConnectionResetError):
            log(f"{flavour}: {pickup['id']} created, but the client left before the answer")
        finally:
            with lock:
                state["busy"] -= 1


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--create-delay-ms", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=300)
    args = p.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    timer = threading.Timer(args.max_seconds, server.shutdown)
    timer.daemon = True
    timer.start()
    print(f"listening {args.port}", flush=True)
    server.serve_forever()
    server.server_close()
    log("stopped")
    sys.exit(0)


if __name__ == "__main__":
    main()
