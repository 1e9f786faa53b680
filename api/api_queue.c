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
    cv_api_reply_request_page(req, who, r, &page);
}
