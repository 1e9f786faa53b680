-- functions/deadlines.sql — due dates by rule (docs/deadlines.md): the French
-- calendar of public holidays, computed (never listed), working-day arithmetic,
-- and the refresh of requests.due_at that cv_ingest runs for the requests of
-- each batch once rules are loaded (026_deadlines.sql, deploy/deadlines.yaml).
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

-- A public holiday in France (region 'france'), or in Alsace-Moselle
-- ('alsace-moselle': Vendredi saint and 26 December too). Lundi de Pentecôte
-- counts as a holiday (the "journée de solidarité" is the city's own choice).
CREATE OR REPLACE FUNCTION cv_is_holiday(p_day date, p_region text DEFAULT 'france') RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(p_day, 'MM-DD') IN ('01-01', '05-01', '05-08', '07-14', '08-15', '11-01', '11-11', '12-25')
        OR p_day - cv_easter(extract(year FROM p_day)::int) IN (1, 39, 50)  -- Pâques, Ascension, Pentecôte (Mondays, Thursday)
        OR (p_region = 'alsace-moselle'
            AND (to_char(p_day, 'MM-DD') = '12-26'
                 OR p_day - cv_easter(extract(year FROM p_day)::int) = -2))  -- Vendredi saint
$$;

-- Monday to Friday, not a public holiday.
CREATE OR REPLACE FUNCTION cv_is_working_day(p_day date, p_region text DEFAULT 'france') RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT extract(isodow FROM p_day) < 6 AND NOT cv_is_holiday(p_day, p_region)
$$;

-- The n-th working day after p_day (p_day itself for n = 0).
CREATE OR REPLACE FUNCTION cv_add_working_days(p_day date, p_n int, p_region text DEFAULT 'france')
RETURNS date LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    d date := p_day;
    left_ int := p_n;
BEGIN
    WHILE left_ > 0 LOOP
        d := d + 1;
        IF cv_is_working_day(d, p_region) THEN
            left_ := left_ - 1;
        END IF;
    END LOOP;
    RETURN d;
END $$;

-- A due date: p_start plus p_days calendar or working days, at the same time of
-- day in Paris.
CREATE OR REPLACE FUNCTION cv_deadline_due(p_start timestamptz, p_days int, p_calendar text,
                                           p_region text DEFAULT 'france')
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT (local + (CASE WHEN p_calendar = 'working'
                          THEN cv_add_working_days(local::date, p_days, p_region) - local::date
                          ELSE p_days END) * interval '1 day') AT TIME ZONE 'Europe/Paris'
    FROM (SELECT p_start AT TIME ZONE 'Europe/Paris' AS local) s
$$;

-- Recomputes requests.due_at, due_kind and paused_seconds of the given requests:
--   * the source's due date: the latest event (occurred_at, id) that gives one
--     wins, as sent ('source');
--   * else the rule of (category, channel) — exact, then the category's, then
--     the channel's, then the default — from requested_at (or the first event),
--     plus the time spent in waiting_citizen spans already closed ('rule');
--   * else none.
-- Does nothing while no rules are loaded (deadline_config empty): due_at stays
-- the latest event's, as before 026.
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
