-- 004_identity.sql — one citizen across silos: identity resolution, merge
-- proposals, agent merge and split. Rules and confidences: docs/identity.md.
--
-- Design in four lines:
--   * every (source, source_citizen_id) pair leaves normalised identifiers in
--     citizen_identifiers (e-mail, E.164 phone, name + birth date, name +
--     address): a person keeps all of them, whatever the number of sources;
--   * cv_ingest now first calls cv_identity_resolve on the batch: only pairs
--     NOT yet in citizen_sources are looked up (one index probe per
--     identifier, set-based), linked to the citizen their strongest
--     matching identifier points at (with rule and confidence) or given a
--     new citizen; pairs of one batch that share an identifier become one
--     person; an identifier pointing at two citizens is a conflict: a new
--     citizen, and proposals later;
--   * weak matches (name + address) and conflicts become merge_proposals in
--     cv_identity_propose(), off the ingest path (called periodically);
--   * cv_citizen_merge / cv_citizen_split move citizen_sources, identifiers
--     and requests between citizens, remember exactly what moved, and append
--     citizen_merge / citizen_split events (events stay append-only; an
--     absorbed citizen keeps its id, with citizens.merged_into set).
--
-- Here: the tables and the composite types. The functions are in
-- functions/identity_normalise.sql (normalisation), identity_resolve.sql
-- (resolution) and identity_merge.sql (proposals, merge, split). This file
-- also renamed 002's cv_ingest to cv_ingest_core and defined a cv_ingest
-- that resolves identities first (both now in functions/ingest.sql).

CREATE EXTENSION IF NOT EXISTS unaccent;

-- ---- tables ------------------------------------------------------------------

ALTER TABLE citizens ADD COLUMN merged_into bigint;          -- citizens.id, when absorbed
ALTER TABLE citizen_sources ADD COLUMN rule text;            -- 'new', 'email', 'phone', 'name_birth'
ALTER TABLE citizen_sources ADD COLUMN confidence real;

-- PERSONAL DATA (normalised): what a source said about a citizen, one row
-- per identifier of a (source, source_citizen_id) pair.
CREATE TABLE citizen_identifiers (
    citizen_id        bigint NOT NULL,   -- citizens.id (moves on merge / split)
    kind              text NOT NULL CHECK (kind IN ('email', 'phone', 'name_birth', 'name_address')),
    value             text NOT NULL,
    source            text NOT NULL,     -- the pair that gave it (citizen_sources)
    source_citizen_id text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX citizen_identifiers_value ON citizen_identifiers (kind, value, citizen_id);
CREATE INDEX citizen_identifiers_citizen ON citizen_identifiers (citizen_id);
CREATE INDEX citizen_identifiers_pair ON citizen_identifiers (source, source_citizen_id);

-- Two citizens that may be one person, for an agent to decide.
CREATE TABLE merge_proposals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    citizen_a   bigint NOT NULL,         -- the smaller citizens.id
    citizen_b   bigint NOT NULL,
    rule        text NOT NULL,           -- the identifier kind they share
    confidence  real NOT NULL,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'rejected')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    decided_by  text,
    CHECK (citizen_a < citizen_b),
    UNIQUE (citizen_a, citizen_b)        -- proposed once, whatever the answer
);
CREATE INDEX merge_proposals_open ON merge_proposals (status) WHERE status = 'open';

-- One agent merge, with exactly what it moved, so that a split restores it.
CREATE TABLE citizen_merges (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    keep             bigint NOT NULL,    -- citizens.id that stays
    absorb           bigint NOT NULL,    -- citizens.id merged into keep
    actor            text NOT NULL,      -- who did it (agent id, no PD)
    merged_at        timestamptz NOT NULL DEFAULT now(),
    moved_sources    text[] NOT NULL,    -- the absorbed pairs: sources ...
    moved_keys       text[] NOT NULL,    -- ... and their source_citizen_id
    moved_requests   bigint[] NOT NULL,  -- requests.id that pointed at absorb
    moved_citizens   bigint[] NOT NULL,  -- citizens merged into absorb earlier
    split_at         timestamptz,
    split_by         text
);
CREATE INDEX citizen_merges_keep ON citizen_merges (keep);
CREATE INDEX citizen_merges_absorb ON citizen_merges (absorb);

-- ---- resolution on the ingest path ----------------------------------------------

CREATE TYPE cv_id_pair AS (n int, source text, citizen_key text, citizen jsonb, occurred_at timestamptz);
CREATE TYPE cv_id_ident AS (n int, kind text, value text);
CREATE TYPE cv_id_link AS (n int, comp int, citizen_id bigint, rule text, confidence real);

-- Pairs stored before this migration keep their citizen. They also got their
-- identifiers here (INSERT INTO citizen_identifiers ... cv_identifiers(identity));
-- since the functions moved to functions/, this file runs on fresh databases
-- only (a database part-way through 001-014 is refused: schemas/sql/rewritten),
-- which have no pairs.
UPDATE citizen_sources SET rule = 'new', confidence = 1;
