/*  api_access — who sees which field (docs/access.md is the same table in
    prose; tests/unit/test_api_access.c checks that both agree).

    A principal is what a bearer token resolves to: a role and, for an
    agent, a service. The table in api_access.c is the only statement of
    the policy, and it reaches answers two ways:

    - most handlers build objects in full from SQL, then every object goes
      through cv_api_filter(), which deletes the fields the principal may
      not see (filtering after the query: a new query cannot forget it);
    - the timeline, the API's biggest answer, is built whole by PostgreSQL
      from SQL GENERATED from the table (cv_api_sql_object*(): the
      json_build_object() of an object lists only the fields a view may
      see; for an agent a CASE on the row's service picks the own or the
      other view), so it is sent as PostgreSQL returns it, unparsed.

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

/* One SQL column of an object: a field name and the fixed SQL expression
   of its value (api_sql.c's tables; never anything a client sent). */
typedef struct {
    const char *field;
    const char *expr;
} cv_api_column_t;

/* Writes into buf (cap bytes) the SQL expression
       json_build_object('field', expr, ...)
   of `object` as `view` shows it: the columns, in their order, whose field
   the table shows for the view (a column whose field has no rule is never
   shown). The field names written are the table's own. Returns the length,
   or -1 when buf is too small. */
int cv_api_sql_object(char *buf, size_t cap, const char *object, cv_api_view_t view,
                      const cv_api_column_t *cols, size_t ncols);

/* The same for what a principal of `role` sees of a row: supervisor and
   admin their view; an agent, when `service` (a column expression such as
   "e.service") is given,
       CASE WHEN <service> = <param> THEN <own view> ELSE <other view> END
   (`param`: the statement parameter holding the agent's service, e.g.
   "$2"; a NULL service is the other view, as in cv_api_view_for()), and
   when `service` is NULL the own view (an object reached only through the
   agent's own service, such as the citizen of a timeline). Other roles: the
   other view. Returns the length, or -1 when buf is too small. */
int cv_api_sql_object_for(char *buf, size_t cap, const char *object, cv_api_role_t role,
                          const char *service, const char *param, const cv_api_column_t *cols,
                          size_t ncols);

#endif
