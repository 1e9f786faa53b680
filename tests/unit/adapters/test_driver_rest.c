/*  test_driver_rest — the REST driver's parts: since-cursors (parsing,
    order across a summer-time change, overlap), the saved position, the
    `driver:` section (defaults, errors as file:line, ${ENV} and
    ${file:PATH} secrets), and the HTTP layer against a real local HTTP
    server (libmicrohttpd): headers and basic auth sent, statuses, bounded
    body, non-blocking polls while the server is slow, connection refused.
    The whole driver runs end to end in tests/it/adapter_etat_civil.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drivers/rest/cv_rest.h"

/* ------------------------------------------------------------ cursors */

static cv_rest_cursor_t s_cur(const char *text)
{
    cv_rest_cursor_t c;
    assert_true(cv_rest_cursor_from_text(text, false, &c));
    return c;
}

static void test_cursor_offsets_compare_as_instants(void **state)
{
    (void) state;
    /* clocks go back in Paris on 2024-10-27: 02:30+02:00 (00:30Z) is before 02:10+01:00 (01:10Z) */
    cv_rest_cursor_t a = s_cur("2024-10-27T02:30:00+02:00"), b = s_cur("2024-10-27T02:10:00+01:00");
    assert_true(strcmp(a.text, b.text) > 0);
    assert_true(cv_rest_cursor_cmp(&a, &b) < 0);
    cv_rest_cursor_t z = s_cur("2024-10-27T00:30:00Z"), compact = s_cur("2024-10-27T02:30:00+0200");
    assert_int_equal(cv_rest_cursor_cmp(&a, &z), 0);
    assert_int_equal(cv_rest_cursor_cmp(&a, &compact), 0);
    cv_rest_cursor_t frac = s_cur("2024-10-27T00:30:00.250Z");
    assert_true(cv_rest_cursor_cmp(&frac, &z) > 0);
    cv_rest_cursor_t none = { 0 };
    assert_true(cv_rest_cursor_cmp(&none, &z) < 0);
    assert_true(cv_rest_cursor_cmp(&z, &none) > 0);
}

static void test_cursor_rejects_what_is_not_a_date(void **state)
{
    (void) state;
    cv_rest_cursor_t c;
    const char *bad[] = { "2024-02-30T00:00:00Z", "2023-02-29", "2024-03-04T25:00", "hier", "2024-03-04T10:00+1",
                          "2024-03-04X10:00", "2024-03-04T10:00:00+01:00junk", "", "2024-3-4" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(cv_rest_cursor_from_text(bad[i], false, &c));
    assert_true(cv_rest_cursor_from_text("2024-02-29", false, &c));
    json_t *real = json_real(1.5), *obj = json_object(), *num = json_integer(42);
    assert_false(cv_rest_cursor_from_json(real, &c));
    assert_false(cv_rest_cursor_from_json(obj, &c));
    assert_true(cv_rest_cursor_from_json(num, &c));
    assert_true(c.is_int);
    assert_int_equal(c.number, 42);
    json_decref(real);
    json_decref(obj);
    json_decref(num);
}

static void test_cursor_since_subtracts_the_overlap_as_written(void **state)
{
    (void) state;
    char out[64];
    cv_rest_cursor_t c = s_cur("2024-03-31T03:00:01+02:00");
    cv_rest_cursor_since(&c, 0, out, sizeof out);
    assert_string_equal(out, "2024-03-31T03:00:01+02:00");
    cv_rest_cursor_since(&c, 2, out, sizeof out);
    assert_string_equal(out, "2024-03-31T02:59:59+02:00");
    c = s_cur("2024-01-01 00:00:30.5");
    cv_rest_cursor_since(&c, 60, out, sizeof out);
    assert_string_equal(out, "2023-12-31 23:59:30");
    c = s_cur("2024-03-01");
    cv_rest_cursor_since(&c, 1, out, sizeof out);
    assert_string_equal(out, "2024-02-29");
    c = s_cur("2024-07-01T00:00:00Z");
    cv_rest_cursor_since(&c, 86400 * 2 + 1, out, sizeof out);
    assert_string_equal(out, "2024-06-28T23:59:59Z");
    assert_true(cv_rest_cursor_from_text("1000", true, &c));
    cv_rest_cursor_since(&c, 5, out, sizeof out);
    assert_string_equal(out, "995");
}

static void test_position_round_trip(void **state)
{
    (void) state;
    char *token = NULL;
    cv_rest_cursor_t c;
    char *pos = cv_rest_cursor_position_token("eyJwIjo0MH0=\"é");
    assert_int_equal(cv_rest_cursor_position_parse(pos, CV_REST_TOKEN, &token, &c), 0);
    assert_string_equal(token, "eyJwIjo0MH0=\"é");
    assert_int_equal(cv_rest_cursor_position_parse(pos, CV_REST_SINCE, &token, &c), -1);
    free(token);
    free(pos);
    cv_rest_cursor_t in = s_cur("2024-03-31T03:05:00+02:00");
    pos = cv_rest_cursor_position_since(&in);
    assert_int_equal(cv_rest_cursor_position_parse(pos, CV_REST_SINCE, &token, &c), 0);
    assert_string_equal(c.text, "2024-03-31T03:05:00+02:00");
    assert_int_equal(cv_rest_cursor_cmp(&c, &in), 0);
    free(pos);
    assert_true(cv_rest_cursor_from_text("77", true, &in));
    pos = cv_rest_cursor_position_since(&in);
    assert_string_equal(pos, "{\"since\":77}");
    assert_int_equal(cv_rest_cursor_position_parse(pos, CV_REST_SINCE, &token, &c), 0);
    assert_true(c.is_int);
    assert_int_equal(c.number, 77);
    free(pos);
    assert_int_equal(cv_rest_cursor_position_parse("not json", CV_REST_SINCE, &token, &c), -1);
}

static void test_json_path(void **state)
{
    (void) state;
    json_t *root = json_loads("{\"a\":{\"b\":[{\"c\":1},{\"c\":2}]},\"items\":[]}", 0, NULL);
    assert_int_equal(json_integer_value(cv_rest_config_json_path(root, "a.b.1.c")), 2);
    assert_ptr_equal(cv_rest_config_json_path(root, ""), root);
    assert_true(json_is_array(cv_rest_config_json_path(root, "items")));
    assert_null(cv_rest_config_json_path(root, "a.b.x"));
    assert_null(cv_rest_config_json_path(root, "a.b.5.c"));
    assert_null(cv_rest_config_json_path(root, "nope"));
    json_decref(root);
}

/* ------------------------------------------------------------ config */

typedef struct {
    cv_yaml_doc_t *doc;
    cv_rest_config_t *config;
    char err[512];
} conf_t;

/* Parses `driver:` text (the file is called t.yaml, its folder /tmp). */
static cv_rest_config_t *s_conf(conf_t *t, const char *text)
{
    memset(t, 0, sizeof *t);
    t->doc = cv_yaml_parse("t.yaml", text, strlen(text), t->err, sizeof t->err);
    assert_non_null(t->doc);
    cv_driver_ctx_t ctx = { t->doc, cv_yaml_get(t->doc->root, "driver"), "/tmp", "src", NULL };
    t->config = cv_rest_config_new(&ctx, t->err, sizeof t->err);
    return t->config;
}

static void s_conf_free(conf_t *t)
{
    cv_rest_config_destroy(&t->config);
    cv_yaml_destroy(&t->doc);
}

static void test_config_defaults(void **state)
{
    (void) state;
    conf_t t;
    assert_non_null(s_conf(&t, "driver:\n  kind: rest\n  url: https://api.example.fr:8443/v1/demandes?key=SECRET\n"
                               "  pagination:\n    mode: since\n"));
    cv_rest_config_t *c = t.config;
    assert_string_equal(c->url_for_logs, "https://api.example.fr:8443/v1/demandes");
    assert_string_equal(c->records_path, "items");
    assert_int_equal(c->mode, CV_REST_SINCE);
    assert_string_equal(c->since_param, "updated_since");
    assert_string_equal(c->cursor_field, "updated_at");
    assert_int_equal(c->overlap, 0);
    assert_null(c->page_size_param);
    assert_int_equal(c->connect_timeout_ms, 5000);
    assert_int_equal(c->timeout_ms, 30000);
    assert_int_equal(c->retry_initial_ms, 500);
    assert_int_equal(c->retry_max_ms, 60000);
    assert_int_equal(c->poll_interval_ms, 10000);
    assert_true(c->rate_limit == 10.0);
    assert_int_equal(c->max_response_bytes, 16 << 20);
    s_conf_free(&t);
    assert_non_null(s_conf(&t, "driver:\n  kind: rest\n  url: http://h/x\n  records_path: \"\"\n"
                               "  pagination: {mode: token}\n  rate_limit: 0.5\n"));
    assert_string_equal(t.config->token_param, "page_token");
    assert_string_equal(t.config->next_token_path, "next_page_token");
    assert_string_equal(t.config->records_path, "");
    assert_true(t.config->rate_limit == 0.5);
    s_conf_free(&t);
}

/* Each bad section fails with this line and these words. */
static void test_config_errors_name_the_line(void **state)
{
    (void) state;
    static const struct {
        const char *yaml, *expect;
    } cases[] = {
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n  polling_ms: 5\n",
          "t.yaml:5: unknown key 'polling_ms'" },
        { "driver:\n  kind: rest\n  pagination: {mode: since}\n", "t.yaml:2: the rest driver needs 'url'" },
        { "driver:\n  kind: rest\n  url: ftp://h/x\n  pagination: {mode: since}\n", "t.yaml:3: 'url' must start" },
        { "driver:\n  kind: rest\n  url: http://bob:pw@h/x\n  pagination: {mode: since}\n",
          "t.yaml:3: 'url' must not hold a user name or password" },
        { "driver:\n  kind: rest\n  url: http://h/x\n", "needs 'pagination'" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination:\n    mode: cursor\n",
          "t.yaml:5: pagination mode 'cursor'" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination:\n    mode: token\n    overlap: 2\n",
          "t.yaml:6: 'overlap' is for 'mode: since' only" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination:\n    mode: since\n    page_size: 10\n",
          "t.yaml:6: 'page_size' needs 'page_size_param'" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n  rate_limit: fast\n",
          "t.yaml:5: 'rate_limit' must be a number" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n  retry: {initial_ms: 900, max_ms: 100}\n",
          "'retry.max_ms' must be at least" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since, cursor_field: a..b}\n",
          "'cursor_field' must be a dotted path" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n  headers:\n"
          "    Authorization: \"Bearer ${CV_TEST_REST_UNSET}\"\n",
          "t.yaml:6: environment variable CV_TEST_REST_UNSET (used by 'Authorization') is not set" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n  headers:\n"
          "    \"Bad Header\": x\n", "t.yaml:6: 'Bad Header' is not a valid header name" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n  headers:\n"
          "    X-Key: \"${CV_TEST_REST_CRLF}\"\n", "t.yaml:6: the value of header 'X-Key' holds a line break" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n  basic_auth: {username: u}\n",
          "'basic_auth' needs 'username' and 'password'" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n  basic_auth:\n"
          "    username: u\n    password: \"${file:cv-test-rest-missing-file}\"\n",
          "t.yaml:7: cannot read secret file '/tmp/cv-test-rest-missing-file'" },
        { "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n  query: {k: \"${BAD NAME}\"}\n",
          "neither an environment variable name nor file:PATH" },
    };
    setenv("CV_TEST_REST_CRLF", "abc\r\nX-Injected: 1", 1);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        conf_t t;
        if (s_conf(&t, cases[i].yaml)) {
            fail_msg("case %zu was accepted", i);
        }
        if (!strstr(t.err, cases[i].expect))
            fail_msg("case %zu: '%s' does not contain '%s'", i, t.err, cases[i].expect);
        assert_null(strstr(t.err, "X-Injected"));   /* never the value */
        s_conf_free(&t);
    }
    unsetenv("CV_TEST_REST_CRLF");
}

static void test_config_expands_secrets(void **state)
{
    (void) state;
    char path[] = "/tmp/cv-test-rest-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cr3t\r\n", 8), 8);
    close(fd);
    setenv("CV_TEST_REST_TOKEN", "tok-42", 1);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "driver:\n  kind: rest\n  url: http://h/x\n  pagination: {mode: since}\n"
             "  headers: {Authorization: \"Bearer ${CV_TEST_REST_TOKEN}\", X-Cost: \"$5 ${CV_TEST_REST_TOKEN}!\"}\n"
             "  query: {api_key: \"${file:%s}\"}\n"
             "  basic_auth: {username: civibus, password: \"${file:%s}\"}\n", path + 5, path);
    conf_t t;
    assert_non_null(s_conf(&t, yaml));       /* path + 5: relative to /tmp */
    assert_int_equal(t.config->header_count, 2);
    assert_string_equal(t.config->headers[0].value, "Bearer tok-42");
    assert_string_equal(t.config->headers[1].value, "$5 tok-42!");
    assert_string_equal(t.config->query[0].value, "s3cr3t");
    assert_string_equal(t.config->username, "civibus");
    assert_string_equal(t.config->password, "s3cr3t");
    s_conf_free(&t);
    unlink(path);
    unsetenv("CV_TEST_REST_TOKEN");
}

/* ------------------------------------------------------------ http */

typedef struct {
    struct MHD_Daemon *daemon;
    int port;
} server_t;

static enum MHD_Result s_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                const char *version, const char *upload, size_t *upload_len, void **req)
{
    (void) cls; (void) method; (void) version; (void) upload; (void) upload_len; (void) req;
    char body[20000];
    unsigned status = 200;
    if (strcmp(url, "/echo") == 0) {
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Key");
        const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
        json_t *o = json_pack("{s:s?,s:s?,s:s?}", "auth", auth, "key", key, "since", since);
        char *text = json_dumps(o, JSON_COMPACT);
        snprintf(body, sizeof body, "%s", text);
        free(text);
        json_decref(o);
    } else if (strcmp(url, "/big") == 0) {
        memset(body, 'x', 5000);
        body[5000] = '\0';
    } else if (strcmp(url, "/slow") == 0) {
        usleep(1000 * 1000);
        snprintf(body, sizeof body, "{\"items\":[]}");
    } else {
        status = 500;
        snprintf(body, sizeof body, "<h1>500</h1>");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static int s_server_setup(void **state)
{
    server_t *s = calloc(1, sizeof *s);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                                 s_answer, NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_END);
    if (!s->daemon)
        return -1;
    s->port = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    *state = s;
    return 0;
}

static int s_server_teardown(void **state)
{
    server_t *s = *state;
    MHD_stop_daemon(s->daemon);
    free(s);
    return 0;
}

static int64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs one GET to completion, checking that no poll blocks; returns the
   number of polls that found the transfer still running. */
static int s_get(cv_rest_http_t *http, const char *url, cv_rest_reply_t *reply)
{
    assert_int_equal(cv_rest_http_start(http, url), 0);
    int polls = 0;
    int64_t deadline = s_ms() + 5000;
    for (;;) {
        int64_t t0 = s_ms();
        int done = cv_rest_http_poll(http, reply);
        assert_true(s_ms() - t0 < 500);   /* a blocking poll would wait for the 1 s server */
        if (done)
            return polls;
        polls++;
        assert_true(s_ms() < deadline);
        usleep(5000);
    }
}

static void test_http_against_a_real_server(void **state)
{
    server_t *s = *state;
    setenv("CV_TEST_REST_TOKEN", "tok-42", 1);
    conf_t t;
    assert_non_null(s_conf(&t, "driver:\n  kind: rest\n  url: http://127.0.0.1/x\n  pagination: {mode: since}\n"
                               "  headers: {Authorization: \"Bearer ${CV_TEST_REST_TOKEN}\", X-Key: k1}\n"
                               "  max_response_bytes: 4096\n  timeout_ms: 3000\n"));
    char err[256];
    cv_rest_http_t *http = cv_rest_http_new(t.config, err, sizeof err);
    assert_non_null(http);
    char url[256];
    cv_rest_reply_t reply;

    /* headers sent, query decoded by the server as written (+ stays +) */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo?since=2024-03-31T03%%3A00%%3A00%%2B02%%3A00", s->port);
    s_get(http, url, &reply);
    assert_true(reply.ok);
    assert_int_equal(reply.status, 200);
    json_t *echo = json_loadb(reply.body, reply.len, 0, NULL);
    assert_non_null(echo);
    assert_string_equal(json_string_value(json_object_get(echo, "auth")), "Bearer tok-42");
    assert_string_equal(json_string_value(json_object_get(echo, "key")), "k1");
    assert_string_equal(json_string_value(json_object_get(echo, "since")), "2024-03-31T03:00:00+02:00");
    json_decref(echo);

    /* a status is a completed transfer */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/fail", s->port);
    s_get(http, url, &reply);
    assert_true(reply.ok);
    assert_int_equal(reply.status, 500);

    /* the body is bounded */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/big", s->port);
    s_get(http, url, &reply);
    assert_false(reply.ok);
    assert_true(reply.too_large);
    assert_non_null(strstr(reply.error, "max_response_bytes"));

    /* a slow server: many quick polls while it thinks */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", s->port);
    assert_true(s_get(http, url, &reply) > 5);
    assert_true(reply.ok);
    assert_string_equal(reply.body, "{\"items\":[]}");

    /* nobody listening: a transport error, no status */
    snprintf(url, sizeof url, "http://127.0.0.1:1/x?secret=zz");
    s_get(http, url, &reply);
    assert_false(reply.ok);
    assert_true(reply.error[0] != '\0');
    assert_null(strstr(reply.error, "zz"));

    cv_rest_http_destroy(&http);
    assert_null(http);
    s_conf_free(&t);
    unsetenv("CV_TEST_REST_TOKEN");
}

static void test_http_basic_auth_and_cancel(void **state)
{
    server_t *s = *state;
    conf_t t;
    assert_non_null(s_conf(&t, "driver:\n  kind: rest\n  url: http://127.0.0.1/x\n  pagination: {mode: token}\n"
                               "  basic_auth: {username: civibus, password: \"p@ss:é\"}\n"));
    char err[256], url[256];
    cv_rest_http_t *http = cv_rest_http_new(t.config, err, sizeof err);
    assert_non_null(http);
    cv_rest_reply_t reply;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", s->port);
    s_get(http, url, &reply);
    json_t *echo = json_loadb(reply.body, reply.len, 0, NULL);
    /* "civibus:p@ss:é" in base64 */
    assert_string_equal(json_string_value(json_object_get(echo, "auth")), "Basic Y2l2aWJ1czpwQHNzOsOp");
    json_decref(echo);
    /* a transfer cancelled half way leaves the handle ready for the next */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", s->port);
    assert_int_equal(cv_rest_http_start(http, url), 0);
    assert_int_equal(cv_rest_http_poll(http, &reply), 0);
    cv_rest_http_cancel(http);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", s->port);
    s_get(http, url, &reply);
    assert_true(reply.ok);
    assert_int_equal(reply.status, 200);
    cv_rest_http_destroy(&http);
    s_conf_free(&t);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_cursor_offsets_compare_as_instants),
        cmocka_unit_test(test_cursor_rejects_what_is_not_a_date),
        cmocka_unit_test(test_cursor_since_subtracts_the_overlap_as_written),
        cmocka_unit_test(test_position_round_trip),
        cmocka_unit_test(test_json_path),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_errors_name_the_line),
        cmocka_unit_test(test_config_expands_secrets),
    };
    const struct CMUnitTest http[] = {
        cmocka_unit_test(test_http_against_a_real_server),
        cmocka_unit_test(test_http_basic_auth_and_cancel),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cv_test_group(unit, NULL, NULL);
    failed += cv_test_group(http, s_server_setup, s_server_teardown);
    curl_global_cleanup();
    return cv_test_end(failed);
}
