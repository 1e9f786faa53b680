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

CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE citizen_sources ADD COLUMN search_name text, ADD COLUMN search_address text;

-- Given names, usage name and birth name; street lines, postcode and town.
CREATE FUNCTION cv_search_texts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_name := cv_fold(concat_ws(' ', NEW.identity->>'given_names', NEW.identity->>'family_name',
                                         NEW.identity->>'birth_name'));
    NEW.search_address := cv_fold(concat_ws(' ', NEW.identity->'address'->>'line1',
                                            NEW.identity->'address'->>'line2',
                                            NEW.identity->'address'->>'postcode',
                                            NEW.identity->'address'->>'city'));
    RETURN NEW;
END $$;

CREATE TRIGGER citizen_sources_search
    BEFORE INSERT OR UPDATE OF identity ON citizen_sources
    FOR EACH ROW EXECUTE FUNCTION cv_search_texts();

UPDATE citizen_sources SET identity = identity;

CREATE INDEX citizen_sources_search_name ON citizen_sources USING gin (search_name gin_trgm_ops);
CREATE INDEX citizen_sources_search_address ON citizen_sources USING gin (search_address gin_trgm_ops);
