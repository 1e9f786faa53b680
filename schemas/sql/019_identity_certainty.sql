-- 019_identity_certainty.sql — every identity attribute says how sure it is
-- (docs/identity.md, "Certainty").
--
-- Four levels, as the French GRC identity stores grade them:
--
--   1 declare   self-declared on an unauthenticated channel (a web form,
--               Open311, an e-mail's sender): it proves nothing
--   2 logiciel  given by a back-office software (the service's own record)
--   3 agent     checked by an agent against a document (an identity card,
--               a proof of address) or by contacting the person
--   4 certifie  certified by an identity provider (FranceConnect, later)
--
-- A pair's attributes start at its source's level (identity_sources; a
-- source not listed there is a back-office software, level 2). An agent's
-- check (citizen_checks, cv_identity_check) raises one attribute of one
-- pair to level 3 and says on what document; it holds as long as the value
-- does: a new value from the source, or a rectification, drops it.
--
-- An identifier (citizen_identifiers) is as sure as the least sure
-- attribute it is made of (a name + birth date: the names and the date).
-- Automatic links need level 2 or more on both sides: the new pair's and
-- the stored identifier's. `declared` (015) stays, as the index's column:
-- it is `certainty < 2`, kept so by the functions that set certainty.
--
-- The functions (cv_source_certainty, cv_identity_check, cv_identity_view,
-- ...) are in functions/identity_certainty.sql.

CREATE TABLE identity_certainty_levels (
    level smallint PRIMARY KEY,
    code  text NOT NULL UNIQUE,          -- what the API writes
    label text NOT NULL                  -- what a page shows, in French
);
INSERT INTO identity_certainty_levels (level, code, label) VALUES
    (1, 'declare',  'Déclaré par la personne, non vérifié'),
    (2, 'logiciel', 'Transmis par le logiciel du service'),
    (3, 'agent',    'Vérifié par un agent'),
    (4, 'certifie', 'Certifié (FranceConnect)');

-- The sources with a level other than 2. 015's identity_declared_sources
-- becomes the view of its level-1 rows: a city's
-- `INSERT INTO identity_declared_sources (source, channel)` still works
-- (certainty defaults to 1, the safe side for a source listed without one).
ALTER TABLE identity_declared_sources RENAME TO identity_sources;
ALTER TABLE identity_sources
    ADD COLUMN certainty smallint NOT NULL DEFAULT 1 REFERENCES identity_certainty_levels (level);
CREATE VIEW identity_declared_sources AS
    SELECT source, channel, created_at FROM identity_sources WHERE certainty = 1
    WITH CHECK OPTION;

-- The level the pair's source gave it, once (a source moved to another
-- level later does not change what it already said).
ALTER TABLE citizen_sources ADD COLUMN certainty smallint NOT NULL DEFAULT 2;
UPDATE citizen_sources SET certainty = 1 WHERE declared;
ALTER TABLE citizen_identifiers ADD COLUMN certainty smallint NOT NULL DEFAULT 2;
UPDATE citizen_identifiers SET certainty = 1 WHERE declared;

-- An agent's check of one attribute of one pair: which document (its kind,
-- never its number), who, when. No value: the check is dropped when the
-- value changes (cv_identity_add_known, cv_citizen_rectify) and erased with
-- the pair.
CREATE TABLE citizen_checks (
    source            text NOT NULL,       -- the pair (citizen_sources)
    source_citizen_id text NOT NULL,
    field             text NOT NULL,       -- family_name, given_names, birth_date, email, ...
    certainty         smallint NOT NULL REFERENCES identity_certainty_levels (level),
    document          text NOT NULL,       -- cni, passeport, justificatif_domicile, contact_confirme, ...
    actor             text NOT NULL,       -- 'token:<id>' (API) or 'civibusctl'
    checked_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_citizen_id, field)
);
