-- 010_identity_cache.sql — the hub's cache of stored identity blocks, and
-- cv_ingest's result type (docs/identity.md, "Where it runs").
--
-- The hub keeps, per (source, source citizen id), a fingerprint of the
-- identity block PostgreSQL holds for it (hub/idcache.c), and sends an
-- unchanged block as NULL: resolution skips NULL blocks (006) and
-- cv_ingest_core keeps the stored identity. A changed or unknown block is
-- sent whole and goes through resolution, which also records a known
-- pair's new identifiers (006).
--
-- The cache learns only what PostgreSQL confirms: cv_ingest returns, per
-- element, o_identity_current, true when the element's block is the pair's
-- stored identity once the batch is written (one index probe and a jsonb
-- comparison per element sent with a block; none for NULL blocks).
--
-- The same cv_ingest serves the hub and the API's Open311 POST, and adds the
-- batch's new (category, service) pairs to service_categories (009).
--
-- This migration dropped 004's cv_ingest (one result column less) and
-- created the new one; the function is now in functions/ingest.sql, which
-- keeps the same arguments. The type cv_ingest_out stays here.

CREATE TYPE cv_ingest_out AS (idx int, outcome text, event_seq bigint, request_id bigint,
                              tracking_code text, flagged boolean);
