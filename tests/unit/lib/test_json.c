/*  Unit tests of lib/cv_json and lib/cv_hash: the text must be exactly
    what jansson's json_dumps(COMPACT | ENCODE_ANY [| SORT_KEYS]) writes,
    and the canonical hash must be taken over it: every stored content hash
    was (a different byte would turn each re-sent event into an id_reused
    dead letter). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_hash.h"
#include "cv_json.h"

/* The reference: the canonical text as jansson writes it, then hashed. */
static void s_reference(const json_t *v, char out[CV_HASH_HEX_LEN + 1])
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    assert_non_null(text);
    cv_hash_bytes(text, strlen(text), out);
    free(text);
}

/* cv_json_to_buf gives json_dumps's bytes, sorted or not. */
static void s_check_text(const json_t *v)
{
    for (int sorted = 0; sorted < 2; sorted++) {
        char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | (sorted ? JSON_SORT_KEYS : 0));
        assert_non_null(want);
        cv_buf_t b = { 0 };
        assert_int_equal(cv_json_to_buf(v, sorted, &b), 0);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
        cv_buf_free(&b);
        free(want);
    }
}

static void s_check(const char *json)
{
    json_error_t err;
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v)
        fail_msg("bad test JSON %s: %s", json, err.text);
    char want[CV_HASH_HEX_LEN + 1], got[CV_HASH_HEX_LEN + 1];
    s_reference(v, want);
    assert_int_equal(cv_hash_json(v, got), 0);
    if (strcmp(want, got) != 0)
        fail_msg("hash differs from json_dumps for %s", json);
    s_check_text(v);
    json_decref(v);
}

static void test_same_as_json_dumps(void **state)
{
    static const char *const cases[] = {
        "{}", "[]", "\"\"", "null", "true", "false", "0", "-1", "9223372036854775807",
        "-9223372036854775808", "1.5", "-0.0", "1e300", "3.141592653589793", "0.1",
        "{\"b\":1,\"a\":2,\"ab\":3,\"A\":4,\"\":5,\"a b\":6}",
        "{\"z\":{\"y\":[1,{\"d\":null,\"c\":true}],\"x\":\"\"},\"é\":\"è\",\"e\":\"€\"}",
        "\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r bs \\b ff \\f\"",
        "\"controls \\u0001 \\u001f \\u007f \\u0000 end\"",
        "\"DUPONT Jean-Pierre, 3 rue de l’Église — « bis » œuvre 😀\"",
        "{\"nom\":\"DUPONT\",\"prénom\":\"Jean\\u00a0Pierre\",\"tél\":\"06 12 34 56 78\","
        "\"adresse\":{\"voie\":\"12, avenue Foch\",\"cp\":\"75016\"},\"pièces\":[\"CNI\",\"justificatif\"],"
        "\"montant\":12.5,\"n\":42,\"ok\":false,\"rien\":null}",
        "[[[[[[[[[[\"deep\"]]]]]]]]]]",
        "{\"ab\":1,\"a\":2,\"a\\u0001\":3,\"a\\u007f\":4,\"aé\":5}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_check(cases[i]);
}

/* Objects wider than the walker's on-stack key array, and strings longer
   than its 4 KiB buffer. */
static void test_large_values(void **state)
{
    json_t *o = json_object();
    for (int i = 0; i < 300; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%03d", (i * 7919) % 300);
        json_object_set_new(o, key, json_integer(i));
    }
    static const char piece[] = "abc\"\\\n\x01é";   /* 9 bytes, valid UTF-8 */
    char *big = malloc(2000 * (sizeof piece - 1) + 1);
    for (int i = 0; i < 2000; i++)
        memcpy(big + i * (sizeof piece - 1), piece, sizeof piece);
    json_object_set_new(o, "big", json_string_nocheck(big));
    char want[CV_HASH_HEX_LEN + 1], got[CV_HASH_HEX_LEN + 1];
    s_reference(o, want);
    assert_int_equal(cv_hash_json(o, got), 0);
    assert_string_equal(want, got);
    s_check_text(o);
    free(big);
    json_decref(o);
}

/* Key order and spacing do not matter; content does. */
static void test_canonical(void **state)
{
    json_t *a = json_loads("{\"x\": 1, \"y\": [1, 2]}", 0, NULL);
    json_t *b = json_loads("{\"y\":[1,2],\"x\":1}", 0, NULL);
    json_t *c = json_loads("{\"y\":[2,1],\"x\":1}", 0, NULL);
    char ha[CV_HASH_HEX_LEN + 1], hb[CV_HASH_HEX_LEN + 1], hc[CV_HASH_HEX_LEN + 1];
    assert_int_equal(cv_hash_json(a, ha), 0);
    assert_int_equal(cv_hash_json(b, hb), 0);
    assert_int_equal(cv_hash_json(c, hc), 0);
    assert_string_equal(ha, hb);
    assert_string_not_equal(ha, hc);
    assert_int_equal(strlen(ha), CV_HASH_HEX_LEN);
    assert_int_equal(cv_hash_json(NULL, ha), -1);
    cv_buf_t small = { .limit = 4 };                 /* a full buffer is an error */
    assert_int_equal(cv_json_to_buf(a, false, &small), -1);
    cv_buf_free(&small);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_json_dumps),
        cmocka_unit_test(test_large_values),
        cmocka_unit_test(test_canonical),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
