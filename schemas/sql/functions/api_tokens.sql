-- api_tokens.sql — an agent's token looked up by the SHA-256 of its secret,
-- for the API (api_sql.c, CV_SQL_TOKEN). The API's role may not read the
-- hashes (zz_grants.sql: civibus_api has no SELECT on api_tokens.token_hash):
-- this function, run as the schema's owner (SECURITY DEFINER, set in
-- zz_grants.sql), answers for one hash only, and only a token that is alive.
CREATE OR REPLACE FUNCTION cv_api_token(p_hash text)
RETURNS TABLE (id bigint, role text, service text)
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE sql STABLE AS $$
    SELECT t.id, t.role, coalesce(t.service, '') FROM api_tokens t
    WHERE p_hash ~ '^[0-9a-f]{64}$' AND t.token_hash = p_hash
      AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
$$;
