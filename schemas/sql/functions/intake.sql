-- functions/intake.sql — a request registered by the front office
-- (022_intake.sql, docs/intake.md): counter, phone, letter. The API's
-- POST /v1/requests calls cv_intake_register; the request enters the
-- timeline through cv_ingest like any software's record (its writer lock,
-- dedupe, projection, identity rules), as a one-element batch of source
-- 'accueil'.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.

-- The next letter registration number of p_year: "2026-000123". Drawn under
-- the row's lock, so two agents never get the same number; it is drawn in
-- the registration's transaction, so a refused registration draws none.
CREATE OR REPLACE FUNCTION cv_courrier_number(p_year int) RETURNS text
LANGUAGE sql AS $$
    INSERT INTO courrier_numbers AS c (year, last) VALUES (p_year, 1)
    ON CONFLICT (year) DO UPDATE SET last = c.last + 1
    RETURNING c.year || '-' || lpad(c.last::text, 6, '0')
$$;

-- A text member of p_obj: trimmed, NULL when absent or empty; refused
-- (22000, naming the field) when not a text, over p_max bytes or with
-- control characters (p_lines: line breaks and tabs allowed).
CREATE OR REPLACE FUNCTION cv_intake_text(p_obj jsonb, p_key text, p_max int, p_lines boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    v text;
BEGIN
    IF p_obj->p_key IS NULL OR p_obj->p_key = 'null'::jsonb THEN
        RETURN NULL;
    ELSIF jsonb_typeof(p_obj->p_key) <> 'string' THEN
        RAISE EXCEPTION 'register: % is a text', p_key USING ERRCODE = '22000';
    END IF;
    v := btrim(p_obj->>p_key);
    IF octet_length(v) > p_max THEN
        RAISE EXCEPTION 'register: % is longer than % bytes', p_key, p_max USING ERRCODE = '22000';
    ELSIF (p_lines AND v ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]') OR (NOT p_lines AND v ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'register: % holds control characters', p_key USING ERRCODE = '22000';
    END IF;
    RETURN NULLIF(v, '');
END $fn$;

-- A field of the person's identity checked as a rectification checks it
-- (cv_identity_field_value), the refusal naming it for the front office.
CREATE OR REPLACE FUNCTION cv_intake_field(p_field text, p_value jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN cv_identity_field_value(p_field, p_value) #>> '{}';
EXCEPTION WHEN sqlstate '22000' THEN
    RAISE EXCEPTION 'register: citizen.%: %', p_field, regexp_replace(SQLERRM, '^rectify: ', '')
        USING ERRCODE = '22000';
END $fn$;

-- Registers one request typed by an agent (p_actor 'token:<id>') and
-- returns {tracking_code, request_id, citizen_id, registration_number,
-- service, attachments}.
-- p_body (the API's JSON, docs/intake.md): channel guichet | telephone |
-- courrier; category; service (else the category's, service_categories);
-- description; either citizen_id (a citizen the agent found: attached at
-- once, the agent's decision) or citizen {last_name, first_name,
-- birth_name, birth_date, email, phone, address {line1, line2, postcode,
-- city}} (self-declared: a citizen of its own plus merge proposals, as for
-- a web form, until an agent checks it); checked_document (the identity
-- document the agent saw: the names and birth date given are checked, as
-- POST .../check does); requested_at (a letter's arrival, default now;
-- never in the future); location {address, postcode, city, lat, lon};
-- attachments [{sha256, mime, size, name}] (the API's, for files it has
-- stored already: docs/attachments.md), one attachments row each.
-- Refused with 22000 and words naming the field (never its value): a
-- missing or unknown channel, category or service, an empty description,
-- both or neither of citizen_id and citizen, a bad date, e-mail or phone;
-- 22023 an unknown, merged or erased citizen_id.
CREATE OR REPLACE FUNCTION cv_intake_register(p_body jsonb, p_actor text) RETURNS jsonb
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_channel text := cv_intake_text(p_body, 'channel', 20);
    v_category text := cv_intake_text(p_body, 'category', 200);
    v_service text := cv_intake_text(p_body, 'service', 200);
    v_desc text := cv_intake_text(p_body, 'description', 4000, true);
    v_doc text := cv_intake_text(p_body, 'checked_document', 40);
    v_person jsonb := p_body->'citizen';
    v_citizen bigint;
    v_block jsonb;
    v_key text;
    v_when timestamptz := now();
    v_loc jsonb;
    v_ref text;
    v_id text := 'accueil-' || replace(gen_random_uuid()::text, '-', '');
    v_out record;
    v_fields text[];
BEGIN
    IF jsonb_typeof(p_body) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'register: the body is a JSON object' USING ERRCODE = '22000';
    ELSIF v_channel IS NULL OR v_channel NOT IN ('guichet', 'telephone', 'courrier') THEN
        RAISE EXCEPTION 'register: channel is guichet, telephone or courrier' USING ERRCODE = '22000';
    ELSIF v_category IS NULL THEN
        RAISE EXCEPTION 'register: category is required' USING ERRCODE = '22000';
    ELSIF v_desc IS NULL THEN
        RAISE EXCEPTION 'register: description is required' USING ERRCODE = '22000';
    END IF;
    v_service := COALESCE(v_service, (SELECT s.service FROM service_categories s WHERE s.category = v_category
                                      ORDER BY s.first_seen, s.service LIMIT 1));
    IF v_service IS NULL OR NOT EXISTS (SELECT 1 FROM service_categories s WHERE s.service = v_service) THEN
        RAISE EXCEPTION 'register: no such service (give service, or a category a service handles)'
            USING ERRCODE = '22000';
    END IF;
    IF p_body ? 'requested_at' AND p_body->'requested_at' <> 'null'::jsonb THEN
        BEGIN
            v_when := (p_body->>'requested_at')::timestamptz;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'register: requested_at is a date-time (ISO 8601)' USING ERRCODE = '22000';
        END;
        IF v_when > now() + interval '5 minutes' OR v_when < now() - interval '1 year' THEN
            RAISE EXCEPTION 'register: requested_at is within the past year, never in the future'
                USING ERRCODE = '22000';
        END IF;
    END IF;
    IF p_body->'location' IS NOT NULL AND p_body->'location' <> 'null'::jsonb THEN
        IF jsonb_typeof(p_body->'location') <> 'object' THEN
            RAISE EXCEPTION 'register: location is an object' USING ERRCODE = '22000';
        END IF;
        v_loc := jsonb_build_object('address', cv_intake_text(p_body->'location', 'address', 200),
                                    'postcode', cv_intake_text(p_body->'location', 'postcode', 20),
                                    'city', cv_intake_text(p_body->'location', 'city', 200));
        IF jsonb_typeof(p_body->'location'->'lat') = 'number' AND jsonb_typeof(p_body->'location'->'lon') = 'number'
           AND abs((p_body->'location'->>'lat')::numeric) <= 90 AND abs((p_body->'location'->>'lon')::numeric) <= 180 THEN
            v_loc := v_loc || jsonb_build_object('lat', p_body->'location'->'lat', 'lon', p_body->'location'->'lon');
        ELSIF p_body->'location' ? 'lat' OR p_body->'location' ? 'lon' THEN
            RAISE EXCEPTION 'register: location.lat and .lon are numbers of degrees, both or neither'
                USING ERRCODE = '22000';
        END IF;
    END IF;

    -- who: a citizen the agent found, or what the person says
    IF (p_body->'citizen_id' IS NOT NULL AND p_body->'citizen_id' <> 'null'::jsonb) = (v_person IS NOT NULL AND v_person <> 'null'::jsonb) THEN
        RAISE EXCEPTION 'register: give citizen_id (a citizen found) or citizen (what the person says), one of them'
            USING ERRCODE = '22000';
    END IF;
    IF v_person IS NULL OR v_person = 'null'::jsonb THEN
        IF jsonb_typeof(p_body->'citizen_id') <> 'number' THEN
            RAISE EXCEPTION 'register: citizen_id is a number' USING ERRCODE = '22000';
        END IF;
        v_citizen := (p_body->>'citizen_id')::bigint;
        IF NOT EXISTS (SELECT 1 FROM citizens c WHERE c.id = v_citizen AND c.merged_into IS NULL
                                                  AND c.erased_at IS NULL) THEN
            RAISE EXCEPTION 'register: no such citizen' USING ERRCODE = '22023';
        END IF;
        -- the front office's pair for that citizen: the agent's link, no block
        v_key := 'citizen:' || v_citizen;
        INSERT INTO citizen_sources (source, source_citizen_id, citizen_id, identity, rule, confidence,
                                     declared, certainty)
        VALUES ('accueil', v_key, v_citizen, NULL, 'agent', 1, false, 3)
        ON CONFLICT (source, source_citizen_id) DO NOTHING;
    ELSE
        IF jsonb_typeof(v_person) <> 'object' THEN
            RAISE EXCEPTION 'register: citizen is an object' USING ERRCODE = '22000';
        END IF;
        v_block := jsonb_build_object(
            'source_citizen_id', NULL,
            'family_name', cv_intake_text(v_person, 'last_name', 200),
            'birth_name', cv_intake_text(v_person, 'birth_name', 200),
            'given_names', cv_intake_text(v_person, 'first_name', 200),
            'birth_date', CASE WHEN cv_intake_text(v_person, 'birth_date', 10) IS NULL THEN NULL
                               ELSE cv_intake_field('birth_date', v_person->'birth_date') END,
            'email', CASE WHEN cv_intake_text(v_person, 'email', 200) IS NULL THEN NULL
                          ELSE cv_intake_field('email', v_person->'email') END,
            'phone', CASE WHEN cv_intake_text(v_person, 'phone', 40) IS NULL THEN NULL
                          ELSE cv_intake_field('phone', v_person->'phone') END,
            'address', CASE WHEN jsonb_typeof(v_person->'address') = 'object'
                            THEN jsonb_build_object('line1', cv_intake_text(v_person->'address', 'line1', 200),
                                                    'line2', cv_intake_text(v_person->'address', 'line2', 200),
                                                    'postcode', cv_intake_text(v_person->'address', 'postcode', 20),
                                                    'city', cv_intake_text(v_person->'address', 'city', 200),
                                                    'country', NULL) END);
        IF v_block->>'family_name' IS NULL AND v_block->>'email' IS NULL AND v_block->>'phone' IS NULL THEN
            RAISE EXCEPTION 'register: citizen needs a last_name, an email or a phone' USING ERRCODE = '22000';
        END IF;
        v_key := 'sha256:' || encode(sha256(convert_to(v_block::text, 'UTF8')), 'hex');
    END IF;
    IF v_channel = 'courrier' THEN
        v_ref := cv_courrier_number(extract(year FROM v_when AT TIME ZONE 'Europe/Paris')::int);
    END IF;

    SELECT o.o_outcome, o.o_tracking_code, o.o_request_id INTO v_out
    FROM cv_ingest(ARRAY[0], ARRAY['accueil'], ARRAY[encode(sha256(convert_to(p_body::text || v_id, 'UTF8')), 'hex')],
                   ARRAY[v_key], convert_to(cv_tracking_code(), 'UTF8'), ARRAY[v_id], ARRAY['accueil_' || v_channel],
                   ARRAY[v_id], ARRAY[v_ref], ARRAY[v_service], ARRAY[v_category], ARRAY[v_channel],
                   ARRAY['received'], ARRAY[NULL::text], ARRAY[NULL::text],
                   ARRAY[to_char(v_when AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')],
                   ARRAY[NULL::text], ARRAY[v_desc], ARRAY['{}'], ARRAY[v_block::text],
                   ARRAY[jsonb_build_object('channel', v_channel, 'category', v_category, 'service', v_service,
                                            'description', v_desc, 'registration_number', v_ref,
                                            'registered_by', p_actor)::text],
                   p_requested_at => ARRAY[to_char(v_when AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')],
                   p_location => ARRAY[v_loc::text]) o;
    IF v_out.o_outcome IS DISTINCT FROM 'stored' THEN
        RAISE EXCEPTION 'register: the request was not stored (%)', v_out.o_outcome;
    END IF;
    SELECT r.citizen_id INTO v_citizen FROM requests r WHERE r.id = v_out.o_request_id;

    -- the document the agent saw proves the names and the birth date given
    IF v_doc IS NOT NULL THEN
        IF v_block IS NULL THEN
            RAISE EXCEPTION 'register: checked_document goes with citizen (what the person says)'
                USING ERRCODE = '22000';
        END IF;
        v_fields := ARRAY(SELECT f FROM unnest(ARRAY['family_name', 'birth_name', 'given_names', 'birth_date']) f
                          WHERE v_block->>f IS NOT NULL);
        IF cardinality(v_fields) > 0 THEN
            PERFORM cv_identity_check(v_citizen, 'accueil', v_key, v_fields, v_doc, p_actor, NULL);
        END IF;
    END IF;

    -- the files, written to the attachments folder by the API before this
    -- transaction (docs/attachments.md): their rows, in it; the same bytes
    -- twice in one request are one row (the first name kept)
    IF p_body->'attachments' IS NOT NULL AND p_body->'attachments' <> 'null'::jsonb THEN
        IF jsonb_typeof(p_body->'attachments') <> 'array' THEN
            RAISE EXCEPTION 'register: attachments is a list' USING ERRCODE = '22000';
        END IF;
        INSERT INTO attachments (request_id, source, source_record_id, sha256, mime, size, name)
        SELECT v_out.o_request_id, 'accueil', v_id, a.f->>'sha256', a.f->>'mime', (a.f->>'size')::bigint,
               NULLIF(a.f->>'name', '')
        FROM jsonb_array_elements(p_body->'attachments') WITH ORDINALITY a(f, i)
        ORDER BY a.i
        ON CONFLICT (request_id, sha256) DO NOTHING;
    END IF;
    RETURN jsonb_build_object('tracking_code', v_out.o_tracking_code, 'request_id', v_out.o_request_id,
                              'citizen_id', v_citizen, 'registration_number', v_ref, 'service', v_service,
                              'attachments', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                  'sha256', a.sha256, 'mime', a.mime, 'size', a.size, 'name', a.name) ORDER BY a.id)
                                  FROM attachments a WHERE a.request_id = v_out.o_request_id), '[]'::jsonb));
END $fn$;
