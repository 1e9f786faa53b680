/*  api_queue — GET /v1/services/{service}/queue?due=overdue|soon&days=N: a
    service's open requests by due date, the oldest first (docs/api.md,
    docs/deadlines.md). overdue: due before now; soon: due within `days`
    days (default 3, at most 365) and not yet overdue; without `due`, both,
    overdue ones first. A request waiting for the citizen is not listed: its
    clock is stopped. An agent sees their own service's queue only (403 for
    another: a queue is work to do, not a lookup); supervisors and admins any.
    Audited as service_queue, with the citizens the page shows (the read log). */
#include "api_handler.h"

#include "api_util.h"

#include <stdio.h>
#include <string.h>

void cv_api_service_queue(cv_api_req_t *req, const cv_api_principal_t *who)
{
    const char *service = cv_api_param(req, "service");
    const char *due = cv_api_query(req, "due");
    const char *days_text = cv_api_query(req, "days");
    if (!service || !*service || strlen(service) > 200) {
        cv_api_error(req, 400, "bad_parameter", "service: 1 to 200 characters");
        return;
    }
    if (due && strcmp(due, "overdue") != 0 && strcmp(due, "soon") != 0) {
        cv_api_error(req, 400, "bad_parameter", "due: overdue or soon");
        return;
    }
    int64_t days = 3;
    if (days_text && !cv_api_parse_int(days_text, 1, 365, &days)) {
        cv_api_error(req, 400, "bad_parameter", "days: 1 to 365");
        return;
    }
    if (who->role == CV_API_AGENT && strcmp(service, who->service) != 0) {
        cv_api_error(req, 403, "forbidden", "an agent sees the queue of their own service only");
        return;
    }
    cv_api_page_t page;
    if (cv_api_page(req, &page) != 0)
        return;
    char days_buf[24];
    snprintf(days_buf, sizeof days_buf, "%lld", (long long) days);
    const char *v[5] = { service, due ? due : "both", days_buf, page.fetch_text, page.offset_text };
    PGresult *r = cv_api_sql(req, CV_SQL_QUEUE, 5, v);
    if (!r)
        return;
    json_t *items = json_array();
    int64_t cids[PQntuples(r) + 1];                 /* at most http.page_max + 1 rows */
    size_t ncids = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = cv_api_row_json(r, i, 0);
        if (!o)
            continue;
        cv_api_filter(o, "request", cv_api_view_for(who, PQgetvalue(r, i, 1)));
        json_t *cid = json_object_get(o, "citizen_id");
        if (json_is_integer(cid) && i < page.limit)
            cids[ncids++] = json_integer_value(cid);
        json_array_append_new(items, o);
    }
    PQclear(r);
    int n = (int) json_array_size(items);
    if (cv_api_audit_list(req, who, cids, ncids, n > page.limit ? (int) page.limit : n) != 0) {
        json_decref(items);
        return;
    }
    cv_api_reply(req, 200, cv_api_paged(items, &page));
}
