-- 004_identity.sql — one citizen across silos: identity resolution, merge
-- proposals, agent merge and split. Rules and confidences: docs/identity.md.
--
-- Design in four lines:
--   * every (source, source_citizen_id) pair leaves normalised identifiers in
--     citizen_identifiers (e-mail, E.164 phone, name + birth date, name +
--     address): a person keeps all of them, whatever the number of sources;
--   * cv_ingest now first calls cv_identity_resolve on the batch: only pairs
--     NOT yet in citizen_sources are looked up (one index probe per
--     identifier, set-based), linked to the citizen their strongest
--     matching identifier points at (with rule and confidence) or given a
--     new citizen; pairs of one batch that share an identifier become one
--     person; an identifier pointing at two citizens is a conflict: a new
--     citizen, and proposals later;
--   * weak matches (name + address) and conflicts become merge_proposals in
--     cv_identity_propose(), off the ingest path (called periodically);
--   * cv_citizen_merge / cv_citizen_split move citizen_sources, identifiers
--     and requests between citizens, remember exactly what moved, and append
--     citizen_merge / citizen_split events (events stay append-only; an
--     absorbed citizen keeps its id, with citizens.merged_into set).

CREATE EXTENSION IF NOT EXISTS unaccent;

-- ---- tables ------------------------------------------------------------------

ALTER TABLE citizens ADD COLUMN merged_into bigint;          -- citizens.id, when absorbed
ALTER TABLE citizen_sources ADD COLUMN rule text;            -- 'new', 'email', 'phone', 'name_birth'
ALTER TABLE citizen_sources ADD COLUMN confidence real;

-- PERSONAL DATA (normalised): what a source said about a citizen, one row
-- per identifier of a (source, source_citizen_id) pair.
CREATE TABLE citizen_identifiers (
    citizen_id        bigint NOT NULL,   -- citizens.id (moves on merge / split)
    kind              text NOT NULL CHECK (kind IN ('email', 'phone', 'name_birth', 'name_address')),
    value             text NOT NULL,
    source            text NOT NULL,     -- the pair that gave it (citizen_sources)
    source_citizen_id text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX citizen_identifiers_value ON citizen_identifiers (kind, value, citizen_id);
CREATE INDEX citizen_identifiers_citizen ON citizen_identifiers (citizen_id);
CREATE INDEX citizen_identifiers_pair ON citizen_identifiers (source, source_citizen_id);

-- Two citizens that may be one person, for an agent to decide.
CREATE TABLE merge_proposals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    citizen_a   bigint NOT NULL,         -- the smaller citizens.id
    citizen_b   bigint NOT NULL,
    rule        text NOT NULL,           -- the identifier kind they share
    confidence  real NOT NULL,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'rejected')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    decided_by  text,
    CHECK (citizen_a < citizen_b),
    UNIQUE (citizen_a, citizen_b)        -- proposed once, whatever the answer
);
CREATE INDEX merge_proposals_open ON merge_proposals (status) WHERE status = 'open';

-- One agent merge, with exactly what it moved, so that a split restores it.
CREATE TABLE citizen_merges (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    keep             bigint NOT NULL,    -- citizens.id that stays
    absorb           bigint NOT NULL,    -- citizens.id merged into keep
    actor            text NOT NULL,      -- who did it (agent id, no PD)
    merged_at        timestamptz NOT NULL DEFAULT now(),
    moved_sources    text[] NOT NULL,    -- the absorbed pairs: sources ...
    moved_keys       text[] NOT NULL,    -- ... and their source_citizen_id
    moved_requests   bigint[] NOT NULL,  -- requests.id that pointed at absorb
    moved_citizens   bigint[] NOT NULL,  -- citizens merged into absorb earlier
    split_at         timestamptz,
    split_by         text
);
CREATE INDEX citizen_merges_keep ON citizen_merges (keep);
CREATE INDEX citizen_merges_absorb ON citizen_merges (absorb);

-- ---- normalisation -------------------------------------------------------------

-- Written in plpgsql: its plans and simple expressions are cached, so a
-- batch of new pairs costs microseconds per identifier (SQL functions with
-- subqueries are planned again for each call).

-- E-mail: trimmed, lower case; NULL unless it looks like local@domain.tld.
CREATE FUNCTION cv_norm_email(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    e text := lower(btrim(t));
BEGIN
    RETURN CASE WHEN e ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' THEN e END;
END $$;

-- Phone in E.164. French national numbers (0X XX XX XX XX), +33, 0033 and
-- +33 (0)... forms; separators (spaces, dots, dashes, brackets) ignored.
-- NULL when no plausible number remains.
CREATE FUNCTION cv_norm_phone(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    d text := regexp_replace(replace(t, '(0)', ''), '[^0-9+]', '', 'g');
BEGIN
    d := CASE WHEN d ~ '^\+330[1-9][0-9]{8}$' THEN '+33' || substr(d, 5)
              WHEN d ~ '^\+' THEN d
              WHEN d ~ '^00' THEN '+' || substr(d, 3)
              WHEN d ~ '^0[1-9][0-9]{8}$' THEN '+33' || substr(d, 2) END;
    RETURN CASE WHEN d ~ '^\+[1-9][0-9]{7,14}$' THEN d END;
END $$;

-- Letters and digits only: lower case, no accents (œ → oe), every other run
-- of characters (hyphens, apostrophes, dots, spaces) one space.
CREATE FUNCTION cv_fold(t text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN NULLIF(btrim(regexp_replace(lower(unaccent(t)), '[^a-z0-9]+', ' ', 'g')), '');
END $$;

-- A name: folded, particles dropped (de, du, des, de la, d', le, la),
-- tokens kept in order, separated by one space.
CREATE FUNCTION cv_norm_name(t text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN NULLIF(btrim(regexp_replace(' ' || cv_fold(t) || ' ', '( (de|du|des|d|le|la))+(?= )',
                                       '', 'g')), '');
END $$;

-- The family-name keys of an identity block: the usage name and the birth
-- name, each folded, particles dropped, spaces removed. "DUPONT née
-- MARTIN", "MARTIN épouse DUPONT" and birth_name are understood.
CREATE FUNCTION cv_family_keys(family text, birth text) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    whole text := cv_norm_name(family);
    m text[] := regexp_match(' ' || whole || ' ', '^ (.+?) (nee|ne|epouse|epse|ep|veuve|vve) (.+) $');
    keys text[] := ARRAY[]::text[];
    k text;
BEGIN
    FOREACH k IN ARRAY ARRAY[CASE WHEN m IS NULL THEN whole
                                  WHEN m[2] IN ('nee', 'ne') THEN m[1] ELSE m[3] END,
                             CASE WHEN m IS NULL THEN NULL
                                  WHEN m[2] IN ('nee', 'ne') THEN m[3] ELSE m[1] END,
                             cv_norm_name(birth)]
    LOOP
        k := replace(k, ' ', '');
        IF k <> '' AND NOT k = ANY (keys) THEN
            keys := keys || k;
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT unnest(keys) ORDER BY 1);
END $$;

-- Given names as a set: "Jean-Pierre" = "Jean Pierre" = "Pierre Jean".
CREATE FUNCTION cv_given_key(t text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN NULLIF(array_to_string(ARRAY(
               SELECT DISTINCT w FROM unnest(string_to_array(cv_norm_name(t), ' ')) AS u(w)
               ORDER BY w), ' '), '');
END $$;

-- A postal address: street line folded with the usual abbreviations spelt
-- out, and the postcode (or the town when there is none).
CREATE FUNCTION cv_address_key(a jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    street text;
    place text;
BEGIN
    IF jsonb_typeof(a) IS DISTINCT FROM 'object' THEN
        RETURN NULL;
    END IF;
    street := NULLIF(array_to_string(ARRAY(
                  SELECT CASE w WHEN 'r' THEN 'rue' WHEN 'av' THEN 'avenue' WHEN 'ave' THEN 'avenue'
                                WHEN 'bd' THEN 'boulevard' WHEN 'bld' THEN 'boulevard'
                                WHEN 'pl' THEN 'place' WHEN 'imp' THEN 'impasse'
                                WHEN 'ch' THEN 'chemin' WHEN 'che' THEN 'chemin'
                                WHEN 'rte' THEN 'route' WHEN 'all' THEN 'allee'
                                WHEN 'fbg' THEN 'faubourg' WHEN 'sq' THEN 'square'
                                WHEN 'st' THEN 'saint' WHEN 'ste' THEN 'sainte'
                                ELSE w END
                  FROM unnest(string_to_array(cv_fold(a->>'line1'), ' ')) WITH ORDINALITY AS u(w, i)
                  ORDER BY i), ' '), '');
    place := COALESCE(NULLIF(regexp_replace(a->>'postcode', '[^0-9A-Za-z]', '', 'g'), ''),
                      cv_fold(a->>'city'));
    RETURN CASE WHEN street IS NOT NULL AND place IS NOT NULL THEN street || '|' || place END;
END $$;

-- The identifiers of one identity block (the event's `citizen` object).
CREATE FUNCTION cv_identifiers(c jsonb) RETURNS TABLE (kind text, value text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    given text;
    born text;
    address text;
    f text;
BEGIN
    IF jsonb_typeof(c) IS DISTINCT FROM 'object' THEN
        RETURN;
    END IF;
    kind := 'email'; value := cv_norm_email(c->>'email');
    IF value IS NOT NULL THEN RETURN NEXT; END IF;
    kind := 'phone'; value := cv_norm_phone(c->>'phone');
    IF value IS NOT NULL THEN RETURN NEXT; END IF;
    given := cv_given_key(c->>'given_names');
    IF given IS NULL THEN
        RETURN;
    END IF;
    born := substring(c->>'birth_date' FROM '^[0-9]{4}-[0-9]{2}-[0-9]{2}$');
    address := cv_address_key(c->'address');
    IF born IS NULL AND address IS NULL THEN
        RETURN;
    END IF;
    FOREACH f IN ARRAY cv_family_keys(c->>'family_name', c->>'birth_name') LOOP
        kind := 'name_birth'; value := f || '|' || given || '|' || born;
        IF value IS NOT NULL THEN RETURN NEXT; END IF;
        kind := 'name_address'; value := f || '|' || given || '|' || address;
        IF value IS NOT NULL THEN RETURN NEXT; END IF;
    END LOOP;
END $$;

-- How sure a shared identifier makes us (docs/identity.md).
CREATE FUNCTION cv_identity_confidence(kind text) RETURNS real
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind WHEN 'email' THEN 0.95 WHEN 'phone' THEN 0.9
                     WHEN 'name_birth' THEN 0.9 WHEN 'name_address' THEN 0.6 END::real
$$;

-- ---- resolution on the ingest path ----------------------------------------------

CREATE TYPE cv_id_pair AS (n int, source text, citizen_key text, citizen jsonb, occurred_at timestamptz);
CREATE TYPE cv_id_ident AS (n int, kind text, value text);
CREATE TYPE cv_id_link AS (n int, comp int, citizen_id bigint, rule text, confidence real);

-- Links the batch's new (source, citizen_key) pairs to citizens and writes
-- their citizen_sources and citizen_identifiers rows; cv_ingest then finds
-- them as known pairs. Takes cv_ingest's arguments that matter here.
-- Returns the number of new pairs (0: nothing but one probe per element).
CREATE FUNCTION cv_identity_resolve(p_idx int[], p_source text[], p_citizen_key text[],
                                    p_event_id text[], p_occurred_at text[], p_citizen text[])
RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    v_pairs cv_id_pair[];
    v_ids   cv_id_ident[];
    v_links cv_id_link[];
    v_lab   int[];
    v_next  int[];
    v_n     int;
    v_base  bigint;
    v_last  bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- the store's writer lock (002)

    -- New pairs, each with its latest identity block of the batch, numbered
    -- in batch order (the first one of a new person creates the citizen).
    v_pairs := ARRAY(
        SELECT ROW(row_number() OVER (ORDER BY l.first_idx), l.source, l.citizen_key,
                   l.citizen, l.occurred_at)::cv_id_pair
        FROM (SELECT DISTINCT ON (u.source, u.citizen_key)
                     u.source, u.citizen_key, u.citizen::jsonb AS citizen,
                     u.occurred_at::timestamptz AS occurred_at,
                     min(u.idx) OVER (PARTITION BY u.source, u.citizen_key) AS first_idx
              FROM unnest(p_idx, p_source, p_citizen_key, p_event_id, p_occurred_at, p_citizen)
                   AS u(idx, source, citizen_key, event_id, occurred_at, citizen)
              WHERE u.citizen_key IS NOT NULL
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

    -- Pairs of the batch that share a strong identifier are one person:
    -- connected components by min-label propagation (a few rounds).
    v_lab := ARRAY(SELECT g FROM generate_series(1, v_n) g);
    LOOP
        v_next := ARRAY(
            SELECT least(v_lab[g], v_lab[v_lab[g]], COALESCE(m.lab, v_lab[g]))
            FROM generate_series(1, v_n) g
            LEFT JOIN (SELECT s.n, min(s.lab) AS lab
                       FROM (SELECT i.n, min(v_lab[i.n]) OVER (PARTITION BY i.kind, i.value) AS lab
                             FROM unnest(v_ids) i WHERE i.kind <> 'name_address') s
                       GROUP BY s.n) m ON m.n = g
            ORDER BY g);
        EXIT WHEN v_next = v_lab;
        v_lab := v_next;
    END LOOP;

    -- Each component links to the one citizen its strongest matching kind
    -- (e-mail, then phone, then name + birth date) points at. Nothing, or
    -- that kind pointing at two citizens (a conflict): a new citizen. Other
    -- citizens that a weaker kind points at are left to cv_identity_propose.
    -- A pair's rule is the best identifier it shares (with a citizen or
    -- inside the batch).
    v_links := ARRAY(
        WITH ids AS (
            SELECT i.n, i.kind, i.value, v_lab[i.n] AS comp,
                   count(*) OVER (PARTITION BY i.kind, i.value) AS in_batch
            FROM unnest(v_ids) i WHERE i.kind <> 'name_address'
        ), hits AS (
            -- at most two citizens per identifier (two index probes): one
            -- is a match, two a conflict, however common the value is
            SELECT ids.n, ids.comp, ids.kind, h.citizen_id
            FROM ids
            JOIN LATERAL (SELECT ci.citizen_id FROM citizen_identifiers ci
                          WHERE ci.kind = ids.kind AND ci.value = ids.value
                          ORDER BY ci.citizen_id LIMIT 1) h1 ON true
            LEFT JOIN LATERAL (SELECT ci.citizen_id FROM citizen_identifiers ci
                               WHERE ci.kind = ids.kind AND ci.value = ids.value
                                 AND ci.citizen_id > h1.citizen_id
                               ORDER BY ci.citizen_id LIMIT 1) h2 ON true
            CROSS JOIN LATERAL (VALUES (h1.citizen_id), (h2.citizen_id)) h(citizen_id)
            WHERE h.citizen_id IS NOT NULL
        ), per_kind AS (
            SELECT h.comp, h.kind, min(h.citizen_id) AS citizen_id, count(DISTINCT h.citizen_id) AS k
            FROM hits h GROUP BY h.comp, h.kind
        ), comp AS (            -- the strongest kind that hit decides
            SELECT DISTINCT ON (p.comp) p.comp, p.citizen_id, p.k
            FROM per_kind p
            ORDER BY p.comp, array_position(ARRAY['email', 'phone', 'name_birth'], p.kind)
        ), best AS (
            SELECT DISTINCT ON (x.n) x.n, x.kind
            FROM (SELECT h.n, h.kind FROM hits h
                  UNION ALL SELECT ids.n, ids.kind FROM ids WHERE ids.in_batch > 1) x
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
    SELECT l.citizen_id, i.kind, i.value, v_pairs[i.n].source, v_pairs[i.n].citizen_key
    FROM unnest(v_ids) i JOIN unnest(v_links) l ON l.n = i.n;

    RETURN v_n;
END $fn$;

-- cv_ingest (002) becomes cv_ingest_core; cv_ingest resolves identities
-- first, in the same transaction, then runs it unchanged.
ALTER FUNCTION cv_ingest(int[], text[], text[], text[], bytea, text[], text[], text[], text[],
                         text[], text[], text[], text[], text[], text[], text[], text[],
                         text[], text[], text[], text[]) RENAME TO cv_ingest_core;

CREATE FUNCTION cv_ingest(
    p_idx int[], p_source text[], p_hash text[], p_citizen_key text[], p_codes bytea,
    p_event_id text[], p_kind text[], p_record_id text[], p_request_ref text[],
    p_service text[], p_category text[], p_channel text[], p_status text[],
    p_source_status text[], p_source_channel text[], p_occurred_at text[], p_due_at text[],
    p_summary text[], p_extra text[], p_citizen text[], p_raw text[])
RETURNS TABLE (o_idx int, o_outcome text, o_event_seq bigint, o_request_id bigint,
               o_tracking_code text, o_flagged boolean)
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM cv_identity_resolve(p_idx, p_source, p_citizen_key, p_event_id, p_occurred_at, p_citizen);
    RETURN QUERY SELECT * FROM cv_ingest_core(
        p_idx, p_source, p_hash, p_citizen_key, p_codes, p_event_id, p_kind, p_record_id,
        p_request_ref, p_service, p_category, p_channel, p_status, p_source_status,
        p_source_channel, p_occurred_at, p_due_at, p_summary, p_extra, p_citizen, p_raw);
END $fn$;

-- Pairs stored before this migration keep their citizen and get their identifiers.
UPDATE citizen_sources SET rule = 'new', confidence = 1;
INSERT INTO citizen_identifiers (citizen_id, kind, value, source, source_citizen_id)
SELECT cs.citizen_id, x.kind, x.value, cs.source, cs.source_citizen_id
FROM citizen_sources cs, LATERAL cv_identifiers(cs.identity) x;

-- ---- proposals, off the ingest path -------------------------------------------

-- Proposes every two current citizens that share an identifier and were
-- never proposed: weak matches (name + address; not when both have birth
-- dates and none in common) and strong conflicts left by resolution (an
-- e-mail or phone of two citizens). Returns the number of new proposals.
CREATE FUNCTION cv_identity_propose() RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    v_rows int;
BEGIN
    INSERT INTO merge_proposals (citizen_a, citizen_b, rule, confidence)
    SELECT DISTINCT ON (s.a, s.b) s.a, s.b, s.kind, cv_identity_confidence(s.kind)
    FROM (SELECT x.citizen_id AS a, y.citizen_id AS b, x.kind
          FROM citizen_identifiers x
          JOIN citizen_identifiers y ON y.kind = x.kind AND y.value = x.value
                                    AND y.citizen_id > x.citizen_id) s
    WHERE NOT EXISTS (SELECT 1 FROM merge_proposals p WHERE p.citizen_a = s.a AND p.citizen_b = s.b)
      AND NOT EXISTS (SELECT 1 FROM citizens c WHERE c.id IN (s.a, s.b) AND c.merged_into IS NOT NULL)
      AND NOT (s.kind = 'name_address' AND cv_birth_dates_differ(s.a, s.b))
    ORDER BY s.a, s.b, cv_identity_confidence(s.kind) DESC
    ON CONFLICT (citizen_a, citizen_b) DO NOTHING;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END $fn$;

-- Both citizens have birth dates and none in common.
CREATE FUNCTION cv_birth_dates_differ(a bigint, b bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    WITH d AS (SELECT cs.citizen_id, cs.identity->>'birth_date' AS born
               FROM citizen_sources cs
               WHERE cs.citizen_id IN (a, b) AND cs.identity->>'birth_date' IS NOT NULL)
    SELECT EXISTS (SELECT 1 FROM d WHERE d.citizen_id = a)
       AND EXISTS (SELECT 1 FROM d WHERE d.citizen_id = b)
       AND NOT EXISTS (SELECT 1 FROM d x JOIN d y ON y.born = x.born
                       WHERE x.citizen_id = a AND y.citizen_id = b)
$$;

-- ---- merge and split ----------------------------------------------------------

-- One event per request in p_requests, in the timeline: kind p_kind
-- ('citizen_merge' / 'citizen_split'), the request's current status and
-- labels repeated, citizen_id the citizen it now belongs to. Source
-- 'civibus', event_id '<kind>:<merge id>:<request id>'. Caller holds the lock.
CREATE FUNCTION cv_citizen_events(p_kind text, p_merge bigint, p_requests bigint[], p_citizen bigint)
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
CREATE FUNCTION cv_citizen_merge(p_keep bigint, p_absorb bigint, p_actor text) RETURNS bigint
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
CREATE FUNCTION cv_citizen_split(p_merge bigint, p_actor text) RETURNS void
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
