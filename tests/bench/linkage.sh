#!/usr/bin/env bash
# tests/bench/linkage.sh [PEOPLE] [SEED] — the identity linkage benchmark (docs/identity.md):
# a generated population with its ground truth (tests/bench/linkage.py: homonyms,
# households sharing an e-mail, a father and a son, movers, missing fields, name and phone
# formats, placeholders) goes through the real hub from three softwares, then
# cv_identity_propose runs; prints the scores as one JSON line (LINKAGE_OUT=FILE also
# writes it there). Targets: precision >= 0.999, no citizen mixing people whose given
# names or birth dates differ, recall >= 0.90 (proposals left for agents where evidence
# is weak). Run by make bench (20,000 people) and tests/it/identity_linkage.sh (2,000).
set -u
. "$(dirname "$0")/../it/lib.sh"
PEOPLE=${1:-2000}
SEED=${2:-7}
G=$(mktemp -d "${CIVIBUS_TEST_TMP:-/tmp}/linkage.XXXXXX")
[ -n "${LINKAGE_KEEP:-}" ] && echo "kept: $G" >&2 || at_exit 'rm -rf "$G"'
specs=()
for s in etat_civil urbanisme dechets; do
    sed "s/^source: demo$/source: $s/" "$ROOT/deploy/mappings/demo.yaml" >"$G/$s.yaml"
    specs+=("$s:$G/$s.yaml")
done
IT_BATCH=${LINKAGE_BATCH:-1000} it_setup linkage "${specs[@]}"
python3 "$ROOT/tests/bench/linkage.py" gen "$PEOPLE" "$SEED" "$G" >"$G/gen.json" || fail "generator"
hub_start
for s in etat_civil urbanisme dechets; do
    replay "$s" "$G/$s.jsonl" --timeout 600
    [ "$REPLAY_RC" -eq 0 ] || fail "replay $s: $(tail -3 "$W/replay.out")"
done
q "SELECT cv_identity_propose()" >/dev/null
psql -X -q -A -t -d "$DB" -c "SELECT cs.source, cs.source_citizen_id, cs.citizen_id,
        COALESCE(cv_given_key(cs.identity->>'given_names'), ''), COALESCE(cv_identity_born(cs.identity), '')
        FROM citizen_sources cs" >"$G/pairs.txt" || fail "pairs"
psql -X -q -A -t -d "$DB" -c "SELECT citizen_a, citizen_b FROM merge_proposals WHERE status = 'open'" \
    >"$G/proposals.txt" || fail "proposals"
python3 "$ROOT/tests/bench/linkage.py" score "$G/truth.tsv" "$G/pairs.txt" "$G/proposals.txt" >"$G/score.json" \
    || fail "score"
python3 - "$G/gen.json" "$G/score.json" <<'PY'
import json, sys
g, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
s.update(g)
print(json.dumps(s))
PY
[ -n "${LINKAGE_OUT:-}" ] && python3 -c 'import json,sys; g=json.load(open(sys.argv[1])); s=json.load(open(sys.argv[2])); s.update(g); json.dump(s, open(sys.argv[3], "w"))' \
    "$G/gen.json" "$G/score.json" "$LINKAGE_OUT"
exit 0
