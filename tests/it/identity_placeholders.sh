#!/usr/bin/env bash
# Shared and placeholder values in the data shape of issue 18, through the real hub and
# the demo mapping: 900 people, 5,000 requests, one birth date and one first initial for
# everybody, no e-mail; half of them with the placeholder phone the counter types
# (06 00 00 00 00), half with one real-looking shared number (a care home's). Before
# 017, the shared values linked them transitively into a handful of citizens; now each
# person is a citizen (the shared number merges at most its first identity.max_shared
# holders), nothing is proposed on those numbers, and a person's own records still
# link. Then the same people again with their own phone numbers: linked as before.
. "$(dirname "$0")/lib.sh"
M2=$(mktemp "${CIVIBUS_TEST_TMP:-/tmp}/guichet-mapping.XXXXXX.yaml")
at_exit 'rm -f "$M2"'
sed 's/^source: demo$/source: guichet/' "$ROOT/deploy/mappings/demo.yaml" >"$M2"
it_setup identity_placeholders "demo:$ROOT/deploy/mappings/demo.yaml" "guichet:$M2"
hub_start

PEOPLE=${PLACEHOLDER_PEOPLE:-900} REQUESTS=${PLACEHOLDER_REQUESTS:-5000}   # the issue's shape: 9000 / 50000
python3 - "$W/people.jsonl" "$PEOPLE" "$REQUESTS" <<'PY'
import json, sys
fam = ["MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU",
       "LAURENT", "SIMON", "MICHEL", "LEFÈVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
       "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT",
       "MÜLLER", "N'DIAYE", "DA SILVA", "NGUYEN"]
def letters(k):
    s = ""
    while True:
        s = chr(65 + k % 26) + s
        k = k // 26 - 1
        if k < 0:
            return s
out = open(sys.argv[1], "w")
n = 0
people, requests = int(sys.argv[2]), int(sys.argv[3])
for r in range(requests):
    p = r % people                                # person p, about 5.5 requests each
    phone = "06 00 00 00 00" if p % 2 == 0 else "01 46 00 12 34"
    rec = {"id": "P-%d" % r, "version": 1, "type": "encombrants", "statut": "RECU", "canal": "GUICHET",
           "date": "%02d/03/2024 10:%02d" % (1 + r % 28, r % 60), "echeance": "01/04/2024",
           "objet": "Demande %d" % r,
           "usager": {"id": "U-%d" % p, "nom": "%s %s" % (fam[p % len(fam)], "X" + letters(p // len(fam))),
                      "prenom": "Jean", "naissance": "01/01/1950", "tel": phone,
                      "adresse": "%d rue de la Paix" % (1 + p % 50), "cp": "75002", "ville": "Paris"}}
    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
PY
replay demo "$W/people.jsonl" --timeout 600
[ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"
[ "$(q "select count(*) from events where source = 'demo'")" = "$REQUESTS" ] || fail "not every request stored"
c=$(q "select count(distinct citizen_id) from citizen_sources where source = 'demo'")
m=$(q "select count(*) from requests r where r.citizen_id is not null")
echo "    $PEOPLE people, $m requests: $c citizens"
[ "$c" -ge $((PEOPLE - 2)) ] && [ "$c" -le "$PEOPLE" ] || fail "$c citizens for $PEOPLE people; for example: $(q "select string_agg(cs.identity->>'family_name' || ' (' || cs.rule || ')', ', ') from citizen_sources cs where cs.citizen_id = (select citizen_id from citizen_sources group by citizen_id having count(*) > 1 limit 1)")"
[ "$(q "select count(*) from citizen_identifiers where value = '+33600000000'")" = 0 ] || fail "the placeholder is an identifier"
[ "$(q "select count(*) from shared_identifiers where kind = 'phone' and value_hash = cv_identifier_hash('phone', '+33146001234')")" = 1 ] \
    || fail "the shared number is not marked shared"
q "select cv_identity_propose()" >/dev/null
[ "$(q "select count(*) from merge_proposals where rule like '%phone%'")" = 0 ] || fail "proposals on a shared phone"
big=$(q "select max(n) from (select count(*) as n from citizen_sources group by citizen_id) x")
[ "$big" -le 3 ] || fail "a citizen holds $big people"
ok "$PEOPLE people sharing a placeholder or a shared phone: $c citizens, no proposal on those numbers"

# the same people at the counter, in another software (its own ids), with their own
# mobile numbers: each links to the citizen its name + birth date names; the shared
# phones play no part
python3 - "$W/people.jsonl" "$W/again.jsonl" <<'PY'
import json, sys
out = open(sys.argv[2], "w")
for line in open(sys.argv[1]):
    rec = json.loads(line)
    r = int(rec["id"][2:])
    if r < 900 and r % 10 == 0:                                    # 90 of the people, once each
        rec["id"] = "G-%d" % r
        rec["usager"]["id"] = "G-U-%d" % r
        rec["usager"]["tel"] = "07 %02d %02d %02d %02d" % (r % 89 + 10, r % 83 + 10, r % 79 + 10, r % 73 + 10)
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
PY
replay guichet "$W/again.jsonl" --timeout 60
[ "$REPLAY_RC" -eq 0 ] || fail "second replay: $(cat "$W/replay.out")"
[ "$(q "select count(*) from citizen_sources where source = 'guichet'")" = 90 ] || fail "the counter's 90 people"
[ "$(q "select count(distinct citizen_id) from citizen_sources")" = "$c" ] || fail "known people got new citizens"
[ "$(q "select string_agg(distinct rule, ',') from citizen_sources where source = 'guichet'")" = name_birth ] \
    || fail "the counter's people linked by: $(q "select string_agg(distinct rule, ',') from citizen_sources where source = 'guichet'")"
ok "the same people from another software join their own citizens by name and birth date"

# a careless export: 25 homonyms "MARTIN Jean" domiciled at the town hall (the CCAS's
# address, as French files write it for people without a fixed address), no birth date,
# no phone; two "DURAND Marie" there; and 210 "ROBERT Paul" there (a placeholder name
# typed by a clerk). Their weak identifiers are bounded: the two are proposed once, the 25
# as a star (24 proposals around one of them, not 300), the 210 not at all (22,000 pairs
# no agent could review, and a job growing with their square).
before=$(q "select count(*) from merge_proposals")
python3 - "$W/ccas.jsonl" <<'PY'
import json, sys
out = open(sys.argv[1], "w")
people = [("MARTIN", "Jean")] * 25 + [("DURAND", "Marie")] * 2 + [("ROBERT", "Paul")] * 210
for i, (nom, prenom) in enumerate(people):
    rec = {"id": "CCAS-%d" % i, "version": 1, "type": "encombrants", "statut": "RECU", "canal": "GUICHET",
           "date": "04/03/2024 10:15", "objet": "Domicilié au CCAS",
           "usager": {"id": "CCAS-U-%d" % i, "nom": nom, "prenom": prenom,
                      "adresse": "CCAS, 1 place de la Mairie", "cp": "75002", "ville": "Paris"}}
    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
PY
replay demo "$W/ccas.jsonl" --timeout 60
[ "$REPLAY_RC" -eq 0 ] || fail "ccas replay: $(cat "$W/replay.out")"
q "select cv_identity_propose()" >/dev/null
pairs() {  # pairs FAMILY — proposals between two CCAS records of that family name
    q "select count(*) || ' ' || count(distinct least(p.citizen_a, p.citizen_b))
       from merge_proposals p
       join citizen_sources a on a.citizen_id = p.citizen_a and a.source_citizen_id like 'CCAS-U-%'
       join citizen_sources b on b.citizen_id = p.citizen_b and b.source_citizen_id like 'CCAS-U-%'
       where a.identity->>'family_name' = '$1' and b.identity->>'family_name' = '$1'"
}
new=$(q "select count(*) - $before from merge_proposals")
[ "$(pairs DURAND)" = "1 1" ] || fail "the two DURAND: $(pairs DURAND), expected one proposal"
[ "$(pairs MARTIN)" = "24 1" ] || fail "the 25 MARTIN: $(pairs MARTIN) (proposals, centres), expected a star of 24"
[ "$(pairs ROBERT | cut -d' ' -f1)" = 0 ] || fail "the 210 ROBERT: $(pairs ROBERT)"
ok "homonyms at the town hall's address: 2 proposed once, 25 as a star of 24, 210 not at all ($new new proposals)"
echo "PASS identity_placeholders"
