-- 002_ingest.sql — the composite types of cv_ingest, the store's write path.
--
-- cv_ingest and its helpers (cv_ingest_core, cv_tracking_code, cv_next_id)
-- and their design notes are in functions/ingest.sql: intermediate sets are
-- plpgsql arrays of these types, aligned by position — v_in (cv_item, the
-- narrow fields), v_data (cv_data, the wide personal data) and v_plan
-- (cv_plan, step 2's result).

CREATE TYPE cv_item AS (
    idx              int,          -- position of the element in the caller's batch
    source           text,         -- the adapter's source (from its CURVE key)
    content_hash     text,         -- sha256 of the raw record's canonical JSON
    citizen_key      text,         -- source_citizen_id, or 'sha256:<hash of the block>'
    event_id         text,
    kind             text,
    source_record_id text,
    request_ref      text,
    service          text,
    category         text,
    channel          text,
    status           text,
    source_status    text,
    source_channel   text,
    occurred_at      timestamptz,
    due_at           timestamptz
);

-- The personal data of an element, as text: cast (json / jsonb) only where
-- a row is written, so older versions in the batch cost no parsing.
CREATE TYPE cv_data AS (
    raw              text,         -- the raw record as received (JSON text)
    summary          text,
    extra            text,         -- JSON object
    citizen          text          -- JSON object: the identity block
);

-- Step 2's result for one element.
CREATE TYPE cv_plan AS (
    fresh            boolean,      -- first copy of an event id not stored yet
    event_seq        bigint,       -- the events.id it gets (fresh only)
    request_id       bigint,
    new_request      boolean,
    tracking_code    text,         -- for a new request: a code drawn by the hub
    last_of_record   boolean,      -- the latest fresh element of its record (occurred_at, idx)
    citizen_id       bigint,
    new_citizen      boolean,
    last_of_citizen  boolean,      -- the latest fresh element naming its citizen
    flagged          boolean       -- status change outside the lifecycle
);
