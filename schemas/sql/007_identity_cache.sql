-- 007_identity_cache.sql — let the hub skip identity resolution for pairs it
-- knows are linked (docs/identity.md, "Where it runs").
--
-- The hub keeps a bounded cache of (source, source citizen id) pairs whose
-- events it stored (hub/idcache.c). cv_ingest gains a last argument,
-- p_linked: true where the hub's cache knows the element's pair is already
-- in citizen_sources. Those elements reach cv_identity_resolve without
-- their citizen key, which it skips without a probe; cv_ingest_core still
-- gets every argument unchanged (it finds the citizen through
-- citizen_sources and updates a changed identity block as before).
--
-- A wrong "true" (two pairs sharing a 64-bit fingerprint) can only make a
-- new pair skip resolution: cv_ingest_core then gives it a citizen of its
-- own, as it did before identity resolution existed. The 21-argument
-- cv_ingest stays for callers without a cache (the API's Open311 POST).

CREATE FUNCTION cv_ingest(
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
END $fn$;
