#!/usr/bin/env python3
"""tests/sim/urbanisme.py — an urban-planning (ADS) software's export folder.

The ADS software instructs permit dossiers: déclaration préalable (DP, DPMI), permis de
construire (PC, or PCMI for a house), permis d'aménager (PA), permis de démolir (PD),
certificat d'urbanisme (CUa, CUb). A dossier goes through Dépôt -> (Incomplet ->)
En instruction, and the mayor signs a decision (arrêté): Accord, Accord avec
prescriptions, Accord tacite, Refus. The software exports:

  dossiers-YYYYMMDD.csv   every status change of the day and the day before (so two
                          exports overlap), ";"-separated, CRLF, Windows-1252 — or
                          UTF-8 with a byte order mark when the agent picked the
                          "Excel (UTF-8)" option; quoted fields hold ";" and line breaks
  arretes-YYYYMMDD.xml    the decisions signed, for the prefecture (<arrete> records,
                          Windows-1252 or UTF-8 with its XML declaration)

Each file is written under a temporary name (.export-<n>.tmp), in several chunks with
pauses (a reader that does not wait for the rename sees half a file), then renamed.
Applicants are written as this software writes people — "Dupont" / "Jean Pierre"
(mixed case, no hyphen), born 12/05/1971, phone +33 6 12 34 56 78 — the same person the
civil registry writes "DUPONT Jean-Pierre".

Scenarios (--scenario):
  it      the integration test's files, at --interval-ms apart: 3 good CSV exports
          (Windows-1252 CRLF; UTF-8 BOM; LF with quoted line breaks), 1 truncated CSV
          (ends inside a quoted field), 2 good XML exports (one with a decision dated
          30 February, which the hub dead-letters), 1 truncated XML; plus a temporary
          file that is never renamed
  big     one export of --records rows (the kill -9 test)
  demo    the `it` files spread over time, then a new small export every --interval-ms

Output: the first stdout line is "ready"; then one JSON line per file written:
{"file": name, "format": "csv"|"xml", "records": n, "valid": true|false}.
--expect FILE writes the event id (as the mapping builds it) of every record the hub
must store, one a line; --dead FILE the ids it must dead-letter. Stops after
--max-seconds or on SIGTERM/SIGINT. Python standard library only.
"""
import argparse
import csv
import io
import json
import os
import random
import signal
import sys
import time
from datetime import date, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

HEADER = ["N° dossier", "Type", "Nature", "Date dépôt", "État", "Date état", "Canal",
          "Pétitionnaire (id)", "Civilité", "Nom", "Prénom", "Date de naissance", "Téléphone",
          "Courriel", "Adresse", "Code postal", "Commune", "Adresse du terrain", "Surface (m²)",
          "Objet"]

# (id, civilité, nom, prénom, naissance, téléphone, courriel, adresse, code postal, commune)
PEOPLE = [
    ("PET-00412", "M.", "Dupont", "Jean Pierre", "12/05/1971", "+33 6 12 34 56 78",
     "JP.Dupont@Example.fr", "12, rue de l’Église", "75019", "Paris"),
    ("PET-00518", "Mme", "Lefèvre", "Claire", "03/11/1984", "07 81 22 45 90",
     "claire.lefevre@example.fr", "4 allée des Tilleuls", "75020", "Paris"),
    ("PET-00622", "M.", "N'Diaye", "Mamadou", "21/02/1990", "06 45 12 78 33",
     "m.ndiaye@example.org", "37 bd de Belleville", "75011", "Paris"),
    ("PET-00731", "Mme", "Cœur", "Anaïs", "30/07/1978", "01 43 55 67 89",
     "anais.coeur@example.fr", "8 impasse du Bœuf", "75019", "Paris"),
    ("PET-00845", "M.", "de La Fontaine", "François-Xavier", "14/09/1966", "06 98 76 54 32",
     "fx.delafontaine@example.com", "2 quai de l’Oise", "75019", "Paris"),
    ("PET-00952", "SCI", "SCI Les Lilas « Résidence »", None, None, "01 40 00 00 01",
     "contact@sci-leslilas.example.fr", "15 rue des Lilas", "75019", "Paris"),
]

KINDS = [  # (type, nature, objet)
    ("DP", "DP", "Ravalement de façade et remplacement des menuiseries"),
    ("DP", "DPMI", "Pose d’un abri de jardin de 9 m²"),
    ("PC", "PCMI", "Construction d’une maison individuelle « côté jardin »"),
    ("PC", "PC", "Surélévation d’un immeuble — création de 4 logements"),
    ("PA", "PA", "Lotissement de 6 lots, voirie et réseaux (coût estimé 450 000 €)"),
    ("PD", "PD", "Démolition d’un hangar ; œil-de-bœuf conservé"),
    ("CU", "CUa", "Certificat d’urbanisme d’information"),
    ("CU", "CUb", "Certificat d’urbanisme opérationnel : division en 2 lots"),
]
CHANNELS = ["Guichet", "Courrier", "Dépôt en ligne", "Dépôt en ligne", "Courriel"]
DECISIONS = ["Accord", "Accord", "Accord avec prescriptions", "Accord tacite", "Refus"]

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def pause(seconds, deadline):
    end = time.monotonic() + seconds
    while not stop and time.monotonic() < min(end, deadline):
        time.sleep(0.02)


class Dossier:
    def __init__(self, rng, n, filed):
        self.kind = KINDS[n % len(KINDS)]
        self.person = PEOPLE[n % len(PEOPLE)] if n % 5 else PEOPLE[0]
        self.numero = "%s 075056 24 %05d" % (self.kind[0], 12 + n)
        self.filed = filed
        self.channel = CHANNELS[n % len(CHANNELS)]
        self.terrain = "%d rue de Crimée, parcelle AB %d" % (rng.randint(1, 200), rng.randint(10, 999))
        self.surface = str(rng.randint(9, 900))
        self.objet = self.kind[2]
        if n % 7 == 3:   # the software keeps the line breaks agents type
            self.objet += "\nPièces complémentaires : plan de masse; notice « PC4 »"

    def row(self, state, when):
        p = self.person
        return [self.numero, self.kind[0], self.kind[1], self.filed.strftime("%d/%m/%Y"), state,
                when.strftime("%d/%m/%Y %H:%M"), self.channel, p[0], p[1], p[2], p[3] or "",
                p[4] or "", p[5], p[6], p[7], p[8], p[9], self.terrain, self.surface, self.objet]


def event_id(row):
    return "%s|%s|%s" % (row[0].strip(), row[4].strip(), row[5].strip())


def movements(rng, dossiers):
    """(day, row) for every status change, in time order."""
    out = []
    for d in dossiers:
        t = datetime.combine(d.filed, datetime.min.time()) + timedelta(hours=8, minutes=rng.randint(30, 600))
        out.append((t, d.row("Dépôt", t)))
        if rng.random() < 0.3:
            t += timedelta(days=rng.randint(3, 12), minutes=rng.randint(1, 300))
            out.append((t, d.row("Incomplet", t)))
        t += timedelta(days=rng.randint(2, 9), minutes=rng.randint(1, 300))
        out.append((t, d.row("En instruction", t)))
    out.sort(key=lambda x: x[0])
    return out


def csv_bytes(rows, encoding, newline="\r\n"):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", quotechar='"', lineterminator=newline)
    w.writerow(HEADER)
    for r in rows:
        w.writerow(r)
    text = buf.getvalue()
    return text.encode("utf-8-sig") if encoding == "utf-8-sig" else text.encode(encoding)


def decision_xml(rng, decisions, encoding):
    lines = ['<?xml version="1.0" encoding="%s"?>' % encoding,
             '<ads:export xmlns:ads="urn:example:ads:2" logiciel="ADS" version="4.2">',
             "  <ads:arretes>"]
    for numero, signed, d, decision in decisions:
        p = d.person
        lines += [
            '    <ads:arrete numero=%s date_signature="%s">' % (quoteattr(numero), signed),
            '      <dossier numero=%s type="%s" nature="%s"/>' % (quoteattr(d.numero), d.kind[0], d.kind[1]),
            "      <decision>%s</decision>" % escape(decision),
            '      <petitionnaire id="%s">' % p[0],
            "        <civilite>%s</civilite>" % escape(p[1]),
            "        <nom>%s</nom>" % escape(p[2]),
        ]
        if p[3]:
            lines.append("        <prenom>%s</prenom>" % escape(p[3]))
        if p[4]:
            dd, mm, yy = p[4].split("/")
            lines.append("        <naissance>%s-%s-%s</naissance>" % (yy, mm, dd))
        lines += [
            "        <telephone>%s</telephone>" % escape(p[5]),
            "        <courriel>%s</courriel>" % escape(p[6]),
            "        <adresse><ligne>%s</ligne><code_postal>%s</code_postal><commune>%s</commune></adresse>"
            % (escape(p[7]), p[8], escape(p[9])),
            "      </petitionnaire>",
            "      <terrain><adresse>%s</adresse></terrain>" % escape(d.terrain),
            "      <objet><![CDATA[%s]]></objet>" % d.objet,
            "    </ads:arrete>",
        ]
    lines += ["  </ads:arretes>", "</ads:export>", ""]
    return "\n".join(lines).encode(encoding)


class Writer:
    def __init__(self, out, deadline, chunk_pause):
        self.out, self.deadline, self.chunk_pause, self.n = out, deadline, chunk_pause, 0

    def write(self, name, data, fmt, records, valid):
        """Writes under a temporary name in 4 chunks, then renames. Stopped
        (SIGTERM, --max-seconds), it removes the temporary file and exits."""
        self.n += 1
        tmp = os.path.join(self.out, ".export-%d.tmp" % self.n)
        with open(tmp, "wb") as f:
            step = max(1, len(data) // 4)
            for i in range(0, len(data), step):
                if stop or time.monotonic() >= self.deadline:
                    f.close()
                    os.unlink(tmp)
                    sys.exit(0)
                f.write(data[i:i + step])
                f.flush()
                pause(self.chunk_pause, self.deadline)
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.out, name))
        print(json.dumps({"file": name, "format": fmt, "records": records, "valid": valid}), flush=True)


def scenario_it(rng, w, interval, expect, dead):
    days = [date(2024, 3, 14) + timedelta(days=i) for i in range(6)]
    dossiers = [Dossier(rng, n, days[n % 4]) for n in range(24)]
    moves = movements(rng, dossiers)

    def rows_until(first, last):
        return [r for t, r in moves if first <= t.date() <= last]

    # three good exports: each covers its day and the day before (they overlap), the
    # last one everything since the day before; together, every movement
    plan = [(days[1], "cp1252", "\r\n"), (days[2], "utf-8-sig", "\r\n"), (days[3], "cp1252", "\n")]
    for day, enc, nl in plan:
        rows = rows_until(day - timedelta(days=1), day if day != days[3] else date.max)
        w.write("dossiers-%s.csv" % day.strftime("%Y%m%d"), csv_bytes(rows, enc, nl), "csv", len(rows), True)
        expect.update(event_id(r) for r in rows)
        pause(interval, w.deadline)
    # a truncated export: the disk filled up inside a quoted multi-line field
    extra = Dossier(rng, 100, days[4])
    extra.objet = "Extension d’une véranda\nsur cour ; hauteur 3 m"
    rows = [extra.row("Dépôt", datetime(2024, 3, 18, 9, 5)), extra.row("En instruction", datetime(2024, 3, 18, 9, 6))]
    full = csv_bytes(rows, "cp1252")
    cut = full.rindex(b"\xe9randa\n") + len(b"\xe9randa\n")
    w.write("dossiers-20240319.csv", full[:cut], "csv", 0, False)
    pause(interval, w.deadline)

    # decisions: windows-1252 then UTF-8 (with a 30 February the hub dead-letters)
    decided = [d for d in dossiers if d.kind[0] != "CU"]
    batches = [decided[: len(decided) // 2], decided[len(decided) // 2:]]
    for i, (batch, enc) in enumerate(zip(batches, ["windows-1252", "UTF-8"])):
        decisions = []
        for k, d in enumerate(batch):
            signed = datetime.combine(d.filed, datetime.min.time()) + timedelta(days=30 + k, hours=16, minutes=20)
            decisions.append(("ARR-2024-%04d" % (40 + 20 * i + k), signed.strftime("%Y-%m-%dT%H:%M:%S"), d,
                              DECISIONS[k % len(DECISIONS)]))
        if i == 1:
            decisions.append(("ARR-2024-0099", "2024-02-30T10:00:00", batch[0], "Refus"))
            dead.add("ARR-2024-0099|2024-02-30T10:00:00")
        expect.update("%s|%s" % (n, s) for n, s, d, x in decisions if not s.startswith("2024-02-30"))
        w.write("arretes-%s.xml" % days[4 + i].strftime("%Y%m%d"), decision_xml(rng, decisions, enc), "xml",
                len(decisions), True)
        pause(interval, w.deadline)

    # a truncated XML export
    data = decision_xml(rng, [("ARR-2024-0100", "2024-04-20T11:00:00", extra, "Accord")], "UTF-8")
    w.write("arretes-20240322.xml", data[: len(data) * 2 // 3], "xml", 0, False)
    # a temporary file the software never finished
    with open(os.path.join(w.out, ".export-999.tmp"), "wb") as f:
        f.write(full[:40])


def scenario_big(rng, w, records, expect):
    dossiers = [Dossier(rng, n, date(2024, 4, 1) + timedelta(days=n % 28)) for n in range(records)]
    rows = []
    for n, d in enumerate(dossiers):
        d.numero = "PC 075056 24 9%06d" % n
        t = datetime(2024, 4, 1, 8, 0) + timedelta(minutes=n)
        rows.append(d.row("Dépôt", t))
    expect.update(event_id(r) for r in rows)
    w.write("dossiers-20240430-reprise.csv", csv_bytes(rows, "cp1252"), "csv", len(rows), True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the export folder (the adapter's inbox)")
    ap.add_argument("--scenario", choices=["it", "big", "demo"], default="it")
    ap.add_argument("--records", type=int, default=20000, help="rows of the big export")
    ap.add_argument("--interval-ms", type=int, default=200, help="pause between two files")
    ap.add_argument("--chunk-ms", type=int, default=50, help="pause between the chunks of a file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expect", help="write the event ids the hub must store")
    ap.add_argument("--dead", help="write the event ids the hub must dead-letter")
    ap.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    deadline = time.monotonic() + args.max_seconds
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    w = Writer(args.out, deadline, args.chunk_ms / 1000.0)
    expect, dead = set(), set()
    print("ready", flush=True)
    if args.scenario == "big":
        scenario_big(rng, w, args.records, expect)
    else:
        scenario_it(rng, w, args.interval_ms / 1000.0, expect, dead)
    if args.expect:
        with open(args.expect, "w", encoding="utf-8") as f:
            f.writelines(e + "\n" for e in sorted(expect))
    if args.dead:
        with open(args.dead, "w", encoding="utf-8") as f:
            f.writelines(e + "\n" for e in sorted(dead))
    n = 0
    while args.scenario == "demo" and not stop and time.monotonic() < deadline:
        pause(args.interval_ms / 1000.0, deadline)
        if stop or time.monotonic() >= deadline:
            break
        n += 1
        d = Dossier(rng, 200 + n, date.today())
        now = datetime.now().replace(second=0, microsecond=0)
        rows = [d.row("Dépôt", now)]
        w.write("dossiers-%s-%04d.csv" % (date.today().strftime("%Y%m%d"), n), csv_bytes(rows, "cp1252"), "csv",
                1, True)


if __name__ == "__main__":
    main()
