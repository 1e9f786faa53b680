/*  test_api_access — the API's pure parts: the access table against
    docs/access.md (both must agree, field by field), the filter, UTF-8
    and tracking-code checks, JSON compaction, tokens, the rate limiter,
    config errors. (The timeline's writer: test_api_timeline.c.) */
#include "api_access.h"
#include "api_config.h"
#include "api_ratelimit.h"
#include "api_util.h"
#include "cv_hash.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cv_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif

/* docs/access.md's table rows: "| object | field | yes | no | yes | yes |". */
static void test_table_matches_doc(void **state)
{
    FILE *f = fopen(SRCDIR "/docs/access.md", "r");
    assert_non_null(f);
    char line[512];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        char obj[64], field[64], v[4][8];
        if (sscanf(line, "| %63[a-z_] | %63[a-z_] | %7[a-z] | %7[a-z] | %7[a-z] | %7[a-z] |",
                   obj, field, v[0], v[1], v[2], v[3]) != 6)
            continue;
        if (strcmp(obj, "object") == 0 || strcmp(obj, "action") == 0)
            continue;
        for (int k = 0; k < 4; k++) {
            bool doc = strcmp(v[k], "yes") == 0;
            if (doc != cv_api_field_allowed(obj, field, (cv_api_view_t) k))
                fail_msg("docs/access.md says %s.%s is %s for %s; the code disagrees", obj, field,
                         v[k], cv_api_view_name((cv_api_view_t) k));
        }
        rows++;
    }
    fclose(f);
    int entries = 0;
    const char *o, *fl;
    while (cv_api_access_entry(entries, &o, &fl))
        entries++;
    assert_int_equal(rows, entries);     /* every rule is documented, nothing more */
}

static void test_filter_views(void **state)
{
    cv_api_principal_t dech = { .token_id = 1, .role = CV_API_AGENT };
    strcpy(dech.service, "dechets");
    cv_api_principal_t sup = { .token_id = 2, .role = CV_API_SUPERVISOR };
    assert_int_equal(cv_api_view_for(&dech, "dechets"), CV_API_VIEW_OWN);
    assert_int_equal(cv_api_view_for(&dech, "voirie"), CV_API_VIEW_OTHER);
    assert_int_equal(cv_api_view_for(&dech, NULL), CV_API_VIEW_OTHER);
    assert_int_equal(cv_api_view_for(&sup, "voirie"), CV_API_VIEW_SUPERVISOR);

    json_t *r = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "id", 7, "service", "voirie",
                          "status", "received", "summary", "x", "tracking_code", "ACDEFHJKLM",
                          "unknown_field", "y");
    cv_api_filter(r, "request", cv_api_view_for(&dech, "voirie"));
    assert_non_null(json_object_get(r, "status"));
    assert_non_null(json_object_get(r, "id"));
    assert_null(json_object_get(r, "summary"));
    assert_null(json_object_get(r, "tracking_code"));
    assert_null(json_object_get(r, "unknown_field"));    /* unknown: never shown */
    json_decref(r);
    r = json_pack("{s:s, s:s}", "summary", "x", "unknown_field", "y");
    cv_api_filter(r, "request", CV_API_VIEW_SUPERVISOR);
    assert_non_null(json_object_get(r, "summary"));
    assert_null(json_object_get(r, "unknown_field"));
    json_decref(r);
    cv_api_role_t role;
    assert_true(cv_api_role_parse("supervisor", &role) && role == CV_API_SUPERVISOR);
    assert_false(cv_api_role_parse("citizen", &role));
    assert_false(cv_api_role_parse(NULL, &role));
}

static void test_json_compact(void **state)
{
    /* escapes and spaces inside strings are copied as they are */
    const char *in = "{\"a\" : \"x y \\\" z\\\\\", \"b\" : [1, \n 2,\t{}], \"c\" : \"\\u00e9 \\n\"}";
    char out[256];
    size_t n = cv_api_json_compact(out, in, strlen(in));
    assert_string_equal(out, "{\"a\":\"x y \\\" z\\\\\",\"b\":[1,2,{}],\"c\":\"\\u00e9 \\n\"}");
    assert_int_equal(n, strlen(out));
    json_t *a = json_loads(in, 0, NULL), *b = json_loads(out, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    /* PostgreSQL's json layout, compacted: the bytes jansson's JSON_COMPACT gives */
    in = "{\"id\" : 7, \"l\" : [{\"x\" : \"rue de l’Église, n°1\", \"y\" : null}, \n {\"x\" : \"\\t\", \"y\": true}]}";
    cv_api_json_compact(out, in, strlen(in));
    a = json_loads(in, 0, NULL);
    assert_non_null(a);
    char *dumped = json_dumps(a, JSON_COMPACT);
    assert_string_equal(dumped, out);
    free(dumped);
    json_decref(a);
}

static void test_utf8(void **state)
{
    assert_true(cv_api_utf8_valid("Église €𝄞", strlen("Église €𝄞"), true));
    assert_false(cv_api_utf8_valid("\xff", 1, false));
    assert_false(cv_api_utf8_valid("\xc0\xaf", 2, false));          /* overlong '/' */
    assert_false(cv_api_utf8_valid("\xed\xa0\x80", 3, false));      /* surrogate */
    assert_false(cv_api_utf8_valid("\xf4\x90\x80\x80", 4, false));  /* > U+10FFFF */
    assert_false(cv_api_utf8_valid("\xe2\x82", 2, false));          /* truncated */
    assert_false(cv_api_utf8_valid("a\0b", 3, false));               /* NUL */
    assert_false(cv_api_utf8_valid("a\x01", 2, true));               /* control in text */
    assert_true(cv_api_utf8_valid("a\tb\n", 4, true));
}

static void test_tracking_and_ints(void **state)
{
    char code[CV_API_CODE_MAX];
    assert_true(cv_api_tracking_code("acdefhjklm", code));
    assert_string_equal(code, "ACDEFHJKLM");
    assert_false(cv_api_tracking_code("ACDEFHJKLB", code));     /* B is not in the alphabet */
    assert_false(cv_api_tracking_code("ACDEFHJKL", code));
    assert_false(cv_api_tracking_code("' OR 1=1--", code));
    /* 11 characters: the last is a check (KXD7M4RT9C + V); every one wrong
       character and every two swapped ones are MISTYPED, before a lookup */
    assert_int_equal(cv_api_tracking_code_read("kxd7-m4rt-9cv", code), CV_API_CODE_OK);
    assert_string_equal(code, "KXD7M4RT9CV");
    static const char alphabet[] = "ACDEFHJKLMNPRTUVWXY34679";
    char typo[12];
    for (int i = 0; i < 11; i++) {
        for (int a = 0; a < 24; a++) {
            memcpy(typo, "KXD7M4RT9CV", 12);
            if (typo[i] == alphabet[a])
                continue;
            typo[i] = alphabet[a];
            assert_int_equal(cv_api_tracking_code_read(typo, code), CV_API_CODE_MISTYPED);
        }
        if (i < 10) {
            memcpy(typo, "KXD7M4RT9CV", 12);
            char t = typo[i];
            typo[i] = typo[i + 1];
            typo[i + 1] = t;
            if (typo[i] != typo[i + 1])
                assert_int_equal(cv_api_tracking_code_read(typo, code), CV_API_CODE_MISTYPED);
        }
    }
    assert_int_equal(cv_api_tracking_code_read("KXD7M4RT9CVA", code), CV_API_CODE_BAD);   /* 12 */
    assert_int_equal(cv_api_tracking_code_read("-KXD7M4RT9CV", code), CV_API_CODE_BAD);
    assert_int_equal(cv_api_tracking_code_read("KXD7M4RT9CV-", code), CV_API_CODE_BAD);
    int64_t v;
    assert_true(cv_api_parse_int("42", 1, 100, &v) && v == 42);
    assert_false(cv_api_parse_int("0", 1, 100, &v));
    assert_false(cv_api_parse_int("1 OR 1=1", 1, 100, &v));
    assert_false(cv_api_parse_int("99999999999999999999", 1, INT64_MAX, &v));
    assert_false(cv_api_parse_int("", 0, 1, &v));
}

static void test_tokens(void **state)
{
    char a[CV_API_TOKEN_HEX + 1], b[CV_API_TOKEN_HEX + 1], h[CV_API_TOKEN_HEX + 1], e[CV_API_TOKEN_HEX + 1];
    cv_api_token_new(a);
    cv_api_token_new(b);
    assert_int_equal(strlen(a), 64);
    assert_string_not_equal(a, b);
    assert_true(cv_api_token_hash(a, h));
    cv_hash_bytes(a, 64, e);
    assert_string_equal(h, e);
    assert_string_not_equal(h, a);
    assert_false(cv_api_token_hash("abc", h));
    a[3] = 'G';
    assert_false(cv_api_token_hash(a, h));
}

static void test_ratelimit(void **state)
{
    cv_api_ratelimit_t *rl = cv_api_ratelimit_new(3, 60);
    assert_non_null(rl);
    unsigned char ip1[4] = { 10, 0, 0, 1 }, ip2[4] = { 10, 0, 0, 2 };
    for (int i = 0; i < 3; i++)
        assert_true(cv_api_ratelimit_hit(rl, ip1, 4, 600000));
    assert_false(cv_api_ratelimit_hit(rl, ip1, 4, 610000));    /* 4th within 20 s (one token: 20 s) */
    assert_true(cv_api_ratelimit_hit(rl, ip2, 4, 610000));     /* another address */
    assert_true(cv_api_ratelimit_hit(rl, ip1, 4, 660000));     /* a minute later */
    cv_api_ratelimit_destroy(&rl);
    assert_null(rl);
}

static void s_config_error(const char *text, const char *expect)
{
    char path[] = "/tmp/test_api_cfg.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    char err[512] = "";
    cv_api_config_t *cfg = cv_api_config_load(path, err, sizeof err);
    unlink(path);
    if (!expect) {
        assert_non_null(cfg);
        cv_api_config_destroy(&cfg);
        assert_null(cfg);
        return;
    }
    assert_null(cfg);
    if (!strstr(err, expect))
        fail_msg("expected '%s' in '%s'", expect, err);
}

static void test_config(void **state)
{
    s_config_error("postgres:\n  conninfo: \"dbname=x\"\nhttp:\n  threads: 2\n", NULL);
    s_config_error("postgres:\n  conninfo: x\nhttp:\n  threads: 0\n", ":4:");
    s_config_error("postgres:\n  conninfo: x\nlisten:\n  prot: 80\n", ":4: unknown key 'prot'");
    s_config_error("listen:\n  port: 80\n", "postgres");
    s_config_error("postgres:\n  conninfo: x\nhttp:\n  max_body_bytes: 10\n", ":4:");
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_doc),
        cmocka_unit_test(test_filter_views),
        cmocka_unit_test(test_json_compact),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_tracking_and_ints),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_config),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
