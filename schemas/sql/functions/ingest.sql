-- functions/ingest.sql — cv_ingest(...): the store's write path, set-based.
--
-- hub/store.c sends a batch of canonical events as parallel arrays, one per
-- field, in binary format (nothing for PostgreSQL to lex but the JSON it
-- stores: the raw record, validated as json, and the citizen block and
-- extra, converted to jsonb only for the rows actually written), and gets
-- one outcome row per element back. A batch of 1,000 events is one
-- round trip and about a dozen set-based statements:
--
--   1. parse: cast the fields (a value PostgreSQL refuses, e.g. an
--      impossible date, raises a class 22/23 error here or in a later
--      insert; the caller then isolates the bad element by bisection under
--      savepoints);
--   2. plan, per element: is it the first copy of a (source, event_id) not
--      stored yet ("fresh")? its request (request_sources, or a new id), its
--      citizen (citizen_sources, or a new id), the status in effect just
--      before it by occurred_at (stored timeline or earlier elements of the
--      batch), hence whether its status change leaves the lifecycle; and
--      its events.id, drawn in batch order;
--   3. write citizens, citizen_sources, events, requests (new ones with a
--      tracking code, known ones re-projected), request_sources,
--      source_records;
--   4. return for every element: stored / duplicate / id_reused, events.id,
--      requests.id, tracking code, transition flag.
--
-- Intermediate sets are plpgsql arrays aligned by position: v_in (narrow
-- fields), v_data (the wide personal data) and v_plan (step 2's result),
-- read back together with unnest(v_in, v_plan[, v_data]), which pairs them
-- element by element. They are never joined with each other (the planner
-- can only guess their sizes): every lookup is an index probe into a real
-- table, every grouping inside the batch a window function over narrow rows.
--
-- Single writer: the function takes a transaction-level advisory lock, so
-- two hubs serialise, events.id follows commit order, and new request and
-- citizen ids can be drawn as a block (see v_req_base).
--
-- cv_ingest itself resolves the batch's identities first (cv_identity_resolve,
-- functions/identity_resolve.sql), then runs cv_ingest_core, which does the steps above,
-- and reports per element whether its identity block is the stored one. The composite
-- types (cv_item, cv_data, cv_plan: 002_ingest.sql; cv_ingest_out: 010_identity_cache.sql)
-- stay in the numbered migrations.
--
-- cv_ingest's result gained o_identity_current in 010_identity_cache.sql, which dropped
-- and recreated it. Schema version 2 (020_model_v2.sql) added three arguments at the
-- end, with defaults (callers of the 21 first ones are unchanged): the older signatures
-- of cv_ingest and cv_ingest_core are dropped before they are defined. A NULL array
-- reads as NULL for every element (unnest pads the shorter arrays).
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.

-- A public tracking code: 10 characters from an alphabet without look-alikes
-- (no B/8, O/0/Q, I/1, S/5, G/6, Z/2), from a strong random source
-- (gen_random_uuid), without modulo bias (bytes >= 240 are skipped). The hub
-- sends candidates (libsodium); this draws a new one when a candidate is
-- already taken.
CREATE OR REPLACE FUNCTION cv_tracking_code() RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    alphabet CONSTANT text := 'ACDEFHJKLMNPRTUVWXY34679';
    code text := '';
    b bytea;
    v int;
BEGIN
    LOOP
        b := uuid_send(gen_random_uuid());
        FOR i IN 0..15 LOOP
            CONTINUE WHEN i = 6 OR i = 8;       -- UUID version and variant bits
            v := get_byte(b, i);
            CONTINUE WHEN v >= 240;             -- 240 = 10 * 24
            code := code || substr(alphabet, 1 + v % 24, 1);
            IF length(code) = 10 THEN
                RETURN code;
            END IF;
        END LOOP;
    END LOOP;
END $$;

-- A location as stored (source_records.location): latitude and longitude
-- rounded to 7 decimals (about 1 cm; the hub writes doubles with 17 digits,
-- 48.868600000000001 for 48.8686).
CREATE OR REPLACE FUNCTION cv_location(p jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p) <> 'object' THEN p
                ELSE p || jsonb_strip_nulls(jsonb_build_object(
                          'lat', trim_scale(round((p->>'lat')::numeric, 7)),
                          'lon', trim_scale(round((p->>'lon')::numeric, 7)))) END
$$;

-- A drawn code (10 characters) with its check character (023): the symbol c
-- such that sum((i + 1) * v_i, i = 0..9) + 11 * c = 0 modulo 29, v_i the
-- position of character i in the alphabet (29 is a prime above the alphabet's
-- 24 symbols, so any one wrong character and any two swapped ones change the
-- sum). When c would be past the alphabet (5 values in 29), the tenth drawn
-- character moves on by one until it is not: at most 24 steps, the code stays
-- as random as it was. api/api_util.c checks the same sum.
CREATE OR REPLACE FUNCTION cv_code_finish(p_code text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    alphabet CONSTANT text := 'ACDEFHJKLMNPRTUVWXY34679';
    v_sum int;
    v_last int := strpos(alphabet, substr(p_code, 10, 1)) - 1;
    v_c int;
BEGIN
    FOR k IN 0..23 LOOP
        v_sum := 0;
        FOR i IN 1..9 LOOP
            v_sum := v_sum + i * (strpos(alphabet, substr(p_code, i, 1)) - 1);
        END LOOP;
        v_sum := v_sum + 10 * ((v_last + k) % 24);
        v_c := ((29 - v_sum % 29) * 8) % 29;        -- 8 = 1 / 11 modulo 29
        IF v_c < 24 THEN
            RETURN substr(p_code, 1, 9) || substr(alphabet, 1 + (v_last + k) % 24, 1)
                   || substr(alphabet, 1 + v_c, 1);
        END IF;
    END LOOP;
    RAISE EXCEPTION 'cv_code_finish: no check character for a code';
END $$;

-- The next value nextval() would return, without drawing it. Only valid
-- under the writer lock (cv_ingest is the only user of these sequences).
CREATE OR REPLACE FUNCTION cv_next_id(seq regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
    v_called boolean;
BEGIN
    EXECUTE format('SELECT last_value, is_called FROM %s', seq) INTO v_last, v_called;
    RETURN CASE WHEN v_called THEN v_last + 1 ELSE v_last END;
END $$;

-- Threads (docs/intake.md, "E-mail"): step 0 of cv_ingest_core, run only for a batch
-- where an element's extra names one of two keys — written by the imap driver, honoured
-- for any source:
--   message_id_hash  the SHA-256 (hex) of the mail's own Message-ID, without <>;
--   thread           {"code": a tracking code, "message_ids": [hashes of the
--                     In-Reply-To and References Message-IDs, In-Reply-To first]}.
-- Returns
--   dup      the elements whose Message-ID is already stored for another record (the
--            same mail through a second mailbox, or after a UIDVALIDITY change; or
--            twice in this batch): cv_ingest_core leaves them out and answers
--            'duplicate' with the first copy's event;
--   thr_*    the replies: an element whose record is linked to no request yet and
--            whose thread names one — by its code (requests.tracking_code), else by
--            the first of its message_ids found in mail_threads (ours 'out' or a mail
--            received 'in') — is linked now (request_sources), so the plan finds the
--            request as for any known record; cv_ingest_core gives the event the
--            request's current status and does not re-project the request from it.
-- The code proves which request, not who wrote: the event keeps its own sender, and
-- the request's citizen is never changed by a reply.
CREATE OR REPLACE FUNCTION cv_ingest_threads(
    p_idx int[], p_source text[], p_event_id text[], p_record_id text[], p_extra text[],
    OUT dup int[], OUT dup_hash text[], OUT thr_idx int[], OUT thr_req bigint[])
LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
BEGIN
    WITH m AS (
        SELECT u.idx, u.source, u.event_id, u.record_id, x.j->>'message_id_hash' AS hash
        FROM unnest(p_idx, p_source, p_event_id, p_record_id, p_extra)
             AS u(idx, source, event_id, record_id, extra)
        CROSS JOIN LATERAL (SELECT u.extra::jsonb AS j) x
        WHERE u.idx IS NOT NULL AND strpos(u.extra, '"message_id_hash"') > 0
    ), n AS (                   -- not yet stored under its own (source, event_id)
        SELECT m.*,
               first_value(m.source) OVER h AS first_source,
               first_value(m.event_id) OVER h AS first_event
        FROM m
        WHERE m.hash ~ '^[0-9a-f]{64}$'
          AND NOT EXISTS (SELECT 1 FROM events e WHERE e.source = m.source AND e.event_id = m.event_id)
        WINDOW h AS (PARTITION BY m.hash ORDER BY m.idx)
    )
    SELECT array_agg(n.idx ORDER BY n.idx), array_agg(n.hash ORDER BY n.idx) INTO dup, dup_hash
    FROM n
    WHERE EXISTS (SELECT 1 FROM mail_threads mt WHERE mt.message_id_hash = n.hash AND mt.direction = 'in')
       OR (n.source, n.event_id) IS DISTINCT FROM (n.first_source, n.first_event);

    WITH m AS (
        SELECT u.idx, u.source, u.record_id, x.j->'thread' AS th
        FROM unnest(p_idx, p_source, p_record_id, p_extra) AS u(idx, source, record_id, extra)
        CROSS JOIN LATERAL (SELECT u.extra::jsonb AS j) x
        WHERE u.idx IS NOT NULL AND strpos(u.extra, '"thread"') > 0
          AND (dup IS NULL OR NOT u.idx = ANY(dup))
    ), found AS (
        SELECT DISTINCT ON (m.source, m.record_id) m.idx, m.source, m.record_id, f.request_id
        FROM m
        CROSS JOIN LATERAL (SELECT COALESCE(
            (SELECT r.id FROM requests r
             WHERE jsonb_typeof(m.th->'code') = 'string' AND r.tracking_code = m.th->>'code'),
            (SELECT mt.request_id
             FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(m.th->'message_ids') = 'array'
                                                 THEN m.th->'message_ids' ELSE '[]' END)
                  WITH ORDINALITY AS a(hash, k)
             JOIN mail_threads mt ON mt.message_id_hash = a.hash
             ORDER BY a.k LIMIT 1)) AS request_id) f
        WHERE jsonb_typeof(m.th) = 'object' AND f.request_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM request_sources rs
                          WHERE rs.source = m.source AND rs.source_record_id = m.record_id)
        ORDER BY m.source, m.record_id, m.idx
    ), linked AS (
        INSERT INTO request_sources (source, source_record_id, request_id)
        SELECT f.source, f.record_id, f.request_id FROM found f
        ON CONFLICT DO NOTHING
        RETURNING source_record_id
    )
    SELECT array_agg(f.idx), array_agg(f.request_id) INTO thr_idx, thr_req
    FROM found f
    WHERE EXISTS (SELECT 1 FROM linked l WHERE l.source_record_id = f.record_id);
END $fn$;

-- Steps 1-4 above. The outcome select's lookups keep LIMIT 1 (014_ingest_probes.sql
-- measured why): a lookup whose condition names the element alone stays a subquery,
-- whose condition is tested before the index probe.
DROP FUNCTION IF EXISTS cv_ingest_core(int[], text[], text[], text[], bytea, text[], text[], text[], text[],
    text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[]);
CREATE OR REPLACE FUNCTION cv_ingest_core(
    p_idx int[], p_source text[], p_hash text[], p_citizen_key text[], p_codes bytea,
    p_event_id text[], p_kind text[], p_record_id text[], p_request_ref text[],
    p_service text[], p_category text[], p_channel text[], p_status text[],
    p_source_status text[], p_source_channel text[], p_occurred_at text[], p_due_at text[],
    p_summary text[], p_extra text[], p_citizen text[], p_raw text[],
    p_requested_at text[] DEFAULT NULL, p_location text[] DEFAULT NULL, p_outcome text[] DEFAULT NULL)
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
    v_mail     boolean;         -- an element names a Message-ID hash or a thread
    v_dup      int[];           -- 0.: the same mail already stored (another mailbox)
    v_dup_hash text[];
    v_thr_idx  int[];           -- 0.: replies linked to their request
    v_thr_req  bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- 'civb', 2: the store's writer lock

    -- 0. Mails ("Threads" at the end of this file). One text search per
    -- element decides; nothing else runs for a batch without mails.
    v_mail := EXISTS (SELECT 1 FROM unnest(p_extra) x
                      WHERE strpos(x, '"message_id_hash"') > 0 OR strpos(x, '"thread"') > 0);
    IF v_mail THEN
        SELECT t.dup, t.dup_hash, t.thr_idx, t.thr_req INTO v_dup, v_dup_hash, v_thr_idx, v_thr_req
        FROM cv_ingest_threads(p_idx, p_source, p_event_id, p_record_id, p_extra) t;
    END IF;

    -- 1. Parse.
    v_in := ARRAY(
        SELECT ROW(u.idx, u.source, u.hash, u.citizen_key, u.event_id, u.kind,
                   u.record_id, u.request_ref, u.service, u.category, u.channel,
                   CASE WHEN v_thr_idx IS NOT NULL AND u.idx = ANY(v_thr_idx)   -- a reply: the request's status
                        THEN (SELECT r.status FROM requests r
                              WHERE r.id = v_thr_req[array_position(v_thr_idx, u.idx)])
                        ELSE u.status END,
                   u.source_status, u.source_channel, u.occurred_at::timestamptz,
                   u.due_at::timestamptz, u.requested_at::timestamptz,
                   u.outcome::json->>'code', u.outcome::json->>'reason',
                   u.outcome::json->>'related_ref')::cv_item
        FROM unnest(p_idx, p_source, p_hash, p_citizen_key, p_event_id, p_kind,
                    p_record_id, p_request_ref, p_service, p_category, p_channel, p_status,
                    p_source_status, p_source_channel, p_occurred_at, p_due_at,
                    p_requested_at, p_outcome)
             AS u(idx, source, hash, citizen_key, event_id, kind, record_id,
                  request_ref, service, category, channel, status, source_status,
                  source_channel, occurred_at, due_at, requested_at, outcome)
        WHERE u.idx IS NOT NULL AND (v_dup IS NULL OR NOT u.idx = ANY(v_dup)));
    v_data := ARRAY(
        SELECT ROW(u.raw, u.summary, u.extra, u.citizen, u.location)::cv_data
        FROM unnest(p_raw, p_summary, p_extra, p_citizen, p_location, p_idx)
             AS u(raw, summary, extra, citizen, location, idx)
        WHERE u.idx IS NOT NULL AND (v_dup IS NULL OR NOT u.idx = ANY(v_dup)));

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
                        THEN cv_code_finish(convert_from(substring(p_codes FROM (j.request_rank * 10 - 9)::int FOR 10),
                                                         'UTF8')) END,
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
                        occurred_at, due_at, transition_flagged, citizen_id,
                        requested_at, outcome, outcome_reason, outcome_ref)
    OVERRIDING SYSTEM VALUE
    SELECT w.event_seq, w.source, w.event_id, w.content_hash, w.kind, w.request_id,
           w.source_record_id, w.service, w.category, w.channel, w.status, w.source_status,
           w.source_channel, w.occurred_at, w.due_at, w.flagged, w.citizen_id,
           w.requested_at, w.outcome, w.outcome_reason, w.outcome_ref
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
                              status_occurred_at, status_event_id, due_at, citizen_id, request_ref,
                              requested_at, outcome, outcome_reason, outcome_ref)
        SELECT w.request_id,
               CASE WHEN v_tries = 1 AND w.tracking_code IS NOT NULL
                    THEN w.tracking_code ELSE cv_code_finish(cv_tracking_code()) END,
               w.service, w.category, w.channel, w.status, w.occurred_at, w.event_seq,
               w.due_at, w.citizen_id, w.request_ref, w.requested_at, w.outcome, w.outcome_reason,
               w.outcome_ref
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
        requested_at       = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN COALESCE(w.requested_at, r.requested_at)
                                  ELSE COALESCE(r.requested_at, w.requested_at) END,
        outcome_reason     = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                   AND w.outcome IS NOT NULL THEN w.outcome_reason ELSE r.outcome_reason END,
        outcome_ref        = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                   AND w.outcome IS NOT NULL THEN w.outcome_ref ELSE r.outcome_ref END,
        outcome            = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN COALESCE(w.outcome, r.outcome) ELSE r.outcome END,
        status_event_id    = CASE WHEN (w.occurred_at, w.event_seq) > (r.status_occurred_at, r.status_event_id)
                                  THEN w.event_seq ELSE r.status_event_id END,
        updated_at         = now()
    FROM unnest(v_in, v_plan) w
    WHERE w.fresh AND NOT w.new_request AND w.last_of_record AND r.id = w.request_id
      AND (v_thr_idx IS NULL OR NOT w.idx = ANY(v_thr_idx));    -- a reply leaves its request as it is

    -- Any flagged element flags its request (rare: touches flagged ones only).
    UPDATE requests r SET flagged = true, updated_at = now()
    FROM (SELECT DISTINCT w.request_id FROM unnest(v_plan) w WHERE w.flagged) f
    WHERE r.id = f.request_id AND NOT r.flagged;

    -- Personal data of the record: the latest version by occurred_at wins.
    INSERT INTO source_records AS sr (source, source_record_id, request_id, raw, summary, extra, record_at,
                                      location)
    SELECT w.source, w.source_record_id, w.request_id, w.raw::json, w.summary, w.extra::jsonb,
           w.occurred_at, cv_location(w.location::jsonb)
    FROM unnest(v_in, v_plan, v_data) w
    WHERE w.last_of_record
    ON CONFLICT (source, source_record_id) DO UPDATE
        SET raw = EXCLUDED.raw, summary = EXCLUDED.summary, extra = EXCLUDED.extra,
            location = EXCLUDED.location,
            request_id = EXCLUDED.request_id, record_at = EXCLUDED.record_at, updated_at = now()
        WHERE sr.record_at <= EXCLUDED.record_at;

    -- Every mail stored names its request by its Message-ID: later replies
    -- to it thread (0.). The first mail of a Message-ID keeps the row.
    IF v_mail THEN
        INSERT INTO mail_threads (message_id_hash, request_id, direction)
        SELECT h.hash, w.request_id, 'in'
        FROM unnest(v_in, v_plan, v_data) w
        CROSS JOIN LATERAL (SELECT w.extra::jsonb->>'message_id_hash' AS hash) h
        WHERE w.fresh AND strpos(w.extra, '"message_id_hash"') > 0
          AND h.hash ~ '^[0-9a-f]{64}$'
        ON CONFLICT (message_id_hash) DO NOTHING;
        -- the same mail through another mailbox: its first copy's event
        RETURN QUERY
        SELECT d.idx, 'duplicate'::text, e.id, mt.request_id, r.tracking_code, false
        FROM unnest(v_dup, v_dup_hash) d(idx, hash)
        LEFT JOIN LATERAL (SELECT mt.request_id FROM mail_threads mt
                           WHERE mt.message_id_hash = d.hash) mt ON true
        LEFT JOIN LATERAL (SELECT e.id FROM events e
                           JOIN source_records sr ON sr.source = e.source
                                                 AND sr.source_record_id = e.source_record_id
                           WHERE e.request_id = mt.request_id
                             AND sr.extra->>'message_id_hash' = d.hash
                           ORDER BY e.id LIMIT 1) e ON true
        LEFT JOIN LATERAL (SELECT r.tracking_code FROM requests r WHERE r.id = mt.request_id) r ON true;
    END IF;

    -- A delivery status notification about a mail we sent turns e-mail off for the
    -- address that failed for good (functions/suppressions.sql has the rule).
    IF EXISTS (SELECT 1 FROM unnest(p_extra) x WHERE strpos(x, '"dsn"') > 0) THEN
        PERFORM cv_dsn_suppress(ARRAY(SELECT w.extra FROM unnest(v_in, v_plan, v_data) w
                                      WHERE w.fresh AND strpos(w.extra, '"dsn"') > 0 ORDER BY w.idx),
                                ARRAY(SELECT w.event_seq FROM unnest(v_in, v_plan, v_data) w
                                      WHERE w.fresh AND strpos(w.extra, '"dsn"') > 0 ORDER BY w.idx));
    END IF;

    -- 4. Outcomes. Fresh elements know their row (and a new request its
    -- code, unless it had to be redrawn); the others look it up. (cv_ingest
    -- puts them in the elements' order, with the duplicates above.)
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

-- The entry point of the hub and of the API's Open311 POST: identity resolution, then
-- cv_ingest_core, then o_identity_current per element (the hub's identity cache learns
-- only what PostgreSQL confirms, hub/idcache.c), and the batch's new (category, service)
-- pairs in service_categories.
DROP FUNCTION IF EXISTS cv_ingest(int[], text[], text[], text[], bytea, text[], text[], text[], text[],
    text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[]);
CREATE OR REPLACE FUNCTION cv_ingest(
    p_idx int[], p_source text[], p_hash text[], p_citizen_key text[], p_codes bytea,
    p_event_id text[], p_kind text[], p_record_id text[], p_request_ref text[],
    p_service text[], p_category text[], p_channel text[], p_status text[],
    p_source_status text[], p_source_channel text[], p_occurred_at text[], p_due_at text[],
    p_summary text[], p_extra text[], p_citizen text[], p_raw text[],
    p_requested_at text[] DEFAULT NULL, p_location text[] DEFAULT NULL, p_outcome text[] DEFAULT NULL)
RETURNS TABLE (o_idx int, o_outcome text, o_event_seq bigint, o_request_id bigint,
               o_tracking_code text, o_flagged boolean, o_identity_current boolean)
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_out cv_ingest_out[];
BEGIN
    -- run as the owner (zz_grants.sql): the API's role writes its own two sources only,
    -- the Open311 POSTs and the front office's (cv_intake_register), never another
    -- source's events (the hub's role writes any source)
    IF session_user = 'civibus_api' THEN       -- nothing more to pay on the hub's path
        IF EXISTS (SELECT 1 FROM unnest(p_source) s WHERE s IS NULL OR s NOT IN ('open311', 'accueil')) THEN
            RAISE EXCEPTION 'civibus_api may ingest the sources open311 and accueil only' USING ERRCODE = '42501';
        END IF;
    END IF;
    PERFORM cv_identity_resolve(p_idx, p_source, p_citizen_key, p_event_id, p_occurred_at, p_citizen);
    v_out := ARRAY(SELECT ROW(x.*)::cv_ingest_out FROM cv_ingest_core(
                p_idx, p_source, p_hash, p_citizen_key, p_codes, p_event_id, p_kind, p_record_id,
                p_request_ref, p_service, p_category, p_channel, p_status, p_source_status,
                p_source_channel, p_occurred_at, p_due_at, p_summary, p_extra, p_citizen, p_raw,
                p_requested_at, p_location, p_outcome) x
                ORDER BY x.o_idx);
    -- Due dates by rule (functions/deadlines.sql; nothing while no rules are loaded).
    PERFORM cv_deadlines_refresh(ARRAY(SELECT DISTINCT o.request_id FROM unnest(v_out) o
                                       WHERE o.outcome = 'stored'));
    -- A statement of its own, so it sees what cv_ingest_core wrote. Its rows
    -- come one per element, in their order: ROWS FROM zips them with the
    -- elements by position. The stored identity is looked up by index, only
    -- for elements sent with a block.
    RETURN QUERY
        SELECT z.idx, z.outcome, z.event_seq, z.request_id, z.tracking_code, z.flagged,
               COALESCE(cur.yes, false)
        FROM ROWS FROM (unnest(v_out), unnest(p_source, p_citizen_key, p_citizen)) WITH ORDINALITY
             AS z(idx, outcome, event_seq, request_id, tracking_code, flagged,
                  source, citizen_key, citizen, n)
        LEFT JOIN LATERAL (SELECT true AS yes FROM citizen_sources cs
                           WHERE z.citizen IS NOT NULL AND z.citizen_key IS NOT NULL
                             AND cs.source = z.source AND cs.source_citizen_id = z.citizen_key
                             AND cs.identity = z.citizen::jsonb
                           LIMIT 1) cur ON true
        ORDER BY z.n;
    INSERT INTO service_categories (category, service)
    SELECT DISTINCT u.c, u.s FROM unnest(p_category, p_service) AS u(c, s)
    WHERE u.c IS NOT NULL AND u.s IS NOT NULL
    ON CONFLICT DO NOTHING;
END $fn$;
