/*  api_access — who sees which field (docs/access.md is the same table in
    prose; tests/unit/api/test_api_access.c checks that both agree).

    A principal is what a bearer token resolves to: a role and, for an
    agent, a service. The table in api_access.c is the only statement of
    the policy, and it reaches answers two ways:

    - most handlers build objects in full from SQL, then every object goes
      through cv_api_filter(), which deletes the fields the principal may
      not see (filtering after the query: a new query cannot forget it);
    - the timeline, the API's biggest answer, is written from plain rows
      (api_timeline.c): each request and event in the view its service
      gives (cv_api_view_for), with the fields the table shows for that
      view (cv_api_field_allowed), never parsed nor filtered afterwards.

    Views: an agent reading a request of their own service gets the OWN
    view; of another service, the OTHER view (what kind of request, its
    status and dates, never its content nor who made it); a supervisor and
    an admin read everything (audited like everyone). */
#ifndef CV_API_ACCESS_H
#define CV_API_ACCESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { CV_API_AGENT = 0, CV_API_SUPERVISOR, CV_API_ADMIN, CV_API_CITIZEN } cv_api_role_t;

typedef struct {
    int64_t token_id;             /* 0 for a citizen */
    cv_api_role_t role;
    char service[128];            /* an agent's service, "" otherwise */
} cv_api_principal_t;

typedef enum { CV_API_VIEW_OWN = 0, CV_API_VIEW_OTHER, CV_API_VIEW_SUPERVISOR, CV_API_VIEW_ADMIN,
               CV_API_VIEW_COUNT } cv_api_view_t;

const char *cv_api_role_name(cv_api_role_t role);
/* "agent", "supervisor", "admin" → role; false otherwise. */
bool cv_api_role_parse(const char *name, cv_api_role_t *out);
const char *cv_api_view_name(cv_api_view_t view);

/* The view a principal gets of something of `service` (may be NULL). */
cv_api_view_t cv_api_view_for(const cv_api_principal_t *p, const char *service);

/* Whether `view` shows `object`.`field` (objects: "request", "event",
   "citizen"). Unknown fields are never shown. */
bool cv_api_field_allowed(const char *object, const char *field, cv_api_view_t view);

/* Deletes from obj (a JSON object) every field the view may not show. */
void cv_api_filter(json_t *obj, const char *object, cv_api_view_t view);

/* Iterates the table: the i-th (object, field), false past the end. */
bool cv_api_access_entry(int i, const char **object, const char **field);

#endif
