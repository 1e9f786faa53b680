-- 005_api.sql — what the HTTP API (civibus-api) needs: agent tokens, the audit
-- trail of reads of citizens' data, and revoked citizen links.
--
-- The API is a reader: it never writes the timeline (only the Open311 POST,
-- through cv_ingest). It writes here: audit rows (batched by a background
-- thread, off the request path) and, through civibusctl, tokens.
-- docs/access.md says who may read what; docs/api.md describes the server.

-- Bearer tokens of agents. Only the SHA-256 (hex) of the 256-bit random
-- token is stored: a leaked table gives no usable token.
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    role        text NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    service     text,                 -- the agent's service (required for role agent)
    label       text,                 -- who holds it (an agent's login, not a citizen)
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    CHECK ((role = 'agent') = (service IS NOT NULL))
);

-- RGPD: every read of a citizen's data (who, what, when). No personal data:
-- the token id, the route and internal ids only.
CREATE TABLE api_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    token_id    bigint,               -- api_tokens.id; null for a citizen (tracking code, link)
    role        text NOT NULL,        -- agent, supervisor, admin, citizen
    service     text,
    action      text NOT NULL,        -- citizen_search, citizen_timeline, request, ...
    citizen_id  bigint,
    request_id  bigint,
    results     integer               -- rows returned (a search)
);
CREATE INDEX api_audit_citizen ON api_audit (citizen_id, at) WHERE citizen_id IS NOT NULL;
CREATE INDEX api_audit_token ON api_audit (token_id, at);

-- Citizen links (HMAC-signed, expiring) that were revoked before expiry.
CREATE TABLE api_revoked_links (
    link_id     text PRIMARY KEY,
    revoked_at  timestamptz NOT NULL DEFAULT now()
);
