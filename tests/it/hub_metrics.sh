#!/usr/bin/env bash
# The hub's /metrics (docs/operations.md): listen.metrics on a free port (port 0, read back
# from the log); replayed records — good, malformed, resent, an id reused, EVENTs without
# their record frame (reason malformed) — show up as the
# exact counter values, per source, matching the database; histograms are coherent; labels
# are only source and reason, and no record value appears; a bad path is 404, a POST 405;
# a bad listen.metrics is refused with file:line.
. "$(dirname "$0")/lib.sh"
it_setup hub_metrics "demo:$ROOT/deploy/mappings/demo.yaml" "demo2:demo2.yaml"
sed 's/^source: demo$/source: demo2/' "$ROOT/deploy/mappings/demo.yaml" >"$W/demo2.yaml"   # a second source

# a bad address stops start-up with file:line
sed 's|^  publish: .*|&\n  metrics: "localhost:9560"|' "$W/hub.yaml" >"$W/bad.yaml"
"$HUB" --config "$W/bad.yaml" --check-config >"$W/bad.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "bad listen.metrics: exit $rc, expected 2"
grep -qE "bad.yaml:[0-9]+: 'listen.metrics'" "$W/bad.out" || fail "bad listen.metrics said: $(cat "$W/bad.out")"
ok "bad listen.metrics refused: $(cat "$W/bad.out")"

sed -i 's|^  publish: .*|&\n  metrics: "127.0.0.1:0"|' "$W/hub.yaml"
hub_start
PORT=$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$W/hub.log" | tail -n1)
[ -n "$PORT" ] && [ "$PORT" -gt 0 ] || fail "no metrics port in the hub log"
URL=http://127.0.0.1:$PORT
ok "metrics served on port $PORT"

scrape() { curl -sf --max-time 5 "$URL/metrics" >"$W/metrics.txt" || fail "GET /metrics failed"; }
# m 'name{labels}' — the value of one sample of the last scrape
m() {
    local v
    v=$(awk -v k="$1" '$1 == k { print $2 }' "$W/metrics.txt")
    [ -n "$v" ] || fail "no sample $1 in /metrics"
    echo "$v"
}
expect() {  # 'name{labels}' value
    local v; v=$(m "$1")
    [ "$v" = "$2" ] || fail "$1 = $v, expected $2"
}
expect_soon() {  # the same, scraping again for up to 3 s (a BYE is handled after the replay exits)
    local i
    for i in $(seq 1 30); do
        [ "$(m "$1")" = "$2" ] && return 0
        sleep 0.1; scrape
    done
    expect "$1" "$2"
}

scrape
expect 'civibus_hub_events_received_total{source="demo"}' 0
expect 'civibus_hub_adapter_session_open{source="demo"}' 0
expect 'civibus_hub_batch_size_count' 0
grep -q '^# TYPE civibus_hub_commit_latency_seconds histogram$' "$W/metrics.txt" || fail "no latency histogram"
curl -s --max-time 5 -D "$W/headers.txt" -o /dev/null "$URL/metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$W/headers.txt" || fail "content type: $(cat "$W/headers.txt")"
ok "all zero before any event, Prometheus text format 0.0.4"

code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$URL/nope")
[ "$code" = 404 ] || fail "GET /nope: $code, expected 404"
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$URL/")
[ "$code" = 404 ] || fail "GET /: $code, expected 404"
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST -d x "$URL/metrics")
[ "$code" = 405 ] || fail "POST /metrics: $code, expected 405"
ok "bad path 404, POST 405"

# 40 good records, 3 malformed ones
gen_demo 40 >"$W/records.jsonl"
echo '{"id": "BROKEN-1", "version": 1, "type": ' >>"$W/records.jsonl"            # invalid_json
echo '{"version": 1, "type": "encombrants", "statut": "RECU"}' >>"$W/records.jsonl"  # missing_field
printf '{"id":"BAD-UTF8","nom":"\xff\xfe"}\n' >>"$W/records.jsonl"                 # invalid_utf8
replay demo "$W/records.jsonl" --timeout 60
grep -qx "sent 43 acked 40 nacked 3" "$W/replay.out" || fail "replay said: $(cat "$W/replay.out")"
scrape
expect 'civibus_hub_events_received_total{source="demo"}' 43
expect 'civibus_hub_events_stored_total{source="demo"}' 40
expect 'civibus_hub_events_duplicate_total{source="demo"}' 0
expect 'civibus_hub_events_dead_lettered_total{source="demo",reason="invalid_json"}' 1
expect 'civibus_hub_events_dead_lettered_total{source="demo",reason="missing_field"}' 1
expect 'civibus_hub_events_dead_lettered_total{source="demo",reason="invalid_utf8"}' 1
expect 'civibus_hub_events_dead_lettered_total{source="demo",reason="too_large"}' 0
expect 'civibus_hub_events_received_total{source="demo2"}' 0
expect 'civibus_hub_adapter_sessions_opened_total{source="demo"}' 1
expect_soon 'civibus_hub_adapter_session_open{source="demo"}' 0
[ "$(m 'civibus_hub_events_stored_total{source="demo"}')" = "$(q "select count(*) from events where source = 'demo'")" ] \
    || fail "stored counter differs from the events table"
hits1=$(m 'civibus_hub_identity_cache_total{result="hit"}') miss1=$(m 'civibus_hub_identity_cache_total{result="miss"}')
[ $((hits1 + miss1)) = 40 ] || fail "identity cache: $hits1 hits + $miss1 misses for 40 events with a citizen"
ok "first replay: received 43, stored 40, 3 dead-lettered by reason, session opened and closed"

# the same file again: 40 duplicates; the 3 bad records are rejected (NACKed) again
replay demo "$W/records.jsonl" --timeout 60
grep -qx "sent 43 acked 40 nacked 3" "$W/replay.out" || fail "second replay said: $(cat "$W/replay.out")"
# an id reused with other content
gen_demo 1 7 1 | sed 's/"objet": "[^"]*"/"objet": "contenu modifié"/' >"$W/reused.jsonl"
replay demo "$W/reused.jsonl" --timeout 30
grep -qx "sent 1 acked 1 nacked 0" "$W/replay.out" || fail "id reuse replay said: $(cat "$W/replay.out")"
# 10 records from another source
gen_demo 10 500 >"$W/demo2.jsonl"
replay demo2 "$W/demo2.jsonl" --timeout 30
grep -qx "sent 10 acked 10 nacked 0" "$W/replay.out" || fail "demo2 replay said: $(cat "$W/replay.out")"
scrape
expect 'civibus_hub_events_received_total{source="demo"}' 87
expect 'civibus_hub_events_stored_total{source="demo"}' 40
expect 'civibus_hub_events_duplicate_total{source="demo"}' 40
expect 'civibus_hub_events_dead_lettered_total{source="demo",reason="invalid_json"}' 2
expect 'civibus_hub_events_dead_lettered_total{source="demo",reason="id_reused"}' 1
expect 'civibus_hub_adapter_sessions_opened_total{source="demo"}' 3
expect 'civibus_hub_events_received_total{source="demo2"}' 10
expect 'civibus_hub_events_stored_total{source="demo2"}' 10
expect 'civibus_hub_events_duplicate_total{source="demo2"}' 0
expect 'civibus_hub_adapter_sessions_opened_total{source="demo2"}' 1
[ "$(q "select count(*) from events")" = 50 ] || fail "events: $(q "select count(*) from events")"
[ "$(m 'civibus_hub_events_dead_lettered_total{source="demo",reason="id_reused"}')" \
  = "$(q "select count(*) from dead_letters where reason = 'id_reused'")" ] || fail "id_reused differs from dead_letters"
# the 41 resent demo events carry blocks the hub now knows stored: all hits; demo2's 10 miss
expect 'civibus_hub_identity_cache_total{result="hit"}' $((hits1 + 41))
expect 'civibus_hub_identity_cache_total{result="miss"}' $((miss1 + 10))
ok "resent: 40 duplicates, bad records counted again, id_reused 1; demo2 counted apart; identity cache hits"

# a long-lived adapter session (driver none): the gauge is 1 while it runs, 0 once it stops
cp "$W/adapter.yaml" "$W/adapter-run.yaml"
printf 'driver:\n  kind: none\n  source: demo2\n' >>"$W/adapter-run.yaml"
"$ADAPTER" run --config "$W/adapter-run.yaml" >>"$W/adapter.log" 2>&1 &
ADAPTER_PID=$!
scrape
expect_soon 'civibus_hub_adapter_session_open{source="demo2"}' 1
expect 'civibus_hub_adapter_session_open{source="demo"}' 0
expect 'civibus_hub_adapter_sessions_opened_total{source="demo2"}' 2
kill -TERM "$ADAPTER_PID"; wait "$ADAPTER_PID" 2>/dev/null
expect_soon 'civibus_hub_adapter_session_open{source="demo2"}' 0
ok "session gauge: 1 while an adapter runs, 0 after it stops"

# histograms: every item of every batch counted once; buckets cumulative; count = +Inf
expect 'civibus_hub_batch_size_sum' 97
batches=$(m 'civibus_hub_batch_size_count')
[ "$batches" -ge 4 ] || fail "batch count $batches, expected at least one per replay"
expect 'civibus_hub_batch_size_bucket{le="+Inf"}' "$batches"
expect 'civibus_hub_commit_latency_seconds_count' "$batches"
expect 'civibus_hub_commit_latency_seconds_bucket{le="+Inf"}' "$batches"
awk '$1 ~ /^civibus_hub_(batch_size|commit_latency_seconds)_bucket/ { split($1, a, "_bucket"); if (a[1] == last && $2 < prev) bad = 1; last = a[1]; prev = $2 }
     END { exit bad }' "$W/metrics.txt" || fail "histogram buckets are not cumulative"
awk '$1 == "civibus_hub_commit_latency_seconds_sum" { exit !($2 > 0 && $2 < 60) }' "$W/metrics.txt" \
    || fail "commit latency sum: $(m civibus_hub_commit_latency_seconds_sum)"
ok "histograms: $batches batches, 97 items, latency sum $(m civibus_hub_commit_latency_seconds_sum) s"

# only the labels source, reason, le and result; only configured source names; no record value anywhere
grep -v '^#' "$W/metrics.txt" | grep -o '{[^}]*}' | tr -d '{}' | tr ',' '\n' | cut -d= -f1 | sort -u >"$W/labels.txt"
[ "$(grep -vxE 'source|reason|le|result' "$W/labels.txt")" = "" ] || fail "unexpected labels: $(cat "$W/labels.txt")"
[ "$(grep -o 'source="[^"]*"' "$W/metrics.txt" | sort -u | tr '\n' ' ')" = 'source="demo" source="demo2" ' ] \
    || fail "unexpected source labels"
grep -qiE 'DUPONT|LEFÈVRE|usager|Église|BROKEN|BAD-UTF8|D-[0-9]' "$W/metrics.txt" && fail "record values in /metrics"
grep -qiE 'LEFÈVRE|usager[0-9]+@|Église' "$W/hub.log" && fail "personal data in the hub log"
ok "labels are source, reason, result (and le); no record value"

# protocol abuse (tools/rawclient): an EVENT without its record frame is dead-lettered
# malformed, and counted under reason="malformed" (it was "other")
"$ROOT/$BUILD/tools/rawclient" "ipc://$W/hub.sock" "$W/keys/hub" "$W/keys/demo_secret" >"$W/rawclient.out" 2>&1 \
    || fail "rawclient: $(tail -5 "$W/rawclient.out")"
nmal=$(q "select count(*) from dead_letters where source = 'demo' and reason = 'malformed'")
[ "$nmal" -ge 1 ] || fail "rawclient left no malformed dead letter"
scrape
expect_soon 'civibus_hub_events_dead_lettered_total{source="demo",reason="malformed"}' "$nmal"
expect 'civibus_hub_events_dead_lettered_total{source="demo",reason="other"}' 0
ok "malformed EVENTs counted under their own reason ($nmal), none under other"

hub_stop || fail "hub did not stop cleanly"
curl -s --max-time 2 -o /dev/null "$URL/metrics" && fail "metrics still served after the hub stopped"
ok "hub stopped, metrics server gone"
