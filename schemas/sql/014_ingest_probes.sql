-- 014_ingest_probes.sql — cv_ingest_core's outcome select probes only the elements
-- that need it (docs/performance.md, "Where the time goes (PostgreSQL)").
--
-- A LATERAL lookup whose condition names the element alone ("WHERE NOT w.fresh AND
-- e.source = w.source ...") is flattened by the planner into a join whose filter runs
-- after the index probe: the outcome select probed `events` for every fresh element
-- (nearly all of a batch) and `requests` for every new request, then threw the rows
-- away (auto_explain on a 1,000-event batch: "Rows Removed by Join Filter: 1000", and
-- 260). `LIMIT 1` keeps each lookup a subquery, where such a condition is a one-time
-- filter tested before the probe; both lookups are by a unique key, so it changes no
-- answer. Side by side (BENCH_PGSS=1, 300,000 events, four pairs): the outcome select
-- 2.9-3.2 -> 1.2-1.3 us per event. The plan's lookups of request_sources and
-- citizen_sources have the same shape but skip only the few elements that are not
-- fresh; there, LIMIT 1 cost more than it saved (the plan 11.3 -> 11.8-11.9 us per
-- event in two pairs), so they stay as they were.
--
-- Redefined whole from 006, unchanged otherwise; the design notes are 002's.

CREATE OR REPLACE FUNCTION cv_ingest_core(
    p_idx int[], p_source text[], p_hash text[], p_citizen_key text[], p_codes bytea,
    p_event_id text[], p_kind text[], p_record_id text[], p_request_ref text[],
    p_service text[], p_category text[], p_channel text[], p_status text[],
    p_source_status text[], p_source_channel text[], p_occurred_at text[], p_due_at text[],
    p_summary text[], p_extra text[], p_citizen text[], p_raw text[])
RETURNS TABLE (o_idx int, o_outcome text, o_event_seq bigint, o_request_id bigint,
               o_tracking_code text, o_flagged boolean)
LANGUAGE plpgsql
-- Every join here is "a batch x an index probe": never hash or merge a
-- whole table, whatever the planner guesses about the batch's size.
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
DECLARE
    v_in       cv_item[];
    v_data     cv_data[];
    v_plan     cv_plan[];
    v_req_base bigint;
    v_cit_base bigint;
    v_last_req bigint;
    v_last_cit bigint;
    v_expected int;
    v_done     int := 0;
    v_rows     int;
    v_tries    int := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- 'civb', 2: the store's writer lock

    -- 1. Parse.
    v_in := ARRAY(
        SELECT ROW(u.idx, u.source, u.hash, u.citizen_key, u.event_id, u.kind,
                   u.record_id, u.request_ref, u.service, u.category, u.channel, u.status,
                   u.source_status, u.source_channel, u.occurred_at::timestamptz,
                   u.due_at::timestamptz)::cv_item
        FROM unnest(p_idx, p_source, p_hash, p_citizen_key, p_event_id, p_kind,
                    p_record_id, p_request_ref, p_service, p_category, p_channel, p_status,
                    p_source_status, p_source_channel, p_occurred_at, p_due_at)
             AS u(idx, source, hash, citizen_key, event_id, kind, record_id,
                  request_ref, service, category, channel, status, source_status,
                  source_channel, occurred_at, due_at));
    v_data := ARRAY(
        SELECT ROW(u.raw, u.summary, u.extra, u.citizen)::cv_data
        FROM unnest(p_raw, p_summary, p_extra, p_citizen) AS u(raw, summary, extra, citizen));

    -- 2. Plan (narrow rows). New ids: base + dense rank of the new key.
    v_req_base := cv_next_id('requests_id_seq');
    v_cit_base := cv_next_id('citizens_id_seq');
    v_plan := ARRAY(
        WITH base AS (          -- lookups are LATERAL: one index probe per element
            SELECT i.idx, i.source, i.event_id, i.source_record_id, i.citizen_key,
                   i.status, i.occurred_at,
                   row_number() OVER (PARTITION BY i.source, i.event_id ORDER BY i.idx) = 1
                   AND stored.id IS NULL AS fresh
            FROM unnest(v_in) i
            LEFT JOIN LATERAL (SELECT e.id FROM events e
                               WHERE e.source = i.source AND e.event_id = i.event_id) stored ON true
        ), looked AS (
            SELECT b.*, rs.request_id AS old_request, cs.citizen_id AS old_citizen
            FROM base b
            LEFT JOIN LATERAL (SELECT rs.request_id FROM request_sources rs
                               WHERE b.fresh AND rs.source = b.source
                                 AND rs.source_record_id = b.source_record_id) rs ON true
            LEFT JOIN LATERAL (SELECT cs.citizen_id FROM citizen_sources cs
                               WHERE b.fresh AND cs.source = b.source
                                 AND cs.source_citizen_id = b.citizen_key) cs ON true
        ), ranked AS (
            -- One sort per key kind serves its rank, the in-batch predecessor
            -- and "latest of its key". A request has a single source record
            -- for now, so the record key also groups the request.
            SELECT l.*,
                   dense_rank() OVER (PARTITION BY l.fresh, l.old_request IS NULL
                                      ORDER BY l.source, l.source_record_id) AS request_rank,
                   lag(l.status) OVER wr AS batch_prev_status,
                   lag(l.occurred_at) OVER wr AS batch_prev_at,
                   lead(l.idx) OVER wr IS NULL AS last_of_record,
                   dense_rank() OVER (PARTITION BY l.fresh, l.old_citizen IS NULL, l.citizen_key IS NULL
                                      ORDER BY l.source, l.citizen_key) AS citizen_rank,
                   lead(l.idx) OVER wc IS NULL AS last_of_citizen
            FROM looked l
            WINDOW wr AS (PARTITION BY l.fresh, l.old_request IS NULL, l.source, l.source_record_id
                          ORDER BY l.occurred_at, l.idx),
                   wc AS (PARTITION BY l.fresh, l.old_citizen IS NULL, l.citizen_key IS NULL,
                                       l.source, l.citizen_key
                          ORDER BY l.occurred_at, l.idx)
        ), judged AS (          -- status in effect just before: stored timeline or batch
            SELECT r.*,
                   CASE WHEN r.batch_prev_at IS NOT NULL
                             AND (s.occurred_at IS NULL OR r.batch_prev_at >= s.occurred_at)
                        THEN r.batch_prev_status ELSE s.status END AS prev_status
            FROM ranked r
            LEFT JOIN LATERAL (
                SELECT e.status, e.occurred_at FROM events e
                WHERE r.fresh AND r.old_request IS NOT NULL AND e.request_id = r.old_request
                  AND e.occurred_at <= r.occurred_at
                ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1) s ON true
        )
        SELECT ROW(j.fresh,
                   CASE WHEN j.fresh THEN nextval('events_id_seq') END,  -- after the sort: batch order
                   CASE WHEN j.fresh THEN COALESCE(j.old_request, v_req_base + j.request_rank - 1) END,
                   j.fresh AND j.old_request IS NULL,
                   CASE WHEN j.fresh AND j.old_request IS NULL    -- p_codes: 10 bytes per code
                        THEN convert_from(substring(p_codes FROM (j.request_rank * 10 - 9)::int FOR 10),
                                          'UTF8') END,
                   j.fresh AND j.last_of_record,
                   CASE WHEN j.fresh AND j.citizen_key IS NOT NULL
                        THEN COALESCE(j.old_citizen, v_cit_base + j.citizen_rank - 1) END,
                   j.fresh AND j.citizen_key IS NOT NULL AND j.old_citizen IS NULL,
                   j.fresh AND j.citizen_key IS NOT NULL AND j.last_of_citizen,
                   j.fresh AND j.prev_status IS NOT NULL AND j.prev_status <> j.status
                   AND NOT EXISTS (SELECT 1 FROM status_transitions t
                                   WHERE t.from_status = j.prev_status
                                     AND t.to_status = j.status))::cv_plan
        FROM judged j
        ORDER BY j.idx);

    -- Move the sequences past the ids just drawn.
    SELECT max(w.request_id) FILTER (WHERE w.new_request),
           max(w.citizen_id) FILTER (WHERE w.new_citizen),
           count(*) FILTER (WHERE w.new_request AND w.last_of_record)
    INTO v_last_req, v_last_cit, v_expected
    FROM unnest(v_plan) w;
    IF v_last_req IS NOT NULL THEN
        PERFORM setval('requests_id_seq', v_last_req);
    END IF;
    IF v_last_cit IS NOT NULL THEN
        PERFORM setval('citizens_id_seq', v_last_cit);
    END IF;

    -- 3. Write. w: an element with its plan (and its personal data). Rows
    -- per key come from its latest element: no sorting here.
    INSERT INTO citizens (id)
    SELECT w.citizen_id FROM unnest(v_plan) w WHERE w.new_citizen AND w.last_of_citizen;

    INSERT INTO citizen_sources (source, source_citizen_id, citizen_id, identity, identity_at)
    SELECT w.source, w.citizen_key, w.citizen_id, w.citizen::jsonb, w.occurred_at
    FROM unnest(v_in, v_plan, v_data) w
    WHERE w.new_citizen AND w.last_of_citizen;

    -- A known citizen's identity changes only for a block that differs and is
    -- not older than any stored event of that citizen from that source. The
    -- latest block of the batch that is not NULL counts: NULL is the hub's
    -- "known pair, block unchanged" (006), never an identity.
    UPDATE citizen_sources cs
    SET identity = l.citizen::jsonb, identity_at = l.occurred_at, updated_at = now()
    FROM (SELECT DISTINCT ON (w.source, w.citizen_key) w.source, w.citizen_key, w.citizen,
                 w.occurred_at
          FROM unnest(v_in, v_plan, v_data) w
          WHERE w.fresh AND w.citizen_key IS NOT NULL AND NOT w.new_citizen
            AND w.citizen IS NOT NULL
          ORDER BY w.source, w.citizen_key, w.occurred_at DESC, w.idx DESC) l
    WHERE cs.source = l.source AND cs.source_citizen_id = l.citizen_key
      AND cs.identity IS DISTINCT FROM l.citizen::jsonb
      AND (cs.identity_at IS NULL OR cs.identity_at <= l.occurred_at)
      AND NOT EXISTS (SELECT 1 FROM events e
                      WHERE e.citizen_id = cs.citizen_id AND e.source = cs.source
                        AND e.occurred_at > l.occurred_at);

    INSERT INTO events (id, source, event_id, content_hash, kind, request_id, source_record_id,
                        service, category, channel, status, source_status, source_channel,
                        occurred_at, due_at, transition_flagged, citizen_id)
    OVERRIDING SYSTEM VALUE
    SELECT w.event_seq, w.source, w.event_id, w.content_hash, w.kind, w.request_id,
           w.source_record_id, w.service, w.category, w.channel, w.status, w.source_status,
           w.source_channel, w.occurred_at, w.due_at, w.flagged, w.citizen_id
    FROM unnest(v_in, v_plan) w
    WHERE w.fresh;

    -- New requests take their latest element. A tracking code already taken
    -- skips the row (ON CONFLICT); the loop draws new codes for those.
    WHILE v_done < v_expected LOOP
        v_tries := v_tries + 1;
        IF v_tries > 10 THEN
            RAISE EXCEPTION 'cv_ingest: no free tracking code after 10 draws';
        END IF;
        INSERT INTO requests (id, tracking_code, service, category, channel, status,
                              status_occurred_at, status_event_id, due_at, citizen_id, request_ref)
        SELECT w.request_id,
               CASE WHEN v_tries = 1 AND w.tracking_code IS NOT NULL
                    THEN w.tracking_code ELSE cv_tracking_code() END,
               w.service, w.category, w.channel, w.status, w.occurred_at, w.event_seq,
               w.due_at, w.citizen_id, w.request_ref
        FROM unnest(v_in, v_plan) w
        WHERE w.new_request AND w.last_of_record
          AND (v_tries = 1 OR NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = w.request_id))
        ON CONFLICT (tracking_code) DO NOTHING;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_done := v_done + v_rows;
    END LOOP;

    INSERT INTO request_sources (source, source_record_id, request_id)
    SELECT w.source, w.source_record_id, w.request_id
    FROM unnest(v_in, v_plan) w WHERE w.new_request AND w.last_of_record;

    -- Known requests: the status moves only to an event later than the one
    -- in effect (occurred_at, then events.id); a late arrival changes nothing
    -- here. "later" is spelt out in each CASE.
    UPDATE requests r SET
        status             = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN w.status ELSE r.status END,
        status_occurred_at = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN w.occurred_at ELSE r.status_occurred_at END,
        due_at             = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN w.due_at ELSE r.due_at END,
        service            = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN COALESCE(w.service, r.service) ELSE r.service END,
        category           = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN COALESCE(w.category, r.category) ELSE r.category END,
        channel            = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN COALESCE(w.channel, r.channel) ELSE r.channel END,
        citizen_id         = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN COALESCE(w.citizen_id, r.citizen_id) ELSE r.citizen_id END,
        request_ref        = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN COALESCE(w.request_ref, r.request_ref) ELSE r.request_ref END,
        status_event_id    = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN w.event_seq ELSE r.status_event_id END,
        updated_at         = now()
    FROM unnest(v_in, v_plan) w
    WHERE w.fresh AND NOT w.new_request AND w.last_of_record AND r.id = w.request_id;

    -- Any flagged element flags its request (rare: touches flagged ones only).
    UPDATE requests r SET flagged = true, updated_at = now()
    FROM (SELECT DISTINCT w.request_id FROM unnest(v_plan) w WHERE w.flagged) f
    WHERE r.id = f.request_id AND NOT r.flagged;

    -- Personal data of the record: the latest version by occurred_at wins.
    INSERT INTO source_records AS sr (source, source_record_id, request_id, raw, summary, extra, record_at)
    SELECT w.source, w.source_record_id, w.request_id, w.raw::json, w.summary, w.extra::jsonb,
           w.occurred_at
    FROM unnest(v_in, v_plan, v_data) w
    WHERE w.last_of_record
    ON CONFLICT (source, source_record_id) DO UPDATE
        SET raw = EXCLUDED.raw, summary = EXCLUDED.summary, extra = EXCLUDED.extra,
            request_id = EXCLUDED.request_id, record_at = EXCLUDED.record_at, updated_at = now()
        WHERE sr.record_at <= EXCLUDED.record_at;

    -- 4. Outcomes. Fresh elements know their row (and a new request its
    -- code, unless it had to be redrawn); the others look it up.
    RETURN QUERY
    SELECT w.idx,
           CASE WHEN w.fresh THEN 'stored'
                WHEN e.content_hash = w.content_hash THEN 'duplicate'
                ELSE 'id_reused' END,
           COALESCE(w.event_seq, e.id), COALESCE(e.request_id, w.request_id),
           COALESCE(r.tracking_code, w.tracking_code), COALESCE(e.transition_flagged, w.flagged)
    FROM unnest(v_in, v_plan) w
    LEFT JOIN LATERAL (SELECT e.id, e.request_id, e.content_hash, e.transition_flagged
                       FROM events e
                       WHERE NOT w.fresh AND e.source = w.source AND e.event_id = w.event_id
                       LIMIT 1) e ON true
    LEFT JOIN LATERAL (SELECT r.tracking_code FROM requests r
                       WHERE NOT (w.new_request AND v_tries = 1)
                         AND r.id = COALESCE(e.request_id, w.request_id)
                       LIMIT 1) r ON true
    ORDER BY w.idx;
END $fn$;
