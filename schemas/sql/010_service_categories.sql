-- 010_service_categories.sql — the catalogue of (category, service) pairs the
-- timeline holds, for Open311's service list (docs/api.md, /open311/v2/services).
--
-- Open311 lists a city's service types. civibus's are the categories the
-- mappings produce (each with the service that handles it); the API listed
-- them with a DISTINCT over all requests, a full scan per call. The
-- catalogue is now a small table: cv_ingest (the hub's 22-argument form,
-- 007) adds the batch's new pairs after storing it, one statement per batch
-- that probes the primary key once per distinct pair of the batch. When
-- several services handle a category, Open311 names the first one seen.

CREATE TABLE service_categories (
    category   text NOT NULL,
    service    text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category, service)
);

INSERT INTO service_categories (category, service, first_seen)
SELECT category, service, min(created_at) FROM requests
WHERE category IS NOT NULL AND service IS NOT NULL
GROUP BY category, service;

CREATE OR REPLACE FUNCTION cv_ingest(
    p_idx int[], p_source text[], p_hash text[], p_citizen_key text[], p_codes bytea,
    p_event_id text[], p_kind text[], p_record_id text[], p_request_ref text[],
    p_service text[], p_category text[], p_channel text[], p_status text[],
    p_source_status text[], p_source_channel text[], p_occurred_at text[], p_due_at text[],
    p_summary text[], p_extra text[], p_citizen text[], p_raw text[], p_linked boolean[])
RETURNS TABLE (o_idx int, o_outcome text, o_event_seq bigint, o_request_id bigint,
               o_tracking_code text, o_flagged boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_keys text[];
BEGIN
    IF p_linked IS NOT NULL AND true = ANY (p_linked) THEN
        v_keys := ARRAY(SELECT CASE WHEN u.linked THEN NULL ELSE u.k END
                        FROM unnest(p_citizen_key, p_linked) WITH ORDINALITY AS u(k, linked, o)
                        ORDER BY u.o);
    ELSE
        v_keys := p_citizen_key;
    END IF;
    IF v_keys IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(v_keys) k WHERE k IS NOT NULL) THEN
        PERFORM cv_identity_resolve(p_idx, p_source, v_keys, p_event_id, p_occurred_at, p_citizen);
    END IF;
    RETURN QUERY SELECT * FROM cv_ingest_core(
        p_idx, p_source, p_hash, p_citizen_key, p_codes, p_event_id, p_kind, p_record_id,
        p_request_ref, p_service, p_category, p_channel, p_status, p_source_status,
        p_source_channel, p_occurred_at, p_due_at, p_summary, p_extra, p_citizen, p_raw);
    INSERT INTO service_categories (category, service)
    SELECT DISTINCT u.c, u.s FROM unnest(p_category, p_service) AS u(c, s)
    WHERE u.c IS NOT NULL AND u.s IS NOT NULL
    ON CONFLICT DO NOTHING;
END $fn$;
