#!/usr/bin/env bash
# Upgrade without losing anything (docs/backup.md "Upgrades", docs/operations.md "Upgrade"):
# version N is an older commit of this repository, the one just before the newest
# committed migration was added, so this tree (N+1) has at least one migration to apply.
# N's hub is built from `git archive` of that commit in a folder of its own (only the
# hub: `make -j2 bin/civibus-hub`, a few seconds). The N hub stores a first data set, then
# an adapter streams a second one; the N hub is stopped (SIGTERM) while the adapter keeps
# spooling; the N+1 hub starts on the same database, applies the new migrations, and the
# adapter reconnects and delivers. Every event is there exactly once, nothing is
# dead-lettered, and schema_migrations holds every version of this tree.
. "$(dirname "$0")/lib.sh"
N=${UPGRADE_EVENTS:-4000}
git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 || fail "upgrade.sh needs the repository's git history ($ROOT is not a git tree)"
it_setup upgrade

# --- version N: the commit before the newest committed numbered migration -----------
OLD=""
for m in $(cd "$ROOT" && ls schemas/sql/[0-9]*.sql | sort -r); do
    added=$(git -C "$ROOT" log --diff-filter=A --format=%H -- "$m" | tail -1)
    [ -n "$added" ] || continue                    # not committed yet: look further back
    OLD=$(git -C "$ROOT" rev-parse "$added^") && NEWEST=$m && break
done
[ -n "$OLD" ] || fail "no committed migration to upgrade across"
OLDSRC=$W/version-n
mkdir -p "$OLDSRC"
git -C "$ROOT" archive "$OLD" | tar -x -C "$OLDSRC" || fail "git archive $OLD failed"
[ ! -f "$OLDSRC/$NEWEST" ] || fail "version N already has $NEWEST"
start=$(date +%s)
(cd "$OLDSRC" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j2 SAN= bin/civibus-hub) >"$W/build-n.log" 2>&1 || fail "building version N's hub: $(tail -5 "$W/build-n.log")"
ok "version N = ${OLD:0:12} (before $(basename "$NEWEST")), its hub built in $(( $(date +%s) - start )) s"

NEW_HUB=$HUB
MAPPING=$OLDSRC/deploy/mappings/demo.yaml             # the city's mapping, written for N
sed -i "s|mapping: .*|mapping: $MAPPING|" "$W/hub.yaml"
cp "$W/hub.yaml" "$W/hub-new.yaml"
sed -i "s|migrations: .*|migrations: $OLDSRC/schemas/sql|" "$W/hub.yaml"

# --- N: data, then a stream -----------------------------------------------------------
HUB=$OLDSRC/bin/civibus-hub
hub_start
gen_distinct "$N" 1 1 >"$W/data.jsonl"
replay demo "$W/data.jsonl" --timeout 300
[ "$REPLAY_RC" -eq 0 ] || fail "first data set: replay exit $REPLAY_RC"
old_max=$(q "select max(version) from schema_migrations")
new_max=$(cd "$ROOT" && ls schemas/sql/[0-9]*.sql | sed 's|.*/0*\([0-9]*\)_.*|\1|' | sort -n | tail -1)
[ "$old_max" -lt "$new_max" ] || fail "version N's schema is at $old_max, this tree's at $new_max: nothing to upgrade"
ok "version N stored $N events, schema at version $old_max"

gen_distinct "$N" 1 2 >"$W/stream.jsonl"
"$ADAPTER" replay --config "$W/adapter.yaml" --source demo --file "$W/stream.jsonl" --rate 1000 \
    --timeout 600 >"$W/stream.out" 2>>"$W/replay.log" &
RPID=$!
for i in $(seq 1 300); do
    [ "$(q "select count(*) from events")" -ge $((N + N / 4)) ] && break
    sleep 0.05
done
hub_stop_within 60 || fail "version N's hub did not stop cleanly on SIGTERM"
at_stop=$(q "select count(*) from events")
[ "$at_stop" -lt $((2 * N)) ] || fail "the stream ended before the N hub was stopped"
sleep 1.5
kill -0 "$RPID" 2>/dev/null || fail "the adapter gave up while the hub was away"
[ "$(q "select count(*) from events")" = "$at_stop" ] || fail "events were stored with no hub running"
ok "version N's hub stopped at $at_stop events; the adapter keeps spooling"

# --- N+1: this tree's hub on the same database ----------------------------------------
HUB=$NEW_HUB
cp "$W/hub-new.yaml" "$W/hub.yaml"
hub_start
wait "$RPID"; rc=$?
[ "$rc" -eq 0 ] || fail "stream replay exit $rc: $(tail -n 5 "$W/replay.log")"
grep -qx "sent $N acked $N nacked 0" "$W/stream.out" || fail "the stream's replay said: $(cat "$W/stream.out")"
[ "$(q "select count(*) from events")" = $((2 * N)) ] || fail "events: $(q "select count(*) from events"), expected $((2 * N))"
[ "$(q "select count(distinct (source, event_id)) from events")" = $((2 * N)) ] || fail "an event is stored twice"
[ "$(q "select count(*) from dead_letters")" = 0 ] || fail "dead letters: $(q "select string_agg(distinct reason, ',') from dead_letters")"
want=$(cd "$ROOT" && ls schemas/sql/[0-9]*.sql | sed 's|.*/0*\([0-9]*\)_.*|\1|' | sort -n | tr '\n' ' ')
have=$(q "select string_agg(version::text, ' ' order by version) from schema_migrations")
[ "$have " = "$want" ] || fail "schema_migrations holds '$have', this tree has '$want'"
grep -q "applied.*$(basename "$NEWEST")" "$W/hub.log" || fail "the N+1 hub did not log applying $(basename "$NEWEST")"
ok "N+1 applied $(q "select count(*) from schema_migrations where version > $old_max") migration(s) up to $new_max; all $((2 * N)) events once, no dead letter"

# the N hub, started again on the upgraded schema, is no concern of this test (another
# check refuses it); the N+1 hub restarts on its own schema without applying anything
hub_stop_within 60
lines=$(wc -l <"$W/hub.log")
hub_start
tail -n +$((lines + 1)) "$W/hub.log" | grep -q "applied migration" && fail "the restarted N+1 hub applied a migration again"
[ "$(q "select string_agg(version::text, ' ' order by version) from schema_migrations") " = "$want" ] || fail "a restart changed schema_migrations"
ok "the N+1 hub restarts on its schema without applying anything"
hub_stop_within 60
