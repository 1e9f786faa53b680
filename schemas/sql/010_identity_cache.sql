-- 010_identity_cache.sql — the hub's cache of stored identity blocks, and
-- cv_ingest's final form (docs/identity.md, "Where it runs").
--
-- The hub keeps, per (source, source citizen id), a fingerprint of the
-- identity block PostgreSQL holds for it (hub/idcache.c), and sends an
-- unchanged block as NULL: resolution skips NULL blocks (006) and
-- cv_ingest_core keeps the stored identity. A changed or unknown block is
-- sent whole and goes through resolution, which also records a known
-- pair's new identifiers (006).
--
-- The cache learns only what PostgreSQL confirms: cv_ingest returns, per
-- element, o_identity_current, true when the element's block is the pair's
-- stored identity once the batch is written (one index probe and a jsonb
-- comparison per element sent with a block; none for NULL blocks).
--
-- The same cv_ingest serves the hub and the API's Open311 POST, and adds the
-- batch's new (category, service) pairs to service_categories (009).

-- 004 defined cv_ingest with one result column less.
DROP FUNCTION cv_ingest(int[], text[], text[], text[], bytea, text[], text[], text[], text[],
                        text[], text[], text[], text[], text[], text[], text[], text[],
                        text[], text[], text[], text[]);

CREATE TYPE cv_ingest_out AS (idx int, outcome text, event_seq bigint, request_id bigint,
                              tracking_code text, flagged boolean);

CREATE FUNCTION cv_ingest(
    p_idx int[], p_source text[], p_hash text[], p_citizen_key text[], p_codes bytea,
    p_event_id text[], p_kind text[], p_record_id text[], p_request_ref text[],
    p_service text[], p_category text[], p_channel text[], p_status text[],
    p_source_status text[], p_source_channel text[], p_occurred_at text[], p_due_at text[],
    p_summary text[], p_extra text[], p_citizen text[], p_raw text[])
RETURNS TABLE (o_idx int, o_outcome text, o_event_seq bigint, o_request_id bigint,
               o_tracking_code text, o_flagged boolean, o_identity_current boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_out cv_ingest_out[];
BEGIN
    PERFORM cv_identity_resolve(p_idx, p_source, p_citizen_key, p_event_id, p_occurred_at, p_citizen);
    v_out := ARRAY(SELECT ROW(x.*)::cv_ingest_out FROM cv_ingest_core(
                p_idx, p_source, p_hash, p_citizen_key, p_codes, p_event_id, p_kind, p_record_id,
                p_request_ref, p_service, p_category, p_channel, p_status, p_source_status,
                p_source_channel, p_occurred_at, p_due_at, p_summary, p_extra, p_citizen, p_raw) x);
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
