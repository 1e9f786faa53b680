#!/usr/bin/env bash
# A bad configuration line stops start-up with file:line: reason and exit code 2;
# --check-config accepts a good configuration.
. "$(dirname "$0")/lib.sh"
it_setup config_errors

"$HUB" --config "$W/hub.yaml" --check-config >"$W/check.out" 2>&1 || fail "good config refused: $(cat "$W/check.out")"
ok "good config accepted"

expect_error() {  # description, sed expression applied to hub.yaml, expected pattern (file:line: ...)
    sed "$2" "$W/hub.yaml" >"$W/bad.yaml"
    "$HUB" --config "$W/bad.yaml" --check-config >"$W/bad.out" 2>&1
    local rc=$?
    [ "$rc" -eq 2 ] || fail "$1: exit $rc, expected 2 ($(cat "$W/bad.out"))"
    grep -qE "$3" "$W/bad.out" || fail "$1: message '$(cat "$W/bad.out")' does not match '$3'"
    ok "$1: $(head -n1 "$W/bad.out")"
}
expect_error "unknown key"        's/^  batch_max_events:/  batch_max_eventz:/' "bad\.yaml:[0-9]+: unknown key 'batch_max_eventz'"
expect_error "not a number"       's/^  window: .*/  window: lots/' "bad\.yaml:[0-9]+: 'window' must be a whole number"
expect_error "out of range"       's/^  max_event_bytes: .*/  max_event_bytes: 1000000/' "bad\.yaml:[0-9]+: max_event_bytes .* must be lower"
expect_error "missing mapping"    's|mapping: .*|mapping: /nonexistent/map.yaml|' "bad\.yaml:[0-9]+: mapping of source 'demo': cannot read /nonexistent/map\.yaml"
expect_error "bad key"            's|keys: \[keys/demo\]|keys: [notakey]|' "bad\.yaml:[0-9]+: keys of source 'demo'"
expect_error "YAML syntax"        's/^store:/store: [/' "bad\.yaml:[0-9]+: "
expect_error "bad source name"    's/- name: demo/- name: Demo Source/' "bad\.yaml:[0-9]+: source name"
expect_error "identity limit"     's/^sources:/identity:\n  max_shared: 0\nsources:/' "bad\.yaml:[0-9]+: 'max_shared'"

# a broken mapping file reports the mapping file and line
sed 's/^\(\s*\)status:/\1statuz:/' "$ROOT/deploy/mappings/demo.yaml" >"$W/badmap.yaml"
sed "s|mapping: .*|mapping: $W/badmap.yaml|" "$W/hub.yaml" >"$W/bad.yaml"
"$HUB" --config "$W/bad.yaml" --check-config >"$W/bad.out" 2>&1
[ $? -eq 2 ] && grep -qE "badmap\.yaml:[0-9]+: " "$W/bad.out" || fail "bad mapping: $(cat "$W/bad.out")"
ok "bad mapping: $(head -n1 "$W/bad.out")"

# a mapping without 'timezone:' loads, with one WARN naming it; one with it, no WARN
grep -v '^timezone:' "$ROOT/deploy/mappings/demo.yaml" >"$W/nozone.yaml"
sed "s|mapping: .*|mapping: $W/nozone.yaml|" "$W/hub.yaml" >"$W/nozone-hub.yaml"
"$HUB" --config "$W/nozone-hub.yaml" --check-config >"$W/nozone.out" 2>&1 || fail "mapping without timezone refused: $(cat "$W/nozone.out")"
[ "$(grep -c "WARN mapping: mapping $W/nozone.yaml: no 'timezone:'; dates without an offset are read as Europe/Paris" "$W/nozone.out")" = 1 ] \
    || fail "no single WARN for the mapping without timezone: $(cat "$W/nozone.out")"
grep -q "timezone" "$W/check.out" && fail "WARN about timezone for a mapping that has one: $(cat "$W/check.out")"
ok "mapping without timezone: $(grep -o "WARN mapping: .*" "$W/nozone.out")"

# a server without synchronous_commit is refused
sed "s|conninfo: \"\(.*\)\"|conninfo: \"\1 options='-c synchronous_commit=off'\"|" "$W/hub.yaml" >"$W/nosync.yaml"
timeout 20 "$HUB" --config "$W/nosync.yaml" >"$W/nosync.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep -qi "synchronous_commit" "$W/nosync.out" || fail "hub accepted synchronous_commit=off (exit $rc): $(cat "$W/nosync.out")"
ok "synchronous_commit=off refused"
