-- functions/identity_normalise.sql — what an identity block says, normalised: the
-- identifiers of a block (e-mail, E.164 phone, name + birth date, name + address), the
-- confidence of each rule, and the veto's birth date, initial and clash
-- (docs/identity.md).
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.

-- Written in plpgsql: its plans and simple expressions are cached, so a
-- batch of new pairs costs microseconds per identifier (SQL functions with
-- subqueries are planned again for each call).

-- E-mail: trimmed, lower case; NULL unless it looks like local@domain.tld.
CREATE OR REPLACE FUNCTION cv_norm_email(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    e text := lower(btrim(t));
BEGIN
    RETURN CASE WHEN e ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' THEN e END;
END $$;

-- Phone in E.164. French national numbers (0X XX XX XX XX), +33, 0033 and
-- +33 (0)... forms; separators (spaces, dots, dashes, brackets) ignored.
-- NULL when no plausible number remains.
CREATE OR REPLACE FUNCTION cv_norm_phone(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    d text := regexp_replace(replace(t, '(0)', ''), '[^0-9+]', '', 'g');
BEGIN
    d := CASE WHEN d ~ '^\+330[1-9][0-9]{8}$' THEN '+33' || substr(d, 5)
              WHEN d ~ '^\+' THEN d
              WHEN d ~ '^00' THEN '+' || substr(d, 3)
              WHEN d ~ '^0[1-9][0-9]{8}$' THEN '+33' || substr(d, 2) END;
    RETURN CASE WHEN d ~ '^\+[1-9][0-9]{7,14}$' THEN d END;
END $$;

-- Letters and digits only: lower case, no accents (œ → oe), every other run
-- of characters (hyphens, apostrophes, dots, spaces) one space.
CREATE OR REPLACE FUNCTION cv_fold(t text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN NULLIF(btrim(regexp_replace(lower(unaccent(t)), '[^a-z0-9]+', ' ', 'g')), '');
END $$;

-- A name: folded, particles dropped (de, du, des, de la, d', le, la),
-- tokens kept in order, separated by one space.
CREATE OR REPLACE FUNCTION cv_norm_name(t text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN NULLIF(btrim(regexp_replace(' ' || cv_fold(t) || ' ', '( (de|du|des|d|le|la))+(?= )',
                                       '', 'g')), '');
END $$;

-- The family-name keys of an identity block: the usage name and the birth
-- name, each folded, particles dropped, spaces removed. "DUPONT née
-- MARTIN", "MARTIN épouse DUPONT" and birth_name are understood.
CREATE OR REPLACE FUNCTION cv_family_keys(family text, birth text) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    whole text := cv_norm_name(family);
    m text[] := regexp_match(' ' || whole || ' ', '^ (.+?) (nee|ne|epouse|epse|ep|veuve|vve) (.+) $');
    keys text[] := ARRAY[]::text[];
    k text;
BEGIN
    FOREACH k IN ARRAY ARRAY[CASE WHEN m IS NULL THEN whole
                                  WHEN m[2] IN ('nee', 'ne') THEN m[1] ELSE m[3] END,
                             CASE WHEN m IS NULL THEN NULL
                                  WHEN m[2] IN ('nee', 'ne') THEN m[3] ELSE m[1] END,
                             cv_norm_name(birth)]
    LOOP
        k := replace(k, ' ', '');
        IF k <> '' AND NOT k = ANY (keys) THEN
            keys := keys || k;
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT unnest(keys) ORDER BY 1);
END $$;

-- Given names as a set: "Jean-Pierre" = "Jean Pierre" = "Pierre Jean".
CREATE OR REPLACE FUNCTION cv_given_key(t text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN NULLIF(array_to_string(ARRAY(
               SELECT DISTINCT w FROM unnest(string_to_array(cv_norm_name(t), ' ')) AS u(w)
               ORDER BY w), ' '), '');
END $$;

-- A postal address: street line folded with the usual abbreviations spelt
-- out, and the postcode (or the town when there is none).
CREATE OR REPLACE FUNCTION cv_address_key(a jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    street text;
    place text;
BEGIN
    IF jsonb_typeof(a) IS DISTINCT FROM 'object' THEN
        RETURN NULL;
    END IF;
    street := NULLIF(array_to_string(ARRAY(
                  SELECT CASE w WHEN 'r' THEN 'rue' WHEN 'av' THEN 'avenue' WHEN 'ave' THEN 'avenue'
                                WHEN 'bd' THEN 'boulevard' WHEN 'bld' THEN 'boulevard'
                                WHEN 'pl' THEN 'place' WHEN 'imp' THEN 'impasse'
                                WHEN 'ch' THEN 'chemin' WHEN 'che' THEN 'chemin'
                                WHEN 'rte' THEN 'route' WHEN 'all' THEN 'allee'
                                WHEN 'fbg' THEN 'faubourg' WHEN 'sq' THEN 'square'
                                WHEN 'st' THEN 'saint' WHEN 'ste' THEN 'sainte'
                                ELSE w END
                  FROM unnest(string_to_array(cv_fold(a->>'line1'), ' ')) WITH ORDINALITY AS u(w, i)
                  ORDER BY i), ' '), '');
    place := COALESCE(NULLIF(regexp_replace(a->>'postcode', '[^0-9A-Za-z]', '', 'g'), ''),
                      cv_fold(a->>'city'));
    RETURN CASE WHEN street IS NOT NULL AND place IS NOT NULL THEN street || '|' || place END;
END $$;

-- A placeholder (identifier_denylist, 017): never an identifier.
CREATE OR REPLACE FUNCTION cv_identity_denied(p_kind text, p_value text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM identifier_denylist d WHERE d.kind = p_kind AND p_value ~ d.pattern)
$$;

-- Who holds an identifier, for its fan-out (017): the folded family name and
-- the first initial of the block ("dupont|j"); NULL without a family name.
CREATE OR REPLACE FUNCTION cv_identity_holder(c jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN NULLIF(cv_fold(c->>'family_name'), '') || '|' || COALESCE(cv_identity_initial(c), '');
END $$;

-- An identifier's key in shared_identifiers: not the value in clear.
CREATE OR REPLACE FUNCTION cv_identifier_hash(p_kind text, p_value text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(convert_to(p_kind || ':' || p_value, 'UTF8'))
$$;

-- The hub's identity limits (hub config identity.max_shared, identity.max_absorb,
-- set on the store's session as civibus.identity_*); their defaults elsewhere.
CREATE OR REPLACE FUNCTION cv_identity_setting(p_name text, p_default int) RETURNS int
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(NULLIF(current_setting('civibus.identity_' || p_name, true), '')::int, p_default)
$$;

-- The identifiers of one identity block (the event's `citizen` object).
CREATE OR REPLACE FUNCTION cv_identifiers(c jsonb) RETURNS TABLE (kind text, value text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    given text;
    born text;
    address text;
    f text;
BEGIN
    IF jsonb_typeof(c) IS DISTINCT FROM 'object' THEN
        RETURN;
    END IF;
    kind := 'email'; value := cv_norm_email(c->>'email');
    IF value IS NOT NULL AND NOT cv_identity_denied(kind, value) THEN RETURN NEXT; END IF;
    kind := 'phone'; value := cv_norm_phone(c->>'phone');
    IF value IS NOT NULL AND NOT cv_identity_denied(kind, value) THEN RETURN NEXT; END IF;
    given := cv_given_key(c->>'given_names');
    IF given IS NULL THEN
        RETURN;
    END IF;
    born := substring(c->>'birth_date' FROM '^[0-9]{4}-[0-9]{2}-[0-9]{2}$');
    address := cv_address_key(c->'address');
    IF born IS NULL AND address IS NULL THEN
        RETURN;
    END IF;
    FOREACH f IN ARRAY cv_family_keys(c->>'family_name', c->>'birth_name') LOOP
        kind := 'name_birth'; value := f || '|' || given || '|' || born;
        IF value IS NOT NULL THEN RETURN NEXT; END IF;
        kind := 'name_address'; value := f || '|' || given || '|' || address;
        IF value IS NOT NULL THEN RETURN NEXT; END IF;
    END LOOP;
END $$;

-- How sure a shared identifier makes us (docs/identity.md); the conflict rules are a
-- shared e-mail or phone that the veto refused to link.
CREATE OR REPLACE FUNCTION cv_identity_confidence(kind text) RETURNS real
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind WHEN 'email' THEN 0.95 WHEN 'phone' THEN 0.9
                     WHEN 'name_birth' THEN 0.9 WHEN 'name_address' THEN 0.6
                     WHEN 'email_conflict' THEN 0.5 WHEN 'phone_conflict' THEN 0.5
                     WHEN 'declared_email' THEN 0.8 WHEN 'declared_phone' THEN 0.7
                     WHEN 'declared_name_birth' THEN 0.75 WHEN 'declared_name_address' THEN 0.5
                     WHEN 'large_email' THEN 0.6 WHEN 'large_phone' THEN 0.6 WHEN 'large_name_birth' THEN 0.6
                     END::real
$$;

-- The birth date of an identity block (YYYY-MM-DD), or NULL.
CREATE OR REPLACE FUNCTION cv_identity_born(c jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN substring(c->>'birth_date' FROM '^[0-9]{4}-[0-9]{2}-[0-9]{2}$');
END $$;

-- The folded first initial of an identity block's given names ("J-P",
-- "Jean-Pierre" and "Jean Pierre" all give 'j'), or NULL.
CREATE OR REPLACE FUNCTION cv_identity_initial(c jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN NULLIF(left(cv_fold(c->>'given_names'), 1), '');
END $$;

-- A full given name key ("jean pierre" for Jean-Pierre, Jean Pierre or
-- JEAN-PIERRE), or NULL when the block has none or gives an initial (J-P,
-- J. Pierre): an initial only says what cv_identity_initial says.
CREATE OR REPLACE FUNCTION cv_identity_given(c jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k text := cv_given_key(c->>'given_names');
BEGIN
    IF k IS NULL OR k ~ '(^| )[a-z0-9]( |$)' THEN
        RETURN NULL;
    END IF;
    RETURN k;
END $$;

-- The family name keys of a block for the veto (cv_family_keys: usage and birth
-- names), without initials ("L." says too little to tell two people apart).
CREATE OR REPLACE FUNCTION cv_identity_families(c jsonb) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT ARRAY(SELECT k FROM unnest(cv_family_keys(c->>'family_name', c->>'birth_name')) k
                 WHERE length(k) > 1 ORDER BY k)
$$;

DROP FUNCTION IF EXISTS cv_identity_clash(text[], text[], text[], text[]);
DROP FUNCTION IF EXISTS cv_identity_clash(text[], text[], text[], text[], text[], text[]);

-- Two sides (sets of birth dates, of first initials, of full given names, of
-- family name keys) are two people: both know a field and have no value of it
-- in common. Birth dates; initials; full given names, equal or the one of two or
-- more names part of the other (état civil writes "Jean-Pierre, Marcel", the
-- counter "Jean Pierre"; but Jean and Jean-Luc, or Josiane and Julie who share an
-- initial and a family e-mail, are two people); family names (cv_family_keys: the
-- usage and the birth name, so "MARTIN épouse DUPONT" meets both). A side that
-- does not know a field never vetoes on it.
CREATE OR REPLACE FUNCTION cv_identity_clash(a_born text[], a_init text[], a_given text[], a_family text[],
                                             b_born text[], b_init text[], b_given text[], b_family text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (COALESCE(cardinality(a_born), 0) > 0 AND COALESCE(cardinality(b_born), 0) > 0
            AND NOT a_born && b_born)
        OR (COALESCE(cardinality(a_init), 0) > 0 AND COALESCE(cardinality(b_init), 0) > 0
            AND NOT a_init && b_init)
        OR (COALESCE(cardinality(a_given), 0) > 0 AND COALESCE(cardinality(b_given), 0) > 0
            AND NOT EXISTS (SELECT 1 FROM unnest(a_given) x, unnest(b_given) y
                            WHERE x = y
                               OR (x LIKE '% %' AND string_to_array(x, ' ') <@ string_to_array(y, ' '))
                               OR (y LIKE '% %' AND string_to_array(y, ' ') <@ string_to_array(x, ' '))))
        OR (COALESCE(cardinality(a_family), 0) > 0 AND COALESCE(cardinality(b_family), 0) > 0
            AND NOT a_family && b_family)
$$;