/*  api_session — sessions of the console (api_session.h has the design). */
#include "api_session.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_handler.h"
#include "api_util.h"
#include "cv_hash.h"

#define CSRF_LABEL "civibus-csrf:"

static bool s_hex64(const char *s, size_t n)
{
    if (n != CV_API_SESSION_ID_HEX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool cv_api_session_cookie(cv_api_req_t *req, char out[CV_API_SESSION_ID_HEX + 1])
{
    const char *h = cv_api_header(req, "Cookie");
    const size_t klen = strlen(CV_API_SESSION_COOKIE);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == ';' || *p == '\t')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t) (end - p) : strlen(p);
        if (len > klen && strncmp(p, CV_API_SESSION_COOKIE, klen) == 0 && p[klen] == '='
            && s_hex64(p + klen + 1, len - klen - 1)) {
            memcpy(out, p + klen + 1, CV_API_SESSION_ID_HEX);
            out[CV_API_SESSION_ID_HEX] = '\0';
            return true;
        }
        p += len;
    }
    return false;
}

static void s_csrf(const char *id, char out[CV_HASH_HEX_LEN + 1])
{
    char buf[sizeof CSRF_LABEL + CV_API_SESSION_ID_HEX];
    snprintf(buf, sizeof buf, "%s%s", CSRF_LABEL, id);
    cv_hash_bytes(buf, strlen(buf), out);
}

static bool s_safe_method(const cv_api_req_t *req)
{
    return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

int cv_api_session_authenticate(cv_api_req_t *req, const char *id, cv_api_principal_t *who)
{
    char hash[CV_HASH_HEX_LEN + 1];
    cv_hash_bytes(id, strlen(id), hash);
    const char *v[1] = { hash };
    /* valid: not past its absolute nor its idle expiry, its token alive; the
       last use is written at most every 30 s (not a write per request) */
    PGresult *r = cv_api_db_exec_params(
        "WITH s AS (SELECT t.id, t.role, coalesce(t.service, '') AS service FROM api_sessions s"
        "  JOIN api_tokens t ON t.id = s.token_id"
        "  WHERE s.id_hash = $1 AND s.expires_at > now()"
        "    AND s.last_seen_at + make_interval(secs => s.idle_s) > now()"
        "    AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())),"
        " u AS (UPDATE api_sessions SET last_seen_at = now() WHERE id_hash = $1"
        "  AND last_seen_at < now() - interval '30 seconds' AND EXISTS (SELECT 1 FROM s))"
        " SELECT id, role, service FROM s", 1, v);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return CV_API_DB_DOWN(req);
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        return cv_api_error(req, 401, "unauthorized", "the session has ended; sign in again");
    }
    cv_api_principal_from_row(r, who);
    PQclear(r);
    if (!s_safe_method(req)) {
        char csrf[CV_HASH_HEX_LEN + 1];
        s_csrf(id, csrf);
        const char *got = cv_api_header(req, "X-CSRF-Token");
        if (!got || strlen(got) != CV_HASH_HEX_LEN || sodium_memcmp(got, csrf, CV_HASH_HEX_LEN) != 0)
            return cv_api_error(req, 403, "csrf", "a write from a session needs the X-CSRF-Token it was given");
    }
    snprintf(req->session, sizeof req->session, "%s", id);
    return 0;
}

/* Secure under TLS: `always`, or `auto` when the proxy says the request came by https. */
static bool s_secure(cv_api_req_t *req)
{
    const char *mode = req->ctx->config->cookie_secure;
    if (mode && strcmp(mode, "always") == 0)
        return true;
    if (mode && strcmp(mode, "never") == 0)
        return false;
    const char *proto = cv_api_header(req, "X-Forwarded-Proto");
    return proto && strcasecmp(proto, "https") == 0;
}

/* Runs sql (its one row, one column: an expiry as text) into out; false
   after answering 503. */
static bool s_expiry(cv_api_req_t *req, const char *sql, int n, const char *const *v, char *out, size_t len)
{
    PGresult *r = cv_api_db_exec_params(sql, n, v);
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
    else
        CV_API_DB_DOWN(req);
    PQclear(r);
    return ok;
}

#define EXPIRY_TEXT "to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static void s_reply_session(cv_api_req_t *req, int status, const cv_api_principal_t *who, const char *id,
                            const char *expires_at)
{
    char csrf[CV_HASH_HEX_LEN + 1];
    s_csrf(id, csrf);
    json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "role", cv_api_role_name(who->role), "csrf_token", csrf,
                          "expires_at", expires_at, "idle_minutes", req->ctx->config->session_idle_min);
    if (who->service[0])
        json_object_set_new(o, "service", json_string(who->service));
    cv_api_reply(req, status, o);
}

void cv_api_session_open(cv_api_req_t *req, const cv_api_principal_t *nobody)
{
    (void) nobody;
    json_t *body = cv_api_body_json(req);
    const char *token = body ? cv_api_body_text(body, "token") : NULL;
    char hash[CV_API_TOKEN_HEX + 1];
    if (!token || !cv_api_token_hash(token, hash)) {
        json_decref(body);
        cv_api_error(req, 401, "unauthorized", "a valid agent token is required");
        return;
    }
    json_decref(body);
    const char *v[1] = { hash };
    PGresult *r = cv_api_sql(req, CV_SQL_TOKEN, 1, v);
    if (!r)
        return;
    if (PQntuples(r) != 1) {
        PQclear(r);
        cv_api_error(req, 401, "unauthorized", "a valid agent token is required");
        return;
    }
    cv_api_principal_t who;
    cv_api_principal_from_row(r, &who);
    PQclear(r);

    /* ended sessions are deleted by the next sign-in (the table stays small) */
    PQclear(cv_api_db_exec_params("DELETE FROM api_sessions WHERE expires_at < now()"
                                  " OR last_seen_at + make_interval(secs => idle_s) < now()", 0, NULL));
    unsigned char raw[32];
    char id[CV_API_SESSION_ID_HEX + 1], idhash[CV_HASH_HEX_LEN + 1], tok[24], hours[16], idle[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(id, sizeof id, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    cv_hash_bytes(id, strlen(id), idhash);
    snprintf(tok, sizeof tok, "%lld", (long long) who.token_id);
    snprintf(hours, sizeof hours, "%d", req->ctx->config->session_max_hours);
    snprintf(idle, sizeof idle, "%d", req->ctx->config->session_idle_min * 60);
    const char *iv[4] = { idhash, tok, hours, idle };
    char expires[40];
    if (!s_expiry(req, "INSERT INTO api_sessions (id_hash, token_id, expires_at, idle_s)"
                       " VALUES ($1, $2::bigint, now() + make_interval(hours => $3::int), $4::int)"
                       " RETURNING " EXPIRY_TEXT, 4, iv, expires, sizeof expires))
        return;
    if (cv_api_audit(req, &who, 0, 0, 0) != 0) {
        const char *dv[1] = { idhash };
        PQclear(cv_api_db_exec_params("DELETE FROM api_sessions WHERE id_hash = $1", 1, dv));
        return;
    }
    snprintf(req->set_cookie, sizeof req->set_cookie,
             CV_API_SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", id,
             req->ctx->config->session_max_hours * 3600, s_secure(req) ? "; Secure" : "");
    s_reply_session(req, 201, &who, id, expires);
    sodium_memzero(id, sizeof id);
}

void cv_api_session_show(cv_api_req_t *req, const cv_api_principal_t *who)
{
    if (!req->session[0]) {
        cv_api_error(req, 404, "not_found", "this request carries a bearer token, not a session");
        return;
    }
    char hash[CV_HASH_HEX_LEN + 1];
    cv_hash_bytes(req->session, strlen(req->session), hash);
    const char *v[1] = { hash };
    char expires[40];
    if (s_expiry(req, "SELECT " EXPIRY_TEXT " FROM api_sessions WHERE id_hash = $1", 1, v, expires, sizeof expires))
        s_reply_session(req, 200, who, req->session, expires);
}

void cv_api_session_logout(cv_api_req_t *req, const cv_api_principal_t *who)
{
    (void) who;
    if (req->session[0]) {
        char hash[CV_HASH_HEX_LEN + 1];
        cv_hash_bytes(req->session, strlen(req->session), hash);
        const char *v[1] = { hash };
        PGresult *r = cv_api_db_exec_params("DELETE FROM api_sessions WHERE id_hash = $1", 1, v);
        bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            CV_API_DB_DOWN(req);
            return;
        }
    }
    snprintf(req->set_cookie, sizeof req->set_cookie,
             CV_API_SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
             s_secure(req) ? "; Secure" : "");
    cv_api_reply(req, 200, json_pack("{s:b}", "signed_out", 1));
}
