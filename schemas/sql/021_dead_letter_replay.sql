-- 021_dead_letter_replay.sql — fixing what was stored (docs/operations.md,
-- "Fixing what was stored"): `civibusctl dead-letters replay` and
-- `civibusctl remap`.
--
--   * dead_letters.replayed_at / replayed_event: a dead letter whose payload
--     the source's current mapping now maps, stored by `dead-letters replay`
--     (events.id of the stored or already-present event). A replayed dead
--     letter is never replayed again; the row stays (its payload is erased
--     with the rest by retention and erasure, as before). One that still
--     does not map keeps its row and reason; replay_reason / replay_detail /
--     replay_tried_at say what the mapping said at the last replay.
--   * fix_runs: one row per run of either command (who, when, which source,
--     the counts): the audit of corrections. No personal data.
--
-- The projection rule of correction events (kind 'correction', written by
-- `remap`) is a trigger of functions/remap.sql.

ALTER TABLE dead_letters
    ADD COLUMN replayed_at    timestamptz,
    ADD COLUMN replayed_event bigint,          -- events.id (no foreign key: events is append-only anyway)
    ADD COLUMN replay_reason  text,            -- still dead: the reason the mapping gave at the last replay
    ADD COLUMN replay_detail  text,            -- and its detail (names a field path, never a value)
    ADD COLUMN replay_tried_at timestamptz;

CREATE INDEX dead_letters_pending ON dead_letters (source, reason, id) WHERE replayed_at IS NULL;

CREATE TABLE fix_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command     text NOT NULL CHECK (command IN ('dead-letters replay', 'remap')),
    run_by      text NOT NULL DEFAULT 'civibusctl',
    db_user     text NOT NULL DEFAULT current_user,
    run_at      timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    options     jsonb NOT NULL DEFAULT '{}',   -- reason, since, dry_run
    counts      jsonb NOT NULL                 -- what the command printed, as numbers
);
