#!/usr/bin/env bash
# Schema upgrade and repeatable files (hub/store/cv_migrate.c, docs/schema.md "Functions").
#
# 1. A database built by the migrations of commit 78172e6 (every function still in the
#    numbered files), the way the hub of that time recorded them (each file in one
#    transaction, its sha256 in schema_migrations), holding data written through
#    cv_ingest, cv_citizen_merge and a command, is upgraded by today's hub: every row
#    is kept (over the columns it had: later migrations add some), the nine rewritten
#    files get their new checksums (schemas/sql/rewritten, logged once), later numbered
#    migrations run, and its schema (pg_dump --schema-only), its functions
#    (pg_get_functiondef) and triggers equal those of a fresh database. (That the move
#    to functions/ kept every body byte for byte was checked by this test against the
#    old files when it was made; functions have changed since.) The hub then ingests.
# 2. On a copy of schemas/sql: an unchanged repeatable file is not run again, a changed
#    one is (checksum and applied_at recorded), a broken one stops the hub's start-up
#    with its file and PostgreSQL's reason; an applied numbered migration edited without
#    a manifest entry is refused, and so is a database part-way through the old files.
. "$(dirname "$0")/lib.sh"
it_setup schema_upgrade
MIGRATE=$ROOT/$BUILD/tools/migrate
FRESH=${DB}_fresh
PART=${DB}_part
at_exit "psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS $FRESH' -c 'DROP DATABASE IF EXISTS $PART' >/dev/null 2>&1"

qd() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
conninfo() { echo "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$1"; }

# The migrations as they were, applied as that hub did: by version, one transaction
# each, recorded with the file's sha256.
# the migrations as released at 78172e6 (git archive 78172e6 schemas/sql), kept as a
# file: a shallow clone, or a machine without git, still runs this test
mkdir -p "$W/old"
tar -xzf "$ROOT/tests/it/data/schema-78172e6.tar.gz" -C "$W/old" || fail "cannot unpack the migrations of 78172e6"
old_migrate() {  # DB [LAST_VERSION]
    qd "$1" "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,
             name text NOT NULL, checksum text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null
    local f name v
    for f in "$W"/old/schemas/sql/[0-9]*.sql; do
        name=$(basename "$f"); v=$((10#${name%%_*}))
        [ "$v" -le "${2:-999}" ] || break
        { cat "$f"; echo; echo "INSERT INTO schema_migrations (version, name, checksum)
              VALUES ($v, '$name', '$(sha256sum "$f" | cut -c1-64)');"; } \
            | psql -X -q -v ON_ERROR_STOP=1 -1 -d "$1" >/dev/null || fail "old migration $name on $1"
    done
}
functions() {  # DB — every function of schema public with its definition, every trigger
    qd "$1" "SELECT p.oid::regprocedure::text || E'\n' || pg_get_functiondef(p.oid)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public' ORDER BY p.oid::regprocedure::text"
    qd "$1" "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE NOT t.tgisinternal ORDER BY t.tgname"
}
# pg_dump 15.18 frames its output with \restrict KEY / \unrestrict KEY, a random key per
# run: the only lines that differ between two dumps of the same schema.
schema() { pg_dump --schema-only "$1" | grep -v '^\\\(un\)\?restrict '; }
# Every table but the runner's: its row count and a digest of its rows.
# Every table's row count and an md5 of its rows, over the columns the old schema had
# (saved by rows_columns: later migrations may add columns and tables; what was there
# must be kept).
rows_columns() {
    qd "$1" "CREATE SCHEMA upgrade_check;
             CREATE TABLE upgrade_check.cols AS SELECT table_name::text, column_name::text, ordinal_position
             FROM information_schema.columns WHERE table_schema = 'public'" >/dev/null
}
rows() {
    qd "$1" "SELECT string_agg(t.table_name || ' ' || x.v, E'\n' ORDER BY t.table_name)
             FROM information_schema.tables t,
                  LATERAL (SELECT string_agg(quote_ident(c.column_name), ',' ORDER BY c.ordinal_position) AS cols
                           FROM upgrade_check.cols c WHERE c.table_name = t.table_name) k,
                  LATERAL (SELECT (xpath('/row/v/text()', query_to_xml(format(
                      'SELECT count(*) || '' '' || md5(COALESCE(string_agg(r::text, '','' ORDER BY r::text), '''')) AS v FROM (SELECT %s FROM %I) r',
                      k.cols, t.table_name), false, true, '')))[1]::text AS v) x
             WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND k.cols IS NOT NULL
               AND t.table_name NOT LIKE 'schema\_%'"
}

# ---- 1. upgrade of a database of 78172e6 --------------------------------------------

old_migrate "$DB"
[ "$(q "SELECT count(*) FROM schema_migrations")" = 14 ] || fail "the old files did not record 14 versions"

ingest() {  # SOURCE N0 — four events of three records, two citizens (one sharing an e-mail)
    local s=$1 n=$2
    q "SELECT count(*) FROM cv_ingest(ARRAY[0,1,2,3], ARRAY['$s','$s','$s','$s'],
         ARRAY['h$n','h$((n+1))','h$((n+2))','h$((n+3))'], ARRAY['c1','c2','c1',NULL],
         convert_to('ACDEFHJKLMNPRTUVWXY3' || 'CDEFHJKLMN' || 'DEFHJKLMNP', 'UTF8'),
         ARRAY['e$n','e$((n+1))','e$((n+2))','e$((n+3))'], ARRAY['k','k','k','k'],
         ARRAY['r$n','r$((n+1))','r$n','r$((n+3))'], ARRAY[NULL,NULL,NULL,NULL]::text[],
         ARRAY['voirie','voirie','voirie','eau'], ARRAY['nid','nid','nid','fuite'],
         ARRAY['web','web','web','guichet'], ARRAY['received','received','in_progress','resolved'],
         ARRAY['R','R','P','F'], ARRAY['W','W','W','G'],
         ARRAY['2026-01-0${n}T10:00:00Z','2026-01-0${n}T11:00:00Z','2026-01-0${n}T12:00:00Z','2026-01-0${n}T13:00:00Z'],
         ARRAY[NULL,NULL,NULL,NULL]::text[], ARRAY['s','s','s','s'], ARRAY['{}','{}','{}','{}'],
         ARRAY['{\"email\": \"jean@example.fr\", \"given_names\": \"Jean\", \"family_name\": \"Dupont\", \"birth_date\": \"1980-01-01\"}',
               '{\"email\": \"m$s@example.fr\", \"given_names\": \"Marie\", \"family_name\": \"Martin\", \"address\": {\"line1\": \"1 rue Haute\", \"postcode\": \"75001\"}}',
               '{\"email\": \"jean@example.fr\", \"given_names\": \"Jean\", \"family_name\": \"Dupont\", \"birth_date\": \"1980-01-01\"}',
               NULL],
         ARRAY['{\"a\": 1}','{\"a\": 2}','{\"a\": 3}','{\"a\": 4}'])"
}
[ "$(ingest demo 1)" = 4 ] || fail "cv_ingest on the old schema"
[ "$(ingest other 5)" = 4 ] || fail "cv_ingest (second source) on the old schema"
a=$(q "SELECT min(citizen_id) FROM citizen_sources WHERE source_citizen_id = 'c2'")
b=$(q "SELECT max(citizen_id) FROM citizen_sources WHERE source_citizen_id = 'c2'")
[ "$a" != "$b" ] || fail "expected two citizens for c2"
q "SELECT cv_citizen_merge($a, $b, 'agent-1')" >/dev/null || fail "cv_citizen_merge on the old schema"
q "INSERT INTO commands (source, kind, request_id, payload) VALUES ('demo', 'note', 1, '{\"text\": \"x\"}')" \
    >/dev/null || fail "command on the old schema"
[ "$(q "SELECT count(*) FROM events")" -ge 6 ] && [ "$(q "SELECT count(*) FROM citizen_identifiers")" -gt 0 ] \
    && [ "$(q "SELECT count(*) FROM citizen_sources WHERE search_name IS NOT NULL")" -gt 0 ] \
    || fail "the old schema holds less data than expected"
rows_columns "$DB"
rows "$DB" >"$W/rows.before"
ok "database of 78172e6: 14 versions, $(q "SELECT count(*) FROM events") events, $(q "SELECT count(*) FROM citizen_sources") pairs, a merge, a command"

hub_start                                              # today's hub upgrades it
rows "$DB" >"$W/rows.after"
diff "$W/rows.before" "$W/rows.after" >&2 || fail "rows changed by the upgrade"
qd "$DB" "DROP SCHEMA upgrade_check CASCADE" >/dev/null
ok "upgrade kept every row ($(wc -l <"$W/rows.after") tables, counts and contents)"

n=$(grep -c "checksum (listed in rewritten) replaced by the current one" "$W/hub.log")
[ "$n" = "$(grep -c '^[0-9]' "$ROOT/schemas/sql/rewritten")" ] || fail "$n checksum replacements logged"
[ "$(grep -c "applied repeatable" "$W/hub.log")" = "$(ls "$ROOT"/schemas/sql/functions/*.sql | wc -l)" ] \
    || fail "not every repeatable file was applied"
grep -qE "applied migration 0(0[0-9]|1[0-4])_" "$W/hub.log" && fail "the upgrade ran a migration of 001-014 again"
ok "the $n rewritten migrations took their new checksums, every repeatable file ran once"

psql -X -q -d postgres -c "CREATE DATABASE $FRESH" >/dev/null || fail "create $FRESH"
"$MIGRATE" "$(conninfo "$FRESH")" "$ROOT/schemas/sql" 2>"$W/fresh.log" || fail "fresh database: $(cat "$W/fresh.log")"
schema "$DB" >"$W/schema.upgraded"; schema "$FRESH" >"$W/schema.fresh"
diff "$W/schema.fresh" "$W/schema.upgraded" >&2 || fail "pg_dump --schema-only: upgraded and fresh differ"
functions "$DB" >"$W/functions.upgraded"; functions "$FRESH" >"$W/functions.fresh"
diff "$W/functions.fresh" "$W/functions.upgraded" >&2 || fail "functions: upgraded and fresh differ"
[ "$(qd "$FRESH" "SELECT string_agg(version || ' ' || checksum, ',' ORDER BY version) FROM schema_migrations")" \
  = "$(q "SELECT string_agg(version || ' ' || checksum, ',' ORDER BY version) FROM schema_migrations")" ] \
    || fail "schema_migrations: upgraded and fresh checksums differ"
ok "upgraded = fresh: schema dump, $(grep -c '^cv_' "$W/functions.fresh") cv_ functions and triggers (= 78172e6's), checksums"

gen_demo 50 >"$W/records.jsonl"
replay demo "$W/records.jsonl" --timeout 60
grep -qx "sent 50 acked 50 nacked 0" "$W/replay.out" || fail "replay after the upgrade: $(cat "$W/replay.out")"
hub_stop
: >"$W/hub.log"
hub_start; hub_stop                                    # a second start: nothing to do
grep -qE "applied (migration|repeatable)|replaced by the current one" "$W/hub.log" \
    && fail "second start did something: $(grep -E 'applied|replaced' "$W/hub.log")"
ok "the upgraded hub ingests; a second start applies nothing"

# ---- 2. repeatable files and refusals, on a copy of schemas/sql --------------------

cp -r "$ROOT/schemas/sql" "$W/sql"
applied() { qd "$FRESH" "SELECT string_agg(name || ' ' || checksum || ' ' || applied_at, E'\n' ORDER BY name) FROM schema_repeatables"; }
before=$(applied)
"$MIGRATE" "$(conninfo "$FRESH")" "$W/sql" 2>"$W/m1.log" || fail "unchanged copy: $(cat "$W/m1.log")"
grep -q "applied" "$W/m1.log" && fail "unchanged files were applied again: $(cat "$W/m1.log")"
[ "$(applied)" = "$before" ] || fail "schema_repeatables changed without a change"
ok "unchanged repeatable files are not run again"

sed -i "s/'events is append-only: % refused'/'events is append-only (edited): % refused'/" "$W/sql/functions/timeline.sql"
grep -q "append-only (edited)" "$W/sql/functions/timeline.sql" || fail "the edit did not take"
"$MIGRATE" "$(conninfo "$FRESH")" "$W/sql" 2>"$W/m2.log" || fail "changed copy: $(cat "$W/m2.log")"
[ "$(grep -c "applied repeatable" "$W/m2.log")" = 1 ] && grep -q "applied repeatable functions/timeline.sql" "$W/m2.log" \
    || fail "expected functions/timeline.sql alone applied: $(cat "$W/m2.log")"
qd "$FRESH" "SELECT prosrc FROM pg_proc WHERE proname = 'cv_events_append_only'" | grep -q "append-only (edited)" \
    || fail "the changed function is not in the database"
[ "$(qd "$FRESH" "SELECT checksum FROM schema_repeatables WHERE name = 'functions/timeline.sql'")" \
  = "$(sha256sum "$W/sql/functions/timeline.sql" | cut -c1-64)" ] || fail "the new checksum is not recorded"
diff <(echo "$before" | grep -v timeline.sql) <(applied | grep -v timeline.sql) >&2 || fail "other files were touched"
[ "$(applied | grep timeline.sql)" != "$(echo "$before" | grep timeline.sql)" ] || fail "applied_at did not move"
ok "a changed repeatable file is run again, alone, and its checksum recorded"

printf -- '-- broken on purpose\nCREATE OR REPLACE FUNCTION cv_broken() RETURNS int\nLANGUAGE sql AS $$ SELECT nope FROM nowhere $$;\n' \
    >"$W/sql/functions/zz_broken.sql"
sed "s|migrations: .*|migrations: $W/sql|; s|dbname=$DB\"|dbname=$FRESH\"|" "$W/hub.yaml" >"$W/hub-copy.yaml"
"$HUB" --config "$W/hub-copy.yaml" >"$W/hub-broken.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { kill $pid; fail "the hub started with a broken repeatable file"; }
wait $pid && fail "the hub exited 0 with a broken repeatable file"
grep -q "$W/sql/functions/zz_broken.sql:3: SQLSTATE 42P01: relation \"nowhere\" does not exist" "$W/hub-broken.log" \
    || fail "the hub did not name the file and the reason: $(tail -n 3 "$W/hub-broken.log")"
[ "$(qd "$FRESH" "SELECT count(*) FROM schema_repeatables WHERE name = 'functions/zz_broken.sql'")" = 0 ] \
    && [ -z "$(qd "$FRESH" "SELECT to_regproc('cv_broken')")" ] || fail "the broken file left something behind"
rm "$W/sql/functions/zz_broken.sql"
ok "a broken repeatable file stops start-up: $(grep -o 'zz_broken.sql:3: SQLSTATE [^:]*' "$W/hub-broken.log")"

echo "-- edited after it was applied" >>"$W/sql/011_api_indexes.sql"
"$MIGRATE" "$(conninfo "$FRESH")" "$W/sql" 2>"$W/m3.log" && fail "an edited 011 was accepted"
grep -q "011_api_indexes.sql: version 11 was applied with another content" "$W/m3.log" || fail "011: $(cat "$W/m3.log")"
cp "$ROOT/schemas/sql/011_api_indexes.sql" "$W/sql/"
echo "-- edited again" >>"$W/sql/004_identity.sql"       # listed, but not with this checksum
"$MIGRATE" "$(conninfo "$FRESH")" "$W/sql" 2>"$W/m4.log" && fail "an edited 004 was accepted"
grep -q "004_identity.sql: version 4 was applied with another content" "$W/m4.log" || fail "004: $(cat "$W/m4.log")"
ok "an applied migration edited without a manifest entry is refused"

psql -X -q -d postgres -c "CREATE DATABASE $PART" >/dev/null || fail "create $PART"
old_migrate "$PART" 6
"$MIGRATE" "$(conninfo "$PART")" "$ROOT/schemas/sql" 2>"$W/m5.log" && fail "a database at 006 of the old files was upgraded"
grep -q "version 7 is pending on a database migrated with the former files" "$W/m5.log" || fail "partial: $(cat "$W/m5.log")"
[ "$(qd "$PART" "SELECT count(*) FROM schema_migrations WHERE checksum IN (SELECT split_part(l, ' ', 2)
        FROM unnest(string_to_array('$(grep '^[0-9]' "$ROOT/schemas/sql/rewritten" | tr '\n' ',')', ',')) l)")" = 5 ] \
    || fail "the refused database was changed"
ok "a database part-way through the old files is refused, unchanged"
