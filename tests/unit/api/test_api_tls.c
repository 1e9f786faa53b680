/*  test_api_tls — the configuration of civibus-api's TLS, listening
    address and databases (api_config.c, api_tls.c): plain HTTP only on a
    loopback address unless listen.insecure_http; the tls block's keys and
    file errors as file:line; postgres.read_dsn, max_replica_lag_s and
    health_timeout_ms with their defaults and ranges. Certificates
    themselves (a chain, a mismatched key, a key open to others, TLS
    versions) are made with openssl and served in tests/it/tls.sh. */
#include "api_config.h"
#include "api_tls.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cv_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_config_fixture.h"

static void test_loopback(void **state)
{
    assert_true(cv_api_tls_loopback("127.0.0.1"));
    assert_true(cv_api_tls_loopback("127.1.2.3"));
    assert_false(cv_api_tls_loopback("0.0.0.0"));
    assert_false(cv_api_tls_loopback("10.0.0.1"));
    assert_false(cv_api_tls_loopback("128.0.0.1"));
    assert_false(cv_api_tls_loopback("localhost"));
    assert_false(cv_api_tls_loopback(NULL));
    assert_true(cv_api_tls_supported());        /* Debian's libmicrohttpd has GnuTLS */
}

static void test_listen(void **state)
{
    char err[512];
    cv_api_config_t *cfg = s_config("postgres:\n  conninfo: x\n", err, sizeof err);
    assert_non_null(cfg);
    assert_false(cfg->insecure_http);
    assert_null(cfg->tls_cert);
    assert_string_equal(cfg->cookie_secure, "auto");      /* without TLS: unchanged */
    cv_api_config_destroy(&cfg);
    s_config_error("postgres:\n  conninfo: x\nlisten:\n  address: 0.0.0.0\n",
            ":4: 'address': plain HTTP only on loopback; give tls: or set listen.insecure_http: true");
    s_config_error("postgres:\n  conninfo: x\nlisten:\n  address: 192.0.2.10\n  insecure_http: false\n", ":4:");
    s_config_error("postgres:\n  conninfo: x\nlisten:\n  insecure_http: maybe\n", ":4:");
    cfg = s_config("postgres:\n  conninfo: x\nlisten:\n  address: 0.0.0.0\n  insecure_http: true\n", err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    assert_true(cfg->insecure_http);
    cv_api_config_destroy(&cfg);
}

static void test_tls_block(void **state)
{
    s_config_error("postgres:\n  conninfo: x\ntls:\n  certificate: /nonexistent/c.pem\n  key: k.pem\n",
            ":4: 'certificate': cannot read /nonexistent/c.pem");
    s_config_error("postgres:\n  conninfo: x\ntls:\n  key: k.pem\n", "missing required key 'certificate'");
    s_config_error("postgres:\n  conninfo: x\ntls:\n  certificate: c.pem\n  chain: x.pem\n", "unknown key 'chain'");
    s_config_error("postgres:\n  conninfo: x\ntls: yes\n", ":3:");
    /* a file that is not PEM, then a key missing */
    char dir[] = "/tmp/test_api_tls_d.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[256], conf[1024];
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    FILE *f = fopen(cert, "w");
    assert_non_null(f);
    fputs("hello\n", f);
    fclose(f);
    snprintf(conf, sizeof conf, "postgres:\n  conninfo: x\ntls:\n  certificate: %s\n  key: %s/k.pem\n", cert, dir);
    s_config_error(conf, ":4: 'certificate': ");
    s_config_error(conf, "holds no PEM certificate");
    f = fopen(cert, "w");
    fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    s_config_error(conf, ":5: 'key': cannot read");
    unlink(cert);
    rmdir(dir);
}

static void test_replica_keys(void **state)
{
    char err[512];
    cv_api_config_t *cfg = s_config("postgres:\n  conninfo: x\n", err, sizeof err);
    assert_non_null(cfg);
    assert_null(cfg->read_dsn);
    assert_int_equal(cfg->max_replica_lag_s, 30);
    assert_int_equal(cfg->health_timeout_ms, 1000);
    cv_api_config_destroy(&cfg);
    cfg = s_config("postgres:\n  conninfo: x\n  read_dsn: \"host=replica dbname=civibus\"\n  max_replica_lag_s: 5\n"
                   "  health_timeout_ms: 500\n", err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    assert_string_equal(cfg->read_dsn, "host=replica dbname=civibus");
    assert_int_equal(cfg->max_replica_lag_s, 5);
    assert_int_equal(cfg->health_timeout_ms, 500);
    cv_api_config_destroy(&cfg);
    s_config_error("postgres:\n  conninfo: x\n  read_dsn: \"\"\n", ":3: 'read_dsn'");
    s_config_error("postgres:\n  conninfo: x\n  max_replica_lag_s: 0\n", ":3:");
    s_config_error("postgres:\n  conninfo: x\n  max_replica_lag_s: 601\n", ":3:");   /* past the watcher's ring */
    s_config_error("postgres:\n  conninfo: x\n  health_timeout_ms: 50\n", ":3:");
    s_config_error("postgres:\n  conninfo: x\n  replica: y\n", "unknown key 'replica'");
}

/* /metrics: loopback, and the networks of http.metrics_from */
static void test_metrics_from(void **state)
{
    char err[512];
    cv_api_config_t *cfg = s_config("postgres:\n  conninfo: x\n", err, sizeof err);
    assert_non_null(cfg);
    assert_true(cv_api_config_metrics_allowed(cfg, "127.0.0.1"));
    assert_true(cv_api_config_metrics_allowed(cfg, "::1"));
    assert_false(cv_api_config_metrics_allowed(cfg, "192.0.2.1"));
    assert_false(cv_api_config_metrics_allowed(cfg, "::2"));
    assert_false(cv_api_config_metrics_allowed(cfg, ""));
    cv_api_config_destroy(&cfg);
    cfg = s_config("postgres:\n  conninfo: x\nhttp:\n  metrics_from: [10.1.0.0/16, 2001:db8::/32]\n", err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    assert_true(cv_api_config_metrics_allowed(cfg, "10.1.200.3"));
    assert_false(cv_api_config_metrics_allowed(cfg, "10.2.0.1"));
    assert_true(cv_api_config_metrics_allowed(cfg, "2001:db8::5"));
    assert_false(cv_api_config_metrics_allowed(cfg, "2001:db9::5"));
    cv_api_config_destroy(&cfg);
    s_config_error("postgres:\n  conninfo: x\nhttp:\n  metrics_from: [prometheus.local]\n", ":4: 'metrics_from'");
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_tls_block),
        cmocka_unit_test(test_replica_keys),
        cmocka_unit_test(test_metrics_from),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
