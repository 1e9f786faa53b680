#!/usr/bin/env bash
# Identity resolution end to end: `make run` (deploy/run.sh) on its own folder starts the
# hub and the three simulated softwares with their adapters; the same person, written
# "DUPONT Jean-Pierre" (état civil), "Dupont / Jean Pierre" (urbanisme) and "J-P DUPONT"
# (déchets), ends up as ONE citizen whose links carry their rule; the timeline of that
# citizen holds requests of the three softwares; no personal data is in the timeline; a
# supervisor merges and splits two citizens over the API, and detaches one linked pair.
# san: skip   (uses the normal build, like `make run`)
. "$(dirname "$0")/lib.sh"
W=$(mktemp -d "${CIVIBUS_TEST_TMP:-/tmp}/it-identity.XXXXXX"); chmod 755 "$W"
export CIVIBUS_VAR=$W/var
# stop the stack (lib.sh then stops a cluster it started for a test run alone)
cleanup_run() {
    bash "$ROOT/deploy/run.sh" stop >/dev/null 2>&1
    bash "$ROOT/deploy/pgctl.sh" stop --purge "$W/var/pg" >/dev/null 2>&1
}
at_exit cleanup_run
DETACH=1 bash "$ROOT/deploy/run.sh" >"$W/run.out" 2>&1 || { cat "$W/run.out"; fail "make run failed"; }
(
    unset PGHOST PGPORT PGUSER PGDATABASE
    . "$W/var/run.env"
    pq() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
    # the pairs whose identity block carries this person's e-mail, in any spelling
    who="cv_norm_email(identity->>'email') = 'jp.dupont@example.fr'"
    for _ in $(seq 1 120); do
        n=$(pq "select count(distinct source) from citizen_sources where $who")
        [ "$n" = 3 ] && break
        sleep 0.5
    done
    [ "$n" = 3 ] || fail "the person is known to $n of the 3 softwares after 60 s"
    c=$(pq "select count(distinct citizen_id) from citizen_sources where $who")
    [ "$c" = 1 ] || fail "the person is $c citizens, expected 1"
    rules=$(pq "select string_agg(rule, ',' order by rule) from citizen_sources where $who")
    echo "$rules" | grep -q new || fail "no link created the citizen: $rules"
    echo "$rules" | grep -qE 'email|phone' || fail "no link by e-mail or phone: $rules"
    s=$(pq "select count(distinct e.source) from events e
            where e.citizen_id = (select citizen_id from citizen_sources where $who limit 1)")
    [ "$s" = 3 ] || fail "the citizen's timeline has events of $s softwares, expected 3"
    pq "select row_to_json(e)::text from events e" | grep -qiE 'dupont|example\.fr' \
        && fail "personal data in events"
    # the hub's proposals job (identity.propose_interval_ms, 5 s in the demo config)
    # proposes the demo sample's DUPONT, a weak match, to agents without merging it
    for _ in $(seq 1 40); do
        [ "$(pq "select count(*) from merge_proposals")" -ge 1 ] && break
        sleep 0.5
    done
    [ "$(pq "select count(*) from merge_proposals")" -ge 1 ] || fail "the hub proposed no weak match within 20 s"
    echo "    links: $rules"

    # the same, as an agent sees it over HTTP: one citizen, one cross-service timeline
    printf 'postgres:\n  conninfo: ""\nlisten:\n  port: 0\naudit:\n  flush_ms: 50\n' >"$W/api.yaml"
    "$ROOT/$BIN/civibus-api" --config "$W/api.yaml" >"$W/api.log" 2>&1 &
    api=$!
    for _ in $(seq 1 50); do grep -q "listening on" "$W/api.log" && break; sleep 0.1; done
    port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/api.log")
    [ -n "$port" ] || { kill $api; fail "API did not start: $(cat "$W/api.log")"; }
    tok=$("$ROOT/$BIN/civibusctl" --config "$W/api.yaml" token create --role supervisor 2>/dev/null)
    curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/v1/citizens?email=JP.Dupont%40example.fr" >"$W/search.json"
    n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$W/search.json")
    [ "$n" = 1 ] || { kill $api; fail "API search by e-mail found $n citizens: $(head -c 300 "$W/search.json")"; }
    cid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["items"][0]["id"])' "$W/search.json")
    curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/v1/citizens/$cid/timeline" >"$W/timeline.json"
    services=$(python3 -c 'import json,sys; print(",".join(sorted({r["service"] for r in json.load(open(sys.argv[1]))["requests"]})))' "$W/timeline.json")
    [ "$(echo "$services" | tr ',' '\n' | wc -l)" -ge 3 ] || { kill $api; fail "API timeline covers services '$services', expected the three softwares'"; }

    # an agent merges two citizens over the API, then undoes it: both come back as they were
    other=$(pq "select id from citizens where merged_into is null and id <> $cid order by id limit 1")
    before=$(pq "select string_agg(source || ':' || source_citizen_id || '=' || citizen_id, ',' order by source, source_citizen_id) from citizen_sources where citizen_id in ($cid, $other)")
    agent=$("$ROOT/$BIN/civibusctl" --config "$W/api.yaml" token create --role agent --service dechets 2>/dev/null)
    post() { curl -s -o "$W/post.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $1" --data "$3" "http://127.0.0.1:$port$2"; }
    st=$(post "$agent" "/v1/citizens/$cid/merge" "{\"absorb\": $other}")
    [ "$st" = 403 ] || { kill $api; fail "an agent of one service could merge citizens ($st)"; }
    st=$(post "$tok" "/v1/citizens/$cid/merge" "{\"absorb\": $other}")
    [ "$st" = 200 ] || { kill $api; fail "merge: $st $(cat "$W/post.json")"; }
    mid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["merge_id"])' "$W/post.json")
    [ "$(pq "select count(*) from citizen_sources where citizen_id = $other")" = 0 ] || { kill $api; fail "merge left links on the absorbed citizen"; }
    [ "$(pq "select count(*) from events where kind = 'citizen_merge'")" -ge 1 ] || { kill $api; fail "no citizen_merge event in the timeline"; }
    st=$(post "$tok" "/v1/citizens/$cid/merge" "{\"absorb\": $other}")
    [ "$st" = 409 ] || { kill $api; fail "merging an absorbed citizen again: $st"; }
    st=$(post "$tok" "/v1/merges/$mid/split" "")
    [ "$st" = 200 ] || { kill $api; fail "split: $st $(cat "$W/post.json")"; }
    after=$(pq "select string_agg(source || ':' || source_citizen_id || '=' || citizen_id, ',' order by source, source_citizen_id) from citizen_sources where citizen_id in ($cid, $other)")
    [ "$before" = "$after" ] || { kill $api; fail "split did not restore both citizens"; }
    [ "$(pq "select count(*) from events where kind = 'citizen_split'")" -ge 1 ] || { kill $api; fail "no citizen_split event in the timeline"; }
    st=$(post "$tok" "/v1/merges/$mid/split" "")
    [ "$st" = 409 ] || { kill $api; fail "splitting twice: $st"; }
    echo "    merge $mid of citizens $cid + $other over the API, then split: links restored"

    # an automatic link judged wrong: a supervisor detaches one pair of the person
    pair=$(pq "select source || ' ' || source_citizen_id from citizen_sources cs where citizen_id = $cid
               and rule <> 'new' and not exists (select 1 from citizen_sources o where o.citizen_id = $cid
               and o.source = cs.source and o.source_citizen_id <> cs.source_citizen_id)
               order by source limit 1")
    [ -n "$pair" ] || { kill $api; fail "no automatically linked pair to detach"; }
    body=$(python3 -c 'import json,sys; print(json.dumps({"source": sys.argv[1], "source_citizen_id": sys.argv[2]}))' $pair)
    st=$(post "$agent" "/v1/citizens/$cid/detach" "$body")
    [ "$st" = 403 ] || { kill $api; fail "an agent of one service could detach a link ($st)"; }
    st=$(post "$tok" "/v1/citizens/$cid/detach" '{"source": 1}')
    [ "$st" = 400 ] || { kill $api; fail "detach with a malformed body: $st"; }
    st=$(post "$tok" "/v1/citizens/x$cid/detach" "$body")
    [ "$st" = 404 ] || { kill $api; fail "detach from a citizen id that is not a number: $st"; }
    nreq=$(pq "select count(*) from requests r join request_sources s on s.request_id = r.id
               where r.citizen_id = $cid and s.source = '${pair%% *}'")
    st=$(post "$tok" "/v1/citizens/$cid/detach" "$body")
    [ "$st" = 200 ] || { kill $api; fail "detach: $st $(cat "$W/post.json")"; }
    new=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["from"] == int(sys.argv[2]); print(d["citizen_id"])' "$W/post.json" "$cid") \
        || { kill $api; fail "detach answered $(cat "$W/post.json")"; }
    [ "$(pq "select citizen_id || ':' || rule from citizen_sources where source || ' ' || source_citizen_id = '$pair'")" = "$new:detached" ] \
        || { kill $api; fail "the detached pair is not on the new citizen"; }
    [ "$(pq "select count(*) from requests where citizen_id = $new")" = "$nreq" ] || { kill $api; fail "the pair's $nreq requests did not move"; }
    [ "$(pq "select count(*) from events where kind = 'citizen_detach' and citizen_id = $new")" = "$nreq" ] \
        || { kill $api; fail "no citizen_detach event per moved request"; }
    [ "$(pq "select status from merge_proposals where citizen_a = $cid and citizen_b = $new")" = rejected ] \
        || { kill $api; fail "the detach did not answer the proposal between the two citizens"; }
    st=$(post "$tok" "/v1/citizens/$cid/detach" "$body")
    [ "$st" = 409 ] || { kill $api; fail "detaching a pair the citizen no longer has: $st"; }
    for _ in $(seq 1 50); do
        [ "$(pq "select count(*) from api_audit where action = 'citizen_detach' and citizen_id = $cid")" = 1 ] && break
        sleep 0.1
    done
    [ "$(pq "select count(*) from api_audit where action = 'citizen_detach' and citizen_id = $cid")" = 1 ] \
        || { kill $api; fail "the detach was not audited"; }
    kill $api; wait $api 2>/dev/null
    echo "    detached pair of ${pair%% *} from citizen $cid to $new ($nreq requests) over the API"
    audited=$(pq "select count(*) from api_audit" 2>/dev/null || echo 0)
    [ "${audited:-0}" -ge 1 ] || fail "the agent's reads were not audited"
    echo "    API timeline services: $services"
) || exit 1
ok "one person under three spellings in three softwares: one citizen, one timeline (SQL and API)"
bash "$ROOT/deploy/run.sh" stop >/dev/null || fail "make stop failed"
