-- functions/commands.sql — the commands outbox (table: 003_commands.sql;
-- docs/commands.md): the trigger that wakes the hub's commander, and the recording of
-- the results a batch carries.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.

-- Wakes the commander (LISTEN civibus_commands) when a command becomes
-- pending; it also polls, so a lost notification only delays.
CREATE OR REPLACE FUNCTION cv_commands_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('civibus_commands', NEW.source);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER commands_notify
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
CREATE OR REPLACE FUNCTION cv_command_results(p jsonb)
RETURNS TABLE (o_idx int, o_outcome text, o_event_seq bigint, o_request_id bigint,
               o_tracking_code text, o_event jsonb)
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
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
