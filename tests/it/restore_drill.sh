#!/usr/bin/env bash
# Restore drill (docs/backup.md): a PostgreSQL cluster of its own
# with WAL archiving (socket only, run as postgres, stopped on every exit path), the hub and
# one adapter streaming records; a base backup taken mid-stream (pg_basebackup), the stream
# goes on, the WAL is archived; then the cluster is destroyed (kill -9, its data removed)
# and restored from the base backup + the archive to a point in the MIDDLE of the stream,
# so events the adapter saw acknowledged are really lost. The hub starts on the restored
# database and `civibus-adapter resend --since <the backup's start>` sends again what the
# spool kept. The timeline must equal a control run's without any crash: the same
# (source, event id, content hash) set, every event once, no dead letter, the same request
# projections.
. "$(dirname "$0")/lib.sh"
N=${RESTORE_EVENTS:-6000}          # records per version; two versions of each record
RATE=${RESTORE_RATE:-800}
it_setup restore_drill
{ gen_distinct "$N" 1 1; gen_distinct "$N" 1 2; } >"$W/records.jsonl"
TOTAL=$((2 * N))

# --- the control run: the runner's cluster, no crash -----------------------------------
sed "s|spool_dir: spool/|spool_dir: spool-control/|" "$W/adapter.yaml" >"$W/adapter-control.yaml"
hub_start
REPLAY_CONFIG=$W/adapter-control.yaml replay demo "$W/records.jsonl" --timeout 300
[ "$REPLAY_RC" -eq 0 ] || fail "control replay exit $REPLAY_RC"
hub_stop_within 60
EV_SQL="select source, event_id, content_hash from events order by 1, 2"
RQ_SQL="select rs.source, rs.source_record_id, r.service, r.category, r.channel, r.status,
               r.status_occurred_at, r.due_at, r.flagged
          from request_sources rs join requests r on r.id = rs.request_id order by 1, 2"
q "$EV_SQL" >"$W/control.events"
q "$RQ_SQL" >"$W/control.requests"
[ "$(wc -l <"$W/control.events")" = "$TOTAL" ] || fail "control run: $(wc -l <"$W/control.events") events, expected $TOTAL"
ok "control run: $TOTAL events, $(wc -l <"$W/control.requests") requests"

# --- the drill cluster: WAL archiving into its own folder ------------------------------
PGD=$W/pgd; ARCH=$PGD/archive; BASE=$PGD/base
mkdir -p "$PGD"; chmod 755 "$PGD"
bash "$ROOT/deploy/pgctl.sh" start "$PGD" >/dev/null || fail "cannot start the drill cluster"
DATA=$(readlink -f "$PGD/cluster")/data; SOCK=$(readlink -f "$PGD/cluster")/run
PGPORT_D=$(cat "$(readlink -f "$PGD/cluster")/port")
as_pg() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else (cd / && "$@"); fi; }
pgbin=$(pg_config --bindir 2>/dev/null); [ -x "$pgbin/pg_ctl" ] || pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
drill_pids() { [ -f "$DATA/postmaster.pid" ] || return 0; local pm; pm=$(head -1 "$DATA/postmaster.pid")
               echo "$pm"; awk -v p="$pm" '$4 == p { print $1 }' /proc/[0-9]*/stat 2>/dev/null; }
drill_stop() {   # every exit path: stop it, or kill what is left of it, then remove it
    as_pg "$pgbin/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >/dev/null 2>&1
    local p; for p in $(drill_pids); do kill -9 "$p" 2>/dev/null; done
    bash "$ROOT/deploy/pgctl.sh" stop --purge "$PGD" >/dev/null 2>&1
}
at_exit drill_stop
at_exit hub_stop
mkdir -m 0700 "$ARCH" "$BASE" || fail "cannot create the archive folder"
[ "$(id -u)" -eq 0 ] && chown postgres: "$ARCH" "$BASE"
as_pg "$pgbin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || fail "cannot stop the drill cluster"
# the archive_command of docs/operations.md: never overwrite, the copy synced before it is named
as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
# --- restore drill (tests/it/restore_drill.sh) ---
wal_level = replica
max_wal_senders = 4
archive_mode = on
archive_command = 'f=$ARCH/%f; if [ -f \$f ]; then cmp -s %p \$f; else cp %p \$f.tmp && sync \$f.tmp && mv \$f.tmp \$f && sync $ARCH; fi'
EOF
bash "$ROOT/deploy/pgctl.sh" start "$PGD" >/dev/null || fail "cannot restart the drill cluster with archiving"
qd() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PGPORT_D" -U civibus -d civibus -c "$1"; }
[ "$(qd "show archive_mode")" = on ] || fail "archive_mode is not on"
sed -i "s|conninfo: .*|conninfo: \"host=$SOCK port=$PGPORT_D user=civibus dbname=civibus\"|" "$W/hub.yaml"

count() { qd "select count(*) from events" 2>/dev/null || echo 0; }
wait_count() {
    local i
    for i in $(seq 1 1200); do
        [ "$(count)" -ge "$1" ] && return 0
        kill -0 "$RPID" 2>/dev/null || fail "the stream ended before $1 events (at $(count))"
        sleep 0.1
    done
    fail "stalled below $1 events (at $(count))"
}

# --- the stream, a base backup in the middle -------------------------------------------
hub_start
"$ADAPTER" replay --config "$W/adapter.yaml" --source demo --file "$W/records.jsonl" --rate "$RATE" \
    --timeout 600 >"$W/replay.out" 2>>"$W/replay.log" &
RPID=$!
wait_count $((TOTAL / 5))
# a notifier's state at the backup's point: its cursor, and a mail planned, not yet sent
qd "INSERT INTO notify_cursor (id, last_event_id) SELECT 1, max(id) FROM events" >/dev/null
PLANNED=$(qd "INSERT INTO notifications (event_id, request_id, recipient, channel, template, address)
              SELECT id, request_id, 'citizen', 'email', 'accuse_reception', 'citoyen@civibus.test'
                FROM events ORDER BY id DESC LIMIT 1 RETURNING id" | head -1)
as_pg "$pgbin/pg_basebackup" -h "$SOCK" -p "$PGPORT_D" -U civibus -D "$BASE/data" -X stream -c fast \
    >"$W/basebackup.log" 2>&1 || fail "pg_basebackup failed: $(tail -3 "$W/basebackup.log")"
B=$(sed -n 's/^START TIME: //p' "$BASE/data/backup_label")
[ -n "$B" ] || fail "no START TIME in backup_label"
ok "base backup taken at $(count) events, START TIME: $B"
wait_count $((TOTAL / 2))
AT_T=$(count)                       # committed before T: the restore keeps them
T=$(qd "select clock_timestamp()")
sleep 0.5
wait_count $((TOTAL * 3 / 4))
WAL=$(qd "select pg_walfile_name(pg_switch_wal())")
for i in $(seq 1 300); do
    [ "$(qd "select last_archived_wal >= '$WAL' from pg_stat_archiver")" = t ] && break
    [ "$i" = 300 ] && fail "WAL $WAL not archived after 30 s"
    sleep 0.1
done
wait "$RPID"; rc=$?
[ "$rc" -eq 0 ] || fail "replay exit $rc: $(tail -n 5 "$W/replay.log")"
grep -qx "sent $TOTAL acked $TOTAL nacked 0" "$W/replay.out" || fail "replay said: $(cat "$W/replay.out")"
[ "$(count)" = "$TOTAL" ] || fail "before the crash: $(count) events"
ok "the adapter saw all $TOTAL events acknowledged; recovery target $T (at $AT_T events)"

# --- destroy the cluster ---------------------------------------------------------------
hub_kill9
pids=$(drill_pids)
[ "$(echo $pids | wc -w)" -gt 3 ] || fail "could not list PostgreSQL's processes ($pids)"
for p in $pids; do kill -9 "$p" 2>/dev/null; done
for i in $(seq 1 100); do
    alive=0; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
done
[ $alive = 0 ] || fail "PostgreSQL survived kill -9"
rm -rf "$DATA"
ok "PostgreSQL killed with SIGKILL and its data folder removed"

# --- restore: base backup + archive, to the middle -------------------------------------
as_pg cp -a "$BASE/data" "$DATA" || fail "cannot copy the base backup"
as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
restore_command = 'cp $ARCH/%f %p'
recovery_target_time = '$T'
recovery_target_action = 'promote'
EOF
as_pg touch "$DATA/recovery.signal"
bash "$ROOT/deploy/pgctl.sh" start "$PGD" >/dev/null || fail "the restored cluster did not start"
for i in $(seq 1 600); do
    [ "$(qd "select pg_is_in_recovery()" 2>/dev/null)" = f ] && break
    [ "$i" = 600 ] && fail "the restored cluster is still recovering after 60 s"
    sleep 0.1
done
RESTORED=$(count)
[ "$RESTORED" -ge "$AT_T" ] || fail "restored $RESTORED events, fewer than the $AT_T committed before the target"
[ "$RESTORED" -lt "$TOTAL" ] || fail "the restore lost nothing ($RESTORED events): the drill proves nothing"
[ -f "$DATA/recovery.signal" ] && fail "recovery.signal still there after promotion"
ok "restored to $T: $RESTORED events, $((TOTAL - RESTORED)) acknowledged events lost"

# step 6 of the drill: ids handed out after P are never given again
MAXEV=$(qd "select max(id) from events")
qd "SELECT setval(pg_get_serial_sequence('commands', 'id'), (SELECT COALESCE(max(id), 0) FROM commands) + 1000000)" >/dev/null \
    && qd "SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT COALESCE(max(id), 0) FROM events) + 1000000)" >/dev/null \
    || fail "the identities could not be moved"

# --- the hub on the restored database, the adapter resends -----------------------------
hub_start
# a first resend killed with SIGKILL in the middle: the operator simply runs it again
"$ADAPTER" resend --config "$W/adapter.yaml" --source demo --since "$B" --timeout 300 \
    >/dev/null 2>>"$W/resend.log" &
KPID=$!
for i in $(seq 1 200); do
    [ "$(count)" -ge $((RESTORED + (TOTAL - RESTORED) / 3)) ] && break
    kill -0 "$KPID" 2>/dev/null || break
    sleep 0.02
done
kill -9 "$KPID" 2>/dev/null; wait "$KPID" 2>/dev/null
prev=-1                             # what the hub held of the killed run commits first
for i in $(seq 1 50); do c=$(count); [ "$c" = "$prev" ] && break; prev=$c; sleep 0.3; done
ok "a first resend killed with SIGKILL at $(count) events"
count >"$W/count.before2"
"$ADAPTER" resend --config "$W/adapter.yaml" --source demo --since "$B" --timeout 300 \
    >"$W/resend.out" 2>>"$W/resend.log" || fail "resend exit $?: $(tail -n 5 "$W/resend.log")"
read -r _ resent _ acked _ dups nacked_w nacked <"$W/resend.out"
dups=${dups%)}
[ "$nacked_w" = nacked ] || fail "resend said: $(cat "$W/resend.out")"
[ "$nacked" = 0 ] || fail "resend: $nacked records NACKed"
BEFORE2=$(cat "$W/count.before2" 2>/dev/null)
[ $((acked - dups)) = $((TOTAL - BEFORE2)) ] || fail "resend stored $((acked - dups)), $((TOTAL - BEFORE2)) were missing: $(cat "$W/resend.out")"
[ "$resent" -lt "$TOTAL" ] || fail "resend sent the whole spool ($resent): --since selected nothing"
[ "$resent" -ge $((TOTAL - RESTORED)) ] || fail "resend sent $resent records, fewer than the $((TOTAL - RESTORED)) lost"
ok "resend since $B: $(cat "$W/resend.out")"

# --- the timeline equals the control run's ---------------------------------------------
qd "$EV_SQL" >"$W/drill.events"
qd "$RQ_SQL" >"$W/drill.requests"
diff -q "$W/control.events" "$W/drill.events" >/dev/null \
    || fail "events differ from the control run: $(diff "$W/control.events" "$W/drill.events" | head -5)"
[ "$(qd "select count(*) from events")" = "$TOTAL" ] || fail "events: $(count), expected $TOTAL"
[ "$(qd "select count(distinct (source, event_id)) from events")" = "$TOTAL" ] || fail "an event is stored twice"
[ "$(qd "select string_agg(source || '=' || n, ',') from (select source, count(*) n from events group by 1 order by 1) s")" = \
  "$(q "select string_agg(source || '=' || n, ',') from (select source, count(*) n from events group by 1 order by 1) s")" ] \
    || fail "counts by source differ"
[ "$(qd "select count(*) from dead_letters")" = 0 ] || fail "dead letters after the resend: $(qd "select string_agg(distinct reason, ',') from dead_letters")"
diff -q "$W/control.requests" "$W/drill.requests" >/dev/null \
    || fail "request projections differ: $(diff "$W/control.requests" "$W/drill.requests" | head -5)"
[ "$(qd "select min(id) > $MAXEV + 1000000 from events where id > $MAXEV")" = t ] || fail "a resent event took an id below the moved identity"
ok "after restore + resend: the control run's $TOTAL events exactly once, the same $(wc -l <"$W/drill.requests") request projections, no dead letter"

# the notifier after the restore: nothing it may have sent since the backup's point again
{
    printf 'postgres:\n  conninfo: "host=%s port=%s user=civibus dbname=civibus"\n' "$SOCK" "$PGPORT_D"
    printf 'public_url: https://demarches.civibus.test/\ncity: "Mairie de Civibus"\nstart_from: end\n'
    printf 'mail:\n  smtp_url: smtp://127.0.0.1:9\n  from: ne-pas-repondre@civibus.test\n'
    printf '  intake: mairie@civibus.test\n  reply_secret_file: reply_secret\n  templates: %s\n' "$ROOT/deploy/notify/templates"
} >"$W/notify.yaml"
head -c 48 /dev/urandom | base64 >"$W/reply_secret"; chmod 600 "$W/reply_secret"
[ "$(qd "select state from notifications where id = $PLANNED")" = planned ] || fail "the planned mail is not in the restored ledger"
[ "$(qd "select last_event_id < (select max(id) from events) from notify_cursor")" = t ] || fail "the restored cursor is not behind"
"$ROOT/$BIN/civibus-notify" --config "$W/notify.yaml" --after-restore >"$W/notify.out" 2>"$W/notify.log" \
    || fail "civibus-notify --after-restore: $(tail -3 "$W/notify.log")"
[ "$(qd "select state || ' ' || last_error from notifications where id = $PLANNED")" = "unknown restored" ] \
    || fail "the planned mail was not recorded unknown: $(qd "select state, last_error from notifications where id = $PLANNED")"
[ "$(qd "select last_event_id = (select max(id) from events) from notify_cursor")" = t ] || fail "the cursor did not move to the last event"
ok "notifier: $(cat "$W/notify.out")"

# a second resend (an operator's double run, or one cut by kill -9) changes nothing
"$ADAPTER" resend --config "$W/adapter.yaml" --source demo --since "$B" --timeout 300 \
    >"$W/resend2.out" 2>>"$W/resend.log" || fail "second resend exit $?"
grep -q "acked $resent (duplicates $resent) nacked 0" "$W/resend2.out" || fail "second resend said: $(cat "$W/resend2.out")"
qd "$EV_SQL" | diff -q - "$W/control.events" >/dev/null || fail "the second resend changed the timeline"
ok "a second resend: $(cat "$W/resend2.out"), all duplicates"
hub_stop_within 60
