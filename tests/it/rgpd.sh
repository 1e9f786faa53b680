#!/usr/bin/env bash
# The citizen's rights (docs/rgpd.md) against the real hub's database:
#   access: `civibusctl citizen export ID` and GET /v1/citizens/{id}/export give one document,
#     valid against schemas/v1/citizen-export.schema.json, holding the citizen and the one
#     merged into it, every identity block with its certainty, identifiers, requests, events,
#     commands and the reads of the audit (a timeline read and a list that showed the person);
#     agents are refused; unknown, merged-away and erased citizens are a clear error;
#   rectification: POST /v1/citizens/{id}/rectify (and civibusctl citizen rectify) changes one field of one block; the old
#     value is gone from the block, the identifiers and the search texts; each of the
#     citizen's requests gets a citizen_rectify event without personal data; bad values 400;
#   retention: `civibusctl retention run` erases the records of requests past their period
#     and the citizens left with none within it, counts only, touches nothing recent, and a
#     second run erases nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
api_setup rgpd 40
SCHEMA=$ROOT/schemas/v1/citizen-export.schema.json
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }
valid() {     # valid FILE: the export document against its JSON Schema
    python3 - "$1" "$SCHEMA" <<'PY' || fail "$1 does not follow the export schema"
import json, sys
import jsonschema
doc, schema = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
jsonschema.Draft202012Validator(schema).validate(doc)
PY
}
post() {      # post PATH TOKEN BODY: body in $W/body, status in $S
    S=$(curl -s -o "$W/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $2" \
        -H 'Content-Type: application/json' --data-binary "$3" "$U$1")
}

# --- access -------------------------------------------------------------------------
CID=$(q "select r.citizen_id from requests r join citizen_sources cs on cs.citizen_id = r.citizen_id
         where r.service = 'dechets' group by r.citizen_id order by count(*) desc, r.citizen_id limit 1")
[ -n "$CID" ] || fail "no citizen with requests in the demo data"
B=$(q "select citizen_id from citizen_sources where citizen_id <> $CID order by citizen_id limit 1")
q "select cv_citizen_merge($CID, $B, 'test')" >/dev/null
RID=$(q "select id from requests where citizen_id = $CID order by id limit 1")
q "insert into commands (source, kind, request_id, payload, status, done_at)
   values ('demo', 'notify', $RID, '{\"message\": \"bonjour\"}', 'done', now())"
get "/v1/citizens/$CID/timeline" "$T_DECH"
[ "$S" = 200 ] || fail "timeline: $S"
get "/v1/services/dechets/requests?limit=100" "$T_DECH"
[ "$S" = 200 ] || fail "service requests: $S"
DECH_ID=$(q "select id from api_tokens where role = 'agent' order by id desc limit 1")
for i in $(seq 1 50); do
    [ "$(q "select count(*) from api_audit where action = 'service_requests'")" -ge 1 ] && break; sleep 0.1
done

"$CTL" --config "$W/api.yaml" citizen export "$CID" >"$W/export.json" 2>"$W/export.err" \
    || fail "citizen export: $(cat "$W/export.err")"
valid "$W/export.json"
X="$W/export.json" CID=$CID B=$B RID=$RID DECH_ID=$DECH_ID \
N_ID=$(q "select count(*) from citizen_sources where citizen_id = $CID") \
N_IDF=$(q "select count(*) from citizen_identifiers where citizen_id = $CID") \
N_REQ=$(q "select count(*) from requests where citizen_id = $CID") \
N_EV=$(q "select count(*) from events e join requests r on r.id = e.request_id where r.citizen_id = $CID") \
python3 - <<'PY' || fail "the export does not hold what the database keeps"
import json, os, sys
d, e = json.load(open(os.environ["X"])), os.environ
errors = []
def want(cond, what):
    if not cond: errors.append(what)
want(d["citizen"]["id"] == int(e["CID"]), "citizen id")
want([c["id"] for c in d["merged_citizens"]] == [int(e["B"])], "merged citizens: %r" % d["merged_citizens"])
want(len(d["identities"]) == int(e["N_ID"]) and int(e["N_ID"]) >= 2, "identities: %d" % len(d["identities"]))
want(all(i["rule"] and i["confidence"] is not None and i["declared"] is False for i in d["identities"]),
     "identity certainty")
want(any(i["identity"] and i["identity"].get("email") for i in d["identities"]), "identity blocks")
want(len(d["identifiers"]) == int(e["N_IDF"]) and int(e["N_IDF"]) >= 1, "identifiers")
want(len(d["requests"]) == int(e["N_REQ"]) and all(r["records"] for r in d["requests"]), "requests and records")
want(len(d["events"]) == int(e["N_EV"]) and int(e["N_EV"]) >= len(d["requests"]), "events")
want(any(ev["kind"] == "citizen_merge" for ev in d["events"]), "the merge's events")
want([c["request_id"] for c in d["commands"]] == [int(e["RID"])] and d["commands"][0]["payload"], "commands")
want(len(d["merges"]) == 1 and d["merges"][0]["absorb"] == int(e["B"]), "merges")
reads = {(r["action"], r["via"], r["token_id"]) for r in d["reads"]}
want(("citizen_timeline", "citizen", int(e["DECH_ID"])) in reads, "timeline read: %r" % reads)
want(("service_requests", "list", int(e["DECH_ID"])) in reads, "list read: %r" % reads)
for x in errors: print("ERROR", x, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
grep -q "bonjour" "$W/export.json" || fail "the command payload is not exported"
ok "civibusctl citizen export: a valid document with identities, identifiers, requests, events, commands and reads"

get "/v1/citizens/$CID/export" "$T_SUP"
[ "$S" = 200 ] || fail "GET export: $S $(head -c 200 "$W/body")"
valid "$W/body"
python3 -c "
import json
a, b = json.load(open('$W/body')), json.load(open('$W/export.json'))
for k in ('citizen', 'merged_citizens', 'identities', 'identifiers', 'requests', 'events', 'commands'):
    assert a[k] == b[k], k
" || fail "the API's export differs from civibusctl's"
get "/v1/citizens/$CID/export" "$T_DECH"
[ "$S" = 403 ] || fail "an agent got the export: $S"
get "/v1/citizens/99999999/export" "$T_SUP"
[ "$S" = 404 ] || fail "unknown citizen: $S"
get "/v1/citizens/$B/export" "$T_SUP"
[ "$S" = 404 ] || fail "merged-away citizen: $S"
for i in $(seq 1 50); do
    [ "$(q "select count(*) from api_audit where action = 'citizen_export' and citizen_id = $CID")" -ge 1 ] && break
    sleep 0.1
done
[ "$(q "select count(*) from api_audit where action = 'citizen_export' and citizen_id = $CID")" = 1 ] \
    || fail "the export is not audited"
"$CTL" --config "$W/api.yaml" citizen export 99999999 >/dev/null 2>"$W/e.err"; rc=$?
[ $rc = 3 ] && grep -q "unknown citizen" "$W/e.err" || fail "unknown citizen: exit $rc, $(cat "$W/e.err")"
"$CTL" --config "$W/api.yaml" citizen export "$B" >/dev/null 2>"$W/e.err"; rc=$?
[ $rc = 3 ] && grep -q "merged into $CID" "$W/e.err" || fail "merged citizen: exit $rc, $(cat "$W/e.err")"
ok "GET /v1/citizens/{id}/export: the same document, supervisors only, audited; unknown and merged ids refused"

# --- rectification ------------------------------------------------------------------
PAIR=$(q "select source || '|' || source_citizen_id from citizen_sources where citizen_id = $CID
          and identity ? 'email' order by source_citizen_id limit 1")
SRC=${PAIR%%|*} SCID=${PAIR#*|}
OLD=$(q "select identity->>'email' from citizen_sources where source = '$SRC' and source_citizen_id = '$SCID'")
OLDFAM=$(q "select identity->>'family_name' from citizen_sources where source = '$SRC' and source_citizen_id = '$SCID'")
OLDFOLD=$(q "select cv_fold('$OLDFAM')")
body() { printf '{"source": "%s", "source_citizen_id": "%s", "field": "%s", "value": %s}' "$SRC" "$SCID" "$1" "$2"; }
events=$(q "select count(*) from events")
nreq=$(q "select count(*) from requests where citizen_id = $CID")
post "/v1/citizens/$CID/rectify" "$T_SUP" "$(body email '"  Nouvelle.Adresse@Example.org "')"
[ "$S" = 200 ] || fail "rectify email: $S $(cat "$W/body")"
[ "$(q "select identity->>'email' from citizen_sources where source = '$SRC' and source_citizen_id = '$SCID'")" \
  = "Nouvelle.Adresse@Example.org" ] || fail "the block was not rectified"
[ "$(q "select count(*) from citizen_identifiers where source = '$SRC' and source_citizen_id = '$SCID'
        and kind = 'email' and value = 'nouvelle.adresse@example.org'")" = 1 ] || fail "no identifier for the new e-mail"
[ "$(q "select count(*) from citizen_identifiers where source = '$SRC' and source_citizen_id = '$SCID' and value = '$OLD'")" = 0 ] \
    || fail "the old e-mail is still an identifier"
[ "$(q "select count(*) from citizen_sources where source = '$SRC' and source_citizen_id = '$SCID'
        and (identity::text like '%$OLD%' or search_name like '%$OLD%')")" = 0 ] || fail "the old e-mail is kept"
post "/v1/citizens/$CID/rectify" "$T_SUP" "$(body family_name '"Martin-Rectifié"')"
[ "$S" = 200 ] || fail "rectify family_name: $S $(cat "$W/body")"
[ "$(q "select count(*) from citizen_sources where source = '$SRC' and source_citizen_id = '$SCID'
        and search_name like '%martin rectifie%' and search_name not like '%$OLDFOLD%'")" = 1 ] \
    || fail "the search text keeps the old name: $(q "select search_name from citizen_sources where source = '$SRC' and source_citizen_id = '$SCID'")"
[ "$(q "select count(*) from citizen_identifiers where source = '$SRC' and source_citizen_id = '$SCID'
        and kind like 'name_%' and value like '%$(q "select replace(cv_fold('$OLDFAM'), ' ', '')")%'")" = 0 ] \
    || fail "a name identifier keeps the old family name"
[ "$(q "select count(*) from citizen_identifiers where source = '$SRC' and source_citizen_id = '$SCID'
        and kind = 'name_birth' and value like 'martinrectifie|%'")" -ge 1 ] || fail "no name identifier for the new name"
[ "$(q "select count(*) from events")" = $((events + 2 * nreq)) ] || fail "rectify events: $(q "select count(*) from events") of $events + 2 x $nreq"
[ "$(q "select count(*) from events where kind = 'citizen_rectify' and source = 'civibus' and citizen_id = $CID")" = $((2 * nreq)) ] \
    || fail "citizen_rectify events"
[ "$(q "select count(*) from events e where e::text ilike '%nouvelle%' or e::text ilike '%martin%'")" = 0 ] \
    || fail "personal data in the timeline"
[ "$(q "select count(*) from citizen_rectifications where citizen_id = $CID and field in ('email', 'family_name')
        and actor like 'token:%'")" = 2 ] || fail "the rectifications are not recorded"
get "/v1/citizens?email=nouvelle.adresse@example.org" "$T_SUP"
[ "$(js 'len(d["items"])')" = 1 ] || fail "search by the new e-mail: $(head -c 200 "$W/body")"

for bad in "birth_date|\"1971-02-30\"" "birth_date|\"12/05/1971\"" "birth_date|\"2999-01-01\"" "email|\"pas-une-adresse\"" \
           "phone|\"12\"" "shoe_size|\"42\"" "family_name|\"\"" "family_name|42" "address|{\"line1\": \"1 rue X\"}"; do
    post "/v1/citizens/$CID/rectify" "$T_SUP" "$(body "${bad%%|*}" "${bad#*|}")"
    [ "$S" = 400 ] || fail "rectify $bad: $S $(cat "$W/body")"
done
post "/v1/citizens/$CID/rectify" "$T_SUP" "$(body birth_date '"1971-05-13"')"
[ "$S" = 200 ] || fail "rectify a good birth date: $S $(cat "$W/body")"
post "/v1/citizens/$CID/rectify" "$T_SUP" "$(body address '{"line1": "3 av. Jean Jaurès", "postcode": "75019", "city": "Paris"}')"
[ "$S" = 200 ] || fail "rectify the address: $S $(cat "$W/body")"
[ "$(q "select identity->'address'->>'line1' from citizen_sources where source = '$SRC' and source_citizen_id = '$SCID'")" \
  = "3 av. Jean Jaurès" ] || fail "the address was not rectified"
post "/v1/citizens/$CID/rectify" "$T_DECH" "$(body email '"a@b.fr"')"
[ "$S" = 403 ] || fail "an agent rectified: $S"
post "/v1/citizens/$B/rectify" "$T_SUP" "$(body email '"a@b.fr"')"
[ "$S" = 409 ] || fail "rectify a merged-away citizen: $S"
KEEP=$SCID; SCID=nobody
post "/v1/citizens/$CID/rectify" "$T_SUP" "$(body email '"a@b.fr"')"
SCID=$KEEP
[ "$S" = 409 ] || fail "rectify a pair the citizen does not have: $S"
"$CTL" --config "$W/api.yaml" citizen export "$CID" >"$W/export2.json" || fail "export after rectification"
grep -qF "$OLD" "$W/export2.json" && fail "the export still holds the old e-mail"
[ "$(python3 -c "import json; print(len(json.load(open('$W/export2.json'))['rectifications']))")" = 4 ] \
    || fail "the export does not list the rectifications"
ok "rectify: the old value leaves the block, the identifiers and the search texts; events without personal data; bad values 400"

# --- rectification from the command line ------------------------------------------------
rect() { "$CTL" --config "$W/api.yaml" citizen rectify "$@" >"$W/rect.out" 2>"$W/rect.err"; RC=$?; }
nrect=$(q "select count(*) from citizen_rectifications where citizen_id = $CID")
rect "$CID" --source "$SRC" --key "$SCID" --field email --value "Ligne.Commande@Example.org"
[ $RC = 0 ] && grep -q "^citizen $CID: email rectified (rectification [0-9]*)" "$W/rect.out" || fail "citizen rectify: exit $RC, $(cat "$W/rect.out" "$W/rect.err")"
grep -qi "ligne" "$W/rect.out" "$W/rect.err" && fail "the value in civibusctl's output"
[ "$(q "select identity->>'email' from citizen_sources where source = '$SRC' and source_citizen_id = '$SCID'")" \
  = "Ligne.Commande@Example.org" ] || fail "civibusctl did not rectify the block"
[ "$(q "select actor from citizen_rectifications where citizen_id = $CID order by id desc limit 1")" = civibusctl ] \
    || fail "the rectification's actor is not civibusctl"
rect "$CID" --source "$SRC" --key "$SCID" --field address --value '{"line1": "5 rue de la Paix", "postcode": "75002", "city": "Paris"}' --document justificatif_domicile
[ $RC = 0 ] || fail "citizen rectify address: exit $RC, $(cat "$W/rect.err")"
[ "$(q "select identity->'address'->>'line1' from citizen_sources where source = '$SRC' and source_citizen_id = '$SCID'")" \
  = "5 rue de la Paix" ] || fail "civibusctl did not rectify the address"
[ "$(q "select count(*) from citizen_checks where source = '$SRC' and source_citizen_id = '$SCID' and field = 'address'
        and document = 'justificatif_domicile'")" = 1 ] || fail "--document did not mark the address checked"
rect "$CID" --source "$SRC" --key "$SCID" --field birth_date --value 1971-02-30
[ $RC = 2 ] && grep -q "not a day of the calendar" "$W/rect.err" || fail "a bad value: exit $RC, $(cat "$W/rect.err")"
rect "$CID" --source "$SRC" --key nobody --field email --value a@b.fr
[ $RC = 3 ] || fail "a pair the citizen does not have: exit $RC, $(cat "$W/rect.err")"
rect "$B" --source "$SRC" --key "$SCID" --field email --value a@b.fr
[ $RC = 3 ] || fail "a merged-away citizen: exit $RC"
rect "$CID" --source "$SRC" --key "$SCID" --field email
[ $RC = 2 ] || fail "no --value: exit $RC"
rect "$CID" --source "$SRC" --key "$SCID" --field email --value a@b.fr --colour blue
[ $RC = 2 ] || fail "an unknown option: exit $RC"
[ "$(q "select count(*) from citizen_rectifications where citizen_id = $CID")" = $((nrect + 2)) ] || fail "refused rectifications were recorded"
ok "civibusctl citizen rectify: cv_citizen_rectify with actor civibusctl (text or address object, --document), no value printed, exit 2 / 3 for refusals"

"$CTL" --config "$W/api.yaml" citizen erase "$CID" >/dev/null || fail "erase"
"$CTL" --config "$W/api.yaml" citizen export "$CID" >/dev/null 2>"$W/e.err"; rc=$?
[ $rc = 3 ] && grep -q "was erased" "$W/e.err" || fail "erased citizen: exit $rc, $(cat "$W/e.err")"
get "/v1/citizens/$CID/export" "$T_SUP"
[ "$S" = 404 ] || fail "GET export of an erased citizen: $S"
ok "an erased citizen has nothing to export (exit 3, 404)"

# --- retention ----------------------------------------------------------------------
# encombrants requests whose last event is before 2024-03-15 are past retention, and
# every request of the categories of one live citizen C2 (1 day); the others (later
# encombrants, other categories) are within it (default: 100 years)
D=$(q "select (current_date - date '2024-03-15')")
C2=$(q "select c.id from citizens c where c.merged_into is null and c.erased_at is null
        and exists (select 1 from requests r where r.citizen_id = c.id)
        and not exists (select 1 from requests r where r.citizen_id = c.id and r.category = 'encombrants')
        order by c.id limit 1")
[ -n "$C2" ] || fail "no citizen without encombrants requests"
CATS=$(q "select string_agg(distinct category, ',') from requests where citizen_id = $C2")
{ printf 'default_days: 36500\nservices:\n  dechets:\n    categories:\n      encombrants: %s\n' "$D"
  for c in ${CATS//,/ }; do printf '      %s: 1\n' "$c"; done; } >"$W/retention.yaml"
last="(select max(e.occurred_at) from events e where e.request_id = r.id and e.source <> 'civibus')"
old="((r.category = 'encombrants' and $last < timestamptz '2024-03-15')
      or r.category = any (string_to_array('$CATS', ',')))"
n_old=$(q "select count(*) from requests r where $old")
rec_old=$(q "select count(*) from source_records sr join requests r on r.id = sr.request_id where $old")
rec_new=$(q "select count(*) from source_records sr join requests r on r.id = sr.request_id where not ($old)")
cit_old=$(q "select count(*) from citizens c where c.merged_into is null and c.erased_at is null
             and exists (select 1 from requests r where r.citizen_id = c.id)
             and not exists (select 1 from requests r where r.citizen_id = c.id and not ($old))")
kept=$(q "select count(*) from citizen_sources cs where exists (select 1 from requests r
          where r.citizen_id = cs.citizen_id and not ($old))")
cmd_old=$(q "select count(*) from commands k join requests r on r.id = k.request_id where $old
             and k.payload is not null and k.status in ('done', 'failed')")
events=$(q "select count(*) from events")
[ "$n_old" -ge 2 ] && [ "$rec_new" -ge 2 ] && [ "$cit_old" -ge 1 ] || fail "test data: $n_old old, $rec_new recent, $cit_old citizens"

"$CTL" --config "$W/api.yaml" retention run --rules "$W/retention.yaml" --dry-run >"$W/ret0.out" || fail "dry run"
grep -q "dry run.*$n_old requests past retention, $rec_old source records erased, $cmd_old command payloads erased, $cit_old citizens" "$W/ret0.out" \
    || fail "dry run counts: $(cat "$W/ret0.out") (want $n_old, $rec_old, $cit_old)"
[ "$(q "select count(*) from source_records")" = $((rec_old + rec_new)) ] || fail "the dry run erased records"
"$CTL" --config "$W/api.yaml" retention run --rules "$W/retention.yaml" >"$W/ret1.out" 2>&1 || fail "retention: $(cat "$W/ret1.out")"
grep -q "^retention: $n_old requests past retention, $rec_old source records erased, $cmd_old command payloads erased, $cit_old citizens erased" "$W/ret1.out" \
    || fail "retention counts: $(cat "$W/ret1.out") (want $n_old, $rec_old, $cit_old)"
[ "$(q "select count(*) from source_records sr join requests r on r.id = sr.request_id where $old")" = 0 ] \
    || fail "records past retention remain"
[ "$(q "select count(*) from source_records")" = "$rec_new" ] || fail "recent records touched"
[ "$(q "select count(*) from citizen_sources cs where exists (select 1 from requests r
        where r.citizen_id = cs.citizen_id and not ($old))")" = "$kept" ] || fail "citizens with recent requests touched"
[ "$(q "select count(*) from citizens where erased_at is not null and id <> $CID
        and id in (select citizen_id from requests r where not ($old))")" = 0 ] \
    || fail "a citizen with a recent request was erased"
[ "$(q "select count(*) from events")" = "$events" ] || fail "the timeline changed"
grep -qi "@\|dupont\|usager" "$W/ret1.out" && fail "personal data in the retention output"
"$CTL" --config "$W/api.yaml" retention run --rules "$W/retention.yaml" >"$W/ret2.out" || fail "second run"
grep -q "$n_old requests past retention, 0 source records erased, 0 command payloads erased, 0 citizens erased (0 rows)" "$W/ret2.out" \
    || fail "second run: $(cat "$W/ret2.out")"
printf 'default_days: 0\n' >"$W/bad.yaml"
"$CTL" --config "$W/api.yaml" retention run --rules "$W/bad.yaml" >/dev/null 2>"$W/bad.err"; rc=$?
[ $rc = 2 ] && grep -q "bad.yaml:1" "$W/bad.err" || fail "bad rules: exit $rc, $(cat "$W/bad.err")"
[ "$(q "select count(*) from citizen_sources where citizen_id = $C2")" = 0 ] || fail "C2 was not erased"
ok "retention: old requests' records and citizens erased, counts only, recent ones untouched, a second run erases nothing"

# --- retention of the read log and the dead letters ------------------------------------
q "insert into api_audit (at, role, action) select now() - make_interval(days => d), 'admin', 'retention_test'
   from (values (400), (200), (5)) v(d)" >/dev/null
q "insert into dead_letters (received_at, source, reason, payload, payload_hash, payload_bytes)
   select now() - make_interval(days => d), 'demo', 'retention_test', 'x', md5(d::text), 1
   from (values (100), (50), (1)) v(d)" >/dev/null
a_old=$(q "select count(*) from api_audit where at < now() - interval '365 days'")
a_mid=$(q "select count(*) from api_audit where at < now() - interval '30 days'")
{ printf 'default_days: 36500\n'; } >"$W/ret_logs_default.yaml"
"$CTL" --config "$W/api.yaml" retention run --rules "$W/ret_logs_default.yaml" --dry-run >"$W/ret3.out" || fail "dry run (logs)"
grep -q "$a_old audit rows erased, 1 dead letters erased" "$W/ret3.out" || fail "defaults 365 / 90 days: $(cat "$W/ret3.out") (want $a_old audit rows)"
printf 'default_days: 36500\naudit_days: 30\ndead_letters_days: 10\n' >"$W/ret_logs.yaml"
"$CTL" --config "$W/api.yaml" retention run --rules "$W/ret_logs.yaml" >"$W/ret4.out" || fail "retention (logs)"
grep -q "$a_mid audit rows erased, 2 dead letters erased" "$W/ret4.out" || fail "logs: $(cat "$W/ret4.out") (want $a_mid audit rows)"
[ "$(q "select count(*) from api_audit where at < now() - interval '30 days'")" = 0 ] || fail "old audit rows remain"
[ "$(q "select count(*) from api_audit where action = 'retention_test'")" = 1 ] || fail "a recent audit row was erased"
[ "$(q "select count(*) from dead_letters where reason = 'retention_test'")" = 1 ] || fail "dead letters: $(q "select count(*) from dead_letters where reason = 'retention_test'")"
"$CTL" --config "$W/api.yaml" retention run --rules "$W/ret_logs.yaml" >"$W/ret5.out" || fail "retention (logs, again)"
grep -q " 0 audit rows erased, 0 dead letters erased" "$W/ret5.out" || fail "second run (logs): $(cat "$W/ret5.out")"
grep -qi "retention_test\|admin" "$W/ret4.out" && fail "rows in the retention output"
printf 'default_days: 10\naudit_days: 0\n' >"$W/bad2.yaml"
"$CTL" --config "$W/api.yaml" retention run --rules "$W/bad2.yaml" >/dev/null 2>"$W/bad2.err"; rc=$?
[ $rc = 2 ] && grep -q "bad2.yaml:2" "$W/bad2.err" || fail "audit_days 0: exit $rc, $(cat "$W/bad2.err")"
ok "retention: api_audit past audit_days (365 by default) and dead_letters past dead_letters_days (90) deleted, counts only, idempotent"
api_stop
