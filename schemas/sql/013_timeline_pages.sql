-- 013_timeline_pages.sql — a citizen's requests in timeline order, from the index
-- (docs/api.md: timeline pages).
--
-- The timeline is read in pages: the latest requests of a citizen first, by creation
-- time then id (api/api_sql.c). With requests_citizen on citizen_id alone, PostgreSQL
-- fetched every request of the citizen and sorted them for any page; with the order in
-- the index, a page scans it backwards and stops after the page (and one row more, for
-- next_offset): a page costs the same for a citizen with 5 requests or 5,000. The
-- citizen link's list (same order, ascending) reads the same index forwards.
--
-- Ingest: the index is written for new requests and for the rare change of a
-- request's citizen (merge, split, detach); created_at never changes, so status
-- updates stay HOT as before. 16 bytes more per request.
--
-- On an existing database this rebuilds the index under the migration's lock: a few
-- seconds per million requests, before the hub starts listening.

DROP INDEX requests_citizen;
CREATE INDEX requests_citizen ON requests (citizen_id, created_at, id) WHERE citizen_id IS NOT NULL;
