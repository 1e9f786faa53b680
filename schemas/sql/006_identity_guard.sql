-- 006_identity_guard.sql — identity resolution, second round (docs/identity.md):
--
--   * a veto on automatic e-mail / phone links: two sides that both have
--     birth dates and none in common, or both have given names and no
--     folded first initial in common, are two people (a family e-mail
--     shared by spouses). The match becomes a merge proposal, rule
--     'email_conflict' / 'phone_conflict', never a link. Inside a batch,
--     new pairs sharing an e-mail or phone are one person only when their
--     birth dates and initials agree (see cv_identity_link_new);
--   * a known pair's new identifiers: a (source, source_citizen_id) pair
--     whose identity block changes (a new e-mail, phone, name) adds the new
--     identifiers to citizen_identifiers, without re-linking the pair;
--   * cv_citizen_detach: undoes one automatic (or any) link: the pair, its
--     identifiers and its requests move to a new citizen, with a timeline
--     event and a rejected proposal so that the two are not proposed again;
--   * the hub may send p_citizen[i] = NULL for an element whose pair it
--     knows is linked with an unchanged identity block: resolution skips
--     such elements, and cv_ingest_core no longer overwrites a stored
--     identity with NULL (the latest non-NULL block of the batch counts).
--
-- Here: the composite types of the veto and the detach table. The functions
-- (cv_identity_born, _initial, _clash, _confidence in
-- functions/identity_normalise.sql; cv_identity_resolve, _add_known,
-- _link_new in identity_resolve.sql; cv_citizen_detach in
-- identity_merge.sql; cv_ingest_core in ingest.sql) are defined there once.

-- ---- resolution on the ingest path ----------------------------------------------

-- A strong identifier (e-mail, phone, name + birth) of a new pair of the
-- batch, with the class that joins pairs inside the batch: an e-mail or
-- phone joins only pairs whose birth date and initial agree (a pair that
-- lacks one joins the group when the group has a single value for it, and
-- nobody when it has several: cls NULL).
CREATE TYPE cv_id_class AS (n int, kind text, value text, cls text);
-- A stored citizen that an identifier of pair n (component comp) points at;
-- vetoed: an e-mail or phone whose two sides clash.
CREATE TYPE cv_id_hit AS (n int, comp int, kind text, citizen_id bigint, vetoed boolean);

-- ---- detach ---------------------------------------------------------------------

-- One pair taken off a citizen by an agent, with exactly what moved.
CREATE TABLE citizen_detaches (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    citizen           bigint NOT NULL,    -- citizens.id the pair left
    new_citizen       bigint NOT NULL,    -- citizens.id created for it
    source            text NOT NULL,      -- the pair (citizen_sources)
    source_citizen_id text NOT NULL,
    rule              text,               -- the link undone, and its confidence
    confidence        real,
    moved_requests    bigint[] NOT NULL,  -- requests.id that moved with the pair
    actor             text NOT NULL,      -- who did it (agent id, no PD)
    detached_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX citizen_detaches_citizen ON citizen_detaches (citizen);
