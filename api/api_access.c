/*  api_access — see api_access.h. The table below IS the policy; each row
    is (object, field, own, other, supervisor, admin). cv_api_filter()
    applies it to JSON objects; the timeline (api_timeline.c) asks
    cv_api_field_allowed() for each of its columns, so neither path has a
    policy of its own. */
#include "api_access.h"

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
    { "request", "due_kind",              { true,  true,  true,  true } },
    { "request", "paused_seconds",        { true,  true,  true,  true } },
    { "request", "created_at",            { true,  true,  true,  true } },
    { "request", "updated_at",            { true,  true,  true,  true } },
    { "request", "channel",               { true,  false, true,  true } },
    { "request", "flagged",               { true,  false, true,  true } },
    { "request", "tracking_code",         { true,  false, true,  true } },
    { "request", "request_ref",           { true,  false, true,  true } },
    { "request", "citizen_id",            { true,  false, true,  true } },
    { "request", "summary",               { true,  false, true,  true } },
    { "request", "requested_at",          { true,  true,  true,  true } },
    { "request", "outcome",               { true,  true,  true,  true } },
    { "request", "outcome_reason",        { true,  false, true,  true } },
    { "request", "outcome_ref",           { true,  false, true,  true } },
    { "request", "location",              { true,  false, true,  true } },
    { "request", "events",                { true,  true,  true,  true } },
    { "request", "notifications",         { true,  false, true,  true } },
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
    { "event",   "requested_at",          { true,  true,  true,  true } },
    { "event",   "outcome",               { true,  true,  true,  true } },
    { "event",   "outcome_reason",        { true,  false, true,  true } },
    { "event",   "outcome_ref",           { true,  false, true,  true } },
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
