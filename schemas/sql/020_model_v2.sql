-- 020_model_v2.sql — the canonical event, schema version 2 (schemas/v2/
-- event.schema.json, docs/schema.md): what real exports carry and version 1
-- had no place for.
--
--   * requested_at: when the citizen asked (Open311's requested_datetime,
--     the start of every response time), apart from when an event happened
--     (occurred_at) and when civibus stored the request (created_at);
--   * a request's location (address, postcode, town, latitude/longitude):
--     where the pothole is, never the citizen's address. Kept with the
--     record's personal data (source_records.location): a location may be
--     a person's home, and it goes with the record on erasure;
--   * an outcome with a reason: how a closed request ended (duplicate of
--     another request, transferred to another body, refused, ...);
--   * channels for what machines and staff submit: 'api' (another system,
--     a portal, a sensor), 'interne' (an agent's own report, a patrol).
--
-- Version 1 events stay valid: every new field is optional.

ALTER DOMAIN cv_channel DROP CONSTRAINT cv_channel_check;
ALTER DOMAIN cv_channel ADD CONSTRAINT cv_channel_check
    CHECK (VALUE IN ('courrier', 'telephone', 'guichet', 'email', 'web', 'api', 'interne', 'autre', 'inconnu'))
    NOT VALID;                 -- every stored value is in the old, smaller list

CREATE DOMAIN cv_outcome AS text
    CHECK (VALUE IN ('done', 'duplicate', 'transferred', 'refused', 'withdrawn', 'no_action', 'other'));

ALTER TABLE events
    ADD COLUMN requested_at   timestamptz,
    ADD COLUMN outcome        cv_outcome,
    ADD COLUMN outcome_reason text,          -- a label (no personal data: docs/mapping.md)
    ADD COLUMN outcome_ref    text;          -- the other request (duplicate) or body (transferred)

ALTER TABLE requests
    ADD COLUMN requested_at   timestamptz,   -- the latest event that gives one; NULL: unknown
    ADD COLUMN outcome        cv_outcome,    -- the latest event that gives one
    ADD COLUMN outcome_reason text,
    ADD COLUMN outcome_ref    text;

-- PERSONAL DATA (may be): the request's location, from the latest record.
ALTER TABLE source_records ADD COLUMN location jsonb;

-- cv_ingest's element types (002) carry the new fields.
ALTER TYPE cv_item
    ADD ATTRIBUTE requested_at timestamptz,
    ADD ATTRIBUTE outcome text,
    ADD ATTRIBUTE outcome_reason text,
    ADD ATTRIBUTE outcome_ref text;
ALTER TYPE cv_data ADD ATTRIBUTE location text;

-- Response times are read from requests by service and status.
CREATE INDEX requests_requested ON requests (service, requested_at) WHERE requested_at IS NOT NULL;
