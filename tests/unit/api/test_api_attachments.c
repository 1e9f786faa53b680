/*  test_api_attachments — what api_attachments.c decides without a server
    (docs/attachments.md): the reading of a registration's "attachments"
    (strict base64, the caps, the type by content, the refusal naming the
    index and never a value, the list taken out of the body), the cleaning
    of names (paths, control and bidirectional characters, 255 bytes on a
    character boundary), the Content-Disposition of a download, the body
    cap (larger only for POST /v1/requests with a bearer token) and the
    attachments.* configuration keys. The HTTP side is
    tests/it/attachments.sh. */
#include "api_attachments.h"
#include "api_config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cv_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static cv_api_config_t s_cfg = { .max_body_bytes = 65536, .attach_max_bytes = 16, .attach_max_files = 2,
                                  .attach_max_total = 24, .attach_body_bytes = 200000 };

/* reads body (JSON text); returns the rc, why in `why` */
static int s_read(const char *text, cv_api_attachments_t *out, char *why, size_t whylen)
{
    json_t *body = json_loads(text, 0, NULL);
    assert_non_null(body);
    int rc = cv_api_attachments_read(body, &s_cfg, out, why, whylen);
    assert_null(json_object_get(body, "attachments"));          /* always taken out */
    json_decref(body);
    return rc;
}

static void s_refused(const char *text, const char *expect)
{
    cv_api_attachments_t a;
    char why[256] = "";
    if (s_read(text, &a, why, sizeof why) == 0)
        fail_msg("accepted: %s", text);
    if (!strstr(why, expect))
        fail_msg("expected '%s' in '%s' for %s", expect, why, text);
    assert_int_equal(a.n, 0);
    assert_null(strstr(why, "JVBER"));                        /* never a value */
    assert_null(strstr(why, "secret"));
}

static void test_read(void **state)
{
    cv_api_attachments_t a;
    char why[256];
    /* "%PDF-1.4" and a PNG signature + 1 byte */
    assert_int_equal(s_read("{\"attachments\": [{\"name\": \"../a.pdf\", \"content_base64\": \"JVBERi0xLjQ=\"},"
                            " {\"content_base64\": \"iVBORw0KGgoA\"}]}", &a, why, sizeof why), 0);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.items[0].len, 8);
    assert_memory_equal(a.items[0].data, "%PDF-1.4", 8);
    assert_string_equal(a.items[0].mime, "application/pdf");
    assert_string_equal(a.items[0].name, "a.pdf");
    assert_string_equal(a.items[1].mime, "image/png");
    assert_null(a.items[1].name);
    cv_api_attachments_free(&a);
    /* absent, null, empty: none */
    assert_int_equal(s_read("{}", &a, why, sizeof why), 0);
    assert_int_equal(a.n, 0);
    assert_int_equal(s_read("{\"attachments\": null}", &a, why, sizeof why), 0);
    assert_int_equal(s_read("{\"attachments\": []}", &a, why, sizeof why), 0);
    assert_int_equal(a.n, 0);
}

static void test_refusals(void **state)
{
    s_refused("{\"attachments\": {\"content_base64\": \"JVBERi0x\"}}", "attachments is a list");
    s_refused("{\"attachments\": [1]}", "attachments[0] is an object");
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBERi0x\"}, {\"content_base64\": \"JVBERi0x\"},"
              " {\"content_base64\": \"JVBERi0x\"}]}", "at most 2 files");
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBERi0x\", \"mime\": \"application/pdf\"}]}",
              "attachments[0]: unknown member");
    s_refused("{\"attachments\": [{\"name\": 3, \"content_base64\": \"JVBERi0x\"}]}", "attachments[0].name is a text");
    s_refused("{\"attachments\": [{\"name\": \"secret.pdf\"}]}", "attachments[0].content_base64 is required");
    s_refused("{\"attachments\": [{\"content_base64\": \"\"}]}", "content_base64 is required");
    /* strict base64: padding, line breaks, stray characters and bits, url alphabet */
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBERi0xLjQ\"}]}", "attachments[0].content_base64 is not base64");
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBE\\nRi0x\"}]}", "is not base64");
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBE Ri0x\"}]}", "is not base64");
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBERi0xLjR=\"}]}", "is not base64");   /* stray bits */
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBERi0x_-==\"}]}", "is not base64");
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBERi0x====\"}]}", "is not base64");
    /* the type by content: an .exe named .pdf; text; a truncated PNG signature */
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBERi0x\"}, {\"name\": \"scan.pdf\","
              " \"content_base64\": \"TVqQAAMAAAAEAAAA\"}]}", "attachments[1] is not a PDF, JPEG or PNG");
    s_refused("{\"attachments\": [{\"content_base64\": \"aGVsbG8=\"}]}", "not a PDF, JPEG or PNG");
    s_refused("{\"attachments\": [{\"content_base64\": \"iVBORw0K\"}]}", "not a PDF, JPEG or PNG");
    /* caps: one file (16 bytes), all of them (24) */
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBERi0xLjQKJeLjz9MKMTIzNA==\"}]}",
              "attachments[0] is larger than 16 bytes");
    s_refused("{\"attachments\": [{\"content_base64\": \"JVBERi0xLjQKJeLjz9MK\"},"
              " {\"content_base64\": \"JVBERi0xLjQKJeLjz9MK\"}]}", "more than 24 bytes in all (at attachments[1])");
}

static void test_names(void **state)
{
    static const struct { const char *in, *out; } cases[] = {
        { "scan.pdf", "scan.pdf" },
        { "../../etc/passwd", "passwd" },
        { "C:\\Users\\agent\\Courrier été.pdf", "Courrier été.pdf" },
        { "..", NULL },
        { "/", NULL },
        { "   ", NULL },
        { ".htaccess", "htaccess" },
        { " . .x.pdf  ", "x.pdf" },
        { "a\tb\nc\x7f" "d.pdf", "abcd.pdf" },
        { "facture\xe2\x80\xae" "fdp.exe", "facturefdp.exe" },          /* U+202E */
        { "x\xe2\x81\xa6y\xe2\x80\x8f" "z\xef\xbb\xbf", "xyz" },         /* U+2066, U+200F, U+FEFF */
        { "c1\xc2\x85" "x", "c1x" },                                     /* U+0085 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = cv_api_attachment_name_clean(cases[i].in);
        if (!cases[i].out ? got != NULL : !got || strcmp(got, cases[i].out) != 0)
            fail_msg("'%s' -> '%s', want '%s'", cases[i].in, got ? got : "(null)", cases[i].out ? cases[i].out : "(null)");
        free(got);
    }
    assert_null(cv_api_attachment_name_clean(NULL));
    /* 300 two-byte characters: cut at 254 bytes, never inside a character */
    char in[700] = "";
    for (int i = 0; i < 300; i++)
        strcat(in, "\xc3\xa9");
    char *got = cv_api_attachment_name_clean(in);
    assert_non_null(got);
    assert_int_equal(strlen(got), 254);
    free(got);
    memset(in, 'a', 300);
    in[300] = 0;
    got = cv_api_attachment_name_clean(in);
    assert_int_equal(strlen(got), 255);
    free(got);
}

static void test_disposition(void **state)
{
    const char *sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    char *d = cv_api_attachment_disposition("Courrier été \"1\".pdf", sha, "application/pdf");
    assert_string_equal(d, "attachment; filename=\"Courrier __t__ _1_.pdf\"; "
                           "filename*=UTF-8''Courrier%20%C3%A9t%C3%A9%20%221%22.pdf");
    free(d);
    d = cv_api_attachment_disposition("a;b\\c%d'e", sha, "image/png");
    assert_string_equal(d, "attachment; filename=\"a;b_c%d'e\"; filename*=UTF-8''a%3Bb%5Cc%25d%27e");
    free(d);
    d = cv_api_attachment_disposition(NULL, sha, "image/jpeg");
    assert_string_equal(d, "attachment; filename=\"9f86d081884c.jpg\"; filename*=UTF-8''9f86d081884c.jpg");
    free(d);
}

static void test_body_cap(void **state)
{
    assert_int_equal(cv_api_body_cap(&s_cfg, "POST", "/v1/requests", "Bearer x"), 200000);
    assert_int_equal(cv_api_body_cap(&s_cfg, "POST", "/v1/requests/", "bearer x"), 200000);
    assert_int_equal(cv_api_body_cap(&s_cfg, "POST", "/v1/requests", NULL), 65536);       /* no token */
    assert_int_equal(cv_api_body_cap(&s_cfg, "POST", "/v1/requests", "Basic eA=="), 65536);
    assert_int_equal(cv_api_body_cap(&s_cfg, "GET", "/v1/requests", "Bearer x"), 65536);
    assert_int_equal(cv_api_body_cap(&s_cfg, "POST", "/open311/v2/requests.json", "Bearer x"), 65536);
    assert_int_equal(cv_api_body_cap(&s_cfg, "POST", "/v1/citizens/1/merge", "Bearer x"), 65536);
    cv_api_config_t none = s_cfg;
    none.attach_max_files = 0;
    assert_int_equal(cv_api_body_cap(&none, "POST", "/v1/requests", "Bearer x"), 65536);
}

static cv_api_config_t *s_config(const char *dir, const char *text, char *err, size_t errlen)
{
    char path[512];
    snprintf(path, sizeof path, "%s/api.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return cv_api_config_load(path, err, errlen);
}

static void test_config(void **state)
{
    char dir[] = "/tmp/test_api_attachments.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[512] = "", want[600];
    cv_api_config_t *cfg = s_config(dir, "postgres:\n  conninfo: x\n", err, sizeof err);
    assert_non_null(cfg);
    snprintf(want, sizeof want, "%s/var/attachments", dir);
    assert_string_equal(cfg->attach_dir, want);                 /* beside the file */
    assert_int_equal(cfg->attach_max_bytes, 10 * 1024 * 1024);
    assert_int_equal(cfg->attach_max_files, 5);
    assert_int_equal(cfg->attach_max_total, 20 * 1024 * 1024);
    assert_int_equal(cfg->attach_body_bytes, 65536 + 4 * ((20 * 1024 * 1024 + 2) / 3) + 5 * 2048);
    cv_api_config_destroy(&cfg);
    cfg = s_config(dir, "postgres:\n  conninfo: x\nattachments:\n  dir: /srv/pj\n  max_files: 0\n", err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(cfg->attach_dir, "/srv/pj");
    assert_int_equal(cfg->attach_body_bytes, 65536);             /* no files: no larger cap */
    cv_api_config_destroy(&cfg);
    static const struct { const char *text, *expect; } bad[] = {
        { "attachments:\n  max_bytes: 100000000\n", ":4:" },
        { "attachments:\n  max_files: 21\n", ":4:" },
        { "attachments:\n  max_total_bytes: 60000000\n", ":4:" },
        { "attachments:\n  max_bytes: 2000000\n  max_total_bytes: 1000000\n", "less than max_bytes" },
        { "attachments:\n  folder: x\n", "unknown key 'folder'" },
        { "attachments:\n  dir: \"\"\n", "a folder is required" },
        { "attachments:\n  dir: api.yaml\n", "is not a folder" },
        { "attachments:\n  dir: open\n", "open to others (mode 755)" },
    };
    snprintf(want, sizeof want, "%s/open", dir);
    assert_int_equal(mkdir(want, 0700), 0);
    assert_int_equal(chmod(want, 0755), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "postgres:\n  conninfo: x\n%s", bad[i].text);
        err[0] = 0;
        cfg = s_config(dir, text, err, sizeof err);
        if (cfg)
            fail_msg("accepted: %s", bad[i].text);
        if (!strstr(err, bad[i].expect))
            fail_msg("expected '%s' in '%s'", bad[i].expect, err);
    }
    /* shared with a group (the package's 2770), never with others: accepted */
    assert_int_equal(chmod(want, 02770), 0);
    cfg = s_config(dir, "postgres:\n  conninfo: x\nattachments:\n  dir: open\n", err, sizeof err);
    if (!cfg)
        fail_msg("a 2770 folder refused: %s", err);
    cv_api_config_destroy(&cfg);
    rmdir(want);
    snprintf(want, sizeof want, "%s/api.yaml", dir);
    unlink(want);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_disposition),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_config),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
