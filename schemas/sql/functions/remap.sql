-- functions/remap.sql — the projection rule of correction events
-- (docs/schema.md, "Corrections").
--
-- `civibusctl remap` writes, for a record whose stored projection differs from
-- what the source's current mapping makes of it, a new event of kind
-- 'correction' through cv_ingest. The ordinary rule (a known request moves only
-- to an event later by (occurred_at, events.id)) would ignore a correction
-- whose corrected occurred_at is earlier than the wrong one (a time zone fixed
-- eastwards). So a correction, when it is inserted, takes the request's
-- projection whatever its occurred_at: it was computed from the record in
-- effect (the latest version in source_records). It also moves the record's
-- record_at to the corrected time, so cv_ingest's source_records upsert, which
-- runs later in the same statement list, keeps the corrected location. After
-- that the ordinary rule applies: a later event of the source moves the request
-- on, compared with the corrected time.
--
-- Only an event of kind 'correction' whose id starts with 'remap:' is a
-- correction: a mapping rule that happened to be named `correction` stays an
-- ordinary event unless its event ids also start so.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes.

CREATE OR REPLACE FUNCTION cv_correction_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE requests r SET
        status             = NEW.status,
        status_occurred_at = NEW.occurred_at,
        status_event_id    = NEW.id,
        due_at             = NEW.due_at,
        category           = COALESCE(NEW.category, r.category),
        requested_at       = COALESCE(NEW.requested_at, r.requested_at),
        outcome            = NEW.outcome,
        outcome_reason     = NEW.outcome_reason,
        outcome_ref        = NEW.outcome_ref,
        updated_at         = now()
    WHERE r.id = NEW.request_id;
    UPDATE source_records sr SET record_at = NEW.occurred_at, updated_at = now()
    WHERE sr.source = NEW.source AND sr.source_record_id = NEW.source_record_id;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER events_correction
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.kind = 'correction' AND NEW.event_id LIKE 'remap:%')
    EXECUTE FUNCTION cv_correction_apply();
