-- 009_service_categories.sql — the catalogue of (category, service) pairs the
-- timeline holds, for Open311's service list (docs/api.md, /open311/v2/services).
--
-- Open311 lists a city's service types. civibus's are the categories the
-- mappings produce (each with the service that handles it); the API listed
-- them with a DISTINCT over all requests, a full scan per call. The
-- catalogue is now a small table: cv_ingest (010_identity_cache.sql) adds
-- the batch's new pairs after storing it, one statement per batch that
-- probes the primary key once per distinct pair of the batch. When several
-- services handle a category, Open311 names the first one seen.

CREATE TABLE service_categories (
    category   text NOT NULL,
    service    text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category, service)
);

INSERT INTO service_categories (category, service, first_seen)
SELECT category, service, min(created_at) FROM requests
WHERE category IS NOT NULL AND service IS NOT NULL
GROUP BY category, service;
