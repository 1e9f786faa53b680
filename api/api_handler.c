/*  api_handler — see api_handler.h: statements, authentication, audit and
    pages, the same for every handler. */
#include "api_handler.h"
#include "api_session.h"

#include "api_util.h"
#include "cv_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

PGresult *cv_api_sql(cv_api_req_t *req, cv_sql_t stmt, int n, const char *const *v)
{
    PGresult *r = cv_api_db_exec(stmt, n, v);
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    if (r) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (st && strncmp(st, "22", 2) == 0) {      /* a value PostgreSQL refuses: the caller's */
            PQclear(r);
            cv_api_error(req, 400, "bad_parameter", "a parameter has an invalid value");
            return NULL;
        }
        cv_error("api", "statement q%d failed: SQLSTATE %s", (int) stmt, st ? st : "?");
        PQclear(r);
    }
    CV_API_DB_DOWN(req);
    return NULL;
}

PGresult *cv_api_sql_row(cv_api_req_t *req, cv_sql_t stmt, int n, const char *const *v,
                         const char *not_found)
{
    PGresult *r = cv_api_sql(req, stmt, n, v);
    if (r && PQntuples(r) != 1) {
        PQclear(r);
        cv_api_error(req, 404, "not_found", not_found);
        return NULL;
    }
    return r;
}

json_t *cv_api_row_json(PGresult *r, int row, int col)
{
    return json_loads(PQgetvalue(r, row, col), 0, NULL);
}

int cv_api_authenticate(cv_api_req_t *req, cv_api_principal_t *who)
{
    const char *h = cv_api_header(req, "Authorization");
    char hash[CV_API_TOKEN_HEX + 1], session[CV_API_SESSION_ID_HEX + 1];
    if (!h && cv_api_session_cookie(req, session))     /* the console: a session cookie */
        return cv_api_session_authenticate(req, session, who);
    /* RFC 7235: the scheme is case-insensitive, then one or more spaces */
    const char *t = h && strncasecmp(h, "Bearer", 6) == 0 && (h[6] == ' ' || h[6] == '\t') ? h + 6 : NULL;
    while (t && (*t == ' ' || *t == '\t'))
        t++;
    if (!t || !cv_api_token_hash(t, hash))
        return cv_api_error(req, 401, "unauthorized", "a valid bearer token is required");
    const char *v[1] = { hash };
    PGresult *r = cv_api_sql(req, CV_SQL_TOKEN, 1, v);
    if (!r)
        return 503;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return cv_api_error(req, 401, "unauthorized", "a valid bearer token is required");
    }
    cv_api_principal_from_row(r, who);
    PQclear(r);
    return 0;
}

void cv_api_principal_from_row(PGresult *r, cv_api_principal_t *who)
{
    memset(who, 0, sizeof *who);
    who->token_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if (!cv_api_role_parse(PQgetvalue(r, 0, 1), &who->role))
        who->role = CV_API_AGENT;
    snprintf(who->service, sizeof who->service, "%s", PQgetvalue(r, 0, 2));
}

static int s_audit(cv_api_req_t *req, const cv_api_principal_t *who, cv_api_audit_row_t *row)
{
    row->action = req->route ? req->route->audit : NULL;
    row->client = req->client_text;
    if (!row->action) {         /* the table gives this route no action: a bug, not the caller's */
        cv_error("api", "%s %s audits without an action in the route table", req->method,
                 req->route ? req->route->pattern : "?");
        return cv_api_error(req, 503, "unavailable", "this read cannot be audited");
    }
    if (cv_api_audit_record(req->ctx->audit, who, row) < 0)
        return cv_api_error(req, 503, "audit_full", "the audit trail is saturated; try again");
    return 0;
}

int cv_api_audit(cv_api_req_t *req, const cv_api_principal_t *who, int64_t citizen_id,
                 int64_t request_id, int results)
{
    cv_api_audit_row_t row = { .citizen_id = citizen_id, .request_id = request_id, .results = results };
    return s_audit(req, who, &row);
}

int cv_api_audit_list(cv_api_req_t *req, const cv_api_principal_t *who, const int64_t *citizen_ids,
                      size_t n, int results)
{
    /* the ids once each, in the order shown */
    int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids)
        return cv_api_error(req, 503, "unavailable", "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = ids[j] == citizen_ids[i];
        if (!seen && citizen_ids[i] > 0)
            ids[k++] = citizen_ids[i];
    }
    cv_api_audit_row_t row = { .results = results, .citizen_ids = ids, .ncitizens = k };
    int rc = s_audit(req, who, &row);
    free(ids);
    return rc;
}

json_t *cv_api_body_json(const cv_api_req_t *req)
{
    json_error_t e;
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e) : NULL;
    if (body && !json_is_object(body)) {
        json_decref(body);
        return NULL;
    }
    return body;
}

const char *cv_api_body_text(json_t *body, const char *key)
{
    const char *t = json_string_value(json_object_get(body, key));
    return t && *t && strlen(t) <= 200 ? t : NULL;
}

void cv_api_identity_refusal(cv_api_req_t *req, const PGresult *r, int status_22023)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "22023") == 0)
        cv_api_error(req, status_22023, status_22023 == 404 ? "not_found" : "conflict",
                     status_22023 == 404 ? "no such citizen"
                                         : "unknown, merged or erased citizen, or a pair it does not have");
    else if (state && strcmp(state, "22000") == 0)
        cv_api_error(req, 400, "bad_request", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
    else if (state && strncmp(state, "22", 2) == 0)
        cv_api_error(req, 400, "bad_request", "a value was refused");
    else
        CV_API_DB_DOWN(req);
}

int cv_api_page(cv_api_req_t *req, cv_api_page_t *page)
{
    const char *l = cv_api_query(req, "limit"), *o = cv_api_query(req, "offset");
    page->limit = 50;
    page->offset = 0;
    if (page->limit > req->ctx->config->page_max)
        page->limit = req->ctx->config->page_max;
    if (l && !cv_api_parse_int(l, 1, req->ctx->config->page_max, &page->limit))
        return cv_api_error(req, 400, "bad_parameter", "limit: an integer from 1 to the page maximum");
    if (o && !cv_api_parse_int(o, 0, 1000000000, &page->offset))
        return cv_api_error(req, 400, "bad_parameter", "offset: a non-negative integer");
    snprintf(page->limit_text, sizeof page->limit_text, "%lld", (long long) page->limit);
    snprintf(page->fetch_text, sizeof page->fetch_text, "%lld", (long long) page->limit + 1);
    snprintf(page->offset_text, sizeof page->offset_text, "%lld", (long long) page->offset);
    return 0;
}

json_t *cv_api_paged(json_t *items, const cv_api_page_t *page)
{
    bool more = (int64_t) json_array_size(items) > page->limit;
    if (more)
        json_array_remove(items, json_array_size(items) - 1);
    return json_pack("{s:o, s:I, s:I, s:o}", "items", items, "limit", (json_int_t) page->limit,
                     "offset", (json_int_t) page->offset, "next_offset",
                     more ? json_integer(page->offset + page->limit) : json_null());
}
