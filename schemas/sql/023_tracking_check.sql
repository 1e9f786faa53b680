-- 023_tracking_check.sql — tracking codes carry a check character (docs/api.md,
-- "Tracking codes"). Codes are read aloud on the phone and typed at the
-- counter: the codes issued from now on have 11 characters, the 10 drawn as
-- before and one that catches any one wrong character and any two swapped
-- ones before a lookup (cv_code_finish, functions/ingest.sql; the API's
-- cv_api_tracking_code_read). Codes already issued keep their 10 characters
-- and still resolve.
ALTER TABLE requests DROP CONSTRAINT requests_tracking_code_check;
ALTER TABLE requests ADD CONSTRAINT requests_tracking_code_check
    CHECK (tracking_code ~ '^[ACDEFHJKLMNPRTUVWXY34679]{10,11}$');
