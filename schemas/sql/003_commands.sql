-- 003_commands.sql — the outbox of outbound commands (hub → adapter → software).
--
-- An operator, an agent's screen or (later) the HTTP API inserts a row into
-- `commands`; it waits there, `pending`, while its adapter is away. The hub's
-- commander thread (hub/commander.c) hands it to the adapter when the
-- adapter's source has a session, marking it `sent` (deliveries + 1); it is
-- delivered again on the adapter's next session, or after
-- commands.result_timeout_ms without a result. The adapter performs it in
-- its software and reports the result; the writer thread records the result
-- with cv_command_results (below) in the same transaction as the batch it
-- belongs to, and only then does the hub acknowledge it (RESULT_ACK).
-- docs/commands.md tells the whole story; docs/schema.md lists the columns.
--
-- The result lands in the timeline as an event of kind 'command_result',
-- written by the store's connection only (single writer: events.id stays in
-- commit order) under the store's writer lock.

CREATE TABLE commands (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source             text NOT NULL,       -- the adapter that must perform it
    kind               text NOT NULL        -- a kind of its adapter.yaml `commands.kinds`
                       CHECK (kind ~ '^[A-Za-z0-9_.-]{1,64}$'),
    idempotency_key    text NOT NULL UNIQUE -- our reference, sent to the software
                       DEFAULT ('cvb-' || replace(gen_random_uuid()::text, '-', ''))
                       CHECK (idempotency_key ~ '^[A-Za-z0-9_.:-]{8,128}$'),
    request_id         bigint,              -- requests.id the command is about, or null
    payload            jsonb                -- PERSONAL DATA: what to send; purgeable once final
                       CHECK (payload IS NULL OR (jsonb_typeof(payload) = 'object'
                                                  AND octet_length(payload::text) <= 262144)),
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'sent', 'done', 'failed')),
    deliveries         integer NOT NULL DEFAULT 0,   -- times handed to the adapter
    created_at         timestamptz NOT NULL DEFAULT now(),
    sent_at            timestamptz,          -- latest delivery
    done_at            timestamptz,          -- result recorded
    result             jsonb,                -- the adapter's detail: http_status, reference, attempts...
    possible_duplicate boolean NOT NULL DEFAULT false,
    error              text,                 -- why it failed (never personal data)
    result_event_id    bigint,               -- events.id of its command_result event
    CHECK (payload IS NOT NULL OR status IN ('done', 'failed'))
);

-- What the commander looks for: open commands of connected sources.
CREATE INDEX commands_open ON commands (source, id) WHERE status IN ('pending', 'sent');
CREATE INDEX commands_request ON commands (request_id) WHERE request_id IS NOT NULL;

-- Wakes the commander (LISTEN civibus_commands) when a command becomes
-- pending; it also polls, so a lost notification only delays.
CREATE FUNCTION cv_commands_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('civibus_commands', NEW.source);
    RETURN NULL;
END $$;

CREATE TRIGGER commands_notify
    AFTER INSERT OR UPDATE OF status ON commands
    FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION cv_commands_notify();

-- Records the results a batch carries, called by the store in the batch's
-- transaction. p is a JSON array of
--   {"idx": position in the batch, "source": the adapter's source (from its
--    CURVE key), "command": commands.id, "outcome": "done" | "failed",
--    "detail": the adapter's detail object, "hash": sha256 of the result}
-- and one row per element comes back, in idx order:
--   'recorded'   the command is now done/failed; o_event_seq is its new
--                command_result event (null when it has no request)
--   'duplicate'  it was already done/failed (a result sent again): nothing
--                changes, o_event_seq is the event recorded then
--   'unknown'    no such command for that source: nothing changes
-- A command_result event repeats the request's current status (it never
-- changes it), takes its service, category, channel and citizen, and is
-- identified by event_id 'command:<id>:<outcome>' and source_record_id
-- 'command:<id>'. The request projection is left alone.
CREATE FUNCTION cv_command_results(p jsonb)
RETURNS TABLE (o_idx int, o_outcome text, o_event_seq bigint, o_request_id bigint,
               o_tracking_code text, o_event jsonb)
LANGUAGE plpgsql AS $fn$
DECLARE
    r   record;
    c   commands%ROWTYPE;
    q   requests%ROWTYPE;
    v_seq bigint;
    v_at  timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(1667856994, 2);   -- the store's writer lock (002)
    FOR r IN SELECT x.idx, x.source, x.command, x.outcome, x.detail, x.hash
             FROM jsonb_to_recordset(p) AS x(idx int, source text, command bigint, outcome text,
                                             detail jsonb, hash text)
             ORDER BY x.idx
    LOOP
        o_idx := r.idx;
        o_event_seq := NULL; o_request_id := NULL; o_tracking_code := NULL; o_event := NULL;
        SELECT * INTO c FROM commands WHERE id = r.command AND source = r.source FOR UPDATE;
        IF NOT FOUND THEN
            o_outcome := 'unknown';
            RETURN NEXT;
            CONTINUE;
        END IF;
        o_request_id := c.request_id;
        IF c.status IN ('done', 'failed') THEN
            o_outcome := 'duplicate';
            o_event_seq := c.result_event_id;
            SELECT tracking_code INTO o_tracking_code FROM requests WHERE id = c.request_id;
            RETURN NEXT;
            CONTINUE;
        END IF;

        v_seq := NULL;
        v_at := now();
        SELECT * INTO q FROM requests WHERE id = c.request_id;
        IF FOUND THEN
            INSERT INTO events (source, event_id, content_hash, kind, request_id, source_record_id,
                                service, category, channel, status, source_status, occurred_at,
                                citizen_id)
            VALUES (r.source, 'command:' || c.id || ':' || r.outcome, r.hash, 'command_result', q.id,
                    'command:' || c.id, q.service, q.category, q.channel, q.status,
                    'command_' || r.outcome, v_at, q.citizen_id)
            ON CONFLICT (source, event_id) DO NOTHING
            RETURNING id INTO v_seq;
            IF v_seq IS NULL THEN      -- recorded before, then the command was re-opened by hand
                SELECT id INTO v_seq FROM events
                WHERE source = r.source AND event_id = 'command:' || c.id || ':' || r.outcome;
            END IF;
            o_tracking_code := q.tracking_code;
            o_event := jsonb_build_object(
                'schema_version', 1, 'source', r.source,
                'event_id', 'command:' || c.id || ':' || r.outcome, 'kind', 'command_result',
                'source_record_id', 'command:' || c.id, 'service', q.service,
                'category', q.category, 'channel', q.channel, 'status', q.status,
                'source_status', 'command_' || r.outcome,
                'occurred_at', to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                'command_id', c.id, 'command_kind', c.kind);
        END IF;

        UPDATE commands
        SET status = r.outcome, done_at = v_at, result = r.detail - 'error',
            error = left(r.detail->>'error', 1000),
            possible_duplicate = COALESCE(r.detail->>'possible_duplicate' = 'true', false),
            result_event_id = v_seq
        WHERE id = c.id;
        o_outcome := 'recorded';
        o_event_seq := v_seq;
        RETURN NEXT;
    END LOOP;
END $fn$;
