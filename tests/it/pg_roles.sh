#!/usr/bin/env bash
# Least privilege in PostgreSQL (issue 22; docs/operations.md, "Database roles"):
# deploy/sql/roles.sql applied, the database owned by civibus_owner, the migrations run
# by `civibus-hub --migrate` as civibus_owner; then the hub as civibus_hub ingests over
# ZeroMQ, the API as civibus_api answers (a timeline read, audited; a counter intake; a
# console sign-in; an Open311 POST), civibusctl as civibus_admin creates the tokens.
# What the roles may NOT do, each refused with SQLSTATE 42501: civibus_api changing
# events or the audit, reading the tokens' hashes, creating a table, calling a function
# it has no grant on; civibus_hub reading the tokens. And the schema's version: a hub
# connected as civibus_hub to a database one migration behind refuses to start ("run
# civibus-hub --migrate as civibus_owner"); a database holding migration 999 makes the
# hub (as civibus_hub and as civibus_owner) and the API refuse to start.
#
# The roles are the cluster's (roles are not per database) and stay there: roles.sql
# leaves existing roles alone, and the other tests' databases only gain grants.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"

it_setup pg_roles
for i in 1 2; do   # twice: a second run changes nothing
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$ROOT/deploy/sql/roles.sql" >/dev/null 2>"$W/roles.log" \
        || fail "roles.sql (run $i): $(cat "$W/roles.log")"
done
q "ALTER DATABASE $DB OWNER TO civibus_owner" >/dev/null
as() {  # as ROLE CONFIG: a copy of hub.yaml connecting as ROLE
    sed "s|user=$PGUSER |user=$1 |" "$W/hub.yaml" >"$2"
}
as civibus_owner "$W/hub-owner.yaml"
as civibus_hub "$W/hub-hub.yaml"
cp "$W/hub.yaml" "$W/hub-super.yaml"

# sqlstate ROLE SQL — the SQLSTATE of the statement run as ROLE ("ok" when it succeeds)
sqlstate() {
    local out
    out=$(psql -X -q -A -t -U "$1" -d "$DB" -v VERBOSITY=verbose -c "$2" 2>&1) && { echo ok; return; }
    sed -n 's/^ERROR: *\([0-9A-Z]\{5\}\):.*/\1/p' <<<"$out" | head -1
}
refused() {  # refused ROLE SQL WHY
    local s; s=$(sqlstate "$1" "$2")
    [ "$s" = 42501 ] || fail "$3: $1 ran \"$2\": expected SQLSTATE 42501, got $s"
}

# --- the migrations, as the owner -------------------------------------------------------
"$HUB" --config "$W/hub-owner.yaml" --migrate >"$W/migrate.log" 2>&1 || fail "--migrate: $(tail -5 "$W/migrate.log")"
grep -q "migrate: [0-9]* files applied" "$W/migrate.log" || fail "--migrate said: $(tail -3 "$W/migrate.log")"
[ "$(q "select tableowner from pg_tables where tablename = 'events'")" = civibus_owner ] || fail "events not owned by civibus_owner"
[ "$(q "select count(*) from pg_proc where proname = 'cv_ingest' and prosecdef and proowner = 'civibus_owner'::regrole")" = 1 ] \
    || fail "cv_ingest is not SECURITY DEFINER owned by civibus_owner"
"$HUB" --config "$W/hub-hub.yaml" --migrate >"$W/migrate-hub.log" 2>&1 && fail "--migrate as civibus_hub succeeded"
grep -q "SQLSTATE 42501" "$W/migrate-hub.log" || fail "--migrate as civibus_hub: $(tail -2 "$W/migrate-hub.log")"
ok "roles.sql twice, the migrations as civibus_owner (--migrate); civibus_hub may not migrate (42501)"

# the policy is complete: every table and view is named in zz_grants.sql ("ON name")
missing=""
for t in $(q "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'v', 'm', 'p') order by 1"); do
    grep -qE "ON ([a-z_]+, )*$t\b" "$ROOT/schemas/sql/functions/zz_grants.sql" || missing="$missing $t"
done
[ -z "$missing" ] || fail "tables or views named nowhere in schemas/sql/functions/zz_grants.sql:$missing"
ok "every table and view of the schema is named in the access policy (zz_grants.sql)"

# --- the hub as civibus_hub ---------------------------------------------------------------
cp "$W/hub-hub.yaml" "$W/hub.yaml"
hub_start
grep -q "schema checked" "$W/hub.log" || fail "the hub as civibus_hub did not just check the schema"
gen_demo 30 >"$W/d1.jsonl"
replay demo "$W/d1.jsonl" --timeout 60
[ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"
[ "$(q "select count(*) from events where source = 'demo'")" -ge 30 ] || fail "events not stored"
ok "the hub as civibus_hub ingests over ZeroMQ ($(q "select count(*) from events") events)"

# --- civibusctl as civibus_admin, the API as civibus_api ----------------------------------
printf 'postgres:\n  conninfo: "host=%s port=%s user=civibus_api dbname=%s"\nlisten:\n  port: 0\naudit:\n  flush_ms: 50\n' \
    "$PGHOST" "$PGPORT" "$DB" >"$W/api.yaml"
sed 's/user=civibus_api/user=civibus_admin/' "$W/api.yaml" >"$W/ctl.yaml"
T_SUP=$("$CTL" --config "$W/ctl.yaml" token create --role supervisor 2>"$W/ctl.log")
T_DECH=$("$CTL" --config "$W/ctl.yaml" token create --role agent --service dechets 2>>"$W/ctl.log")
[ ${#T_SUP} -eq 64 ] && [ ${#T_DECH} -eq 64 ] || fail "token create as civibus_admin: $(cat "$W/ctl.log")"
T_OLD=$("$CTL" --config "$W/ctl.yaml" token create --role supervisor 2>>"$W/ctl.log")
"$CTL" --config "$W/ctl.yaml" token revoke 3 2>>"$W/ctl.log" >/dev/null || fail "token revoke as civibus_admin: $(cat "$W/ctl.log")"
"$CTL" --config "$W/ctl.yaml" token list >"$W/tokens" 2>>"$W/ctl.log" || fail "token list: $(cat "$W/ctl.log")"
[ "$(grep -c active "$W/tokens")" = 2 ] && [ "$(grep -c revoked "$W/tokens")" = 1 ] || fail "token list: $(cat "$W/tokens")"
"$API" --config "$W/api.yaml" >"$W/api.log" 2>&1 &
API_PID=$!
at_exit 'kill $API_PID 2>/dev/null'
for _ in $(seq 1 50); do grep -q "listening on" "$W/api.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/api.log")
[ -n "$PORT" ] || fail "API as civibus_api did not start: $(cat "$W/api.log")"
U=http://127.0.0.1:$PORT
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }

C=$(q "select citizen_id from citizen_sources where source = 'demo' limit 1")
get "/v1/citizens/$C/timeline" "$T_SUP"
[ "$S" = 200 ] || fail "timeline as civibus_api: $S $(head -c 300 "$W/body")"
get "/v1/citizens?name=du" "$T_SUP"
[ "$S" = 200 ] || fail "search as civibus_api: $S $(head -c 300 "$W/body")"
for _ in $(seq 1 50); do
    [ "$(q "select count(*) from api_audit where action = 'citizen_timeline' and citizen_id = $C")" = 1 ] && break; sleep 0.1
done
[ "$(q "select count(*) from api_audit where action = 'citizen_timeline' and citizen_id = $C")" = 1 ] || fail "the timeline read is not audited"
ok "the API as civibus_api: a timeline read (audited), a search"

DC=$(q "select citizen_id from requests where service = 'dechets' and citizen_id is not null limit 1")
S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Authorization: Bearer $T_DECH" -H 'Content-Type: application/json' \
    --data-binary "{\"channel\": \"guichet\", \"category\": \"encombrants\", \"description\": \"Canapé à enlever\", \"citizen_id\": $DC}" "$U/v1/requests")
[ "$S" = 201 ] || fail "intake POST as civibus_api: $S $(cat "$W/body")"
CODE=$(js 'd["tracking_code"]')
[ "$(q "select count(*) from requests where tracking_code = '$CODE'")" = 1 ] || fail "the intake's request"
get "/v1/track/$CODE"
[ "$S" = 200 ] || fail "tracking the new request: $S"
S=$(curl -s -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "service_code=encombrants&description=Canap%C3%A9+devant+le+12&email=zoe.web%40example.fr" "$U/open311/v2/requests.json")
[ "$S" = 200 ] || fail "Open311 POST as civibus_api (cv_ingest): $S $(cat "$W/body")"
[ "$(q "select count(*) from events where source = 'open311'")" = 1 ] || fail "the Open311 event"
S=$(curl -s -o "$W/body" -w '%{http_code}' -D "$W/headers" -H 'Content-Type: application/json' \
    --data-binary "{\"token\": \"$T_SUP\"}" "$U/v1/sessions")
[ "$S" = 200 ] || [ "$S" = 201 ] || fail "sign-in as civibus_api: $S $(cat "$W/body")"
COOKIE=$(sed -n 's/^[Ss]et-[Cc]ookie: *\([^;]*\).*/\1/p' "$W/headers" | head -1)
[ -n "$COOKIE" ] || fail "no session cookie: $(cat "$W/headers")"
[ "$(q "select count(*) from api_sessions")" -ge 1 ] || fail "no session row"
S=$(curl -s -o "$W/body" -w '%{http_code}' -H "Cookie: $COOKIE" "$U/v1/session")
[ "$S" = 200 ] || fail "the session: $S $(cat "$W/body")"
get "/v1/citizens/$C/timeline" "0000000000000000000000000000000000000000000000000000000000000000"
[ "$S" = 401 ] || fail "an unknown token: $S"
get "/v1/citizens/$C/timeline" "$T_OLD"
[ "$S" = 401 ] || fail "a revoked token: $S"
ok "the API as civibus_api: an intake POST (201, tracked), an Open311 POST, a console sign-in and its session, an unknown or revoked token 401"

# --- what the roles may not do -----------------------------------------------------------
refused civibus_api "UPDATE events SET status = 'closed' WHERE id = (SELECT min(id) FROM events)" "events are not the API's to change"
refused civibus_api "DELETE FROM events" "events are not the API's to delete"
refused civibus_api "INSERT INTO events (source) VALUES ('x')" "events are written through cv_ingest only"
refused civibus_api "UPDATE api_audit SET action = 'x'" "the audit is append-only"
refused civibus_api "DELETE FROM api_audit" "the audit is append-only"
refused civibus_api "TRUNCATE api_audit" "the audit is append-only"
refused civibus_api "DELETE FROM citizen_merges" "the merges' trail"
refused civibus_api "UPDATE citizens SET merged_into = NULL" "citizens through the identity functions only"
refused civibus_api "SELECT token_hash FROM api_tokens" "the tokens' hashes"
refused civibus_api "SELECT * FROM api_tokens" "the tokens' hashes (all columns)"
refused civibus_api "SELECT count(*) FROM api_tokens WHERE token_hash LIKE 'a%'" "the hash in a WHERE"
refused civibus_api "CREATE TABLE mine (x int)" "no DDL"
refused civibus_api "SELECT cv_citizen_erase($C)" "erasure is civibusctl's"
refused civibus_api "SELECT cv_retention_run('{}'::jsonb, true)" "retention is civibusctl's"
refused civibus_api "UPDATE dead_letters SET replayed_at = now()" "dead letters are civibusctl's"
refused civibus_api "INSERT INTO api_tokens (token_hash, role) VALUES (repeat('a', 64), 'admin')" "tokens are civibusctl's"
[ "$(sqlstate civibus_api "SELECT id FROM cv_api_token(repeat('0', 64))")" = ok ] || fail "cv_api_token as civibus_api"
refused civibus_api "SELECT count(*) FROM cv_ingest(ARRAY[0], ARRAY['demo'], NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)" \
    "cv_ingest runs as the owner, but for the API's role the Open311 source only"
refused civibus_hub "SELECT id FROM api_tokens" "the hub reads no token"
refused civibus_hub "SELECT * FROM api_sessions" "the hub reads no session"
refused civibus_hub "SELECT * FROM api_audit" "the hub reads no audit"
refused civibus_hub "DELETE FROM events" "the hub deletes no event"
refused civibus_hub "CREATE TABLE mine (x int)" "no DDL for the hub"
refused civibus_admin "UPDATE api_audit SET action = 'x'" "civibusctl may not change the audit"
refused civibus_admin "SELECT token_hash FROM api_tokens" "civibusctl writes a token's hash, never reads one"
refused civibus_admin "UPDATE api_tokens SET role = 'admin'" "civibusctl only revokes a token"
refused civibus_admin "DELETE FROM events" "civibusctl deletes events only through the erasure"
refused civibus_notify "SELECT id FROM api_tokens" "the notifier reads no token"
refused civibus_notify "DELETE FROM events" "the notifier deletes no event"
ok "refused with 42501: civibus_api changing events or the audit, reading token hashes, DDL, ungranted functions; civibus_hub, civibus_admin, civibus_notify likewise"

kill -TERM "$API_PID"; wait "$API_PID" 2>/dev/null
hub_stop || fail "hub exit"

# --- the schema's version ------------------------------------------------------------------
LAST=$(ls "$ROOT/schemas/sql" | sed -n 's/^\([0-9]\{3\}\)_.*\.sql$/\1/p' | sort -n | tail -1)
row=$(q "select version || '|' || name || '|' || checksum from schema_migrations where version = $((10#$LAST))")
q "delete from schema_migrations where version = $((10#$LAST))" >/dev/null
"$HUB" --config "$W/hub-hub.yaml" >"$W/behind.log" 2>&1; rc=$?
[ $rc -ne 0 ] || fail "the hub as civibus_hub started on a database one migration behind"
grep -q "the database is at migration [0-9]\{3\}, this hub needs $LAST.*run civibus-hub --migrate as civibus_owner" "$W/behind.log" \
    || fail "one behind: $(tail -3 "$W/behind.log")"
IFS='|' read -r v n c <<<"$row"
q "insert into schema_migrations (version, name, checksum) values ($v, '$n', '$c')" >/dev/null
ok "a hub as civibus_hub on a database one migration behind refuses (exit $rc, run --migrate as civibus_owner)"

q "insert into schema_migrations (version, name, checksum) values (999, '999_future.sql', 'x')" >/dev/null
want="the database holds migration 999 (newer than this civibus, which knows up to $LAST): upgrade civibus before starting it"
for cfg in hub-hub hub-owner hub-super; do
    "$HUB" --config "$W/$cfg.yaml" >"$W/newer-$cfg.log" 2>&1; rc=$?
    [ $rc -eq 1 ] || fail "$cfg: the hub on a database at 999: exit $rc"
    grep -qF "$want" "$W/newer-$cfg.log" || fail "$cfg at 999: $(tail -3 "$W/newer-$cfg.log")"
done
"$HUB" --config "$W/hub-owner.yaml" --migrate >"$W/newer-migrate.log" 2>&1 && fail "--migrate on a database at 999"
grep -qF "$want" "$W/newer-migrate.log" || fail "--migrate at 999: $(tail -3 "$W/newer-migrate.log")"
"$API" --config "$W/api.yaml" >"$W/api-newer.log" 2>&1; rc=$?
[ $rc -eq 1 ] || fail "the API on a database at 999: exit $rc"
grep -qF "$want" "$W/api-newer.log" || fail "API at 999: $(tail -3 "$W/api-newer.log")"
ok "a database at migration 999: the hub (civibus_hub, civibus_owner, superuser, --migrate) and the API refuse (exit 1)"
