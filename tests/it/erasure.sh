#!/usr/bin/env bash
# RGPD erasure: `civibusctl citizen erase ID` deletes a citizen's personal data (identity
# blocks, normalised identifiers, raw records) and nothing else; the timeline keeps its
# events and the API no longer finds the person; an unknown or merged-away citizen is
# refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.sh"
api_setup erasure 40
js() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }

CID=$(q "select citizen_id from citizen_sources where identity ? 'email' order by citizen_id limit 1")
[ -n "$CID" ] || fail "no citizen with an e-mail in the demo data"
EMAIL=$(q "select identity->>'email' from citizen_sources where citizen_id = $CID limit 1")
SCID=$(q "select source_citizen_id from citizen_sources where citizen_id = $CID and source = 'demo' limit 1")
[ -n "$SCID" ] || fail "the citizen has no demo pair"
events=$(q "select count(*) from events")
others=$(q "select count(*) from citizen_sources where citizen_id <> $CID")
other_ids=$(q "select count(*) from citizen_identifiers where citizen_id <> $CID")
records=$(q "select count(*) from source_records")
mine=$(q "select count(*) from source_records sr join request_sources rs using (source, source_record_id)
          join requests r on r.id = rs.request_id where r.citizen_id = $CID")
[ "$mine" -ge 1 ] || fail "the citizen has no records"
get "/v1/citizens?email=$EMAIL" "$T_SUP"
[ "$(js 'len(d["items"])')" = 1 ] || fail "search before erasure: $(head -c 200 "$W/body")"

# what the notifier wrote about the citizen's requests (one sent, one still planned), a
# preference, a bounced address of theirs; and another citizen's, which must stay
RQ=$(q "select id from requests where citizen_id = $CID order by id limit 1")
OTHER=$(q "select id from requests where citizen_id <> $CID order by id limit 1")
q "insert into notifications (event_id, request_id, recipient, channel, template, address, state, attempts, done_at) values
   (-1, $RQ, 'citizen', 'email', 'accuse_reception', '$EMAIL', 'sent', 1, now()),
   (-2, $RQ, 'citizen', 'email', 'changement_statut', '$EMAIL', 'planned', 0, null),
   (-3, $OTHER, 'citizen', 'email', 'accuse_reception', 'autre@exemple.fr', 'planned', 0, null)" >/dev/null || fail "ledger rows"
q "insert into notification_preferences (citizen_id, channel, mode) values ($CID, 'email', 'digest')" >/dev/null
q "insert into email_suppressions (address, reason) select lower(value), 'bounce_permanent' from citizen_identifiers
   where citizen_id = $CID and kind = 'email' limit 1" >/dev/null
"$CTL" --config "$W/api.yaml" citizen erase "$CID" >"$W/erase.out" 2>&1 || fail "erase: $(cat "$W/erase.out")"
[ "$(q "select string_agg(state || ':' || coalesce(address, '-') || ':' || coalesce(last_error, '-'), ',' order by event_id desc)
        from notifications where request_id = $RQ")" = "sent:-:-,skipped:-:erased" ] \
    || fail "the ledger after erasure: $(q "select state, address, last_error from notifications where request_id = $RQ")"
[ "$(q "select state || ':' || address from notifications where request_id = $OTHER")" = "planned:autre@exemple.fr" ] \
    || fail "another citizen's ledger row touched"
[ "$(q "select count(*) from notification_preferences where citizen_id = $CID")" = 0 ] || fail "preferences left"
[ "$(q "select count(*) from email_suppressions")" = 0 ] || fail "the citizen's bounced address left"
grep -q "rows of personal data erased" "$W/erase.out" || fail "erase output: $(cat "$W/erase.out")"
[ "$(q "select count(*) from citizen_sources where citizen_id = $CID")" = 0 ] || fail "identity blocks left"
[ "$(q "select count(*) from citizen_identifiers where citizen_id = $CID")" = 0 ] || fail "identifiers left"
[ "$(q "select count(*) from source_records")" = $((records - mine)) ] || fail "raw records: $(q "select count(*) from source_records") of $records - $mine"
[ "$(q "select count(*) from citizen_sources")" = "$others" ] || fail "other citizens' identities touched"
[ "$(q "select count(*) from citizen_identifiers")" = "$other_ids" ] || fail "other citizens' identifiers touched"
[ "$(q "select count(*) from events")" = "$events" ] || fail "the timeline changed"
[ "$(q "select count(*) from events where citizen_id = $CID")" -ge 1 ] || fail "the citizen's events are gone"
grep -qF "$EMAIL" "$W/erase.out" && fail "personal data in civibusctl's output"
get "/v1/citizens?email=$EMAIL" "$T_SUP"
[ "$(js 'len(d["items"])')" = 0 ] || fail "the API still finds the erased citizen"
ok "erasure deletes identities, identifiers and raw records of one citizen, the addresses of the notifier's ledger (what was planned is not sent), preferences and bounced addresses; the timeline stays"

# the hub had cached that pair's identity block (to send it as NULL when unchanged): the
# erasure tells it to forget, so the next events about the person bring the block back
sleep 0.5
gen_demo 40 1 2 >"$W/d2.jsonl"
replay demo "$W/d2.jsonl" --timeout 60
[ "$REPLAY_RC" -eq 0 ] || fail "replay: $(cat "$W/replay.out")"
[ "$(q "select identity->>'email' from citizen_sources where source = 'demo' and source_citizen_id = '$SCID'")" = "$EMAIL" ] \
    || fail "after the erasure, a new event stored the pair without its identity"
grep -q "identity cache emptied" "$W/hub.log" || fail "the hub did not hear of the erasure"
ok "after an erasure the hub forgets the cached identity; new events bring the person back"

"$CTL" --config "$W/api.yaml" citizen erase 99999999 >"$W/erase2.out" 2>&1 && fail "erasing an unknown citizen succeeded"
grep -q "unknown citizen" "$W/erase2.out" || fail "unknown citizen: $(cat "$W/erase2.out")"
A=$(q "select citizen_id from citizen_sources order by citizen_id limit 1")
B=$(q "select citizen_id from citizen_sources where citizen_id > $A order by citizen_id limit 1")
q "select cv_citizen_merge($A, $B, 'test')" >/dev/null
"$CTL" --config "$W/api.yaml" citizen erase "$B" >"$W/erase3.out" 2>&1 && fail "erasing a merged-away citizen succeeded"
grep -q "merged into $A" "$W/erase3.out" || fail "merged citizen: $(cat "$W/erase3.out")"
"$CTL" --config "$W/api.yaml" citizen erase abc >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad id: not a usage error"
ok "unknown, merged-away and malformed citizen ids are refused"
api_stop
