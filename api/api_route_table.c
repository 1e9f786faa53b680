/*  api_route_table — every endpoint of civibus-api, in one table (the only
    list of them: docs/openapi.yaml documents the same paths, and
    tests/it/api_openapi.sh fails when the two differ).

    Columns: method, path pattern, handler, roles, audit action, rate limit.

    - method: "GET" (which serves HEAD too) or "POST".
    - pattern: the path, '/'-separated segments, matched segment by segment
      against the request's decoded segments (api_server.c splits the path
      and drops empty segments: "//v1/requests/1/" is /v1/requests/1; the
      segment counts must be equal). In a segment, text matches itself
      and {name} captures one or more characters into the path parameter
      `name` (cv_api_param). A capture ends where the rest of the pattern's
      segment matches, the furthest such place first: {id}.{format} splits
      "a.b.json" into "a.b" and "json". {name:a|b} captures only one of the
      alternatives. Names are [a-z_]+; captures never hold a '/'; two
      captures in a row, a bad name, empty alternatives and unbalanced
      braces are refused by cv_api_routes_check (civibus-api checks the
      table at start-up, tests/unit/test_api_route.c at every build).
    - roles: CV_API_PUBLIC (no token), or a set of token roles: CV_API_STAFF
      (agent, supervisor, admin), CV_API_SUPERVISORS (supervisor, admin), or
      CV_API_PUBLIC | CV_API_STAFF: the token is optional (the Open311 list:
      without one, the public categories only, api_open311.c).
      The router answers 401 without a valid token, 403 for another role;
      the finer checks (an agent's service, the fields of each view) stay in
      the handlers.
    - audit: the action of the api_audit rows the handler writes
      (cv_api_audit); NULL when the route reads no one's data (the Open311
      POST writes an event, its own record).
    - limit: the per-address rate limit the router applies first (429; on
      a route whose token is optional, to anonymous callers only).

    The first entry matching the method and the path serves it, so a route
    with literal text comes before a capture it would overlap
    (/v1/requests/overdue and /v1/requests/count before /v1/requests/{id}). Open311's routes sit
    in the same table; the router writes the errors of every path under
    /open311/ in Open311's format (api_router.c). */
#include "api_dashboard.h"
#include "api_handler.h"
#include "api_health.h"
#include "api_session.h"

static const cv_api_route_t s_routes[] = {
    /* public */
    { "GET",  "/healthz",                                    cv_api_health,           CV_API_PUBLIC,      NULL,               CV_API_LIMIT_NONE },
    { "GET",  "/metrics",                                    cv_api_metrics_all,      CV_API_PUBLIC,      NULL,               CV_API_LIMIT_NONE },
    { "GET",  "/v1/track/{code}",                            cv_api_track,            CV_API_PUBLIC,      "track",            CV_API_LIMIT_LOOKUP },
    { "GET",  "/v1/me/{link}",                               cv_api_me,               CV_API_PUBLIC,      "citizen_link",     CV_API_LIMIT_LOOKUP },
    /* the console's sign-in (api_session.c, docs/web.md) */
    { "POST", "/v1/sessions",                                cv_api_session_open,     CV_API_PUBLIC,      "session_open",     CV_API_LIMIT_LOOKUP },
    { "GET",  "/v1/session",                                 cv_api_session_show,     CV_API_STAFF,       NULL,               CV_API_LIMIT_NONE },
    { "POST", "/v1/session/logout",                          cv_api_session_logout,   CV_API_STAFF,       NULL,               CV_API_LIMIT_NONE },
    /* agents */
    { "GET",  "/v1/citizens",                                cv_api_citizen_search,   CV_API_STAFF,       "citizen_search",   CV_API_LIMIT_NONE },
    { "GET",  "/v1/citizens/{id}/timeline",                  cv_api_citizen_timeline, CV_API_STAFF,       "citizen_timeline", CV_API_LIMIT_NONE },
    { "GET",  "/v1/requests/overdue",                        cv_api_overdue_requests, CV_API_STAFF,       "overdue_requests", CV_API_LIMIT_NONE },
    { "GET",  "/v1/requests/count",                          cv_api_request_count,    CV_API_STAFF,       NULL,               CV_API_LIMIT_NONE },
    { "POST", "/v1/requests",                                cv_api_request_register, CV_API_STAFF,       "request_register", CV_API_LIMIT_NONE },
    { "GET",  "/v1/requests/{id}",                           cv_api_request,          CV_API_STAFF,       "request",          CV_API_LIMIT_NONE },
    /* a request's files (docs/attachments.md, api_attachments.c) */
    { "GET",  "/v1/requests/{id}/attachments",               cv_api_request_attachments, CV_API_STAFF,    "request_attachments", CV_API_LIMIT_NONE },
    { "GET",  "/v1/requests/{id}/attachments/{sha}",         cv_api_request_attachment,  CV_API_STAFF,    "request_attachment",  CV_API_LIMIT_NONE },
    { "POST", "/v1/requests/{code}/route",                   cv_api_request_route,    CV_API_STAFF,       "request_route",    CV_API_LIMIT_NONE },
    { "GET",  "/v1/services/{service}/requests",             cv_api_service_requests, CV_API_STAFF,       "service_requests", CV_API_LIMIT_NONE },
    { "GET",  "/v1/services/{service}/queue",                cv_api_service_queue,    CV_API_STAFF,       "service_queue",    CV_API_LIMIT_NONE },
    /* identity (docs/identity.md) */
    /* the city's dashboard (api_dashboard.c, docs/web.md) */
    { "GET",  "/v1/dashboard",                               cv_api_dashboard,        CV_API_SUPERVISORS, NULL,               CV_API_LIMIT_NONE },
    { "GET",  "/v1/merge-proposals",                         cv_api_merge_proposals,  CV_API_SUPERVISORS, "merge_proposals",  CV_API_LIMIT_NONE },
    { "POST", "/v1/merge-proposals/{id}/reject",             cv_api_proposal_reject,  CV_API_SUPERVISORS, "proposal_reject",  CV_API_LIMIT_NONE },
    { "POST", "/v1/citizens/{id}/merge",                     cv_api_merge,            CV_API_SUPERVISORS, "citizen_merge",    CV_API_LIMIT_NONE },
    { "POST", "/v1/merges/{id}/split",                       cv_api_split,            CV_API_SUPERVISORS, "citizen_split",    CV_API_LIMIT_NONE },
    { "POST", "/v1/citizens/{id}/detach",                    cv_api_detach,           CV_API_SUPERVISORS, "citizen_detach",   CV_API_LIMIT_NONE },
    { "POST", "/v1/citizens/{id}/check",                     cv_api_citizen_check,    CV_API_STAFF,       "citizen_check",    CV_API_LIMIT_NONE },
    /* the citizen's rights (docs/rgpd.md, api_rgpd.c) */
    { "GET",  "/v1/citizens/{id}/export",                    cv_api_citizen_export,   CV_API_SUPERVISORS, "citizen_export",   CV_API_LIMIT_NONE },
    { "POST", "/v1/citizens/{id}/rectify",                   cv_api_citizen_rectify,  CV_API_SUPERVISORS, "citizen_rectify",  CV_API_LIMIT_NONE },
    /* Open311 GeoReport v2 (api_open311.c) */
    { "GET",  "/open311/v2/services.{format:json|xml}",      cv_api_o311_services,    CV_API_PUBLIC,      NULL,               CV_API_LIMIT_NONE },
    { "GET",  "/open311/v2/requests.{format:json|xml}",      cv_api_o311_requests,    CV_API_PUBLIC | CV_API_STAFF, "open311_requests", CV_API_LIMIT_LOOKUP },
    { "POST", "/open311/v2/requests.{format:json|xml}",      cv_api_o311_post,        CV_API_PUBLIC,      NULL,               CV_API_LIMIT_SUBMIT },
    { "GET",  "/open311/v2/requests/{id}.{format:json|xml}", cv_api_o311_request,     CV_API_PUBLIC | CV_API_STAFF, "open311_request",  CV_API_LIMIT_LOOKUP },
};

const cv_api_route_t *cv_api_routes(size_t *n)
{
    *n = sizeof s_routes / sizeof s_routes[0];
    return s_routes;
}
