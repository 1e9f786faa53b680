-- 016_api_audit_reads.sql — the audit trail answers "who saw this citizen"
-- for lists too, and says from where (docs/access.md, "Audit actions").
--
-- A list (a service's open requests, overdue requests, the Open311 list)
-- was audited as a row count only: the citizens it showed were not named,
-- so the read log the RGPD asks for (who saw my data, when) had a hole.
-- Each list's audit row now holds the ids of the citizens whose data it
-- showed (a page is at most http.page_max requests; Open311 at most 1000).
-- Who saw citizen X:
--     SELECT * FROM api_audit WHERE citizen_id = X OR citizen_ids @> ARRAY[X::bigint]
--
-- client is the address the request came from (through one of
-- http.trusted_proxies, the one X-Forwarded-For gives): the reader's,
-- for the audit's own purpose (an anonymous reader has nothing else).
ALTER TABLE api_audit ADD COLUMN client inet;
ALTER TABLE api_audit ADD COLUMN citizen_ids bigint[];
CREATE INDEX api_audit_citizen_ids ON api_audit USING gin (citizen_ids) WHERE citizen_ids IS NOT NULL;
