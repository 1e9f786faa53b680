/*  Unit tests of lib/cv_buf (the growable buffer) and lib/cv_text (blank
    trimming with the no-break spaces of French exports). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <stdlib.h>
#include <string.h>

#include "cv_buf.h"
#include "cv_text.h"

static void test_grow_and_terminate(void **state)
{
    cv_buf_t b = { 0 };
    assert_int_equal(cv_buf_addstr(&b, ""), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    char chunk[100];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 100; i++)
        assert_int_equal(cv_buf_add(&b, chunk, sizeof chunk), 0);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(cv_buf_add(&b, "a\0b", 3), 0);     /* NULs are data */
    assert_int_equal(b.len, 10003);
    cv_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    cv_buf_free(&b);
    assert_null(b.data);
}

static void test_limit(void **state)
{
    cv_buf_t b = { .limit = 5 };
    assert_int_equal(cv_buf_addstr(&b, "abc"), 0);
    assert_false(b.failed);
    assert_int_equal(cv_buf_addstr(&b, "def"), -1);      /* 6 > 5: nothing appended */
    assert_true(b.failed);
    assert_string_equal(b.data, "abc");
    assert_int_equal(cv_buf_addstr(&b, "de"), 0);        /* exactly the limit */
    assert_string_equal(b.data, "abcde");
    assert_true(b.failed);                               /* stays set until a reset */
    cv_buf_reset(&b);
    assert_false(b.failed);
    assert_int_equal(b.limit, 5);
    cv_buf_free(&b);
}

static void test_take(void **state)
{
    cv_buf_t b = { .secret = true };
    char *empty = cv_buf_take(&b);
    assert_non_null(empty);
    assert_string_equal(empty, "");
    free(empty);
    for (int i = 0; i < 50; i++)                         /* grows several times */
        assert_int_equal(cv_buf_addstr(&b, "s3cr3t-"), 0);
    char *text = cv_buf_take(&b);
    assert_int_equal(strlen(text), 350);
    assert_memory_equal(text, "s3cr3t-s3cr3t-", 14);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_true(b.secret);
    free(text);
}

static void s_trimmed(const char *in, const char *expected)
{
    const char *p = in;
    size_t n = strlen(in);
    cv_text_trim(&p, &n);
    assert_int_equal(n, strlen(expected));
    assert_memory_equal(p, expected, n);
}

static void test_trim(void **state)
{
    s_trimmed("  Dupont\t", "Dupont");
    s_trimmed("\xC2\xA0" "12\xE2\x80\xAF" "500 \xE2\x82\xAC\xC2\xA0", "12\xE2\x80\xAF" "500 \xE2\x82\xAC");
    s_trimmed("\xE2\x80\xAF\r\n", "");
    s_trimmed("", "");
    s_trimmed("\xC3\xA9t\xC3\xA9", "\xC3\xA9t\xC3\xA9");     /* été: no blank, bytes kept */
    assert_int_equal(cv_text_blank("\xC2", 1, true), 0);     /* a cut sequence is not a blank */
}

/* libpq's connection error on one line: the cause on a later line kept */
static void test_one_line(void **state)
{
    char out[128];
    assert_string_equal(cv_text_one_line("connection to server at \"localhost\" (::1), port 5 failed: refused\n"
                                         "connection to server at \"localhost\" (127.0.0.1), port 5 failed: "
                                         "certificate verify failed\n", out, sizeof out),
                        "connection to server at \"localhost\" (::1), port 5 failed: refused; connection to server at "
                        "\"localhost\" (127.0.0.1), port 5 fail");                              /* bounded */
    assert_int_equal(strlen(out), sizeof out - 1);
    assert_string_equal(cv_text_one_line("a\r\n\nb\n\n", out, sizeof out), "a; b");
    assert_string_equal(cv_text_one_line("", out, sizeof out), "");
    assert_string_equal(cv_text_one_line(NULL, out, sizeof out), "");
    assert_string_equal(cv_text_one_line("abc\ndef", out, 5), "abc");     /* no half "; " */
}

static void test_duration(void **state)
{
    char out[16];
    cv_text_duration(out, sizeof out, 247.4);
    assert_string_equal(out, "4m07s");
    cv_text_duration(out, sizeof out, 2 * 3600 + 13 * 60 + 50);
    assert_string_equal(out, "2h13m");
    cv_text_duration(out, sizeof out, -1);
    assert_string_equal(out, "0m00s");
    cv_text_duration(out, sizeof out, 1e12);                /* an ETA from a rate of almost 0 */
    assert_string_equal(out, "0m00s");
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_and_terminate),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_one_line),
        cmocka_unit_test(test_duration),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
