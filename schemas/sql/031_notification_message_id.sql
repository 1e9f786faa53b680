-- 031_notification_message_id.sql — which mail each ledger row went out as: the
-- SHA-256 of its Message-ID (as mail_threads keeps it), written when the row is
-- claimed for sending. A delivery report names the Message-ID it returns and the
-- recipient that failed; with this, a permanent one suppresses an address only
-- when that very mail went to that very address (functions/suppressions.sql),
-- not any address mailed about the same request.
ALTER TABLE notifications ADD COLUMN message_id_hash text CHECK (message_id_hash ~ '^[0-9a-f]{64}$');
CREATE INDEX notifications_message_id ON notifications (message_id_hash) WHERE message_id_hash IS NOT NULL;
