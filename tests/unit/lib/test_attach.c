/*  Unit tests of lib/cv_attach: types by content, size cap, content
    addressing (the same bytes stored once, 0600 in a 0700 folder), paths
    refused for anything but a SHA-256. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_attach.h"

static void test_sniff(void **state)
{
    assert_string_equal(cv_attach_sniff("%PDF-1.7\n", 9), "application/pdf");
    assert_string_equal(cv_attach_sniff("\xff\xd8\xff\xe0", 4), "image/jpeg");
    assert_string_equal(cv_attach_sniff("\x89PNG\r\n\x1a\n", 8), "image/png");
    assert_null(cv_attach_sniff("%PDF", 4));                         /* too short */
    assert_null(cv_attach_sniff("MZ\x90\x00", 4));                   /* an .exe named scan.pdf */
    assert_null(cv_attach_sniff("<html>%PDF-1.7", 14));              /* the magic must come first */
    assert_null(cv_attach_sniff("", 0));
}

static void test_put(void **state)
{
    char dir[] = "/tmp/test_attach.XXXXXX", store[64], err[256], path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(store, sizeof store, "%s/pj", dir);
    const char pdf[] = "%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n";
    cv_attach_info_t a, b;
    assert_int_equal(cv_attach_put(store, pdf, sizeof pdf - 1, 1 << 20, &a, err, sizeof err), 0);
    assert_string_equal(a.mime, "application/pdf");
    assert_int_equal(a.size, sizeof pdf - 1);
    assert_true(cv_attach_sha_ok(a.sha256));
    assert_int_equal(cv_attach_path(store, a.sha256, path, sizeof path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t) (sizeof pdf - 1));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(store, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* the same bytes again: the same name, stored once */
    assert_int_equal(cv_attach_put(store, pdf, sizeof pdf - 1, 1 << 20, &b, err, sizeof err), 0);
    assert_string_equal(a.sha256, b.sha256);

    /* refused, with a reason and nothing written */
    assert_int_equal(cv_attach_put(store, "MZ\x90\x00....", 8, 1 << 20, &b, err, sizeof err), -1);
    assert_string_equal(err, "not a PDF, JPEG or PNG file");
    assert_int_equal(cv_attach_put(store, pdf, sizeof pdf - 1, 10, &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "larger than 10 bytes"));
    assert_int_equal(cv_attach_put(store, pdf, 0, 10, &b, err, sizeof err), -1);

    /* names that are not a SHA-256 never become a path */
    assert_int_equal(cv_attach_path(store, "../../etc/passwd", path, sizeof path), -1);
    assert_int_equal(cv_attach_path(store, "ABCDEF", path, sizeof path), -1);
    char upper[65];
    snprintf(upper, sizeof upper, "%s", a.sha256);
    upper[0] = 'A';
    assert_false(cv_attach_sha_ok(upper));

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A folder shared with its group (the package's 2770): files 0640 and
   sub-folders 02770 whatever the umask; others never; a folder open to
   others is not treated as shared. */
static void test_put_shared(void **state)
{
    char dir[] = "/tmp/test_attach.XXXXXX", store[64], err[256], path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(store, sizeof store, "%s/pj", dir);
    assert_int_equal(mkdir(store, 0700), 0);
    assert_int_equal(chmod(store, 02770), 0);
    mode_t old = umask(0077);                 /* the units' UMask: must not decide */
    const char png[] = "\x89PNG\r\n\x1a\n....";
    cv_attach_info_t a;
    assert_int_equal(cv_attach_put(store, png, sizeof png - 1, 1 << 20, &a, err, sizeof err), 0);
    assert_int_equal(cv_attach_path(store, a.sha256, path, sizeof path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/%.2s", store, a.sha256);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 07777, 02770);

    /* open to others: not shared, files stay 0600 */
    assert_int_equal(chmod(store, 0775), 0);
    const char pdf[] = "%PDF-1.4\nother\n";
    assert_int_equal(cv_attach_put(store, pdf, sizeof pdf - 1, 1 << 20, &a, err, sizeof err), 0);
    assert_int_equal(cv_attach_path(store, a.sha256, path, sizeof path), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    umask(old);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_put_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
