#!/usr/bin/env python3
"""gen_demo.py N [START] [VERSION] — N raw records of the demo source, as JSON lines.

Records look like a waste-management software's export: French names with accents and
apostrophes, typographic quotes, local Paris dates as dd/mm/YYYY HH:MM. Deterministic:
the same arguments give the same bytes (tests compare event counts across re-reads)."""
import json
import sys

n = int(sys.argv[1])
start = int(sys.argv[2]) if len(sys.argv) > 2 else 1
version = int(sys.argv[3]) if len(sys.argv) > 3 else 1
types = ["encombrants", "bac_casse", "depot_sauvage", "badge_decheterie"]
statuts = ["RECU", "EN_COURS", "ATTENTE_USAGER", "TRAITE"]
canaux = ["TEL", "GUICHET", "MAIL", "WEB"]
noms = [("DUPONT", "Jean-Pierre"), ("LEFÈVRE", "Chloé"), ("N'DIAYE", "Aïssatou"), ("CŒUR", "Bérénice")]
out = sys.stdout
for i in range(start, start + n):
    nom, prenom = noms[i % len(noms)]
    u = i % 5000
    rec = {
        "id": "D-%d" % i, "version": version, "type": types[i % 4], "statut": statuts[version % 4],
        "canal": canaux[i % 4],
        "date": "%02d/03/2024 %02d:%02d" % (1 + (i + version - 1) % 28, 8 + i % 10, i % 60),
        "echeance": "%02d/04/2024" % (1 + i % 28),
        "objet": "Demande n°%d — enlèvement d’encombrants, rue de l’Église" % i,
        "usager": {"id": "U-%d" % u, "nom": nom, "prenom": prenom, "naissance": "12/05/1971",
                   "email": "usager%d@example.fr" % u, "tel": "06 12 34 %02d %02d" % (u % 100, u % 97),
                   "adresse": "%d rue de l’Église" % (u % 200), "cp": "75019", "ville": "Paris"},
    }
    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
