# shellcheck shell=bash
# tests/bench/lib.sh — helpers of the benchmark (sourced by tests/bench/run.sh).
#
# Everything the benchmark starts lives in one temporary folder $T: the PostgreSQL
# cluster ($T/pg, deploy/pgctl.sh), keys, configs, data, spools, the tools it compiles.
# Processes are remembered by pid ($STARTED) and stopped by pid on every exit path; the
# cluster is stopped and purged. Measurements go to $T/m/*.json, one file per phase,
# for report.py.
#
#   die MSG                      prints and exits 1 (the EXIT trap cleans up)
#   now / seconds_since T0       wall clock ($EPOCHREALTIME), elapsed seconds
#   q DB SQL                     one value (psql, unaligned)
#   new_db NAME [migrate]        fresh database; with `migrate` the civibus schema
#                                ($SCHEMAS: run.sh's copy of schemas/sql): the numbered
#                                migrations, then the repeatable functions/*.sql
#   checkpoint DB                CHECKPOINT (each measurement starts from a clean one)
#   quiesce DB                   VACUUM (ANALYZE) of DB, then CHECKPOINT: the steady state
#   prewarm DB                   DB's tables and indexes read through shared_buffers
#   vmhwm PID                    peak resident set (kB) of a running process
#   cpu_ticks PID...             CPU time (utime + stime, clock ticks) of running processes
#   pg_pids                      the cluster's processes (postmaster and its children)
#   pg_cpu_ticks                 cpu_ticks of all of them
#   busy_ticks                   CPU ticks the whole machine spent busy since boot
#   rss_watch OUT PID...         background: samples VmHWM and CPU until the pids exit
#   build_tool NAME              cc tests/bench/NAME.c with the Makefile's flags
#   start_bg VAR CMD...          starts CMD in the background, pid in $VAR and $STARTED
#   forget PID...                the pids were waited for: not ours to stop any more
#   run_fg CMD...                runs CMD in the background and waits for it: a signal to
#                                this script then stops at once (the trap runs in `wait`)

die() { echo "bench: $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

new_db() {
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" \
        >/dev/null || die "cannot create database $1"
    [ "${2:-}" = migrate ] || return 0
    local f
    for f in "${SCHEMAS:-$ROOT/schemas/sql}"/[0-9]*.sql "${SCHEMAS:-$ROOT/schemas/sql}"/functions/*.sql; do
        # the roles' grants (zz_grants.sql) name the migration runner's own tables, which a
        # database filled by psql has not; the bench connects as the superuser anyway
        case $f in */functions/zz_*) continue ;; esac
        psql -X -q -v ON_ERROR_STOP=1 -1 -d "$1" -f "$f" >/dev/null || die "$f: migration failed on $1"
    done
}

checkpoint() { q "$1" "CHECKPOINT" >/dev/null || die "CHECKPOINT failed"; }

# The steady state a measurement starts from: the bulk load's debts paid. A bulk load
# leaves its tables for autovacuum (10 million inserted events, millions of updated
# requests), and the launcher starts a worker when it gets round to it, possibly in the
# middle of a measurement: one core vacuuming for minutes, the WAL it writes. Waiting
# for "no worker right now" missed the ones that had not started yet (most likely what
# the 10 M run of f9db5e2 met: timeline p90 194 ms for 1 ms of CPU per timeline,
# send-to-ACK stalls of 500 ms while its spool syncs took 10 ms at most). So VACUUM
# (ANALYZE) the database here, unthrottled: it leaves autovacuum nothing to do, marks
# the pages all-visible (index-only scans), as autovacuum does for a database in
# service, and a worker already running is cancelled by it (PostgreSQL cancels an
# autovacuum that blocks a lock request). Then CHECKPOINT.
quiesce() {
    local t0
    t0=$(now)
    q "$1" "VACUUM (ANALYZE)" >/dev/null || die "VACUUM (ANALYZE) of $1 failed"
    say "quiesce: VACUUM (ANALYZE) of $1 in $(seconds_since "$t0") s"
    checkpoint "$1"
}

# The database in memory before the HTTP stage, as on a server sized the way
# docs/operations.md says (shared_buffers a quarter of the RAM, the page cache for the
# rest): every table, then every index, read through shared_buffers (pg_prewarm, in
# PostgreSQL's contrib). Without it the stage measured whatever the bulk load happened
# to leave cached: at 10 M events the same hub and API answered the status lookup with
# a p99 of 1.4 ms in one run and 250 ms in the next. DB [OIDS]: the relations OIDS (a
# comma-separated list: those the API reads, see blocks_read) are read last, so that
# when the database is larger than shared_buffers they are the ones that stay there, as
# on a server in service, where the API's reads keep its pages hot. Sets PREWARM_JSON.
prewarm() {
    local t0 pages secs last=${2:-} last_pages
    t0=$(now)
    q "$1" "CREATE EXTENSION IF NOT EXISTS pg_prewarm" >/dev/null || die "pg_prewarm is not available"
    pages=$(q "$1" "SELECT sum(x.n)::bigint FROM (SELECT pg_prewarm(c.oid::regclass, 'buffer') AS n
                    FROM pg_class c WHERE c.relkind IN ('r', 'i')
                    AND c.relnamespace = 'public'::regnamespace
                    ORDER BY c.oid = ANY ('{$last}'::oid[]), c.relkind DESC, c.relname) x") \
        || die "pg_prewarm failed"
    secs=$(seconds_since "$t0")
    last_pages=$(q "$1" "SELECT coalesce(sum(pg_relation_size(c.oid) / 8192), 0)::bigint FROM pg_class c
                         WHERE c.oid = ANY ('{$last}'::oid[])") || die "cannot size the API's relations"
    PREWARM_JSON=$(printf '{"pages": %d, "seconds": %s, "last_pages": %d, "last": %s}' "${pages:-0}" "$secs" \
        "$last_pages" "$(q "$1" "SELECT coalesce(json_agg(c.relname ORDER BY c.relname), '[]')
                               FROM pg_class c WHERE c.oid = ANY ('{$last}'::oid[])")")
    say "prewarm: ${pages:-0} pages of $1 read through shared_buffers in $secs s, the API's $last_pages last"
}

# DB: each table's and index's blocks read so far (from shared_buffers or not), "oid|count"
# per line: blocks_read before and after a load tells which relations the load reads.
blocks_read() {
    q "$1" "SELECT relid, heap_blks_read + heap_blks_hit FROM pg_statio_user_tables
            UNION ALL SELECT indexrelid, idx_blks_read + idx_blks_hit FROM pg_statio_user_indexes"
}

vmhwm() {
    local key value _
    while read -r key value _; do
        [ "$key" = VmHWM: ] && { echo "$value"; return 0; }
    done 2>/dev/null <"/proc/$1/status"
    echo 0
}

cpu_ticks() {
    local pid line sum=0 f
    for pid in "$@"; do
        read -r line 2>/dev/null <"/proc/$pid/stat" || continue
        read -ra f <<<"${line##*) }"            # fields from 3 (state) on: utime is 14
        sum=$((sum + f[11] + f[12]))
    done
    echo "$sum"
}

pg_pids() {
    local pm stat line f
    read -r pm 2>/dev/null <"$PG_DATA/postmaster.pid" || return 0
    echo "$pm"
    for stat in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$stat" || continue
        read -ra f <<<"${line##*) }"
        [ "${f[1]}" = "$pm" ] && { line=${stat#/proc/}; echo "${line%/stat}"; }
    done
}

pg_cpu_ticks() {
    local pids
    mapfile -t pids < <(pg_pids)
    cpu_ticks "${pids[@]}"
}

busy_ticks() {
    local user nice system irq softirq steal _
    read -r _ user nice system _ _ irq softirq steal _ </proc/stat      # cpu user nice system idle iowait ...
    echo $((user + nice + system + irq + softirq + steal))
}

# Writes "pid kB ticks" lines to OUT: per pid the highest VmHWM and CPU ticks seen
# (both only grow, so the last sample before exit is within 0.2 s of the truth).
rss_watch() {
    local out=$1; shift
    local -A peak=() ticks=()
    local pid v alive
    while :; do
        alive=0
        for pid in "$@"; do
            [ -e "/proc/$pid/status" ] || continue
            alive=1
            v=$(vmhwm "$pid")
            [ "$v" -gt "${peak[$pid]:-0}" ] && peak[$pid]=$v
            v=$(cpu_ticks "$pid")
            [ "$v" -gt "${ticks[$pid]:-0}" ] && ticks[$pid]=$v
        done
        { for pid in "$@"; do echo "$pid ${peak[$pid]:-0} ${ticks[$pid]:-0}"; done; } >"$out.tmp" \
            && mv "$out.tmp" "$out"
        [ "$alive" = 1 ] || return 0
        sleep 0.2
    done
}

# The Makefile's CFLAGS and LDLIBS, read from make itself (no copy to go stale).
make_var() {
    # shellcheck disable=SC2016          # $($*) is for make
    printf 'bench-print-%%:\n\t@echo $($*)\n' | make -s --no-print-directory -f Makefile -f - "bench-print-$1"
}

build_tool() {
    local name=$1 cflags ldlibs
    if ! cflags=$(make_var TEST_CFLAGS) || ! ldlibs=$(make_var LDLIBS); then
        die "cannot read CFLAGS/LDLIBS from the Makefile"
    fi
    # shellcheck disable=SC2086   # flag lists
    cc $cflags -o "$T/$name" "tests/bench/$name.c" $(find "$BUILD/adapters" -name "*.o" ! -name civibus_adapter.o) "$BUILD/libcivibus.a" $ldlibs \
        2>"$T/$name.build.log" || { cat "$T/$name.build.log" >&2; die "cannot compile tests/bench/$name.c"; }
}

STARTED=()
start_bg() {
    local var=$1; shift
    "$@" &
    printf -v "$var" '%s' "$!"
    STARTED+=("$!")
}

forget() {
    local pid keep=() gone
    for pid in "${STARTED[@]}"; do
        for gone in "$@"; do [ "$pid" = "$gone" ] && continue 2; done
        keep+=("$pid")
    done
    STARTED=("${keep[@]}")
}

run_fg() {
    local pid rc
    start_bg pid "$@"
    wait "$pid"
    rc=$?
    forget "$pid"
    return "$rc"
}

# Stops what we started, by pid: TERM, then KILL after 5 s.
stop_started() {
    local pid i
    [ ${#STARTED[@]} -gt 0 ] || return 0
    for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for i in $(seq 1 50); do
        local left=0
        for pid in "${STARTED[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
        [ "$left" = 0 ] && break
        sleep 0.1
    done
    for pid in "${STARTED[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    STARTED=()
}
