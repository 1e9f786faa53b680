-- functions/rgpd.sql — the citizen's rights (docs/rgpd.md): access (one JSON
-- document holding everything civibus keeps about a person), rectification
-- of one field of one identity block, and retention (erasing what is past
-- its keeping period). Erasure itself is functions/erasure.sql.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.
--
-- civibusctl (citizen export, retention run) and civibus-api (GET
-- /v1/citizens/{id}/export, POST /v1/citizens/{id}/rectify) only call these
-- functions: the document, the checks and the counts are defined once, here.

-- Everything civibus keeps about citizen p_citizen, as one document
-- (schemas/v1/citizen-export.schema.json): the citizen and the citizens
-- merged into it, each identity block with how it was linked (rule,
-- confidence, declared) and how sure each field is (certainty, checks:
-- 019), the normalised identifiers with theirs, the requests with their source
-- records, their events and the commands sent about them, the merges and
-- rectifications, and every read of the person's data in api_audit (a read
-- of the citizen, of one of its requests, or a list that showed it:
-- citizen_ids). Refused (P0002, "no data found"): an unknown citizen, one
-- merged into another (export that one) and an erased one.
CREATE OR REPLACE FUNCTION cv_citizen_export(p_citizen bigint) RETURNS jsonb
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    c citizens%ROWTYPE;
    v_ids bigint[];
    v_requests bigint[];
BEGIN
    SELECT * INTO c FROM citizens WHERE id = p_citizen;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown citizen %', p_citizen USING ERRCODE = 'P0002';
    ELSIF c.merged_into IS NOT NULL THEN
        RAISE EXCEPTION 'citizen % was merged into %: export that one', p_citizen, c.merged_into
            USING ERRCODE = 'P0002';
    ELSIF c.erased_at IS NOT NULL THEN
        RAISE EXCEPTION 'citizen % was erased (%): nothing is kept', p_citizen, c.erased_at::date
            USING ERRCODE = 'P0002';
    END IF;
    v_ids := p_citizen || ARRAY(SELECT id FROM citizens WHERE merged_into = p_citizen ORDER BY id);
    v_requests := ARRAY(SELECT id FROM requests WHERE citizen_id = p_citizen ORDER BY id);

    RETURN jsonb_build_object(
        'format', 'civibus-citizen-export/1',
        'exported_at', now(),
        'citizen', jsonb_build_object('id', c.id, 'created_at', c.created_at),
        'merged_citizens', COALESCE((SELECT jsonb_agg(jsonb_build_object('id', m.id, 'created_at', m.created_at)
                                                      ORDER BY m.id)
                                     FROM citizens m WHERE m.merged_into = p_citizen), '[]'),
        'identities', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                    'source', cs.source, 'source_citizen_id', cs.source_citizen_id,
                                    'identity', cs.identity, 'identity_at', cs.identity_at,
                                    'rule', cs.rule, 'confidence', cs.confidence, 'declared', cs.declared,
                                    'certainty', (SELECT COALESCE(jsonb_object_agg(l.key,
                                                      cv_certainty_code(l.value::smallint)), '{}')
                                                  FROM jsonb_each_text(cv_identity_levels(cs.source,
                                                      cs.source_citizen_id, cs.identity, cs.certainty)) l),
                                    'checks', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                                  'field', ch.field, 'document', ch.document,
                                                  'actor', ch.actor, 'checked_at', ch.checked_at)
                                                  ORDER BY ch.field)
                                               FROM citizen_checks ch WHERE ch.source = cs.source
                                                AND ch.source_citizen_id = cs.source_citizen_id), '[]'),
                                    'created_at', cs.created_at, 'updated_at', cs.updated_at)
                                    ORDER BY cs.source, cs.source_citizen_id)
                                FROM citizen_sources cs WHERE cs.citizen_id = p_citizen), '[]'),
        'identifiers', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                     'kind', ci.kind, 'value', ci.value, 'source', ci.source,
                                     'source_citizen_id', ci.source_citizen_id, 'declared', ci.declared,
                                     'certainty', cv_certainty_code(ci.certainty),
                                     'shared', ci.shared, 'created_at', ci.created_at)
                                     ORDER BY ci.source, ci.source_citizen_id, ci.kind, ci.value)
                                 FROM citizen_identifiers ci WHERE ci.citizen_id = p_citizen), '[]'),
        'requests', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                  'id', r.id, 'tracking_code', r.tracking_code, 'service', r.service,
                                  'category', r.category, 'channel', r.channel, 'status', r.status,
                                  'status_occurred_at', r.status_occurred_at, 'due_at', r.due_at,
                                  'request_ref', r.request_ref, 'created_at', r.created_at,
                                  'requested_at', r.requested_at, 'outcome', r.outcome,
                                  'outcome_reason', r.outcome_reason, 'outcome_ref', r.outcome_ref,
                                  'updated_at', r.updated_at,
                                  'records', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                                 'source', sr.source, 'source_record_id', sr.source_record_id,
                                                 'summary', sr.summary, 'raw', to_jsonb(sr.raw),
                                                 'extra', sr.extra, 'location', sr.location,
                                                 'record_at', sr.record_at)
                                                 ORDER BY sr.source, sr.source_record_id)
                                              FROM source_records sr WHERE sr.request_id = r.id), '[]'))
                                  ORDER BY r.id)
                              FROM requests r WHERE r.id = ANY (v_requests)), '[]'),
        'events', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                'id', e.id, 'request_id', e.request_id, 'source', e.source, 'kind', e.kind,
                                'service', e.service, 'category', e.category, 'channel', e.channel,
                                'status', e.status, 'source_status', e.source_status,
                                'occurred_at', e.occurred_at, 'due_at', e.due_at, 'received_at', e.received_at)
                                ORDER BY e.request_id, e.occurred_at, e.id)
                            FROM events e WHERE e.request_id = ANY (v_requests)), '[]'),
        'commands', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                  'id', k.id, 'request_id', k.request_id, 'source', k.source, 'kind', k.kind,
                                  'status', k.status, 'payload', k.payload, 'result', k.result,
                                  'error', k.error, 'created_at', k.created_at, 'sent_at', k.sent_at,
                                  'done_at', k.done_at)
                                  ORDER BY k.id)
                              FROM commands k WHERE k.request_id = ANY (v_requests)), '[]'),
        'merges', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                'id', m.id, 'keep', m.keep, 'absorb', m.absorb, 'actor', m.actor,
                                'merged_at', m.merged_at, 'split_at', m.split_at)
                                ORDER BY m.id)
                            FROM citizen_merges m WHERE m.keep = ANY (v_ids) OR m.absorb = ANY (v_ids)), '[]'),
        'rectifications', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                        'id', x.id, 'source', x.source, 'source_citizen_id', x.source_citizen_id,
                                        'field', x.field, 'actor', x.actor, 'at', x.at)
                                        ORDER BY x.id)
                                    FROM citizen_rectifications x WHERE x.citizen_id = ANY (v_ids)), '[]'),
        'reads', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                               'at', a.at, 'token_id', a.token_id, 'label', t.label, 'role', a.role,
                               'service', a.service, 'action', a.action, 'request_id', a.request_id,
                               'client', host(a.client),
                               'via', CASE WHEN a.citizen_id = ANY (v_ids) THEN 'citizen'
                                           WHEN a.request_id = ANY (v_requests) THEN 'request'
                                           ELSE 'list' END)
                               ORDER BY a.at, a.id)
                           FROM api_audit a LEFT JOIN api_tokens t ON t.id = a.token_id
                           WHERE a.citizen_id = ANY (v_ids) OR a.citizen_ids && v_ids
                              OR a.request_id = ANY (v_requests)), '[]'));
END $fn$;

-- The checked value of one identity field, as it is stored in the block
-- (texts trimmed; a birth date as YYYY-MM-DD; an address an object of
-- texts). Refused (22000, "data exception", the API's 400): an unknown
-- field, an empty text, a text over 200 bytes or with control characters,
-- a date that is not a real past day, an e-mail or a phone number that
-- cv_norm_email / cv_norm_phone do not recognise, an address without a
-- street line and a postcode or town.
CREATE OR REPLACE FUNCTION cv_identity_field_value(p_field text, p_value jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v_text text;
    v_day date;
    v_key text;
    v_part jsonb;
BEGIN
    IF p_field = 'address' THEN
        IF jsonb_typeof(p_value) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'rectify: the address is an object' USING ERRCODE = '22000';
        END IF;
        FOR v_key, v_part IN SELECT * FROM jsonb_each(p_value) LOOP
            IF v_key NOT IN ('line1', 'line2', 'postcode', 'city', 'country')
               OR jsonb_typeof(v_part) <> 'string' OR octet_length(v_part #>> '{}') > 200
               OR (v_part #>> '{}') ~ '[[:cntrl:]]' THEN
                RAISE EXCEPTION 'rectify: address fields are line1, line2, postcode, city, country (texts)'
                    USING ERRCODE = '22000';
            END IF;
        END LOOP;
        IF cv_address_key(p_value) IS NULL THEN
            RAISE EXCEPTION 'rectify: an address needs line1 and a postcode or a city' USING ERRCODE = '22000';
        END IF;
        RETURN p_value;
    END IF;
    IF p_field NOT IN ('family_name', 'birth_name', 'given_names', 'birth_date', 'email', 'phone') THEN
        RAISE EXCEPTION 'rectify: unknown field' USING ERRCODE = '22000';
    END IF;
    v_text := btrim(p_value #>> '{}');
    IF jsonb_typeof(p_value) IS DISTINCT FROM 'string' OR v_text = '' OR octet_length(v_text) > 200
       OR v_text ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'rectify: the value is a text of 1 to 200 bytes' USING ERRCODE = '22000';
    END IF;
    IF p_field = 'birth_date' THEN
        IF v_text !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
            RAISE EXCEPTION 'rectify: a birth date is YYYY-MM-DD' USING ERRCODE = '22000';
        END IF;
        BEGIN
            v_day := v_text::date;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'rectify: not a day of the calendar' USING ERRCODE = '22000';
        END;
        IF v_day > current_date OR v_day < date '1870-01-01' THEN
            RAISE EXCEPTION 'rectify: a birth date in the past' USING ERRCODE = '22000';
        END IF;
        v_text := to_char(v_day, 'YYYY-MM-DD');
    ELSIF p_field = 'email' AND cv_norm_email(v_text) IS NULL THEN
        RAISE EXCEPTION 'rectify: not an e-mail address' USING ERRCODE = '22000';
    ELSIF p_field = 'phone' AND cv_norm_phone(v_text) IS NULL THEN
        RAISE EXCEPTION 'rectify: not a phone number' USING ERRCODE = '22000';
    END IF;
    RETURN to_jsonb(v_text);
END $fn$;

-- Rectifies one field of the identity block of pair (p_source,
-- p_source_citizen_id) of citizen p_citizen: the block gets the new value
-- (the search texts follow, functions/search.sql), the pair's identifiers
-- are derived again from the new block (the old value's identifiers go),
-- the rectification is recorded without any value (citizen_rectifications)
-- and each of the citizen's requests gets a citizen_rectify event (source
-- 'civibus', no personal data). The source records of the citizen's
-- requests from that source lose the old text where they hold it as
-- written in the block (an e-mail, a phone, a name of 3 characters or
-- more: a birth date or an address the source wrote in another form stays
-- in its raw record until the source sends the corrected record or
-- retention erases it, docs/rgpd.md). The hub forgets the blocks it had cached
-- (civibus_identity), as after an erasure. A source that sends the old
-- value again brings it back: rectify in the source software too
-- (docs/rgpd.md). An agent's check of the field (019) goes with the old
-- value; p_document (NULL: none) checks the new value against that
-- document (cv_identity_check, as the same actor). Returns the
-- rectification's id. Refused: 22023 an unknown, merged or erased citizen
-- or a pair it does not have; 22000 a bad field or value
-- (cv_identity_field_value), or a document that does not prove the field.
DROP FUNCTION IF EXISTS cv_citizen_rectify(bigint, text, text, text, jsonb, text);
CREATE OR REPLACE FUNCTION cv_citizen_rectify(p_citizen bigint, p_source text, p_source_citizen_id text,
                                              p_field text, p_value jsonb, p_actor text,
                                              p_document text DEFAULT NULL) RETURNS bigint
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_value jsonb;
    v_old text;
    v_new text;
    v_id bigint;
    v_requests bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- events: the store's writer lock
    SELECT cs.identity->>p_field INTO v_old FROM citizen_sources cs
    WHERE cs.source = p_source AND cs.source_citizen_id = p_source_citizen_id
      AND cs.citizen_id = p_citizen
      AND EXISTS (SELECT 1 FROM citizens c WHERE c.id = p_citizen AND c.merged_into IS NULL
                                              AND c.erased_at IS NULL)
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cv_citizen_rectify: citizen % does not exist, was merged or erased, or has no such pair',
                        p_citizen USING ERRCODE = '22023';
    END IF;
    v_value := cv_identity_field_value(p_field, p_value);
    -- the old text inside the raw records and summaries (JSON-escaped in raw)
    IF p_field IN ('email', 'phone', 'family_name', 'birth_name', 'given_names') AND length(v_old) >= 3
       AND v_old IS DISTINCT FROM v_value #>> '{}' THEN
        v_new := v_value #>> '{}';
        UPDATE source_records sr
           SET raw = replace(sr.raw::text, substr(to_json(v_old)::text, 2, length(to_json(v_old)::text) - 2),
                             substr(to_json(v_new)::text, 2, length(to_json(v_new)::text) - 2))::json,
               summary = replace(sr.summary, v_old, v_new), updated_at = now()
         WHERE sr.source = p_source
           AND sr.request_id IN (SELECT r.id FROM requests r WHERE r.citizen_id = p_citizen)
           AND (strpos(sr.raw::text, substr(to_json(v_old)::text, 2, length(to_json(v_old)::text) - 2)) > 0
                OR strpos(sr.summary, v_old) > 0);
    END IF;

    UPDATE citizen_sources
       SET identity = jsonb_set(COALESCE(identity, '{}'), ARRAY[p_field], v_value), updated_at = now()
     WHERE source = p_source AND source_citizen_id = p_source_citizen_id;
    IF v_old IS DISTINCT FROM v_value #>> '{}' THEN
        DELETE FROM citizen_checks
         WHERE source = p_source AND source_citizen_id = p_source_citizen_id AND field = p_field;
    END IF;
    DELETE FROM citizen_identifiers WHERE source = p_source AND source_citizen_id = p_source_citizen_id;
    INSERT INTO citizen_identifiers (citizen_id, kind, value, source, source_citizen_id, declared, certainty,
                                     holder, shared)
    SELECT DISTINCT cs.citizen_id, x.kind, x.value, cs.source, cs.source_citizen_id, cs.certainty < 2,
           cs.certainty, cv_identity_holder(cs.identity),
           x.kind IN ('email', 'phone')
           AND EXISTS (SELECT 1 FROM shared_identifiers s
                       WHERE s.kind = x.kind AND s.value_hash = cv_identifier_hash(x.kind, x.value))
    FROM citizen_sources cs CROSS JOIN LATERAL cv_identifiers(cs.identity) x
    WHERE cs.source = p_source AND cs.source_citizen_id = p_source_citizen_id;
    IF p_document IS NOT NULL THEN
        PERFORM cv_identity_check(p_citizen, p_source, p_source_citizen_id, ARRAY[p_field], p_document,
                                  p_actor, NULL);
    ELSE
        PERFORM cv_identity_recertify(p_source, p_source_citizen_id);
    END IF;

    INSERT INTO citizen_rectifications (citizen_id, source, source_citizen_id, field, actor)
    VALUES (p_citizen, p_source, p_source_citizen_id, p_field, p_actor)
    RETURNING id INTO v_id;
    v_requests := ARRAY(SELECT id FROM requests WHERE citizen_id = p_citizen ORDER BY id);
    PERFORM cv_citizen_events('citizen_rectify', v_id, v_requests, p_citizen);
    PERFORM pg_notify('civibus_identity', 'rectified');
    RETURN v_id;
END $fn$;

-- The keeping period, in days, of a request of (service, category) under
-- the rules p_rules (deploy/retention.yaml as JSON: {"default_days": N,
-- "services": {"<service>": {"days": N, "categories": {"<category>": N}}}}):
-- the category's, else the service's, else the default.
CREATE OR REPLACE FUNCTION cv_retention_days(p_rules jsonb, p_service text, p_category text) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE((p_rules->'services'->p_service->'categories'->>p_category)::int,
                    (p_rules->'services'->p_service->>'days')::int,
                    (p_rules->>'default_days')::int)
$$;

-- Retention: a request whose last event is older than its keeping period
-- (cv_retention_days) loses its personal data: its source records (raw,
-- summary, extra), its attachments' rows (the files go with `civibusctl
-- attachments gc`) and the payloads of its finished commands. A citizen none
-- of whose requests is still within its period is erased
-- (cv_citizen_erase). The pseudonymous timeline stays. The read log
-- (api_audit rows older than p_rules' audit_days) and the dead letters
-- (older than dead_letters_days: their payload is personal data) are
-- deleted too; a key absent from the rules keeps those rows (civibusctl
-- always sends both). Idempotent: what is gone is not counted again. With
-- p_dry_run nothing changes and the counts say what a run would do.
-- Returns the counts:
--     {"requests_expired", "records", "attachments", "command_payloads", "citizens", "citizen_rows",
--      "audit_rows", "dead_letters"}
CREATE OR REPLACE FUNCTION cv_retention_run(p_rules jsonb, p_dry_run boolean) RETURNS jsonb
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_expired bigint[];
    v_citizens bigint[];
    v_records bigint;
    v_payloads bigint;
    v_rows bigint := 0;
    v_c bigint;
    v_audit_before timestamptz;
    v_dead_before timestamptz;
    v_audit bigint := 0;
    v_dead bigint := 0;
    v_files bigint;
BEGIN
    IF jsonb_typeof(p_rules->'default_days') IS DISTINCT FROM 'number' THEN
        RAISE EXCEPTION 'cv_retention_run: the rules need default_days' USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(p_rules->'audit_days') NOT IN ('number', 'null')
       OR jsonb_typeof(p_rules->'dead_letters_days') NOT IN ('number', 'null')
       OR (p_rules->>'audit_days')::int < 1 OR (p_rules->>'dead_letters_days')::int < 1 THEN
        RAISE EXCEPTION 'cv_retention_run: audit_days and dead_letters_days are days (1 or more)'
            USING ERRCODE = '22023';
    END IF;
    v_audit_before := now() - make_interval(days => (p_rules->>'audit_days')::int);
    v_dead_before := now() - make_interval(days => (p_rules->>'dead_letters_days')::int);
    IF v_audit_before IS NOT NULL THEN
        SELECT count(*) INTO v_audit FROM api_audit WHERE at < v_audit_before;
    END IF;
    IF v_dead_before IS NOT NULL THEN
        SELECT count(*) INTO v_dead FROM dead_letters WHERE received_at < v_dead_before;
    END IF;
    -- a request's age: its last event from a source (civibus' own merge,
    -- split and rectify events do not make it younger)
    CREATE TEMP TABLE IF NOT EXISTS cv_retention_expired (id bigint PRIMARY KEY, citizen_id bigint)
        ON COMMIT DROP;
    TRUNCATE cv_retention_expired;
    INSERT INTO cv_retention_expired
    SELECT r.id, r.citizen_id FROM requests r
    WHERE COALESCE((SELECT max(e.occurred_at) FROM events e
                    WHERE e.request_id = r.id AND e.source <> 'civibus'), r.status_occurred_at)
          < now() - make_interval(days => cv_retention_days(p_rules, r.service, r.category));
    v_expired := ARRAY(SELECT id FROM cv_retention_expired ORDER BY id);

    SELECT count(*) INTO v_records FROM source_records sr WHERE sr.request_id = ANY (v_expired);
    SELECT count(*) INTO v_files FROM attachments a WHERE a.request_id = ANY (v_expired);
    SELECT count(*) INTO v_payloads FROM commands k
    WHERE k.request_id = ANY (v_expired) AND k.payload IS NOT NULL AND k.status IN ('done', 'failed');
    v_citizens := ARRAY(SELECT c.id FROM citizens c
                        WHERE c.merged_into IS NULL AND c.erased_at IS NULL
                          AND EXISTS (SELECT 1 FROM cv_retention_expired x WHERE x.citizen_id = c.id)
                          AND NOT EXISTS (SELECT 1 FROM requests r
                                          WHERE r.citizen_id = c.id
                                            AND r.id NOT IN (SELECT id FROM cv_retention_expired))
                        ORDER BY c.id);
    IF NOT p_dry_run THEN
        DELETE FROM source_records sr WHERE sr.request_id = ANY (v_expired);
        DELETE FROM attachments a WHERE a.request_id = ANY (v_expired);   -- the files: attachments gc
        UPDATE notifications SET address = NULL, updated_at = now()       -- the ledger keeps no address
        WHERE request_id = ANY (v_expired) AND address IS NOT NULL AND state <> 'planned';
        UPDATE commands SET payload = NULL
        WHERE request_id = ANY (v_expired) AND payload IS NOT NULL AND status IN ('done', 'failed');
        FOREACH v_c IN ARRAY v_citizens LOOP
            v_rows := v_rows + cv_citizen_erase(v_c);
        END LOOP;
        DELETE FROM api_audit WHERE at < v_audit_before;            -- NULL: nothing
        DELETE FROM dead_letters WHERE received_at < v_dead_before;
    END IF;
    RETURN jsonb_build_object('dry_run', p_dry_run,
                              'requests_expired', cardinality(v_expired),
                              'records', v_records, 'attachments', v_files, 'command_payloads', v_payloads,
                              'citizens', cardinality(v_citizens), 'citizen_rows', v_rows,
                              'audit_rows', v_audit, 'dead_letters', v_dead);
END $fn$;
