-- functions/identity_resolve.sql — identity resolution on the ingest path
-- (docs/identity.md): cv_ingest first calls cv_identity_resolve on the batch, which
-- links the new (source, source_citizen_id) pairs to citizens, with the veto on
-- e-mail / phone links, and records a known pair's new identifiers. Composite types
-- cv_id_pair, cv_id_ident, cv_id_link (004_identity.sql), cv_id_class and cv_id_hit
-- (006_identity_guard.sql) stay in the numbered migrations.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.

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
-- The new identifiers carry the pair's own level (019: a new value was
-- checked by nobody), and an agent's check of a field whose value the new
-- block changes is dropped (one more probe per such element, only once
-- citizen_checks holds a row).
-- Caller holds the writer lock. One index probe per element with a block.
CREATE OR REPLACE FUNCTION cv_identity_add_known(p_source text[], p_citizen_key text[], p_citizen text[])
RETURNS void
LANGUAGE plpgsql
-- a batch x index probes, never a scan of citizen_sources (as in cv_ingest_core)
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
BEGIN
    INSERT INTO citizen_identifiers (citizen_id, kind, value, source, source_citizen_id, declared,
                                     certainty, holder, shared)
    SELECT DISTINCT d.citizen_id, x.kind, x.value, d.source, d.citizen_key, d.certainty < 2, d.certainty,
           cv_identity_holder(d.citizen),
           x.kind IN ('email', 'phone')
           AND EXISTS (SELECT 1 FROM shared_identifiers s
                       WHERE s.kind = x.kind AND s.value_hash = cv_identifier_hash(x.kind, x.value))
    FROM (SELECT u.source, u.citizen_key, u.citizen::jsonb AS citizen, cs.citizen_id, cs.certainty
          FROM unnest(p_source, p_citizen_key, p_citizen) AS u(source, citizen_key, citizen)
          JOIN LATERAL (SELECT cs.citizen_id, cs.identity, cs.certainty FROM citizen_sources cs
                        WHERE cs.source = u.source AND cs.source_citizen_id = u.citizen_key) cs ON true
          WHERE u.citizen_key IS NOT NULL AND u.citizen IS NOT NULL
            AND cs.identity IS DISTINCT FROM u.citizen::jsonb) d
    CROSS JOIN LATERAL cv_identifiers(d.citizen) x
    WHERE NOT EXISTS (SELECT 1 FROM citizen_identifiers ci
                      WHERE ci.source = d.source AND ci.source_citizen_id = d.citizen_key
                        AND ci.kind = x.kind AND ci.value = x.value);
    IF EXISTS (SELECT 1 FROM citizen_checks) THEN
        DELETE FROM citizen_checks ch
        USING (SELECT u.source, u.citizen_key, u.citizen::jsonb AS citizen, cs.identity
               FROM unnest(p_source, p_citizen_key, p_citizen) AS u(source, citizen_key, citizen)
               JOIN LATERAL (SELECT cs.identity FROM citizen_sources cs
                             WHERE cs.source = u.source AND cs.source_citizen_id = u.citizen_key) cs ON true
               WHERE u.citizen_key IS NOT NULL AND u.citizen IS NOT NULL
                 AND cs.identity IS DISTINCT FROM u.citizen::jsonb) d
        WHERE ch.source = d.source AND ch.source_citizen_id = d.citizen_key
          AND d.identity->ch.field IS DISTINCT FROM d.citizen->ch.field;
    END IF;
END $fn$;

-- The resolution of new pairs, with the veto. Steps, all set-based:
--   1. new pairs (latest non-NULL block of the batch), their identifiers,
--      birth date and initial (v_born, v_init, indexed by pair);
--   2. classes (cv_id_class) and connected components inside the batch;
--   3. hits: at most two stored citizens per identifier (two index
--      probes); an e-mail / phone hit is vetoed when the component's and
--      the citizen's birth dates or initials clash (the citizen's come from
--      its pairs' identity blocks: one index probe per citizen hit);
--   4. links from the hits that are not vetoed: each component links to the
--      one citizen its strongest matching kind points at; new citizens;
--   5. vetoed matches, and batch pairs sharing an e-mail / phone that ended
--      up apart, become open proposals (rule '<kind>_conflict').
-- A self-declared pair (its source at level 1 in identity_sources, 015 and
-- 019; cv_source_certainty) joins
-- no class, links to nobody (a citizen of its own) and every citizen it hits
-- gets a proposal 'declared_<kind>'; its identifiers are stored declared
-- and are never a hit (NOT ci.declared), so nothing links to them either.
-- Caller holds the writer lock.
CREATE OR REPLACE FUNCTION cv_identity_link_new(p_idx int[], p_source text[], p_citizen_key text[],
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
    v_given text[];
    v_fam   text[];
    v_decl  boolean[];
    v_cert  smallint[];
    v_hold  text[];
    v_shared text[];
    v_solo  boolean[];
    v_max_shared int := cv_identity_setting('max_shared', 3);
    v_max_absorb int := cv_identity_setting('max_absorb', 20);
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
    v_given := ARRAY(SELECT cv_identity_given(p.citizen) FROM unnest(v_pairs) p ORDER BY p.n);
    -- a pair's family name keys, as one text ('|'-joined) per pair
    v_fam := ARRAY(SELECT array_to_string(cv_identity_families(p.citizen), '|') FROM unnest(v_pairs) p ORDER BY p.n);
    -- each pair's level (019); self-declared pairs (level 1): never linked
    v_cert := ARRAY(SELECT cv_source_certainty(p.source) FROM unnest(v_pairs) p ORDER BY p.n);
    v_decl := ARRAY(SELECT c < 2 FROM unnest(v_cert) c);
    v_hold := ARRAY(SELECT cv_identity_holder(p.citizen) FROM unnest(v_pairs) p ORDER BY p.n);

    -- Shared values (017): an e-mail or phone held by more than max_shared
    -- holders, stored ones (a bounded scan) and this batch's together, is
    -- marked shared once; a shared value neither links, nor joins pairs of
    -- the batch, nor is proposed.
    WITH bv AS (
        SELECT i.kind, i.value,
               array_agg(DISTINCT v_hold[i.n]) FILTER (WHERE v_hold[i.n] IS NOT NULL) AS holders
        FROM unnest(v_ids) i
        WHERE i.kind IN ('email', 'phone') AND NOT v_decl[i.n]
        GROUP BY i.kind, i.value
    ), counted AS (
        SELECT bv.kind, bv.value,
               (SELECT count(*) FROM (SELECT h FROM unnest(bv.holders) h
                                      UNION
                                      SELECT x.holder FROM (SELECT ci.holder FROM citizen_identifiers ci
                                                            WHERE ci.kind = bv.kind AND ci.value = bv.value
                                                              AND ci.holder IS NOT NULL
                                                            LIMIT 256) x) u) AS holders
        FROM bv
        WHERE NOT EXISTS (SELECT 1 FROM shared_identifiers s
                          WHERE s.kind = bv.kind AND s.value_hash = cv_identifier_hash(bv.kind, bv.value))
    ), marked AS (
        INSERT INTO shared_identifiers (kind, value_hash, holders)
        SELECT c.kind, cv_identifier_hash(c.kind, c.value), c.holders FROM counted c
        WHERE c.holders > v_max_shared
        ON CONFLICT (kind, value_hash) DO NOTHING
        RETURNING kind, value_hash
    )
    UPDATE citizen_identifiers ci SET shared = true
    FROM marked m, counted c
    WHERE m.kind = c.kind AND m.value_hash = cv_identifier_hash(c.kind, c.value)
      AND ci.kind = c.kind AND ci.value = c.value;
    v_shared := ARRAY(
        SELECT DISTINCT i.kind || '|' || i.value FROM unnest(v_ids) i
        WHERE i.kind IN ('email', 'phone')
          AND EXISTS (SELECT 1 FROM shared_identifiers s
                      WHERE s.kind = i.kind AND s.value_hash = cv_identifier_hash(i.kind, i.value)));

    -- 2. Classes: name + birth date joins its value; an e-mail or phone its
    -- value and the (single) birth date, initial, full given names and family
    -- name keys of its group (a pair that lacks one takes the group's single
    -- value, and joins nobody when the group has several). A self-declared
    -- pair, or a shared value, joins nobody (class NULL).
    v_cls := ARRAY(
        SELECT ROW(g.n, g.kind, g.value,
                   CASE WHEN g.kind = 'name_birth' THEN g.kind || '|' || g.value
                        WHEN (g.born IS NULL AND g.bmin IS DISTINCT FROM g.bmax)
                          OR (g.init IS NULL AND g.imin IS DISTINCT FROM g.imax)
                          OR (g.given IS NULL AND g.gmin IS DISTINCT FROM g.gmax)
                          OR (g.fam IS NULL AND g.fmin IS DISTINCT FROM g.fmax) THEN NULL
                        ELSE g.kind || '|' || g.value || '|' || COALESCE(g.born, g.bmin, '')
                             || '|' || COALESCE(g.init, g.imin, '')
                             || '|' || COALESCE(g.given, g.gmin, '')
                             || '|' || COALESCE(g.fam, g.fmin, '') END)::cv_id_class
        FROM (SELECT i.n, i.kind, i.value, v_born[i.n] AS born, v_init[i.n] AS init,
                     v_given[i.n] AS given, NULLIF(v_fam[i.n], '') AS fam,
                     min(v_born[i.n]) OVER w AS bmin, max(v_born[i.n]) OVER w AS bmax,
                     min(v_init[i.n]) OVER w AS imin, max(v_init[i.n]) OVER w AS imax,
                     min(v_given[i.n]) OVER w AS gmin, max(v_given[i.n]) OVER w AS gmax,
                     min(NULLIF(v_fam[i.n], '')) OVER w AS fmin, max(NULLIF(v_fam[i.n], '')) OVER w AS fmax
              FROM unnest(v_ids) i WHERE i.kind <> 'name_address' AND NOT v_decl[i.n]
                AND NOT (i.kind || '|' || i.value = ANY (v_shared))
              WINDOW w AS (PARTITION BY i.kind, i.value)) g
        UNION ALL
        SELECT ROW(i.n, i.kind, i.value, NULL)::cv_id_class
        FROM unnest(v_ids) i WHERE i.kind <> 'name_address' AND v_decl[i.n]
          AND NOT (i.kind || '|' || i.value = ANY (v_shared))
        ORDER BY 1);

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
    -- A component larger than max_absorb (017) is not one person: its pairs
    -- stay apart, each its own citizen, and their matches are proposed.
    v_solo := ARRAY(SELECT s.big FROM (SELECT g, count(*) OVER (PARTITION BY v_lab[g]) > v_max_absorb AS big
                                       FROM generate_series(1, v_n) g) s ORDER BY s.g);
    IF true = ANY (v_solo) THEN
        v_lab := ARRAY(SELECT CASE WHEN v_solo[g] THEN g ELSE v_lab[g] END FROM generate_series(1, v_n) g ORDER BY g);
    END IF;

    -- 3. Hits, with the veto.
    v_hits := ARRAY(
        WITH hits AS (
            SELECT c.n, v_lab[c.n] AS comp, c.kind, h.citizen_id
            FROM unnest(v_cls) c
            JOIN LATERAL (SELECT ci.citizen_id FROM citizen_identifiers ci
                          WHERE ci.kind = c.kind AND ci.value = c.value AND NOT ci.declared
                          ORDER BY ci.citizen_id LIMIT 1) h1 ON true
            LEFT JOIN LATERAL (SELECT ci.citizen_id FROM citizen_identifiers ci
                               WHERE ci.kind = c.kind AND ci.value = c.value AND NOT ci.declared
                                 AND ci.citizen_id > h1.citizen_id
                               ORDER BY ci.citizen_id LIMIT 1) h2 ON true
            CROSS JOIN LATERAL (VALUES (h1.citizen_id), (h2.citizen_id)) h(citizen_id)
            WHERE h.citizen_id IS NOT NULL
        ), citizen_sig AS (     -- what the stored citizens hit by e-mail / phone know
            SELECT c.citizen_id, s.born, s.init, s.given, s.family
            FROM (SELECT DISTINCT h.citizen_id FROM hits h WHERE h.kind IN ('email', 'phone')) c
            CROSS JOIN LATERAL (
                SELECT array_agg(DISTINCT b.born) FILTER (WHERE b.born IS NOT NULL) AS born,
                       array_agg(DISTINCT b.init) FILTER (WHERE b.init IS NOT NULL) AS init,
                       array_agg(DISTINCT b.given) FILTER (WHERE b.given IS NOT NULL) AS given,
                       array_agg(DISTINCT f.family) FILTER (WHERE f.family IS NOT NULL) AS family
                FROM citizen_sources cs
                CROSS JOIN LATERAL (SELECT cv_identity_born(cs.identity) AS born,
                                           cv_identity_initial(cs.identity) AS init,
                                           cv_identity_given(cs.identity) AS given) b
                LEFT JOIN LATERAL unnest(cv_identity_families(cs.identity)) AS f(family) ON true
                WHERE cs.citizen_id = c.citizen_id) s
        ), comp_sig AS (        -- what each component of the batch knows
            SELECT v_lab[g] AS comp,
                   array_agg(DISTINCT v_born[g]) FILTER (WHERE v_born[g] IS NOT NULL) AS born,
                   array_agg(DISTINCT v_init[g]) FILTER (WHERE v_init[g] IS NOT NULL) AS init,
                   array_agg(DISTINCT v_given[g]) FILTER (WHERE v_given[g] IS NOT NULL) AS given
            FROM generate_series(1, v_n) g GROUP BY v_lab[g]
        ), comp_fam AS (        -- and the family name keys of its pairs
            SELECT v_lab[g] AS comp, array_agg(DISTINCT f) AS family
            FROM generate_series(1, v_n) g, unnest(string_to_array(NULLIF(v_fam[g], ''), '|')) f
            GROUP BY v_lab[g]
        )
        SELECT ROW(h.n, h.comp, h.kind, h.citizen_id,
                   h.kind IN ('email', 'phone')
                   AND COALESCE(cv_identity_clash(p.born, p.init, p.given, pf.family,
                                                      s.born, s.init, s.given, s.family), false))::cv_id_hit
        FROM hits h
        JOIN comp_sig p ON p.comp = h.comp
        LEFT JOIN comp_fam pf ON pf.comp = h.comp
        LEFT JOIN citizen_sig s ON s.citizen_id = h.citizen_id
        ORDER BY h.n, h.kind, h.citizen_id);

    -- 4. Each component links to the one citizen its strongest matching kind
    -- (e-mail, then phone, then name + birth date) points at, vetoed hits
    -- left out; nothing, or two citizens (a conflict): a new citizen. A
    -- pair's rule is the best identifier it shares (with a citizen or in
    -- its class inside the batch).
    v_links := ARRAY(
        WITH ok AS (
            SELECT h.n, h.comp, h.kind, h.citizen_id FROM unnest(v_hits) h
            WHERE NOT h.vetoed AND NOT v_decl[h.n] AND NOT v_solo[h.n]
        ), shared AS (
            SELECT s.n, s.kind
            FROM (SELECT c.n, c.kind, count(*) OVER (PARTITION BY c.cls) AS k
                  FROM unnest(v_cls) c WHERE c.cls IS NOT NULL AND NOT v_solo[c.n]) s
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
                                 rule, confidence, declared, certainty)
    SELECT x.source, x.citizen_key, x.citizen_id, x.citizen, x.occurred_at, x.rule, x.confidence,
           v_decl[x.n], v_cert[x.n]
    FROM unnest(v_pairs, v_links) AS x(n, source, citizen_key, citizen, occurred_at,
                                      ln, comp, citizen_id, rule, confidence);

    INSERT INTO citizen_identifiers (citizen_id, kind, value, source, source_citizen_id, declared,
                                     certainty, holder, shared)
    SELECT (v_links[i.n]).citizen_id, i.kind, i.value, (v_pairs[i.n]).source, (v_pairs[i.n]).citizen_key,
           v_decl[i.n], v_cert[i.n], v_hold[i.n], i.kind || '|' || i.value = ANY (v_shared)
    FROM unnest(v_ids) i;

    -- 5. Vetoed matches, and every match of a self-declared pair, become
    -- proposals, in (a, b) order like cv_identity_propose (no deadlock
    -- between the two).
    INSERT INTO merge_proposals (citizen_a, citizen_b, rule, confidence)
    SELECT DISTINCT ON (least(x.mine, x.other), greatest(x.mine, x.other))
           least(x.mine, x.other), greatest(x.mine, x.other), x.rule, cv_identity_confidence(x.rule)
    FROM (SELECT (v_links[h.n]).citizen_id AS mine, h.citizen_id AS other,
                 CASE WHEN h.vetoed THEN h.kind || '_conflict' WHEN v_decl[h.n] THEN 'declared_' || h.kind
                      ELSE 'large_' || h.kind END AS rule
          FROM unnest(v_hits) h WHERE h.vetoed OR v_decl[h.n] OR v_solo[h.n]
          UNION ALL
          SELECT a.citizen_id, b.citizen_id,
                 CASE WHEN a.decl OR b.decl THEN 'declared_' || a.kind ELSE a.kind || '_conflict' END
          FROM (SELECT d.kind, d.value, d.citizen_id, d.decl
                FROM (SELECT DISTINCT c.kind, c.value, (v_links[c.n]).citizen_id AS citizen_id,
                             v_decl[c.n] AS decl,
                             count(*) OVER (PARTITION BY c.kind, c.value) AS k
                      FROM unnest(v_cls) c WHERE c.kind IN ('email', 'phone') AND NOT v_solo[c.n]) d
                WHERE d.k > 1) a
          JOIN (SELECT DISTINCT c.kind, c.value, (v_links[c.n]).citizen_id AS citizen_id,
                       v_decl[c.n] AS decl
                FROM unnest(v_cls) c WHERE c.kind IN ('email', 'phone') AND NOT v_solo[c.n]) b
            ON b.kind = a.kind AND b.value = a.value AND b.citizen_id > a.citizen_id) x
    WHERE x.mine <> x.other
    ORDER BY least(x.mine, x.other), greatest(x.mine, x.other),
             cv_identity_confidence(x.rule) DESC, x.rule
    ON CONFLICT (citizen_a, citizen_b) DO NOTHING;

    RETURN v_n;
END $fn$;
