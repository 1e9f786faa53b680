# tests/it/api_lib.sh — shared by the API's integration tests (sourced after lib.sh; not a
# test itself: tests/run.sh runs tests/it/*.sh, so this file only defines functions).
#
#   api_setup NAME N [SOURCE:MAPPING ...]
#                      database filled by the real hub + replay of N demo records (the
#                      sources of it_setup: give demo too when giving others),
#                      civibus-api started on a free port ($U), tokens $T_SUP and $T_DECH;
#                      API_LINKS=1: citizen links on (key $W/link.key); API_PER_MINUTE:
#                      public lookups per address and minute (default 100); API_OWNER_PER_MINUTE:
#                      citizen searches by tracking code per token (default 100); API_YAML_EXTRA:
#                      more top-level blocks of the config (http:, open311: ...)
#   get PATH [TOKEN]   body in $W/body, status in $S
[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0     # run directly (by the test runner): nothing to do
API=$ROOT/$BIN/civibus-api
CTL=$ROOT/$BIN/civibusctl

api_setup() {
    it_setup "$1" "${@:3}"
    hub_start
    gen_demo "$2" >"$W/d1.jsonl"
    replay demo "$W/d1.jsonl" --timeout 60
    [ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"
    printf 'postgres:\n  conninfo: "host=%s port=%s user=%s dbname=%s"\nlisten:\n  port: 0\naudit:\n  flush_ms: 50\ntracking:\n  per_minute: %s\n  owner_per_minute: %s\n' \
        "$PGHOST" "$PGPORT" "$PGUSER" "$DB" "${API_PER_MINUTE:-100}" "${API_OWNER_PER_MINUTE:-100}" >"$W/api.yaml"
    [ -n "${API_YAML_EXTRA:-}" ] && printf '%s\n' "$API_YAML_EXTRA" >>"$W/api.yaml"
    if [ -n "${API_LINKS:-}" ]; then      # citizen links on, with a fresh key
        "$CTL" link keygen >"$W/link.key" || fail "link keygen"
        printf 'links:\n  secret_file: link.key\n  max_days: 30\n' >>"$W/api.yaml"
    fi
    "$API" --config "$W/api.yaml" >"$W/api.log" 2>&1 &
    API_PID=$!
    at_exit 'kill $API_PID 2>/dev/null'
    local i
    for i in $(seq 1 50); do grep -q "listening on" "$W/api.log" && break; sleep 0.1; done
    PORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/api.log")
    [ -n "$PORT" ] || fail "API did not start: $(cat "$W/api.log")"
    U=http://127.0.0.1:$PORT
    T_SUP=$("$CTL" --config "$W/api.yaml" token create --role supervisor 2>/dev/null)
    T_DECH=$("$CTL" --config "$W/api.yaml" token create --role agent --service dechets 2>/dev/null)
    [ ${#T_SUP} -eq 64 ] && [ ${#T_DECH} -eq 64 ] || fail "token create"
}

get() {
    if [ -n "${2:-}" ]; then S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $2" "$U$1")
    else S=$(curl -s -o "$W/body" -w '%{http_code}' "$U$1"); fi
}

api_stop() {
    kill -TERM "$API_PID"; wait "$API_PID"; local rc=$?
    [ $rc -eq 0 ] || fail "API exit $rc: $(tail -5 "$W/api.log")"
}
