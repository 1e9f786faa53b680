/*  api_public — the endpoints without a token: metrics (served through
    api_health.c, which adds the database watcher's lines and restricts who
    may read them; /healthz is api_health.c's), a request
    by its tracking code, a citizen's requests by a signed link
    (api_link.c). The route table rate limits the last two per client
    address; their reads are audited as the citizen's. */
#include "api_handler.h"

#include "api_link.h"
#include "api_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cv_api_metrics(cv_api_req_t *req, const cv_api_principal_t *who)
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
    fprintf(f, "# HELP civibus_api_owner_limited_total Citizen searches by tracking code refused by the per-token limit.\n"
               "# TYPE civibus_api_owner_limited_total counter\n"
               "civibus_api_owner_limited_total %lu\n",
            (unsigned long) atomic_load(&c->owner_limited));
    static const char *const limits[4] = { "url", "parameters", "headers", "body" };
    fprintf(f, "# HELP civibus_api_refused_total Requests refused by a size limit (414, 400, 431, 413).\n"
               "# TYPE civibus_api_refused_total counter\n");
    for (int k = 0; k < 4; k++)
        fprintf(f, "civibus_api_refused_total{limit=\"%s\"} %lu\n", limits[k],
                (unsigned long) atomic_load(&c->refused[k]));
    fprintf(f, "# HELP civibus_api_connections_cut_total Connections shut at the header deadline.\n"
               "# TYPE civibus_api_connections_cut_total counter\n"
               "civibus_api_connections_cut_total %llu\n"
               "# HELP civibus_api_connections_refused_total Connections refused by the per-address limit.\n"
               "# TYPE civibus_api_connections_refused_total counter\n"
               "civibus_api_connections_refused_total %llu\n",
            (unsigned long long) (c->conns ? cv_api_conn_cut(c->conns) : 0),
            (unsigned long long) (c->conns ? cv_api_conn_refused(c->conns) : 0));
    fprintf(f, "# HELP civibus_api_audit_rows_total Audit rows written to api_audit.\n"
               "# TYPE civibus_api_audit_rows_total counter\n"
               "civibus_api_audit_rows_total %llu\n",
            (unsigned long long) cv_api_audit_written(c->audit));
    fclose(f);
    req->status = 200;
    req->text = text;
}

void cv_api_track(cv_api_req_t *req, const cv_api_principal_t *who)
{
    char code[CV_API_CODE_MAX];
    cv_api_code_t shape = cv_api_tracking_code_read(cv_api_param(req, "code"), code);
    if (shape == CV_API_CODE_MISTYPED) {
        /* one wrong or two swapped characters, known without a lookup: the
           person retypes it, and this costs nothing of the address's budget */
        cv_api_ratelimit_refund(req->ctx->track_limit, req->client, req->client_len, cv_api_ratelimit_now_ms());
        cv_api_error(req, 400, "mistyped", "this tracking code is mistyped: a character is wrong or two are "
                     "swapped; check it and try again");
        return;
    }
    if (shape != CV_API_CODE_OK) {
        cv_api_error(req, 404, "not_found", "no request has this tracking code");
        return;
    }
    const char *v[1] = { code };
    PGresult *r = cv_api_sql_row(req, CV_SQL_TRACK, 1, v, "no request has this tracking code");
    if (!r)
        return;
    json_t *o = cv_api_row_json(r, 0, 0);
    int64_t rid = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    int64_t cid = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    if (cv_api_audit(req, who, cid, rid, 1) != 0) {
        json_decref(o);
        return;
    }
    cv_api_reply(req, 200, o);
}

/* A signed citizen link: that citizen's requests, nothing else, in pages as a
   timeline: the latest requests first (limit / offset), listed in creation order. */
void cv_api_me(cv_api_req_t *req, const cv_api_principal_t *who)
{
    int64_t cid;
    char link_id[33];
    const char *link = cv_api_param(req, "link");
    int rc = req->ctx->links && link ? cv_api_link_check(req->ctx->link_key, link, time(NULL), &cid, link_id) : -1;
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
    cv_api_page_t page;
    if (cv_api_page(req, &page) != 0)
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
        json_t *o = cv_api_row_json(r, i, 0);
        if (o)
            json_array_append_new(items, o);
    }
    PQclear(r);
    if (cv_api_audit(req, who, cid, 0, (int) json_array_size(items)) != 0) {
        json_decref(items);
        return;
    }
    cv_api_reply(req, 200, json_pack("{s:o, s:I, s:I, s:o}", "requests", items, "limit", (json_int_t) page.limit,
                                      "offset", (json_int_t) page.offset, "next_offset",
                                      more ? json_integer(page.offset + page.limit) : json_null()));
}
