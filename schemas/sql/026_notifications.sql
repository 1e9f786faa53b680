-- 026_notifications.sql — what civibus-notify tells the citizens, the services'
-- supervisors and other systems (docs/notifications.md).
--
-- The notifier reads the committed timeline (events, by id) from a cursor kept
-- here; in the transaction that moves the cursor it writes one ledger row per
-- (event, recipient, channel) it plans. A row is committed in state 'sending'
-- before its send starts, so a send is never repeated without the ledger
-- knowing: a row found 'sending' at start-up becomes 'unknown' (the mail may or
-- may not have left), and stays so.

-- Where the notifier is in the timeline: the last events.id it planned for.
CREATE TABLE notify_cursor (
    id            smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_event_id bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The ledger. PERSONAL DATA: address (an e-mail address or a phone number;
-- a webhook's name for webhooks). No content: the mail is written again from
-- the template at each attempt. last_error is a code ("smtp_421",
-- "connect", "suppressed"), never a value.
--   planned    waiting for not_before (coalescing, quiet hours, back-off)
--   sending    committed before the send starts
--   sent       the server accepted it (SMTP 250, HTTP 2xx)
--   failed     refused for good (SMTP 5xx, HTTP 4xx, attempts exhausted)
--   unknown    the outcome was lost (connection lost after the data, or the
--              notifier stopped while 'sending'): never sent again
--   coalesced  a later status change of the same request replaced it
--   skipped    not to be sent: preference off, suppressed address, no address
CREATE TABLE notifications (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    bigint,                     -- events.id; NULL for a digest
    request_id  bigint,                     -- requests.id; NULL for a digest
    recipient   text NOT NULL,              -- 'citizen', 'helper', 'webhook:NAME', 'supervisor:SERVICE'
    channel     text NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    template    text NOT NULL,              -- accuse_reception, changement_statut, digest_service
    status      text,                       -- the request's status the mail tells (cv_status)
    address     text CHECK (length(address) <= 320),
    state       text NOT NULL DEFAULT 'planned'
                CHECK (state IN ('planned', 'sending', 'sent', 'failed', 'unknown', 'coalesced', 'skipped')),
    attempts    int NOT NULL DEFAULT 0,
    last_error  text CHECK (length(last_error) <= 64),
    not_before  timestamptz NOT NULL DEFAULT now(),
    digest_day  date,                       -- a digest's day (Europe/Paris or the configured zone)
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,                -- when it reached sent, failed, unknown, coalesced or skipped
    UNIQUE (event_id, recipient, channel)
);
CREATE UNIQUE INDEX notifications_digest ON notifications (recipient, channel, digest_day)
    WHERE digest_day IS NOT NULL;
CREATE INDEX notifications_due ON notifications (not_before, id) WHERE state = 'planned';
CREATE INDEX notifications_request ON notifications (request_id, created_at) WHERE request_id IS NOT NULL;

-- A citizen's choice per channel; no row: the channel's default (e-mail:
-- immediate; sms: the notifier's config).
CREATE TABLE notification_preferences (
    citizen_id bigint NOT NULL,             -- citizens.id
    channel    text NOT NULL CHECK (channel IN ('email', 'sms')),
    mode       text NOT NULL CHECK (mode IN ('off', 'immediate', 'digest')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (citizen_id, channel)
);
