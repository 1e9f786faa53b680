-- functions/timeline.sql — the timeline stays append-only: a statement trigger on
-- `events` (tables: 001_init.sql) refuses UPDATE, DELETE and TRUNCATE.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.

CREATE OR REPLACE FUNCTION cv_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % refused', TG_OP
        USING HINT = 'Personal data lives in citizen_sources and source_records; erase it there.';
END $$;

CREATE OR REPLACE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION cv_events_append_only();
