/*  test_model — the C tables agree with schemas/v2/event.schema.json, and
    cv_model_validate accepts the example event and refuses each kind of
    bad event, naming the field and never echoing its value.
    Runs from the repository root (the schema is read from there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cv_test.h"
#include <jansson.h>

#include "map/cv_model.h"

static json_t *s_load(const char *path)
{
    json_error_t je;
    json_t *v = json_load_file(path, 0, &je);
    if (!v)
        fail_msg("%s:%d: %s", path, je.line, je.text);
    return v;
}

/* The schema's list equals the C list, in the same order. */
static void s_same_list(const json_t *array, const char *const *list)
{
    assert_true(json_is_array(array));
    size_t n = 0;
    while (list[n])
        n++;
    assert_int_equal(json_array_size(array), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(array, i)), list[i]);
}

static void test_schema_matches_tables(void **state)
{
    json_t *schema = s_load("schemas/v2/event.schema.json");
    json_t *props = json_object_get(schema, "properties");
    s_same_list(json_object_get(json_object_get(props, "status"), "enum"), cv_model_statuses);
    s_same_list(json_object_get(json_object_get(props, "channel"), "enum"), cv_model_channels);
    s_same_list(json_object_get(schema, "required"), cv_model_required);
    json_t *versions = json_object_get(json_object_get(props, "schema_version"), "enum");
    assert_int_equal(json_integer_value(json_array_get(versions, json_array_size(versions) - 1)),
                     CV_MODEL_SCHEMA_VERSION);
    json_t *outcome = json_object_get(json_object_get(props, "outcome"), "properties");
    s_same_list(json_object_get(json_object_get(outcome, "code"), "enum"), cv_model_outcomes);
    assert_true(json_is_false(json_object_get(schema, "additionalProperties")));
    /* every property of the example is in the schema, and the reverse */
    json_t *example = s_load("schemas/v2/example-event.json");
    assert_int_equal(json_object_size(example), json_object_size(props));
    const char *key;
    json_t *value;
    json_object_foreach(example, key, value)
        if (!json_object_get(props, key))
            fail_msg("example field '%s' is not in the schema", key);
    json_decref(example);
    json_decref(schema);
}

static void test_enum_checks(void **state)
{
    for (size_t i = 0; cv_model_statuses[i]; i++)
        assert_true(cv_model_status_valid(cv_model_statuses[i]));
    for (size_t i = 0; cv_model_channels[i]; i++)
        assert_true(cv_model_channel_valid(cv_model_channels[i]));
    assert_false(cv_model_status_valid("done"));
    assert_false(cv_model_status_valid("Received"));
    assert_false(cv_model_status_valid(""));
    assert_false(cv_model_status_valid(NULL));
    assert_false(cv_model_channel_valid("fax"));
    assert_false(cv_model_channel_valid("received"));
    assert_false(cv_model_status_valid("guichet"));
}

static void test_date_formats(void **state)
{
    assert_true(cv_model_utc_valid("2024-03-04T09:00:00Z"));
    assert_true(cv_model_utc_valid("2024-02-29T23:59:59Z"));
    assert_false(cv_model_utc_valid("2023-02-29T10:00:00Z"));
    assert_false(cv_model_utc_valid("2024-03-04T09:00:00+01:00"));
    assert_false(cv_model_utc_valid("2024-03-04 09:00:00Z"));
    assert_false(cv_model_utc_valid("2024-03-04T24:00:00Z"));
    assert_false(cv_model_utc_valid("0024-03-04T09:00:00Z"));
    assert_false(cv_model_utc_valid("2024-03-04"));
    assert_true(cv_model_date_valid("1971-05-12"));
    assert_false(cv_model_date_valid("12/05/1971"));
    assert_false(cv_model_date_valid("1971-04-31"));
    assert_false(cv_model_date_valid("1971-05-12T00:00:00Z"));
}

static json_t *s_example(void)
{
    return s_load("schemas/v2/example-event.json");
}

/* Validation fails, detail names `field` and does not contain `secret`. */
static void s_refused(json_t *event, const char *field, const char *secret)
{
    char detail[256] = "";
    assert_int_equal(cv_model_validate(event, detail, sizeof detail), -1);
    if (!strstr(detail, field))
        fail_msg("detail '%s' does not name '%s'", detail, field);
    if (secret && strstr(detail, secret))
        fail_msg("detail '%s' leaks the value", detail);
    json_decref(event);
}

static void test_example_is_valid(void **state)
{
    json_t *e = s_example();
    char detail[256] = "x";
    assert_int_equal(cv_model_validate(e, detail, sizeof detail), 0);
    assert_string_equal(detail, "");
    /* optional fields may be null or absent */
    json_object_set_new(e, "due_at", json_null());
    json_object_set_new(e, "citizen", json_null());
    json_object_del(e, "summary");
    json_object_del(e, "extra");
    assert_int_equal(cv_model_validate(e, detail, sizeof detail), 0);
    json_decref(e);
}

static void test_required_fields(void **state)
{
    for (size_t i = 0; cv_model_required[i]; i++) {
        json_t *e = s_example();
        json_object_del(e, cv_model_required[i]);
        s_refused(e, cv_model_required[i], NULL);
        e = s_example();
        json_object_set_new(e, cv_model_required[i], json_null());
        s_refused(e, cv_model_required[i], NULL);
    }
}

static void s_set(json_t *e, const char *path, json_t *value)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot;
    json_t *obj = e;
    char *key = buf;
    while ((dot = strchr(key, '.'))) {
        *dot = '\0';
        obj = json_object_get(obj, key);
        key = dot + 1;
    }
    json_object_set_new(obj, key, value);
}

static void s_refused_with(const char *path, json_t *value, const char *secret)
{
    json_t *e = s_example();
    s_set(e, path, value);
    s_refused(e, path, secret);
}

static char *s_repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_bad_values(void **state)
{
    s_refused_with("status", json_string("done-SECRET"), "SECRET");
    s_refused_with("channel", json_string("fax"), "fax");
    s_refused_with("occurred_at", json_string("2024-03-04T10:00:00+01:00"), "+01:00");
    s_refused_with("occurred_at", json_string("2024-02-30T10:00:00Z"), NULL);
    s_refused_with("due_at", json_string("04/05/2024"), "04/05");
    s_refused_with("citizen.birth_date", json_string("12/05/1971"), "1971");
    s_refused_with("citizen.birth_date", json_string("1971-02-29"), "1971");
    s_refused_with("schema_version", json_integer(3), NULL);
    s_refused_with("schema_version", json_integer(0), NULL);
    s_refused_with("requested_at", json_string("2024-03-04 10:00"), "10:00");
    s_refused_with("location.lat", json_real(91.5), NULL);
    s_refused_with("location.lon", json_string("2.35"), "2.35");
    s_refused_with("location.address", json_string(""), NULL);
    s_refused_with("location.floor", json_string("3"), NULL);
    s_refused_with("location", json_string("12 rue SECRET"), "SECRET");
    s_refused_with("outcome", json_pack("{s:s}", "reason", "no code"), NULL);
    s_refused_with("outcome", json_pack("{s:s}", "code", "fini-SECRET"), "SECRET");
    s_refused_with("outcome", json_pack("{s:s, s:s}", "code", "duplicate", "reason", "a\nb"), NULL);
    s_refused_with("schema_version", json_string("1"), NULL);
    s_refused_with("source", json_string("Urba Nisme"), "Urba");
    s_refused_with("service", json_integer(3), NULL);
    s_refused_with("event_id", json_string(""), NULL);
    s_refused_with("event_id", json_string("PC-1\nSECRET"), "SECRET");
    s_refused_with("category", json_string("a\tb"), NULL);
    s_refused_with("citizen.family_name", json_stringn("DUP\0SECRET", 10), "SECRET");
    s_refused_with("citizen.address.city", json_string(""), NULL);
    s_refused_with("citizen.address", json_string("12 rue SECRET"), "SECRET");
    s_refused_with("citizen", json_array(), NULL);
    s_refused_with("extra", json_string("x"), NULL);
}

/* Version 2's fields: optional, nested, and version 1 events still pass. */
static void test_version_2_fields(void **state)
{
    json_t *e = s_example();
    char detail[256];
    json_object_set_new(e, "outcome", json_pack("{s:s, s:s, s:s}", "code", "duplicate", "reason", "doublon",
                                                  "related_ref", "PC 075 123 24 00002"));
    json_object_set_new(e, "channel", json_string("interne"));
    assert_int_equal(cv_model_validate(e, detail, sizeof detail), 0);
    json_object_set_new(json_object_get(e, "location"), "lat", json_integer(-90));
    assert_int_equal(cv_model_validate(e, detail, sizeof detail), 0);
    json_object_set_new(e, "schema_version", json_integer(1));
    json_object_del(e, "requested_at");
    json_object_del(e, "location");
    json_object_del(e, "outcome");
    assert_int_equal(cv_model_validate(e, detail, sizeof detail), 0);
    json_decref(e);
    for (size_t i = 0; cv_model_outcomes[i]; i++)
        assert_true(cv_model_outcome_valid(cv_model_outcomes[i]));
    assert_false(cv_model_outcome_valid("resolved"));
    assert_true(cv_model_channel_valid("api"));
}

static void test_unknown_fields(void **state)
{
    s_refused_with("tracking_code", json_string("ABCD-1234"), "ABCD");
    s_refused_with("citizen.nir", json_string("1710575123456"), "17105");
    s_refused_with("citizen.address.floor", json_string("3"), NULL);
    char detail[64];
    assert_int_equal(cv_model_validate(json_null(), detail, sizeof detail), -1);
    assert_non_null(strstr(detail, "object"));
}

/* Bounds are inclusive, in bytes. */
static void s_bound(const char *path, size_t max, char c)
{
    char *ok = s_repeat(c, max), *over = s_repeat(c, max + 1);
    json_t *e = s_example();
    s_set(e, path, json_string(ok));
    char detail[256];
    if (cv_model_validate(e, detail, sizeof detail) != 0)
        fail_msg("%s of %zu bytes refused: %s", path, max, detail);
    json_decref(e);
    s_refused_with(path, json_string(over), NULL);
    free(ok);
    free(over);
}

static void test_length_bounds(void **state)
{
    s_bound("event_id", CV_MODEL_ID_MAX, 'e');
    s_bound("source_record_id", CV_MODEL_ID_MAX, 'r');
    s_bound("request_ref", CV_MODEL_ID_MAX, 'q');
    s_bound("service", CV_MODEL_LABEL_MAX, 's');
    s_bound("kind", CV_MODEL_LABEL_MAX, 'k');
    s_bound("summary", CV_MODEL_SUMMARY_MAX, 'm');
    s_bound("citizen.email", CV_MODEL_LABEL_MAX, 'x');
    s_bound("citizen.address.line1", CV_MODEL_LABEL_MAX, 'l');
    s_bound("source", CV_MODEL_SOURCE_MAX, 'a');
    /* bytes, not characters: 101 two-byte characters are over 200 */
    json_t *e = s_example();
    char name[256] = "";
    for (int i = 0; i < 101; i++)
        strcat(name, "\xc3\x89");  /* É */
    s_set(e, "citizen.family_name", json_string(name));
    s_refused(e, "citizen.family_name", "\xc3\x89");
}

static void test_extra_bounds(void **state)
{
    json_t *deep = json_object(), *at = deep;
    for (int i = 0; i < CV_MODEL_EXTRA_MAX_DEPTH + 2; i++) {
        json_t *child = json_object();
        json_object_set_new(at, "d", child);
        at = child;
    }
    s_refused_with("extra", deep, NULL);
    json_t *wide = json_array();
    for (int i = 0; i < CV_MODEL_EXTRA_MAX_NODES + 1; i++)
        json_array_append_new(wide, json_integer(i));
    json_t *extra = json_object();
    json_object_set_new(extra, "list", wide);
    s_refused_with("extra", extra, NULL);
    extra = json_object();
    json_object_set_new(extra, "note", json_stringn("a\0SECRET", 8));
    s_refused_with("extra", extra, "SECRET");
    /* French text and nested values are fine */
    json_t *e = s_example();
    extra = json_pack("{s:s, s:[i, {s:b}]}", "remarque", "Cœur d’Île — « été »", "liste", 1, "ok", 1);
    json_object_set_new(e, "extra", extra);
    char detail[256];
    assert_int_equal(cv_model_validate(e, detail, sizeof detail), 0);
    json_decref(e);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_matches_tables),
        cmocka_unit_test(test_enum_checks),
        cmocka_unit_test(test_date_formats),
        cmocka_unit_test(test_example_is_valid),
        cmocka_unit_test(test_required_fields),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_version_2_fields),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_length_bounds),
        cmocka_unit_test(test_extra_bounds),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
