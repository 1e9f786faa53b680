#!/usr/bin/env python3
"""gen.py OUTDIR EVENTS [--tag T] [--only SOURCE] — the benchmark's raw records.

A city's year of citizen requests, as three back-office softwares would export them,
one JSON-lines file per source in OUTDIR: etat_civil.jsonl (civil registry: requests
for certificates, ISO dates with offsets, no event id: the hub hashes the record),
urbanisme.jsonl (permits: nested file numbers, Paris wall-clock dates, two rules)
and dechets.jsonl (waste management: demo-like, one record per version). Mappings:
tests/bench/mappings/.

Shape: requests open evenly over 2024 (one source in turn); each follows a lifecycle
of 2 to 7 steps (about 4.9 on average, a few outside the normal lifecycle, which the
store flags); steps are hours to days apart. Each file is in time order, as an export
would be, so a request's events are spread over the file (and over the hub's
batches). Each citizen files about 2.5 requests per source; citizen number i of
every source is the same person (same name, birth date, e-mail and phone), as when
several softwares know one inhabitant; 1 in 20 moves mid-year (a new address: the
identity is updated). French text: accents, apostrophes,
typographic quotes, dashes. The ids carry the tag (default B), so several data sets
can go into one database. Exactly EVENTS events in all. Deterministic: the same
arguments give the same bytes. Prints a JSON summary (counts) on stdout."""
import argparse
import heapq
import json
import os
import random
import unicodedata
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
YEAR_START = datetime(2024, 1, 1, 7, 0, tzinfo=timezone.utc).timestamp()
YEAR_SECONDS = 366 * 86400
MID_YEAR = YEAR_START + YEAR_SECONDS / 2
SOURCES = ["etat_civil", "urbanisme", "dechets"]

# Lifecycles in canonical statuses, with weights (mean 4.89 steps). The last one
# leaves the lifecycle (in_progress -> closed is not a normal change): flagged.
LIFECYCLES = [
    (45, ["received", "acknowledged", "in_progress", "resolved", "closed"]),
    (20, ["received", "acknowledged", "in_progress", "waiting_citizen", "in_progress",
          "resolved", "closed"]),
    (15, ["received", "in_progress", "resolved"]),
    (10, ["received", "acknowledged", "in_progress", "rejected", "closed"]),
    (4, ["received", "cancelled"]),
    (3, ["received", "acknowledged", "cancelled", "closed"]),
    (3, ["received", "in_progress", "closed"]),
]
MEAN_STEPS = sum(w * len(s) for w, s in LIFECYCLES) / sum(w for w, _ in LIFECYCLES)

CODES = {   # each software's own status codes
    "etat_civil": {"received": "DEPOT", "acknowledged": "PRISE_EN_CHARGE",
                   "in_progress": "VERIFICATION", "waiting_citizen": "PIECE_MANQUANTE",
                   "resolved": "DELIVRE", "rejected": "REFUS", "cancelled": "ANNULATION",
                   "closed": "ARCHIVE"},
    "urbanisme": {"received": "DEPOT", "acknowledged": "RECEPISSE", "in_progress": "INSTRUCTION",
                  "waiting_citizen": "INCOMPLET", "resolved": "ACCORD", "rejected": "REFUS",
                  "cancelled": "RETRAIT", "closed": "CLOTURE"},
    "dechets": {"received": "RECU", "acknowledged": "PRIS_EN_COMPTE", "in_progress": "EN_COURS",
                "waiting_citizen": "ATTENTE_USAGER", "resolved": "TRAITE", "rejected": "REFUSE",
                "cancelled": "ANNULE", "closed": "CLOS"},
}

NOMS = ["DUPONT", "LEFÈVRE", "N'DIAYE", "CŒUR", "MARTIN", "BERNARD", "THOMAS", "PETIT",
        "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU", "LAURENT", "SIMON", "MICHEL",
        "GARÇON", "LÉVÊQUE", "D'ALMEIDA", "NGUYỄN", "BENOÎT", "FONTAINE", "ROUSSEL", "HAMIDI",
        "BÉNÉZET", "LE GOFF", "MÜLLER", "DA SILVA", "TRAORÉ", "CHÂTELAIN", "PÉREZ", "FAURE"]
PRENOMS = ["Jean-Pierre", "Chloé", "Aïssatou", "Bérénice", "Élodie", "François", "Zoé",
           "Anaïs", "Loïc", "Maël", "Hélène", "Jérôme", "Inès", "Noël", "Gaëlle", "Stéphane",
           "Océane", "Raphaël", "Léa", "Mathéo", "Amélie", "Joël", "Céline", "Thaïs"]
VOIES = ["rue de l’Église", "avenue Jean-Jaurès", "boulevard de la Villette",
         "rue des Pyrénées", "place de la Réunion", "impasse du Moulin-à-Vent",
         "rue Saint-Maur", "quai de la Gironde", "allée des Fêtes", "rue de Belleville",
         "cité Véron", "rue Édouard-Pailleron"]
CP = ["75011", "75012", "75018", "75019", "75020", "93100", "93500"]
VILLES = {"75011": "Paris", "75012": "Paris", "75018": "Paris", "75019": "Paris",
          "75020": "Paris", "93100": "Montreuil", "93500": "Pantin"}

ACTES = ["NAISSANCE", "MARIAGE", "DECES", "RECONNAISSANCE"]
MODES = ["internet", "guichet", "courrier", "internet", "telephone"]
MOTIFS = ["Copie intégrale d’acte de {a} — dossier de mariage à l’étranger",
          "Extrait avec filiation, « urgent » : renouvellement de passeport",
          "Extrait sans filiation pour la caisse d’allocations familiales (CAF)",
          "Demande d’acte de {a} pour succession — notaire Maître Lenôtre"]
URBA = ["PC", "PC", "DP", "DP", "DP", "CU", "PA", "PD"]
CANAUX_U = ["GUICHET", "PLATEFORME", "COURRIER", "PLATEFORME", "MAIL"]
OBJETS_U = ["Construction d’une véranda de {s} m² — façade sud",
            "Ravalement de façade et remplacement des menuiseries (« à l’identique »)",
            "Surélévation d’un pavillon — création de {s} m² de plancher",
            "Pose de panneaux photovoltaïques en toiture, côté cour",
            "Changement de destination : commerce → habitation, {s} m²"]
TYPES_D = ["encombrants", "bac_casse", "depot_sauvage", "badge_decheterie"]
CANAUX_D = ["TEL", "GUICHET", "MAIL", "WEB", "WEB"]
OBJETS_D = ["Enlèvement d’encombrants : canapé, réfrigérateur — {v} m³",
            "Bac jaune cassé (couvercle arraché) — remplacement demandé",
            "Dépôt sauvage signalé devant le n°{n}, « gêne la circulation »",
            "Badge déchèterie perdu — nouvelle carte pour le foyer"]


def ascii_word(text):
    """'Bérénice' -> 'berenice', 'LE GOFF' -> 'le-goff': for e-mail addresses."""
    text = text.replace("Œ", "OE").replace("œ", "oe").replace(" ", "-").replace("'", "")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.lower()


MAIL_NOMS = {n: ascii_word(n) for n in NOMS}
MAIL_PRENOMS = {p: ascii_word(p) for p in PRENOMS}


class Citizen:
    """Identity of citizen i of a source: computed, not stored."""

    @staticmethod
    def block(source, tag, i, t):
        h = (i * 2654435761) % (1 << 32)        # spreads i: homonyms born the same day are rare
        nom = NOMS[i % len(NOMS)]
        prenom = PRENOMS[(h >> 20) % len(PRENOMS)]
        moved = i % 20 == 0 and t >= MID_YEAR
        num = (i * 31 + (17 if moved else 0)) % 250 + 1
        cp = CP[(i + (3 if moved else 0)) % len(CP)]
        return {
            "nom": nom, "prenom": prenom,
            "naissance": "%02d/%02d/%04d" % (1 + h % 28, 1 + (h // 28) % 12, 1930 + (h // 336) % 76),
            "mail": "%s.%s%d@exemple.fr" % (MAIL_PRENOMS[prenom], MAIL_NOMS[nom], i),
            "tel": "0%d %02d %02d %02d %02d" % (6 + i % 2, i % 100, (i // 100) % 100, i % 97, i % 89),
            "adresse": "%d %s" % (num, VOIES[(i + (5 if moved else 0)) % len(VOIES)]),
            "cp": cp, "ville": VILLES[cp],
            "id": "%s-%s-%d" % ({"etat_civil": "ECP", "urbanisme": "UP", "dechets": "DU"}[source],
                                tag, i),
        }


def local(t, fmt):
    return datetime.fromtimestamp(t, PARIS).strftime(fmt)


def render(source, tag, req, step):
    """One raw record: request req at step `step` of its lifecycle."""
    k, cit, statuses, times, rnd = req
    t = times[step]
    status = CODES[source][statuses[step]]
    c = Citizen.block(source, tag, cit, t)
    if source == "etat_civil":
        acte = ACTES[rnd % len(ACTES)]
        return {
            "numero_demande": "EC-%s-%07d" % (tag, k), "etape": status,
            "horodatage": datetime.fromtimestamp(t, PARIS).isoformat(),
            "type_acte": acte, "mode_depot": MODES[rnd % len(MODES)],
            "motif": MOTIFS[rnd % len(MOTIFS)].format(a=acte.lower()),
            "nb_exemplaires": 1 + rnd % 3, "agent": "AG-%02d" % (rnd % 40),
            "demandeur": {"ident": c["id"], "nom": c["nom"], "prenoms": c["prenom"],
                          "date_naissance": "%s-%s-%s" % tuple(reversed(c["naissance"].split("/"))),
                          "courriel": c["mail"], "telephone": c["tel"],
                          "adresse": {"voie": c["adresse"], "code_postal": c["cp"],
                                      "commune": c["ville"]}},
        }
    if source == "urbanisme":
        typ = URBA[rnd % len(URBA)]
        surface = 8 + rnd % 140
        return {
            "type": typ,
            "dossier": {"numero": "%s 075 1%02d 24 %s%05d" % (typ, 11 + rnd % 10, tag, k),
                        "interne": "U-%s-%d" % (tag, k)},
            "etat": status, "date_etat": local(t, "%d/%m/%Y %H:%M"),
            "date_limite": local(times[0] + (60 if typ in ("PC", "PA") else 30) * 86400, "%d/%m/%Y"),
            "canal": CANAUX_U[rnd % len(CANAUX_U)],
            "objet": OBJETS_U[rnd % len(OBJETS_U)].format(s=surface),
            "surface": surface + 0.5, "instructeur": "I-%02d" % (rnd % 12),
            "parcelle": "%s %04d" % ("AB" if rnd % 2 else "CK", rnd % 3000),
            "petitionnaire": {"id": c["id"], "nom": c["nom"], "prenom": c["prenom"],
                              "naissance": c["naissance"], "mail": c["mail"], "tel": c["tel"],
                              "adresse": c["adresse"], "cp": c["cp"], "ville": c["ville"]},
        }
    return {
        "id": "D-%s-%d" % (tag, k), "version": step + 1, "type": TYPES_D[rnd % len(TYPES_D)],
        "statut": status, "canal": CANAUX_D[rnd % len(CANAUX_D)],
        "date": local(t, "%d/%m/%Y %H:%M"),
        "echeance": local(times[0] + 15 * 86400, "%d/%m/%Y"),
        "objet": OBJETS_D[rnd % len(OBJETS_D)].format(v=1 + rnd % 6, n=1 + rnd % 180),
        "usager": {"id": c["id"], "nom": c["nom"], "prenom": c["prenom"],
                   "naissance": c["naissance"], "email": c["mail"], "tel": c["tel"],
                   "adresse": c["adresse"], "cp": c["cp"], "ville": c["ville"]},
        "secteur": "S%d" % (1 + rnd % 9),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("events", type=int)
    ap.add_argument("--tag", default="B")
    ap.add_argument("--only", choices=SOURCES)
    args = ap.parse_args()
    sources = [args.only] if args.only else SOURCES
    rng = random.Random("civibus-bench-" + args.tag)
    weights = [w for w, _ in LIFECYCLES]
    shapes = [s for _, s in LIFECYCLES]
    est_requests = max(1, int(args.events / MEAN_STEPS))
    step = YEAR_SECONDS / est_requests
    citizens_per_source = max(1, int(est_requests / len(sources) / 2.5))

    os.makedirs(args.outdir, exist_ok=True)
    files = {s: open(os.path.join(args.outdir, s + ".jsonl"), "w", encoding="utf-8",
                     buffering=1 << 20) for s in sources}
    heaps = {s: [] for s in sources}
    counts = {s: {"events": 0, "requests": 0} for s in sources}
    seen_citizens = {s: set() for s in sources}
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    seq = 0

    def emit_until(source, t):
        heap = heaps[source]
        while heap and heap[0][0] <= t:
            _, _, req, i = heapq.heappop(heap)
            files[source].write(dumps(render(source, args.tag, req, i)) + "\n")

    made = 0
    k = 0
    while made < args.events:
        source = sources[k % len(sources)]
        t_open = YEAR_START + k * step + rng.random() * step
        statuses = rng.choices(shapes, weights)[0][: args.events - made]
        times = [t_open]
        for _ in statuses[1:]:
            times.append(times[-1] + 600 + rng.expovariate(1 / (2.5 * 86400)))
        times = [t - t % 60 for t in times]          # minute precision (urbanisme event ids)
        for i in range(1, len(times)):
            if times[i] <= times[i - 1]:
                times[i] = times[i - 1] + 60
        cit = rng.randrange(citizens_per_source)
        req = (k // len(sources) + 1, cit, statuses, times, rng.randrange(1 << 30))
        emit_until(source, t_open)
        for i, t in enumerate(times):
            seq += 1
            heapq.heappush(heaps[source], (t, seq, req, i))
        counts[source]["events"] += len(statuses)
        counts[source]["requests"] += 1
        seen_citizens[source].add(cit)
        made += len(statuses)
        k += 1
    for s in sources:
        emit_until(s, float("inf"))
        files[s].close()
        counts[s]["citizens"] = len(seen_citizens[s])
    total = {key: sum(c[key] for c in counts.values()) for key in ("events", "requests", "citizens")}
    print(json.dumps({"total": total, "sources": counts}))


if __name__ == "__main__":
    main()
