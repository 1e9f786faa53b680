/*  api_route — the API's route table and the router that serves it.

    Every endpoint is one entry of one static array (api_route_table.c, the
    only list of the endpoints): method, path pattern, handler, the roles
    allowed, the audit action and the rate limit. The router (api_router.c)
    matches method + pattern, puts the path parameters in the request,
    answers 404 for an unknown path and 405 (with an Allow header) for a
    known path with another method, then, from the entry: applies the rate
    limit (429), authenticates the bearer token (401) and checks its role
    (403) before the handler runs. Handlers keep the finer checks (an
    agent's service, per-field views) and name no audit action themselves:
    cv_api_audit() writes the entry's.

    `civibus-api --routes` prints the table; tests/it/api_openapi.sh checks
    it against docs/openapi.yaml, tests/unit/test_api_route.c the matching. */
#ifndef CV_API_ROUTE_H
#define CV_API_ROUTE_H

#include "api_access.h"
#include "api_server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Roles as a set. CV_API_PUBLIC (the citizen role) means "no token": the
   router reads none and the handler acts as an anonymous citizen. With
   token roles too (CV_API_PUBLIC | CV_API_STAFF) the token is optional: a
   request with an Authorization header is authenticated (401 when it
   fails), one without is served as an anonymous citizen. */
#define CV_API_ROLE_BIT(r) (1u << (r))
#define CV_API_PUBLIC CV_API_ROLE_BIT(CV_API_CITIZEN)
#define CV_API_SUPERVISORS (CV_API_ROLE_BIT(CV_API_SUPERVISOR) | CV_API_ROLE_BIT(CV_API_ADMIN))
#define CV_API_STAFF (CV_API_ROLE_BIT(CV_API_AGENT) | CV_API_SUPERVISORS)

/* Rate limits (per client address, api_ratelimit.c; both count against
   tracking.per_minute and civibus_api_track_limited_total). On a route
   whose token is optional they apply to anonymous callers only. */
typedef enum {
    CV_API_LIMIT_NONE = 0,
    CV_API_LIMIT_LOOKUP,         /* public lookups: tracking codes, links */
    CV_API_LIMIT_SUBMIT          /* public submissions (Open311 POST) */
} cv_api_limit_t;

/* A handler: the request (path parameters in it, cv_api_param) and who
   asks (the token's principal, or an anonymous citizen on public routes). */
typedef void cv_api_handler_t(cv_api_req_t *req, const cv_api_principal_t *who);

typedef struct cv_api_route {
    const char *method;          /* "GET" (serves HEAD too) or "POST" */
    const char *pattern;         /* api_route_table.c describes the syntax */
    cv_api_handler_t *handler;
    unsigned roles;              /* CV_API_PUBLIC, or a set of token roles */
    const char *audit;           /* the action written by cv_api_audit, or NULL */
    cv_api_limit_t limit;
} cv_api_route_t;

/* The table (api_route_table.c). */
const cv_api_route_t *cv_api_routes(size_t *n);

/* The route serving `method` on the path `seg` (nseg segments), its path
   parameters in *params; NULL when none, with `allow` holding the methods
   the path has ("GET, HEAD, POST"; "" for an unknown path). */
const cv_api_route_t *cv_api_route_find(const char *method, char *const *seg, int nseg,
                                        cv_api_params_t *params, char *allow, size_t allow_len);

/* Why a pattern is not well-formed (api_route_table.c's syntax), or NULL. */
const char *cv_api_route_pattern_error(const char *pattern);

/* Checks the table: well-formed patterns, known methods, roles and no two
   entries for one method + pattern. 0, or -1 with the reason in err. */
int cv_api_routes_check(char *err, size_t errlen);

/* Prints the table, one route a line: method, pattern, roles, audit action
   and rate limit, tab-separated ("-" for none). */
void cv_api_routes_print(FILE *out);

/* The router: serves the request (api_server.c calls it). */
void cv_api_route(cv_api_req_t *req);

#endif
