/*  fuzz_api_path — the path of a request to civibus-api, as the server and
    the router take it: the server's %HH decoding (api_server.c, %00 made
    invalid), its checks and split into segments (cv_api_server__split:
    UTF-8 text, no "." or ".." segment, no backslash, at most 8 segments),
    then the route table's pattern matching (api_router.c,
    cv_api_route_find) for each method, and the parsers the handlers apply
    to path parameters: ids (cv_api_parse_int), tracking codes
    (cv_api_tracking_code) and signed citizen links (cv_api_link_check).

    Input: the path (what precedes a '?' counts). Checked:
      - segments are non-empty, hold no '/', are valid UTF-8 text and never
        "." or "..", at most CV_API_MAX_SEGMENTS of them;
      - a route found serves the method asked (GET serves HEAD), and its
        pattern with the captured parameters put back in is exactly the
        path: nothing captured is lost or invented; an Allow list is only
        given when another method has a route there;
      - an id parsed lies within its bounds, a tracking code read is 10
        characters of its alphabet (the text itself, upper-cased), and a
        link accepted names a citizen and a link id of 32 hex digits; one
        cv_api_link_make made is accepted (checked once at start). */
#include "fuzz_util.h"

#include <strings.h>

#include "api_link.h"
#include "api_route.h"
#include "api_util.h"

static const unsigned char s_key[CV_API_LINK_KEY] = "the link key of the fuzz harness";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    char link[CV_API_LINK_MAX], lid[33], lid2[33];
    int64_t cid = 0;
    cv_api_link_make(s_key, 42, 1900000000, link, lid);
    fuzz_check(cv_api_link_check(s_key, link, 1700000000, &cid, lid2) == 0 && cid == 42 && strcmp(lid, lid2) == 0,
               "a link just made is refused");
    return 0;
}

static void s_route(const char *method, cv_api_req_t *req, const char *joined)
{
    char allow[48];
    const cv_api_route_t *r = cv_api_route_find(method, req->seg, req->nseg, &req->params, allow, sizeof allow);
    if (!r)
        return;
    fuzz_check(strcmp(r->method, method) == 0 || (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0),
               "%s served by a %s route", method, r->method);
    fuzz_check(allow[0] == '\0', "an Allow list with a route: %s", allow);
    /* the pattern with its parameters put back */
    char rebuilt[CV_API_PATH_MAX + 64];
    size_t n = 0;
    int k = 0;
    for (const char *p = r->pattern; *p && n < sizeof rebuilt - 1; p++) {
        if (*p != '{') {
            rebuilt[n++] = *p;
            continue;
        }
        const char *close = strchr(p, '}');
        fuzz_check(close && k < req->params.n, "pattern %s: parameter %d missing", r->pattern, k);
        const char *v = req->params.value[k];
        size_t len = strlen(v), name_len = strcspn(p + 1, ":}");
        fuzz_check(len > 0, "an empty parameter");
        fuzz_check(strlen(req->params.name[k]) == name_len && memcmp(req->params.name[k], p + 1, name_len) == 0,
                   "parameter %d is named %s", k, req->params.name[k]);
        fuzz_check(cv_api_param(req, req->params.name[k]) != NULL, "cv_api_param finds no %s", req->params.name[k]);
        if (n + len < sizeof rebuilt) {
            memcpy(rebuilt + n, v, len);
            n += len;
        }
        k++;
        p = close;
    }
    rebuilt[n] = '\0';
    fuzz_check(k == req->params.n, "%d parameters for %d captures", req->params.n, k);
    fuzz_check(strcmp(rebuilt, joined) == 0, "pattern %s rebuilt as '%s', not '%s'", r->pattern, rebuilt, joined);

    const char *id = cv_api_param(req, "id"), *code = cv_api_param(req, "code"), *link = cv_api_param(req, "link");
    int64_t v;
    if (id && cv_api_parse_int(id, 1, INT64_MAX, &v))
        fuzz_check(v >= 1, "id %lld", (long long) v);
    char tc[CV_API_CODE_MAX];
    const char *maybe = code ? code : id;
    if (maybe && cv_api_tracking_code(maybe, tc)) {
        fuzz_check((strlen(tc) == 10 || strlen(tc) == 11) && strspn(tc, "ACDEFHJKLMNPRTUVWXY34679") == strlen(tc), "tracking code '%s'", tc);
        fuzz_check(fuzz_code_from(tc, maybe), "tracking code '%s' from another text", tc);
    }
    if (link) {
        int64_t cid;
        char lid[33] = "";
        int rc = cv_api_link_check(s_key, link, 1700000000, &cid, lid);
        if (rc == 0)
            fuzz_check(cid >= 1 && strlen(lid) == 32 && strspn(lid, "0123456789abcdef") == 32,
                       "a link accepted with citizen %lld, id '%s'", (long long) cid, lid);
        else
            fuzz_check(rc == -1 || rc == -2, "link check %d", rc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= CV_API_PATH_MAX)
        return 0;
    char *url = fuzz_strndup(data, size);
    url[strcspn(url, "?")] = '\0';
    cv_api_server__unescape(url);
    char copy[CV_API_PATH_MAX];
    cv_api_req_t req;
    memset(&req, 0, sizeof req);
    if (cv_api_server__split(url, copy, sizeof copy, &req)) {
        fuzz_check(req.nseg >= 0 && req.nseg <= CV_API_MAX_SEGMENTS, "%d segments", req.nseg);
        char joined[CV_API_PATH_MAX + 1] = "";
        size_t n = 0;
        for (int i = 0; i < req.nseg; i++) {
            const char *s = req.seg[i];
            size_t len = strlen(s);
            fuzz_check(len > 0 && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0,
                       "segment %d '%s'", i, s);
            fuzz_check(cv_api_utf8_valid(s, len, true), "segment %d is not UTF-8 text", i);
            joined[n++] = '/';
            memcpy(joined + n, s, len);
            n += len;
        }
        joined[n] = '\0';
        if (req.nseg == 0)
            strcpy(joined, "/");
        static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE" };
        for (size_t m = 0; m < sizeof methods / sizeof *methods; m++)
            s_route(methods[m], &req, joined);
    }
    free(url);
    return 0;
}
