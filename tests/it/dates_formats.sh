#!/usr/bin/env bash
# Dates as exports write them, through the whole chain (replay → hub → PostgreSQL): a US
# 311 export's "04/12/2018 11:11:26 AM" in America/Chicago, with AM, PM, 12 AM (midnight)
# and 12 PM (noon) rows on both sides of both daylight-saving changes of 2018, a French
# month name read in Europe/Paris, and a spreadsheet's Excel serial dates. Every stored
# occurred_at / due_at is compared with the instant computed by hand; a row whose hour
# does not fit the 12-hour clock and Excel's 29/02/1900 are dead-lettered as bad_date,
# with a detail naming the path, the format and the part, never the value.
. "$(dirname "$0")/lib.sh"
M=$(mktemp -d /tmp/it-dates-mappings.XXXXXX)
at_exit 'rm -rf "$M"'
cat >"$M/us311.yaml" <<'YAML'
mapping_version: 1
source: us311
timezone: America/Chicago
rules:
  - kind: sr
    fields:
      source_record_id: {path: id}
      service: {const: voirie}
      status: {const: received}
      occurred_at: {path: created, format: "%m/%d/%Y %I:%M:%S %p"}
      due_at: {path: echeance, format: "%d %B %Y %Hh%M", timezone: Europe/Paris}
YAML
cat >"$M/tableur.yaml" <<'YAML'
mapping_version: 1
source: tableur
timezone: Europe/Paris
rules:
  - kind: ligne
    fields:
      source_record_id: {path: id}
      service: {const: dechets}
      status: {const: received}
      occurred_at: {path: date, format: excel}
YAML
it_setup dates_formats "us311:$M/us311.yaml" "tableur:$M/tableur.yaml"
hub_start

# id, created (Chicago), expected UTC. 2018-03-11 02:00 CST (-6) jumps to 03:00 CDT (-5);
# 2018-11-04 02:00 CDT falls back to 01:00 CST.
cases=(
    "am|03/10/2018 11:11:26 AM|2018-03-10T17:11:26Z"
    "pm|03/10/2018 11:11:26 PM|2018-03-11T05:11:26Z"
    "midnight|03/11/2018 12:00:00 AM|2018-03-11T06:00:00Z"
    "before-jump|03/11/2018 01:59:59 AM|2018-03-11T07:59:59Z"
    "in-gap|03/11/2018 02:30:00 AM|2018-03-11T08:30:00Z"
    "after-jump|03/11/2018 03:00:00 AM|2018-03-11T08:00:00Z"
    "noon-summer|03/11/2018 12:00:00 PM|2018-03-11T17:00:00Z"
    "midnight-05|04/12/2018 12:05:00 AM|2018-04-12T05:05:00Z"
    "noon-05|04/12/2018 12:05:00 PM|2018-04-12T17:05:00Z"
    "single-digits|4/3/2018 9:05:00 pm|2018-04-04T02:05:00Z"
    "repeated-first|11/04/2018 01:30:00 AM|2018-11-04T06:30:00Z"
    "after-fallback|11/04/2018 02:30:00 AM|2018-11-04T08:30:00Z"
    "noon-winter|11/04/2018 12:15:00 P.M.|2018-11-04T18:15:00Z"
    "last-second|12/31/2018 11:59:59 PM|2019-01-01T05:59:59Z"
)
: >"$W/us311.jsonl"
for c in "${cases[@]}"; do
    IFS='|' read -r id created _ <<<"$c"
    printf '{"id": "%s", "created": "%s", "echeance": "14 févr. 2024 9h30"}\n' "$id" "$created" >>"$W/us311.jsonl"
done
echo '{"id": "bad-hour", "created": "03/11/2018 13:00:00 PM"}' >>"$W/us311.jsonl"
echo '{"id": "no-meridiem", "created": "03/11/2018 10:00:00"}' >>"$W/us311.jsonl"
replay us311 "$W/us311.jsonl" --timeout 60
[ "$REPLAY_RC" -eq 0 ] || fail "us311 replay exit $REPLAY_RC: $(cat "$W/replay.out")"
grep -qx "sent $((${#cases[@]} + 2)) acked ${#cases[@]} nacked 2" "$W/replay.out" \
    || fail "us311 replay said: $(cat "$W/replay.out")"

utc() { q "select to_char($1 at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') from events where source = '$2' and source_record_id = '$3'"; }
for c in "${cases[@]}"; do
    IFS='|' read -r id created want <<<"$c"
    got=$(utc occurred_at us311 "$id")
    [ "$got" = "$want" ] || fail "'$created' (Chicago) stored as '$got', expected '$want'"
done
ok "${#cases[@]} US 12-hour rows (AM, PM, 12 AM, 12 PM, both DST changes) stored at the right instant"

[ "$(q "select count(distinct due_at) || ' ' || to_char(min(due_at) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') from events where source = 'us311'")" = "1 2024-02-14T08:30:00Z" ] \
    || fail "'14 févr. 2024 9h30' (Paris) not stored as 2024-02-14T08:30:00Z"
ok "a French month name in Europe/Paris: 14 févr. 2024 9h30 = 2024-02-14T08:30:00Z"

details=$(q "select string_agg(reason || ': ' || detail, E'\n' order by detail) from dead_letters where source = 'us311'")
echo "$details" | grep -qF "bad_date: occurred_at: the value at path 'created' does not match format '%m/%d/%Y %I:%M:%S %p': an hour (%I) is outside 1-12 at character 12" \
    || fail "bad hour detail: $details"
echo "$details" | grep -qF "bad_date: occurred_at: the value at path 'created' does not match format '%m/%d/%Y %I:%M:%S %p': expected a space before '%p' at character 20 (the end of the text)" \
    || fail "missing AM/PM detail: $details"
echo "$details" | grep -qE "13:00|10:00|2018" && fail "a dead-letter detail holds the value: $details"
ok "an hour 13 PM and a missing AM/PM are dead-lettered bad_date, naming the part, not the value"

# Excel serials: days since 1899-12-30, the fraction the time of day, wall-clock Paris
cat >"$W/tableur.jsonl" <<'JSON'
{"id": "texte", "date": "43203.4652"}
{"id": "nombre", "date": 45365.75}
{"id": "virgule", "date": "45365,5"}
{"id": "entier", "date": 45292}
{"id": "bug-1900", "date": 60}
JSON
replay tableur "$W/tableur.jsonl" --timeout 60
grep -qx "sent 5 acked 4 nacked 1" "$W/replay.out" || fail "tableur replay said: $(cat "$W/replay.out")"
for c in "texte|2018-04-13T09:09:53Z" "nombre|2024-03-14T17:00:00Z" "virgule|2024-03-14T11:00:00Z" \
         "entier|2023-12-31T23:00:00Z"; do
    got=$(utc occurred_at tableur "${c%%|*}")
    [ "$got" = "${c#*|}" ] || fail "Excel row ${c%%|*} stored as '$got', expected '${c#*|}'"
done
q "select detail from dead_letters where source = 'tableur'" | grep -qF "occurred_at: the value at path 'date' is not a real date in format 'excel': Excel serial 60 is 29 February 1900" \
    || fail "serial 60: $(q "select detail from dead_letters where source = 'tableur'")"
ok "Excel serials (text, JSON number, decimal comma, whole day) stored; 60 (Excel's 29/02/1900) dead-lettered"

hub_stop || fail "hub exited non-zero on TERM"
