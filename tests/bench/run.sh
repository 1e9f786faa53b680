#!/usr/bin/env bash
# tests/bench/run.sh — `make bench`: how fast civibus ingests, against the physical limit
# and against what a city would otherwise do. Results and method: docs/performance.md.
#
#   BENCH_SCALE=1 (default)  1,000,000 events (3 sources, ~205,000 requests), ~5 min
#   BENCH_SCALE=10           10,000,000 events; BENCH_SCALE=0.01 or BENCH_TINY=1: 10,000, < 1 min
#   BENCH_OUT=DIR            where results.json and results.txt go (default var/bench)
#   BENCH_PERF=1             profile the hub with perf during the civibus run (DIR/perf-hub.txt)
#   BENCH_KEEP=1             keep the temporary folder (data, logs) for a post-mortem
#   BENCH_BATCH, BENCH_DELAY_MS, BENCH_WINDOW   the hub's batch_max_events (1000),
#                            batch_max_delay_ms (20) and window (1000), to explore tuning
#
# One run, one throwaway PostgreSQL (deploy/pgctl.sh in a fresh temporary folder, the
# same settings for every measurement, printed with the results; a session with fsync
# or synchronous_commit off makes the run invalid and is refused), one database per
# measurement, each starting after a CHECKPOINT:
#
#   1. data      tests/bench/gen.py: a city's requests from three softwares with three
#                mappings (tests/bench/mappings/), French text, in time order
#   2. civibus   3 replay adapters (one per source, in parallel) -> hub (mapping, dedupe)
#                -> one transaction per batch -> ACK; events/s from the first send to the
#                last ACK (adapter start to adapter exit: nothing is left out)
#   3. latency   send-to-ACK p50/p99 at a steady 1,000 events/s into the same, now
#                full, database (tests/bench/latency.c: scheduled send times)
#   4. ceiling   COPY of exactly the rows civibus wrote in 2 (every table the ingest
#                filled, same schema and indexes) into an empty database: what
#                PostgreSQL itself takes on this machine
#   5. naive     one transaction per event, row by row (tests/bench/naive.c)
#   6. report    tests/bench/report.py: one table, results.json, targets met or not
#
# The HTTP part (timeline / status latency) waits for the API: reported as n/a.
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
. tests/bench/lib.sh

BIN=${BIN:-bin}
BUILD=${BUILD:-build}
SOURCES=(etat_civil urbanisme dechets)
SCALE=${BENCH_SCALE:-1}
[ "${BENCH_TINY:-0}" = 1 ] && SCALE=0.01
[[ "$SCALE" =~ ^[0-9]*\.?[0-9]+$ ]] || die "BENCH_SCALE must be a positive number, not '$SCALE'"
EVENTS=$(awk -v s="$SCALE" 'BEGIN { n = int(s * 1000000 + 0.5); print (n < 1000 ? 1000 : n) }')
TINY=$(awk -v s="$SCALE" 'BEGIN { print (s < 0.1 ? 1 : 0) }')
LAT_RATE=1000
LAT_SECONDS=$([ "$TINY" = 1 ] && echo 5 || echo 30)
NAIVE_EVENTS=$([ "$TINY" = 1 ] && echo 2000 || echo 20000)
# the hub's knobs: deploy/civibus.yaml's defaults unless BENCH_BATCH / _DELAY_MS / _WINDOW
HUB_BATCH=${BENCH_BATCH:-1000} HUB_DELAY_MS=${BENCH_DELAY_MS:-20} HUB_WINDOW=${BENCH_WINDOW:-1000}
OUT=${BENCH_OUT:-$ROOT/var/bench}

# ---- setup: temporary folder, PostgreSQL, tools; cleanup on every exit path --------
setup() {
    local b
    for b in "$BIN/civibus-hub" "$BIN/civibus-adapter" "$BUILD/libcivibus.a"; do
        [ -e "$b" ] || die "$b is missing: run make first (make bench builds it)"
    done
    command -v psql >/dev/null || die "psql is missing (make deps)"
    T=$(mktemp -d /tmp/civibus-bench.XXXXXX) || die "cannot create a temporary folder"
    chmod 755 "$T"
    mkdir -p "$T/m" "$T/keys" "$OUT" || die "cannot create $OUT"
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE
    say "scale $SCALE: $EVENTS events; starting PostgreSQL in $T/pg"
    bash deploy/pgctl.sh start "$T/pg" >"$T/pg-start.log" 2>&1 \
        || { cat "$T/pg-start.log" >&2; die "PostgreSQL did not start"; }
    eval "$(bash deploy/pgctl.sh env "$T/pg")"
    PG_DATA=$(readlink -f "$T/pg/cluster")/data

    SETTINGS=$(pg_settings) || die "cannot read the server settings"
    [ "$(q postgres "SHOW fsync")" = on ] \
        || die "invalid run: fsync is off (a benchmark without durability measures nothing)"
    [ "$(q postgres "SHOW synchronous_commit")" != off ] \
        || die "invalid run: synchronous_commit is off (check PGOPTIONS and the server config)"
    echo "$SETTINGS" >"$T/m/pg_settings.json"
    build_tool latency
    build_tool naive
}

cleanup() {
    stop_started
    [ "${BENCH_KEEP:-0}" = 1 ] && cp "$T/pg/cluster/log/server.log" "$T/pg-server.log" 2>/dev/null
    [ -d "$T/pg" ] && bash deploy/pgctl.sh stop --purge "$T/pg" >/dev/null 2>&1
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $T" >&2; else rm -rf "$T"; fi
}

# The settings that decide what a commit costs, as the sessions see them.
pg_settings() {
    q postgres "SELECT json_object_agg(name, current_setting(name) ORDER BY ord)
                FROM unnest(ARRAY['server_version', 'fsync', 'synchronous_commit', 'full_page_writes',
                     'wal_level', 'wal_sync_method', 'wal_compression', 'shared_buffers', 'wal_buffers',
                     'max_wal_size', 'checkpoint_timeout', 'work_mem', 'effective_cache_size', 'jit'])
                     WITH ORDINALITY AS s(name, ord)"
}

# ---- 1. data, keys, configs ----------------------------------------------------------
prepare() {
    say "generating $EVENTS events (tests/bench/gen.py)"
    run_fg python3 tests/bench/gen.py "$T/data" "$EVENTS" >"$T/m/gen.json" || die "gen.py failed"
    run_fg python3 tests/bench/gen.py "$T/data-lat" $((LAT_RATE * LAT_SECONDS)) --tag L --only dechets \
        >/dev/null || die "gen.py (latency set) failed"
    local k s
    for k in hub "${SOURCES[@]}"; do
        "$BIN/civibus-adapter" keygen --out "$T/keys/$k" >/dev/null || die "keygen $k failed"
    done
    {
        echo "postgres:"
        echo "  conninfo: \"host=$PGHOST port=$PGPORT user=$PGUSER dbname=bench_civibus\""
        echo "  migrations: $ROOT/schemas/sql"
        echo "listen:"
        echo "  adapters: ipc://$T/hub.sock"
        echo "  publish: ipc://$T/pub.sock"
        echo "curve:"
        echo "  server_cert: keys/hub_secret"
        echo "store:"
        echo "  batch_max_events: $HUB_BATCH"
        echo "  batch_max_delay_ms: $HUB_DELAY_MS"
        echo "  pending_max_bytes: 67108864"
        echo "limits:"
        echo "  max_message_bytes: 1048576"
        echo "  max_event_bytes: 262144"
        echo "protocol:"
        echo "  window: $HUB_WINDOW"
        echo "  heartbeat_ms: 2000"
        echo "runtime_dir: run"
        echo "sources:"
        for s in "${SOURCES[@]}"; do
            printf '  - name: %s\n    mapping: %s\n    keys: [keys/%s]\n' \
                "$s" "$ROOT/tests/bench/mappings/$s.yaml" "$s"
        done
    } >"$T/hub.yaml"
    "$BIN/civibus-hub" --config "$T/hub.yaml" --check-config >/dev/null || die "hub config refused"
    adapter_config spool >"$T/adapter.yaml"
    adapter_config spool-latency >"$T/adapter-latency.yaml"
    printf '{"batch_max_events": %d, "batch_max_delay_ms": %d, "window": %d, "transport": "ipc + CURVE"}\n' \
        "$HUB_BATCH" "$HUB_DELAY_MS" "$HUB_WINDOW" >"$T/m/hub_settings.json"
}

adapter_config() {  # SPOOL_FOLDER
    printf 'hub:\n  endpoint: ipc://%s/hub.sock\n  public_key_file: keys/hub\nsources:\n' "$T"
    local s
    for s in "${SOURCES[@]}"; do
        printf '  %s:\n    secret_key_file: keys/%s_secret\n    spool_dir: %s/%s\n' "$s" "$s" "$1" "$s"
    done
}

hub_start() {
    new_db bench_civibus
    start_bg HUB_PID "$BIN/civibus-hub" --config "$T/hub.yaml" >>"$T/hub.log" 2>&1
    local i
    for i in $(seq 1 200); do
        grep -q "listening for adapters" "$T/hub.log" 2>/dev/null && return 0
        kill -0 "$HUB_PID" 2>/dev/null || { tail -n 20 "$T/hub.log" >&2; die "the hub exited at start-up"; }
        sleep 0.1
    done
    die "the hub did not start listening within 20 s"
}

# ---- 2. civibus end to end -------------------------------------------------------------
run_civibus() {
    checkpoint bench_civibus
    if [ "${BENCH_PERF:-0}" = 1 ]; then
        command -v perf >/dev/null || die "BENCH_PERF=1 needs perf"
        start_bg PERF_PID perf record --call-graph dwarf,16384 -F 199 -p "$HUB_PID" \
            -o "$T/perf.data" -q >"$T/perf.log" 2>&1
    fi
    say "civibus: ${#SOURCES[@]} adapters -> hub -> PostgreSQL, $EVENTS events"
    local s pid failed=0 t0 hub0 pg0 busy0 adapters=()
    hub0=$(cpu_ticks "$HUB_PID") pg0=$(pg_cpu_ticks) busy0=$(busy_ticks)
    t0=$(now)
    for s in "${SOURCES[@]}"; do
        start_bg pid "$BIN/civibus-adapter" replay --config "$T/adapter.yaml" --source "$s" \
            --file "$T/data/$s.jsonl" --timeout $((EVENTS / 1000 + 600)) \
            >"$T/replay-$s.out" 2>"$T/replay-$s.log"
        adapters+=("$pid")
    done
    rss_watch "$T/rss-adapters" "${adapters[@]}" &
    local watch=$!
    for pid in "${adapters[@]}"; do wait "$pid" || failed=1; done
    local seconds hub_ticks pg_ticks busy
    seconds=$(seconds_since "$t0")
    hub_ticks=$(( $(cpu_ticks "$HUB_PID") - hub0 )) pg_ticks=$(( $(pg_cpu_ticks) - pg0 ))
    busy=$(( $(busy_ticks) - busy0 ))
    forget "${adapters[@]}"
    wait "$watch"
    if [ -n "${PERF_PID:-}" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID"; forget "$PERF_PID"; fi
    [ "$failed" = 0 ] || { tail -n 5 "$T"/replay-*.log >&2; die "a replay adapter failed"; }
    check_civibus

    local hz adapter_rss adapter_ticks db_bytes spool_bytes
    hz=$(getconf CLK_TCK)
    db_bytes=$(q bench_civibus "SELECT pg_database_size(current_database())")
    spool_bytes=$(du -sb "$T/spool" | cut -f1)
    adapter_rss=$(sort -k2 -n "$T/rss-adapters" | tail -n 1 | cut -d' ' -f2)
    adapter_ticks=$(awk '{ s += $3 } END { print s + 0 }' "$T/rss-adapters")
    printf '{"events": %d, "seconds": %s, "adapters": %d, "requests": %d, "citizens": %d, "flagged": %d, "adapter_rss_kb": %d, "database_bytes": %d, "spool_bytes": %d, "cpu_seconds": {"hub": %s, "postgresql": %s, "adapters": %s, "machine_busy": %s, "machine_available": %s}}\n' \
        "$EVENTS" "$seconds" "${#SOURCES[@]}" "$(q bench_civibus "SELECT count(*) FROM requests")" \
        "$(q bench_civibus "SELECT count(*) FROM citizens")" \
        "$(q bench_civibus "SELECT count(*) FROM events WHERE transition_flagged")" "$adapter_rss" \
        "$db_bytes" "$spool_bytes" \
        "$(ticks_s "$hub_ticks" "$hz")" "$(ticks_s "$pg_ticks" "$hz")" "$(ticks_s "$adapter_ticks" "$hz")" \
        "$(ticks_s "$busy" "$hz")" "$(awk -v s="$seconds" -v n="$(nproc)" 'BEGIN { printf "%.2f", s * n }')" \
        >"$T/m/civibus.json"
    say "civibus: $EVENTS events stored once and ACKed in $seconds s"
}

ticks_s() { awk -v t="$1" -v hz="$2" 'BEGIN { printf "%.2f", t / hz }'; }

# Every event stored once, nothing dead-lettered, every record ACKed.
check_civibus() {
    local stored dead s sent ack nack acked=0
    stored=$(q bench_civibus "SELECT count(*) FROM events")
    dead=$(q bench_civibus "SELECT count(*) FROM dead_letters")
    [ "$stored" = "$EVENTS" ] || die "civibus stored $stored events, expected $EVENTS"
    [ "$dead" = 0 ] || die "unexpected dead letters: $(q bench_civibus \
        "SELECT string_agg(DISTINCT reason || ' ' || coalesce(detail, ''), '; ') FROM dead_letters")"
    for s in "${SOURCES[@]}"; do
        read -r _ sent _ ack _ nack <"$T/replay-$s.out" || die "replay $s printed nothing"
        if [ "$sent" != "$ack" ] || [ "$nack" != 0 ]; then die "replay $s: $(cat "$T/replay-$s.out")"; fi
        acked=$((acked + ack))
    done
    [ "$acked" = "$EVENTS" ] || die "acked $acked, expected $EVENTS"
}

# The rows civibus wrote, for the ceiling (before the latency run adds more): every
# table the ingest filled, i.e. with rows here but none in a freshly migrated database
# (status_transitions comes with the schema; schema_migrations is the hub's migrator).
dump_rows() {
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$T/spool" "$T/data"      # disk space at scale 10
    new_db bench_copy migrate
    mkdir -p "$T/copy"
    local t rows
    TABLES=() COPY_ROWS=0
    for t in $(q bench_civibus "SELECT tablename FROM pg_tables WHERE schemaname = 'public'
                                  AND tablename <> 'schema_migrations' ORDER BY tablename"); do
        [ "$(q bench_copy "SELECT count(*) FROM (SELECT FROM $t LIMIT 1) x" 2>/dev/null)" = 0 ] || continue
        rows=$(q bench_civibus "SELECT count(*) FROM $t")
        [ "$rows" -gt 0 ] || continue
        run_fg psql -X -q -v ON_ERROR_STOP=1 -d bench_civibus -c "\\copy (SELECT * FROM $t) TO '$T/copy/$t.tsv'" \
            || die "cannot dump $t"
        TABLES+=("$t")
        COPY_ROWS=$((COPY_ROWS + rows))
    done
    [[ " ${TABLES[*]} " == *" events "* ]] || die "no events to copy"
}

# ---- 3. send-to-ACK latency at a steady rate -------------------------------------------
# Steady state: not the bulk load's debts (its checkpoint, the autovacuum it triggers).
run_latency() {
    quiesce bench_civibus
    say "latency: $LAT_RATE events/s for $LAT_SECONDS s (source dechets, on top of $EVENTS events)"
    run_fg "$T/latency" --config "$T/adapter-latency.yaml" --source dechets --file "$T/data-lat/dechets.jsonl" \
        --rate "$LAT_RATE" --timeout $((LAT_SECONDS * 4 + 60)) --samples "$T/latency-samples.txt" \
        >"$T/m/latency.json" 2>"$T/latency.log" \
        || { cat "$T/latency.log" >&2; die "the latency tool failed"; }
    grep -q '"nacked": 0,' "$T/m/latency.json" || die "latency run: records NACKed: $(cat "$T/m/latency.json")"
    printf '{"hub_rss_kb": %d}\n' "$(vmhwm "$HUB_PID")" >"$T/m/hub_rss.json"
    kill -TERM "$HUB_PID"
    wait "$HUB_PID" || die "the hub did not stop cleanly (exit $?)"
    forget "$HUB_PID"
}

# ---- 4. ceiling: COPY of the same rows ---------------------------------------------------
# One psql session (a coprocess) runs the six COPYs, so that its server process is still
# there at the end to read how much CPU they took (like for civibus: the cluster's processes).
run_ceiling() {
    say "ceiling: COPY of the $COPY_ROWS rows civibus wrote into ${TABLES[*]}"
    checkpoint bench_copy
    coproc PSQL { psql -X -q -A -t -v ON_ERROR_STOP=1 -d bench_copy 2>&1; }
    # shellcheck disable=SC2153           # PSQL_PID is set by coproc
    local psql_pid=$PSQL_PID              # bash unsets PSQL_PID when psql exits
    STARTED+=("$psql_pid")
    trap '' PIPE                          # a psql that stopped: an error, not a silent death
    local t t0 s total=0 tables="" ticks
    copy_session "SELECT 1;" || die "COPY session: $COPY_OUT"
    ticks=$(pg_cpu_ticks)         # the session's server process and the background ones
    for t in "${TABLES[@]}"; do
        t0=$(now)
        copy_session "\\copy $t FROM '$T/copy/$t.tsv'" || die "COPY into $t failed: $COPY_OUT"
        s=$(seconds_since "$t0")
        total=$(awk -v a="$total" -v b="$s" 'BEGIN { printf "%.3f", a + b }')
        tables+="${tables:+, }\"$t\": $s"
    done
    ticks=$(( $(pg_cpu_ticks) - ticks ))
    echo '\q' >&"${PSQL[1]}"
    wait "$psql_pid"
    forget "$psql_pid"
    trap - PIPE
    [ "$(q bench_copy "SELECT count(*) FROM events")" = "$EVENTS" ] || die "COPY: events count differs"
    printf '{"events": %d, "rows": %d, "seconds": %s, "tables": {%s}, "cpu_seconds": {"postgresql": %s}}\n' \
        "$EVENTS" "$COPY_ROWS" "$total" "$tables" "$(ticks_s "$ticks" "$(getconf CLK_TCK)")" >"$T/m/copy.json"
    rm -rf "$T/copy"
    say "ceiling: $EVENTS events and their rows copied in $total s"
}

# Sends one command to the psql coprocess; its output, up to a marker, goes to COPY_OUT.
# Fails when psql stopped (ON_ERROR_STOP) before the marker.
copy_session() {
    local line
    COPY_OUT=
    printf '%s\n\\echo __bench_done__\n' "$1" >&"${PSQL[1]}" || { COPY_OUT="psql has stopped"; return 1; }
    while IFS= read -r line <&"${PSQL[0]}"; do
        [ "$line" = __bench_done__ ] && return 0
        COPY_OUT+="${COPY_OUT:+ }$line"
    done
    return 1
}

# ---- 5. naive connector ------------------------------------------------------------------
run_naive() {
    say "naive: $NAIVE_EVENTS events, one transaction each"
    new_db bench_naive migrate
    checkpoint bench_naive
    run_fg "$T/naive" --from "dbname=bench_civibus" --to "dbname=bench_naive" --count "$NAIVE_EVENTS" \
        >"$T/m/naive.json" 2>"$T/naive.log" || { cat "$T/naive.log" >&2; die "the naive connector failed"; }
    [ "$(q bench_naive "SELECT count(*) FROM events")" = "$NAIVE_EVENTS" ] || die "naive: events count differs"
}

# ---- 6. report -----------------------------------------------------------------------------
report() {
    [ "$(pg_settings)" = "$SETTINGS" ] || die "the server settings changed during the run"
    printf '{"scale": %s, "events": %d, "seconds": %s}\n' "$SCALE" "$EVENTS" \
        "$(seconds_since "$BENCH_START")" >"$T/m/run.json"
    if [ -f "$T/perf.data" ]; then
        {
            echo "# hub threads (share of the hub's samples)"
            perf report -i "$T/perf.data" --stdio --no-children --sort pid -g none 2>/dev/null | grep '%'
            echo "# hub, self time by library"
            perf report -i "$T/perf.data" --stdio --no-children --sort dso -g none \
                --percent-limit 0.5 2>/dev/null | grep "%"
            echo "# hub, self time by function"
            perf report -i "$T/perf.data" --stdio --no-children --sort dso,symbol -g none \
                --percent-limit 1 2>/dev/null | grep "%" | sed "s/[ -]*$//"
            echo "# hub, time including callees"
            perf report -i "$T/perf.data" --stdio --children --sort symbol -g none \
                --percent-limit 3 2>/dev/null | grep "%" | sed "s/[ -]*$//"
        } >"$OUT/perf-hub.txt"
        say "hub profile: $OUT/perf-hub.txt"
    fi
    python3 tests/bench/report.py "$T/m" "$T" "$OUT" || die "report.py failed"
}

BENCH_START=$(now)
setup
prepare
hub_start
run_civibus
dump_rows
run_latency
run_ceiling
run_naive
report
