/*  test_api_link — signed citizen links: a made link checks, any altered
    character, another key, an expired date or a malformed link does not. */
#include "api_link.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cv_test.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static void test_roundtrip(void **state)
{
    unsigned char key[CV_API_LINK_KEY], other[CV_API_LINK_KEY];
    randombytes_buf(key, sizeof key);
    randombytes_buf(other, sizeof other);
    char link[CV_API_LINK_MAX], id[33], got_id[33];
    cv_api_link_make(key, 42, 1000, link, id);
    int64_t cid = 0;
    assert_int_equal(cv_api_link_check(key, link, 999, &cid, got_id), 0);
    assert_int_equal(cid, 42);
    assert_string_equal(id, got_id);
    assert_int_equal(cv_api_link_check(key, link, 1000, &cid, got_id), -2);     /* expired */
    assert_int_equal(cv_api_link_check(other, link, 999, &cid, got_id), -1);    /* other key */
    /* every single altered character is refused */
    for (size_t i = 0; i < strlen(link); i++) {
        char bad[CV_API_LINK_MAX];
        strcpy(bad, link);
        bad[i] = bad[i] == '1' ? '2' : '1';
        if (cv_api_link_check(key, bad, 999, &cid, got_id) == 0)
            fail_msg("altered link accepted (position %zu)", i);
    }
    /* another citizen id with the same signature */
    char forged[CV_API_LINK_MAX];
    snprintf(forged, sizeof forged, "43%s", strchr(link, '.'));
    assert_int_equal(cv_api_link_check(key, forged, 999, &cid, got_id), -1);
    assert_int_equal(cv_api_link_check(key, "", 0, &cid, got_id), -1);
    assert_int_equal(cv_api_link_check(key, "1.2.3.4.5", 0, &cid, got_id), -1);
    assert_int_equal(cv_api_link_check(key, "../../etc/passwd", 0, &cid, got_id), -1);
    cv_api_link_make(key, 42, 1000, link, id);
    cv_api_link_make(key, 42, 1000, forged, got_id);
    assert_string_not_equal(id, got_id);                 /* fresh id each time */
}

static void test_key_file(void **state)
{
    char path[] = "/tmp/test_api_link.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    assert_int_equal(write(fd, hex, strlen(hex)), (ssize_t) strlen(hex));
    close(fd);
    unsigned char key[CV_API_LINK_KEY];
    char err[256];
    assert_int_equal(cv_api_link_key_load(path, key, err, sizeof err), 0);
    assert_int_equal(key[1], 0x11);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    assert_int_equal(cv_api_link_key_load(path, key, err, sizeof err), -1);
    assert_non_null(strstr(err, "64 hex digits"));
    unlink(path);
    assert_int_equal(cv_api_link_key_load(path, key, err, sizeof err), -1);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_key_file),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
