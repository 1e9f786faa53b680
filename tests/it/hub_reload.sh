#!/usr/bin/env bash
# SIGHUP reloads the hub's configuration without a restart (docs/operations.md,
# "Reloading"): a source added (its adapter gets in, /metrics counts it), a key rotated
# (the new one gets in while the old one still works, then the old one is refused), a
# mapping changed (new events follow it), a source removed (its adapter is refused), a
# broken file (a careless edit: file:line logged, the running configuration kept whole),
# a change only a restart applies (named, kept); the hub never restarts (same pid) and
# every event is stored once (what an adapter spooled while refused goes in once it is
# back).
. "$(dirname "$0")/lib.sh"
it_setup hub_reload "demo:demo.yaml"
cp "$ROOT/deploy/mappings/demo.yaml" "$W/demo.yaml"
sed -i 's|^  publish: .*|&\n  metrics: "127.0.0.1:0"|' "$W/hub.yaml"
hub_start
PID=$HUB_PID
PORT=$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$W/hub.log" | tail -n1)

reload() {  # sends SIGHUP and waits for the reload's last line (done, or kept)
    local before; before=$(grep -cE "reload: (done|.*running configuration is kept)" "$W/hub.log")
    kill -HUP "$PID"
    for i in $(seq 1 50); do
        [ "$(grep -cE "reload: (done|.*running configuration is kept)" "$W/hub.log")" -gt "$before" ] && return 0
        sleep 0.1
    done
    fail "no reload line within 5 s"
}
acfg() {  # acfg NAME SOURCE KEY — an adapter config for SOURCE signing with KEY
    sed "s|^sources:.*||; /^  [a-z0-9_-]*:\$/,\$d" "$W/adapter.yaml" >"$W/a-$1.yaml"
    printf 'sources:\n  %s:\n    secret_key_file: keys/%s_secret\n    spool_dir: spool-%s/%s\n' "$2" "$3" "$1" "$2" \
        >>"$W/a-$1.yaml"
}
send() {  # send CONFIG SOURCE N START — replay N demo records from START; exit code in REPLAY_RC
    gen_demo "$3" "$4" >"$W/send-$2-$4.jsonl"
    REPLAY_CONFIG=$W/a-$1.yaml replay "$2" "$W/send-$2-$4.jsonl" --timeout 20
}
alive() { kill -0 "$PID" 2>/dev/null || fail "the hub died"; }

acfg demo demo demo
send demo demo 5 1
[ "$REPLAY_RC" -eq 0 ] || fail "first replay: exit $REPLAY_RC"

# a source added
"$ADAPTER" keygen --out "$W/keys/demo2" >/dev/null
sed 's/^source: demo$/source: demo2/' "$ROOT/deploy/mappings/demo.yaml" >"$W/demo2.yaml"
printf '  - name: demo2\n    mapping: demo2.yaml\n    keys: [keys/demo2]\n' >>"$W/hub.yaml"
acfg demo2 demo2 demo2
send demo2 demo2 3 1
[ "$REPLAY_RC" -eq 3 ] || fail "a source not yet added got in (exit $REPLAY_RC)"
reload
grep -q "reload: source demo2 added" "$W/hub.log" || fail "no 'added' line"
send demo2 demo2 3 1
[ "$REPLAY_RC" -eq 0 ] || fail "added source: exit $REPLAY_RC"
[ "$(q "SELECT count(*) FROM events WHERE source = 'demo2'")" = 3 ] || fail "demo2 events not stored"
curl -sf "http://127.0.0.1:$PORT/metrics" | grep -qx 'civibus_hub_events_stored_total{source="demo2"} 3' \
    || fail "/metrics does not count demo2"
ok "a source added: its adapter gets in, 3 events stored, counted in /metrics"

# a key rotated: both keys, then the new one only
"$ADAPTER" keygen --out "$W/keys/demo_new" >/dev/null
sed -i 's|keys: \[keys/demo\]|keys: [keys/demo, keys/demo_new]|' "$W/hub.yaml"
reload
acfg demonew demo demo_new
send demonew demo 2 100
[ "$REPLAY_RC" -eq 0 ] || fail "the new key during the rotation: exit $REPLAY_RC"
send demo demo 2 200
[ "$REPLAY_RC" -eq 0 ] || fail "the old key during the rotation: exit $REPLAY_RC"
sed -i 's|keys: \[keys/demo, keys/demo_new\]|keys: [keys/demo_new]|' "$W/hub.yaml"
reload
send demo demo 2 300
[ "$REPLAY_RC" -eq 3 ] || fail "the old key after the rotation: exit $REPLAY_RC, expected 3 (refused)"
send demonew demo 2 400
[ "$REPLAY_RC" -eq 0 ] || fail "the new key after the rotation: exit $REPLAY_RC"
[ "$(q "SELECT count(*) FROM events WHERE source_record_id IN ('D-300','D-301')")" = 0 ] \
    || fail "the old key's events were stored"
ok "a key rotated: both keys in during the rotation, then the old one refused"

# a mapping changed: new events follow it
sed -i 's|service: {const: dechets}|service: {const: proprete}|' "$W/demo.yaml"
reload
send demonew demo 2 500
[ "$(q "SELECT string_agg(DISTINCT service, ',') FROM events WHERE source_record_id IN ('D-500','D-501')")" = proprete ] \
    || fail "the new mapping was not used"
[ "$(q "SELECT string_agg(DISTINCT service, ',') FROM events WHERE source_record_id = 'D-1'")" = dechets ] \
    || fail "stored events changed"
ok "a mapping changed: new events follow it, stored ones stay"

# careless edits: a broken mapping, then a broken hub.yaml — logged with file:line, nothing changes
cp "$W/demo.yaml" "$W/demo.yaml.good"
sed -i 's|^      status:$|      status: [|' "$W/demo.yaml"
reload
grep -qE "reload: .*demo\.yaml:[0-9]+: .*running configuration is kept" "$W/hub.log" \
    || fail "a broken mapping: $(grep reload: "$W/hub.log" | tail -n1)"
send demonew demo 2 600
[ "$REPLAY_RC" -eq 0 ] || fail "after a broken mapping: exit $REPLAY_RC"
[ "$(q "SELECT string_agg(DISTINCT service, ',') FROM events WHERE source_record_id = 'D-600'")" = proprete ] \
    || fail "the running mapping was lost"
cp "$W/demo.yaml.good" "$W/demo.yaml"
cp "$W/hub.yaml" "$W/hub.yaml.good"
printf '  - name: demo2\n    mapping: demo2.yaml\n    keys: [keys/demo2]\n' >>"$W/hub.yaml"   # listed twice
sed -i 's|keys: \[keys/demo_new\]|keys: [keys/demo]|' "$W/hub.yaml"          # and a key changed
reload
grep -qE "reload: .*hub\.yaml:[0-9]+: .*listed twice.*running configuration is kept" "$W/hub.log" \
    || fail "a broken hub.yaml: $(grep reload: "$W/hub.log" | tail -n1)"
send demo demo 1 700
[ "$REPLAY_RC" -eq 3 ] || fail "a broken file's key change was applied (exit $REPLAY_RC)"
cp "$W/hub.yaml.good" "$W/hub.yaml"
alive
ok "a broken mapping or hub.yaml: file:line logged, the running configuration kept"

# what only a restart applies is named and kept
sed -i 's|^  batch_max_events: .*|  batch_max_events: 7|' "$W/hub.yaml"
reload
grep -q "reload: changed, but only a restart applies it (the running value is kept): store" "$W/hub.log" \
    || fail "no restart warning: $(grep reload: "$W/hub.log" | tail -n3)"
ok "a restart-only change named: $(grep 'only a restart' "$W/hub.log" | tail -n1 | sed 's/.*reload: //')"

# a source removed: its adapter is refused, its stored events stay
sed -i '/- name: demo2/,+2d' "$W/hub.yaml"
reload
grep -q "reload: source demo2 removed" "$W/hub.log" || fail "no 'removed' line"
send demo2 demo2 2 800
[ "$REPLAY_RC" -eq 3 ] || fail "a removed source got in (exit $REPLAY_RC)"
[ "$(q "SELECT count(*) FROM events WHERE source = 'demo2'")" = 3 ] || fail "demo2's events changed"
# and back again
printf '  - name: demo2\n    mapping: demo2.yaml\n    keys: [keys/demo2]\n' >>"$W/hub.yaml"
reload
grep -q "reload: source demo2 is back" "$W/hub.log" || fail "no 'is back' line"
send demo2 demo2 2 900
[ "$REPLAY_RC" -eq 0 ] || fail "a source back: exit $REPLAY_RC"
# what its adapter spooled while refused went in with the next run, once
[ "$(q "SELECT count(*) FROM events WHERE source = 'demo2' AND source_record_id IN ('D-800','D-801')")" = 2 ] \
    || fail "the records spooled while refused were not delivered once back"
ok "a source removed (refused, its events kept), then back (what it spooled meanwhile delivered)"

alive
[ "$(q "SELECT count(*) FROM events")" = "$(q "SELECT count(DISTINCT (source, event_id)) FROM events")" ] || fail "an event twice"
# demo 15 (5, 2 × 5 runs), demo2 7 (3, 2 spooled while removed, 2): 22
[ "$(q "SELECT count(*) FROM events")" = 22 ] || fail "events: $(q "SELECT count(*) FROM events"), expected 22"
[ "$(q "SELECT count(*) FROM dead_letters")" = 0 ] || fail "dead letters: $(q "SELECT count(*) FROM dead_letters")"
hub_stop || fail "the hub did not stop cleanly"
ok "one hub process all along, 22 events each once, no dead letter"
echo "PASS hub_reload"
