/*  api_access — see api_access.h. The table below IS the policy; each row
    is (object, field, own, other, supervisor, admin). cv_api_filter()
    applies it to JSON objects; cv_api_sql_object*() derive from it the SQL
    that builds the timeline (api_sql.c), so neither path has a policy of
    its own. */
#include "api_access.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *object;
    const char *field;
    bool show[CV_API_VIEW_COUNT];
} rule_t;

static const rule_t s_rules[] = {
    /*                                       own    other  super  admin */
    { "request", "id",                    { true,  true,  true,  true } },
    { "request", "service",               { true,  true,  true,  true } },
    { "request", "category",              { true,  true,  true,  true } },
    { "request", "status",                { true,  true,  true,  true } },
    { "request", "status_at",             { true,  true,  true,  true } },
    { "request", "due_at",                { true,  true,  true,  true } },
    { "request", "overdue",               { true,  true,  true,  true } },
    { "request", "created_at",            { true,  true,  true,  true } },
    { "request", "updated_at",            { true,  true,  true,  true } },
    { "request", "channel",               { true,  false, true,  true } },
    { "request", "flagged",               { true,  false, true,  true } },
    { "request", "tracking_code",         { true,  false, true,  true } },
    { "request", "request_ref",           { true,  false, true,  true } },
    { "request", "citizen_id",            { true,  false, true,  true } },
    { "request", "summary",               { true,  false, true,  true } },
    { "request", "events",                { true,  true,  true,  true } },
    { "event",   "id",                    { true,  true,  true,  true } },
    { "event",   "request_id",            { true,  true,  true,  true } },
    { "event",   "service",               { true,  true,  true,  true } },
    { "event",   "category",              { true,  true,  true,  true } },
    { "event",   "status",                { true,  true,  true,  true } },
    { "event",   "occurred_at",           { true,  true,  true,  true } },
    { "event",   "due_at",                { true,  true,  true,  true } },
    { "event",   "kind",                  { true,  false, true,  true } },
    { "event",   "source",                { true,  false, true,  true } },
    { "event",   "source_status",         { true,  false, true,  true } },
    { "event",   "received_at",           { true,  false, true,  true } },
    { "event",   "transition_flagged",    { true,  false, true,  true } },
    { "citizen", "id",                    { true,  false, true,  true } },
    { "citizen", "identities",            { true,  false, true,  true } },
};

#define NRULES (sizeof s_rules / sizeof s_rules[0])

const char *cv_api_role_name(cv_api_role_t role)
{
    switch (role) {
    case CV_API_AGENT: return "agent";
    case CV_API_SUPERVISOR: return "supervisor";
    case CV_API_ADMIN: return "admin";
    case CV_API_CITIZEN: return "citizen";
    }
    return "?";
}

bool cv_api_role_parse(const char *name, cv_api_role_t *out)
{
    for (cv_api_role_t r = CV_API_AGENT; r <= CV_API_ADMIN; r++)
        if (name && strcmp(name, cv_api_role_name(r)) == 0) {
            *out = r;
            return true;
        }
    return false;
}

const char *cv_api_view_name(cv_api_view_t view)
{
    static const char *names[] = { "agent (own service)", "agent (other service)", "supervisor", "admin" };
    return view < CV_API_VIEW_COUNT ? names[view] : "?";
}

cv_api_view_t cv_api_view_for(const cv_api_principal_t *p, const char *service)
{
    switch (p->role) {
    case CV_API_SUPERVISOR: return CV_API_VIEW_SUPERVISOR;
    case CV_API_ADMIN: return CV_API_VIEW_ADMIN;
    case CV_API_AGENT:
        return service && p->service[0] && strcmp(service, p->service) == 0 ? CV_API_VIEW_OWN
                                                                            : CV_API_VIEW_OTHER;
    default: return CV_API_VIEW_OTHER;
    }
}

static const rule_t *s_rule(const char *object, const char *field)
{
    for (size_t i = 0; i < NRULES; i++)
        if (strcmp(s_rules[i].object, object) == 0 && strcmp(s_rules[i].field, field) == 0)
            return &s_rules[i];
    return NULL;
}

bool cv_api_field_allowed(const char *object, const char *field, cv_api_view_t view)
{
    if (view >= CV_API_VIEW_COUNT)
        return false;
    const rule_t *r = s_rule(object, field);
    return r && r->show[view];
}

void cv_api_filter(json_t *obj, const char *object, cv_api_view_t view)
{
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, value) {
        if (!cv_api_field_allowed(object, key, view))
            json_object_del(obj, key);
    }
}

bool cv_api_access_entry(int i, const char **object, const char **field)
{
    if (i < 0 || (size_t) i >= NRULES)
        return false;
    *object = s_rules[i].object;
    *field = s_rules[i].field;
    return true;
}

/* Appends to buf at *len; false (and *len past cap) when it does not fit. */
static bool s_append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return false;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= cap - *len) {
        *len = cap;
        return false;
    }
    *len += (size_t) n;
    return true;
}

static bool s_object(char *buf, size_t cap, size_t *len, const char *object, cv_api_view_t view,
                     const cv_api_column_t *cols, size_t ncols)
{
    bool first = true;
    if (!s_append(buf, cap, len, "json_build_object("))
        return false;
    for (size_t i = 0; i < ncols; i++) {
        const rule_t *r = view < CV_API_VIEW_COUNT ? s_rule(object, cols[i].field) : NULL;
        if (!r || !r->show[view])
            continue;
        if (!s_append(buf, cap, len, "%s'%s', %s", first ? "" : ", ", r->field, cols[i].expr))
            return false;
        first = false;
    }
    return s_append(buf, cap, len, ")");
}

int cv_api_sql_object(char *buf, size_t cap, const char *object, cv_api_view_t view,
                      const cv_api_column_t *cols, size_t ncols)
{
    size_t len = 0;
    if (cap == 0 || !s_object(buf, cap, &len, object, view, cols, ncols))
        return -1;
    return (int) len;
}

int cv_api_sql_object_for(char *buf, size_t cap, const char *object, cv_api_role_t role,
                          const char *service, const char *param, const cv_api_column_t *cols,
                          size_t ncols)
{
    size_t len = 0;
    bool ok;
    if (cap == 0)
        return -1;
    switch (role) {
    case CV_API_SUPERVISOR:
        ok = s_object(buf, cap, &len, object, CV_API_VIEW_SUPERVISOR, cols, ncols);
        break;
    case CV_API_ADMIN:
        ok = s_object(buf, cap, &len, object, CV_API_VIEW_ADMIN, cols, ncols);
        break;
    case CV_API_AGENT:
        if (!service) {
            ok = s_object(buf, cap, &len, object, CV_API_VIEW_OWN, cols, ncols);
            break;
        }
        ok = param && s_append(buf, cap, &len, "CASE WHEN %s = %s THEN ", service, param)
             && s_object(buf, cap, &len, object, CV_API_VIEW_OWN, cols, ncols)
             && s_append(buf, cap, &len, " ELSE ")
             && s_object(buf, cap, &len, object, CV_API_VIEW_OTHER, cols, ncols)
             && s_append(buf, cap, &len, " END");
        break;
    default:
        ok = s_object(buf, cap, &len, object, CV_API_VIEW_OTHER, cols, ncols);
        break;
    }
    return ok ? (int) len : -1;
}
