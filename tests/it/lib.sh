# tests/it/lib.sh — shared helpers of the integration tests (sourced).
#
# Each test gets its own work folder, database, CURVE keys and ipc:// endpoints, so tests
# never share state. The PostgreSQL cluster is the runner's (PG* variables exported by
# tests/run.sh); a test run alone starts its own through the same script.
#
#   it_setup NAME [SOURCES...]   work dir $W, database $DB, keys, hub and adapter configs
#   hub_start / hub_stop / hub_stop_within S / hub_kill9
#   replay SOURCE FILE [ARGS...] runs civibus-adapter replay, output in $W/replay.out
#   gen_demo / gen_distinct N    demo records (gen_distinct: no two citizens alike)
#   q "SQL"                      one value from the test database
#   fail "reason"                prints and exits 1
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
case "$BIN" in /*) BINDIR=$BIN ;; *) BINDIR=$ROOT/$BIN ;; esac   # make bench passes an absolute one
HUB=$BINDIR/civibus-hub
ADAPTER=$BINDIR/civibus-adapter

fail() { echo "FAIL: $*" >&2; [ -n "${W:-}" ] && [ -f "$W/hub.log" ] && tail -n 30 "$W/hub.log" >&2; exit 1; }
ok() { echo "ok - $*"; }

# at_exit CMD — run CMD when the script exits (newest first, before lib.sh's own clean-up
# of the hub and of a PostgreSQL it started). Scripts use this, never `trap ... EXIT`.
_at_exit=()
at_exit() { _at_exit=("$1" "${_at_exit[@]}"); }
_run_at_exit() { local c; for c in "${_at_exit[@]}"; do eval "$c"; done; }

if [ -z "${PGHOST:-}" ]; then
    _own_pg=$(mktemp -d /tmp/civibus-it-pg.XXXXXX); export PG_DIR=$_own_pg
    bash "$ROOT/deploy/pgctl.sh" start "$_own_pg" >/dev/null || { echo "cannot start PostgreSQL" >&2; exit 1; }
    eval "$(bash "$ROOT/deploy/pgctl.sh" env "$_own_pg")"
    trap '_run_at_exit; hub_stop 2>/dev/null; bash "$ROOT/deploy/pgctl.sh" stop --purge "$_own_pg" >/dev/null 2>&1; rm -rf "$_own_pg"' EXIT
else
    trap '_run_at_exit; hub_stop 2>/dev/null' EXIT
fi

q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

# it_setup NAME [SOURCE:MAPPING ...] — default one source "demo" with the demo mapping
it_setup() {
    local name=$1; shift
    local base=${CIVIBUS_TEST_TMP:-/tmp}
    W=$(mktemp -d "$base/it-$name.XXXXXX")
    chmod 755 "$W"
    DB="it_${name//-/_}_$$"
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null \
        || fail "cannot create database $DB"
    local sources=("$@")
    [ ${#sources[@]} -eq 0 ] && sources=("demo:$ROOT/deploy/mappings/demo.yaml")
    mkdir -p "$W/keys"
    "$ADAPTER" keygen --out "$W/keys/hub" >/dev/null || fail "keygen hub"
    "$ADAPTER" keygen --out "$W/keys/intruder" >/dev/null || fail "keygen intruder"
    {
        echo "postgres:"
        echo "  conninfo: \"host=$PGHOST port=$PGPORT user=$PGUSER dbname=$DB\""
        echo "  migrations: $ROOT/schemas/sql"
        echo "listen:"
        echo "  adapters: ipc://$W/hub.sock"
        echo "  publish: ipc://$W/pub.sock"
        echo "curve:"
        echo "  server_cert: keys/hub_secret"
        echo "store:"
        echo "  batch_max_events: ${IT_BATCH:-500}"
        echo "  batch_max_delay_ms: ${IT_DELAY:-10}"
        echo "  pending_max_bytes: ${IT_PENDING:-67108864}"
        echo "limits:"
        echo "  max_message_bytes: 65536"
        echo "  max_event_bytes: 16384"
        echo "protocol:"
        echo "  window: ${IT_WINDOW:-1000}"
        echo "  heartbeat_ms: ${IT_HEARTBEAT:-500}"
        echo "runtime_dir: run"
        echo "sources:"
    } >"$W/hub.yaml"
    {
        echo "hub:"
        echo "  endpoint: ipc://$W/hub.sock"
        echo "  public_key_file: keys/hub"
        echo "sources:"
    } >"$W/adapter.yaml"
    for s in "${sources[@]}"; do
        local src=${s%%:*} map=${s#*:}
        "$ADAPTER" keygen --out "$W/keys/$src" >/dev/null || fail "keygen $src"
        printf '  - name: %s\n    mapping: %s\n    keys: [keys/%s]\n' "$src" "$map" "$src" >>"$W/hub.yaml"
        printf '  %s:\n    secret_key_file: keys/%s_secret\n    spool_dir: spool/%s\n' "$src" "$src" "$src" >>"$W/adapter.yaml"
    done
    # an adapter config whose key the hub does not know
    sed "s|secret_key_file: keys/[a-z_-]*_secret|secret_key_file: keys/intruder_secret|; s|spool_dir: spool/|spool_dir: spool-intruder/|" \
        "$W/adapter.yaml" >"$W/adapter-intruder.yaml"
}

hub_start() {
    # this start's own line: an earlier run's socket file and log line do not count
    local seen; seen=$(grep -c "listening for adapters" "$W/hub.log" 2>/dev/null); seen=${seen:-0}
    rm -f "$W/hub.sock"
    "$HUB" --config "$W/hub.yaml" >>"$W/hub.log" 2>&1 &
    HUB_PID=$!
    local i
    for i in $(seq 1 100); do
        [ -S "$W/hub.sock" ] && [ "$(grep -c "listening for adapters" "$W/hub.log" 2>/dev/null)" -gt "$seen" ] && return 0
        kill -0 "$HUB_PID" 2>/dev/null || fail "hub exited at start-up"
        sleep 0.1
    done
    fail "hub did not start listening within 10 s"
}

hub_stop() {
    [ -n "${HUB_PID:-}" ] || return 0
    kill -TERM "$HUB_PID" 2>/dev/null
    wait "$HUB_PID" 2>/dev/null
    local rc=$?
    HUB_PID=
    return $rc
}

# hub_stop_within S — SIGTERM, and a failure when the hub is still running S s later
hub_stop_within() {
    local pid=$HUB_PID i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 $(($1 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid"; wait "$pid" 2>/dev/null; HUB_PID=
        fail "the hub did not stop within $1 s of SIGTERM"
    fi
    hub_stop
}

hub_kill9() {
    [ -n "${HUB_PID:-}" ] || return 0
    kill -9 "$HUB_PID" 2>/dev/null
    wait "$HUB_PID" 2>/dev/null
    HUB_PID=
    rm -f "$W/hub.sock"
}

# replay SOURCE FILE [ARGS...] — exit code in $REPLAY_RC, stdout in $W/replay.out
replay() {
    local src=$1 file=$2; shift 2
    "$ADAPTER" replay --config "${REPLAY_CONFIG:-$W/adapter.yaml}" --source "$src" --file "$file" "$@" \
        >"$W/replay.out" 2>>"$W/replay.log"
    REPLAY_RC=$?
}

# gen_distinct N [START] [VERSION] — gen_demo's records with a birth date per citizen, so
# that no two citizens share a name and a birth date (the demo's few names would link
# them, or propose them to agents, by the thousand)
gen_distinct() {
    gen_demo "$@" | python3 -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line); u = int(r["usager"]["id"][2:])
    r["usager"]["naissance"] = "%02d/%02d/%d" % (1 + u % 28, 1 + u // 28 % 12, 1930 + u // 336)
    print(json.dumps(r, ensure_ascii=False))'
}

# gen_demo N [START] [VERSION] — N demo records as JSON lines on stdout
gen_demo() { python3 "$ROOT/tests/tools/gen_demo.py" "$@"; }
