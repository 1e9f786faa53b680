/*  Unit tests of lib/cv_proto: commands, numbers, ACK ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"
#include <string.h>

#include "cv_proto.h"

static void test_commands(void **state)
{
    assert_int_equal(cv_proto_cmd("HELLO", 5), CV_CMD_HELLO);
    assert_int_equal(cv_proto_cmd("EVENT", 5), CV_CMD_EVENT);
    assert_int_equal(cv_proto_cmd("EVEN", 4), CV_CMD_INVALID);
    assert_int_equal(cv_proto_cmd("EVENTS", 6), CV_CMD_INVALID);
    assert_int_equal(cv_proto_cmd("hello", 5), CV_CMD_INVALID);
    assert_string_equal(cv_proto_cmd_name(CV_CMD_NACK), "NACK");
    /* the outbound-command messages are commands like the others */
    assert_int_equal(cv_proto_cmd("RESULT", 6), CV_CMD_RESULT);
    assert_int_equal(cv_proto_cmd("RESULT_ACK", 10), CV_CMD_RESULT_ACK);
    assert_int_equal(cv_proto_cmd("RESULT_NACK", 11), CV_CMD_RESULT_NACK);
    assert_int_equal(cv_proto_cmd("COMMAND", 7), CV_CMD_COMMAND);
    assert_int_equal(cv_proto_cmd("RESULT_", 7), CV_CMD_INVALID);
    assert_string_equal(cv_proto_cmd_name(CV_CMD_RESULT_NACK), "RESULT_NACK");
    assert_string_equal(cv_proto_cmd_name(CV_CMD_LAST + 1), "INVALID");
}

static void test_numbers(void **state)
{
    uint64_t v;
    assert_int_equal(cv_proto_parse_u64("42", 2, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(cv_proto_parse_u64("18446744073709551615", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(cv_proto_parse_u64("18446744073709551616", 20, &v), -1);
    assert_int_equal(cv_proto_parse_u64("-1", 2, &v), -1);
    assert_int_equal(cv_proto_parse_u64("", 0, &v), -1);
    assert_int_equal(cv_proto_parse_u64("1 ", 2, &v), -1);
}

static void test_session_ids(void **state)
{
    assert_true(cv_proto_is_session_id("0123456789abcdef0123456789ABCDEF", 32));
    assert_false(cv_proto_is_session_id("0123456789abcdef0123456789abcde", 31));
    assert_false(cv_proto_is_session_id("0123456789abcdef0123456789abcdef0", 33));
    assert_false(cv_proto_is_session_id("0123456789abcdef0123456789abcdeg", 32));
    assert_false(cv_proto_is_session_id("0123456789abcdef0123456789ABCDEG", 32));
    assert_false(cv_proto_is_session_id("0123456789abcdef0123456789abcde/", 32));
    assert_false(cv_proto_is_session_id("0123456789abcdef0123456789abcde:", 32));
    assert_false(cv_proto_is_session_id("0123456789abcdef\0" "123456789abcdef", 32));
    assert_false(cv_proto_is_session_id("0123456789abcdef 123456789abcdef", 32));
    assert_false(cv_proto_is_session_id(NULL, 32));
    assert_false(cv_proto_is_session_id("", 0));
}

static void test_rangeset_format(void **state)
{
    cv_rangeset_t s;
    cv_rangeset_init(&s);
    uint64_t seqs[] = { 1, 2, 3, 5, 9, 8, 7, 4, 20, 6 };
    for (size_t i = 0; i < sizeof seqs / sizeof *seqs; i++)
        assert_int_equal(cv_rangeset_add(&s, seqs[i]), 0);
    char buf[64];
    assert_int_equal(cv_rangeset_format(&s, 0, buf, sizeof buf), 2);
    assert_string_equal(buf, "1-9,20");
    cv_rangeset_clear(&s);
    for (uint64_t i = 1; i <= 100; i += 2)
        cv_rangeset_add(&s, i);
    assert_int_equal(s.n, 50);
    size_t k = cv_rangeset_format(&s, 0, buf, 16);  /* "1,3,5,7,9,11,13" = 15 chars */
    assert_int_equal(k, 7);
    assert_string_equal(buf, "1,3,5,7,9,11,13");
    k = cv_rangeset_format(&s, 7, buf, 16);
    assert_string_equal(buf, "15,17,19,21,23");
    cv_rangeset_free(&s);
}

typedef struct { uint64_t total; size_t calls; } acc_t;
static void s_acc(uint64_t lo, uint64_t hi, void *arg)
{
    acc_t *a = arg;
    a->total += hi - lo + 1;
    a->calls++;
}

static void test_ranges_parse(void **state)
{
    acc_t a = { 0, 0 };
    assert_int_equal(cv_rangeset_parse("1-200,202,204-250", 17, s_acc, &a), 0);
    assert_int_equal(a.total, 200 + 1 + 47);
    assert_int_equal(a.calls, 3);
    const char *bad[] = { "", ",", "1,", "5-3", "1-3,2", "a", "1--2", "3,3", "1-" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        acc_t b = { 0, 0 };
        assert_int_equal(cv_rangeset_parse(bad[i], strlen(bad[i]), s_acc, &b), -1);
    }
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_session_ids),
        cmocka_unit_test(test_rangeset_format),
        cmocka_unit_test(test_ranges_parse),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
