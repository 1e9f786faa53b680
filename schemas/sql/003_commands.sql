-- 003_commands.sql — the outbox of outbound commands (hub → adapter → software).
--
-- An operator, an agent's screen or (later) the HTTP API inserts a row into
-- `commands`; it waits there, `pending`, while its adapter is away. The hub's
-- commander thread (hub/commander.c) hands it to the adapter when the
-- adapter's source has a session, marking it `sent` (deliveries + 1); it is
-- delivered again on the adapter's next session, or after
-- commands.result_timeout_ms without a result. The adapter performs it in
-- its software and reports the result; the writer thread records the result
-- with cv_command_results (functions/commands.sql, with the trigger that
-- wakes the commander) in the same transaction as the batch it belongs to,
-- and only then does the hub acknowledge it (RESULT_ACK).
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
