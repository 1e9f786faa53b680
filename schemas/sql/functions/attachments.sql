-- functions/attachments.sql — a mail's files into `attachments`
-- (030_attachment_sources.sql, docs/attachments.md).
--
--   cv_attachment_sources_set(sources)   the hub, at start-up: the sources of
--                                        civibus.yaml with `attachments: true`,
--                                        and the trigger for their records
--   cv_attachments_from_record()         that trigger: the record's "files"
--
-- The trigger's WHEN clause lists the sources (as routing's does), so the
-- records of every other source never call a function.

CREATE OR REPLACE FUNCTION cv_attachment_sources_set(p_sources text[]) RETURNS int
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_list text;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- the store's writer lock: no batch in between
    DELETE FROM attachment_sources;
    INSERT INTO attachment_sources (source)
    SELECT DISTINCT s FROM unnest(p_sources) s WHERE s ~ '^[a-z0-9_-]{1,63}$';
    DROP TRIGGER IF EXISTS source_records_files ON source_records;
    SELECT string_agg(quote_literal(source), ', ' ORDER BY source) INTO v_list FROM attachment_sources;
    IF v_list IS NOT NULL THEN
        EXECUTE format('CREATE TRIGGER source_records_files AFTER INSERT ON source_records '
                       'FOR EACH ROW WHEN (NEW.source IN (%s)) EXECUTE FUNCTION cv_attachments_from_record()',
                       v_list);
    END IF;
    RETURN (SELECT count(*) FROM attachment_sources);
END $fn$;

-- The record's "files" (at most 10), each checked again here: a hash, one of
-- the three types, a size; anything else is left out, never an error that
-- would fail the batch. The same file twice on one request is one row.
CREATE OR REPLACE FUNCTION cv_attachments_from_record() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF json_typeof(NEW.raw) <> 'object' OR json_typeof(NEW.raw->'files') IS DISTINCT FROM 'array' THEN
        RETURN NULL;
    END IF;
    INSERT INTO attachments (request_id, source, source_record_id, sha256, mime, size, name)
    SELECT NEW.request_id, NEW.source, NEW.source_record_id, f->>'sha256', f->>'mime', (f->>'size')::bigint,
           NULLIF(left(regexp_replace(COALESCE(f->>'name', ''), '[[:cntrl:]]', ' ', 'g'), 255), '')
    FROM (SELECT f FROM json_array_elements(NEW.raw->'files') f
          WHERE json_typeof(f) = 'object' LIMIT 10) x
    WHERE f->>'sha256' ~ '^[0-9a-f]{64}$'
      AND f->>'mime' IN ('application/pdf', 'image/jpeg', 'image/png')
      AND f->>'size' ~ '^[1-9][0-9]{0,11}$'
    ON CONFLICT (request_id, sha256) DO NOTHING;
    RETURN NULL;
END $fn$;
