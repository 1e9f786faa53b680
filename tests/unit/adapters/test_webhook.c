/*  test_webhook — the webhook driver's parts, without a hub:
      - signatures: HMAC-SHA256 against RFC 4231, and every way a header
        can be wrong;
      - bodies: objects, arrays cut into the exact bytes of their elements,
        garbage and wrong shapes kept whole for the hub's dead letters;
      - the HTTP server for real (libcurl client threads, this thread as
        the run loop): early refusals, a signed POST suspended until it is
        answered, 503 with Retry-After, waiting POSTs answered at stop;
      - the `driver:` section: defaults and file:line errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "drivers/webhook/cv_webhook_body.h"
#include "drivers/webhook/cv_webhook_config.h"
#include "drivers/webhook/cv_webhook_http.h"

static const char *KEY = "un-secret-partage-de-test-0123456789";

/* ---- signatures ------------------------------------------------------------------- */

static void test_sign_rfc4231(void **state)
{
    char hex[CV_WEBHOOK_SIG_HEX + 1];
    const char *data = "what do ya want for nothing?";
    cv_webhook_body_sign("Jefe", 4, data, strlen(data), hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_signature_checks(void **state)
{
    const char *body = "{\"nom\":\"LEFÈVRE\"}";
    size_t len = strlen(body);
    char hex[CV_WEBHOOK_SIG_HEX + 1], header[128];
    cv_webhook_body_sign(KEY, strlen(KEY), body, len, hex);
    snprintf(header, sizeof header, "sha256=%s", hex);
    assert_true(cv_webhook_body_signature_ok(KEY, strlen(KEY), "sha256=", header, body, len));
    for (char *c = header + 7; *c; c++)          /* upper-case hex is the same digest */
        if (*c >= 'a' && *c <= 'f')
            *c = (char) (*c - 'a' + 'A');
    assert_true(cv_webhook_body_signature_ok(KEY, strlen(KEY), "sha256=", header, body, len));
    assert_true(cv_webhook_body_signature_ok(KEY, strlen(KEY), "", hex, body, len));

    assert_false(cv_webhook_body_signature_ok(KEY, strlen(KEY), "sha256=", NULL, body, len));
    assert_false(cv_webhook_body_signature_ok(KEY, strlen(KEY), "sha256=", hex, body, len));          /* no prefix */
    assert_false(cv_webhook_body_signature_ok(KEY, strlen(KEY), "sha256=", header, body, len - 1));   /* other body */
    assert_false(cv_webhook_body_signature_ok("autre-secret-de-test-0123", 25, "sha256=", header, body, len));
    snprintf(header, sizeof header, "sha256=%.63s", hex);                                         /* short */
    assert_false(cv_webhook_body_signature_ok(KEY, strlen(KEY), "sha256=", header, body, len));
    snprintf(header, sizeof header, "sha256=%s0", hex);                                           /* long */
    assert_false(cv_webhook_body_signature_ok(KEY, strlen(KEY), "sha256=", header, body, len));
    snprintf(header, sizeof header, "sha256=%.63sg", hex);                                        /* not hex */
    assert_false(cv_webhook_body_signature_ok(KEY, strlen(KEY), "sha256=", header, body, len));
    snprintf(header, sizeof header, "sha256=%s", hex);
    header[7] = header[7] == '0' ? '1' : '0';                                                     /* one digit */
    assert_false(cv_webhook_body_signature_ok(KEY, strlen(KEY), "sha256=", header, body, len));
}

/* ---- bodies ------------------------------------------------------------------------- */

static void s_assert_span(const char *body, cv_webhook_span_t span, const char *expected)
{
    assert_int_equal(span.len, strlen(expected));
    assert_memory_equal(body + span.offset, expected, span.len);
}

static void test_body_object_mode(void **state)
{
    cv_webhook_span_t *spans;
    size_t n;
    const char *body = " \r\n{\"id\": \"D-1\", \"objet\": \"« ça »\"}\n";
    assert_int_equal(cv_webhook_body_split(body, strlen(body), false, &spans, &n), CV_WEBHOOK_BODY_RECORDS);
    assert_int_equal(n, 1);
    s_assert_span(body, spans[0], "{\"id\": \"D-1\", \"objet\": \"« ça »\"}");
    free(spans);

    body = "{\"id\": \"D-1\", \"objet\": ";                      /* truncated */
    assert_int_equal(cv_webhook_body_split(body, strlen(body), false, &spans, &n), CV_WEBHOOK_BODY_NOT_JSON);
    assert_int_equal(n, 1);
    s_assert_span(body, spans[0], body);                          /* whole, for the dead letter */
    free(spans);

    body = "{\"nom\": \"LEF\xc8VRE\"}";                              /* Windows-1252, not UTF-8 */
    assert_int_equal(cv_webhook_body_split(body, strlen(body), false, &spans, &n), CV_WEBHOOK_BODY_NOT_JSON);
    free(spans);

    body = "[{\"id\": 1}]";                                       /* an array where one object is expected */
    assert_int_equal(cv_webhook_body_split(body, strlen(body), false, &spans, &n), CV_WEBHOOK_BODY_WRONG_SHAPE);
    assert_int_equal(n, 1);
    s_assert_span(body, spans[0], body);
    free(spans);
}

static void test_body_array_mode(void **state)
{
    cv_webhook_span_t *spans;
    size_t n;
    const char *body = "[ {\"a\": \"x,]}\\\"\", \"b\": [1, {\"c\": []}]} ,\n"
                       "{\"nom\": \"N'DIAYE\", \"t\": \"\\\\\"},{}\t]";
    assert_int_equal(cv_webhook_body_split(body, strlen(body), true, &spans, &n), CV_WEBHOOK_BODY_RECORDS);
    assert_int_equal(n, 3);
    s_assert_span(body, spans[0], "{\"a\": \"x,]}\\\"\", \"b\": [1, {\"c\": []}]}");
    s_assert_span(body, spans[1], "{\"nom\": \"N'DIAYE\", \"t\": \"\\\\\"}");
    s_assert_span(body, spans[2], "{}");
    free(spans);

    body = " [ ] ";
    assert_int_equal(cv_webhook_body_split(body, strlen(body), true, &spans, &n), CV_WEBHOOK_BODY_RECORDS);
    assert_int_equal(n, 0);
    free(spans);

    body = "{\"id\": \"seul\"}";                                  /* a lone object is one record */
    assert_int_equal(cv_webhook_body_split(body, strlen(body), true, &spans, &n), CV_WEBHOOK_BODY_RECORDS);
    assert_int_equal(n, 1);
    s_assert_span(body, spans[0], body);
    free(spans);

    body = "[{\"id\": 1}, 42, \"texte\"]";                         /* elements that are not records */
    assert_int_equal(cv_webhook_body_split(body, strlen(body), true, &spans, &n), CV_WEBHOOK_BODY_WRONG_SHAPE);
    assert_int_equal(n, 3);
    s_assert_span(body, spans[1], "42");
    s_assert_span(body, spans[2], "\"texte\"");
    free(spans);

    body = "[{\"id\": 1},]";
    assert_int_equal(cv_webhook_body_split(body, strlen(body), true, &spans, &n), CV_WEBHOOK_BODY_NOT_JSON);
    free(spans);
}

/* ---- the HTTP server ------------------------------------------------------------------ */

typedef struct {
    uint16_t port;
    const char *path, *method, *body, *signature;   /* signature NULL: no header */
    long status;
    char reply[256];
    size_t reply_len;
    char retry_after[32];
    pthread_t thread;
} call_t;

static size_t s_on_body(char *data, size_t size, size_t n, void *arg)
{
    call_t *c = arg;
    size_t len = size * n, room = sizeof c->reply - 1 - c->reply_len;
    memcpy(c->reply + c->reply_len, data, len < room ? len : room);
    c->reply_len += len < room ? len : room;
    c->reply[c->reply_len] = '\0';
    return len;
}

static size_t s_on_header(char *data, size_t size, size_t n, void *arg)
{
    call_t *c = arg;
    size_t len = size * n;
    if (len > 13 && strncasecmp(data, "Retry-After: ", 13) == 0)
        snprintf(c->retry_after, sizeof c->retry_after, "%.*s", (int) strcspn(data + 13, "\r\n"), data + 13);
    return len;
}

static void *s_call_run(void *arg)
{
    call_t *c = arg;
    CURL *curl = curl_easy_init();
    char url[256], header[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", c->port, c->path);
    struct curl_slist *headers = curl_slist_append(NULL, "Expect:");
    if (c->signature) {
        snprintf(header, sizeof header, "X-Signature: %s", c->signature);
        headers = curl_slist_append(headers, header);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
    if (strcmp(c->method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(c->body));
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    c->status = curl_easy_perform(curl) == CURLE_OK ? 0 : -1;
    if (c->status == 0)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &c->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return NULL;
}

static void s_call_start(call_t *c, uint16_t port, const char *method, const char *path, const char *body,
                         const char *signature)
{
    memset(c, 0, sizeof *c);
    *c = (call_t) { .port = port, .path = path, .method = method, .body = body, .signature = signature };
    assert_int_equal(pthread_create(&c->thread, NULL, s_call_run, c), 0);
}

static long s_call(call_t *c, uint16_t port, const char *method, const char *path, const char *body,
                   const char *signature)
{
    s_call_start(c, port, method, path, body, signature);
    pthread_join(c->thread, NULL);
    return c->status;
}

/* The posts queued within 5 s (this thread is the run loop). */
static cv_webhook_post_t *s_take(cv_webhook_http_t *http, size_t want)
{
    cv_webhook_post_t *all = NULL, **tail = &all;
    size_t got = 0;
    for (int i = 0; i < 500 && got < want; i++) {
        for (*tail = cv_webhook_http_take(http); *tail; tail = &(*tail)->next)
            got++;
        if (got < want)
            usleep(10000);
    }
    assert_int_equal(got, want);
    return all;
}

static cv_webhook_http_t *s_server(bool array, size_t max_body)
{
    cv_webhook_http_opts_t opts = {
        .address = "127.0.0.1", .port = 0, .path = "/webhooks/dechets", .array = array,
        .max_body_bytes = max_body, .max_connections = 8, .timeout_s = 5, .retry_after_s = 7,
        .secret = KEY, .secret_len = strlen(KEY), .sig_header = "X-Signature", .sig_prefix = "sha256=",
    };
    char err[256];
    cv_webhook_http_t *http = cv_webhook_http_new(&opts, err, sizeof err);
    assert_non_null(http);
    assert_true(cv_webhook_http_port(http) > 0);
    return http;
}

static const char *s_sig(const char *body, char out[80])
{
    char hex[CV_WEBHOOK_SIG_HEX + 1];
    cv_webhook_body_sign(KEY, strlen(KEY), body, strlen(body), hex);
    snprintf(out, 80, "sha256=%s", hex);
    return out;
}

static void test_http_refusals(void **state)
{
    cv_webhook_http_t *http = s_server(false, 64);
    uint16_t port = cv_webhook_http_port(http);
    call_t c;
    char sig[80];
    const char *body = "{\"id\": \"D-1\"}";
    assert_int_equal(s_call(&c, port, "GET", "/webhooks/dechets", "", NULL), 405);
    assert_int_equal(s_call(&c, port, "POST", "/autre", body, s_sig(body, sig)), 404);
    assert_int_equal(s_call(&c, port, "POST", "/webhooks/dechets", body, NULL), 401);
    assert_int_equal(s_call(&c, port, "POST", "/webhooks/dechets", body, "sha256=00"), 401);
    const char *big = "{\"objet\": \"0123456789012345678901234567890123456789012345678901234567890123\"}";
    assert_int_equal(s_call(&c, port, "POST", "/webhooks/dechets", big, s_sig(big, sig)), 413);
    assert_non_null(strstr(c.reply, "\"max_bytes\":64"));
    assert_int_equal(s_call(&c, port, "POST", "/webhooks/dechets", "", s_sig("", sig)), 400);
    assert_null(cv_webhook_http_take(http));                       /* nothing reached the run loop */
    cv_webhook_http_set_accepting(http, false);
    assert_int_equal(s_call(&c, port, "POST", "/webhooks/dechets", body, s_sig(body, sig)), 503);
    assert_string_equal(c.retry_after, "7");
    assert_null(cv_webhook_http_take(http));
    cv_webhook_http_stats_t s = cv_webhook_http_stats(http);
    assert_int_equal(s.not_found, 2);
    assert_int_equal(s.bad_signature, 2);
    assert_int_equal(s.too_large, 1);
    assert_int_equal(s.empty, 1);
    assert_int_equal(s.busy, 1);
    assert_int_equal(s.accepted, 0);
    cv_webhook_http_destroy(&http);
    assert_null(http);
}

static void test_http_answer_after_take(void **state)
{
    cv_webhook_http_t *http = s_server(true, 4096);
    uint16_t port = cv_webhook_http_port(http);
    char sig1[80], sig2[80];
    const char *b1 = "[{\"id\": \"D-1\", \"objet\": \"encombrants\"}, {\"id\": \"D-2\"}]";
    const char *b2 = "pas du JSON";
    call_t c1, c2;
    s_call_start(&c1, port, "POST", "/webhooks/dechets", b1, s_sig(b1, sig1));
    s_call_start(&c2, port, "POST", "/webhooks/dechets", b2, s_sig(b2, sig2));
    cv_webhook_post_t *posts = s_take(http, 2);
    assert_int_equal(c1.status, 0);                                /* both still waiting */
    assert_int_equal(c2.status, 0);
    for (cv_webhook_post_t *p = posts, *next; p; p = next) {
        next = p->next;
        if (p->len == strlen(b1)) {
            assert_memory_equal(p->body, b1, p->len);
            assert_int_equal(p->count, 2);
            s_assert_span(p->body, p->spans[1], "{\"id\": \"D-2\"}");
            cv_webhook_http_answer(http, p, 202);
        } else {
            assert_int_equal(p->count, 1);                           /* garbage: whole, for the hub */
            s_assert_span(p->body, p->spans[0], b2);
            cv_webhook_http_answer(http, p, 503);
        }
    }
    pthread_join(c1.thread, NULL);
    pthread_join(c2.thread, NULL);
    assert_int_equal(c1.status, 202);
    assert_string_equal(c1.reply, "{\"accepted\":2}\n");
    assert_int_equal(c2.status, 503);
    assert_string_equal(c2.retry_after, "7");
    cv_webhook_http_stats_t s = cv_webhook_http_stats(http);
    assert_int_equal(s.accepted, 1);
    assert_int_equal(s.records, 2);
    assert_int_equal(s.not_json, 1);

    /* a POST still waiting when the server stops is answered 503 */
    call_t c3;
    s_call_start(&c3, port, "POST", "/webhooks/dechets", b1, s_sig(b1, sig1));
    for (int i = 0; i < 500 && cv_webhook_http_waiting(http) == 0; i++)
        usleep(10000);
    assert_int_equal(cv_webhook_http_waiting(http), 1);
    cv_webhook_http_destroy(&http);
    pthread_join(c3.thread, NULL);
    assert_int_equal(c3.status, 503);
}

/* ---- the driver section ---------------------------------------------------------------- */

static int s_config(const char *yaml, cv_webhook_config_t *cfg, char *err, size_t errlen)
{
    char yerr[256];
    cv_yaml_doc_t *doc = cv_yaml_parse("adapter.yaml", yaml, strlen(yaml), yerr, sizeof yerr);
    assert_non_null(doc);
    cv_driver_ctx_t ctx = { doc, cv_yaml_get(doc->root, "driver"), "/tmp", "dechets", NULL };
    int rc = cv_webhook_config_read(&ctx, cfg, err, errlen);
    if (rc == 0) {   /* strings point into the document: check what we need before it goes */
        assert_string_equal(cfg->http.path, "/webhooks/dechets");
        assert_string_equal(cfg->http.address, "127.0.0.1");
        assert_string_equal(cfg->http.sig_header, "X-Signature");
        assert_string_equal(cfg->http.sig_prefix, "sha256=");
    }
    cv_yaml_destroy(&doc);
    return rc;
}

static void test_config(void **state)
{
    cv_webhook_config_t cfg;
    char err[512];
    setenv("CIVIBUS_TEST_WEBHOOK_SECRET", "un-secret-assez-long\n", 1);
    assert_int_equal(s_config("driver:\n  kind: webhook\n  source: dechets\n  port: 0\n  port_file: run/port\n"
                              "  path: /webhooks/dechets\n  body: array\n"
                              "  signature:\n    secret_env: CIVIBUS_TEST_WEBHOOK_SECRET\n", &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.http.port, 0);
    assert_string_equal(cfg.port_file, "/tmp/run/port");
    assert_true(cfg.http.array);
    assert_int_equal(cfg.http.max_body_bytes, 4 << 20);
    assert_int_equal(cfg.http.max_connections, 64);
    assert_int_equal(cfg.http.timeout_s, 30);
    assert_int_equal(cfg.http.retry_after_s, 5);
    assert_int_equal(cfg.secret_len, strlen("un-secret-assez-long"));      /* line end not part of it */
    assert_memory_equal(cfg.http.secret, "un-secret-assez-long", cfg.secret_len);
    cv_webhook_config_clear(&cfg);
    assert_null(cfg.secret);

    static const struct { const char *yaml, *error; } bad[] = {
        { "driver:\n  kind: webhook\n  port: 80\n  prt: 1\n", "adapter.yaml:4: unknown key 'prt'" },
        { "driver:\n  kind: webhook\n  port: 0\n  signature: {secret_env: X}\n", "adapter.yaml:3: 'port: 0'" },
        { "driver:\n  kind: webhook\n  port: 80\n  body: csv\n", "adapter.yaml:4: 'body' must be" },
        { "driver:\n  kind: webhook\n  address: localhost\n  port: 80\n", "adapter.yaml:3: 'address' must be" },
        { "driver:\n  kind: webhook\n  port: 80\n  path: webhooks\n", "adapter.yaml:4: 'path' must start" },
        { "driver:\n  kind: webhook\n  port: 80\n  body: array\n", "needs a 'signature' section" },
        { "driver:\n  kind: webhook\n  port: 80\n  body: array\n  signature:\n    secret_env: CIVIBUS_TEST_NONE\n",
          "adapter.yaml:6: the environment variable 'CIVIBUS_TEST_NONE'" },
        { "driver:\n  kind: webhook\n  port: 80\n  body: array\n  signature:\n    secret_env: A\n    secret_file: B\n",
          "exactly one of 'secret_env' or 'secret_file'" },
        { "driver:\n  kind: webhook\n  port: 80\n  body: array\n  signature:\n    secret_file: /nonexistent/s\n",
          "adapter.yaml:6: cannot read the webhook secret file '/nonexistent/s'" },
        { "driver:\n  kind: webhook\n  port: 80\n  body: array\n  signature:\n    header: \"X Sig\"\n    secret_env: A\n",
          "adapter.yaml:6: 'header' must be" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(s_config(bad[i].yaml, &cfg, err, sizeof err), -1);
        if (!strstr(err, bad[i].error))
            fail_msg("case %zu: '%s' does not contain '%s'", i, err, bad[i].error);
    }
    setenv("CIVIBUS_TEST_WEBHOOK_SECRET", "court", 1);
    assert_int_equal(s_config("driver:\n  kind: webhook\n  port: 80\n  body: array\n  signature:\n"
                              "    secret_env: CIVIBUS_TEST_WEBHOOK_SECRET\n", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "shorter than 16 bytes"));
    assert_null(strstr(err, "court"));                                        /* never the secret */
}

static int s_setup(void **state)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int s_teardown(void **state)
{
    curl_global_cleanup();
    return 0;
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_rfc4231),
        cmocka_unit_test(test_signature_checks),
        cmocka_unit_test(test_body_object_mode),
        cmocka_unit_test(test_body_array_mode),
        cmocka_unit_test(test_http_refusals),
        cmocka_unit_test(test_http_answer_after_take),
        cmocka_unit_test(test_config),
    };
    return cv_test_end(cv_test_group(tests, s_setup, s_teardown));
}
