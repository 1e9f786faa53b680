#!/usr/bin/env bash
# tests/bench/run.sh — `make bench`: how fast civibus ingests, against the physical limit
# and against what a city would otherwise do. Results and method: docs/performance.md.
#
#   BENCH_SCALE=1 (default)  1,000,000 events (3 sources, ~205,000 requests), ~5 min
#   BENCH_SCALE=10           10,000,000 events; BENCH_SCALE=0.01 or BENCH_TINY=1: 10,000, < 1 min
#   BENCH_OUT=DIR            where results.json and results.txt go (default var/bench)
#   BENCH_PERF=1             profile the hub with perf during the civibus run (DIR/perf-hub.txt)
#   BENCH_PGSS=1             profile PostgreSQL during the civibus run: pg_stat_statements
#                            (track = all, nested statements included), the top statements
#                            in microseconds per event in DIR/pgss.txt, then the functions
#                            by their own time (track_functions; adds its own overhead)
#   BENCH_SHARED_BUFFERS=SIZE  PostgreSQL's shared_buffers (256MB; printed with the results)
#   BENCH_HUB_WRAP=CMD       start the hub under CMD, e.g. "valgrind --tool=callgrind
#                            --callgrind-out-file=/tmp/hub.cg" with BENCH_TINY=1: instruction
#                            counts do not depend on the machine's load, unlike times
#   BENCH_KEEP=1             keep the temporary folder (data, logs, the stopped PostgreSQL
#                            cluster and its databases) for a post-mortem
#   BENCH_CURVE=1            also the adapter-count curve: the same events through 1, 3
#                            and 10 adapters (stage 7; adds 3 civibus runs)
#   BENCH_HTTP_RATE, BENCH_HTTP_CONNS   the HTTP stage's rate (1000/s) and connections (16)
#   BENCH_HTTP_SQL=SQL       run SQL on the civibus database before the HTTP stage, to try a
#                            schema change (an index) before it lands; printed in the table
#   BENCH_INGEST_SQL=SQL     run SQL on the civibus database once the hub has migrated it,
#                            before the civibus run, to try a storage change before it lands
#   BENCH_INGEST_ONLY=1      stop after the civibus run (stage 2): its rate, CPU per event and
#                            DIR/tables.txt, for side-by-side runs of ingest changes
#   BENCH_BATCH, BENCH_DELAY_MS, BENCH_WINDOW   the hub's batch_max_events (1000),
#                            batch_max_delay_ms (2) and window (1000), to explore tuning
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
#                full, database, vacuumed (tests/bench/latency.c: scheduled send times)
#   4. http      civibus-api on the civibus database (now 1M + 30,000 events at scale 1),
#                vacuumed and read through shared_buffers first (lib.sh: prewarm), the
#                relations a warm-up of the API read last (they stay if it is larger):
#                the agent timeline and the citizen status (tracking code) of random real
#                citizens and requests at a paced 1,000 requests/s each for 30 s (3 s
#                tiny), latency from the scheduled send time (tests/bench/http_load.c);
#                the API's peak RSS and CPU per request
#   4b. pages    tests/browser/bench_pages.mjs in chromium on the same API: the console's
#                citizen page (fragment changed to timeline drawn) for 200 citizens (20
#                tiny), p50/p99, and the dashboard's load (navigation to its table drawn)
#   5. ceiling   COPY of exactly the rows civibus wrote in 2 (every table the ingest
#                filled, same schema and indexes) into an empty database: what
#                PostgreSQL itself takes on this machine
#   6. naive     one transaction per event, row by row (tests/bench/naive.c)
#   7. curve     BENCH_CURVE=1 only: EVENTS déchets events split by request into 1, 3
#                and 10 shards, each its own source and adapter, into a fresh database
#   8. linkage   tests/bench/linkage.sh: a generated population with its ground truth
#                (20,000 people at scale 1, 2,000 at least) through the hub from three
#                softwares: identity precision and recall (docs/identity.md)
#   8b. mail     tests/bench/mail.sh (as root: Postfix): 2,000 mails at scale 1 (200 at
#                least) from the city's mailbox to committed requests, then their
#                acknowledgements from civibus-notify to Postfix: mails per second each way
#   9. report    tests/bench/report.py: one table, results.json, targets met or not
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
HUB_BATCH=${BENCH_BATCH:-1000} HUB_DELAY_MS=${BENCH_DELAY_MS:-2} HUB_WINDOW=${BENCH_WINDOW:-1000}
OUT=${BENCH_OUT:-$ROOT/var/bench}
HTTP_RATE=${BENCH_HTTP_RATE:-1000}
HTTP_CONNS=${BENCH_HTTP_CONNS:-16}
HTTP_SECONDS=$([ "$TINY" = 1 ] && echo 3 || echo 30)
HTTP_DRAIN=$([ "$TINY" = 1 ] && echo 10 || echo 15)    # s after the last due request
CURVE_POINTS=(1 3 10)

# ---- setup: temporary folder, PostgreSQL, tools; cleanup on every exit path --------
setup() {
    local b
    for b in "$BIN/civibus-hub" "$BIN/civibus-adapter" "$BIN/civibus-api" "$BIN/civibusctl" \
             "$BUILD/libcivibus.a"; do
        [ -e "$b" ] || die "$b is missing: run make first (make bench builds it)"
    done
    command -v psql >/dev/null || die "psql is missing (make deps)"
    T=$(mktemp -d /tmp/civibus-bench.XXXXXX) || die "cannot create a temporary folder"
    chmod 755 "$T"
    mkdir -p "$T/m" "$T/keys" "$OUT" || die "cannot create $OUT"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    snapshot

    unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE
    say "scale $SCALE: $EVENTS events; starting PostgreSQL in $T/pg"
    CIVIBUS_PG_SHARED_BUFFERS=${BENCH_SHARED_BUFFERS:-256MB} bash deploy/pgctl.sh start "$T/pg" >"$T/pg-start.log" 2>&1 \
        || { cat "$T/pg-start.log" >&2; die "PostgreSQL did not start"; }
    eval "$(bash deploy/pgctl.sh env "$T/pg")"
    PG_DATA=$(readlink -f "$T/pg/cluster")/data

    if [ "${BENCH_PGSS:-0}" = 1 ]; then
        q postgres "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" \
            && bash deploy/pgctl.sh restart "$T/pg" >>"$T/pg-start.log" 2>&1 \
            && q postgres "ALTER SYSTEM SET pg_stat_statements.track = 'all'" \
            && q postgres "ALTER SYSTEM SET pg_stat_statements.track_planning = on" \
            && q postgres "ALTER SYSTEM SET track_functions = 'all'" \
            && q postgres "SELECT pg_reload_conf()" >/dev/null \
            || die "BENCH_PGSS=1: cannot load pg_stat_statements"
    fi
    SETTINGS=$(pg_settings) || die "cannot read the server settings"
    [ "$(q postgres "SHOW fsync")" = on ] \
        || die "invalid run: fsync is off (a benchmark without durability measures nothing)"
    [ "$(q postgres "SHOW synchronous_commit")" != off ] \
        || die "invalid run: synchronous_commit is off (check PGOPTIONS and the server config)"
    echo "$SETTINGS" >"$T/m/pg_settings.json"
    build_tool latency
    build_tool naive
    build_tool http_load
}

# The binaries and the migrations, copied once: a run of up to an hour then measures one
# version of the code even if the tree is rebuilt or a migration is added meanwhile.
snapshot() {
    mkdir -p "$T/bin" || die "cannot create $T/bin"
    if ! cp "$BIN/civibus-hub" "$BIN/civibus-adapter" "$BIN/civibus-api" "$BIN/civibusctl" "$BIN/civibus-notify" "$T/bin/" \
        || ! cp -r schemas/sql "$T/sql"; then
        die "cannot copy the binaries and migrations to $T"
    fi
    BIN=$T/bin SCHEMAS=$T/sql
}

cleanup() {
    stop_started
    [ "${BENCH_KEEP:-0}" = 1 ] && cp "$T/pg/cluster/log/server.log" "$T/pg-server.log" 2>/dev/null
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        [ -d "$T/pg" ] && bash deploy/pgctl.sh stop "$T/pg" >/dev/null 2>&1
        echo "bench: kept $T (its databases too: bash deploy/pgctl.sh start $T/pg)" >&2
    else
        [ -d "$T/pg" ] && bash deploy/pgctl.sh stop --purge "$T/pg" >/dev/null 2>&1
        rm -rf "$T"
    fi
}

# The settings that decide what a commit costs, as the sessions see them.
pg_settings() {
    q postgres "SELECT json_object_agg(name, current_setting(name) ORDER BY ord)
                FROM unnest(ARRAY['server_version', 'fsync', 'synchronous_commit', 'full_page_writes',
                     'wal_level', 'wal_sync_method', 'wal_compression', 'wal_writer_delay',
                     'shared_buffers', 'wal_buffers', 'max_wal_size', 'checkpoint_timeout', 'work_mem',
                     'effective_cache_size', 'jit'])
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
    hub_config "${SOURCES[@]}" >"$T/hub.yaml"
    "$BIN/civibus-hub" --config "$T/hub.yaml" --check-config >/dev/null || die "hub config refused"
    adapter_config spool "${SOURCES[@]}" >"$T/adapter.yaml"
    adapter_config spool-latency "${SOURCES[@]}" >"$T/adapter-latency.yaml"
    printf '{"batch_max_events": %d, "batch_max_delay_ms": %d, "window": %d, "transport": "ipc + CURVE"}\n' \
        "$HUB_BATCH" "$HUB_DELAY_MS" "$HUB_WINDOW" >"$T/m/hub_settings.json"
}

# The hub's config for SOURCE...: each with tests/bench/mappings/SOURCE.yaml, or for a
# curve shard dechets_K, $T/mappings/dechets_K.yaml (see run_curve), and keys/SOURCE.
hub_config() {
    local s mapping
    {
        echo "postgres:"
        echo "  conninfo: \"host=$PGHOST port=$PGPORT user=$PGUSER dbname=bench_civibus\""
        echo "  migrations: $SCHEMAS"
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
        for s in "$@"; do
            mapping=$ROOT/tests/bench/mappings/$s.yaml
            [ -e "$mapping" ] || mapping=$T/mappings/$s.yaml
            printf '  - name: %s\n    mapping: %s\n    keys: [keys/%s]\n' "$s" "$mapping" "$s"
        done
    }
}

adapter_config() {  # SPOOL_FOLDER SOURCE...
    printf 'hub:\n  endpoint: ipc://%s/hub.sock\n  public_key_file: keys/hub\nsources:\n' "$T"
    local s spool=$1
    shift
    for s in "$@"; do
        printf '  %s:\n    secret_key_file: keys/%s_secret\n    spool_dir: %s/%s\n' "$s" "$s" "$spool" "$s"
    done
}

hub_start() {  # [CONFIG [LOG]]: a fresh bench_civibus database and a hub on it
    local config=${1:-$T/hub.yaml} log=${2:-$T/hub.log}
    new_db bench_civibus
    start_bg HUB_PID ${BENCH_HUB_WRAP:-} "$BIN/civibus-hub" --config "$config" >"$log" 2>&1
    local i
    for i in $(seq 1 200); do
        grep -q "listening for adapters" "$log" 2>/dev/null && return 0
        kill -0 "$HUB_PID" 2>/dev/null || { tail -n 20 "$log" >&2; die "the hub exited at start-up"; }
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
    if [ -n "${BENCH_INGEST_SQL:-}" ]; then
        say "civibus: running BENCH_INGEST_SQL first: $BENCH_INGEST_SQL"
        run_fg psql -X -q -v ON_ERROR_STOP=1 -d bench_civibus -c "$BENCH_INGEST_SQL" \
            || die "BENCH_INGEST_SQL failed"
    fi
    say "civibus: ${#SOURCES[@]} adapters -> hub -> PostgreSQL, $EVENTS events"
    [ "${BENCH_PGSS:-0}" = 1 ] && { q bench_civibus "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
        && q bench_civibus "SELECT pg_stat_statements_reset()" >/dev/null || die "pg_stat_statements"; }
    replay_all "$T/adapter.yaml" "$T/data" "$T/replay" "${SOURCES[@]}"
    if [ -n "${PERF_PID:-}" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID"; forget "$PERF_PID"; fi
    [ "$REPLAY_FAILED" = 0 ] || { tail -n 5 "$T"/replay-*.log >&2; die "a replay adapter failed"; }
    check_civibus "$T/replay" "${SOURCES[@]}"
    # The statistics below come from the writer's backend, which reports them when idle
    # within 10 s (PostgreSQL's idle interval): wait until its counters show the EVENTS
    # events check_civibus found stored, or read them as they are after 15 s.
    local try
    for try in $(seq 15); do
        [ "$(q bench_civibus "SELECT n_tup_ins >= $EVENTS FROM pg_stat_user_tables
                              WHERE relname = 'events'")" = t ] && break
        sleep 1
    done
    if [ "${BENCH_PGSS:-0}" = 1 ]; then
        q bench_civibus "SELECT round(((total_exec_time + total_plan_time) * 1000 / $EVENTS)::numeric, 1)
                                || ' us/event (plan ' || round((total_plan_time * 1000 / $EVENTS)::numeric, 1)
                                || ')  calls ' || calls || '  ' || left(regexp_replace(query, '\s+', ' ', 'g'), 110)
                         FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 40" \
            >"$OUT/pgss.txt" || die "cannot read pg_stat_statements"
        # Functions, by their own time (self: without the functions they call), for the
        # plpgsql helpers that pg_stat_statements does not separate from their callers.
        q bench_civibus "SELECT round((self_time * 1000 / $EVENTS)::numeric, 1) || ' us/event self, '
                                || round((total_time * 1000 / $EVENTS)::numeric, 1) || ' total  calls '
                                || calls || '  ' || funcname
                         FROM pg_stat_user_functions ORDER BY self_time DESC LIMIT 25" \
            >>"$OUT/pgss.txt" || die "cannot read pg_stat_user_functions"
        say "PostgreSQL profile: $OUT/pgss.txt"
    fi

    # Rows written per table, and how many updates were HOT (no index entry written).
    q bench_civibus "SELECT rpad(relname, 22) || ' inserts ' || lpad(n_tup_ins::text, 9)
                            || '  updates ' || lpad(n_tup_upd::text, 9) || '  hot ' || lpad(n_tup_hot_upd::text, 9)
                     FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd > 0 ORDER BY relname" \
        >"$OUT/tables.txt" || die "cannot read the table statistics"
    local db_bytes spool_bytes
    db_bytes=$(q bench_civibus "SELECT pg_database_size(current_database())")
    spool_bytes=$(du -sb "$T/spool" | cut -f1)
    printf '{"events": %d, "seconds": %s, "adapters": %d, "requests": %d, "citizens": %d, "flagged": %d, "adapter_rss_kb": %d, "database_bytes": %d, "spool_bytes": %d, "cpu_seconds": %s}\n' \
        "$EVENTS" "$REPLAY_SECONDS" "${#SOURCES[@]}" "$(q bench_civibus "SELECT count(*) FROM requests")" \
        "$(q bench_civibus "SELECT count(*) FROM citizens")" \
        "$(q bench_civibus "SELECT count(*) FROM events WHERE transition_flagged")" "$REPLAY_RSS_KB" \
        "$db_bytes" "$spool_bytes" "$REPLAY_CPU" >"$T/m/civibus.json"
    say "civibus: $EVENTS events stored once and ACKed in $REPLAY_SECONDS s"
}

# One replay adapter per SOURCE (DATA/SOURCE.jsonl, config ADAPTER_YAML), in parallel, into
# the running hub; outputs OUT-SOURCE.out/.log. Sets REPLAY_SECONDS (first start to last
# exit), REPLAY_FAILED, REPLAY_RSS_KB (largest adapter VmHWM) and REPLAY_CPU (a JSON
# object: CPU seconds of the hub, PostgreSQL, the adapters, the machine).
replay_all() {  # ADAPTER_YAML DATA OUT SOURCE...
    local config=$1 data=$2 out=$3 s pid t0 hub0 pg0 busy0 adapters=()
    shift 3
    REPLAY_FAILED=0
    hub0=$(cpu_ticks "$HUB_PID") pg0=$(pg_cpu_ticks) busy0=$(busy_ticks)
    t0=$(now)
    for s in "$@"; do
        start_bg pid "$BIN/civibus-adapter" replay --config "$config" --source "$s" \
            --file "$data/$s.jsonl" --timeout $((EVENTS / 1000 + 600)) \
            >"$out-$s.out" 2>"$out-$s.log"
        adapters+=("$pid")
    done
    rss_watch "$out.rss" "${adapters[@]}" &
    local watch=$!
    for pid in "${adapters[@]}"; do wait "$pid" || REPLAY_FAILED=1; done
    local hub_ticks pg_ticks busy hz adapter_ticks
    REPLAY_SECONDS=$(seconds_since "$t0")
    hub_ticks=$(( $(cpu_ticks "$HUB_PID") - hub0 )) pg_ticks=$(( $(pg_cpu_ticks) - pg0 ))
    busy=$(( $(busy_ticks) - busy0 ))
    forget "${adapters[@]}"
    wait "$watch"
    hz=$(getconf CLK_TCK)
    REPLAY_RSS_KB=$(sort -k2 -n "$out.rss" | tail -n 1 | cut -d' ' -f2)
    adapter_ticks=$(awk '{ s += $3 } END { print s + 0 }' "$out.rss")
    REPLAY_CPU=$(printf '{"hub": %s, "postgresql": %s, "adapters": %s, "machine_busy": %s, "machine_available": %s}' \
        "$(ticks_s "$hub_ticks" "$hz")" "$(ticks_s "$pg_ticks" "$hz")" "$(ticks_s "$adapter_ticks" "$hz")" \
        "$(ticks_s "$busy" "$hz")" "$(awk -v s="$REPLAY_SECONDS" -v n="$(nproc)" 'BEGIN { printf "%.2f", s * n }')")
}

ticks_s() { awk -v t="$1" -v hz="$2" 'BEGIN { printf "%.2f", t / hz }'; }

# Every event stored once, nothing dead-lettered, every record ACKed.
check_civibus() {  # OUT SOURCE... (replay_all's outputs)
    local out=$1 stored dead s sent ack nack acked=0
    shift
    stored=$(q bench_civibus "SELECT count(*) FROM events")
    dead=$(q bench_civibus "SELECT count(*) FROM dead_letters")
    [ "$stored" = "$EVENTS" ] || die "civibus stored $stored events, expected $EVENTS"
    [ "$dead" = 0 ] || die "unexpected dead letters: $(q bench_civibus \
        "SELECT string_agg(DISTINCT reason || ' ' || coalesce(detail, ''), '; ') FROM dead_letters")"
    for s in "$@"; do
        read -r _ sent _ ack _ nack <"$out-$s.out" || die "replay $s printed nothing"
        if [ "$sent" != "$ack" ] || [ "$nack" != 0 ]; then die "replay $s: $(cat "$out-$s.out")"; fi
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
    # The dump wrote about a gigabyte per million events to this disk; let the kernel
    # write it back now rather than during the latency run, whose adapter syncs its spool
    # on the same disk (the dump is the benchmark's own work, not civibus's steady state).
    sync
}

# ---- 3. send-to-ACK latency at a steady rate -------------------------------------------
# Steady state: not the bulk load's debts (its vacuum and its checkpoint: quiesce, lib.sh).
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

# ---- 4. HTTP: the agent timeline and the citizen status, paced ----------------------
# civibus-api on the civibus database (the benchmark's events plus the latency run's),
# 4 workers (deploy/api.yaml's default: 2 per core, so that a worker waiting on
# PostgreSQL leaves its core to another),
# audit on. The tracking-code lookup is rate limited per client address: every request
# here comes from 127.0.0.1, so tracking.per_minute is raised to its maximum (100,000;
# the run sends at most rate x seconds + a 50-request warm-up per minute-window).
run_http() {
    if [ -n "${BENCH_HTTP_SQL:-}" ]; then
        say "http: running BENCH_HTTP_SQL first: $BENCH_HTTP_SQL"
        run_fg psql -X -q -v ON_ERROR_STOP=1 -d bench_civibus -c "$BENCH_HTTP_SQL" -c "ANALYZE" \
            || die "BENCH_HTTP_SQL failed"
    fi
    quiesce bench_civibus
    local threads=4
    printf 'postgres:\n  conninfo: "host=%s port=%s user=%s dbname=bench_civibus"\nlisten:\n  address: 127.0.0.1\n  port: 0\nhttp:\n  threads: %d\ntracking:\n  per_minute: 100000\nweb:\n  dir: %s\ndashboard:\n  costs_file: %s\n' \
        "$PGHOST" "$PGPORT" "$PGUSER" "$threads" "$ROOT/web" "$ROOT/deploy/costs.yaml" >"$T/api.yaml"
    (( HTTP_RATE * HTTP_SECONDS + 50 <= 100000 )) \
        || die "BENCH_HTTP_RATE x seconds exceeds the API's tracking.per_minute maximum (100,000)"
    start_bg API_PID "$BIN/civibus-api" --config "$T/api.yaml" >"$T/api.log" 2>&1
    local port=
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$T/api.log")
        [ -n "$port" ] && break
        kill -0 "$API_PID" 2>/dev/null || { tail -n 20 "$T/api.log" >&2; die "civibus-api exited at start-up"; }
        sleep 0.1
    done
    [ -n "$port" ] || die "civibus-api did not start listening within 10 s"
    (umask 077; "$BIN/civibusctl" --config "$T/api.yaml" token create --role supervisor --label bench \
        >"$T/api-token" 2>"$T/api-token.log") || die "token create failed: $(cat "$T/api-token.log")"
    q bench_civibus "SELECT '/v1/citizens/' || id || '/timeline' FROM citizens ORDER BY random() LIMIT 10000" \
        >"$T/paths-timeline" || die "cannot pick citizens"
    q bench_civibus "SELECT '/v1/track/' || tracking_code FROM requests ORDER BY random() LIMIT 10000" \
        >"$T/paths-status" || die "cannot pick tracking codes"
    # the timeline answers its first page (the API's default limit, 50 requests): how many
    # citizens have more, i.e. an answer shorter than their whole history
    local pages
    pages=$(q bench_civibus "SELECT json_build_object('limit', 50, 'citizens_over', count(*) FILTER (WHERE n > 50),
                                     'max_requests', coalesce(max(n), 0))
                             FROM (SELECT count(*) AS n FROM requests WHERE citizen_id IS NOT NULL
                                   GROUP BY citizen_id) x") || die "cannot count the timeline pages"
    # the relations the API reads: those whose block counters a warm-up of both loads moves
    # (backends report their counters within 10 s once idle) by more than the planner's
    # reads (each worker reads the metapage of every index of the tables its statements
    # name, once, when it prepares them), read last by the prewarm
    local before api_rels
    before=$(blocks_read bench_civibus) || die "cannot read the block counters"
    http_warmup timeline "$T/paths-timeline" "http://127.0.0.1:$port" --token-file "$T/api-token"
    http_warmup status "$T/paths-status" "http://127.0.0.1:$port"
    sleep 11
    api_rels=$(blocks_read bench_civibus | awk -F'|' 'NR == FNR { was[$1] = $2; next }
                                                      $2 - was[$1] > t { printf "%s%s", sep, $1; sep = "," }' \
               t="$threads" <(echo "$before") -) || die "cannot tell the API's relations"
    prewarm bench_civibus "$api_rels"
    http_run timeline "$T/paths-timeline" "http://127.0.0.1:$port" --token-file "$T/api-token"
    http_run status "$T/paths-status" "http://127.0.0.1:$port"
    run_pages "http://127.0.0.1:$port"
    printf '{"api_rss_kb": %d, "threads": %d, "tracking_per_minute": 100000, "prewarm": %s, "timeline_page": %s, "extra_sql": %s}\n' \
        "$(vmhwm "$API_PID")" "$threads" "$PREWARM_JSON" "$pages" "$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1] or None))' \
        "${BENCH_HTTP_SQL:-}")" >"$T/m/api_rss.json"
    kill -TERM "$API_PID"
    wait "$API_PID" || die "civibus-api did not stop cleanly (exit $?)"
    forget "$API_PID"
}

# ---- 4b. the pages in chromium (tests/browser/bench_pages.mjs): the console's citizen page
# over 200 random citizens (20 tiny), and the dashboard's load, on the same API and database
run_pages() {
    local n ids
    n=$([ "$TINY" = 1 ] && echo 20 || echo 200)
    if ! command -v node >/dev/null 2>&1 || [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
        say "pages: skipped (no node or chromium: deploy/deps.sh test installs them)"; return 0
    fi
    tests/browser/install.sh "$T/npm.log" 2>"$T/npm.err" || die "pages: $(cat "$T/npm.err")"
    ids=$(q bench_civibus "SELECT string_agg(id::text, ',') FROM (SELECT citizen_id AS id FROM requests
                           WHERE citizen_id IS NOT NULL GROUP BY 1 ORDER BY random() LIMIT $n) c") \
        || die "cannot pick citizens for the pages"
    say "pages: the console's citizen page for $n citizens, the dashboard 5 times"
    BASE_URL=$1 TOKEN=$(cat "$T/api-token") CITIZENS=$ids LOADS=5 OUT="$T/m/pages.json" OUT_DIR="$T/shots" \
        timeout 600 node tests/browser/bench_pages.mjs >"$T/pages.out" 2>"$T/pages.log" \
        || { tail -n 20 "$T/pages.log" >&2; die "the pages' benchmark failed"; }
}

# NAME PATHS BASE [http_load options]: a warm-up of 50 requests in 1 s (each worker opens
# its PostgreSQL connection and prepares its statements; not measured, but an error or a
# non-2xx answer stops the run).
http_warmup() {
    local name=$1 paths=$2 base=$3
    shift 3
    run_fg "$T/http_load" --base "$base" --paths "$paths" --rate 50 --duration 1 "$@" \
        >"$T/http-$name-warmup.json" 2>>"$T/http-$name.log"
    grep -q '"non2xx": 0, "errors": 0,' "$T/http-$name-warmup.json" \
        || die "HTTP $name warm-up failed: $(cat "$T/http-$name-warmup.json" "$T/http-$name.log")"
}

# NAME PATHS BASE [http_load options]: HTTP_RATE/s for HTTP_SECONDS, after http_warmup.
# Errors and non-2xx answers of the measured run are for report.py to refuse.
http_run() {
    local name=$1 paths=$2 base=$3
    shift 3
    say "http: $name at $HTTP_RATE requests/s for $HTTP_SECONDS s, $HTTP_CONNS connections"
    local api0 pg0 hz t0
    hz=$(getconf CLK_TCK) api0=$(cpu_ticks "$API_PID") pg0=$(pg_cpu_ticks) t0=$(now)
    run_fg "$T/http_load" --base "$base" --paths "$paths" --rate "$HTTP_RATE" --duration "$HTTP_SECONDS" \
        --connections "$HTTP_CONNS" --timeout "$HTTP_DRAIN" --samples "$T/http-$name-samples.txt" "$@" \
        >"$T/m/http_$name.json" 2>>"$T/http-$name.log"
    [ -s "$T/m/http_$name.json" ] || { cat "$T/http-$name.log" >&2; die "the HTTP load tool failed ($name)"; }
    # CPU seconds of the API and of PostgreSQL over the run's wall-clock seconds (drain
    # included): how busy each was, which tells a CPU-bound stage from one that waits
    printf '{"api": %s, "postgresql": %s, "seconds": %s}\n' "$(ticks_s $(( $(cpu_ticks "$API_PID") - api0 )) "$hz")" \
        "$(ticks_s $(( $(pg_cpu_ticks) - pg0 )) "$hz")" "$(seconds_since "$t0")" >"$T/m/http_${name}_cpu.json"
}

# ---- 5. ceiling: COPY of the same rows ---------------------------------------------------
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

# ---- 6. naive connector ------------------------------------------------------------------
run_naive() {
    say "naive: $NAIVE_EVENTS events, one transaction each"
    new_db bench_naive migrate
    checkpoint bench_naive
    run_fg "$T/naive" --from "dbname=bench_civibus" --to "dbname=bench_naive" --count "$NAIVE_EVENTS" \
        >"$T/m/naive.json" 2>"$T/naive.log" || { cat "$T/naive.log" >&2; die "the naive connector failed"; }
    [ "$(q bench_naive "SELECT count(*) FROM events")" = "$NAIVE_EVENTS" ] || die "naive: events count differs"
}

# ---- 7. adapter-count curve (BENCH_CURVE=1) -----------------------------------------
# The same EVENTS déchets events (one mapping, so only the number of adapters changes),
# split by request into N shards: shard K is source dechets_K (the déchets mapping under
# that name, its own key and spool) and its own replay adapter. A request's events stay
# in one shard, in time order. Each point: a fresh database, a fresh hub, a CHECKPOINT.
run_curve() {
    [ "${BENCH_CURVE:-0}" = 1 ] || return 0
    say "curve: generating $EVENTS déchets events"
    run_fg python3 tests/bench/gen.py "$T/data-curve" "$EVENTS" --tag C --only dechets \
        >/dev/null || die "gen.py (curve set) failed"
    mkdir -p "$T/mappings"
    local k n points=""
    for k in $(seq 1 "${CURVE_POINTS[-1]}"); do
        sed "s/^source: dechets\$/source: dechets_$k/" tests/bench/mappings/dechets.yaml \
            >"$T/mappings/dechets_$k.yaml"
        grep -q "^source: dechets_$k\$" "$T/mappings/dechets_$k.yaml" || die "cannot rename the dechets mapping"
        "$BIN/civibus-adapter" keygen --out "$T/keys/dechets_$k" >/dev/null || die "keygen dechets_$k failed"
    done
    for n in "${CURVE_POINTS[@]}"; do
        curve_point "$n"
        points+="${points:+, }\"$n\": {\"events\": $EVENTS, \"seconds\": $REPLAY_SECONDS, \"adapter_rss_kb\": $REPLAY_RSS_KB, \"cpu_seconds\": $REPLAY_CPU}"
    done
    printf '{%s}\n' "$points" >"$T/m/curve.json"
    rm -rf "$T/data-curve"
}

# argv: FILE OUT N; a request's records (id D-C-<number>) go to shard number % N + 1.
SHARD_PY='
import json, os, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out)
files = [open(os.path.join(out, "dechets_%d.jsonl" % (k + 1)), "w", encoding="utf-8") for k in range(n)]
with open(src, encoding="utf-8") as f:
    for line in f:
        files[int(json.loads(line)["id"].rsplit("-", 1)[1]) % n].write(line)
for f in files:
    f.close()
'

curve_point() {  # N
    local n=$1 k sources=()
    for k in $(seq 1 "$n"); do sources+=("dechets_$k"); done
    rm -rf "$T/data-shards" "$T/spool-curve"
    run_fg python3 -c "$SHARD_PY" "$T/data-curve/dechets.jsonl" "$T/data-shards" "$n" \
        || die "cannot shard the curve data"
    hub_config "${sources[@]}" >"$T/hub-curve.yaml"
    adapter_config spool-curve "${sources[@]}" >"$T/adapter-curve.yaml"
    hub_start "$T/hub-curve.yaml" "$T/hub-curve-$n.log"
    checkpoint bench_civibus
    say "curve: $n adapter(s), $EVENTS events"
    replay_all "$T/adapter-curve.yaml" "$T/data-shards" "$T/curve-$n" "${sources[@]}"
    [ "$REPLAY_FAILED" = 0 ] || { tail -n 5 "$T"/curve-"$n"-*.log >&2; die "a curve replay adapter failed"; }
    check_civibus "$T/curve-$n" "${sources[@]}"
    kill -TERM "$HUB_PID"
    wait "$HUB_PID" || die "the hub did not stop cleanly (exit $?)"
    forget "$HUB_PID"
    rm -rf "$T/data-shards" "$T/spool-curve"
    say "curve: $n adapter(s): $EVENTS events in $REPLAY_SECONDS s"
}

# BENCH_PERF=1: the hub's profile, by thread, library and function.
perf_report() {
    [ -f "$T/perf.data" ] || return 0
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
}

# ---- 8. identity linkage ----------------------------------------------------------------
run_linkage() {
    local people
    people=$(awk -v s="$SCALE" 'BEGIN { n = int(s * 20000 + 0.5); print (n < 2000 ? 2000 : n) }')
    say "identity linkage: $people people"
    CIVIBUS_TEST_TMP=$T BUILD=$BUILD BIN=$BIN LINKAGE_OUT="$T/m/linkage.json" \
        bash tests/bench/linkage.sh "$people" 11 >"$T/linkage.out" 2>"$T/linkage.log" \
        || { tail -n 20 "$T/linkage.log" >&2; die "the linkage benchmark failed"; }
}

# ---- 8b. mail: the intake and the notifier (root only: Postfix) ------------------------------
run_mail() {
    local mails
    if [ "$(id -u)" -ne 0 ]; then
        say "mail: skipped (Postfix's master needs root)"; return 0
    fi
    mails=$(awk -v s="$SCALE" 'BEGIN { n = int(s * 2000 + 0.5); print (n < 200 ? 200 : n) }')
    say "mail: $mails mails in, $mails acknowledgements out"
    CIVIBUS_TEST_TMP=$T BUILD=$BUILD BIN=$BIN MAIL_OUT="$T/m/mail.json" \
        bash tests/bench/mail.sh "$mails" >"$T/mail.out" 2>"$T/mail.log" \
        || { grep -v " INFO " "$T/mail.log" | tail -n 20 >&2; die "the mail benchmark failed"; }
}

# ---- 9. report -----------------------------------------------------------------------------
report() {
    [ "$(pg_settings)" = "$SETTINGS" ] || die "the server settings changed during the run"
    printf '{"scale": %s, "events": %d, "seconds": %s}\n' "$SCALE" "$EVENTS" \
        "$(seconds_since "$BENCH_START")" >"$T/m/run.json"
    perf_report
    python3 tests/bench/report.py "$T/m" "$T" "$OUT" || die "report.py failed"
}

BENCH_START=$(now)
setup
prepare
hub_start
run_civibus
if [ "${BENCH_INGEST_ONLY:-0}" = 1 ]; then
    python3 - "$T/m/civibus.json" <<'EOF_PY'
import json, sys
m = json.load(open(sys.argv[1]))
c, n = m["cpu_seconds"], m["events"]
us = lambda s: round(s * 1e6 / n)
print("civibus %d events in %.1f s: %d ev/s; CPU us/event %d (hub %d, PostgreSQL %d, adapters %d); busy %.0f of %.0f core-s"
      % (n, m["seconds"], n / m["seconds"], us(c["hub"] + c["postgresql"] + c["adapters"]), us(c["hub"]),
         us(c["postgresql"]), us(c["adapters"]), c["machine_busy"], c["machine_available"]))
EOF_PY
    echo "hub peak RSS (VmHWM): $(vmhwm "$HUB_PID") kB"
    cat "$OUT/tables.txt"
    perf_report
    exit 0
fi
dump_rows
run_latency
run_http
run_ceiling
run_naive
run_curve
run_linkage
run_mail
report
