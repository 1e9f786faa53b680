-- functions/suppressions.sql — a permanent delivery failure turns e-mail off for the
-- address (docs/intake.md, "E-mail"; email_suppressions in 025_mail_attachments.sql).
--
-- The imap driver reads a delivery status notification (RFC 3464) into the record's
-- "dsn" (adapters/drivers/imap/cv_imap_dsn.h): {"returned_message_id_hash": the hash of
-- the Message-ID of the mail it returns, "recipients": [{"recipient", "original_recipient",
-- "action", "status"}]}. A DSN is self-declared data: anyone can send a mail shaped like
-- a bounce, naming any address. So a DSN suppresses an address only when
--   - the Message-ID it returns is one of ours: in mail_threads with direction 'out'
--     (the notifier writes it as it claims a send: 128 random bits, known only to the
--     mail's path and its recipient), and
--   - a recipient of the DSN, Final-Recipient or Original-Recipient, is an address the
--     notifier mailed (notifications, channel email, at least one attempt) about the
--     request that Message-ID belongs to: the address suppressed is the ledger's, and
--   - that recipient failed for good: Action failed, Status 5.x.x other than 5.2.2
--     (mailbox full, transient in practice); a 4.x.x never suppresses.
-- Anything else is only recorded (the DSN's event, closed, by the mapping's rule
-- courriel_automatique). The ledger does not keep which Message-ID went to which
-- address, only per request: a DSN naming another address mailed about the same request
-- (the helper's) would match it too.
--
-- The row: reason 'bounce_permanent', detail "dsn STATUS, event EVENTS.ID" (no personal
-- data); an address already suppressed keeps its row.
--
-- Called by cv_ingest_core (functions/ingest.sql) for the fresh elements of a batch
-- whose extra names "dsn", with their events.id. Returns the rows inserted.
-- A repeatable file (docs/schema.md, "Functions").
CREATE OR REPLACE FUNCTION cv_dsn_suppress(p_extra text[], p_event bigint[]) RETURNS int
LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
DECLARE
    v_n int;
BEGIN
    WITH d AS (
        SELECT u.ev, x.j->'dsn' AS dsn
        FROM unnest(p_extra, p_event) AS u(extra, ev)
        CROSS JOIN LATERAL (SELECT u.extra::jsonb AS j) x
        WHERE u.extra IS NOT NULL AND jsonb_typeof(x.j->'dsn') = 'object'
          AND jsonb_typeof(x.j->'dsn'->'recipients') = 'array'
          AND x.j->'dsn'->>'returned_message_id_hash' ~ '^[0-9a-f]{64}$'
    ), ours AS (                -- a mail we sent: its request
        SELECT d.ev, d.dsn, mt.request_id
        FROM d
        JOIN mail_threads mt ON mt.message_id_hash = d.dsn->>'returned_message_id_hash'
                            AND mt.direction = 'out'
    ), failed AS (              -- its recipients that failed for good (50 at most)
        SELECT o.ev, o.request_id, o.dsn->>'returned_message_id_hash' AS returned, a.e->>'status' AS status,
               lower(a.e->>'recipient') AS final, lower(a.e->>'original_recipient') AS orig
        FROM ours o
        CROSS JOIN LATERAL jsonb_array_elements(o.dsn->'recipients') WITH ORDINALITY AS a(e, k)
        WHERE a.k <= 50 AND jsonb_typeof(a.e) = 'object'
          AND a.e->>'action' = 'failed'
          -- the driver's form (no leading zeros), so that 5.02.2 cannot pass for other than 5.2.2
          AND a.e->>'status' ~ '^5\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$' AND a.e->>'status' <> '5.2.2'
    ), hit AS (                 -- ... that the notifier mailed about that request
        SELECT DISTINCT ON (n.addr) n.addr, f.status, f.ev
        FROM failed f
        CROSS JOIN LATERAL (SELECT DISTINCT lower(n.address) AS addr FROM notifications n
                            WHERE n.request_id = f.request_id AND n.channel = 'email'
                              AND n.attempts > 0 AND n.address IS NOT NULL
                              AND lower(n.address) IN (f.final, f.orig)
                              -- that very mail (031): a row sent before 031 knows its request only
                              AND (n.message_id_hash IS NULL OR n.message_id_hash = f.returned)) n
        WHERE length(n.addr) <= 320
        ORDER BY n.addr, f.ev
    )
    INSERT INTO email_suppressions (address, reason, detail)
    SELECT h.addr, 'bounce_permanent', 'dsn ' || h.status || ', event ' || h.ev
    FROM hit h
    ON CONFLICT (address) DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END $fn$;
