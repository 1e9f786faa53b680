-- 012_timeline_cover.sql — a request's events straight from the index (docs/api.md,
-- docs/performance.md: the agent timeline at 1,000 requests/s).
--
-- The timeline reads every event of every request of a citizen through
-- events_request (request_id, occurred_at, id), then one heap page per event: a
-- citizen's events arrive over months, so they lie on as many pages as there are
-- events (85 for a citizen of the 10M benchmark). The same index now also carries the
-- columns the timeline shows (INCLUDE: stored in the leaf, not part of the key), so
-- the timeline's scan of events is index-only once VACUUM has marked the pages
-- all-visible (events is append-only: autovacuum does, and keeps them so). The
-- store's "status in effect" probe (cv_ingest_core) reads the same index.
--
-- Measured side by side at 1M events (make bench): PostgreSQL's CPU per timeline
-- 0.75 -> 0.63 ms, timeline p99 at 1,000 requests/s 3.35 -> 2.56 ms; ingest within
-- the noise (PostgreSQL 94 and 90 us per event); 135 bytes more per stored event.
--
-- On an existing database this rebuilds the index under the migration's lock: about
-- a minute per 10M events, before the hub starts listening.

DROP INDEX events_request;
CREATE INDEX events_request ON events (request_id, occurred_at, id)
    INCLUDE (service, category, kind, source, status, source_status, due_at, received_at,
             transition_flagged);
