-- functions/deadlines.sql — due dates by rule (docs/deadlines.md): the French
-- calendar of public holidays, computed (never listed), working-day arithmetic,
-- and the refresh of requests.due_at that cv_ingest runs for the requests of
-- each batch once rules are loaded (024_deadlines.sql, deploy/deadlines.yaml).
--
-- In SQL rather than in C: the store is where a due date is written, in the
-- batch's transaction, and the same functions serve the hub's ingest, the API's
-- Open311 POST (it calls cv_ingest too), a reload of the rules, and anyone with
-- psql who wants to know whether 2024-05-09 is a working day.
--
-- Dates are days of Europe/Paris: a request registered at 23:30 UTC on 30 April
-- was registered on 1 May in the city.
--
-- A repeatable file (docs/schema.md, "Functions"): edit the functions here.

-- Easter Sunday of a Gregorian year (the anonymous algorithm, Meeus/Jones/Butcher).
CREATE OR REPLACE FUNCTION cv_easter(p_year int) RETURNS date
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    a int := p_year % 19;
    b int := p_year / 100;
    c int := p_year % 100;
    d int := b / 4;
    e int := b % 4;
    f int := (b + 8) / 25;
    g int := (b - f + 1) / 3;
    h int := (19 * a + b - d - g + 15) % 30;
    i int := c / 4;
    k int := c % 4;
    l int := (32 + 2 * e + 2 * i - h - k) % 7;
    m int := (a + 11 * h + 22 * l) / 451;
BEGIN
    RETURN make_date(p_year, (h + l - 7 * m + 114) / 31, (h + l - 7 * m + 114) % 31 + 1);
END $$;

-- The public holidays of a year in France (region 'france'): 1 January, lundi de Pâques,
-- 1 May, 8 May, Ascension, lundi de Pentecôte, 14 July, 15 August, 1 November,
-- 11 November, 25 December; in Alsace-Moselle ('alsace-moselle') Vendredi saint and
-- 26 December too. Lundi de Pentecôte counts as a holiday (whether the "journée de
-- solidarité" is worked that day is the city's own choice).
CREATE OR REPLACE FUNCTION cv_holidays(p_year int, p_region text DEFAULT 'france') RETURNS date[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    ea date := cv_easter(p_year);
BEGIN
    RETURN ARRAY[make_date(p_year, 1, 1), ea + 1, make_date(p_year, 5, 1), make_date(p_year, 5, 8),
                 ea + 39, ea + 50, make_date(p_year, 7, 14), make_date(p_year, 8, 15),
                 make_date(p_year, 11, 1), make_date(p_year, 11, 11), make_date(p_year, 12, 25)]
           || CASE WHEN p_region = 'alsace-moselle'
                   THEN ARRAY[ea - 2, make_date(p_year, 12, 26)] ELSE '{}'::date[] END;
END $$;

-- A public holiday (cv_holidays).
CREATE OR REPLACE FUNCTION cv_is_holiday(p_day date, p_region text DEFAULT 'france') RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_day = ANY (cv_holidays(extract(year FROM p_day)::int, p_region))
$$;

-- Monday to Friday, not a public holiday.
CREATE OR REPLACE FUNCTION cv_is_working_day(p_day date, p_region text DEFAULT 'france') RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT extract(isodow FROM p_day) < 6 AND NOT cv_is_holiday(p_day, p_region)
$$;

-- The n-th working day after p_day (p_day itself for n <= 0). Arithmetic, not a walk
-- day by day (a batch of 1,000 requests dates them all): n weekdays on from p_day (a
-- weekend start counts from the Friday before), then as many more as there are
-- weekday holidays in between, until that count stops growing (two or three rounds).
-- The holidays are those of cv_holidays, for the years the delay can reach.
CREATE OR REPLACE FUNCTION cv_add_working_days(p_day date, p_n int, p_region text DEFAULT 'france')
RETURNS date LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    dw int := extract(isodow FROM p_day);
    d0 date := CASE WHEN dw > 5 THEN p_day - (dw - 5) ELSE p_day END;
    dw0 int := LEAST(dw, 5);
    hol date[] := '{}';
    y int;
    k int;
    e date;
    h int := 0;
    h2 int;
    x date;
BEGIN
    IF p_n IS NULL OR p_n <= 0 THEN
        RETURN p_day;
    END IF;
    -- n working days span at most 7n/5 + 2 days, plus two per holiday (13 a year at most)
    FOR y IN extract(year FROM p_day)::int .. extract(year FROM p_day + 2 * p_n + 30)::int LOOP
        hol := hol || cv_holidays(y, p_region);
    END LOOP;
    LOOP
        k := p_n + h;
        e := d0 + 7 * (k / 5) + k % 5 + CASE WHEN dw0 + k % 5 > 5 THEN 2 ELSE 0 END;
        h2 := 0;
        FOREACH x IN ARRAY hol LOOP
            IF x > p_day AND x <= e AND extract(isodow FROM x) < 6 THEN
                h2 := h2 + 1;
            END IF;
        END LOOP;
        EXIT WHEN h2 = h;
        h := h2;
    END LOOP;
    RETURN e;
END $$;

-- A due date: p_start plus p_days calendar or working days, at the same time of
-- day in Paris.
CREATE OR REPLACE FUNCTION cv_deadline_due(p_start timestamptz, p_days int, p_calendar text,
                                           p_region text DEFAULT 'france')
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
DECLARE
    local timestamp := p_start AT TIME ZONE 'Europe/Paris';
BEGIN
    IF p_calendar = 'working' THEN
        RETURN (local + (cv_add_working_days(local::date, p_days, p_region) - local::date)
                        * interval '1 day') AT TIME ZONE 'Europe/Paris';
    END IF;
    RETURN (local + p_days * interval '1 day') AT TIME ZONE 'Europe/Paris';
END $$;

-- Recomputes requests.due_at, due_kind and paused_seconds of the given requests:
--   * the source's due date: the latest event (occurred_at, id) that gives one
--     wins, as sent ('source');
--   * else the rule of (category, channel) — exact, then the category's, then
--     the channel's, then the default — from requested_at (or the first event),
--     plus the time spent in waiting_citizen spans already closed ('rule');
--   * else none.
-- Does nothing while no rules are loaded (deadline_config empty): due_at stays
-- the latest event's, as before 024.
CREATE OR REPLACE FUNCTION cv_deadlines_refresh(p_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_region text;
    v_rows int;
BEGIN
    SELECT c.region INTO v_region FROM deadline_config c;
    IF NOT FOUND OR p_ids IS NULL OR cardinality(p_ids) = 0 THEN
        RETURN 0;
    END IF;
    UPDATE requests r
    SET due_at = x.due, due_kind = x.kind, paused_seconds = x.paused
    FROM (
        SELECT q.id, q.paused,
               CASE WHEN s.due_at IS NOT NULL THEN s.due_at
                    WHEN ru.days IS NOT NULL
                    THEN cv_deadline_due(COALESCE(q.requested_at, f.first_at), ru.days, ru.calendar, v_region)
                         + q.paused * interval '1 second' END AS due,
               CASE WHEN s.due_at IS NOT NULL THEN 'source'
                    WHEN ru.days IS NOT NULL THEN 'rule' END AS kind
        FROM (SELECT r0.id, r0.category, r0.channel, r0.requested_at,
                     (SELECT COALESCE(sum(extract(epoch FROM w.nxt - w.occurred_at)), 0)::bigint
                      FROM (SELECT e.status, e.occurred_at,
                                   lead(e.occurred_at) OVER (ORDER BY e.occurred_at, e.id) AS nxt
                            FROM events e WHERE e.request_id = r0.id) w
                      WHERE w.status = 'waiting_citizen' AND w.nxt IS NOT NULL) AS paused
              FROM requests r0 WHERE r0.id = ANY (p_ids)) q
        LEFT JOIN LATERAL (SELECT e.due_at FROM events e
                           WHERE e.request_id = q.id AND e.due_at IS NOT NULL
                           ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1) s ON true
        LEFT JOIN LATERAL (SELECT e.occurred_at AS first_at FROM events e
                           WHERE e.request_id = q.id
                           ORDER BY e.occurred_at, e.id LIMIT 1) f ON true
        LEFT JOIN LATERAL (SELECT d.days, d.calendar FROM deadline_rules d
                           WHERE d.category IN (COALESCE(q.category, ''), '')
                             AND d.channel IN (COALESCE(q.channel, ''), '')
                           ORDER BY d.category = '', d.channel = '' LIMIT 1) ru ON true
    ) x
    WHERE r.id = x.id
      AND (r.due_at IS DISTINCT FROM x.due OR r.due_kind IS DISTINCT FROM x.kind
           OR r.paused_seconds <> x.paused);
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END $$;

-- Loads the rules (the hub at start-up, from deploy/deadlines.yaml, already
-- checked): {"region": "france"|"alsace-moselle", "rules": [{"category": "",
-- "channel": "", "days": N, "calendar": "calendar"|"working"}, ...]}. When they
-- differ from the loaded ones, replaces them and recomputes the due dates of
-- every open request. NULL unloads them (due_at back to the latest event's on
-- the next event of each request). Returns the requests whose due date changed.
CREATE OR REPLACE FUNCTION cv_deadlines_set(p jsonb) RETURNS integer
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $$
DECLARE
    v_old jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- the store's writer lock: no batch in between
    SELECT c.rules INTO v_old FROM deadline_config c;
    IF p IS NOT DISTINCT FROM v_old THEN
        RETURN 0;
    END IF;
    DELETE FROM deadline_rules;
    DELETE FROM deadline_config;
    IF p IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO deadline_config (region, rules) VALUES (COALESCE(p->>'region', 'france'), p);
    INSERT INTO deadline_rules (category, channel, days, calendar)
    SELECT COALESCE(x->>'category', ''), COALESCE(x->>'channel', ''), (x->>'days')::int,
           COALESCE(x->>'calendar', 'calendar')
    FROM jsonb_array_elements(p->'rules') x;
    RETURN cv_deadlines_refresh(ARRAY(
        SELECT r.id FROM requests r
        WHERE r.status IN ('received', 'acknowledged', 'in_progress', 'waiting_citizen')));
END $$;
