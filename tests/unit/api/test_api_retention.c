/*  test_api_retention — deploy/retention.yaml read into cv_retention_run's
    rules: the shipped file loads; days go where the SQL looks for them
    (default_days, services.S.days, services.S.categories.C, audit_days and
    dead_letters_days with their defaults); unknown keys,
    out-of-range days, a service with nothing and a missing default are
    refused with their line. */
#include "api_retention.h"

#include "cv_test.h"

#include <string.h>

static json_t *s_parse(const char *text, char *err, size_t errlen)
{
    return cv_api_retention_parse("r.yaml", text, strlen(text), err, errlen);
}

static void test_rules(void **state)
{
    char err[512];
    json_t *r = s_parse("default_days: 1095\nservices:\n  dechets:\n    days: 730\n    categories:\n"
                        "      encombrants: 365\n  urbanisme:\n    days: 3650\n", err, sizeof err);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "default_days")), 1095);
    json_t *d = json_object_get(json_object_get(r, "services"), "dechets");
    assert_int_equal(json_integer_value(json_object_get(d, "days")), 730);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "categories"), "encombrants")), 365);
    json_t *u = json_object_get(json_object_get(r, "services"), "urbanisme");
    assert_int_equal(json_integer_value(json_object_get(u, "days")), 3650);
    assert_null(json_object_get(u, "categories"));
    json_decref(r);
    r = s_parse("default_days: 10\n", err, sizeof err);
    assert_non_null(r);
    assert_int_equal(json_object_size(json_object_get(r, "services")), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "audit_days")), 365);       /* defaults */
    assert_int_equal(json_integer_value(json_object_get(r, "dead_letters_days")), 90);
    json_decref(r);
    r = s_parse("default_days: 10\naudit_days: 180\ndead_letters_days: 30\n", err, sizeof err);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "audit_days")), 180);
    assert_int_equal(json_integer_value(json_object_get(r, "dead_letters_days")), 30);
    json_decref(r);
}

static void test_shipped_file(void **state)
{
    char err[512];
    json_t *r = cv_api_retention_load("deploy/retention.yaml", err, sizeof err);
    if (!r)
        fail_msg("deploy/retention.yaml: %s", err);
    assert_true(json_integer_value(json_object_get(r, "default_days")) >= 1);
    json_decref(r);
}

static void test_refused(void **state)
{
    static const struct { const char *text, *want; } bad[] = {
        { "services: {}\n", "r.yaml:1" },                                        /* no default */
        { "default_days: 0\n", "default_days" },                                  /* out of range */
        { "default_days: 36501\n", "default_days" },
        { "default_days: 10\nkeep: 3\n", "unknown key 'keep'" },
        { "default_days: 10\nservices:\n  dechets:\n    dayz: 3\n", "r.yaml:4" },
        { "default_days: 10\nservices:\n  dechets: {}\n", "give days or categories" },
        { "default_days: 10\nservices:\n  dechets:\n    categories:\n      x: -1\n", "r.yaml:5" },
        { "default_days: 10\nservices:\n  dechets:\n    categories: [a]\n", "r.yaml:4" },
        { "- 1\n", "r.yaml:1" },
        { "default_days: 10\naudit_days: 0\n", "audit_days" },
        { "default_days: 10\ndead_letters_days: x\n", "r.yaml:2" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[512] = "";
        json_t *r = s_parse(bad[i].text, err, sizeof err);
        if (r)
            fail_msg("accepted: %s", bad[i].text);
        if (!strstr(err, bad[i].want))
            fail_msg("%s: '%s' does not say '%s'", bad[i].text, err, bad[i].want);
    }
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_shipped_file),
        cmocka_unit_test(test_refused),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
