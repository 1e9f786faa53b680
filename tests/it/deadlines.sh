#!/usr/bin/env bash
# Due dates by rule (deploy/deadlines.yaml, docs/deadlines.md) through the real hub and
# civibus-api: --check-config names a bad line; a request arriving without a due date gets
# its rule's, counted in working days across 1 May, 8 May and Ascension 2024 (a category's
# channel, a category, a channel, calendar days); a source's own due date is kept, also when
# a later event gives none; five days waiting for the citizen move it five days; rules loaded
# at the hub's start date the requests already stored; GET /v1/services/{service}/queue lists
# overdue then soon requests by due date, of the agent's own service only, audited.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
export PGTZ=UTC
T=${CIVIBUS_TEST_TMP:-/tmp}/deadlines-demo2-$$.yaml
sed 's/service: {const: dechets}/service: {const: voirie}/; s/^source: demo$/source: demo2/' \
    "$ROOT/deploy/mappings/demo.yaml" >"$T"
api_setup deadlines 1 "demo:$ROOT/deploy/mappings/demo.yaml" "demo2:$T"
mv "$T" "$W/demo2.yaml"
sed -i "s|mapping: $T|mapping: $W/demo2.yaml|" "$W/hub.yaml"

rec() {   # id version type statut canal date [echeance]
    printf '{"id": "%s", "version": %s, "type": "%s", "statut": "%s", "canal": "%s", "date": "%s"%s, "objet": "demande"}\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" "${7:+, \"echeance\": \"$7\"}"
}
due() { q "select to_char(due_at, 'YYYY-MM-DD HH24:MI') || ' ' || coalesce(due_kind, '-') from requests where request_ref = '$1'"; }

# before any rule: a request without due date has none (what the store did until now)
rec A-1 1 encombrants RECU TEL "29/04/2024 10:15" >"$W/a.jsonl"
replay demo "$W/a.jsonl" --timeout 30
[ "$(q "select due_at is null from requests where request_ref = 'A-1'")" = t ] || fail "A-1 has a due date without rules"

# --check-config names the bad line of the deadlines file
hub_stop
cp "$ROOT/deploy/deadlines.yaml" "$W/deadlines.yaml"
printf 'region: alsace\ndefault: {days: 3}\n' >"$W/bad-region.yaml"
printf 'default: {days: 3}\ncategories:\n  x:\n    days: 2\n    channels:\n      fax: {days: 1}\n' >"$W/bad-channel.yaml"
printf 'default: {days: 3, calendar: ouvres}\n' >"$W/bad-calendar.yaml"
for b in bad-region:1 bad-channel:6 bad-calendar:1; do
    sed "\$a deadlines: ${b%%:*}.yaml" "$W/hub.yaml" >"$W/hub-bad.yaml"
    "$HUB" --config "$W/hub-bad.yaml" --check-config >"$W/check.out" 2>&1; rc=$?
    [ $rc -eq 2 ] && grep -q "${b%%:*}.yaml:${b#*:}: " "$W/check.out" || fail "check-config $b: rc $rc $(cat "$W/check.out")"
done
echo "deadlines: deadlines.yaml" >>"$W/hub.yaml"
"$HUB" --config "$W/hub.yaml" --check-config >"$W/check.out" 2>&1 || fail "check-config: $(cat "$W/check.out")"
ok "--check-config: a bad region, channel or calendar is file:line; deploy/deadlines.yaml passes"

mv "$W/hub.log" "$W/hub-before.log"; rm -f "$W/hub.sock"     # hub_start waits for the new one
hub_start
grep -q "deadlines: 7 rules from .*deadlines.yaml (2 due dates moved)" "$W/hub.log" || fail "hub log: $(grep deadlines "$W/hub.log")"
[ "$(due A-1)" = "2024-05-16 08:15 rule" ] || fail "A-1 after start: $(due A-1)"
[ "$(due D-1)" = "$(q "select to_char(due_at, 'YYYY-MM-DD HH24:MI') from events where source_record_id = 'D-1'") source" ] || fail "D-1: $(due D-1)"
ok "rules loaded at start date the stored request: A-1 (29 Apr 2024 + 10 working days) due 16 May"

{
    rec B-1 1 encombrants RECU TEL "29/04/2024 10:15" "10/05/2024"
    rec C-1 1 encombrants RECU TEL "29/04/2024 10:15"
    rec C-1 2 encombrants ATTENTE_USAGER TEL "02/05/2024 10:15"
    rec E-1 1 bac_casse RECU COURRIER "29/04/2024 10:15"
    rec F-1 1 badge_decheterie RECU WEB "29/04/2024 10:15"
    rec G-1 1 autre RECU COURRIER "29/04/2024 10:15"
    rec H-1 1 autre RECU WEB "29/04/2024 10:15" "10/05/2024"
    rec H-1 2 autre EN_COURS WEB "30/04/2024 11:00"
    rec K-1 1 bac_casse RECU TEL "06/05/2024 16:00"
} >"$W/b.jsonl"
replay demo "$W/b.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"
[ "$(due K-1)" = "2024-05-15 14:00 rule" ] || fail "K-1 (6 May + 5 working days): $(due K-1)"
[ "$(due E-1)" = "2024-05-14 08:15 rule" ] || fail "E-1 (bac_casse by letter: 8 working days): $(due E-1)"
[ "$(due F-1)" = "2024-05-14 08:15 rule" ] || fail "F-1 (15 calendar days): $(due F-1)"
[ "$(due G-1)" = "2024-05-29 08:15 rule" ] || fail "G-1 (a letter: 30 calendar days): $(due G-1)"
ok "rules on arrival: 6 May + 5 working days = 15 May (8 May, Ascension); a category's channel, calendar days, a channel"
[ "$(due B-1)" = "2024-05-09 22:00 source" ] || fail "B-1: $(due B-1)"
[ "$(due H-1)" = "2024-05-09 22:00 source" ] || fail "H-1 (later event without echeance): $(due H-1)"
ok "a source's due date is kept, also when its later event gives none"

[ "$(due C-1)" = "2024-05-16 08:15 rule" ] || fail "C-1 while waiting: $(due C-1)"
rec C-1 3 encombrants EN_COURS TEL "07/05/2024 10:15" >"$W/c.jsonl"
replay demo "$W/c.jsonl" --timeout 30
[ "$(due C-1)" = "2024-05-21 08:15 rule" ] || fail "C-1 after 5 days waiting: $(due C-1)"
[ "$(q "select paused_seconds from requests where request_ref = 'C-1'")" = 432000 ] || fail "C-1 paused_seconds"
ok "5 days waiting for the citizen (2 to 7 May) move C-1's due date from 16 to 21 May"

# the queue: dates around now
d() { date -d "$1" +'%d/%m/%Y %H:%M'; }
e() { date -d "$1" +'%d/%m/%Y'; }
{
    rec Q-1 1 autre RECU WEB "$(d '-60 days')"
    rec Q-2 1 autre RECU WEB "$(d '-1 day')" "$(e '+2 days')"
    rec Q-3 1 autre RECU WEB "$(d '-1 day')" "$(e '+20 days')"
    rec Q-4 1 autre RECU WEB "$(d '-60 days')"
    rec Q-4 2 autre ATTENTE_USAGER WEB "$(d '-50 days')"
    rec Q-5 1 autre TRAITE WEB "$(d '-60 days')"
} | sed 's/"objet"/"usager": {"id": "U-Q", "nom": "MARTIN", "prenom": "Paul"}, "objet"/' >"$W/q.jsonl"
replay demo "$W/q.jsonl" --timeout 30
rec V-1 1 autre RECU WEB "$(d '-60 days')" >"$W/v.jsonl"
replay demo2 "$W/v.jsonl" --timeout 30
[ "$REPLAY_RC" -eq 0 ] || fail "replay demo2: $(cat "$W/replay.out")"
T_VOIR=$("$CTL" --config "$W/api.yaml" token create --role agent --service voirie 2>"$W/ctl.err")
[ ${#T_VOIR} -eq 64 ] || fail "token create voirie: $(cat "$W/ctl.err")"

refs() { python3 -c 'import json,sys; print(",".join(i["request_ref"] or "" for i in json.load(open(sys.argv[1]))["items"]))' "$W/body"; }
overdue=$(q "select string_agg(request_ref, ',' order by due_at, id) from requests
             where service = 'dechets' and due_at < now() and status in ('received', 'acknowledged', 'in_progress')")
case ",$overdue," in *,Q-1,*) ;; *) fail "Q-1 not overdue: $overdue" ;; esac
get "/v1/services/dechets/queue?due=overdue&limit=100" "$T_DECH"
[ "$S" = 200 ] && [ "$(refs)" = "$overdue" ] || fail "overdue queue: $S $(refs), expected $overdue"
[ "$(refs | cut -d, -f1-3)" = D-1,B-1,H-1 ] || fail "oldest due first: $(refs)"
get "/v1/services/dechets/queue?due=soon" "$T_DECH"
[ "$S" = 200 ] && [ "$(refs)" = Q-2 ] || fail "soon queue: $S $(refs)"
get "/v1/services/dechets/queue?due=soon&days=30" "$T_DECH"
[ "$(refs)" = Q-2,Q-3 ] || fail "soon within 30 days: $(refs)"
get "/v1/services/dechets/queue?limit=100" "$T_DECH"
[ "$(refs)" = "$overdue,Q-2" ] || fail "queue: $(refs)"
ok "queue: overdue by due date (D-1 of 2 April first, no waiting_citizen Q-4, no resolved Q-5), then soon (Q-2; Q-3 within 30 days)"
get "/v1/services/dechets/queue?limit=2" "$T_DECH"
[ "$(refs)" = "$(echo "$overdue" | cut -d, -f1-2)" ] && [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["next_offset"])' "$W/body")" = 2 ] || fail "page: $(cat "$W/body")"
get "/v1/services/dechets/queue?limit=2&offset=2" "$T_DECH"
[ "$(refs)" = "$(echo "$overdue" | cut -d, -f3-4)" ] || fail "page 2: $(refs)"
ok "queue pages (limit, offset, next_offset)"

# the API says where a due date comes from and how long the clock stood still
field() { python3 -c 'import json,sys; r=[i for i in json.load(open(sys.argv[1]))["items"] if i["request_ref"]==sys.argv[2]][0]; print(r.get(sys.argv[3]))' "$W/body" "$1" "$2"; }
get "/v1/services/dechets/queue?limit=100" "$T_DECH"
[ "$(field C-1 due_kind)" = rule ] && [ "$(field C-1 paused_seconds)" = 432000 ] \
    && [ "$(field B-1 due_kind)" = source ] && [ "$(field B-1 paused_seconds)" = 0 ] \
    || fail "due_kind/paused_seconds in the API: C-1 $(field C-1 due_kind) $(field C-1 paused_seconds), B-1 $(field B-1 due_kind)"
ok "the API shows due_kind (rule, source) and paused_seconds (C-1: 5 days)"

get "/v1/services/voirie/queue" "$T_DECH"
[ "$S" = 403 ] || fail "an agent read another service's queue: $S"
get "/v1/services/voirie/queue" "$T_VOIR"
[ "$S" = 200 ] && [ "$(refs)" = V-1 ] || fail "voirie queue: $S $(refs)"
get "/v1/services/voirie/queue" "$T_SUP"
[ "$S" = 200 ] && [ "$(refs)" = V-1 ] || fail "supervisor's voirie queue: $S $(refs)"
get "/v1/services/dechets/queue?due=late" "$T_DECH"; [ "$S" = 400 ] || fail "due=late: $S"
get "/v1/services/dechets/queue?days=0" "$T_DECH"; [ "$S" = 400 ] || fail "days=0: $S"
get "/v1/services/dechets/queue"; [ "$S" = 401 ] || fail "no token: $S"
ok "an agent gets their own service's queue only (403 otherwise); supervisors any; bad due/days 400, no token 401"

CQ=$(q "select citizen_id from requests where request_ref = 'Q-1'")
sleep 0.3
n=$(q "select count(*) from api_audit where action = 'service_queue'")
[ "$n" -ge 8 ] || fail "queue reads audited: $n"
[ "$(q "select count(*) from api_audit where action = 'service_queue' and citizen_ids @> array[$CQ::bigint]")" -ge 2 ] \
    || fail "the queue's citizens are not in the read log"
ok "every queue read audited as service_queue, with the page's citizens"
api_stop
