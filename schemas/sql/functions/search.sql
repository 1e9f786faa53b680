-- functions/search.sql — citizen search by name and address (docs/api.md, GET
-- /v1/citizens): a trigger keeps each pair's folded name and address text
-- (citizen_sources.search_name, search_address; columns and trigram indexes:
-- 007_search.sql), written when its identity block is inserted or changes.
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.

-- Given names, usage name and birth name; street lines, postcode and town.
CREATE OR REPLACE FUNCTION cv_search_texts() RETURNS trigger
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

CREATE OR REPLACE TRIGGER citizen_sources_search
    BEFORE INSERT OR UPDATE OF identity ON citizen_sources
    FOR EACH ROW EXECUTE FUNCTION cv_search_texts();
