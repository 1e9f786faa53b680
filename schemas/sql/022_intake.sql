-- 022_intake.sql — the front office registers requests itself (docs/intake.md):
-- a counter visit, a phone call or a letter, typed by an agent through
-- POST /v1/requests (functions/intake.sql, cv_intake_register).
--
--   * source 'accueil' is civibus's own front office. What a visitor or a
--     caller says about who they are is self-declared until an agent checks
--     it against a document (docs/identity.md, Certainty): the source is at
--     level 1, and a checked document raises the fields it proves;
--   * letters get a registration number, a yearly sequence per city
--     ("numéro d'enregistrement courrier": 2026-000123), drawn once.

INSERT INTO identity_sources (source, channel, certainty)
VALUES ('accueil', 'front office: counter, phone, letters typed by an agent (POST /v1/requests)', 1)
ON CONFLICT (source) DO NOTHING;

CREATE TABLE courrier_numbers (
    year integer PRIMARY KEY,
    last integer NOT NULL
);
