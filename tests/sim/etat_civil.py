#!/usr/bin/env python3
"""tests/sim/etat_civil.py — a civil-registry (état civil) back office's REST API.

Citizens ask the town hall for copies of birth, marriage and death certificates
(acte de naissance / mariage / décès); an agent handles each request through
statuses DEPOSEE -> EN_COURS -> (A_COMPLETER -> EN_COURS) -> DELIVREE | REFUSEE |
ANNULEE. Every status change writes a new version of the request, stamped `maj`
(ISO 8601, Paris time with its offset: the data crosses the switch to summer time on
31 March 2024). A nightly batch cancels, at one and the same second, every request
still waiting for documents: more records share that timestamp than a page holds.

API (what the adapter polls):
    GET /api/v1/demandes?modifie_depuis=ISO&limite=N
        -> {"demandes": [versions with maj >= modifie_depuis, in maj order],
            "nombre": n, "limite": N}
    Authorization: Bearer TOKEN when --token is given (401 otherwise).

The data is generated from --seed; the same person appears written as the registry
writes people (upper-case family names, "née MARTIN", all given names), among them
DUPONT Jean-Pierre, born 12/05/1971, jp.dupont@example.fr, 06 12 34 56 78.

Faults, for the tests (request numbers count API requests from 1):
    --fail-every K      every K-th request answers HTTP 500 (an HTML error page)
    --garbage-every K   every K-th request answers 200 with a truncated JSON body
    --slow-every K      every K-th request answers after --slow-ms (default 2000)
    --down-after K      after the K-th request the port is closed (connection refused)
                        for --down-seconds, then opened again
    --bad-records       adds one record with an impossible date and one list element
                        that is not an object (the hub dead-letters both)
    --release-per-second R   versions become visible over time, R per second
                        (updates arriving while the adapter reads); 0: all at once

The first stdout line is the port (bound on 127.0.0.1; --port 0 picks a free one).
--log FILE writes one JSON line per request (number, since, status, count, largest maj,
fault). --expect FILE writes the event ids (numero|version) of every valid version.
Stops on SIGTERM/SIGINT or after --max-seconds. Python standard library only.
"""
import argparse
import json
import random
import signal
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
PATH = "/api/v1/demandes"

# (id, civilité, nom d'usage, nom de naissance, prénoms, naissance, courriel, téléphone,
#  (voie, code postal, commune))
PEOPLE = [
    ("USG-000077", "M.", "DUPONT", None, "Jean-Pierre, Marcel", "12/05/1971", "JP.Dupont@example.fr",
     "06 12 34 56 78", ("12 rue de l'Église", "75019", "PARIS")),
    ("USG-000102", "Mme", "LEFÈVRE", "MARTIN", "Claire, Anne", "03/11/1984", "claire.lefevre@example.fr",
     "07 81 22 45 90", ("4 allée des Tilleuls", "75020", "PARIS")),
    ("USG-000131", "M.", "N'DIAYE", None, "Mamadou, Cheikh", "21/02/1990", "m.ndiaye@example.org",
     "06 45 67 89 01", ("88 boulevard de Belleville", "75020", "PARIS")),
    ("USG-000140", "Mme", "CŒUR", "DE LA FONTAINE", "Éloïse", "30/07/1979", None, "01 43 55 12 09",
     ("5 place de l'Hôtel-de-Ville", "75004", "PARIS")),
    ("USG-000155", "Mme", "DE LA FONTAINE", None, "Hélène, Marie-Thérèse", "14/01/1948", None, None,
     ("17 rue du Faubourg-Saint-Antoine", "75011", "PARIS")),
    ("USG-000168", "M.", "GARCÍA", None, "José, Luis", "09/09/1966", "jose.garcia@example.com", "06 98 76 54 32",
     ("3 impasse des Lilas", "93100", "MONTREUIL")),
    ("USG-000177", "Mme", "NGUYEN", "TRAN", "Thi Lan", "25/12/1992", "lan.nguyen@example.fr", "07 12 12 12 12",
     ("41 avenue de Choisy", "75013", "PARIS")),
    ("USG-000190", "M.", "LÉVÊQUE", None, "François-Xavier, Benoît", "01/04/1958", "fx.leveque@example.fr",
     "06 01 02 03 04", ("2 quai de la Tournelle", "75005", "PARIS")),
    ("USG-000203", "Mme", "O'BRIEN", "MÜLLER", "Zoé", "18/06/2001", "zoe.obrien@example.ie", "+353 87 123 4567",
     ("9 rue Œberkampf", "75011", "PARIS")),
    ("USG-000215", "M.", "BENNANI", None, "Youssef", "05/03/1975", "y.bennani@example.ma", "06 33 44 55 66",
     ("120 rue de la Roquette", "75011", "PARIS")),
    ("USG-000228", "Mme", "MARTIN", None, "Chloé, Inès", "22/08/1996", "chloe.martin@example.fr", "06 77 88 99 00",
     ("6 rue « Le Bon Marché »", "75007", "PARIS")),
    ("USG-000239", "Mme", "ROUSSEAU", "D'ALMEIDA", "Maëlle, Noémie", "11/10/1988", "maelle.r@example.fr",
     "07 66 55 44 33", ("33 rue d'Alésia", "75014", "PARIS")),
]
FAMILY = ["BERNARD", "PETIT", "DURAND", "MOREAU", "LAURENT", "SIMON", "MICHEL", "LEROY", "ROUX", "FOURNIER",
          "GIRARD", "BONNET", "FRANÇOIS", "MERCIER", "BLANC", "GUÉRIN", "MULLER", "HENRY", "ROUSSEL", "FAURE",
          "ANDRÉ", "GAUTIER", "CHEVALIER", "DIALLO", "TRAORÉ", "DA SILVA", "LE GOFF", "KERVÉLLA"]
GIVEN_F = ["Marie", "Camille", "Léa", "Manon", "Inès", "Jeanne", "Anaïs", "Sophie", "Aïcha", "Françoise"]
GIVEN_M = ["Louis", "Hugo", "Gabriel", "Raphaël", "Arthur", "Noé", "Jérôme", "Mathéo", "Karim", "Stéphane"]
STREETS = ["rue de la Paix", "avenue Jean-Jaurès", "rue Saint-Maur", "boulevard Voltaire", "rue de Ménilmontant",
           "rue du Château-d'Eau", "passage Brady", "rue Oberkampf"]
COMMUNES_ACTE = ["PARIS 14E", "PARIS 11E", "PARIS 20E", "MONTREUIL", "SAINT-DENIS", "LYON 3E", "PARIS 19E"]


def make_people(rng, n):
    people = list(PEOPLE)
    for k in range(n):
        woman = rng.random() < 0.5
        nom = rng.choice(FAMILY)
        naissance = None
        if woman and rng.random() < 0.4:
            naissance = rng.choice(FAMILY)
        given = rng.sample(GIVEN_F if woman else GIVEN_M, rng.choice([1, 2, 2, 3]))
        d = datetime(1935, 1, 1) + timedelta(days=rng.randrange(0, 70 * 365))
        mail = None if rng.random() < 0.25 else "%s.%s@example.fr" % (given[0].lower(), nom.lower().replace(" ", ""))
        tel = None if rng.random() < 0.2 else "0%d %02d %02d %02d %02d" % (
            rng.choice([1, 6, 7]), rng.randrange(100), rng.randrange(100), rng.randrange(100), rng.randrange(100))
        people.append(("USG-%06d" % (300 + k * 7), "Mme" if woman else "M.", nom, naissance, ", ".join(given),
                       d.strftime("%d/%m/%Y"), mail, tel,
                       ("%d %s" % (rng.randrange(1, 200), rng.choice(STREETS)), "750%02d" % rng.randrange(1, 21),
                        "PARIS")))
    return people


def demandeur(p, qualite):
    pid, civ, nom, naissance, prenoms, date_n, mail, tel, (voie, cp, commune) = p
    designation = "%s %s%s %s" % (civ, nom, (" née " + naissance) if naissance else "", prenoms)
    return {
        "id_usager": pid, "civilite": civ, "nom_usage": nom, "nom_naissance": naissance, "prenoms": prenoms,
        "date_naissance": date_n, "courriel": mail, "telephone": tel,
        "adresse": {"voie": voie, "complement": None, "code_postal": cp, "commune": commune},
        "qualite": qualite, "designation": designation,
    }


def paris(t):
    return t.astimezone(PARIS)


def generate(seed, n, bad_records):
    """The change log: a list of (utc time, record) in maj order."""
    rng = random.Random(seed)
    people = make_people(rng, 40)
    base = datetime(2024, 3, 25, 7, 0, tzinfo=timezone.utc)
    log, waiting = [], []
    for i in range(n):
        person = people[0] if i in (3, n // 2) else rng.choice(people)
        acte = rng.choice(["NAISSANCE"] * 5 + ["MARIAGE"] * 3 + ["DECES"] * 2)
        nature = "COPIE_INTEGRALE" if acte == "DECES" else rng.choice(
            ["COPIE_INTEGRALE", "EXTRAIT_AVEC_FILIATION", "EXTRAIT_SANS_FILIATION", "EXTRAIT_PLURILINGUE"])
        canal = rng.choice(["GUICHET"] * 6 + ["INTERNET"] * 9 + ["COURRIER"] * 4 + ["COMEDEC"])
        qualite = "NOTAIRE" if canal == "COMEDEC" else rng.choice(
            ["DESCENDANT", "CONJOINT"] if acte == "DECES" else ["TITULAIRE", "TITULAIRE", "PARENT", "CONJOINT"])
        exemplaires = rng.choice([1, 1, 1, 2, 3])
        libelle = {"NAISSANCE": "naissance", "MARIAGE": "mariage", "DECES": "décès"}[acte]
        nature_txt = {"COPIE_INTEGRALE": "Copie intégrale", "EXTRAIT_AVEC_FILIATION": "Extrait avec filiation",
                      "EXTRAIT_SANS_FILIATION": "Extrait sans filiation",
                      "EXTRAIT_PLURILINGUE": "Extrait plurilingue"}[nature]
        t0 = (base + timedelta(minutes=37 * i + rng.randrange(0, 20))).replace(second=0)
        numero = "EC-2024-%06d" % (i + 1)
        fixed = {
            "numero": numero, "type_acte": acte, "nature_copie": nature, "nombre_exemplaires": exemplaires,
            "canal": canal, "objet": "%s d'acte de %s (%d ex.)" % (nature_txt, libelle, exemplaires),
            "date_depot": paris(t0).strftime("%d/%m/%Y %H:%M"),
            "date_limite": (paris(t0) + timedelta(days=10)).strftime("%d/%m/%Y"),
            "demandeur": demandeur(person, qualite),
            "acte": {"annee": rng.randrange(1940, 2024), "commune": rng.choice(COMMUNES_ACTE)},
        }
        steps = [("DEPOSEE", None)]
        r = rng.random()
        steps.append(("EN_COURS", None))
        if r < 0.30:
            steps.append(("A_COMPLETER", "Justificatif de filiation manquant"))
            if rng.random() < 0.3:
                steps += [("EN_COURS", None), ("DELIVREE", None)]
        elif r < 0.85:
            steps.append(("DELIVREE", None))
        elif r < 0.92:
            steps.append(("REFUSEE", "Demandeur non habilité à obtenir une copie intégrale"))
        elif r < 0.96:
            steps.append(("ANNULEE", "Annulée à la demande de l'usager"))
        t = t0
        for v, (statut, motif) in enumerate(steps, start=1):
            if v > 1:
                t = (t + timedelta(minutes=rng.randrange(20, 60 * 30))).replace(second=0)
            log.append((t, version(fixed, v, statut, motif, t, rng)))
        if steps[-1][0] == "A_COMPLETER":
            waiting.append((fixed, len(steps) + 1))
    # the nightly batch: one second, many records
    last = max(t for t, _ in log)
    night = paris(last).replace(hour=23, minute=0, second=0) + timedelta(days=1)
    for fixed, v in waiting:
        log.append((night.astimezone(timezone.utc),
                    version(fixed, v, "ANNULEE", "Clôture automatique : pièces non fournies sous 30 jours",
                            night, rng, agent="BATCH-NUIT")))
    log.sort(key=lambda e: (e[0], e[1]["numero"], e[1]["version"]))
    if bad_records:
        t, rec = log[len(log) // 3]
        bad = json.loads(json.dumps(rec))
        bad["numero"] = "EC-2024-999001"
        bad["date_limite"] = "31/02/2024"
        log.insert(len(log) // 3 + 1, (t, bad))
        t, _ = log[2 * len(log) // 3]
        log.insert(2 * len(log) // 3 + 1, (t, "#ERREUR# fiche verrouillée par un autre agent"))
    return log


def version(fixed, v, statut, motif, t, rng, agent=None):
    rec = dict(fixed)
    rec.update({
        "version": v, "statut": statut, "motif": motif,
        "date_statut": paris(t).strftime("%d/%m/%Y %H:%M"),
        "maj": paris(t).isoformat(timespec="seconds"),
        "agent": agent or "AGT-EC-%02d" % rng.randrange(1, 9),
    })
    return rec


def is_valid(rec):
    return isinstance(rec, dict) and rec.get("date_limite") != "31/02/2024"


class Sim:
    def __init__(self, args):
        self.args = args
        self.log = generate(args.seed, args.records, args.bad_records)
        self.lock = threading.Lock()
        self.requests = 0
        self.started = time.monotonic()
        self.logfile = open(args.log, "a", encoding="utf-8") if args.log else None
        self.down = threading.Event()
        self.stop = threading.Event()

    def visible(self):
        rate = self.args.release_per_second
        if rate <= 0:
            return len(self.log)
        return min(len(self.log), int(rate * (1 + time.monotonic() - self.started)))

    def note(self, entry):
        if self.logfile:
            with self.lock:
                self.logfile.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.logfile.flush()


class Handler(BaseHTTPRequestHandler):
    server_version = "EtatCivilSim/2.3"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json; charset=utf-8"):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        sim = self.server.sim
        a = sim.args
        url = urlparse(self.path)
        if url.path != PATH:
            return self.reply(404, json.dumps({"erreur": "ressource inconnue"}))
        if a.token and self.headers.get("Authorization") != "Bearer " + a.token:
            sim.note({"status": 401})
            return self.reply(401, json.dumps({"erreur": "authentification requise"}))
        with sim.lock:
            sim.requests += 1
            n = sim.requests
        q = parse_qs(url.query)
        since_text = q.get("modifie_depuis", [None])[0]
        entry = {"n": n, "t": round(time.monotonic() - sim.started, 3), "since": since_text}
        if a.down_after and n == a.down_after:
            sim.down.set()
        if a.fail_every and n % a.fail_every == 0:
            entry.update(status=500, fault="fail")
            sim.note(entry)
            return self.reply(500, "<html><head><title>Erreur 500</title></head><body><h1>Erreur interne"
                                   "</h1><p>java.lang.NullPointerException</p></body></html>", "text/html")
        try:
            limite = max(1, min(a.page_size_max, int(q.get("limite", ["50"])[0])))
            since = None
            if since_text:
                since = datetime.fromisoformat(since_text)
                if since.tzinfo is None:
                    since = since.replace(tzinfo=PARIS)
        except ValueError:
            entry.update(status=400)
            sim.note(entry)
            return self.reply(400, json.dumps({"erreur": "paramètre invalide"}))
        page = []
        for t, rec in sim.log[:sim.visible()]:
            if since is None or t >= since:
                page.append((t, rec))
                if len(page) == limite:
                    break
        body = json.dumps({"demandes": [r for _, r in page], "nombre": len(page), "limite": limite},
                          ensure_ascii=False)
        entry.update(status=200, count=len(page),
                     max_maj=paris(page[-1][0]).isoformat(timespec="seconds") if page else None)
        if a.garbage_every and n % a.garbage_every == 0:
            entry["fault"] = "garbage"
            body = body[: len(body) // 2]
        elif a.slow_every and n % a.slow_every == 0:
            entry["fault"] = "slow"
            time.sleep(a.slow_ms / 1000.0)
        sim.note(entry)
        self.reply(200, body)


def serve(sim, port):
    for _ in range(50):
        try:
            srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit("etat_civil.py: cannot bind 127.0.0.1:%d" % port)
    srv.daemon_threads = True
    srv.sim = sim
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--records", type=int, default=300, help="number of requests (each has several versions)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    p.add_argument("--page-size-max", type=int, default=500)
    p.add_argument("--release-per-second", type=float, default=0)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--garbage-every", type=int, default=0)
    p.add_argument("--slow-every", type=int, default=0)
    p.add_argument("--slow-ms", type=int, default=2000)
    p.add_argument("--down-after", type=int, default=0)
    p.add_argument("--down-seconds", type=float, default=3)
    p.add_argument("--bad-records", action="store_true")
    p.add_argument("--log", default=None)
    p.add_argument("--expect", default=None)
    p.add_argument("--max-seconds", type=float, default=600)
    args = p.parse_args()

    sim = Sim(args)
    if args.expect:
        with open(args.expect, "w", encoding="utf-8") as f:
            for _, rec in sim.log:
                if is_valid(rec):
                    f.write("%s|%d\n" % (rec["numero"], rec["version"]))
    signal.signal(signal.SIGTERM, lambda *_: sim.stop.set())
    signal.signal(signal.SIGINT, lambda *_: sim.stop.set())
    srv = serve(sim, args.port)
    port = srv.server_address[1]
    print(port, flush=True)
    deadline = time.monotonic() + args.max_seconds
    while not sim.stop.is_set() and time.monotonic() < deadline:
        if sim.down.wait(0.1):
            sim.down.clear()
            time.sleep(0.05)           # let the answer in progress go out
            srv.shutdown()
            srv.server_close()
            sim.note({"down": args.down_seconds})
            time.sleep(args.down_seconds)
            srv = serve(sim, port)
            sim.note({"up": True})
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
