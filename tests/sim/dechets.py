#!/usr/bin/env python3
"""tests/sim/dechets.py — the city's waste-management software ("déchets"), as civibus
sees it: it pushes one signed webhook per change of a request to the webhook adapter.

  dechets.py send (--port-file F | --port N) --path /webhooks/dechets
                  (--secret-file S | --secret-env VAR) [options]
      Posts the webhooks of --requests N requests (bulky-waste pickups, broken bins,
      illegal dumping reports, recycling-centre badges), each created and then updated
      later (NOUVELLE, PLANIFIEE, EN_COURS, TERMINEE, ANNULEE...). Like the real
      software: --concurrency delivery queues (many, without --rate: a burst), a
      request's changes always in order in one queue, every body signed (X-Signature: sha256=<hex HMAC-SHA256 of the body>),
      sent again with back-off on refused connections, resets, timeouts, 5xx and 503
      (honouring Retry-After) until a 2xx, and given up on any other 4xx. The port is
      read from --port-file before every attempt, so a restarted adapter (new port) is
      found again. The software is a client: it listens on no port.
      Faults: --garbage K bodies that are not JSON (truncated JSON, an HTML error page,
      a Windows-1252 CSV line...), correctly signed; --forged K records with a wrong
      signature or none; --pad BYTES makes records bigger.
      Writes --results FILE (one JSON line per body: kind, event_id, status, attempts)
      and prints one summary line. Exit 0 when every record got a 2xx.

  dechets.py once (--port-file F | --port N) --path P [--secret-file S | --secret-env VAR]
                  [--signature good|bad|none]
                  [--method POST] [--body TEXT | --body-size N]
      One request; prints the status code, then "Retry-After: N" when given.

  dechets.py serve --api-port P (--port-file F | --port N) --path /webhooks/dechets
                   (--secret-file S | --secret-env VAR) [--statuses NOUVELLE,PLANIFIEE,TERMINEE]
                   [--step-ms MS] [--push-before]
      The software's own API, which civibus's outbound commands call (docs/routing.md):
      POST /api/demandes (JSON: type, commentaire, reference_civibus, usager...; header
      Idempotency-Key) creates a request "ENC-000001" (BAC-, BAD-, DEP- by type) and
      answers 201 {"numero": ...}; the same key again answers 200 with the same numero
      and creates nothing. Then, like the software's agents working on it, the request
      goes through --statuses, one signed webhook per change (--step-ms apart, the first
      one --step-ms after the answer) to the webhook adapter, sent again until a 2xx.
      --push-before: the first webhook is accepted by the adapter BEFORE the answer (the
      race of docs/routing.md). GET /stats: {"created": n, "posts": n, "demandes":
      {numero: {"reference_civibus", "type", "statut", "revision", "keys": [payload keys]}}}.
      Binds 127.0.0.1:P, prints "listening P" once ready.

Standard library only. Stops by itself after --max-seconds, and on SIGTERM (the results
so far are written). Its log (stderr) names request numbers and HTTP statuses only,
never personal data. The people below are fictitious; DUPONT is written the way this
software writes him ("J-P DUPONT", jp.dupont@example.fr, 0612345678), unlike the other
softwares of the city ("DUPONT Jean-Pierre", "Jean Pierre Dupont").
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import signal
import sys
import threading
import time
import zlib

PEOPLE = [
    {"id": "USG-00042", "civilite": "M.", "nom": "DUPONT", "prenom": "J-P",
     "email": "jp.dupont@example.fr", "telephone": "0612345678",
     "adresse": {"voie": "12 rue de l'Église", "code_postal": "75019", "commune": "Paris"}},
    {"id": "USG-00107", "civilite": "Mme", "nom": "N'DIAYE", "prenom": "Aminata",
     "email": "Aminata.NDiaye@Example.FR", "telephone": "07 81 22 33 44",
     "adresse": {"voie": "3 allée des Œillets", "code_postal": "93200", "commune": "Saint-Denis"}},
    {"id": "USG-00213", "civilite": "Mme", "nom": "LEFÈVRE", "prenom": "Hélène",
     "email": "h.lefevre@example.fr", "telephone": "+33 6 45 67 89 01",
     "adresse": {"voie": "27 bis avenue Jean-Jaurès", "code_postal": "69007", "commune": "Lyon"}},
    {"id": "USG-00388", "civilite": "M.", "nom": "CŒUR", "prenom": "Benoît",
     "email": "benoit.coeur@example.fr", "telephone": "01 45 67 89 01",
     "adresse": {"voie": "Résidence « Les Tilleuls », bât. B, 8 rue Pasteur",
                 "code_postal": "13008", "commune": "Marseille"}},
    {"id": "USG-00412", "civilite": "M.", "nom": "de La Fontaine", "prenom": "Jean",
     "email": "jean.delafontaine@example.fr", "telephone": "06.11.22.33.44",
     "adresse": {"voie": "5 quai d’Orléans", "code_postal": "75004", "commune": "Paris"}},
    {"id": "USG-00519", "civilite": "Mme", "nom": "LE GALL", "prenom": "Maëlle",
     "email": "maelle.legall@example.fr", "telephone": "02 98 76 54 32",
     "adresse": {"voie": "14 place de l'Hôtel-de-Ville", "code_postal": "29200", "commune": "Brest"}},
    {"id": "USG-00733", "civilite": "M.", "nom": "NGUYỄN", "prenom": "Văn Đức",
     "email": "duc.nguyen@example.fr", "telephone": "0756789012",
     "adresse": {"voie": "2 impasse du Cœur-Volant", "code_postal": "78430", "commune": "Louveciennes"}},
    {"id": "USG-00861", "civilite": "Mme", "nom": "MARTIN-ÉTIENNE", "prenom": "Zoé",
     "email": "zoe.martin-etienne@example.fr", "telephone": "06 98 76 54 32",
     "adresse": {"voie": "1 chemin des Écoliers", "code_postal": "97400", "commune": "Saint-Denis"}},
]

COMMENTS = {
    "ENCOMBRANTS": ["Un canapé et une armoire « ancienne » à enlever",
                    "Matelas et sommier devant l’immeuble, côté cour",
                    "Réfrigérateur hors d’usage — 2 personnes nécessaires"],
    "BAC_CASSE": ["Bac jaune fendu, couvercle arraché",
                  "Roue du bac à ordures ménagères cassée",
                  "Bac vert volé ou disparu après la collecte"],
    "DEPOT_SAUVAGE": ["Gravats et pots de peinture près de l’école",
                      "Sacs d’ordures abandonnés au pied du conteneur à verre",
                      "Pneus usagés déposés dans le fossé, chemin des Œufs"],
    "BADGE_DECHETERIE": ["Demande de badge pour la déchèterie des Chênes",
                         "Badge perdu, demande de remplacement",
                         "Premier badge, justificatif de domicile joint"],
}
PLACES = [{"adresse": "angle rue Voltaire / rue de Charonne", "code_postal": "75011", "commune": "Paris"},
          {"adresse": "parking du stade Léo-Lagrange", "code_postal": "93200", "commune": "Saint-Denis"},
          {"adresse": "chemin des Œufs, près du pont", "code_postal": "29200", "commune": "Brest"}]
CHANNELS = ["TELEPHONE", "ACCUEIL", "PORTAIL", "APPLI_MOBILE", "COURRIEL", "courrier"]
LIFECYCLES = {
    "ENCOMBRANTS": [["NOUVELLE", "PLANIFIEE", "EN_COURS", "TERMINEE"], ["NOUVELLE", "ANNULEE"]],
    "BAC_CASSE": [["NOUVELLE", "PRISE_EN_COMPTE", "TERMINEE"]],
    "DEPOT_SAUVAGE": [["NOUVELLE", "EN_COURS", "TERMINEE"], ["NOUVELLE", "REJETEE"]],
    "BADGE_DECHETERIE": [["NOUVELLE", "EN_ATTENTE_USAGER", "TERMINEE"], ["NOUVELLE", "REJETEE"]],
}
FILLER = ("Le demandeur précise que l’accès se fait par la cour intérieure ; prévoir un "
          "camion-benne et deux agents. Signalé déjà « plusieurs fois » au service. ")

stop = threading.Event()
lock = threading.Lock()
counters = {"retries": 0, "busy_503": 0, "retry_after": 0, "conn_errors": 0, "server_5xx": 0}


def log(msg):
    sys.stderr.write("dechets-sim: %s\n" % msg)
    sys.stderr.flush()


def count(name, n=1):
    with lock:
        counters[name] += n


def fmt(dt):
    return dt.strftime("%Y-%m-%d %H:%M:%S")


# ---- the software's requests ------------------------------------------------------

def build_changes(n, prefix, seed, pad):
    """Every change of every request: (when, numero, revision, body bytes), in time order."""
    rnd = random.Random(seed)
    changes = []
    for i in range(n):
        numero = "%s-2024-%06d" % (prefix, i + 1)
        kind = rnd.choice(sorted(LIFECYCLES))
        steps = rnd.choice(LIFECYCLES[kind])
        person = PEOPLE[i % len(PEOPLE)] if i % 5 else PEOPLE[0]
        anonymous = kind == "DEPOT_SAUVAGE" and rnd.random() < 0.3
        created = datetime.datetime(2024, 1, 2, 8, 0) + datetime.timedelta(minutes=rnd.randrange(0, 360 * 24 * 60))
        if i % 50 == 7:
            created = datetime.datetime(2024, 3, 31, 2, 30)      # does not exist in Paris
        elif i % 50 == 17:
            created = datetime.datetime(2024, 10, 27, 2, 30)     # happens twice in Paris
        comment = rnd.choice(COMMENTS[kind])
        if pad:
            comment = (comment + " — " + FILLER * (pad // len(FILLER) + 1))[:pad]
        when = created
        for rev, statut in enumerate(steps, start=1):
            if rev > 1:
                when = when + datetime.timedelta(hours=rnd.randrange(2, 96), minutes=rnd.randrange(60))
            demande = {
                "numero": numero, "type": kind, "statut": statut, "revision": rev,
                "canal": CHANNELS[i % len(CHANNELS)],
                "creee_le": fmt(created), "modifiee_le": fmt(when),
                "commentaire": comment, "agent": "AG-%02d" % (i % 17),
            }
            if kind == "ENCOMBRANTS":
                demande["volume_m3"] = round(0.5 + (i % 8) * 0.5, 1)
                if statut != "NOUVELLE":
                    demande["date_intervention"] = (created + datetime.timedelta(days=8)).strftime("%Y-%m-%d")
            if kind == "DEPOT_SAUVAGE":
                demande["lieu"] = PLACES[i % len(PLACES)]
            record = {"evenement": "demande.creee" if rev == 1 else "demande.modifiee", "demande": demande}
            if not anonymous:
                record["usager"] = person
            body = json.dumps(record, ensure_ascii=False).encode("utf-8")
            changes.append((when, numero, rev, body))
    changes.sort(key=lambda c: (c[0], c[1], c[2]))
    return changes


def garbage_bodies(k, changes):
    out = []
    for j in range(k):
        form = j % 4
        if form == 0:    # the software's proxy cut the body short
            body = changes[j % len(changes)][3] if changes else b'{"evenement": "demande.creee"}'
            body = body[:max(10, len(body) * 3 // 5)]
        elif form == 1:  # an error page instead of JSON
            body = ("<html><body><h1>502 Bad Gateway</h1><p>nginx #%d</p></body></html>" % j).encode()
        elif form == 2:  # an export line in Windows-1252, not UTF-8
            body = ("numero;nom;commentaire\r\nDEC-CSV-%04d;LEFÈVRE;Dépôt « gravats »\r\n" % j).encode("cp1252")
        else:            # JSON with trailing commas
            body = ('{"evenement": "demande.creee", "demande": {"numero": "DEC-X-%04d",},}' % j).encode()
        out.append(body)
    return out


def forged_bodies(k):
    out = []
    for j in range(k):
        record = {"evenement": "demande.creee",
                  "demande": {"numero": "FAUX-%04d" % (j + 1), "type": "ENCOMBRANTS", "statut": "NOUVELLE",
                              "revision": 1, "canal": "PORTAIL", "creee_le": "2024-05-02 10:00:00",
                              "modifiee_le": "2024-05-02 10:00:00", "commentaire": "Demande falsifiée"},
                  "usager": {"id": "USG-99999", "nom": "PIRATE", "prenom": "Eve"}}
        out.append(json.dumps(record, ensure_ascii=False).encode("utf-8"))
    return out


# ---- delivery -----------------------------------------------------------------------

def read_port(args):
    """The adapter's port: --port, or read from --port-file (again before every attempt)."""
    if args.port:
        return args.port
    try:
        with open(args.port_file) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def read_secret(args):
    if args.secret_env:
        return os.environ.get(args.secret_env, "").encode("utf-8").rstrip(b" \t\r\n")
    if args.secret_file:
        with open(args.secret_file, "rb") as f:
            return f.read().rstrip(b" \t\r\n")
    return b""


def sign(secret, body):
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Sender:
    """One delivery queue of the software: one keep-alive connection, one body at a time."""

    def __init__(self, args, secret):
        self.args, self.secret = args, secret
        self.conn, self.port = None, None

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def post(self, body, signature):
        """One attempt: (status, Retry-After or None), or (None, None) on a network error."""
        port = read_port(self.args)
        if port is None:
            return None, None
        if port != self.port:
            self.close()
            self.port = port
        if not self.conn:
            self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=self.args.timeout)
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "GestDechets/4.2 webhook"}
        if signature:
            headers["X-Signature"] = signature
        try:
            self.conn.request("POST", self.args.path, body=body, headers=headers)
            resp = self.conn.getresponse()
            resp.read()
            retry_after = resp.getheader("Retry-After")
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, retry_after
        except (OSError, http.client.HTTPException):
            self.close()
            return None, None

    def deliver(self, label, body, signature, deadline):
        """Sends until a 2xx, a permanent 4xx, the deadline or SIGTERM: (status or 0, attempts)."""
        attempts, backoff = 0, 0.05
        while not stop.is_set() and time.monotonic() < deadline:
            attempts += 1
            status, retry_after = self.post(body, signature)
            if status is not None and 200 <= status < 300:
                return status, attempts
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                return status, attempts
            wait = min(backoff, self.args.max_backoff) * (0.5 + random.random())
            backoff *= 2
            if status is None:
                count("conn_errors")
                what = "no answer"
            else:
                count("busy_503" if status == 503 else "server_5xx")
                what = "HTTP %d" % status
                if retry_after is not None:
                    count("retry_after")
                    what += " (Retry-After %s)" % retry_after
                    try:
                        wait = min(float(retry_after), 30.0)
                    except ValueError:
                        pass
            count("retries")
            if attempts <= 3 or attempts % 10 == 0:
                log("%s: %s, attempt %d, again in %.2f s" % (label, what, attempts, wait))
            stop.wait(max(0.0, min(wait, deadline - time.monotonic())))
        return 0, attempts


def worker(args, secret, queue, results, deadline):
    sender = Sender(args, secret)
    pause = args.concurrency / args.rate if args.rate else 0
    for item in queue:
        if stop.is_set() or time.monotonic() >= deadline:
            break
        kind, event_id, body, signature = item
        status, attempts = sender.deliver(event_id, body, signature, deadline)
        entry = {"kind": kind, "event_id": event_id, "status": status, "attempts": attempts}
        if kind == "garbage":
            entry["sha256"] = hashlib.sha256(body).hexdigest()
        with lock:
            results.append(entry)
        if pause:
            stop.wait(pause)
    sender.close()


def send(args):
    secret = read_secret(args)
    if len(secret) < 16:
        log("the shared secret must be at least 16 bytes (--secret-file or --secret-env)")
        return 2
    changes = build_changes(args.requests, args.prefix, args.seed, args.pad)
    queues = [[] for _ in range(args.concurrency)]
    for when, numero, rev, body in changes:
        queues[zlib.crc32(numero.encode()) % args.concurrency].append(("record", "%s|%d" % (numero, rev), body, sign(secret, body)))
    for j, body in enumerate(garbage_bodies(args.garbage, changes)):
        q = queues[j % args.concurrency]
        q.insert((j * 7919) % (len(q) + 1), ("garbage", "garbage-%d" % j, body, sign(secret, body)))
    for j, body in enumerate(forged_bodies(args.forged)):
        q = queues[(j + 1) % args.concurrency]
        signature = None if j % 2 else sign(b"not-the-shared-secret-at-all", body)
        q.insert((j * 104729) % (len(q) + 1), ("forged", "FAUX-%04d|1" % (j + 1), body, signature))
    everything = [item for q in queues for item in q]
    log("%d records of %d requests, %d garbage, %d forged, %d queues"
        % (len(changes), args.requests, args.garbage, args.forged, args.concurrency))

    deadline = time.monotonic() + args.max_seconds
    results = []
    threads = [threading.Thread(target=worker, args=(args, secret, q, results, deadline), daemon=True)
               for q in queues]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads) and not stop.is_set():
        time.sleep(0.1)
    for t in threads:
        t.join(timeout=args.timeout + 1 if not stop.is_set() else 2)
    with lock:
        done = list(results)
    seen = {(r["kind"], r["event_id"]) for r in done}
    done += [{"kind": k, "event_id": e, "status": 0, "attempts": 0}
             for k, e, _, _ in everything if (k, e) not in seen]
    if args.results:
        with open(args.results, "w") as f:
            for r in done:
                f.write(json.dumps(r) + "\n")

    def n(kind, pred):
        return sum(1 for r in done if r["kind"] == kind and pred(r["status"]))
    ok = lambda s: 200 <= s < 300
    records = n("record", lambda s: True)
    accepted = n("record", ok)
    with lock:
        c = dict(counters)
    print("records %d accepted %d abandoned %d refused %d garbage %d/%d forged_401 %d/%d "
          "retries %d busy_503 %d retry_after %d conn_errors %d server_5xx %d"
          % (records, accepted, n("record", lambda s: s == 0), n("record", lambda s: s >= 300),
             n("garbage", ok), args.garbage, n("forged", lambda s: s == 401), args.forged,
             c["retries"], c["busy_503"], c["retry_after"], c["conn_errors"], c["server_5xx"]))
    return 0 if accepted == records else 1


def once(args):
    if args.body_size:
        body = json.dumps({"evenement": "demande.creee", "demande": {"numero": "DEC-GROS-1",
                          "commentaire": "x" * args.body_size}}).encode()
    else:
        body = (args.body or "").encode("utf-8")
    secret = read_secret(args)
    headers = {"Content-Type": "application/json"}
    if args.signature == "good":
        headers["X-Signature"] = sign(secret, body)
    elif args.signature == "bad":
        headers["X-Signature"] = sign(secret + b"-wrong", body)
    port = read_port(args)
    if port is None:
        print("no port")
        return 1
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=args.timeout)
    try:
        conn.request(args.method, args.path, body=body if args.method == "POST" else None, headers=headers)
        resp = conn.getresponse()
        resp.read()
    except (OSError, http.client.HTTPException) as e:
        print("error %s" % type(e).__name__)
        return 1
    print(resp.status)
    if resp.getheader("Retry-After") is not None:
        print("Retry-After: %s" % resp.getheader("Retry-After"))
    if resp.getheader("Allow") is not None:
        print("Allow: %s" % resp.getheader("Allow"))
    return 0


# ---- the software's API (serve) ----------------------------------------------------

PREFIXES = {"ENCOMBRANTS": "ENC", "BAC_CASSE": "BAC", "BADGE_DECHETERIE": "BAD", "DEPOT_SAUVAGE": "DEP"}
CANALS = {"guichet": "ACCUEIL", "telephone": "TELEPHONE", "courrier": "COURRIER", "email": "COURRIEL",
          "web": "PORTAIL"}


def serve(args):
    import http.server
    secret = read_secret(args)
    state = {"created": 0, "posts": 0, "demandes": {}, "keys": {}}
    statuses = [x for x in args.statuses.split(",") if x]
    try:
        from zoneinfo import ZoneInfo
        paris_tz = ZoneInfo("Europe/Paris")
    except Exception:                      # no tz database: winter time
        paris_tz = datetime.timezone(datetime.timedelta(hours=1))

    def body_of(numero, rev):
        d = state["demandes"][numero]
        now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=rev)
        paris = now.astimezone(paris_tz)
        demande = {"numero": numero, "type": d["type"], "statut": d["statut"], "revision": rev,
                   "canal": d["canal"], "creee_le": d["creee_le"], "modifiee_le": fmt(paris),
                   "commentaire": d["commentaire"], "agent": "AG-01"}
        return json.dumps({"evenement": "demande.creee" if rev == 1 else "demande.modifiee",
                           "demande": demande}, ensure_ascii=False).encode("utf-8")

    def push(numero, rev):
        with lock:
            state["demandes"][numero]["statut"] = statuses[rev - 1]
            state["demandes"][numero]["revision"] = rev
            body = body_of(numero, rev)
        status, attempts = Sender(args, secret).deliver("%s rev %d" % (numero, rev), body, sign(secret, body),
                                                        time.monotonic() + args.max_seconds)
        log("%s rev %d (%s): HTTP %s after %d attempt(s)" % (numero, rev, statuses[rev - 1], status, attempts))

    def lifecycle(numero, first):
        for rev in range(first, len(statuses) + 1):
            if stop.wait(args.step_ms / 1000.0):
                return
            push(numero, rev)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, code, obj):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/stats":
                with lock:
                    self.answer(200, {"created": state["created"], "posts": state["posts"],
                                      "demandes": state["demandes"]})
            else:
                self.answer(404, {"erreur": "inconnu"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n)
            if self.path != "/api/demandes":
                return self.answer(404, {"erreur": "inconnu"})
            try:
                payload = json.loads(raw)
                assert isinstance(payload, dict)
            except (ValueError, AssertionError):
                return self.answer(400, {"erreur": "JSON attendu"})
            key = self.headers.get("Idempotency-Key")
            kind = payload.get("type") if payload.get("type") in PREFIXES else "ENCOMBRANTS"
            with lock:
                state["posts"] += 1
                if key and key in state["keys"]:
                    numero = state["keys"][key]
                    log("POST /api/demandes: key seen, %s again" % numero)
                    return self.answer(200, {"numero": numero})
                state["created"] += 1
                numero = "%s-%06d" % (PREFIXES[kind], state["created"])
                if key:
                    state["keys"][key] = numero
                state["demandes"][numero] = {
                    "reference_civibus": payload.get("reference_civibus"), "type": kind,
                    "statut": None, "revision": 0, "keys": sorted(payload),
                    "canal": CANALS.get(payload.get("canal"), "AUTRE"),
                    "creee_le": fmt(datetime.datetime.now(datetime.timezone.utc)
                                    .astimezone(paris_tz)),
                    "commentaire": str(payload.get("commentaire") or "")[:500]}
            log("POST /api/demandes: created %s" % numero)
            first = 1
            if args.push_before and statuses:
                push(numero, 1)
                first = 2
            self.answer(201, {"numero": numero, "statut": statuses[0] if statuses else None})
            threading.Thread(target=lifecycle, args=(numero, first), daemon=True).start()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.api_port), Handler)
    srv.daemon_threads = True
    print("listening %d" % srv.server_address[1], flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    stop.wait(args.max_seconds)
    srv.shutdown()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("send", "once", "serve"):
        s = sub.add_parser(name)
        where = s.add_mutually_exclusive_group(required=True)
        where.add_argument("--port-file", help="file the adapter writes its port to (port: 0)")
        where.add_argument("--port", type=int, help="the adapter's fixed port")
        s.add_argument("--path", default="/webhooks/dechets")
        s.add_argument("--timeout", type=float, default=10.0)
        secret = s.add_mutually_exclusive_group(required=(name != "once"))
        secret.add_argument("--secret-file")
        secret.add_argument("--secret-env", help="environment variable holding the shared secret")
    s = sub.choices["send"]
    s.add_argument("--requests", type=int, default=100)
    s.add_argument("--prefix", default="DEC")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--concurrency", type=int, default=4)
    s.add_argument("--rate", type=float, default=0, help="bodies per second in all (0: as fast as answered)")
    s.add_argument("--garbage", type=int, default=0)
    s.add_argument("--forged", type=int, default=0)
    s.add_argument("--pad", type=int, default=0, help="make each comment this many characters long")
    s.add_argument("--max-backoff", type=float, default=2.0)
    s.add_argument("--max-seconds", type=float, default=120.0)
    s.add_argument("--results")
    s = sub.choices["once"]
    s.add_argument("--signature", choices=["good", "bad", "none"], default="good")
    s.add_argument("--method", default="POST")
    s.add_argument("--body")
    s.add_argument("--body-size", type=int, default=0)
    s = sub.choices["serve"]
    s.add_argument("--api-port", type=int, required=True)
    s.add_argument("--statuses", default="NOUVELLE,PLANIFIEE,TERMINEE")
    s.add_argument("--step-ms", type=int, default=500)
    s.add_argument("--push-before", action="store_true")
    s.add_argument("--max-seconds", type=float, default=300.0)
    s.add_argument("--max-backoff", type=float, default=1.0)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.cmd == "serve":
        return serve(args)
    return send(args) if args.cmd == "send" else once(args)


if __name__ == "__main__":
    sys.exit(main())
