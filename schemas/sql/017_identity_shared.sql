-- 017_identity_shared.sql — shared and placeholder values stop linking people
-- (docs/identity.md, "Shared and placeholder values").
--
-- Real city data is full of values that name no one: a placeholder phone typed at
-- the counter (06 00 00 00 00), the town hall's own number, a care home's address,
-- a social worker's e-mail, test@test.fr. Linked as identifiers, they chain
-- thousands of people into one citizen. From this migration on:
--
--   * identifier_denylist: values that are never identifiers (a POSIX regular
--     expression on the normalised value: cv_norm_email, cv_norm_phone), with
--     sensible defaults below; a city adds its own numbers and addresses by SQL;
--   * fan-out: each identifier row records its holder (folded family name and
--     first initial of the block that gave it); a value held by more than
--     identity.max_shared holders (hub config) stops being an identifier for
--     linking and for proposals: it is listed in shared_identifiers (by a hash,
--     not in clear) and its rows are marked shared;
--   * identity.max_absorb: new pairs of one batch that would join into one
--     component larger than that are kept apart (each its own citizen) and
--     proposed instead.
--
-- The functions are in functions/identity_*.sql.

CREATE TABLE identifier_denylist (
    kind       text NOT NULL CHECK (kind IN ('email', 'phone')),
    pattern    text NOT NULL,            -- POSIX regular expression on the normalised value
    reason     text NOT NULL,            -- for the agents and the DPO
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, pattern)
);
INSERT INTO identifier_denylist (kind, pattern, reason) VALUES
    ('phone', '^\+33[1-9]([0-9])\1{7}$', 'one digit then eight identical digits (06 00 00 00 00, 01 11 11 11 11)'),
    ('phone', '^\+33(123456789|102030405|601020304|606060606|607080910)$', 'a sequence typed for lack of a number'),
    ('phone', '^\+?0+$', 'zeros only'),
    ('email', '^(test|tests|essai|aucun|aucune|none|no|non|nomail|noemail|pasdemail|pas\.de\.mail|sansmail|sans\.mail|inconnu|inconnue|xx|xxx|nepasrepondre|ne\.pas\.repondre|noreply|no-reply|donotreply|nobody|personne)@', 'a placeholder local part'),
    ('email', '@(test|tests|essai|aucun|none|nomail|noemail|inconnu)\.[a-z]+$', 'a placeholder domain');

-- Values shared by more than identity.max_shared holders, by hash (sha256 of
-- kind ':' value): they no longer link or propose.
CREATE TABLE shared_identifiers (
    kind       text NOT NULL,
    value_hash bytea NOT NULL,
    holders    int NOT NULL,             -- distinct holders when it was marked
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value_hash)
);

ALTER TABLE citizen_identifiers ADD COLUMN holder text;                         -- family|initial
ALTER TABLE citizen_identifiers ADD COLUMN shared boolean NOT NULL DEFAULT false;

-- Placeholders already stored stop being identifiers.
DELETE FROM citizen_identifiers ci USING identifier_denylist d
 WHERE ci.kind = d.kind AND ci.value ~ d.pattern;
