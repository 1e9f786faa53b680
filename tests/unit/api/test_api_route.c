/*  test_api_route — the route table and its matching (api_router.c): the
    table is well-formed; every route is reached by a path built from its
    own pattern (no earlier entry shadows it); literal segments win over
    captures; path parameters, {id}.{format} suffixes and alternatives;
    405 with the methods of a known path, 404 (empty Allow) otherwise;
    malformed patterns are refused. */
#include "api_route.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cv_test.h"

typedef struct {
    char copy[CV_API_PATH_MAX];
    char *seg[CV_API_MAX_SEGMENTS];
    int nseg;
    cv_api_params_t params;
    char allow[48];
} probe_t;

/* Splits path like api_server.c and looks its route up. */
static const cv_api_route_t *s_find(probe_t *p, const char *method, const char *path)
{
    snprintf(p->copy, sizeof p->copy, "%s", path);
    p->nseg = 0;
    char *save = NULL;
    for (char *s = strtok_r(p->copy + 1, "/", &save); s && p->nseg < CV_API_MAX_SEGMENTS;
         s = strtok_r(NULL, "/", &save))
        p->seg[p->nseg++] = s;
    return cv_api_route_find(method, p->seg, p->nseg, &p->params, p->allow, sizeof p->allow);
}

static const char *s_param(const probe_t *p, const char *name)
{
    for (int i = 0; i < p->params.n; i++)
        if (strcmp(p->params.name[i], name) == 0)
            return p->params.value[i];
    return NULL;
}

static void test_table_well_formed(void **state)
{
    char err[256] = "";
    int rc = cv_api_routes_check(err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

/* {name} → "x1", {name:a|b} → "a": the route found must be the same entry. */
static void test_every_route_reachable(void **state)
{
    size_t n;
    const cv_api_route_t *routes = cv_api_routes(&n);
    assert_true(n > 10);
    for (size_t i = 0; i < n; i++) {
        char path[512];
        size_t w = 0;
        for (const char *s = routes[i].pattern; *s && w < sizeof path - 8; s++) {
            if (*s != '{') {
                path[w++] = *s;
                continue;
            }
            const char *close = strchr(s, '}'), *colon = memchr(s, ':', (size_t) (close - s));
            if (colon) {
                const char *bar = memchr(colon, '|', (size_t) (close - colon));
                size_t len = (size_t) ((bar ? bar : close) - colon - 1);
                memcpy(path + w, colon + 1, len);
                w += len;
            } else {
                memcpy(path + w, "x1", 2);
                w += 2;
            }
            s = close;
        }
        path[w] = 0;
        probe_t p;
        const cv_api_route_t *r = s_find(&p, routes[i].method, path);
        if (r != &routes[i])
            fprintf(stderr, "%s %s reaches %s\n", routes[i].method, path, r ? r->pattern : "nothing");
        assert_ptr_equal(r, &routes[i]);
    }
}

static void test_match(void **state)
{
    probe_t p;
    const cv_api_route_t *r = s_find(&p, "GET", "/v1/requests/overdue");
    assert_non_null(r);
    assert_string_equal(r->pattern, "/v1/requests/overdue");
    assert_int_equal(p.params.n, 0);
    r = s_find(&p, "GET", "/v1/requests/42");
    assert_non_null(r);
    assert_string_equal(r->pattern, "/v1/requests/{id}");
    assert_string_equal(s_param(&p, "id"), "42");
    assert_ptr_equal(s_find(&p, "HEAD", "/v1/requests/42"), r);
    r = s_find(&p, "GET", "/v1/services/dechets/requests");
    assert_non_null(r);
    assert_string_equal(s_param(&p, "service"), "dechets");
    assert_null(s_param(&p, "id"));
    assert_null(s_find(&p, "GET", "/v1/requests/42/x/y"));         /* more segments than any */
    assert_string_equal(p.allow, "");
    assert_null(s_find(&p, "GET", "/v1/requests"));                /* POST only: registration */
    assert_string_equal(p.allow, "POST");
    assert_null(s_find(&p, "GET", "/v1/requests/1/events"));       /* more segments */
    assert_null(s_find(&p, "GET", "/"));
    assert_null(s_find(&p, "GET", "/v1/nothing"));
    assert_string_equal(p.allow, "");
    /* a very long id is one parameter, whole */
    char path[CV_API_PATH_MAX];
    snprintf(path, sizeof path, "/v1/requests/%01900d", 7);
    r = s_find(&p, "GET", path);
    assert_non_null(r);
    assert_int_equal(strlen(s_param(&p, "id")), 1900);
}

static void test_methods(void **state)
{
    probe_t p;
    assert_null(s_find(&p, "DELETE", "/v1/requests/1"));
    assert_string_equal(p.allow, "GET, HEAD");
    assert_null(s_find(&p, "GET", "/v1/citizens/7/merge"));
    assert_string_equal(p.allow, "POST");
    assert_null(s_find(&p, "HEAD", "/v1/merges/7/split"));
    assert_string_equal(p.allow, "POST");
    assert_null(s_find(&p, "PUT", "/open311/v2/requests.json"));
    assert_string_equal(p.allow, "GET, HEAD, POST");
    const cv_api_route_t *get = s_find(&p, "GET", "/open311/v2/requests.json");
    const cv_api_route_t *post = s_find(&p, "POST", "/open311/v2/requests.xml");
    assert_non_null(get);
    assert_non_null(post);
    assert_ptr_not_equal(get, post);
    assert_string_equal(post->method, "POST");
    assert_string_equal(s_param(&p, "format"), "xml");
    assert_string_equal(p.allow, "");
}

static void test_suffix(void **state)
{
    probe_t p;
    const cv_api_route_t *r = s_find(&p, "GET", "/open311/v2/requests/ACDEFHJKLM.json");
    assert_non_null(r);
    assert_string_equal(s_param(&p, "id"), "ACDEFHJKLM");
    assert_string_equal(s_param(&p, "format"), "json");
    r = s_find(&p, "GET", "/open311/v2/requests/a.b.xml");   /* the id ends at the last '.' */
    assert_non_null(r);
    assert_string_equal(s_param(&p, "id"), "a.b");
    assert_string_equal(s_param(&p, "format"), "xml");
    assert_null(s_find(&p, "GET", "/open311/v2/requests/x.csv"));
    assert_string_equal(p.allow, "");
    assert_null(s_find(&p, "GET", "/open311/v2/requests/.json"));  /* an empty id */
    assert_null(s_find(&p, "GET", "/open311/v2/requests.jsonx"));
    assert_null(s_find(&p, "GET", "/open311/v2/requests"));
    assert_null(s_find(&p, "GET", "/open311/v2/services.xmljson"));
    assert_non_null(s_find(&p, "GET", "/open311/v2/services.xml"));
}

static void test_patterns(void **state)
{
    assert_null(cv_api_route_pattern_error("/v1/citizens/{id}/timeline"));
    assert_null(cv_api_route_pattern_error("/o/{id}.{format:json|xml}"));
    assert_null(cv_api_route_pattern_error("/a/pre{x}post"));
    const char *bad[] = { "v1", "/", "/v1//x", "/v1/", "/{id}{x}", "/{ID}", "/{}", "/{id",
                          "/id}", "/{f:}", "/{f:a||b}", "/{f:|a}", "/{f:a|}", "/{a/b}",
                          "/{a}/{b}/{c}/{d}/{e}", "/1/2/3/4/5/6/7/8/9" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!cv_api_route_pattern_error(bad[i]))
            fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_non_null(cv_api_route_pattern_error(bad[i]));
    }
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_well_formed),
        cmocka_unit_test(test_every_route_reachable),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_suffix),
        cmocka_unit_test(test_patterns),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
