-- functions/notify.sql — the notifier's planning (docs/notifications.md).
--
-- civibus-notify calls cv_notify_plan in a loop: in one transaction it reads the
-- events after the cursor, by id (the commit order: the store writes one
-- transaction at a time under its lock), writes the ledger rows they call for
-- and moves the cursor. A crash before the commit plans nothing; after it,
-- everything: each event is planned exactly once.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes.

-- The address a request's citizen is told at: the e-mail (and phone) of the
-- identity the request's own first record gave (the address that asked,
-- self-declared or not: it proves nothing about who the person is, but it is
-- where the request came from). A request an agent registered for a citizen
-- found by search (an 'agent' pair without block) uses that citizen's
-- addresses from the sources above the self-declared level.
CREATE OR REPLACE FUNCTION cv_notify_address(p_request bigint, OUT email text, OUT phone text)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v_citizen bigint;
    v_source text;
BEGIN
    SELECT r.citizen_id INTO v_citizen FROM requests r WHERE r.id = p_request;
    IF v_citizen IS NULL OR EXISTS (SELECT 1 FROM citizens c WHERE c.id = v_citizen AND c.erased_at IS NOT NULL) THEN
        RETURN;
    END IF;
    SELECT e.source INTO v_source FROM events e WHERE e.request_id = p_request ORDER BY e.id LIMIT 1;
    SELECT lower(btrim(cs.identity->>'email')), btrim(cs.identity->>'phone') INTO email, phone
    FROM citizen_sources cs
    WHERE cs.source = v_source AND cs.citizen_id = v_citizen AND cs.identity IS NOT NULL
    ORDER BY cs.identity_at DESC NULLS LAST, cs.updated_at DESC LIMIT 1;
    IF email IS NULL AND phone IS NULL AND EXISTS (SELECT 1 FROM citizen_sources cs WHERE cs.source = v_source
                                                   AND cs.citizen_id = v_citizen AND cs.rule = 'agent') THEN
        SELECT lower(btrim(cs.identity->>'email')), btrim(cs.identity->>'phone') INTO email, phone
        FROM citizen_sources cs
        WHERE cs.citizen_id = v_citizen AND cs.identity IS NOT NULL AND cs.certainty >= 2
          AND (cs.identity->>'email' IS NOT NULL OR cs.identity->>'phone' IS NOT NULL)
        ORDER BY cs.identity_at DESC NULLS LAST LIMIT 1;
    END IF;
END $fn$;

-- An address mail may be sent to: one addr-spec without spaces, controls,
-- brackets, commas or quotes (what could end a header or add a recipient).
CREATE OR REPLACE FUNCTION cv_notify_email_ok(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p IS NOT NULL AND length(p) <= 254 AND p ~ '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$'
$$;

-- The end of the quiet period p_now is in (the window p_start..p_end in the
-- zone p_tz, over midnight when p_start > p_end), or NULL when p_now is not
-- in one (or no window is set).
CREATE OR REPLACE FUNCTION cv_notify_quiet_end(p_now timestamptz, p_tz text, p_start time, p_end time)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v_local timestamp := p_now AT TIME ZONE p_tz;
    v_t time := v_local::time;
BEGIN
    IF p_start IS NULL OR p_end IS NULL OR p_start = p_end THEN
        RETURN NULL;
    ELSIF p_start < p_end THEN
        IF v_t >= p_start AND v_t < p_end THEN
            RETURN (v_local::date + p_end) AT TIME ZONE p_tz;
        END IF;
    ELSIF v_t >= p_start THEN
        RETURN (v_local::date + 1 + p_end) AT TIME ZONE p_tz;
    ELSIF v_t < p_end THEN
        RETURN (v_local::date + p_end) AT TIME ZONE p_tz;
    END IF;
    RETURN NULL;
END $fn$;

-- The next p_at (local time of day in p_tz) after p_now.
CREATE OR REPLACE FUNCTION cv_notify_next_at(p_now timestamptz, p_tz text, p_at time) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN ((p_now AT TIME ZONE p_tz)::date + p_at) > (p_now AT TIME ZONE p_tz)
                THEN ((p_now AT TIME ZONE p_tz)::date + p_at) AT TIME ZONE p_tz
                ELSE ((p_now AT TIME ZONE p_tz)::date + 1 + p_at) AT TIME ZONE p_tz END
$$;

-- One ledger row for a person (citizen or helper) on a channel. mode off or a
-- suppressed / missing / malformed address: a 'skipped' row with the reason,
-- so the timeline says why nobody was told. A status change still planned for
-- the same request, recipient and channel is coalesced into this one, which
-- keeps the earlier one's time: one mail per window, with the latest status.
CREATE OR REPLACE FUNCTION cv_notify_person(p_event bigint, p_request bigint, p_recipient text, p_channel text,
                                            p_template text, p_status text, p_address text, p_mode text,
                                            p_coalesce_s int, p_tz text, p_digest_at time)
RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    v_state text := 'planned';
    v_err text;
    v_when timestamptz := now();
    v_first timestamptz;
    v_n int;
BEGIN
    IF p_mode = 'off' THEN
        v_state := 'skipped'; v_err := 'preference_off';
    ELSIF p_address IS NULL THEN
        v_state := 'skipped'; v_err := 'no_address';
    ELSIF p_channel = 'email' AND NOT cv_notify_email_ok(p_address) THEN
        v_state := 'skipped'; v_err := 'bad_address';
    ELSIF p_channel = 'sms' AND (length(p_address) > 40 OR cv_norm_phone(p_address) IS NULL) THEN
        v_state := 'skipped'; v_err := 'bad_address';
    ELSIF p_channel = 'sms' AND cv_identity_denied('phone', cv_norm_phone(p_address)) THEN
        v_state := 'skipped'; v_err := 'placeholder_phone';     -- 06 00 00 00 00, zeros, a typed sequence
    ELSIF p_channel = 'sms' AND EXISTS (SELECT 1 FROM shared_identifiers si WHERE si.kind = 'phone'
                                        AND si.value_hash = cv_identifier_hash('phone', cv_norm_phone(p_address))) THEN
        v_state := 'skipped'; v_err := 'shared_phone';          -- a care home's, the town hall's own number
    ELSIF p_channel = 'email' AND cv_identity_denied('email', lower(p_address)) THEN
        v_state := 'skipped'; v_err := 'placeholder_address';   -- test@test.fr, aucun@...
    ELSIF p_channel = 'email' AND EXISTS (SELECT 1 FROM email_suppressions s WHERE s.address = lower(p_address)) THEN
        v_state := 'skipped'; v_err := 'suppressed';
    END IF;
    IF v_state = 'planned' AND p_channel = 'sms' THEN
        p_address := cv_norm_phone(p_address);                  -- the gateway gets +33612345678
    END IF;
    IF v_state = 'planned' THEN
        IF p_mode = 'digest' THEN
            -- the day's changes wait for digest_at; e-mail: all of a citizen's due rows
            -- go out as one mail (template digest_citoyen, cv_notifier.c)
            v_when := cv_notify_next_at(now(), p_tz, p_digest_at);
            IF p_channel = 'email' THEN
                p_template := 'digest_citoyen';
            END IF;
        ELSIF p_template = 'changement_statut' THEN
            v_when := now() + make_interval(secs => p_coalesce_s);
        END IF;
        IF p_template = 'changement_statut' THEN
            SELECT min(o.not_before) INTO v_first FROM notifications o
            WHERE o.request_id = p_request AND o.recipient = p_recipient AND o.channel = p_channel
              AND o.template = 'changement_statut' AND o.state = 'planned';
            UPDATE notifications o SET state = 'coalesced', last_error = 'superseded', updated_at = now(), done_at = now()
            WHERE o.request_id = p_request AND o.recipient = p_recipient AND o.channel = p_channel
              AND o.template = 'changement_statut' AND o.state = 'planned';
            v_when := COALESCE(least(v_first, v_when), v_when);
        END IF;
    END IF;
    INSERT INTO notifications (event_id, request_id, recipient, channel, template, status, address, state,
                               last_error, not_before, done_at)
    VALUES (p_event, p_request, p_recipient, p_channel, p_template, p_status,
            CASE WHEN v_state = 'planned' THEN p_address END, v_state, v_err, v_when,
            CASE WHEN v_state <> 'planned' THEN now() END)
    ON CONFLICT (event_id, recipient, channel) DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END $fn$;

-- Plans the events after the cursor (at most p_batch of them) and moves the
-- cursor, in the caller's transaction. Returns the rows planned and the new
-- cursor. p_webhooks: the configured webhooks' names (a row each per
-- notified event); p_sms_default: the SMS mode without a preference
-- ('off' when no gateway is configured).
CREATE OR REPLACE FUNCTION cv_notify_plan(p_batch int, p_coalesce_s int, p_webhooks text[], p_sms_default text,
                                          p_tz text, p_digest_at time, OUT planned int, OUT last_event bigint)
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_from bigint;
    e record;
    v_prev text;
    v_first boolean;
    v_template text;
    v_addr record;
    v_helper text;
    v_w text;
BEGIN
    planned := 0;
    SELECT c.last_event_id INTO v_from FROM notify_cursor c WHERE c.id = 1 FOR UPDATE;
    IF v_from IS NULL THEN
        RAISE EXCEPTION 'notify: no cursor row (the notifier creates it at start)';
    END IF;
    last_event := v_from;
    FOR e IN SELECT ev.id, ev.request_id, ev.kind, ev.category, ev.status, ev.source, ev.source_record_id,
                    r.citizen_id, r.category AS r_category
             FROM events ev JOIN requests r ON r.id = ev.request_id
             WHERE ev.id > v_from ORDER BY ev.id LIMIT p_batch LOOP
        last_event := e.id;
        CONTINUE WHEN e.kind = 'courriel_automatique' OR e.category = 'courriel_automatique'
                   OR e.r_category = 'courriel_automatique';
        SELECT p.status INTO v_prev FROM events p WHERE p.request_id = e.request_id AND p.id < e.id
        ORDER BY p.id DESC LIMIT 1;
        v_first := NOT FOUND;
        IF v_first THEN
            v_template := 'accuse_reception';
        ELSIF v_prev IS DISTINCT FROM e.status THEN
            v_template := 'changement_statut';
        ELSE
            CONTINUE;                          -- an update that changes no status
        END IF;
        FOREACH v_w IN ARRAY COALESCE(p_webhooks, '{}') LOOP
            INSERT INTO notifications (event_id, request_id, recipient, channel, template, status, address)
            VALUES (e.id, e.request_id, 'webhook:' || v_w, 'webhook', v_template, e.status, v_w)
            ON CONFLICT (event_id, recipient, channel) DO NOTHING;
            planned := planned + 1;
        END LOOP;
        CONTINUE WHEN e.citizen_id IS NULL;     -- about nobody
        v_addr := cv_notify_address(e.request_id);
        planned := planned + cv_notify_person(e.id, e.request_id, 'citizen', 'email', v_template, e.status,
            v_addr.email, COALESCE((SELECT np.mode FROM notification_preferences np
                                    WHERE np.citizen_id = e.citizen_id AND np.channel = 'email'), 'immediate'),
            p_coalesce_s, p_tz, p_digest_at);
        IF p_sms_default IS NOT NULL THEN
            planned := planned + cv_notify_person(e.id, e.request_id, 'citizen', 'sms', v_template, e.status,
                v_addr.phone, COALESCE((SELECT np.mode FROM notification_preferences np
                                        WHERE np.citizen_id = e.citizen_id AND np.channel = 'sms'), p_sms_default),
                p_coalesce_s, p_tz, p_digest_at);
        END IF;
        -- a helper (France Services, a social worker) who filed for the citizen
        SELECT lower(btrim(sr.raw->>'helper_email')) INTO v_helper FROM source_records sr
        WHERE sr.source = e.source AND sr.source_record_id = e.source_record_id;
        IF v_helper IS NOT NULL AND v_helper IS DISTINCT FROM v_addr.email THEN
            planned := planned + cv_notify_person(e.id, e.request_id, 'helper', 'email', v_template, e.status,
                v_helper, 'immediate', p_coalesce_s, p_tz, p_digest_at);
        END IF;
    END LOOP;
    UPDATE notify_cursor SET last_event_id = last_event, updated_at = now() WHERE id = 1;
END $fn$;
