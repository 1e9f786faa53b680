/*  Unit tests of lib/cv_replyaddr: a signed reply address made, read back
    (any case, inside a display name), and refused when forged, edited,
    made with another key or malformed; the key file's checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_replyaddr.h"

static const unsigned char KEY[] = "a key of at least thirty-two bytes, for tests";
static const unsigned char KEY2[] = "another key of at least thirty-two bytes long";
#define K KEY, sizeof KEY - 1

static int s_read(const unsigned char *key, size_t keylen, const char *addr, char code[CV_REPLYADDR_CODE_MAX])
{
    return cv_replyaddr_read(key, keylen, addr, strlen(addr), code);
}

static void test_make_read(void **state)
{
    char addr[128], code[CV_REPLYADDR_CODE_MAX];
    assert_int_equal(cv_replyaddr_make(K, "mairie@ville-exemple.fr", "7KQ2M9XH4TP", addr, sizeof addr), 0);
    assert_int_equal(strncmp(addr, "mairie+7KQ2M9XH4TP-", 19), 0);
    assert_string_equal(addr + 19 + CV_REPLYADDR_SIG_LEN, "@ville-exemple.fr");
    assert_int_equal(s_read(K, addr, code), 0);
    assert_string_equal(code, "7KQ2M9XH4TP");

    /* mail clients lower-case, quote a display name, add spaces */
    char text[256];
    for (char *p = addr; *p; p++)
        *p = (char) tolower((unsigned char) *p);
    snprintf(text, sizeof text, "\"Mairie de Ville-Exemple\" < %s >", addr);
    assert_int_equal(s_read(K, text, code), 0);
    assert_string_equal(code, "7KQ2M9XH4TP");

    /* the same code always makes the same address; another code another signature */
    char a1[128], a2[128];
    assert_int_equal(cv_replyaddr_make(K, "mairie@ville.fr", "7KQ2M9XH4TP", a1, sizeof a1), 0);
    assert_int_equal(cv_replyaddr_make(K, "mairie@ville.fr", "7KQ2M9XH4TQ", a2, sizeof a2), 0);
    assert_string_not_equal(a1 + 19, a2 + 19);
}

static void test_forged(void **state)
{
    char addr[128], code[CV_REPLYADDR_CODE_MAX] = "";
    assert_int_equal(cv_replyaddr_make(K, "mairie@ville.fr", "7KQ2M9XH4TP", addr, sizeof addr), 0);
    assert_int_equal(s_read(KEY2, sizeof KEY2 - 1, addr, code), -1);          /* another city's key */

    char edited[128];                                  /* someone else's code, our signature */
    snprintf(edited, sizeof edited, "%s", addr);
    edited[7] = edited[7] == '7' ? '8' : '7';
    assert_int_equal(s_read(K, edited, code), -1);
    snprintf(edited, sizeof edited, "%s", addr);       /* one signature character changed */
    char *sig = edited + 19;
    sig[0] = sig[0] == 'a' ? 'b' : 'a';
    assert_int_equal(s_read(K, edited, code), -1);
    assert_string_equal(code, "");                      /* nothing written on failure */

    const char *bad[] = { "mairie@ville.fr", "mairie+@ville.fr", "mairie+7KQ2M9XH4TP@ville.fr",
                          "mairie+7KQ2M9XH4TP-@ville.fr", "mairie+7KQ2M9XH4TP-abcdefghij", "<mairie+x-abcdefghij@v",
                          "mairie+7K Q2M9XH4TP-abcdefghij@ville.fr", "mairie+../etc-abcdefghij@ville.fr",
                          "mairie+7KQ2M9XH4TP-abcdefghijk@ville.fr", "", "+-@" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(s_read(K, bad[i], code), -1);
    assert_int_equal(cv_replyaddr_read(K, NULL, 0, code), -1);

    /* a huge header is read within its first 512 bytes only */
    size_t n = 100000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    assert_int_equal(s_read(K, big, code), -1);
    free(big);
}

static void test_make_refuses(void **state)
{
    char addr[128];
    assert_int_equal(cv_replyaddr_make(KEY, 10, "mairie@ville.fr", "7KQ2M9XH4TP", addr, sizeof addr), -1);
    assert_int_equal(cv_replyaddr_make(K, "mairie+x@ville.fr", "7KQ2M9XH4TP", addr, sizeof addr), -1);
    assert_int_equal(cv_replyaddr_make(K, "mairie", "7KQ2M9XH4TP", addr, sizeof addr), -1);
    assert_int_equal(cv_replyaddr_make(K, "mai rie@ville.fr", "7KQ2M9XH4TP", addr, sizeof addr), -1);
    assert_int_equal(cv_replyaddr_make(K, "mairie@ville.fr", "7kq2", addr, sizeof addr), -1);
    assert_int_equal(cv_replyaddr_make(K, "mairie@ville.fr", "7KQ2M9XH4TP", addr, 20), -1);
}

static void test_key_file(void **state)
{
    char dir[] = "/tmp/test_replyaddr.XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/key", dir);
    unsigned char key[128];
    size_t len = 0;
    assert_int_equal(cv_replyaddr_key_load(path, key, sizeof key, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot read"));
    FILE *f = fopen(path, "w");
    fputs("0123456789abcdef0123456789abcdef0123\n", f);
    fclose(f);
    chmod(path, 0644);
    assert_int_equal(cv_replyaddr_key_load(path, key, sizeof key, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "chmod 600"));
    chmod(path, 0600);
    assert_int_equal(cv_replyaddr_key_load(path, key, sizeof key, &len, err, sizeof err), 0);
    assert_int_equal(len, 36);                          /* the newline is not part of it */
    f = fopen(path, "w");
    fputs("short\n", f);
    fclose(f);
    assert_int_equal(cv_replyaddr_key_load(path, key, sizeof key, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "at least 32"));
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_read),
        cmocka_unit_test(test_forged),
        cmocka_unit_test(test_make_refuses),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
