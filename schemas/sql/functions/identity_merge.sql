-- functions/identity_merge.sql — one citizen across silos, decided off the ingest path
-- (docs/identity.md): merge proposals, an agent's merge and split, detaching one pair;
-- each appends its events to the timeline (citizen_merge, citizen_split,
-- citizen_detach). Tables: 004_identity.sql, 006_identity_guard.sql.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.

-- Proposes every two current citizens that share an identifier and were
-- never proposed: weak matches (name + address; not when both have birth
-- dates and none in common) and strong conflicts left by resolution (an
-- e-mail or phone of two citizens). The k holders of one value make
-- k(k-1)/2 pairs, so groups are bounded: up to identity.max_proposal_group
-- (default 10) every pair is proposed; a larger group is proposed as a star,
-- each citizen with the group's first one (k-1 proposals: merging them
-- merges the group); above identity.max_proposal_star (default 200) the
-- value proposes nothing — that is placeholder data (everybody "MARTIN
-- Jean" born 01/01/1900, a town hall's address), never one person. Returns
-- the number of new proposals.
CREATE OR REPLACE FUNCTION cv_identity_propose() RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    v_rows int;
    v_all  int := cv_identity_setting('max_proposal_group', 10);
    v_star int := cv_identity_setting('max_proposal_star', 200);
BEGIN
    INSERT INTO merge_proposals (citizen_a, citizen_b, rule, confidence)
    SELECT DISTINCT ON (s.a, s.b) s.a, s.b, s.rule, cv_identity_confidence(s.rule)
    FROM (SELECT x.citizen_id AS a, y.citizen_id AS b, x.kind,
                 CASE WHEN x.declared OR y.declared THEN 'declared_' || x.kind ELSE x.kind END AS rule
          FROM (SELECT ci.kind, ci.value, count(DISTINCT ci.citizen_id) AS n, min(ci.citizen_id) AS first
                FROM citizen_identifiers ci
                WHERE NOT ci.shared
                GROUP BY ci.kind, ci.value
                HAVING count(DISTINCT ci.citizen_id) BETWEEN 2 AND v_star) g
          JOIN citizen_identifiers x ON x.kind = g.kind AND x.value = g.value AND NOT x.shared
                                    AND (g.n <= v_all OR x.citizen_id = g.first)
          JOIN citizen_identifiers y ON y.kind = x.kind AND y.value = x.value
                                    AND y.citizen_id > x.citizen_id AND NOT y.shared) s
    WHERE NOT EXISTS (SELECT 1 FROM merge_proposals p WHERE p.citizen_a = s.a AND p.citizen_b = s.b)
      AND NOT EXISTS (SELECT 1 FROM citizens c WHERE c.id IN (s.a, s.b) AND c.merged_into IS NOT NULL)
      AND NOT (s.kind = 'name_address' AND cv_birth_dates_differ(s.a, s.b))
    ORDER BY s.a, s.b, cv_identity_confidence(s.rule) DESC
    ON CONFLICT (citizen_a, citizen_b) DO NOTHING;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END $fn$;

-- Both citizens have birth dates and none in common.
CREATE OR REPLACE FUNCTION cv_birth_dates_differ(a bigint, b bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    WITH d AS (SELECT cs.citizen_id, cs.identity->>'birth_date' AS born
               FROM citizen_sources cs
               WHERE cs.citizen_id IN (a, b) AND cs.identity->>'birth_date' IS NOT NULL)
    SELECT EXISTS (SELECT 1 FROM d WHERE d.citizen_id = a)
       AND EXISTS (SELECT 1 FROM d WHERE d.citizen_id = b)
       AND NOT EXISTS (SELECT 1 FROM d x JOIN d y ON y.born = x.born
                       WHERE x.citizen_id = a AND y.citizen_id = b)
$$;

-- One event per request in p_requests, in the timeline: kind p_kind
-- ('citizen_merge' / 'citizen_split'), the request's current status and
-- labels repeated, citizen_id the citizen it now belongs to. Source
-- 'civibus', event_id '<kind>:<merge id>:<request id>'. Caller holds the lock.
CREATE OR REPLACE FUNCTION cv_citizen_events(p_kind text, p_merge bigint, p_requests bigint[], p_citizen bigint)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO events (source, event_id, content_hash, kind, request_id, source_record_id,
                        service, category, channel, status, source_status, occurred_at, citizen_id)
    SELECT 'civibus', p_kind || ':' || p_merge || ':' || r.id,
           encode(sha256(convert_to(p_kind || ':' || p_merge || ':' || r.id, 'UTF8')), 'hex'),
           p_kind, r.id, p_kind || ':' || p_merge, r.service, r.category, r.channel, r.status,
           p_kind, now(), p_citizen
    FROM requests r WHERE r.id = ANY (p_requests)
    ORDER BY r.id
$$;

-- Merges citizen p_absorb into p_keep: its pairs, identifiers and requests
-- move to p_keep; p_absorb stays with merged_into = p_keep. Returns the
-- merge's id (for cv_citizen_split).
CREATE OR REPLACE FUNCTION cv_citizen_merge(p_keep bigint, p_absorb bigint, p_actor text) RETURNS bigint
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_id bigint;
    m citizen_merges%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- events: the store's writer lock
    IF p_keep IS NULL OR p_absorb IS NULL OR p_keep = p_absorb THEN
        RAISE EXCEPTION 'cv_citizen_merge: two different citizens are needed' USING ERRCODE = '22023';
    END IF;
    IF (SELECT count(*) FROM citizens WHERE id IN (p_keep, p_absorb) AND merged_into IS NULL) <> 2 THEN
        RAISE EXCEPTION 'cv_citizen_merge: citizen % or % does not exist or was merged', p_keep, p_absorb
            USING ERRCODE = '22023';
    END IF;

    m.moved_sources := ARRAY(SELECT source FROM citizen_sources WHERE citizen_id = p_absorb
                             ORDER BY source, source_citizen_id);
    m.moved_keys := ARRAY(SELECT source_citizen_id FROM citizen_sources WHERE citizen_id = p_absorb
                          ORDER BY source, source_citizen_id);
    m.moved_requests := ARRAY(SELECT id FROM requests WHERE citizen_id = p_absorb ORDER BY id);
    m.moved_citizens := ARRAY(SELECT id FROM citizens WHERE merged_into = p_absorb ORDER BY id);

    UPDATE citizen_sources SET citizen_id = p_keep, updated_at = now() WHERE citizen_id = p_absorb;
    UPDATE citizen_identifiers SET citizen_id = p_keep WHERE citizen_id = p_absorb;
    UPDATE requests SET citizen_id = p_keep, updated_at = now() WHERE citizen_id = p_absorb;
    UPDATE citizens SET merged_into = p_keep WHERE id = p_absorb OR merged_into = p_absorb;
    UPDATE merge_proposals SET status = 'accepted', decided_at = now(), decided_by = p_actor
    WHERE citizen_a = least(p_keep, p_absorb) AND citizen_b = greatest(p_keep, p_absorb)
      AND status = 'open';

    INSERT INTO citizen_merges (keep, absorb, actor, moved_sources, moved_keys, moved_requests,
                                moved_citizens)
    VALUES (p_keep, p_absorb, p_actor, m.moved_sources, m.moved_keys, m.moved_requests,
            m.moved_citizens)
    RETURNING id INTO v_id;
    PERFORM cv_citizen_events('citizen_merge', v_id, m.moved_requests, p_keep);
    RETURN v_id;
END $fn$;

-- Undoes merge p_merge exactly: the absorbed citizen gets back the pairs,
-- identifiers, requests and earlier merged citizens it had. Refused when a
-- later merge of either citizen is still in place (split that one first).
CREATE OR REPLACE FUNCTION cv_citizen_split(p_merge bigint, p_actor text) RETURNS void
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    m citizen_merges%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);
    SELECT * INTO m FROM citizen_merges WHERE id = p_merge FOR UPDATE;
    IF NOT FOUND OR m.split_at IS NOT NULL THEN
        RAISE EXCEPTION 'cv_citizen_split: merge % does not exist or was split already', p_merge
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM citizen_merges l
               WHERE l.id > m.id AND l.split_at IS NULL
                 AND (l.keep IN (m.keep, m.absorb) OR l.absorb IN (m.keep, m.absorb))) THEN
        RAISE EXCEPTION 'cv_citizen_split: a later merge of citizen % or % must be split first',
                        m.keep, m.absorb USING ERRCODE = '55000';
    END IF;

    UPDATE citizen_sources cs SET citizen_id = m.absorb, updated_at = now()
    FROM unnest(m.moved_sources, m.moved_keys) AS p(source, source_citizen_id)
    WHERE cs.source = p.source AND cs.source_citizen_id = p.source_citizen_id
      AND cs.citizen_id = m.keep;
    UPDATE citizen_identifiers ci SET citizen_id = m.absorb
    FROM unnest(m.moved_sources, m.moved_keys) AS p(source, source_citizen_id)
    WHERE ci.source = p.source AND ci.source_citizen_id = p.source_citizen_id
      AND ci.citizen_id = m.keep;
    UPDATE requests SET citizen_id = m.absorb, updated_at = now()
    WHERE id = ANY (m.moved_requests) AND citizen_id = m.keep;
    UPDATE citizens SET merged_into = NULL WHERE id = m.absorb;
    UPDATE citizens SET merged_into = m.absorb WHERE id = ANY (m.moved_citizens);
    UPDATE merge_proposals SET status = 'rejected', decided_at = now(), decided_by = p_actor
    WHERE citizen_a = least(m.keep, m.absorb) AND citizen_b = greatest(m.keep, m.absorb);
    UPDATE citizen_merges SET split_at = now(), split_by = p_actor WHERE id = m.id;
    PERFORM cv_citizen_events('citizen_split', m.id, m.moved_requests, m.absorb);
END $fn$;

-- Takes pair (p_source, p_source_citizen_id) off citizen p_citizen: the pair,
-- its identifiers and its requests (those of p_citizen that came from that
-- source) move to a new citizen, whose id is returned. The timeline gets a
-- citizen_detach event per moved request (like citizen_merge); the two
-- citizens get a rejected proposal, so cv_identity_propose never proposes
-- them again. Refused (22023): an unknown or absorbed citizen, a pair it
-- does not have, its only pair; (55000) a citizen with another pair of the
-- same source, whose requests could not be told apart.
CREATE OR REPLACE FUNCTION cv_citizen_detach(p_citizen bigint, p_source text, p_source_citizen_id text,
                                  p_actor text) RETURNS bigint
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
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

-- An agent answers proposal p_id "two different people": it becomes
-- rejected (decided_at, decided_by = p_actor), and cv_identity_propose never
-- proposes the pair again (one row per pair, ever). Refused (22023): an
-- unknown proposal, or one answered already (accepted, rejected). Returns
-- the proposal's two citizens {citizen_a, citizen_b}.
CREATE OR REPLACE FUNCTION cv_proposal_reject(p_id bigint, p_actor text) RETURNS json
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    p merge_proposals%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- the writer lock, as a merge takes it
    UPDATE merge_proposals SET status = 'rejected', decided_at = now(), decided_by = p_actor
    WHERE id = p_id AND status = 'open'
    RETURNING * INTO p;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cv_proposal_reject: proposal % does not exist or was answered already', p_id
            USING ERRCODE = '22023';
    END IF;
    RETURN json_build_object('citizen_a', p.citizen_a, 'citizen_b', p.citizen_b);
END $fn$;
