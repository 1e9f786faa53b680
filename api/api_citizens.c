/*  api_citizens — citizen search and a citizen's timeline (tokens: an
    agent finds only citizens their service dealt with, docs/access.md).

    The timeline skips the parse and the filter of the other handlers: its
    statement returns plain rows, which api_timeline.c writes in the
    caller's view. */
#include "api_handler.h"

#include "api_timeline.h"
#include "api_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Letters and digits in a search value: ASCII ones, and every non-ASCII
   character (accented letters fold to letters). The name and address
   searches match folded text (cv_fold keeps letters, digits and spaces),
   so "%%", "__" or "--" would fold to nothing and match everyone: a
   value needs two of these. */
static size_t s_alnum(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if ((*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || *p >= 0xC0)
            n++;
    return n;
}

static size_t s_digits(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s >= '0' && *s <= '9';
    return n;
}

void cv_api_citizen_search(cv_api_req_t *req, const cv_api_principal_t *who)
{
    const char *name = cv_api_query(req, "name"), *email = cv_api_query(req, "email"),
               *phone = cv_api_query(req, "phone"), *address = cv_api_query(req, "address"),
               *tc = cv_api_query(req, "tracking_code");
    char code[CV_API_CODE_MAX];
    if (!name && !email && !phone && !address && !tc) {
        cv_api_error(req, 400, "bad_parameter", "give name, email, phone, address or tracking_code");
        return;
    }
    if ((name && s_alnum(name) < 2) || (address && s_alnum(address) < 2)) {
        cv_api_error(req, 400, "bad_parameter", "name and address need 2 letters or digits at least");
        return;
    }
    if ((email && (!strchr(email, '@') || s_alnum(email) < 2)) || (phone && s_digits(phone) < 4)) {
        cv_api_error(req, 400, "bad_parameter", "email: an address with '@'; phone: 4 digits at least");
        return;
    }
    if (tc && !cv_api_tracking_code(tc, code)) {
        cv_api_error(req, 400, "bad_parameter", "tracking_code: 11 characters of the code alphabet (10 for codes issued before the check character)");
        return;
    }
    /* who owns a tracking code: rate limited per token (tracking.owner_per_minute) */
    if (tc && !cv_api_ratelimit_hit(req->ctx->owner_limit, &who->token_id, sizeof who->token_id,
                                    cv_api_ratelimit_now_ms())) {
        atomic_fetch_add(&req->ctx->owner_limited, 1);
        cv_api_error(req, 429, "rate_limited", "too many searches by tracking code; try again later");
        return;
    }
    cv_api_page_t page;
    if (cv_api_page(req, &page) != 0)
        return;
    bool sees_all = who->role == CV_API_SUPERVISOR || who->role == CV_API_ADMIN;
    const char *v[8] = { name, email, phone, address, tc ? code : NULL,
                         sees_all ? NULL : who->service, page.fetch_text, page.offset_text };
    PGresult *r = cv_api_sql(req, CV_SQL_CITIZEN_SEARCH, 8, v);
    if (!r)
        return;
    json_t *items = json_array();
    int n = PQntuples(r) > page.limit ? (int) page.limit : PQntuples(r);
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *c = cv_api_row_json(r, i, 0);
        if (c)
            json_array_append_new(items, c);
    }
    PQclear(r);
    for (int i = 0; i < n; i++) {
        json_int_t cid = json_integer_value(json_object_get(json_array_get(items, (size_t) i), "id"));
        if (cv_api_audit(req, who, cid, 0, n) != 0) {
            json_decref(items);
            return;
        }
    }
    if (n == 0 && cv_api_audit(req, who, 0, 0, 0) != 0) {
        json_decref(items);
        return;
    }
    cv_api_reply(req, 200, cv_api_paged(items, &page));
}

/* A timeline page: one statement returns its rows (the citizen, the page's
   requests, their events) and api_timeline.c writes the answer in the
   caller's view, without a JSON tree. Pages hold the latest requests
   first: limit / offset as for every list. */
void cv_api_citizen_timeline(cv_api_req_t *req, const cv_api_principal_t *who)
{
    int64_t cid;
    if (!cv_api_parse_int(cv_api_param(req, "id"), 1, INT64_MAX, &cid)) {
        cv_api_error(req, 404, "not_found", "no such citizen");
        return;
    }
    cv_api_page_t page;
    if (cv_api_page(req, &page) != 0)
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
    if (cv_api_audit(req, who, cid, 0, nrequests) != 0) {
        free(body);
        return;
    }
    cv_api_reply_json_text(req, 200, body);
}
