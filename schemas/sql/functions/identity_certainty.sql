-- functions/identity_certainty.sql — how sure each identity attribute is
-- (019_identity_certainty.sql, docs/identity.md "Certainty"): the levels of
-- a pair's attributes, an agent's check of some of them against a
-- document, the identifiers' certainty that follows, and the identities
-- as the agents' API shows them.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.
-- Functions that call the normalisation (identity_normalise.sql, applied
-- after this file) are plpgsql: their bodies are bound when first run.

-- The level a source's identity blocks carry: identity_sources' row, else
-- 2 (a back-office software).
CREATE OR REPLACE FUNCTION cv_source_certainty(p_source text) RETURNS smallint
LANGUAGE sql STABLE AS $$
    SELECT COALESCE((SELECT s.certainty FROM identity_sources s WHERE s.source = p_source), 2)::smallint
$$;

CREATE OR REPLACE FUNCTION cv_certainty_code(p_level smallint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_level WHEN 1 THEN 'declare' WHEN 2 THEN 'logiciel' WHEN 3 THEN 'agent'
                        WHEN 4 THEN 'certifie' END
$$;

-- The identity fields an identifier of kind p_kind is made of.
CREATE OR REPLACE FUNCTION cv_identifier_fields(p_kind text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind
        WHEN 'email' THEN ARRAY['email']
        WHEN 'phone' THEN ARRAY['phone']
        WHEN 'name_birth' THEN ARRAY['family_name', 'birth_name', 'given_names', 'birth_date']
        WHEN 'name_address' THEN ARRAY['family_name', 'birth_name', 'given_names', 'address']
        ELSE ARRAY[]::text[] END
$$;

-- The documents an agent may check each field against (their kind: never
-- a document's number). An identity card proves a name and a birth date,
-- not an e-mail address; a phone or an e-mail is checked by reaching the
-- person through it (contact_confirme).
CREATE OR REPLACE FUNCTION cv_check_document_fits(p_document text, p_field text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_document IN ('cni', 'passeport', 'titre_sejour', 'permis_conduire', 'livret_famille',
                            'acte_naissance')
            THEN p_field IN ('family_name', 'birth_name', 'given_names', 'birth_date')
        WHEN p_document = 'justificatif_domicile' THEN p_field = 'address'
        WHEN p_document = 'contact_confirme' THEN p_field IN ('email', 'phone')
        ELSE false END
$$;

-- The level of each field the block p_identity of pair (p_source, p_key)
-- holds: an agent's check, else the pair's own level p_base. As
-- {"field": level}.
CREATE OR REPLACE FUNCTION cv_identity_levels(p_source text, p_key text, p_identity jsonb, p_base smallint)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(jsonb_object_agg(f.field, COALESCE(ch.certainty, p_base) ORDER BY f.field), '{}')
    FROM unnest(ARRAY['family_name', 'birth_name', 'given_names', 'birth_date', 'email', 'phone',
                      'address']) AS f(field)
    LEFT JOIN citizen_checks ch ON ch.source = p_source AND ch.source_citizen_id = p_key
                               AND ch.field = f.field
    WHERE jsonb_typeof(p_identity) = 'object' AND p_identity->f.field IS NOT NULL
      AND p_identity->f.field <> 'null'::jsonb
$$;

-- Sets the certainty (and `declared`, certainty < 2) of every identifier of
-- pair (p_source, p_key) from its fields' levels: the least sure field the
-- identifier is made of, among those the block holds. Returns the number
-- of identifiers whose level changed.
CREATE OR REPLACE FUNCTION cv_identity_recertify(p_source text, p_key text) RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    v_levels jsonb;
    v_base smallint;
    v_n int;
BEGIN
    SELECT cv_identity_levels(cs.source, cs.source_citizen_id, cs.identity, cs.certainty), cs.certainty
      INTO v_levels, v_base
      FROM citizen_sources cs WHERE cs.source = p_source AND cs.source_citizen_id = p_key;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    UPDATE citizen_identifiers ci
       SET certainty = l.level, declared = l.level < 2
      FROM (SELECT k.kind,
                   COALESCE((SELECT min((v_levels->>f)::smallint) FROM unnest(cv_identifier_fields(k.kind)) f
                             WHERE v_levels ? f), v_base) AS level
            FROM (VALUES ('email'), ('phone'), ('name_birth'), ('name_address')) k(kind)) l
     WHERE ci.source = p_source AND ci.source_citizen_id = p_key AND ci.kind = l.kind
       AND ci.certainty IS DISTINCT FROM l.level;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END $fn$;

-- An agent checks fields p_fields of pair (p_source, p_key) of citizen
-- p_citizen against a document of kind p_document: each field gets level 3
-- (agent) with the document, the actor and the time (a second check
-- replaces the first), and the pair's identifiers follow
-- (cv_identity_recertify): a self-declared e-mail checked by reaching the
-- person becomes a link target like a back-office one. A field already
-- certified (level 4 from its source) keeps its level. p_service: an
-- agent's service, NULL for a supervisor; an agent checks only a citizen
-- with a request of that service. Returns the number of fields checked.
-- Refused: 22023 an unknown, merged or erased citizen or a pair it does not
-- have; 42501 a citizen the agent's service never dealt with; 22000 an
-- unknown field or document, a field the block does not hold, a document
-- that does not prove that field.
CREATE OR REPLACE FUNCTION cv_identity_check(p_citizen bigint, p_source text, p_key text, p_fields text[],
                                             p_document text, p_actor text, p_service text)
RETURNS int
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_identity jsonb;
    v_base smallint;
    v_field text;
    v_n int := 0;
BEGIN
    SELECT cs.identity, cs.certainty INTO v_identity, v_base FROM citizen_sources cs
    WHERE cs.source = p_source AND cs.source_citizen_id = p_key AND cs.citizen_id = p_citizen
      AND EXISTS (SELECT 1 FROM citizens c WHERE c.id = p_citizen AND c.merged_into IS NULL
                                              AND c.erased_at IS NULL)
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cv_identity_check: citizen % does not exist, was merged or erased, or has no such pair',
                        p_citizen USING ERRCODE = '22023';
    END IF;
    IF p_service IS NOT NULL AND NOT EXISTS (SELECT 1 FROM requests r
                                             WHERE r.citizen_id = p_citizen AND r.service = p_service) THEN
        RAISE EXCEPTION 'cv_identity_check: the service has no request of citizen %', p_citizen
            USING ERRCODE = '42501';
    END IF;
    IF p_document IS NULL OR p_document NOT IN ('cni', 'passeport', 'titre_sejour', 'permis_conduire',
                                                'livret_famille', 'acte_naissance', 'justificatif_domicile',
                                                'contact_confirme') THEN
        RAISE EXCEPTION 'check: document is one of cni, passeport, titre_sejour, permis_conduire, livret_famille, acte_naissance, justificatif_domicile, contact_confirme'
            USING ERRCODE = '22000';
    END IF;
    IF cardinality(p_fields) IS NULL OR cardinality(p_fields) = 0 OR cardinality(p_fields) > 7 THEN
        RAISE EXCEPTION 'check: give the fields checked (1 to 7)' USING ERRCODE = '22000';
    END IF;
    FOREACH v_field IN ARRAY p_fields LOOP
        IF v_field IS NULL OR v_field NOT IN ('family_name', 'birth_name', 'given_names', 'birth_date', 'email',
                                              'phone', 'address') THEN
            RAISE EXCEPTION 'check: fields are family_name, birth_name, given_names, birth_date, email, phone, address'
                USING ERRCODE = '22000';
        ELSIF NOT cv_check_document_fits(p_document, v_field) THEN
            RAISE EXCEPTION 'check: a % does not prove %', p_document, v_field USING ERRCODE = '22000';
        ELSIF v_identity->v_field IS NULL OR v_identity->v_field = 'null'::jsonb THEN
            RAISE EXCEPTION 'check: the identity has no %', v_field USING ERRCODE = '22000';
        END IF;
    END LOOP;
    IF v_base >= 4 THEN
        RETURN 0;                               -- certified: an agent adds nothing
    END IF;
    INSERT INTO citizen_checks AS ch (source, source_citizen_id, field, certainty, document, actor)
    SELECT DISTINCT p_source, p_key, f, 3, p_document, p_actor FROM unnest(p_fields) f
    ON CONFLICT (source, source_citizen_id, field)
    DO UPDATE SET certainty = 3, document = EXCLUDED.document, actor = EXCLUDED.actor, checked_at = now();
    GET DIAGNOSTICS v_n = ROW_COUNT;
    PERFORM cv_identity_recertify(p_source, p_key);
    RETURN v_n;
END $fn$;

-- The identities of citizen p_citizen as the agents' API shows them, one
-- per pair: its source and key, the block, and each field's certainty
-- ({"email": "agent", "family_name": "logiciel", ...}), with the checks
-- that raised a field (document and date; the actor is in the export).
CREATE OR REPLACE FUNCTION cv_identity_view(p_citizen bigint) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(json_agg(json_build_object(
               'source', s.source, 'source_citizen_id', s.source_citizen_id, 'identity', s.identity,
               'certainty', (SELECT COALESCE(json_object_agg(l.key, cv_certainty_code(l.value::smallint)
                                                             ORDER BY l.key), '{}')
                             FROM jsonb_each_text(cv_identity_levels(s.source, s.source_citizen_id,
                                                                     s.identity, s.certainty)) l),
               'checks', (SELECT COALESCE(json_agg(json_build_object('field', ch.field, 'document', ch.document,
                                                                     'checked_at', ch.checked_at)
                                                   ORDER BY ch.field), '[]')
                          FROM citizen_checks ch
                          WHERE ch.source = s.source AND ch.source_citizen_id = s.source_citizen_id))
               ORDER BY s.source, s.source_citizen_id), '[]')
    FROM citizen_sources s WHERE s.citizen_id = p_citizen
$$;
