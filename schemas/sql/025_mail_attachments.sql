-- 025_mail_attachments.sql — what mail and letters bring besides their text
-- (docs/intake.md): attachments, the Message-IDs that thread a reply into its
-- request, and the addresses mail must no longer be sent to.
--
-- These tables are shared by the parts of the front office: the imap adapter's
-- records (through the hub) and POST /v1/requests write attachments; the
-- notifier (docs/notifications.md) writes the Message-IDs of the mails it
-- sends and reads the suppressions; the imap records write the Message-IDs
-- received and, for a permanent delivery failure, a suppression.

-- PERSONAL DATA (name; the file itself). One row per attachment of a request:
-- its bytes are in the content-addressed folder (lib/cv_attach.h), named by
-- their SHA-256, so the same scan attached twice is stored once. Erasure
-- deletes the rows of a citizen's requests; `civibusctl attachments gc`
-- deletes the files no row names any more.
CREATE TABLE attachments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id  bigint NOT NULL,            -- requests.id
    source      text NOT NULL,              -- who brought it: 'accueil', 'courriel', ...
    source_record_id text,                  -- the record (a mail's event id), or NULL
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    mime        text NOT NULL CHECK (mime IN ('application/pdf', 'image/jpeg', 'image/png')),
    size        bigint NOT NULL CHECK (size > 0),
    name        text CHECK (length(name) <= 255),   -- as the sender named it (PERSONAL DATA)
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (request_id, sha256)
);
CREATE INDEX attachments_sha ON attachments (sha256);

-- The Message-IDs of mails about a request, received or sent, as the SHA-256
-- hex of the Message-ID without its <> (lower-cased domain part kept as
-- written): a reply's In-Reply-To or References names one of them. A hash
-- and not the id: Message-IDs often hold the sender's address.
CREATE TABLE mail_threads (
    message_id_hash text PRIMARY KEY CHECK (message_id_hash ~ '^[0-9a-f]{64}$'),
    request_id      bigint NOT NULL,        -- requests.id
    direction       text NOT NULL CHECK (direction IN ('in', 'out')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_threads_request ON mail_threads (request_id);

-- PERSONAL DATA (address). Addresses mail is not sent to: a permanent delivery
-- failure (DSN 5.x.x other than mailbox full), or a citizen's own request.
-- The notifier checks here before each e-mail; an agent may delete a row.
CREATE TABLE email_suppressions (
    address    text PRIMARY KEY CHECK (address = lower(address) AND length(address) <= 320),
    reason     text NOT NULL CHECK (reason IN ('bounce_permanent', 'citizen_request', 'agent')),
    detail     text CHECK (length(detail) <= 200),   -- the DSN status (5.1.1), never a value
    created_at timestamptz NOT NULL DEFAULT now()
);
