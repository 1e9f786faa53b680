/*  api_requests — a request with its events and the notifications sent
    about it, a service's open requests,
    overdue requests, a count of requests (tokens). Every request and event goes through the
    caller's view (cv_api_filter, docs/access.md): another service's
    requests show what kind they are, where they stand, their dates. A
    list's audit row names the citizens of the requests it showed in a
    view that shows them (the read log). */
#include "api_handler.h"

#include "api_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cv_api_request(cv_api_req_t *req, const cv_api_principal_t *who)
{
    int64_t rid;
    if (!cv_api_parse_int(cv_api_param(req, "id"), 1, INT64_MAX, &rid)) {
        cv_api_error(req, 404, "not_found", "no such request");
        return;
    }
    char rs[24];
    snprintf(rs, sizeof rs, "%lld", (long long) rid);
    const char *v[1] = { rs };
    PGresult *r = cv_api_sql_row(req, CV_SQL_REQUEST, 1, v, "no such request");
    if (!r)
        return;
    json_t *o = cv_api_row_json(r, 0, 0);
    cv_api_view_t view = cv_api_view_for(who, PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1));
    int64_t cid = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    PGresult *evs = cv_api_sql(req, CV_SQL_REQUEST_EVENTS, 1, v);
    if (!evs || !o) {
        json_decref(o);
        PQclear(evs);
        if (!req->reply)
            CV_API_DB_DOWN(req);
        return;
    }
    json_t *events = json_array();
    for (int i = 0; i < PQntuples(evs); i++) {
        json_t *e = cv_api_row_json(evs, i, 0);
        if (!e)
            continue;
        cv_api_filter(e, "event", view);
        json_array_append_new(events, e);
    }
    PQclear(evs);
    json_object_set_new(o, "events", events);
    if (view != CV_API_VIEW_OTHER) {      /* what the citizen was told: the request's own view */
        PGresult *ns = cv_api_sql(req, CV_SQL_REQUEST_NOTIFICATIONS, 1, v);
        if (!ns) {
            json_decref(o);
            if (!req->reply)
                CV_API_DB_DOWN(req);
            return;
        }
        json_t *told = json_array();
        for (int i = 0; i < PQntuples(ns); i++) {
            json_t *n = json_loads(PQgetvalue(ns, i, 0), 0, NULL);
            if (n)
                json_array_append_new(told, n);
        }
        PQclear(ns);
        json_object_set_new(o, "notifications", told);
    }
    cv_api_filter(o, "request", view);
    /* the other-service view shows nothing of the citizen: not audited as a citizen read */
    if (cv_api_audit(req, who, view == CV_API_VIEW_OTHER ? 0 : cid, rid, 1) != 0) {
        json_decref(o);
        return;
    }
    cv_api_reply(req, 200, o);
}

/* A page of requests (rows: the request's JSON, its service), each in the
   caller's view, the read log of the citizens it shows, the answer; takes r. */
void cv_api_reply_request_page(cv_api_req_t *req, const cv_api_principal_t *who, PGresult *r,
                               const cv_api_page_t *page)
{
    json_t *items = json_array();
    int64_t cids[PQntuples(r) + 1];                 /* at most http.page_max + 1 rows */
    size_t ncids = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = cv_api_row_json(r, i, 0);
        if (!o)
            continue;
        cv_api_filter(o, "request", cv_api_view_for(who, PQgetvalue(r, i, 1)));
        /* the read log: the citizens of the page's requests, where the view shows them */
        json_t *cid = json_object_get(o, "citizen_id");
        if (json_is_integer(cid) && i < page->limit)
            cids[ncids++] = json_integer_value(cid);
        json_array_append_new(items, o);
    }
    PQclear(r);
    int shown = (int) json_array_size(items) > page->limit ? (int) page->limit : (int) json_array_size(items);
    if (cv_api_audit_list(req, who, cids, ncids, shown) != 0) {
        json_decref(items);
        return;
    }
    cv_api_reply(req, 200, cv_api_paged(items, page));
}

/* Open requests of a service, or overdue ones (service optional). */
static void s_request_list(cv_api_req_t *req, const cv_api_principal_t *who, const char *service,
                           cv_sql_t stmt)
{
    if (service && (!*service || strlen(service) > 200)) {
        cv_api_error(req, 400, "bad_parameter", "service: 1 to 200 characters");
        return;
    }
    cv_api_page_t page;
    if (cv_api_page(req, &page) != 0)
        return;
    const char *v[3] = { service, page.fetch_text, page.offset_text };
    PGresult *r = cv_api_sql(req, stmt, 3, v);
    if (!r)
        return;
    cv_api_reply_request_page(req, who, r, &page);
}

void cv_api_service_requests(cv_api_req_t *req, const cv_api_principal_t *who)
{
    s_request_list(req, who, cv_api_param(req, "service"), CV_SQL_SERVICE_OPEN);
}

void cv_api_overdue_requests(cv_api_req_t *req, const cv_api_principal_t *who)
{
    s_request_list(req, who, cv_api_query(req, "service"), CV_SQL_OVERDUE);
}

/* A value among a NULL-terminated list, or absent. */
static bool s_one_of(const char *v, const char *const *allowed)
{
    if (!v)
        return true;
    for (; *allowed; allowed++)
        if (strcmp(v, *allowed) == 0)
            return true;
    return false;
}

/* GET /v1/requests/count: how many requests match (service, status,
   channel, category, created from / before); a number, no one's data, so
   not audited. An agent counts their own service's requests only: another
   service's channel is hidden from them (docs/access.md), and a count by
   channel would show it; service= another service is a 403. */
void cv_api_request_count(cv_api_req_t *req, const cv_api_principal_t *who)
{
    static const char *const statuses[] = { "received", "acknowledged", "in_progress", "waiting_citizen",
                                            "resolved", "rejected", "closed", "cancelled", NULL };
    static const char *const channels[] = { "courrier", "telephone", "guichet", "email", "web", "api",
                                            "interne", "autre", "inconnu", NULL };
    const char *v[6] = { cv_api_query(req, "service"), cv_api_query(req, "status"),
                         cv_api_query(req, "channel"), cv_api_query(req, "category"),
                         cv_api_query(req, "from"), cv_api_query(req, "to") };
    for (int i = 0; i < 6; i++)
        if (v[i] && (!*v[i] || strlen(v[i]) > 200)) {
            cv_api_error(req, 400, "bad_parameter", "service, status, channel, category, from, to: 1 to 200 characters");
            return;
        }
    if (!s_one_of(v[1], statuses)) {
        cv_api_error(req, 400, "bad_parameter", "status: received, acknowledged, in_progress, waiting_citizen, resolved, rejected, closed or cancelled");
        return;
    }
    if (!s_one_of(v[2], channels)) {
        cv_api_error(req, 400, "bad_parameter", "channel: courrier, telephone, guichet, email, web, api, interne, autre or inconnu");
        return;
    }
    if (who->role == CV_API_AGENT) {
        if (v[0] && strcmp(v[0], who->service) != 0) {
            cv_api_error(req, 403, "forbidden", "an agent counts the requests of their own service only");
            return;
        }
        v[0] = who->service;
    }
    PGresult *r = cv_api_sql(req, CV_SQL_REQUEST_COUNT, 6, v);
    if (!r)
        return;
    json_int_t n = PQntuples(r) == 1 ? (json_int_t) strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    cv_api_reply(req, 200, json_pack("{s:I}", "count", n));
}
