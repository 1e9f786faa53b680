# tests/it/adapter_lib.sh — running a real adapter (`civibus-adapter run`) in an integration
# test; sourced after lib.sh. Not a test itself: tests/run.sh runs tests/it/*.sh, so this
# file only defines functions.
#
#   ada_start              runs the adapter on $W/adapter-run.yaml (log: $W/adapter.log);
#                          killed with SIGKILL when the script exits, if still running
#   ada_stop               SIGTERM; fails unless it exits 0
#   ada_kill               SIGKILL
#   wait_until SECONDS CONDITION...
#                          polls CONDITION every 0.2 s; returns 1 after SECONDS, fails at
#                          once if the adapter exited
# tests/it/exemple_311.sh uses it (adapter_urbanisme.sh and adapter_etat_civil.sh still
# carry their own copies of these).
[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0     # run directly (by the test runner): nothing to do
ADA_PID=
ada_kill() { [ -n "$ADA_PID" ] && { kill -9 "$ADA_PID" 2>/dev/null; wait "$ADA_PID" 2>/dev/null; }; ADA_PID=; }
at_exit "ada_kill"

ada_start() {
    "$ADAPTER" run --config "$W/adapter-run.yaml" >>"$W/adapter.log" 2>&1 &
    ADA_PID=$!
}

ada_stop() {
    kill -TERM "$ADA_PID" 2>/dev/null
    wait "$ADA_PID"
    local rc=$?
    ADA_PID=
    [ "$rc" -eq 0 ] || { tail -n 20 "$W/adapter.log" >&2; fail "adapter exit $rc on SIGTERM"; }
}

wait_until() {
    local limit=$1 i; shift
    for i in $(seq 1 $((limit * 5))); do
        "$@" && return 0
        kill -0 "$ADA_PID" 2>/dev/null || { tail -n 20 "$W/adapter.log" >&2; fail "the adapter exited"; }
        sleep 0.2
    done
    return 1
}
