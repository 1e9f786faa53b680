-- 011_api_indexes.sql — indexes for the API's reads of `requests`, and nothing more
-- (docs/api.md; docs/performance.md measures the timeline at a paced 1,000 requests/s).
--
-- `requests` had its primary key and the tracking code only: a citizen's timeline,
-- "does this agent's service know this citizen", a service's open requests and the
-- overdue list each read the whole table (about 200 ms a query at 1M events). The
-- store updates a request's row on most events; these columns seldom change, so those
-- updates stay HOT (no index entry written) as before: citizen_id changes on a merge,
-- service almost never, due_at when a source moves the deadline.
--
-- A request's summary (in every request the API shows) is its source record's: found
-- through request_sources by request id, which is written once per request, rather
-- than by an index on source_records, whose rows the store rewrites on every event.

CREATE INDEX requests_citizen ON requests (citizen_id) WHERE citizen_id IS NOT NULL;
CREATE INDEX requests_service ON requests (service, id);
CREATE INDEX requests_due ON requests (due_at, id) WHERE due_at IS NOT NULL;
CREATE INDEX request_sources_request ON request_sources (request_id);
