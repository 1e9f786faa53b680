-- 030_attachment_sources.sql — the sources whose records may name files of the
-- attachments folder (docs/attachments.md, "Mail").
--
-- The imap adapter keeps a mail's files in the folder civibus-api serves them
-- from (lib/cv_attach.h) and names them in its record ("files": sha256, type,
-- size, name); a trigger then gives the record's request its `attachments`
-- rows, in the batch's transaction. A record is what its source says: only the
-- sources listed here (civibus.yaml: `attachments: true`, written at the hub's
-- start) are believed, so a software's webhook naming somebody's file's hash
-- attaches nothing. Functions: functions/attachments.sql.
CREATE TABLE attachment_sources (
    source     text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
