-- 029_web_sessions.sql — the agents' console signs in once (docs/web.md, "Signing in").
--
-- An agent's token is exchanged once (POST /v1/sessions) for a session: a
-- 256-bit random id sent back in an HttpOnly, SameSite=Strict cookie. Only its
-- SHA-256 is stored, like the tokens' (a leaked table opens no session). A
-- session ends at its idle or absolute expiry, at logout, or when its token
-- is revoked or expires (the token is checked at every request). The CSRF
-- token every write must carry is derived from the session id, not stored.
-- How the agent proved who they are is the session's `method`: 'token' now;
-- an OpenID Connect sign-in would insert sessions the same way ('oidc').
CREATE TABLE api_sessions (
    id_hash      text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
    token_id     bigint NOT NULL REFERENCES api_tokens (id),
    method       text NOT NULL DEFAULT 'token' CHECK (method IN ('token', 'oidc')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,             -- absolute expiry
    idle_s       integer NOT NULL CHECK (idle_s > 0)
);
CREATE INDEX api_sessions_token ON api_sessions (token_id);
