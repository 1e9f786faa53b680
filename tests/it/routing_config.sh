#!/usr/bin/env bash
# deploy/routing.yaml is checked with the hub's configuration (docs/routing.md): the shipped
# file passes `civibus-hub --check-config`; each careless or hostile line stops start-up
# with `file:line: reason` and exit code 2, before anything reaches PostgreSQL: an unknown
# key, an unknown service, a rule with no condition, a rule the same as an earlier one, a
# duplicate name or keyword, a keyword that is a regular expression (or SQL), an unknown
# channel, a dispatch to a source the hub does not know, a bad kind, an unknown payload
# field, a routed source the hub does not know.
. "$(dirname "$0")/lib.sh"
it_setup routing_config "demo:$ROOT/deploy/mappings/demo.yaml" "dechets:$ROOT/adapters/dechets/mapping.yaml"

cp "$ROOT/deploy/routing.yaml" "$W/routing.yaml"
printf 'routing: routing.yaml\n' >>"$W/hub.yaml"
"$HUB" --config "$W/hub.yaml" --check-config >"$W/check.out" 2>&1 || fail "the shipped routing.yaml refused: $(cat "$W/check.out")"
ok "the shipped deploy/routing.yaml passes --check-config"

# expect_error WHAT PYTHON-EDIT PATTERN: the edit (a python expression on s, the file's
# text) makes bad.yaml; the hub must name bad.yaml, the line holding MARK, and the reason
expect_error() {
    python3 -c "import sys; s = open(sys.argv[1]).read(); s = $2; open(sys.argv[2], 'w').write(s)" \
        "$ROOT/deploy/routing.yaml" "$W/bad.yaml" || fail "$1: the edit"
    sed 's|^routing: .*|routing: bad.yaml|' "$W/hub.yaml" >"$W/hub-bad.yaml"
    "$HUB" --config "$W/hub-bad.yaml" --check-config >"$W/bad.out" 2>&1
    local rc=$?
    [ "$rc" -eq 2 ] || fail "$1: exit $rc, expected 2 ($(cat "$W/bad.out"))"
    local line
    line=$(grep -n -F -- "$4" "$W/bad.yaml" | head -n1 | cut -d: -f1)
    grep -qE "bad\.yaml:$line: $3" "$W/bad.out" || fail "$1: '$(cat "$W/bad.out")' is not bad.yaml:$line: $3"
    ok "$1: $(head -n1 "$W/bad.out")"
}
expect_error "unknown key"            "s.replace('default_service:', 'default_servise:')" \
    "unknown key 'default_servise'" "default_servise:"
expect_error "unknown default"        "s.replace('default_service: accueil', 'default_service: triage')" \
    "unknown service 'triage'" "default_service: triage"
expect_error "unknown rule service"   "s.replace('    service: voirie', '    service: voierie')" \
    "unknown service 'voierie'" "service: voierie"
expect_error "a rule without condition" "s.replace('rules:\n', 'rules:\n  - name: tout\n    service: dechets\n')" \
    "a rule needs a category, a channel or keywords" "- name: tout"
expect_error "the same rule twice"    "s.replace('rules:\n', 'rules:\n  - category: encombrants\n    service: voirie\n', 1).replace('  - name: encombrants\n', '  - name: encombrants\n    # twice\n')" \
    "the same conditions as the rule at line" "- name: encombrants"
expect_error "duplicate rule name"    "s.replace('name: voirie par mots', 'name: encombrants  # twice')" \
    "rule name 'encombrants' given twice" "encombrants  # twice"
expect_error "duplicate keyword"      "s.replace('[trottoir,', '[trottoir, trottoir,')" \
    "'keywords': 'trottoir' given twice" "[trottoir, trottoir,"
expect_error "a regex as a keyword"   "s.replace('[trottoir,', '[\"trott.*\", trottoir,')" \
    "'keywords': a keyword holds letters" "trott.*"
expect_error "SQL as a keyword"       "s.replace('[trottoir,', '[\"x\\') OR 1=1 --\", trottoir,')" \
    "'keywords': a keyword holds letters" "OR 1=1"
expect_error "a keyword's edges"      "s.replace('[trottoir,', '[\"-trottoir\", trottoir,')" \
    "'keywords': a keyword starts and ends" "-trottoir"
expect_error "an empty keyword list"  "s.replace('    keywords: [trottoir, nid-de-poule, \"nids-de-poule\", chaussée, lampadaire, éclairage public]', '    keywords: []')" \
    "'keywords': an empty list" "keywords: []"
expect_error "unknown channel"        "s.replace('    category: encombrants\n', '    category: encombrants\n    channel: fax\n')" \
    "'channel': unknown channel" "channel: fax"
expect_error "unknown dispatch source" "s.replace('source: dechets', 'source: gestdechets')" \
    "dispatch source 'gestdechets' is not a source of the hub" "source: gestdechets"
expect_error "bad kind"               "s.replace('kind: demande_create', 'kind: \"demande create\"')" \
    "dispatch kind 'demande create'" "kind: \"demande create\""
expect_error "unknown payload field"  "s.replace('nom: citizen.last_name', 'nom: citizen.nom')" \
    "payload 'nom': unknown field 'citizen.nom'" "nom: citizen.nom"
expect_error "unknown routed source"  "s.replace('# sources: [accueil, open311, courriel]', 'sources: [accueil, courriel]')" \
    "source 'courriel' is neither the API's" "sources: [accueil, courriel]"
expect_error "no services"            "s[:s.index('services:')]" "missing required key 'services'" "default_service:"

# the file named but absent
sed 's|^routing: .*|routing: nowhere.yaml|' "$W/hub.yaml" >"$W/hub-bad.yaml"
"$HUB" --config "$W/hub-bad.yaml" --check-config >"$W/bad.out" 2>&1
[ $? -eq 2 ] && grep -q "nowhere.yaml" "$W/bad.out" || fail "a missing routing file: $(cat "$W/bad.out")"
ok "a missing routing file: $(head -n1 "$W/bad.out")"

# the hub itself refuses to start (exit 2) with a bad file, and PostgreSQL holds no rules
python3 -c "import sys; s = open(sys.argv[1]).read(); open(sys.argv[2], 'w').write(s.replace('[trottoir,', '[\"(a|b)*\", trottoir,'))" \
    "$ROOT/deploy/routing.yaml" "$W/bad.yaml"
sed 's|^routing: .*|routing: bad.yaml|' "$W/hub.yaml" >"$W/hub-bad.yaml"
"$HUB" --config "$W/hub-bad.yaml" >"$W/start.out" 2>&1
[ $? -eq 2 ] && grep -q "bad.yaml:" "$W/start.out" || fail "the hub started with a bad routing file: $(cat "$W/start.out")"
ok "the hub does not start with a bad routing file"
