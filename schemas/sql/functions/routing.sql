-- functions/routing.sql — routing rules and dispatch (027_routing.sql,
-- deploy/routing.yaml, docs/routing.md).
--
--   cv_routing_set(config)      the hub, at start-up: the rules and services of
--                               routing.yaml, and the trigger on the front
--                               office's new records (dropped when no file)
--   cv_routing_on_record()      that trigger: a new record of a front-office
--                               source routes its request, once (seq 1)
--   cv_routing_on_result()      a route command's result links the software's
--                               record (result.reference) to the request
--   cv_routing_reroute(...)     an agent's re-route (POST /v1/requests/{code}/route)
--
-- All of it runs in the transaction that writes the request (the hub's batch,
-- the API's registration or Open311 POST, both through cv_ingest), under the
-- store's writer lock (002): the 'routed' event it may append keeps events.id
-- in commit order, and a command is in the outbox exactly when its request is.
--
-- The cost on the hub's hot path: a row trigger on source_records whose WHEN
-- clause (the sources' names, written into it by cv_routing_set) is checked
-- by PostgreSQL itself for each new record; the records of the back-office
-- softwares never call a function (measured in docs/routing.md).
--
-- A repeatable file (docs/schema.md, "Functions"): edit the functions here.

-- Text as the rules compare it: lower case, French accents and ligatures
-- removed, ’ as ', runs of white space as one space. The same letters are
-- the only non-ASCII ones a keyword may hold (hub/routing/cv_routing.c).
CREATE OR REPLACE FUNCTION cv_routing_norm(p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT regexp_replace(lower(translate(
               replace(replace(replace(replace(p, 'œ', 'oe'), 'Œ', 'oe'), 'æ', 'ae'), 'Æ', 'ae'),
               'ÀÂÄÁÃÅàâäáãåÇçÉÈÊËéèêëÎÏÍÌîïíìÔÖÓÒÕôöóòõÙÛÜÚùûüúŸÝÿýÑñ’',
               'aaaaaaaaaaaacceeeeeeeeiiiiiiiioooooooooouuuuuuuuyyyynn''')),
           '\s+', ' ', 'g')
$$;

-- o with v at path p (objects created on the way).
CREATE OR REPLACE FUNCTION cv_routing_put(o jsonb, p text[], v jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF cardinality(p) = 1 THEN
        RETURN o || jsonb_build_object(p[1], v);
    END IF;
    RETURN o || jsonb_build_object(p[1], cv_routing_put(
        CASE WHEN jsonb_typeof(o->p[1]) = 'object' THEN o->p[1] ELSE '{}'::jsonb END, p[2:], v));
END $$;

-- Loads routing.yaml's rules (the hub's JSON, hub/routing/cv_routing.c):
--   {"default_service", "sources": [..], "rules": [{name, categories, channels,
--    keywords, service}], "services": [{service, source, kind, payload}]}
-- NULL: no routing (rules and trigger removed). Returns the number of rules.
CREATE OR REPLACE FUNCTION cv_routing_set(p jsonb) RETURNS integer
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_sources text;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- the store's writer lock: no batch in between
    DELETE FROM routing_rules;
    DELETE FROM routing_services;
    DELETE FROM routing_config;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'source_records_route'
                                          AND tgrelid = 'source_records'::regclass) THEN
        DROP TRIGGER source_records_route ON source_records;
    END IF;
    IF p IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO routing_config (default_service, sources, config)
    VALUES (p->>'default_service', ARRAY(SELECT jsonb_array_elements_text(p->'sources')), p);
    INSERT INTO routing_services (service, source, kind, payload)
    SELECT x->>'service', x->>'source', x->>'kind', COALESCE(x->'payload', '[]')
    FROM jsonb_array_elements(p->'services') x;
    INSERT INTO routing_rules (position, name, categories, channels, keywords, pattern, service)
    SELECT n, x->>'name',
           CASE WHEN x ? 'categories' THEN ARRAY(SELECT jsonb_array_elements_text(x->'categories')) END,
           CASE WHEN x ? 'channels' THEN ARRAY(SELECT jsonb_array_elements_text(x->'channels')) END,
           k.kw,
           CASE WHEN k.kw IS NOT NULL THEN '(^|[^a-z0-9])(' || array_to_string(k.kw, '|') || ')($|[^a-z0-9])' END,
           x->>'service'
    FROM jsonb_array_elements(p->'rules') WITH ORDINALITY AS r(x, n)
    LEFT JOIN LATERAL (SELECT CASE WHEN x ? 'keywords'
                                   THEN ARRAY(SELECT cv_routing_norm(w) FROM jsonb_array_elements_text(x->'keywords') w)
                              END AS kw) k ON true;
    -- the hub checked the keywords; this keeps a bad one out of a regex all the same
    IF EXISTS (SELECT 1 FROM routing_rules r, unnest(r.keywords) w WHERE w !~ '^[a-z0-9][a-z0-9 ''-]{0,99}$') THEN
        RAISE EXCEPTION 'routing: a keyword holds other characters than letters, digits, spaces, '' and -'
            USING ERRCODE = '22000';
    END IF;
    SELECT string_agg(quote_literal(s), ', ') INTO v_sources
    FROM unnest(ARRAY(SELECT jsonb_array_elements_text(p->'sources'))) s
    WHERE s ~ '^[a-z0-9_-]{1,63}$';
    IF v_sources IS NOT NULL THEN
        EXECUTE format('CREATE TRIGGER source_records_route AFTER INSERT ON source_records '
                       'FOR EACH ROW WHEN (NEW.source IN (%s)) EXECUTE FUNCTION cv_routing_on_record()',
                       v_sources);
    END IF;
    RETURN (SELECT count(*) FROM routing_rules);
END $fn$;

-- What a dispatch's payload can be made of (docs/routing.md, "payload"): the
-- request, its front-office record (p_summary, p_extra, p_location: the
-- trigger's new row; NULL: looked up, its first one), its citizen's latest
-- identity block. Keys are the field names of routing.yaml; absent values
-- left out. The trigger hands the record over rather than have it looked up:
-- within the batch's transaction the planner knows nothing of the rows the
-- batch wrote, and a lookup per request would read them all (10,000
-- requests: 6.5 s instead of 0.05).
CREATE OR REPLACE FUNCTION cv_routing_fields(p_request bigint, p_summary text DEFAULT NULL,
                                             p_extra jsonb DEFAULT NULL, p_location jsonb DEFAULT NULL,
                                             p_given boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    q  requests%ROWTYPE;
    v_id jsonb;
BEGIN
    SELECT * INTO q FROM requests WHERE id = p_request;
    IF NOT p_given THEN
        SELECT s.summary, s.extra, s.location INTO p_summary, p_extra, p_location
        FROM request_sources rs
        JOIN source_records s ON s.source = rs.source AND s.source_record_id = rs.source_record_id
        WHERE rs.request_id = p_request
          AND rs.source = ANY (COALESCE((SELECT c.sources FROM routing_config c), '{}'))
        ORDER BY rs.created_at, rs.source, rs.source_record_id
        LIMIT 1;
    END IF;
    IF q.citizen_id IS NOT NULL THEN
        SELECT cs.identity INTO v_id FROM citizen_sources cs
        WHERE cs.citizen_id = q.citizen_id AND cs.identity IS NOT NULL
        ORDER BY cs.identity_at DESC NULLS LAST LIMIT 1;
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'tracking_code', q.tracking_code, 'request_id', q.id, 'category', q.category,
        'channel', q.channel, 'service', q.service,
        'summary', left(p_summary, 10000),
        'description', left(COALESCE(p_extra->>'body', p_summary), 10000),
        'requested_at', to_char(q.requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'registration_number', q.request_ref,
        'location.address', p_location->'address', 'location.postcode', p_location->'postcode',
        'location.city', p_location->'city', 'location.lat', p_location->'lat',
        'location.lon', p_location->'lon',
        'citizen.last_name', v_id->'family_name', 'citizen.first_name', v_id->'given_names',
        'citizen.email', v_id->'email', 'citizen.phone', v_id->'phone',
        'citizen.address.line1', v_id->'address'->'line1', 'citizen.address.line2', v_id->'address'->'line2',
        'citizen.address.postcode', v_id->'address'->'postcode', 'citizen.address.city', v_id->'address'->'city'));
END $fn$;

-- One command to the software of p_service for routing decision p_seq of the
-- request; its key 'route-<request>-<seq>' makes a second call a no-op.
-- NULL when the service has no software. p_fields: cv_routing_fields's, when
-- the caller has them.
DROP FUNCTION IF EXISTS cv_routing_dispatch(bigint, text, int);
CREATE OR REPLACE FUNCTION cv_routing_dispatch(p_request bigint, p_service text, p_seq int,
                                               p_fields jsonb DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    s routing_services%ROWTYPE;
    f jsonb;
    e jsonb;
    v jsonb;
    v_payload jsonb := '{}';
    v_key text := 'route-' || p_request || '-' || p_seq;
    v_cmd bigint;
BEGIN
    SELECT * INTO s FROM routing_services WHERE service = p_service AND source IS NOT NULL;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    f := COALESCE(p_fields, cv_routing_fields(p_request));
    FOR e IN SELECT x FROM jsonb_array_elements(s.payload) x LOOP
        v := CASE WHEN e ? 'const' THEN e->'const' ELSE f->(e->>'field') END;
        IF v IS NOT NULL THEN
            v_payload := cv_routing_put(v_payload, ARRAY(SELECT jsonb_array_elements_text(e->'path')), v);
        END IF;
    END LOOP;
    INSERT INTO commands (source, kind, idempotency_key, request_id, payload)
    VALUES (s.source, s.kind, v_key, p_request, v_payload)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO v_cmd;
    IF v_cmd IS NULL THEN
        SELECT id INTO v_cmd FROM commands WHERE idempotency_key = v_key;
    END IF;
    RETURN v_cmd;
END $fn$;

-- The 'routed' event of decision p_seq: the request's timeline shows where it
-- went (source 'routage', source_status 'routed', the new service; the status
-- repeated, never changed). Caller holds the writer lock.
CREATE OR REPLACE FUNCTION cv_routing_event(p_request bigint, p_seq int) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    q requests%ROWTYPE;
    v_id bigint;
BEGIN
    SELECT * INTO q FROM requests WHERE id = p_request;
    INSERT INTO events (source, event_id, content_hash, kind, request_id, source_record_id, service,
                        category, channel, status, source_status, occurred_at, citizen_id)
    VALUES ('routage', 'route:' || q.id || ':' || p_seq,
            encode(sha256(convert_to('route:' || q.id || ':' || p_seq || ':' || q.service, 'UTF8')), 'hex'),
            'routed', q.id, 'route:' || q.id, q.service, q.category, q.channel, q.status, 'routed',
            now(), q.citizen_id)
    ON CONFLICT (source, event_id) DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END $fn$;

-- The automatic routing of a new front-office request: once (seq 1, its
-- primary key), only while it is open. The service moves only when it is
-- unset or the triage queue: a service an agent chose is kept. The keywords
-- are looked for in the record's summary (the description typed by an agent,
-- a mail's subject, an Open311 description) and a mail's body (extra.body),
-- the first 10,000 characters of each.
DROP FUNCTION IF EXISTS cv_routing_route(bigint, text);
CREATE OR REPLACE FUNCTION cv_routing_route(p_request bigint, p_summary text, p_extra jsonb, p_location jsonb)
RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    cfg routing_config%ROWTYPE;
    q requests%ROWTYPE;
    r routing_rules%ROWTYPE;
    v_text text;
    v_to text;
    v_reason text := 'kept';
    v_pos int;
    v_name text;
    v_event bigint;
    v_n int;
BEGIN
    SELECT * INTO cfg FROM routing_config;
    SELECT * INTO q FROM requests WHERE id = p_request FOR UPDATE;
    IF cfg.one IS NULL OR q.id IS NULL
       OR q.status NOT IN ('received', 'acknowledged', 'in_progress', 'waiting_citizen') THEN
        RETURN;
    END IF;
    INSERT INTO request_routes (request_id, seq, service_from, service_to, reason)
    VALUES (q.id, 1, q.service, COALESCE(q.service, cfg.default_service), 'kept')
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RETURN;                                         -- routed before: never twice
    END IF;
    v_to := q.service;
    IF q.service IS NULL OR q.service = cfg.default_service THEN
        v_text := cv_routing_norm(left(COALESCE(p_summary, ''), 10000) || ' '
                                  || left(COALESCE(p_extra->>'body', ''), 10000));
        FOR r IN SELECT * FROM routing_rules ORDER BY position LOOP
            IF (r.categories IS NULL OR q.category = ANY (r.categories))
               AND (r.channels IS NULL OR q.channel::text = ANY (r.channels))
               AND (r.pattern IS NULL OR v_text ~ r.pattern) THEN
                v_to := r.service; v_reason := 'rule'; v_pos := r.position; v_name := r.name;
                EXIT;
            END IF;
        END LOOP;
        IF v_reason = 'kept' THEN
            v_to := cfg.default_service; v_reason := 'default';
        END IF;
    END IF;
    IF v_to IS DISTINCT FROM q.service THEN
        UPDATE requests SET service = v_to, updated_at = now() WHERE id = q.id;
        v_event := cv_routing_event(q.id, 1);
    END IF;
    UPDATE request_routes
    SET service_to = v_to, reason = v_reason, rule_position = v_pos, rule_name = v_name,
        event_id = v_event,
        command_id = cv_routing_dispatch(q.id, v_to, 1,
                                         cv_routing_fields(q.id, p_summary, p_extra, p_location, true))
    WHERE request_id = q.id AND seq = 1;
END $fn$;

-- The trigger cv_routing_set puts on source_records for the front office's
-- sources: a new record routes its request (a reply joining an open request
-- finds it routed already).
CREATE OR REPLACE FUNCTION cv_routing_on_record() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM cv_routing_route(NEW.request_id, NEW.summary, NEW.extra, NEW.location);
    RETURN NULL;
END $fn$;

-- A route command's result (the writer's batch, cv_command_results): the
-- software's id for its record (result.reference) is linked to the request,
-- so that the software's later events on that record land in it. When the
-- software's events on that record came first (they created a request of
-- their own), nothing is moved: the decision says 'conflict' (docs/routing.md).
CREATE OR REPLACE FUNCTION cv_routing_on_result() RETURNS trigger
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_ref text := left(NEW.result->>'reference', 200);
    v_link text;
    v_other bigint;
    v_n int;
BEGIN
    IF NEW.status = 'failed' THEN
        v_link := 'failed';
    ELSIF v_ref IS NULL OR v_ref = '' OR NEW.request_id IS NULL THEN
        v_link := 'no_reference';
    ELSE
        INSERT INTO request_sources (source, source_record_id, request_id)
        VALUES (NEW.source, v_ref, NEW.request_id)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        IF v_n = 1 THEN
            v_link := 'linked';
        ELSE
            SELECT request_id INTO v_other FROM request_sources
            WHERE source = NEW.source AND source_record_id = v_ref;
            v_link := CASE WHEN v_other = NEW.request_id THEN 'linked' ELSE 'conflict' END;
        END IF;
    END IF;
    UPDATE request_routes SET reference = v_ref, link = v_link WHERE command_id = NEW.id;
    RETURN NULL;
END $fn$;

CREATE OR REPLACE TRIGGER commands_route_result
    AFTER UPDATE OF status ON commands
    FOR EACH ROW WHEN (NEW.status IN ('done', 'failed') AND OLD.status NOT IN ('done', 'failed')
                       AND NEW.idempotency_key LIKE 'route-%')
    EXECUTE FUNCTION cv_routing_on_result();

-- An agent's re-route (the API's POST /v1/requests/{code}/route): the request
-- moves to p_service, the timeline gains a 'routed' event, and the new
-- service's software gets a command of its own (key route-<request>-<seq>).
-- p_agent_service: the agent's service (NULL for a supervisor or an admin):
-- an agent re-routes the requests of their own service only. Refusals:
-- 22023 no such request (or one the agent may not see: the same answer),
-- 22000 an unknown service, 42501 another service's request, 55000 already
-- there or closed. Returns {tracking_code, request_id, citizen_id, service,
-- previous_service, command_id}.
CREATE OR REPLACE FUNCTION cv_routing_reroute(p_code text, p_service text, p_actor text,
                                              p_agent_service text) RETURNS jsonb
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    q requests%ROWTYPE;
    v_seq int;
    v_event bigint;
    v_cmd bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM routing_config) THEN
        RAISE EXCEPTION 'route: no routing rules are loaded (deploy/routing.yaml)' USING ERRCODE = '55000';
    END IF;
    IF p_service IS NULL OR NOT EXISTS (SELECT 1 FROM routing_services WHERE service = p_service) THEN
        RAISE EXCEPTION 'route: unknown service (the services of routing.yaml)' USING ERRCODE = '22000';
    END IF;
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- the store's writer lock: an event is written
    SELECT * INTO q FROM requests WHERE tracking_code = p_code FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'route: no such request' USING ERRCODE = '22023';
    END IF;
    IF p_agent_service IS NOT NULL AND q.service IS DISTINCT FROM p_agent_service THEN
        RAISE EXCEPTION 'route: an agent re-routes the requests of their own service only' USING ERRCODE = '42501';
    END IF;
    IF q.status NOT IN ('received', 'acknowledged', 'in_progress', 'waiting_citizen') THEN
        RAISE EXCEPTION 'route: the request is closed' USING ERRCODE = '55000';
    ELSIF q.service = p_service THEN
        RAISE EXCEPTION 'route: the request is in that service already' USING ERRCODE = '55000';
    END IF;
    SELECT COALESCE(max(seq), 1) + 1 INTO v_seq FROM request_routes WHERE request_id = q.id;
    INSERT INTO request_routes (request_id, seq, service_from, service_to, reason, actor)
    VALUES (q.id, v_seq, q.service, p_service, 'agent', p_actor);
    UPDATE requests SET service = p_service, updated_at = now() WHERE id = q.id;
    v_event := cv_routing_event(q.id, v_seq);
    v_cmd := cv_routing_dispatch(q.id, p_service, v_seq);
    UPDATE request_routes SET event_id = v_event, command_id = v_cmd WHERE request_id = q.id AND seq = v_seq;
    RETURN jsonb_build_object('tracking_code', q.tracking_code, 'request_id', q.id, 'citizen_id', q.citizen_id,
                              'service', p_service, 'previous_service', q.service, 'command_id', v_cmd);
END $fn$;
