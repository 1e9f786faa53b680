/*  test_api_limits — the API's limits that need no server: the token
    bucket (no burst across a minute boundary, steady refill, frequent hits
    keep their refill), trusted proxies and X-Forwarded-For (right-most
    untrusted address; a spoofed left part is never taken), address and
    network parsing, and the configuration of the limits (ranges, the
    Open311 public lists, file:line errors). The server's side of the same
    limits runs over real sockets in tests/it/api_hardening.sh. */
#include "api_config.h"
#include "api_conn.h"
#include "api_ratelimit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cv_test.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_config_fixture.h"

/* The outsider's burst: 10 a minute, 10 hits just before a minute
   boundary and 10 just after. A counter reset on the minute let all 20
   through within 1.5 s; the bucket lets the first 10 and nothing more
   until tokens come back (one each 6 s). */
static void test_bucket_boundary(void **state)
{
    cv_api_ratelimit_t *rl = cv_api_ratelimit_new(10, 60);
    unsigned char ip[4] = { 192, 0, 2, 1 };
    int64_t t0 = 59 * 60000 + 59000;           /* 1 s before a minute boundary */
    int passed = 0;
    for (int i = 0; i < 10; i++)
        passed += cv_api_ratelimit_hit(rl, ip, 4, t0 + i * 50);
    for (int i = 0; i < 10; i++)
        passed += cv_api_ratelimit_hit(rl, ip, 4, t0 + 1000 + i * 50);   /* after the boundary */
    assert_int_equal(passed, 10);
    /* one token per 6 s comes back */
    assert_false(cv_api_ratelimit_hit(rl, ip, 4, t0 + 5000));
    assert_true(cv_api_ratelimit_hit(rl, ip, 4, t0 + 6100));
    assert_false(cv_api_ratelimit_hit(rl, ip, 4, t0 + 6200));
    /* hits every 100 ms do not stop the refill (each adds 1/60 of a token) */
    int more = 0;
    for (int64_t t = t0 + 6300; t <= t0 + 6300 + 12000; t += 100)
        more += cv_api_ratelimit_hit(rl, ip, 4, t);
    assert_in_range(more, 1, 3);
    /* over any minute: at most 10 + 10 (the bucket and one minute of refill) */
    cv_api_ratelimit_destroy(&rl);
    rl = cv_api_ratelimit_new(10, 60);
    passed = 0;
    for (int64_t t = 0; t < 60000; t += 200)
        passed += cv_api_ratelimit_hit(rl, ip, 4, 1000000 + t);
    assert_in_range(passed, 10, 20);
    cv_api_ratelimit_destroy(&rl);
}


static void test_net_parse(void **state)
{
    cv_api_net_t n;
    assert_true(cv_api_config_net_parse("10.0.0.0/8", &n));
    assert_int_equal(n.prefix, 8);
    assert_true(cv_api_config_net_parse("2001:db8::1", &n));
    assert_int_equal(n.prefix, 128);
    assert_false(cv_api_config_net_parse("10.0.0.0/33", &n));
    assert_false(cv_api_config_net_parse("10.0.0.0/", &n));
    assert_false(cv_api_config_net_parse("10.0.0.0/8x", &n));
    assert_false(cv_api_config_net_parse("proxy.local", &n));
    assert_false(cv_api_config_net_parse("", &n));
}

static void test_forwarded(void **state)
{
    char err[512];
    cv_api_config_t *cfg = s_config("postgres:\n  conninfo: x\nhttp:\n  trusted_proxies: [127.0.0.1, 10.1.0.0/16]\n",
                                    err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    unsigned char a[16];
    int family;
    char text[64];
    /* the client wrote "6.6.6.6" itself; the city's proxies appended the rest */
    assert_true(cv_api_conn_forwarded(cfg, "6.6.6.6, 203.0.113.7, 10.1.2.3", &family, a));
    assert_int_equal(family, AF_INET);
    inet_ntop(AF_INET, a, text, sizeof text);
    assert_string_equal(text, "203.0.113.7");
    assert_true(cv_api_conn_forwarded(cfg, "2001:db8::5", &family, a));
    assert_int_equal(family, AF_INET6);
    assert_false(cv_api_conn_forwarded(cfg, "127.0.0.1, 10.1.9.9", &family, a));   /* all proxies */
    assert_false(cv_api_conn_forwarded(cfg, "203.0.113.7, garbage", &family, a));  /* broken chain */
    assert_false(cv_api_conn_forwarded(cfg, "", &family, a));
    assert_false(cv_api_conn_forwarded(cfg, NULL, &family, a));
    unsigned char lo[4] = { 127, 0, 0, 1 }, other[4] = { 127, 0, 0, 2 }, net[4] = { 10, 1, 200, 1 };
    assert_true(cv_api_config_trusted(cfg, AF_INET, lo));
    assert_false(cv_api_config_trusted(cfg, AF_INET, other));
    assert_true(cv_api_config_trusted(cfg, AF_INET, net));
    cv_api_config_destroy(&cfg);
}

static void test_limits_config(void **state)
{
    char err[512];
    cv_api_config_t *cfg = s_config("postgres:\n  conninfo: x\n", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cfg->max_url_bytes, 4096);
    assert_int_equal(cfg->max_params, 32);
    assert_int_equal(cfg->header_timeout_s, 10);
    assert_int_equal(cfg->per_address_connections, 16);
    assert_int_equal(cfg->ntrusted, 0);
    assert_int_equal(cfg->no311_public, 0);
    cv_api_config_destroy(&cfg);
    cfg = s_config("postgres:\n  conninfo: x\nopen311:\n  public_categories: [nid_de_poule, tag]\n"
                   "  public_details: [tag]\n", err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    assert_true(cv_api_config_listed(cfg->o311_public, cfg->no311_public, "tag"));
    assert_false(cv_api_config_listed(cfg->o311_details, cfg->no311_details, "nid_de_poule"));
    assert_false(cv_api_config_listed(cfg->o311_public, cfg->no311_public, NULL));
    cv_api_config_destroy(&cfg);
    s_config_error("postgres:\n  conninfo: x\nhttp:\n  max_params: 0\n", ":4:");
    s_config_error("postgres:\n  conninfo: x\nhttp:\n  header_timeout_s: -1\n", ":4:");
    s_config_error("postgres:\n  conninfo: x\nhttp:\n  trusted_proxies:\n    - 127.0.0.1\n    - proxy.local\n", ":6:");
    s_config_error("postgres:\n  conninfo: x\nhttp:\n  trusted_proxies: 127.0.0.1\n", ":4:");
    s_config_error("postgres:\n  conninfo: x\nopen311:\n  public_categories: [a]\n  public_details: [b]\n",
                   "'b' is not in public_categories");
    s_config_error("postgres:\n  conninfo: x\nopen311:\n  public: [a]\n", "unknown key 'public'");
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_boundary),
        cmocka_unit_test(test_net_parse),
        cmocka_unit_test(test_forwarded),
        cmocka_unit_test(test_limits_config),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
