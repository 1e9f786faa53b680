#!/usr/bin/env python3
"""linkage.py — the identity linkage benchmark's data and its scoring (docs/identity.md).

    linkage.py gen PEOPLE SEED OUTDIR    writes OUTDIR/{etat_civil,urbanisme,dechets}.jsonl
                                         (records in the demo mapping's layout, one file per
                                         software) and OUTDIR/truth.tsv (source, citizen id
                                         in that source, person)
    linkage.py score TRUTH PAIRS PROPOSALS   PAIRS: psql output "source|key|citizen|given|birth"
                                         of citizen_sources; PROPOSALS: "a|b" of open proposals;
                                         prints the scores as JSON

A population as messy as a city's, with its ground truth: homonyms (same name, another
birth date), households sharing one e-mail and one address, a father and a son with one
name at one address, people who moved or changed phone between softwares, records without
birth date, e-mail or address, names in capitals or not, with or without accents and
hyphens, phones in every format, and the counter's placeholders (06 00 00 00 00,
test@test.fr). Each software knows a person under its own id; a person is in one to three
softwares. Deterministic for a given seed.

Scores, over pairs of (software, id) pairs: precision (pairs put in one citizen that are
one person), recall (pairs of one person put in one citizen), recall once the open merge
proposals are accepted, citizens mixing two people (and those whose people's given names
or birth dates differ: the ones that must never happen), people split over citizens."""
import json
import random
import sys
import unicodedata

FAMILIES = ("MARTIN BERNARD THOMAS PETIT ROBERT RICHARD DURAND DUBOIS MOREAU LAURENT SIMON MICHEL "
            "LEFÈVRE LEROY ROUX DAVID BERTRAND MOREL FOURNIER GIRARD BONNET DUPONT LAMBERT FONTAINE "
            "ROUSSEAU VINCENT MULLER LEFEBVRE FAURE ANDRÉ MERCIER BLANC GUÉRIN BOYER GARNIER CHEVALIER "
            "FRANÇOIS LEGRAND GAUTHIER GARCIA PERRIN ROBIN CLÉMENT MORIN NICOLAS HENRY ROUSSEL MATHIEU "
            "GAUTIER MASSON MARCHAND DUVAL DENIS DUMONT MARIE LEMAIRE NOËL MEYER DUFOUR MEUNIER BRUN "
            "BLANCHARD GIRAUD JOLY RIVIÈRE LUCAS BRUNET GAILLARD BARBIER ARNAUD MARTINEZ GÉRARD ROCHE "
            "RENARD SCHMITT ROY LEROUX COLIN VIDAL CARON PICARD ROGER FABRE AUBERT LEMOINE RENAUD DUMAS "
            "LACROIX OLIVIER PHILIPPE BOURGEOIS PIERRE BENOÎT REY LECLERC PAYET ROLLAND LECLERCQ GUILLAUME "
            "LECOMTE LOPEZ JEAN DUPUY GUILLOT HUBERT BERGER CARPENTIER SANCHEZ DUPUIS MOULIN LOUIS "
            "DESCHAMPS HUET VASSEUR PEREZ BOUCHER FLEURY ROYER KLEIN JACQUET ADAM PARIS POIRIER MARTY "
            "N'DIAYE DA-SILVA NGUYEN DIALLO TRAORÉ BENALI HADDAD COHEN LÉVY").split()
GIVEN = ("Jean Pierre Michel André Philippe René Louis Alain Jacques Bernard Marcel Daniel Roger Claude "
         "Paul Robert Henri Georges Nicolas François Christophe Stéphane Laurent Julien Thomas Antoine "
         "Maxime Hugo Lucas Léo Gabriel Raphaël Arthur Louise Marie Jeanne Françoise Monique Catherine "
         "Nathalie Isabelle Sylvie Anne Martine Nicole Christine Sophie Céline Julie Camille Léa Manon "
         "Chloé Emma Inès Zoé Aïssatou Fatima Yasmine Mélanie Élodie Hélène Agnès Brigitte Josiane "
         "Jean-Pierre Jean-Claude Marie-Claire Anne-Sophie Jean-Luc Marie-Thérèse").split()
STREETS = ("de la République", "Victor Hugo", "de l’Église", "Jean Jaurès", "de la Gare", "Pasteur",
           "du Général de Gaulle", "des Écoles", "de Verdun", "Gambetta", "Saint-Martin", "des Lilas")
SOURCES = ("etat_civil", "urbanisme", "dechets")


def fold(s):
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")


def phone_variants(r, digits):          # digits: "0612345678"
    d = digits
    forms = [" ".join(d[i:i + 2] for i in range(0, 10, 2)), d, ".".join(d[i:i + 2] for i in range(0, 10, 2)),
             "+33 " + d[1] + " " + " ".join(d[i:i + 2] for i in range(2, 10, 2)), "+33" + d[1:]]
    return r.choice(forms)


def gen(people, seed, outdir):
    r = random.Random(seed)
    persons = []
    households = []
    p = 0
    while p < people:
        size = r.choices([1, 2, 3, 4], weights=[70, 15, 10, 5])[0]
        size = min(size, people - p)
        fam = r.choice(FAMILIES)
        hh = {"address": "%d rue %s" % (r.randint(1, 180), r.choice(STREETS)), "postcode": r.choice(["75011", "75019", "93100", "69003"]),
              "email": ("famille.%s%d@example.fr" % (fold(fam).lower().replace("'", ""), p)) if size > 1 and r.random() < 0.6 else None,
              "landline": "01%08d" % r.randint(10000000, 99999999) if r.random() < 0.3 else None}
        households.append(hh)
        givens = r.sample(GIVEN, size)
        for k in range(size):
            year = r.randint(1940, 2005)
            persons.append({"id": p, "family": fam if k == 0 or r.random() < 0.8 else r.choice(FAMILIES),
                            "given": givens[k], "birth": "%04d-%02d-%02d" % (year, r.randint(1, 12), r.randint(1, 28)),
                            "email": hh["email"] if hh["email"] and r.random() < 0.8 else
                            ("%s.%s%d@mail.example" % (fold(givens[k]).lower().replace(" ", "-"), fold(fam).lower().replace("'", ""), p) if r.random() < 0.75 else None),
                            "mobile": "0%d%08d" % (r.choice([6, 7]), r.randint(10000000, 99999999)) if r.random() < 0.7 else None,
                            "hh": len(households) - 1})
            p += 1
    # homonyms: 2 % copy another person's name (another birth date, another household)
    for q in r.sample(range(len(persons)), max(1, len(persons) // 50)):
        o = r.choice(persons)
        persons[q]["family"], persons[q]["given"] = o["family"], o["given"]
    # a father and a son: 1 %, one name, one address, 25 to 35 years apart
    for q in r.sample(range(len(persons)), max(1, len(persons) // 100)):
        s = r.choice(persons)
        if s["id"] == persons[q]["id"]:
            continue
        f = persons[q]
        s["family"], s["given"], s["hh"] = f["family"], f["given"], f["hh"]
        y = int(f["birth"][:4]) + r.randint(25, 35)
        s["birth"] = "%04d%s" % (min(y, 2008), f["birth"][4:])
    truth = open(outdir + "/truth.tsv", "w")
    outs = {s: open("%s/%s.jsonl" % (outdir, s), "w") for s in SOURCES}
    rid = 0
    for pr in persons:
        hh = households[pr["hh"]]
        srcs = [s for s, w in zip(SOURCES, (0.5, 0.3, 0.7)) if r.random() < w] or [r.choice(SOURCES)]
        moved = r.random() < 0.1
        for s in srcs:
            key = "%s-%d" % (s[:2].upper(), pr["id"] * 7 + 3)
            truth.write("%s\t%s\t%d\n" % (s, key, pr["id"]))
            fam, given = pr["family"], pr["given"]
            if s == "etat_civil":
                fam, given = fam.upper(), given
            elif s == "urbanisme":
                fam, given = fam.title(), given.replace("-", " ")
                if r.random() < 0.5:
                    fam, given = fold(fam), fold(given)
            else:
                fam, given = (fam.lower() if r.random() < 0.3 else fam), given.upper() if r.random() < 0.3 else given
            birth = pr["birth"] if not (s == "dechets" and r.random() < 0.4) and r.random() > 0.1 else None
            email = pr["email"] if r.random() > 0.2 else None
            phone = pr["mobile"] or hh["landline"]
            if moved and s == srcs[-1] and len(srcs) > 1:
                phone = "0%d%08d" % (r.choice([6, 7]), r.randint(10000000, 99999999))
            if s == "dechets" and r.random() < 0.05:
                phone = "0600000000"
            if s == "dechets" and r.random() < 0.02:
                email = "test@test.fr"
            addr = None if r.random() < 0.1 else (hh["address"] if not (moved and s == srcs[-1]) else "%d avenue Foch" % r.randint(1, 90))
            for v in range(r.randint(1, 3)):
                rid += 1
                rec = {"id": "%s-R%d" % (s[:2].upper(), rid), "version": 1, "type": "encombrants",
                       "statut": "RECU", "canal": "GUICHET",
                       "date": "%02d/%02d/2024 %02d:%02d" % (r.randint(1, 28), r.randint(1, 12), r.randint(8, 18), r.randint(0, 59)),
                       "echeance": "28/12/2024", "objet": "Demande %d" % rid,
                       "usager": {"id": key, "nom": fam, "prenom": given,
                                  "naissance": "%s/%s/%s" % (birth[8:], birth[5:7], birth[:4]) if birth else "",
                                  "email": email or "", "tel": phone_variants(r, phone) if phone else "",
                                  "adresse": addr or "", "cp": hh["postcode"] if addr else "", "ville": "Paris" if addr else ""}}
                outs[s].write(json.dumps(rec, ensure_ascii=False) + "\n")
    truth.close()
    for f in outs.values():
        f.close()
    print(json.dumps({"people": len(persons), "records": rid}))


def c2(n):
    return n * (n - 1) // 2


def score(truth_path, pairs_path, proposals_path):
    truth = {}
    for line in open(truth_path):
        s, k, p = line.rstrip("\n").split("\t")
        truth[(s, k)] = int(p)
    cit = {}              # citizen -> {person: count}
    per = {}              # person -> {citizen: count}
    info = {}             # person -> (given key, birth) as stored
    for line in open(pairs_path):
        f = line.rstrip("\n").split("|")
        if len(f) < 5 or (f[0], f[1]) not in truth:
            continue
        p, c = truth[(f[0], f[1])], int(f[2])
        cit.setdefault(c, {}).setdefault(p, 0)
        cit[c][p] += 1
        per.setdefault(p, {}).setdefault(c, 0)
        per[p][c] += 1
        info.setdefault(p, set()).add((f[3], f[4]))
    tp = sum(c2(n) for m in cit.values() for n in m.values())
    fp = sum(c2(sum(m.values())) for m in cit.values()) - tp
    fn = sum(c2(sum(m.values())) for m in per.values()) - tp
    proposed = set()
    for line in open(proposals_path):
        f = line.strip().split("|")
        if len(f) == 2 and f[0]:
            proposed.add((int(f[0]), int(f[1])))
    fn_proposed = 0
    for p, m in per.items():
        cs = sorted(m)
        for i in range(len(cs)):
            for j in range(i + 1, len(cs)):
                if (cs[i], cs[j]) in proposed:
                    fn_proposed += m[cs[i]] * m[cs[j]]
    mixing = [c for c, m in cit.items() if len(m) > 1]

    def differ(ps):
        givens = {g for p in ps for g, b in info[p] if g}
        births = {b for p in ps for g, b in info[p] if b}
        return len(births) > 1 or len(givens) > 1
    bad = [c for c in mixing if differ(list(cit[c]))]
    out = {"pairs": len(truth), "people": len(per), "citizens": len(cit),
           "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0,
           "recall_with_proposals": (tp + fn_proposed) / (tp + fn) if tp + fn else 1.0,
           "citizens_mixing_people": len(mixing), "citizens_mixing_different_people": len(bad),
           "people_split": sum(1 for m in per.values() if len(m) > 1), "tp": tp, "fp": fp, "fn": fn}
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: linkage.py gen PEOPLE SEED OUTDIR | score TRUTH PAIRS PROPOSALS")
