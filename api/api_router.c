/*  api_router — serves the route table (api_route_table.c; the pattern
    syntax is described there). For a request:

    1. find the first entry whose pattern matches the path and whose method
       is the request's (HEAD is served by GET); none: 405 with an Allow
       header when other methods have the path, else 404;
    2. the entry's rate limit (429), then, unless the route is public, the
       bearer token (401) and its role (403). A route open to the public
       and to tokens (CV_API_PUBLIC | CV_API_STAFF) reads a token when the
       request has an Authorization header (a bad one is still 401) and
       serves an anonymous citizen otherwise; its rate limit applies to
       anonymous callers only;
    3. the handler, with the path parameters in the request.

    The errors of every path under /open311/ are then rewritten in
    Open311's format (cv_api_o311_reformat): its clients get that format
    for a 401, 404, 405 or 429 too. Matching walks the table (a few dozen
    entries, no allocation); a pattern is matched segment by segment, with
    backtracking only inside a segment. */
#include "api_route.h"

#include "api_handler.h"
#include "cv_log.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name, *value;
    size_t name_len, value_len;
} capture_t;

typedef struct {
    int n;
    capture_t c[CV_API_MAX_PARAMS];
} captures_t;

/* Whether [s, s + len) is one of the alternatives "a|b|c" of [alt, end). */
static bool s_alternative(const char *alt, const char *end, const char *s, size_t len)
{
    while (alt <= end) {
        const char *bar = memchr(alt, '|', (size_t) (end - alt));
        const char *stop = bar ? bar : end;
        if ((size_t) (stop - alt) == len && memcmp(alt, s, len) == 0)
            return true;
        if (!bar)
            break;
        alt = bar + 1;
    }
    return false;
}

/* The pattern segment [p, pe) against the path segment [s, se). */
static bool s_segment(const char *p, const char *pe, const char *s, const char *se, captures_t *caps)
{
    for (; p < pe && *p != '{'; p++, s++)
        if (s == se || *s != *p)
            return false;
    if (p == pe)
        return s == se;
    const char *close = memchr(p, '}', (size_t) (pe - p));
    if (!close || caps->n == CV_API_MAX_PARAMS)
        return false;
    const char *name = p + 1, *colon = memchr(name, ':', (size_t) (close - name));
    int k = caps->n;
    capture_t *c = &caps->c[k];
    c->name = name;
    c->name_len = (size_t) ((colon ? colon : close) - name);
    c->value = s;
    for (const char *end = se; end > s; end--) {      /* the furthest end first */
        c->value_len = (size_t) (end - s);
        if (colon && !s_alternative(colon + 1, close, s, c->value_len))
            continue;
        caps->n = k + 1;
        if (s_segment(close + 1, pe, end, se, caps))
            return true;
    }
    caps->n = k;
    return false;
}

static bool s_match(const char *pattern, char *const *seg, int nseg, captures_t *caps)
{
    caps->n = 0;
    const char *p = pattern + 1;                     /* patterns start with '/' */
    for (int i = 0; i < nseg; i++) {
        if (!*p)
            return false;                            /* the path is longer */
        const char *pe = strchr(p, '/');
        if (!pe)
            pe = p + strlen(p);
        if (!s_segment(p, pe, seg[i], seg[i] + strlen(seg[i]), caps))
            return false;
        p = *pe ? pe + 1 : pe;
    }
    return !*p;                                      /* not when the pattern is longer */
}

static bool s_method_ok(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0
        || (strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

static void s_allow_add(char *allow, size_t len, const char *method)
{
    const char *add = strcmp(method, "GET") == 0 ? "GET, HEAD" : method;
    if (strstr(allow, add))
        return;
    size_t used = strlen(allow);
    snprintf(allow + used, len - used, "%s%s", used ? ", " : "", add);
}

/* Copies the captures into params (names and values NUL-terminated). */
static bool s_params(const captures_t *caps, cv_api_params_t *params)
{
    size_t used = 0;
    params->n = 0;
    for (int i = 0; i < caps->n; i++) {
        const capture_t *c = &caps->c[i];
        if (used + c->name_len + c->value_len + 2 > sizeof params->buf)
            return false;
        char *name = params->buf + used;
        memcpy(name, c->name, c->name_len);
        name[c->name_len] = 0;
        char *value = name + c->name_len + 1;
        memcpy(value, c->value, c->value_len);
        value[c->value_len] = 0;
        used += c->name_len + c->value_len + 2;
        params->name[i] = name;
        params->value[i] = value;
        params->n = i + 1;
    }
    return true;
}

const cv_api_route_t *cv_api_route_find(const char *method, char *const *seg, int nseg,
                                        cv_api_params_t *params, char *allow, size_t allow_len)
{
    size_t n;
    const cv_api_route_t *routes = cv_api_routes(&n);
    allow[0] = 0;
    params->n = 0;
    for (size_t i = 0; i < n; i++) {
        captures_t caps;
        if (!s_match(routes[i].pattern, seg, nseg, &caps))
            continue;
        if (!s_method_ok(routes[i].method, method)) {
            s_allow_add(allow, allow_len, routes[i].method);
            continue;
        }
        if (!s_params(&caps, params))
            return NULL;                              /* cannot happen below CV_API_PATH_MAX */
        allow[0] = 0;
        return &routes[i];
    }
    return NULL;
}

const char *cv_api_param(const cv_api_req_t *req, const char *name)
{
    for (int i = 0; i < req->params.n; i++)
        if (strcmp(req->params.name[i], name) == 0)
            return req->params.value[i];
    return NULL;
}

/* ---- the checks of a table entry ---- */

static bool s_within_limit(cv_api_req_t *req, cv_api_limit_t limit)
{
    if (limit == CV_API_LIMIT_NONE
        || cv_api_ratelimit_hit(req->ctx->track_limit, req->client, req->client_len,
                                cv_api_ratelimit_now_ms()))
        return true;
    atomic_fetch_add(&req->ctx->track_limited, 1);
    cv_api_error(req, 429, "rate_limited", limit == CV_API_LIMIT_SUBMIT
                 ? "too many requests from this address; try again later"
                 : "too many lookups from this address; try again later");
    return false;
}

/* "agent, supervisor or admin" */
static void s_role_names(unsigned roles, char *out, size_t len)
{
    const char *names[4];
    int n = 0;
    for (cv_api_role_t r = CV_API_AGENT; r <= CV_API_CITIZEN; r++)
        if (roles & CV_API_ROLE_BIT(r))
            names[n++] = r == CV_API_CITIZEN ? "public" : cv_api_role_name(r);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
    }
}

static void s_serve(cv_api_req_t *req, const cv_api_route_t *route)
{
    req->route = route;
    bool optional = (route->roles & CV_API_PUBLIC) && (route->roles & CV_API_STAFF);
    bool token = !(route->roles & CV_API_PUBLIC) || (optional && cv_api_header(req, "Authorization"));
    if (!(optional && token) && !s_within_limit(req, route->limit))
        return;
    cv_api_principal_t who = { .role = CV_API_CITIZEN };
    if (token) {
        if (cv_api_authenticate(req, &who) != 0)
            return;
        if (!(route->roles & CV_API_ROLE_BIT(who.role))) {
            char roles[64], message[128];
            s_role_names(route->roles, roles, sizeof roles);
            snprintf(message, sizeof message, "this is for %s tokens", roles);
            cv_api_error(req, 403, "forbidden", message);
            return;
        }
    }
    route->handler(req, &who);
}

void cv_api_route(cv_api_req_t *req)
{
    char allow[sizeof req->allow];
    const cv_api_route_t *route = cv_api_route_find(req->method, req->seg, req->nseg, &req->params,
                                                    allow, sizeof allow);
    if (route)
        s_serve(req, route);
    else if (allow[0]) {
        char message[96];
        snprintf(message, sizeof message, "method not allowed here; allowed: %s", allow);
        memcpy(req->allow, allow, sizeof allow);
        cv_api_error(req, 405, "method_not_allowed", message);
    } else
        cv_api_error(req, 404, "not_found", "no such endpoint");
    if (req->nseg > 0 && strcmp(req->seg[0], "open311") == 0)
        cv_api_o311_reformat(req);
}

/* ---- the table itself ---- */

/* A pattern: '/'-separated non-empty segments of text and {name} or
   {name:a|b} captures, never two in a row. */
const char *cv_api_route_pattern_error(const char *pattern)
{
    if (pattern[0] != '/')
        return "does not start with '/'";
    int nseg = 0, ncap = 0;
    for (const char *p = pattern; *p; ) {
        p++;                                          /* the '/' */
        if (!*p || *p == '/')
            return "has an empty segment";
        if (++nseg > CV_API_MAX_SEGMENTS)
            return "has too many segments";
        bool after_capture = false;
        for (; *p && *p != '/'; p++) {
            if (*p == '}')
                return "has an unbalanced '}'";
            if (*p != '{') {
                after_capture = false;
                continue;
            }
            if (after_capture)
                return "has two captures in a row";
            const char *q = ++p;
            while ((*q >= 'a' && *q <= 'z') || *q == '_')
                q++;
            if (q == p || (*q != '}' && *q != ':'))
                return "has a capture name that is not [a-z_]+";
            if (*q == ':') {
                const char *alt = ++q;
                while (*q && *q != '}' && *q != '/' && *q != '{')
                    q++;
                if (*q != '}' || q == alt || alt[0] == '|' || q[-1] == '|'
                    || memmem(alt, (size_t) (q - alt), "||", 2))
                    return "has empty or unclosed alternatives";
            }
            if (++ncap > CV_API_MAX_PARAMS)
                return "has too many captures";
            p = q;
            after_capture = true;
        }
    }
    return NULL;
}

int cv_api_routes_check(char *err, size_t errlen)
{
    size_t n;
    const cv_api_route_t *routes = cv_api_routes(&n);
    for (size_t i = 0; i < n; i++) {
        const cv_api_route_t *r = &routes[i];
        const char *why = cv_api_route_pattern_error(r->pattern);
        if (!why && strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
            why = "has a method other than GET and POST";
        if (!why && !r->handler)
            why = "has no handler";
        if (!why && (!r->roles || (r->roles & ~(CV_API_STAFF | CV_API_PUBLIC))))
            why = "has roles that are neither public nor a set of token roles";
        for (size_t j = 0; !why && j < i; j++)
            if (strcmp(routes[j].method, r->method) == 0 && strcmp(routes[j].pattern, r->pattern) == 0)
                why = "is in the table twice";
        if (why) {
            snprintf(err, errlen, "route %s %s %s", r->method, r->pattern, why);
            return -1;
        }
    }
    return 0;
}

void cv_api_routes_print(FILE *out)
{
    size_t n;
    const cv_api_route_t *routes = cv_api_routes(&n);
    static const char *limits[] = { "-", "lookup", "submit" };
    for (size_t i = 0; i < n; i++) {
        const cv_api_route_t *r = &routes[i];
        char roles[64] = "";
        for (cv_api_role_t k = CV_API_AGENT; k <= CV_API_CITIZEN; k++)
            if (r->roles & CV_API_ROLE_BIT(k)) {
                size_t used = strlen(roles);
                snprintf(roles + used, sizeof roles - used, "%s%s", used ? "," : "",
                         k == CV_API_CITIZEN ? "public" : cv_api_role_name(k));
            }
        fprintf(out, "%s\t%s\t%s\t%s\t%s\n", r->method, r->pattern, roles, r->audit ? r->audit : "-",
                limits[r->limit]);
    }
}
