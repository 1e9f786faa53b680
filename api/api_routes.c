/*  api_routes — the API's endpoints (docs/openapi.yaml lists them, with
    their parameters and answers; docs/access.md who sees what).

        GET /healthz                          public
        GET /metrics                          public (Prometheus text)
        GET /v1/track/{code}                  public, rate limited per address
        GET /v1/me/{link}                     public (signed citizen link), rate limited
        GET /v1/citizens?name|email|phone|address|tracking_code   bearer
        GET /v1/citizens/{id}/timeline        bearer
        GET /v1/requests/{id}                 bearer
        GET /v1/requests/overdue[?service=]   bearer
        GET /v1/services/{service}/requests   bearer (open requests)
        GET /v1/merge-proposals               bearer, supervisor or admin
        POST /v1/citizens/{id}/merge          bearer, supervisor or admin: {"absorb": id}
        POST /v1/merges/{id}/split            bearer, supervisor or admin
        POST /v1/citizens/{id}/detach         bearer, supervisor or admin: {"source", "source_citizen_id"}

    Each handler: check the parameters (400), authenticate (401), run
    prepared statements, parse the JSON rows, filter them by the caller's
    view, audit reads of citizens' data (503 if the audit queue refuses),
    answer. The timeline skips the parse and the filter: its statement
    returns plain rows, which api_timeline.c writes in the caller's view.
    Unknown ids answer 404; a citizen an agent's service never dealt with
    is 404 too (existence is not revealed). */
#include "api_server.h"

#include "api_db.h"
#include "api_link.h"
#include "api_timeline.h"
#include "api_util.h"
#include "cv_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DB_DOWN(req) cv_api_error(req, 503, "unavailable", "the database is not reachable")

/* Runs a statement; on failure answers 503 and returns NULL. */
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
    DB_DOWN(req);
    return NULL;
}

/* The statement's one row, or NULL when it failed (answered already) or
   found nothing (answered 404 with not_found). */
static PGresult *s_one_row(cv_api_req_t *req, cv_sql_t stmt, int n, const char *const *v,
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

static json_t *s_row_json(PGresult *r, int row, int col)
{
    return json_loads(PQgetvalue(r, row, col), 0, NULL);
}

int cv_api_authenticate(cv_api_req_t *req, cv_api_principal_t *who)
{
    const char *h = cv_api_header(req, "Authorization");
    char hash[CV_API_TOKEN_HEX + 1];
    if (!h || strncmp(h, "Bearer ", 7) != 0 || !cv_api_token_hash(h + 7, hash))
        return cv_api_error(req, 401, "unauthorized", "a valid bearer token is required");
    const char *v[1] = { hash };
    PGresult *r = cv_api_sql(req, CV_SQL_TOKEN, 1, v);
    if (!r)
        return 503;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return cv_api_error(req, 401, "unauthorized", "a valid bearer token is required");
    }
    memset(who, 0, sizeof *who);
    who->token_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if (!cv_api_role_parse(PQgetvalue(r, 0, 1), &who->role))
        who->role = CV_API_AGENT;
    snprintf(who->service, sizeof who->service, "%s", PQgetvalue(r, 0, 2));
    PQclear(r);
    return 0;
}

int cv_api_audit_read(cv_api_req_t *req, const cv_api_principal_t *who, const char *action,
                   int64_t citizen_id, int64_t request_id, int results)
{
    if (cv_api_audit_record(req->ctx->audit, who, action, citizen_id, request_id, results) < 0)
        return cv_api_error(req, 503, "audit_full", "the audit trail is saturated; try again");
    return 0;
}

/* A page of a list: the limit / offset query parameters, and the same as
   SQL parameter texts. Lists fetch limit + 1 rows: the extra one tells
   whether a next page exists. */
typedef struct {
    int64_t limit, offset;
    char limit_text[24], fetch_text[24], offset_text[24];   /* limit, limit + 1, offset */
} page_t;

static int s_page(cv_api_req_t *req, page_t *page)
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

/* {items, limit, offset, next_offset}: rows holds up to limit + 1 items. */
static json_t *s_paged(json_t *items, const page_t *page)
{
    bool more = (int64_t) json_array_size(items) > page->limit;
    if (more)
        json_array_remove(items, json_array_size(items) - 1);
    return json_pack("{s:o, s:I, s:I, s:o}", "items", items, "limit", (json_int_t) page->limit,
                     "offset", (json_int_t) page->offset, "next_offset",
                     more ? json_integer(page->offset + page->limit) : json_null());
}

/* Requests as rows (JSON, service), each filtered by the caller's view. */
static json_t *s_requests(PGresult *r, const cv_api_principal_t *who)
{
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = s_row_json(r, i, 0);
        if (!o)
            continue;
        cv_api_filter(o, "request", cv_api_view_for(who, PQgetvalue(r, i, 1)));
        json_array_append_new(items, o);
    }
    return items;
}

static bool s_sees_all(const cv_api_principal_t *who)
{
    return who->role == CV_API_SUPERVISOR || who->role == CV_API_ADMIN;
}

/* ---- public ---- */

static void s_healthz(cv_api_req_t *req)
{
    PGresult *r = cv_api_sql(req, CV_SQL_HAS_PROPOSALS, 0, NULL);
    if (!r)
        return;
    PQclear(r);
    cv_api_reply(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void s_metrics(cv_api_req_t *req)
{
    cv_api_ctx_t *c = req->ctx;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        cv_api_error(req, 503, "unavailable", "out of memory");
        return;
    }
    fprintf(f, "# HELP civibus_api_requests_total HTTP requests answered, by status class.\n"
               "# TYPE civibus_api_requests_total counter\n");
    for (int k = 2; k <= 5; k++)
        fprintf(f, "civibus_api_requests_total{class=\"%dxx\"} %lu\n", k,
                (unsigned long) atomic_load(&c->requests[k]));
    fprintf(f, "# HELP civibus_api_track_limited_total Tracking-code lookups refused by the rate limit.\n"
               "# TYPE civibus_api_track_limited_total counter\n"
               "civibus_api_track_limited_total %lu\n",
            (unsigned long) atomic_load(&c->track_limited));
    fprintf(f, "# HELP civibus_api_audit_rows_total Audit rows written to api_audit.\n"
               "# TYPE civibus_api_audit_rows_total counter\n"
               "civibus_api_audit_rows_total %llu\n",
            (unsigned long long) cv_api_audit_written(c->audit));
    fclose(f);
    req->status = 200;
    req->text = text;
}

static void s_track(cv_api_req_t *req, const char *code_in)
{
    if (!cv_api_ratelimit_hit(req->ctx->track_limit, req->client, req->client_len, time(NULL))) {
        atomic_fetch_add(&req->ctx->track_limited, 1);
        cv_api_error(req, 429, "rate_limited", "too many lookups from this address; wait a minute");
        return;
    }
    char code[11];
    if (!cv_api_tracking_code(code_in, code)) {
        cv_api_error(req, 404, "not_found", "no request has this tracking code");
        return;
    }
    const char *v[1] = { code };
    PGresult *r = s_one_row(req, CV_SQL_TRACK, 1, v, "no request has this tracking code");
    if (!r)
        return;
    json_t *o = s_row_json(r, 0, 0);
    cv_api_principal_t citizen = { .role = CV_API_CITIZEN };
    int64_t rid = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    int64_t cid = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    if (cv_api_audit_read(req, &citizen, "track", cid, rid, 1) != 0) {
        json_decref(o);
        return;
    }
    cv_api_reply(req, 200, o);
}

/* A signed citizen link: that citizen's requests, nothing else, in pages as a
   timeline: the latest requests first (limit / offset), listed in creation order. */
static void s_me(cv_api_req_t *req, const char *link)
{
    if (!cv_api_ratelimit_hit(req->ctx->track_limit, req->client, req->client_len, time(NULL))) {
        atomic_fetch_add(&req->ctx->track_limited, 1);
        cv_api_error(req, 429, "rate_limited", "too many lookups from this address; wait a minute");
        return;
    }
    int64_t cid;
    char link_id[33];
    int rc = req->ctx->links ? cv_api_link_check(req->ctx->link_key, link, time(NULL), &cid, link_id) : -1;
    if (rc == -2) {
        cv_api_error(req, 410, "expired", "this link has expired; ask for a new one");
        return;
    }
    if (rc != 0) {
        cv_api_error(req, 404, "not_found", "no such link");
        return;
    }
    const char *v[1] = { link_id };
    PGresult *r = cv_api_sql(req, CV_SQL_LINK_REVOKED, 1, v);
    if (!r)
        return;
    bool revoked = PQntuples(r) > 0;
    PQclear(r);
    if (revoked) {
        cv_api_error(req, 410, "revoked", "this link was revoked; ask for a new one");
        return;
    }
    page_t page;
    if (s_page(req, &page) != 0)
        return;
    char cs[24];
    snprintf(cs, sizeof cs, "%lld", (long long) cid);
    const char *pv[3] = { cs, page.fetch_text, page.offset_text };
    r = cv_api_sql(req, CV_SQL_LINK_REQUESTS, 3, pv);
    if (!r)
        return;
    bool more = PQntuples(r) > page.limit;         /* the extra row is the oldest, first */
    json_t *items = json_array();
    for (int i = more ? 1 : 0; i < PQntuples(r); i++) {
        json_t *o = s_row_json(r, i, 0);
        if (o)
            json_array_append_new(items, o);
    }
    PQclear(r);
    cv_api_principal_t citizen = { .role = CV_API_CITIZEN };
    if (cv_api_audit_read(req, &citizen, "citizen_link", cid, 0, (int) json_array_size(items)) != 0) {
        json_decref(items);
        return;
    }
    cv_api_reply(req, 200, json_pack("{s:o, s:I, s:I, s:o}", "requests", items, "limit", (json_int_t) page.limit,
                                      "offset", (json_int_t) page.offset, "next_offset",
                                      more ? json_integer(page.offset + page.limit) : json_null()));
}

/* ---- agents ---- */

static void s_citizen_search(cv_api_req_t *req, const cv_api_principal_t *who)
{
    const char *name = cv_api_query(req, "name"), *email = cv_api_query(req, "email"),
               *phone = cv_api_query(req, "phone"), *address = cv_api_query(req, "address"),
               *tc = cv_api_query(req, "tracking_code");
    char code[11];
    if (!name && !email && !phone && !address && !tc) {
        cv_api_error(req, 400, "bad_parameter", "give name, email, phone, address or tracking_code");
        return;
    }
    if ((name && strlen(name) < 2) || (address && strlen(address) < 2) || (email && !*email)
        || (phone && !*phone)) {
        cv_api_error(req, 400, "bad_parameter", "search values must not be (nearly) empty");
        return;
    }
    if (tc && !cv_api_tracking_code(tc, code)) {
        cv_api_error(req, 400, "bad_parameter", "tracking_code: 10 characters of the code alphabet");
        return;
    }
    page_t page;
    if (s_page(req, &page) != 0)
        return;
    const char *v[8] = { name, email, phone, address, tc ? code : NULL,
                         s_sees_all(who) ? NULL : who->service, page.fetch_text, page.offset_text };
    PGresult *r = cv_api_sql(req, CV_SQL_CITIZEN_SEARCH, 8, v);
    if (!r)
        return;
    json_t *items = json_array();
    int n = PQntuples(r) > page.limit ? (int) page.limit : PQntuples(r);
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *c = s_row_json(r, i, 0);
        if (c)
            json_array_append_new(items, c);
    }
    PQclear(r);
    for (int i = 0; i < n; i++) {
        json_int_t cid = json_integer_value(json_object_get(json_array_get(items, (size_t) i), "id"));
        if (cv_api_audit_read(req, who, "citizen_search", cid, 0, n) != 0) {
            json_decref(items);
            return;
        }
    }
    if (n == 0 && cv_api_audit_read(req, who, "citizen_search", 0, 0, 0) != 0) {
        json_decref(items);
        return;
    }
    cv_api_reply(req, 200, s_paged(items, &page));
}

/* A timeline page: one statement returns its rows (the citizen, the page's
   requests, their events) and api_timeline.c writes the answer in the
   caller's view, without a JSON tree. Pages hold the latest requests
   first: limit / offset as for every list. */
static void s_citizen_timeline(cv_api_req_t *req, const cv_api_principal_t *who, const char *id)
{
    int64_t cid;
    if (!cv_api_parse_int(id, 1, INT64_MAX, &cid)) {
        cv_api_error(req, 404, "not_found", "no such citizen");
        return;
    }
    page_t page;
    if (s_page(req, &page) != 0)
        return;
    char cs[24];
    snprintf(cs, sizeof cs, "%lld", (long long) cid);
    /* an agent token always has a service; an empty one sees no citizen */
    const char *v[4] = { cs, page.limit_text, page.offset_text, who->service[0] ? who->service : NULL };
    bool agent = who->role == CV_API_AGENT;
    PGresult *r = cv_api_sql(req, agent ? CV_SQL_TIMELINE_AGENT : CV_SQL_TIMELINE, agent ? 4 : 3, v);
    if (!r)
        return;
    char *body;
    int nrequests;
    int rc = cv_api_timeline_json(r, who, page.limit, page.offset, &body, &nrequests);
    PQclear(r);
    if (rc != 0) {
        if (rc > 0)
            cv_api_error(req, 404, "not_found", "no such citizen");
        else
            cv_api_error(req, 503, "unavailable", "the timeline could not be written");
        return;
    }
    if (cv_api_audit_read(req, who, "citizen_timeline", cid, 0, nrequests) != 0) {
        free(body);
        return;
    }
    cv_api_reply_json_text(req, 200, body);
}

static void s_request(cv_api_req_t *req, const cv_api_principal_t *who, const char *id)
{
    int64_t rid;
    if (!cv_api_parse_int(id, 1, INT64_MAX, &rid)) {
        cv_api_error(req, 404, "not_found", "no such request");
        return;
    }
    char rs[24];
    snprintf(rs, sizeof rs, "%lld", (long long) rid);
    const char *v[1] = { rs };
    PGresult *r = s_one_row(req, CV_SQL_REQUEST, 1, v, "no such request");
    if (!r)
        return;
    json_t *o = s_row_json(r, 0, 0);
    cv_api_view_t view = cv_api_view_for(who, PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1));
    int64_t cid = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    PGresult *evs = cv_api_sql(req, CV_SQL_REQUEST_EVENTS, 1, v);
    if (!evs || !o) {
        json_decref(o);
        PQclear(evs);
        if (!req->reply)
            DB_DOWN(req);
        return;
    }
    json_t *events = json_array();
    for (int i = 0; i < PQntuples(evs); i++) {
        json_t *e = s_row_json(evs, i, 0);
        if (!e)
            continue;
        cv_api_filter(e, "event", view);
        json_array_append_new(events, e);
    }
    PQclear(evs);
    json_object_set_new(o, "events", events);
    cv_api_filter(o, "request", view);
    /* the other-service view shows nothing of the citizen: not audited as a citizen read */
    if (cv_api_audit_read(req, who, "request", view == CV_API_VIEW_OTHER ? 0 : cid, rid, 1) != 0) {
        json_decref(o);
        return;
    }
    cv_api_reply(req, 200, o);
}

/* Open requests of a service, or overdue ones (service optional). */
static void s_request_list(cv_api_req_t *req, const cv_api_principal_t *who, const char *service,
                           bool overdue)
{
    if (service && (!*service || strlen(service) > 200)) {
        cv_api_error(req, 400, "bad_parameter", "service: 1 to 200 characters");
        return;
    }
    page_t page;
    if (s_page(req, &page) != 0)
        return;
    const char *v[3] = { service, page.fetch_text, page.offset_text };
    PGresult *r = cv_api_sql(req, overdue ? CV_SQL_OVERDUE : CV_SQL_SERVICE_OPEN, 3, v);
    if (!r)
        return;
    json_t *items = s_requests(r, who);
    PQclear(r);
    if (cv_api_audit_read(req, who, overdue ? "overdue_requests" : "service_requests", 0, 0,
                (int) json_array_size(items)) != 0) {
        json_decref(items);
        return;
    }
    cv_api_reply(req, 200, s_paged(items, &page));
}

static void s_merge_proposals(cv_api_req_t *req, const cv_api_principal_t *who)
{
    if (!s_sees_all(who)) {
        cv_api_error(req, 403, "forbidden", "merge proposals are for supervisors and admins");
        return;
    }
    page_t page;
    if (s_page(req, &page) != 0)
        return;
    PGresult *r = cv_api_sql(req, CV_SQL_HAS_PROPOSALS, 0, NULL);
    if (!r)
        return;
    bool has = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!has) {
        cv_api_error(req, 404, "not_available", "identity resolution (004_identity.sql) is not installed");
        return;
    }
    const char *v[2] = { page.fetch_text, page.offset_text };
    r = cv_api_db_exec_params(
        "SELECT json_build_object('id', p.id, 'citizen_a', p.citizen_a, 'citizen_b', p.citizen_b,"
        " 'rule', p.rule, 'confidence', p.confidence, 'status', p.status,"
        " 'created_at', p.created_at)::text FROM merge_proposals p WHERE p.status = 'open'"
        " ORDER BY p.id LIMIT $1::int OFFSET $2::bigint", 2, v);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        DB_DOWN(req);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *p = s_row_json(r, i, 0);
        if (p)
            json_array_append_new(items, p);
    }
    PQclear(r);
    if (cv_api_audit_read(req, who, "merge_proposals", 0, 0, (int) json_array_size(items)) != 0) {
        json_decref(items);
        return;
    }
    cv_api_reply(req, 200, s_paged(items, &page));
}

/* ---- merge and split (identity, docs/identity.md) ---- */

/* Runs one of the identity functions (cv_citizen_merge, _split, _detach).
   Their refusals answer 409 with the caller's words: SQLSTATE 22023 (an
   unknown citizen, merge or pair, or one already merged or split) and
   55000 (the state forbids it for now); another class-22 error 400; a lost
   database 503. Returns the one-row result or NULL. */
static PGresult *s_identity_call(cv_api_req_t *req, const char *sql, int n, const char *const *v,
                                 const char *if_22023, const char *if_55000)
{
    PGresult *r = cv_api_db_exec_params(sql, n, v);
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        return r;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && (strcmp(state, "22023") == 0 || strcmp(state, "55000") == 0))
        cv_api_error(req, 409, "conflict", strcmp(state, "22023") == 0 ? if_22023 : if_55000);
    else if (state && strncmp(state, "22", 2) == 0)
        cv_api_error(req, 400, "bad_request", "a value was refused");
    else
        DB_DOWN(req);
    PQclear(r);
    return NULL;
}

#define MERGE_22023 "unknown citizen or merge, or already merged or split"
#define MERGE_55000 "a later merge of one of these citizens must be split first"

/* The audit and the functions name the acting token this way. */
static void s_actor(const cv_api_principal_t *who, char out[48])
{
    snprintf(out, 48, "token:%lld", (long long) who->token_id);
}

static bool s_id_arg(const char *text, char out[24])
{
    int64_t id;
    if (!text || !cv_api_parse_int(text, 1, INT64_MAX, &id))
        return false;
    snprintf(out, 24, "%lld", (long long) id);
    return true;
}

static void s_merge(cv_api_req_t *req, const cv_api_principal_t *who, const char *keep_text)
{
    if (!s_sees_all(who)) {
        cv_api_error(req, 403, "forbidden", "merging citizens is for supervisors and admins");
        return;
    }
    char keep[24], absorb[24], actor[48];
    json_error_t e;
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e) : NULL;
    json_t *a = json_object_get(body, "absorb");
    char given[24] = "";
    if (json_is_integer(a))
        snprintf(given, sizeof given, "%lld", (long long) json_integer_value(a));
    json_decref(body);
    if (!s_id_arg(keep_text, keep) || !s_id_arg(given, absorb)) {
        cv_api_error(req, 400, "bad_request", "give the citizen to keep in the path and {\"absorb\": id} in the body");
        return;
    }
    s_actor(who, actor);
    const char *v[3] = { keep, absorb, actor };
    PGresult *r = s_identity_call(req, "SELECT cv_citizen_merge($1::bigint, $2::bigint, $3)", 3, v,
                                  MERGE_22023, MERGE_55000);
    if (!r)
        return;
    json_t *reply = json_pack("{s:s, s:s, s:s}", "merge_id", PQgetvalue(r, 0, 0), "keep", keep, "absorb", absorb);
    PQclear(r);
    if (cv_api_audit_read(req, who, "citizen_merge", strtoll(keep, NULL, 10), 0, 1) != 0) {
        json_decref(reply);
        return;
    }
    cv_api_reply(req, 200, reply);
}

static void s_split_merge(cv_api_req_t *req, const cv_api_principal_t *who, const char *merge_text)
{
    if (!s_sees_all(who)) {
        cv_api_error(req, 403, "forbidden", "splitting citizens is for supervisors and admins");
        return;
    }
    char merge[24], actor[48];
    if (!s_id_arg(merge_text, merge)) {
        cv_api_error(req, 400, "bad_request", "the merge id must be a positive whole number");
        return;
    }
    s_actor(who, actor);
    const char *v[2] = { merge, actor };
    PGresult *r = s_identity_call(req, "SELECT cv_citizen_split($1::bigint, $2)", 2, v,
                                  MERGE_22023, MERGE_55000);
    if (!r)
        return;
    PQclear(r);
    if (cv_api_audit_read(req, who, "citizen_split", 0, 0, 1) != 0)
        return;
    cv_api_reply(req, 200, json_pack("{s:s, s:b}", "merge_id", merge, "split", 1));
}

/* A string member of 1 to 200 bytes, or NULL. */
static const char *s_body_text(json_t *body, const char *key)
{
    const char *t = json_string_value(json_object_get(body, key));
    return t && *t && strlen(t) <= 200 ? t : NULL;
}

/* Runs cv_citizen_detach (its refusals: s_identity_call). Returns the new
   citizen's id (malloc'd) or NULL. */
static char *s_detach_call(cv_api_req_t *req, const char *const v[4])
{
    PGresult *r = s_identity_call(req, "SELECT cv_citizen_detach($1::bigint, $2, $3, $4)", 4, v,
                                  "unknown or merged citizen, a pair it does not have, or its only pair",
                                  "the citizen has another pair of that source: merge or split instead");
    if (!r)
        return NULL;
    char *id = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!id)
        DB_DOWN(req);
    return id;
}

/* Takes one (source, source_citizen_id) pair off a citizen (a wrong
   automatic link): it moves to a new citizen (docs/identity.md). */
static void s_detach(cv_api_req_t *req, const cv_api_principal_t *who, const char *citizen_text)
{
    if (!s_sees_all(who)) {
        cv_api_error(req, 403, "forbidden", "detaching a citizen's link is for supervisors and admins");
        return;
    }
    char citizen[24], actor[48];
    if (!s_id_arg(citizen_text, citizen)) {
        cv_api_error(req, 404, "not_found", "no such citizen");
        return;
    }
    json_error_t e;
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e) : NULL;
    const char *source = s_body_text(body, "source"), *key = s_body_text(body, "source_citizen_id");
    if (!source || !key) {
        json_decref(body);
        cv_api_error(req, 400, "bad_request", "give {\"source\": \"...\", \"source_citizen_id\": \"...\"} in the body");
        return;
    }
    s_actor(who, actor);
    const char *v[4] = { citizen, source, key, actor };
    char *created = s_detach_call(req, v);
    json_decref(body);
    if (!created)
        return;
    json_t *reply = json_pack("{s:I, s:I}", "citizen_id", (json_int_t) strtoll(created, NULL, 10),
                              "from", (json_int_t) strtoll(citizen, NULL, 10));
    free(created);
    if (cv_api_audit_read(req, who, "citizen_detach", strtoll(citizen, NULL, 10), 0, 1) != 0) {
        json_decref(reply);
        return;
    }
    cv_api_reply(req, 200, reply);
}

/* ---- router ---- */

static bool s_is(cv_api_req_t *req, int n, const char *a, const char *b)
{
    return req->nseg == n && strcmp(req->seg[0], a) == 0 && (!b || (n > 1 && strcmp(req->seg[1], b) == 0));
}

void cv_api_route(cv_api_req_t *req)
{
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (s_is(req, 1, "healthz", NULL) || s_is(req, 1, "metrics", NULL) || s_is(req, 3, "v1", "track")
        || s_is(req, 3, "v1", "me")) {
        if (!get) {
            cv_api_error(req, 405, "method_not_allowed", "only GET is allowed here");
            return;
        }
        if (req->nseg == 3 && strcmp(req->seg[1], "me") == 0)
            s_me(req, req->seg[2]);
        else if (req->nseg == 3)
            s_track(req, req->seg[2]);
        else if (strcmp(req->seg[0], "healthz") == 0)
            s_healthz(req);
        else
            s_metrics(req);
        return;
    }
    if (req->nseg >= 1 && strcmp(req->seg[0], "open311") == 0) {
        cv_api_open311(req);
        return;
    }
    if (req->nseg < 2 || strcmp(req->seg[0], "v1") != 0) {
        cv_api_error(req, 404, "not_found", "no such endpoint");
        return;
    }
    const char *what = req->seg[1];
    bool merge = req->nseg == 4 && strcmp(what, "citizens") == 0 && strcmp(req->seg[3], "merge") == 0;
    bool split = req->nseg == 4 && strcmp(what, "merges") == 0 && strcmp(req->seg[3], "split") == 0;
    bool detach = req->nseg == 4 && strcmp(what, "citizens") == 0 && strcmp(req->seg[3], "detach") == 0;
    if (merge || split || detach) {
        if (strcmp(req->method, "POST") != 0) {
            cv_api_error(req, 405, "method_not_allowed", "only POST is allowed here");
            return;
        }
        cv_api_principal_t who;
        if (cv_api_authenticate(req, &who) != 0)
            return;
        if (detach)
            s_detach(req, &who, req->seg[2]);
        else
            merge ? s_merge(req, &who, req->seg[2]) : s_split_merge(req, &who, req->seg[2]);
        return;
    }
    bool known = (req->nseg == 2 && (strcmp(what, "citizens") == 0 || strcmp(what, "merge-proposals") == 0))
              || (req->nseg == 4 && strcmp(what, "citizens") == 0 && strcmp(req->seg[3], "timeline") == 0)
              || (req->nseg == 3 && strcmp(what, "requests") == 0)
              || (req->nseg == 4 && strcmp(what, "services") == 0 && strcmp(req->seg[3], "requests") == 0);
    if (!known) {
        cv_api_error(req, 404, "not_found", "no such endpoint");
        return;
    }
    if (!get) {
        cv_api_error(req, 405, "method_not_allowed", "only GET is allowed here");
        return;
    }
    cv_api_principal_t who;
    if (cv_api_authenticate(req, &who) != 0)
        return;
    if (strcmp(what, "citizens") == 0)
        req->nseg == 2 ? s_citizen_search(req, &who) : s_citizen_timeline(req, &who, req->seg[2]);
    else if (strcmp(what, "merge-proposals") == 0)
        s_merge_proposals(req, &who);
    else if (strcmp(what, "services") == 0)
        s_request_list(req, &who, req->seg[2], false);
    else if (strcmp(req->seg[2], "overdue") == 0)
        s_request_list(req, &who, cv_api_query(req, "service"), true);
    else
        s_request(req, &who, req->seg[2]);
}
