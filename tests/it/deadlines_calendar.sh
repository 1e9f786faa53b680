#!/usr/bin/env bash
# The calendar of schemas/sql/functions/deadlines.sql, alone (a unit test of SQL functions:
# the file loaded into an empty database, no hub): Easter Sunday for known years and, against
# python-dateutil's own algorithm, every year 1900-2200; the Easter-based holidays (lundi de
# Pâques, Ascension, lundi de Pentecôte) and the fixed ones; Alsace-Moselle's Vendredi saint
# and 26 December; working-day arithmetic across 1 May, 8 May and Ascension 2024.
. "$(dirname "$0")/lib.sh"
export PGTZ=UTC
W=$(mktemp -d "${CIVIBUS_TEST_TMP:-/tmp}/it-deadlines_calendar.XXXXXX")
DB="it_deadlines_calendar_$$"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null || fail "create database"
at_exit 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1; rm -rf "$W"'
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$ROOT/schemas/sql/functions/deadlines.sql" >/dev/null \
    || fail "functions/deadlines.sql does not load"

for e in 2024-03-31 2025-04-20 2026-04-05 2038-04-25 2000-04-23 2019-04-21 2011-04-24 1818-03-22 2285-03-22; do
    got=$(q "select cv_easter(${e%%-*})")
    [ "$got" = "$e" ] || fail "Easter ${e%%-*}: $got, expected $e"
done
ok "Easter: 2024-03-31, 2025-04-20, 2026-04-05, 2038-04-25 and others (the earliest, 22 March)"

python3 -c 'import dateutil.easter as e
for y in range(1900, 2201): print(y, e.easter(y))' >"$W/easter.ref" 2>/dev/null
if [ -s "$W/easter.ref" ]; then
    q "select y || ' ' || cv_easter(y) from generate_series(1900, 2200) y" >"$W/easter.sql"
    diff -q "$W/easter.ref" "$W/easter.sql" >/dev/null || fail "Easter differs from dateutil: $(diff "$W/easter.ref" "$W/easter.sql" | head -3)"
    ok "Easter 1900-2200 matches python-dateutil"
fi

# every holiday of 2024 and 2025, as computed (France, then Alsace-Moselle)
hol() { q "select string_agg(to_char(d, 'MM-DD'), ' ' order by d) from generate_series('$1-01-01'::date, '$1-12-31', '1 day') d where cv_is_holiday(d::date, '$2')"; }
[ "$(hol 2024 france)" = "01-01 04-01 05-01 05-08 05-09 05-20 07-14 08-15 11-01 11-11 12-25" ] || fail "2024: $(hol 2024 france)"
[ "$(hol 2025 france)" = "01-01 04-21 05-01 05-08 05-29 06-09 07-14 08-15 11-01 11-11 12-25" ] || fail "2025: $(hol 2025 france)"
[ "$(hol 2026 france)" = "01-01 04-06 05-01 05-08 05-14 05-25 07-14 08-15 11-01 11-11 12-25" ] || fail "2026: $(hol 2026 france)"
ok "11 holidays a year: lundi de Pâques 2024-04-01, Ascension 2024-05-09 / 2025-05-29, lundi de Pentecôte 2024-05-20 / 2025-06-09"
[ "$(hol 2024 alsace-moselle)" = "01-01 03-29 04-01 05-01 05-08 05-09 05-20 07-14 08-15 11-01 11-11 12-25 12-26" ] \
    || fail "Alsace-Moselle 2024: $(hol 2024 alsace-moselle)"
[ "$(hol 2025 alsace-moselle | cut -d' ' -f2)" = 04-18 ] || fail "Vendredi saint 2025"
ok "Alsace-Moselle: Vendredi saint (2024-03-29, 2025-04-18) and 26 December too"

wd() { q "select cv_add_working_days('$1', $2, '${3:-france}')"; }
[ "$(wd 2024-04-29 5)" = 2024-05-07 ] || fail "29 Apr 2024 + 5 working days: $(wd 2024-04-29 5)"
[ "$(wd 2024-05-06 5)" = 2024-05-15 ] || fail "6 May 2024 + 5 (8 May, Ascension): $(wd 2024-05-06 5)"
[ "$(wd 2024-04-29 10)" = 2024-05-16 ] || fail "29 Apr 2024 + 10: $(wd 2024-04-29 10)"
[ "$(wd 2024-05-17 1)" = 2024-05-21 ] || fail "Fri 17 May 2024 + 1 (Pentecôte): $(wd 2024-05-17 1)"
[ "$(wd 2024-03-28 1)" = 2024-03-29 ] || fail "28 Mar 2024 + 1 (Vendredi saint is worked): $(wd 2024-03-28 1)"
[ "$(wd 2024-03-28 1 alsace-moselle)" = 2024-04-02 ] || fail "28 Mar 2024 + 1 in Alsace"
[ "$(wd 2024-03-27 1 alsace-moselle)" = 2024-03-28 ] || fail "27 Mar 2024 + 1 in Alsace"
[ "$(wd 2024-03-28 0)" = 2024-03-28 ] || fail "+ 0"
[ "$(wd 2024-12-24 1 alsace-moselle)" = 2024-12-27 ] || fail "24 Dec 2024 + 1 in Alsace"
[ "$(wd 2024-12-24 1)" = 2024-12-26 ] || fail "24 Dec 2024 + 1"
ok "working days: 29 Apr 2024 + 10 = 16 May (1 May, 8 May, Ascension skipped), weekends and Pentecôte skipped"

# cv_add_working_days is arithmetic; against a walk day by day over cv_is_working_day
q "create function walk(d date, n int, r text) returns date language plpgsql as \$\$
   declare x date := d; l int := n; begin
   while l > 0 loop x := x + 1; if cv_is_working_day(x, r) then l := l - 1; end if; end loop;
   return x; end \$\$" >/dev/null
bad=$(q "select count(*) from generate_series('2023-12-01'::date, '2027-01-31', '1 day') d,
         (select generate_series(0, 25) union select generate_series(30, 400, 37)) n(n),
         (values ('france'), ('alsace-moselle')) r(r)
         where cv_add_working_days(d::date, n, r) <> walk(d::date, n, r)")
[ "$bad" = 0 ] || fail "cv_add_working_days differs from a day-by-day walk $bad times"
ok "working days: every start of Dec 2023 - Jan 2027, 0-25 and up to 400 days, both regions, as a day-by-day walk"

# a due date: same time of day in Paris, across the change to summer time
[ "$(q "select cv_deadline_due('2024-03-29 09:00+00', 2, 'working')")" = "2024-04-03 08:00:00+00" ] \
    || fail "due across summer time: $(q "select cv_deadline_due('2024-03-29 09:00+00', 2, 'working')")"
[ "$(q "select cv_deadline_due('2024-04-30 22:30+00', 1, 'working')")" = "2024-05-01 22:30:00+00" ] \
    || fail "a request of 1 May (Paris) at 00:30: $(q "select cv_deadline_due('2024-04-30 22:30+00', 1, 'working')")"
[ "$(q "select cv_deadline_due('2024-04-29 08:15+00', 15, 'calendar')")" = "2024-05-14 08:15:00+00" ] || fail "calendar days"
ok "due dates keep the time of day in Paris (summer time and lundi de Pâques, a request of 1 May after midnight)"
