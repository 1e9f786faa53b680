#!/usr/bin/env bash
# pgctl.sh — a throwaway PostgreSQL cluster for development and tests.
#
#   deploy/pgctl.sh start DIR          init (first time) + start, print the env lines
#   deploy/pgctl.sh stop DIR [--purge] fast shutdown; --purge also deletes the cluster
#   deploy/pgctl.sh kill DIR           immediate shutdown (a crash, for tests)
#   deploy/pgctl.sh restart DIR        stop + start
#   deploy/pgctl.sh env DIR            print `export PGHOST=... PGPORT=...` lines to eval
#   deploy/pgctl.sh status DIR         exit 0 when running, 3 when not
#
# Layout: DIR/cluster/{data,run,log,port}. The server listens on a Unix socket
# only (listen_addresses=''), in DIR/cluster/run, so several clusters may use
# the same port number. Durability settings stay at their safe values (fsync,
# synchronous_commit, full_page_writes on); the rest is sized for a small
# machine. Authentication is `trust` for the socket: the cluster folder is 0700
# and the socket is the only way in.
#
# PostgreSQL refuses to run as root. As root the server runs as the `postgres`
# user; when DIR is not reachable by `postgres` (a clone under /root, say),
# the cluster lives in a fresh /tmp/civibus-pg.XXXXXX owned by postgres and
# DIR/cluster is a symlink to it. `stop --purge` removes it.
#
# Roles: each start applies deploy/sql/roles.sql (civibus_owner, civibus_hub, civibus_api,
# civibus_admin, civibus_notify: LOGIN roles, trusted on the socket like the superuser;
# existing ones are left alone) and the database civibus is created owned by
# civibus_owner, as a city's DBA would (docs/operations.md, "Database roles").
# The PG* lines printed name the superuser (civibus), for people and tests.
#
# Server log: DIR/cluster/log/server.log. ERROR messages are not logged
# (log_min_messages=log): they may quote rejected values, i.e. personal data.
set -euo pipefail

PORT="${CIVIBUS_PGPORT:-5433}"
DBNAME=civibus
SUPERUSER=civibus
ROLES_SQL="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sql/roles.sql"

die() { echo "pgctl: $*" >&2; exit 1; }

bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
    done
    die "no PostgreSQL server binaries (pg_ctl) under /usr/lib/postgresql/*/bin"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a server-side command as the cluster owner, from / (the caller's
# working directory may be unreachable for postgres).
as_owner() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Sets DIR (absolute), CL (cluster folder, resolved; empty if none), DATA,
# RUN, LOG, PORT. `paths DIR create` makes DIR first.
paths() {
    local mode="${2:-}" abs
    [ -n "$DIR" ] || die "usage: pgctl.sh start|stop|kill|restart|env|status DIR"
    if [ "$mode" = create ]; then
        mkdir -p "$DIR" || die "$DIR: cannot create"
    fi
    abs="$(cd "$DIR" 2>/dev/null && pwd)" && DIR="$abs"    # a missing DIR: nothing runs there
    CL=""
    [ -d "$DIR/cluster" ] && CL="$(readlink -f "$DIR/cluster")"
    DATA="$CL/data"
    RUN="$CL/run"
    LOG="$CL/log/server.log"
    [ -f "$CL/port" ] && PORT="$(cat "$CL/port")"
    return 0
}

# Creates the cluster folder (plain or /tmp + symlink) and runs initdb.
create() {
    local bin="$1"
    if [ -L "$DIR/cluster" ] && [ ! -d "$DIR/cluster" ]; then
        rm -f "$DIR/cluster"          # dangling link: its /tmp folder is gone
    fi
    if [ ! -e "$DIR/cluster" ]; then
        if is_root; then
            id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user (install postgresql)"
            if runuser -u postgres -- test -x "$DIR" && runuser -u postgres -- test -r "$DIR"; then
                mkdir -m 0700 "$DIR/cluster"
                chown postgres: "$DIR/cluster"
            else
                local tmp
                tmp="$(mktemp -d /tmp/civibus-pg.XXXXXX)"
                chmod 0700 "$tmp"
                chown postgres: "$tmp"
                ln -s "$tmp" "$DIR/cluster"
            fi
        else
            mkdir -m 0700 "$DIR/cluster"
        fi
    fi
    CL="$(readlink -f "$DIR/cluster")"
    DATA="$CL/data"; RUN="$CL/run"; LOG="$CL/log/server.log"
    [ -f "$DATA/PG_VERSION" ] && return 0

    local sock="$RUN/.s.PGSQL.$PORT"
    [ "${#sock}" -lt 100 ] || die "socket path too long (${#sock} > 99 bytes): $sock; use a shorter DIR"
    as_owner mkdir -p -m 0700 "$RUN" "$CL/log"
    echo "$PORT" | as_owner tee "$CL/port" >/dev/null
    echo "pgctl: initdb $DATA" >&2
    if ! as_owner "$bin/initdb" -D "$DATA" -U "$SUPERUSER" -E UTF8 --no-locale \
            --auth-local=trust --auth-host=reject >"$CL/log/initdb.log" 2>&1; then
        tail -n 20 "$CL/log/initdb.log" >&2
        die "initdb failed (log: $CL/log/initdb.log)"
    fi
    as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<EOF

# --- civibus throwaway cluster (deploy/pgctl.sh) ---
listen_addresses = ''
port = $PORT
unix_socket_directories = '$RUN'
unix_socket_permissions = 0700
max_connections = 40
# durability: never weakened
fsync = on
synchronous_commit = on
full_page_writes = on
wal_sync_method = fdatasync
# small machine sizing
shared_buffers = ${CIVIBUS_PG_SHARED_BUFFERS:-256MB}
work_mem = 16MB
maintenance_work_mem = 128MB
effective_cache_size = 1GB
wal_level = minimal
max_wal_senders = 0
wal_buffers = 16MB
# full-page images compressed with lz4, not pglz (what 'on' means): pglz runs in the
# writing backend, on the hub's critical path (docs/performance.md: 8-20 % less
# PostgreSQL CPU per ingested event)
wal_compression = lz4
# the WAL writer writes and syncs the WAL every 10 ms (default 200 ms), so that a
# batch's COMMIT has little left to write itself (docs/performance.md: 2.7 -> 1.7 ms
# per 1,000-event batch)
wal_writer_delay = 10ms
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9
max_wal_size = 2GB
min_wal_size = 256MB
random_page_cost = 1.1
jit = off
timezone = 'UTC'
log_timezone = 'UTC'
# logging: no ERROR lines, they can quote rejected (personal) values
log_min_messages = log
log_min_error_statement = panic
log_line_prefix = '%m [%p] '
EOF
}

running() {
    [ -n "${CL:-}" ] && [ -f "$DATA/PG_VERSION" ] || return 1
    as_owner "$1/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

print_env() {
    echo "export PGHOST=$RUN"
    echo "export PGPORT=$PORT"
    echo "export PGUSER=$SUPERUSER"
    echo "export PGDATABASE=$DBNAME"
}

cmd_start() {
    local bin; bin="$(bindir)"
    if running "$bin"; then print_env; return 0; fi
    create "$bin"
    if ! as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null 2>&1; then
        echo "pgctl: server did not start; last lines of $LOG:" >&2
        tail -n 30 "$LOG" >&2 || true
        exit 1
    fi
    local i
    for i in $(seq 1 100); do
        "$bin/pg_isready" -q -h "$RUN" -p "$PORT" -d postgres -U "$SUPERUSER" && break
        [ "$i" -eq 100 ] && { tail -n 30 "$LOG" >&2; die "server not ready after 20 s"; }
        sleep 0.2
    done
    # the roles of deploy/sql/roles.sql (idempotent), then the database, owned by civibus_owner
    "$bin/psql" -XqA -v ON_ERROR_STOP=1 -h "$RUN" -p "$PORT" -U "$SUPERUSER" -d postgres \
        -f "$ROLES_SQL" >/dev/null || die "$ROLES_SQL failed"
    if [ "$("$bin/psql" -XtAq -h "$RUN" -p "$PORT" -U "$SUPERUSER" -d postgres \
            -c "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")" != 1 ]; then
        "$bin/createdb" -h "$RUN" -p "$PORT" -U "$SUPERUSER" -O civibus_owner "$DBNAME" \
            || die "createdb $DBNAME failed"
    fi
    print_env
}

cmd_stop() {
    local mode="$1" purge="$2" bin; bin="$(bindir)"
    if running "$bin"; then
        as_owner "$bin/pg_ctl" -D "$DATA" -m "$mode" -w -t 60 stop >/dev/null \
            || die "pg_ctl stop -m $mode failed (log: $LOG)"
    else
        echo "pgctl: not running" >&2
    fi
    if [ "$purge" = 1 ] && [ -e "$DIR/cluster" -o -L "$DIR/cluster" ]; then
        if [ -L "$DIR/cluster" ]; then
            case "$CL" in /tmp/civibus-pg.*) rm -rf -- "$CL" ;; esac
            rm -f "$DIR/cluster"
        else
            rm -rf -- "$DIR/cluster"
        fi
        echo "pgctl: cluster removed" >&2
    fi
}

main() {
    local cmd="${1:-}" purge=0 a
    shift || true
    DIR=""
    for a in "$@"; do
        case "$a" in
            --purge) purge=1 ;;
            -*) die "unknown option $a" ;;
            *) [ -z "$DIR" ] || die "one DIR only"; DIR="$a" ;;
        esac
    done
    case "$cmd" in
        start)   paths "$DIR" create; cmd_start ;;
        stop)    paths "$DIR"; cmd_stop fast "$purge" ;;
        kill)    paths "$DIR"; cmd_stop immediate 0 ;;
        restart) paths "$DIR" create; cmd_stop fast 0; cmd_start ;;
        env)     paths "$DIR"; [ -f "$DATA/PG_VERSION" ] || die "no cluster in $DIR (run start first)"; print_env ;;
        status)  paths "$DIR"
                 if running "$(bindir)"; then echo "running ($RUN, port $PORT)"; exit 0; fi
                 echo "not running"; exit 3 ;;
        *) echo "usage: pgctl.sh start|stop [--purge]|kill|restart|env|status DIR" >&2; exit 2 ;;
    esac
}

main "$@"
