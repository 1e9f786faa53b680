-- 006_identity_guard.sql — identity resolution, second round (docs/identity.md):
--
--   * a veto on automatic e-mail / phone links: two sides that both have
--     birth dates and none in common, or both have given names and no
--     folded first initial in common, are two people (a family e-mail
--     shared by spouses). The match becomes a merge proposal, rule
--     'email_conflict' / 'phone_conflict', never a link. Inside a batch,
--     new pairs sharing an e-mail or phone are one person only when their
--     birth dates and initials agree (see cv_identity_link_new);
--   * a known pair's new identifiers: a (source, source_citizen_id) pair
--     whose identity block changes (a new e-mail, phone, name) adds the new
--     identifiers to citizen_identifiers, without re-linking the pair;
--   * cv_citizen_detach: undoes one automatic (or any) link: the pair, its
--     identifiers and its requests move to a new citizen, with a timeline
--     event and a rejected proposal so that the two are not proposed again;
--   * the hub may send p_citizen[i] = NULL for an element whose pair it
--     knows is linked with an unchanged identity block: resolution skips
--     such elements, and cv_ingest_core no longer overwrites a stored
--     identity with NULL (the latest non-NULL block of the batch counts).
--
-- Migrations 001-005 are checksummed and never edited: functions are
-- redefined here whole (CREATE OR REPLACE, same signatures).

-- ---- the veto -------------------------------------------------------------------

-- The birth date of an identity block (YYYY-MM-DD), or NULL.
CREATE FUNCTION cv_identity_born(c jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN substring(c->>'birth_date' FROM '^[0-9]{4}-[0-9]{2}-[0-9]{2}$');
END $$;

-- The folded first initial of an identity block's given names ("J-P",
-- "Jean-Pierre" and "Jean Pierre" all give 'j'), or NULL.
CREATE FUNCTION cv_identity_initial(c jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN NULLIF(left(cv_fold(c->>'given_names'), 1), '');
END $$;

-- Two sides (sets of birth dates, sets of initials) are two people: both
-- have birth dates and none in common, or both have initials and none in
-- common. A side that does not know a field never vetoes on it.
CREATE FUNCTION cv_identity_clash(a_born text[], a_init text[], b_born text[], b_init text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (COALESCE(cardinality(a_born), 0) > 0 AND COALESCE(cardinality(b_born), 0) > 0
            AND NOT a_born && b_born)
        OR (COALESCE(cardinality(a_init), 0) > 0 AND COALESCE(cardinality(b_init), 0) > 0
            AND NOT a_init && b_init)
$$;

-- Confidence of the conflict rules: a shared e-mail or phone that the veto
-- refused to link (docs/identity.md).
CREATE OR REPLACE FUNCTION cv_identity_confidence(kind text) RETURNS real
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind WHEN 'email' THEN 0.95 WHEN 'phone' THEN 0.9
                     WHEN 'name_birth' THEN 0.9 WHEN 'name_address' THEN 0.6
                     WHEN 'email_conflict' THEN 0.5 WHEN 'phone_conflict' THEN 0.5 END::real
$$;

-- ---- resolution on the ingest path ----------------------------------------------

-- A strong identifier (e-mail, phone, name + birth) of a new pair of the
-- batch, with the class that joins pairs inside the batch: an e-mail or
-- phone joins only pairs whose birth date and initial agree (a pair that
-- lacks one joins the group when the group has a single value for it, and
-- nobody when it has several: cls NULL).
CREATE TYPE cv_id_class AS (n int, kind text, value text, cls text);
-- A stored citizen that an identifier of pair n (component comp) points at;
-- vetoed: an e-mail or phone whose two sides clash.
CREATE TYPE cv_id_hit AS (n int, comp int, kind text, citizen_id bigint, vetoed boolean);

-- Links the batch's new pairs, then records the new identifiers of known
-- pairs. Elements without citizen key or with a NULL identity block (the
-- hub's "known pair, unchanged block") are skipped without a probe.
-- Returns the number of new pairs.
CREATE OR REPLACE FUNCTION cv_identity_resolve(p_idx int[], p_source text[], p_citizen_key text[],
                                               p_event_id text[], p_occurred_at text[], p_citizen text[])
RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    v_n int;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- the store's writer lock (002)
    v_n := cv_identity_link_new(p_idx, p_source, p_citizen_key, p_event_id, p_occurred_at, p_citizen);
    PERFORM cv_identity_add_known(p_source, p_citizen_key, p_citizen);
    RETURN v_n;
END $fn$;

-- A person keeps all their identifiers: every identity block of the batch
-- that differs from its pair's stored one (a known pair's new e-mail or
-- phone, or an earlier block of a pair new in this batch) adds the
-- identifiers the pair does not have yet, under the pair's citizen. The
-- pair is not re-linked (cv_identity_propose sees the new identifiers).
-- Caller holds the writer lock. One index probe per element with a block.
CREATE FUNCTION cv_identity_add_known(p_source text[], p_citizen_key text[], p_citizen text[])
RETURNS void
LANGUAGE plpgsql
-- a batch x index probes, never a scan of citizen_sources (as in 002)
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
BEGIN
    INSERT INTO citizen_identifiers (citizen_id, kind, value, source, source_citizen_id)
    SELECT DISTINCT d.citizen_id, x.kind, x.value, d.source, d.citizen_key
    FROM (SELECT u.source, u.citizen_key, u.citizen::jsonb AS citizen, cs.citizen_id
          FROM unnest(p_source, p_citizen_key, p_citizen) AS u(source, citizen_key, citizen)
          JOIN LATERAL (SELECT cs.citizen_id, cs.identity FROM citizen_sources cs
                        WHERE cs.source = u.source AND cs.source_citizen_id = u.citizen_key) cs ON true
          WHERE u.citizen_key IS NOT NULL AND u.citizen IS NOT NULL
            AND cs.identity IS DISTINCT FROM u.citizen::jsonb) d
    CROSS JOIN LATERAL cv_identifiers(d.citizen) x
    WHERE NOT EXISTS (SELECT 1 FROM citizen_identifiers ci
                      WHERE ci.source = d.source AND ci.source_citizen_id = d.citizen_key
                        AND ci.kind = x.kind AND ci.value = x.value);
END $fn$;

-- 004's resolution of new pairs, with the veto. Steps, all set-based:
--   1. new pairs (latest non-NULL block of the batch), their identifiers,
--      birth date and initial (v_born, v_init, indexed by pair);
--   2. classes (cv_id_class) and connected components inside the batch;
--   3. hits: at most two stored citizens per identifier (two index
--      probes); an e-mail / phone hit is vetoed when the component's and
--      the citizen's birth dates or initials clash (the citizen's come from
--      its pairs' identity blocks: one index probe per citizen hit);
--   4. links from the hits that are not vetoed, as in 004; new citizens;
--   5. vetoed matches, and batch pairs sharing an e-mail / phone that ended
--      up apart, become open proposals (rule '<kind>_conflict').
-- Caller holds the writer lock.
CREATE FUNCTION cv_identity_link_new(p_idx int[], p_source text[], p_citizen_key text[],
                                     p_event_id text[], p_occurred_at text[], p_citizen text[])
RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    v_pairs cv_id_pair[];
    v_ids   cv_id_ident[];
    v_cls   cv_id_class[];
    v_hits  cv_id_hit[];
    v_links cv_id_link[];
    v_born  text[];
    v_init  text[];
    v_lab   int[];
    v_next  int[];
    v_n     int;
    v_base  bigint;
    v_last  bigint;
BEGIN
    -- 1. New pairs, numbered in batch order.
    v_pairs := ARRAY(
        SELECT ROW(row_number() OVER (ORDER BY l.first_idx), l.source, l.citizen_key,
                   l.citizen, l.occurred_at)::cv_id_pair
        FROM (SELECT DISTINCT ON (u.source, u.citizen_key)
                     u.source, u.citizen_key, u.citizen::jsonb AS citizen,
                     u.occurred_at::timestamptz AS occurred_at,
                     min(u.idx) OVER (PARTITION BY u.source, u.citizen_key) AS first_idx
              FROM unnest(p_idx, p_source, p_citizen_key, p_event_id, p_occurred_at, p_citizen)
                   AS u(idx, source, citizen_key, event_id, occurred_at, citizen)
              WHERE u.citizen_key IS NOT NULL AND u.citizen IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM citizen_sources cs
                                WHERE cs.source = u.source AND cs.source_citizen_id = u.citizen_key)
                AND NOT EXISTS (SELECT 1 FROM events e
                                WHERE e.source = u.source AND e.event_id = u.event_id)
              ORDER BY u.source, u.citizen_key, u.occurred_at::timestamptz DESC, u.idx DESC) l
        ORDER BY l.first_idx);
    v_n := cardinality(v_pairs);
    IF v_n = 0 THEN
        RETURN 0;
    END IF;
    v_ids := ARRAY(SELECT ROW(p.n, x.kind, x.value)::cv_id_ident
                   FROM unnest(v_pairs) p, LATERAL cv_identifiers(p.citizen) x);
    v_born := ARRAY(SELECT cv_identity_born(p.citizen) FROM unnest(v_pairs) p ORDER BY p.n);
    v_init := ARRAY(SELECT cv_identity_initial(p.citizen) FROM unnest(v_pairs) p ORDER BY p.n);

    -- 2. Classes: name + birth date joins its value; an e-mail or phone its
    -- value and the (single) birth date and initial of its group.
    v_cls := ARRAY(
        SELECT ROW(g.n, g.kind, g.value,
                   CASE WHEN g.kind = 'name_birth' THEN g.kind || '|' || g.value
                        WHEN (g.born IS NULL AND g.bmin IS DISTINCT FROM g.bmax)
                          OR (g.init IS NULL AND g.imin IS DISTINCT FROM g.imax) THEN NULL
                        ELSE g.kind || '|' || g.value || '|' || COALESCE(g.born, g.bmin, '')
                             || '|' || COALESCE(g.init, g.imin, '') END)::cv_id_class
        FROM (SELECT i.n, i.kind, i.value, v_born[i.n] AS born, v_init[i.n] AS init,
                     min(v_born[i.n]) OVER w AS bmin, max(v_born[i.n]) OVER w AS bmax,
                     min(v_init[i.n]) OVER w AS imin, max(v_init[i.n]) OVER w AS imax
              FROM unnest(v_ids) i WHERE i.kind <> 'name_address'
              WINDOW w AS (PARTITION BY i.kind, i.value)) g
        ORDER BY g.n, g.kind, g.value);

    -- Connected components by min-label propagation (a few rounds).
    v_lab := ARRAY(SELECT g FROM generate_series(1, v_n) g);
    LOOP
        v_next := ARRAY(
            SELECT least(v_lab[g], v_lab[v_lab[g]], COALESCE(m.lab, v_lab[g]))
            FROM generate_series(1, v_n) g
            LEFT JOIN (SELECT s.n, min(s.lab) AS lab
                       FROM (SELECT c.n, min(v_lab[c.n]) OVER (PARTITION BY c.cls) AS lab
                             FROM unnest(v_cls) c WHERE c.cls IS NOT NULL) s
                       GROUP BY s.n) m ON m.n = g
            ORDER BY g);
        EXIT WHEN v_next = v_lab;
        v_lab := v_next;
    END LOOP;

    -- 3. Hits, with the veto.
    v_hits := ARRAY(
        WITH hits AS (
            SELECT c.n, v_lab[c.n] AS comp, c.kind, h.citizen_id
            FROM unnest(v_cls) c
            JOIN LATERAL (SELECT ci.citizen_id FROM citizen_identifiers ci
                          WHERE ci.kind = c.kind AND ci.value = c.value
                          ORDER BY ci.citizen_id LIMIT 1) h1 ON true
            LEFT JOIN LATERAL (SELECT ci.citizen_id FROM citizen_identifiers ci
                               WHERE ci.kind = c.kind AND ci.value = c.value
                                 AND ci.citizen_id > h1.citizen_id
                               ORDER BY ci.citizen_id LIMIT 1) h2 ON true
            CROSS JOIN LATERAL (VALUES (h1.citizen_id), (h2.citizen_id)) h(citizen_id)
            WHERE h.citizen_id IS NOT NULL
        ), citizen_sig AS (     -- what the stored citizens hit by e-mail / phone know
            SELECT c.citizen_id, s.born, s.init
            FROM (SELECT DISTINCT h.citizen_id FROM hits h WHERE h.kind IN ('email', 'phone')) c
            CROSS JOIN LATERAL (
                SELECT array_agg(DISTINCT b.born) FILTER (WHERE b.born IS NOT NULL) AS born,
                       array_agg(DISTINCT b.init) FILTER (WHERE b.init IS NOT NULL) AS init
                FROM citizen_sources cs,
                     LATERAL (SELECT cv_identity_born(cs.identity) AS born,
                                     cv_identity_initial(cs.identity) AS init) b
                WHERE cs.citizen_id = c.citizen_id) s
        ), comp_sig AS (        -- what each component of the batch knows
            SELECT v_lab[g] AS comp,
                   array_agg(DISTINCT v_born[g]) FILTER (WHERE v_born[g] IS NOT NULL) AS born,
                   array_agg(DISTINCT v_init[g]) FILTER (WHERE v_init[g] IS NOT NULL) AS init
            FROM generate_series(1, v_n) g GROUP BY v_lab[g]
        )
        SELECT ROW(h.n, h.comp, h.kind, h.citizen_id,
                   h.kind IN ('email', 'phone')
                   AND COALESCE(cv_identity_clash(p.born, p.init, s.born, s.init), false))::cv_id_hit
        FROM hits h
        JOIN comp_sig p ON p.comp = h.comp
        LEFT JOIN citizen_sig s ON s.citizen_id = h.citizen_id
        ORDER BY h.n, h.kind, h.citizen_id);

    -- 4. Each component links to the one citizen its strongest matching kind
    -- (e-mail, then phone, then name + birth date) points at, vetoed hits
    -- left out; nothing, or two citizens (a conflict): a new citizen. A
    -- pair's rule is the best identifier it shares (with a citizen or in
    -- its class inside the batch).
    v_links := ARRAY(
        WITH ok AS (
            SELECT h.n, h.comp, h.kind, h.citizen_id FROM unnest(v_hits) h WHERE NOT h.vetoed
        ), shared AS (
            SELECT s.n, s.kind
            FROM (SELECT c.n, c.kind, count(*) OVER (PARTITION BY c.cls) AS k
                  FROM unnest(v_cls) c WHERE c.cls IS NOT NULL) s
            WHERE s.k > 1
        ), per_kind AS (
            SELECT o.comp, o.kind, min(o.citizen_id) AS citizen_id, count(DISTINCT o.citizen_id) AS k
            FROM ok o GROUP BY o.comp, o.kind
        ), comp AS (
            SELECT DISTINCT ON (p.comp) p.comp, p.citizen_id, p.k
            FROM per_kind p
            ORDER BY p.comp, array_position(ARRAY['email', 'phone', 'name_birth'], p.kind)
        ), best AS (
            SELECT DISTINCT ON (x.n) x.n, x.kind
            FROM (SELECT o.n, o.kind FROM ok o UNION ALL SELECT s.n, s.kind FROM shared s) x
            ORDER BY x.n, cv_identity_confidence(x.kind) DESC,
                     array_position(ARRAY['email', 'phone', 'name_birth'], x.kind)
        )
        SELECT ROW(g, v_lab[g],
                   CASE WHEN c.k = 1 THEN c.citizen_id END,
                   CASE WHEN COALESCE(c.k, 0) <> 1 AND v_lab[g] = g THEN 'new' ELSE b.kind END,
                   CASE WHEN COALESCE(c.k, 0) <> 1 AND v_lab[g] = g THEN 1
                        ELSE cv_identity_confidence(b.kind) END)::cv_id_link
        FROM generate_series(1, v_n) g
        LEFT JOIN comp c ON c.comp = v_lab[g]
        LEFT JOIN best b ON b.n = g
        ORDER BY g);

    -- New citizens: one per component without a single match, ids drawn as
    -- a block like cv_ingest does.
    v_base := cv_next_id('citizens_id_seq');
    v_links := ARRAY(
        SELECT ROW(l.n, l.comp,
                   COALESCE(l.citizen_id, v_base - 1 + dense_rank() OVER (
                                PARTITION BY l.citizen_id IS NULL ORDER BY l.comp)),
                   l.rule, l.confidence)::cv_id_link
        FROM unnest(v_links) l ORDER BY l.n);
    SELECT max(l.citizen_id) INTO v_last FROM unnest(v_links) l WHERE l.citizen_id >= v_base;
    IF v_last IS NOT NULL THEN
        PERFORM setval('citizens_id_seq', v_last);
        INSERT INTO citizens (id)
        SELECT DISTINCT l.citizen_id FROM unnest(v_links) l WHERE l.citizen_id >= v_base;
    END IF;

    INSERT INTO citizen_sources (source, source_citizen_id, citizen_id, identity, identity_at,
                                 rule, confidence)
    SELECT x.source, x.citizen_key, x.citizen_id, x.citizen, x.occurred_at, x.rule, x.confidence
    FROM unnest(v_pairs, v_links) AS x(n, source, citizen_key, citizen, occurred_at,
                                      ln, comp, citizen_id, rule, confidence);

    INSERT INTO citizen_identifiers (citizen_id, kind, value, source, source_citizen_id)
    SELECT (v_links[i.n]).citizen_id, i.kind, i.value, (v_pairs[i.n]).source, (v_pairs[i.n]).citizen_key
    FROM unnest(v_ids) i;

    -- 5. Vetoed matches become proposals, in (a, b) order like
    -- cv_identity_propose (no deadlock between the two).
    INSERT INTO merge_proposals (citizen_a, citizen_b, rule, confidence)
    SELECT DISTINCT ON (least(x.mine, x.other), greatest(x.mine, x.other))
           least(x.mine, x.other), greatest(x.mine, x.other), x.kind || '_conflict',
           cv_identity_confidence(x.kind || '_conflict')
    FROM (SELECT (v_links[h.n]).citizen_id AS mine, h.citizen_id AS other, h.kind
          FROM unnest(v_hits) h WHERE h.vetoed
          UNION ALL
          SELECT a.citizen_id, b.citizen_id, a.kind
          FROM (SELECT d.kind, d.value, d.citizen_id
                FROM (SELECT DISTINCT c.kind, c.value, (v_links[c.n]).citizen_id AS citizen_id,
                             count(*) OVER (PARTITION BY c.kind, c.value) AS k
                      FROM unnest(v_cls) c WHERE c.kind IN ('email', 'phone')) d
                WHERE d.k > 1) a
          JOIN (SELECT DISTINCT c.kind, c.value, (v_links[c.n]).citizen_id AS citizen_id
                FROM unnest(v_cls) c WHERE c.kind IN ('email', 'phone')) b
            ON b.kind = a.kind AND b.value = a.value AND b.citizen_id > a.citizen_id) x
    WHERE x.mine <> x.other
    ORDER BY least(x.mine, x.other), greatest(x.mine, x.other),
             array_position(ARRAY['email', 'phone'], x.kind)
    ON CONFLICT (citizen_a, citizen_b) DO NOTHING;

    RETURN v_n;
END $fn$;

-- ---- detach ---------------------------------------------------------------------

-- One pair taken off a citizen by an agent, with exactly what moved.
CREATE TABLE citizen_detaches (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    citizen           bigint NOT NULL,    -- citizens.id the pair left
    new_citizen       bigint NOT NULL,    -- citizens.id created for it
    source            text NOT NULL,      -- the pair (citizen_sources)
    source_citizen_id text NOT NULL,
    rule              text,               -- the link undone, and its confidence
    confidence        real,
    moved_requests    bigint[] NOT NULL,  -- requests.id that moved with the pair
    actor             text NOT NULL,      -- who did it (agent id, no PD)
    detached_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX citizen_detaches_citizen ON citizen_detaches (citizen);

-- Takes pair (p_source, p_source_citizen_id) off citizen p_citizen: the pair,
-- its identifiers and its requests (those of p_citizen that came from that
-- source) move to a new citizen, whose id is returned. The timeline gets a
-- citizen_detach event per moved request (like citizen_merge); the two
-- citizens get a rejected proposal, so cv_identity_propose never proposes
-- them again. Refused (22023): an unknown or absorbed citizen, a pair it
-- does not have, its only pair; (55000) a citizen with another pair of the
-- same source, whose requests could not be told apart.
CREATE FUNCTION cv_citizen_detach(p_citizen bigint, p_source text, p_source_citizen_id text,
                                  p_actor text) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    v_pair     citizen_sources%ROWTYPE;
    v_new      bigint;
    v_id       bigint;
    v_requests bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- events: the store's writer lock
    SELECT cs.* INTO v_pair FROM citizen_sources cs
    WHERE cs.source = p_source AND cs.source_citizen_id = p_source_citizen_id
      AND cs.citizen_id = p_citizen
      AND EXISTS (SELECT 1 FROM citizens c WHERE c.id = p_citizen AND c.merged_into IS NULL)
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cv_citizen_detach: citizen % does not exist, was merged, or has no such pair',
                        p_citizen USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM citizen_sources cs
                   WHERE cs.citizen_id = p_citizen
                     AND (cs.source, cs.source_citizen_id) <> (p_source, p_source_citizen_id)) THEN
        RAISE EXCEPTION 'cv_citizen_detach: the pair is the only one of citizen %', p_citizen
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM citizen_sources cs
               WHERE cs.citizen_id = p_citizen AND cs.source = p_source
                 AND cs.source_citizen_id <> p_source_citizen_id) THEN
        RAISE EXCEPTION 'cv_citizen_detach: citizen % has another pair of that source', p_citizen
            USING ERRCODE = '55000';
    END IF;

    v_requests := ARRAY(SELECT r.id FROM requests r
                        WHERE r.citizen_id = p_citizen
                          AND EXISTS (SELECT 1 FROM request_sources rs
                                      WHERE rs.request_id = r.id AND rs.source = p_source)
                        ORDER BY r.id);
    INSERT INTO citizens DEFAULT VALUES RETURNING id INTO v_new;
    UPDATE citizen_sources SET citizen_id = v_new, rule = 'detached', confidence = 1, updated_at = now()
    WHERE source = p_source AND source_citizen_id = p_source_citizen_id;
    UPDATE citizen_identifiers SET citizen_id = v_new
    WHERE source = p_source AND source_citizen_id = p_source_citizen_id AND citizen_id = p_citizen;
    UPDATE requests SET citizen_id = v_new, updated_at = now() WHERE id = ANY (v_requests);
    INSERT INTO merge_proposals (citizen_a, citizen_b, rule, confidence, status, decided_at, decided_by)
    VALUES (least(p_citizen, v_new), greatest(p_citizen, v_new), COALESCE(v_pair.rule, 'detached'), COALESCE(v_pair.confidence, 1),
            'rejected', now(), p_actor);

    INSERT INTO citizen_detaches (citizen, new_citizen, source, source_citizen_id, rule, confidence,
                                  moved_requests, actor)
    VALUES (p_citizen, v_new, p_source, p_source_citizen_id, v_pair.rule, v_pair.confidence,
            v_requests, p_actor)
    RETURNING id INTO v_id;
    PERFORM cv_citizen_events('citizen_detach', v_id, v_requests, v_new);
    RETURN v_new;
END $fn$;

-- ---- cv_ingest_core (002's cv_ingest, renamed by 004) ------------------------------

-- Redefined whole, unchanged but for the identity UPDATE of known pairs: an
-- element whose identity block is NULL (the hub's "known pair, unchanged
-- block") never overwrites the stored identity; the latest non-NULL block
-- of the batch does, under 002's conditions. The design notes are 002's.
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
                       WHERE NOT w.fresh AND e.source = w.source AND e.event_id = w.event_id) e ON true
    LEFT JOIN LATERAL (SELECT r.tracking_code FROM requests r
                       WHERE NOT (w.new_request AND v_tries = 1)
                         AND r.id = COALESCE(e.request_id, w.request_id)) r ON true
    ORDER BY w.idx;
END $fn$;
