-- 007_search.sql — citizen search by name and address through an index
-- (docs/api.md, GET /v1/citizens).
--
-- The API's search folded every identity block at query time (cv_fold on
-- names and address of each citizen_sources row): a full scan running
-- plpgsql per row, seconds for a city's few hundred thousand pairs. Each
-- pair now keeps its folded name and address text, written by a trigger
-- when its identity block is inserted or changes (a new pair or a changed
-- block: not the usual event), and trigram GIN indexes (pg_trgm, a trusted
-- extension of PostgreSQL's contrib) serve substring matches:
--     search_name LIKE '%' || cv_fold($1) || '%'
-- cv_fold returns letters, digits and single spaces only, so the pattern
-- needs no escaping. Matches of fewer than three characters still scan.

-- The trigger and its function, cv_search_texts: functions/search.sql. Pairs
-- stored before this migration got their texts here (UPDATE citizen_sources
-- SET identity = identity, through the trigger); since the functions moved to
-- functions/, this file runs on fresh databases only (a database part-way
-- through 001-014 is refused: schemas/sql/rewritten), which have none.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE citizen_sources ADD COLUMN search_name text, ADD COLUMN search_address text;

CREATE INDEX citizen_sources_search_name ON citizen_sources USING gin (search_name gin_trgm_ops);
CREATE INDEX citizen_sources_search_address ON citizen_sources USING gin (search_address gin_trgm_ops);
