/*  test_imap — the imap driver's parts without a server:
      - the MIME reader: RFC 2047 (B, Q, adjacent words), charsets (UTF-8,
        ISO-8859-1, ISO-8859-15, Windows-1252, unknown), quoted-printable
        soft breaks, base64, multipart/alternative preferring text/plain,
        HTML reduced to text, attachments counted not read, dates to UTC,
        the sender's address, automatic mails and their reasons;
      - the `driver:` section: defaults, plain IMAP refused off loopback,
        file:line errors. (tests/it/imap_intake.sh drives the real thing.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/imap/cv_imap.h"

static json_t *s_mail(const char *raw)
{
    json_t *r = cv_imap_mime_record(raw, strlen(raw), NULL);
    assert_non_null(r);
    return r;
}

static const char *s_get(json_t *r, const char *key)
{
    return json_string_value(json_object_get(r, key));
}

static void test_headers(void **state)
{
    char *s = cv_imap_mime_decode_header("=?ISO-8859-1?Q?Trottoir_ab=EEm=E9?=", 35);
    assert_string_equal(s, "Trottoir abîmé");
    free(s);
    const char *two = "=?UTF-8?B?w4ljbGFpcmFnZQ==?= =?UTF-8?B?IHB1YmxpYw==?= en panne";
    s = cv_imap_mime_decode_header(two, strlen(two));
    assert_string_equal(s, "Éclairage public en panne");      /* blank between words dropped */
    free(s);
    s = cv_imap_mime_decode_header("=?windows-1252?Q?Facture_=80?=", 30);
    assert_string_equal(s, "Facture €");
    free(s);
    s = cv_imap_mime_decode_header("=?broken", 8);
    assert_string_equal(s, "=?broken");
    free(s);
    bool unknown = false;
    s = cv_imap_mime_to_utf8("iso-8859-15", "\xA4", 1, &unknown);
    assert_string_equal(s, "€");
    assert_false(unknown);
    free(s);
    s = cv_imap_mime_to_utf8("x-klingon", "caf\xE9", 4, &unknown);
    assert_string_equal(s, "café");                            /* not UTF-8: read as Windows-1252 */
    assert_true(unknown);
    free(s);
    s = cv_imap_mime_to_utf8("utf-8", "a\xFF" "b", 3, NULL);
    assert_string_equal(s, "a\xEF\xBF\xBD" "b");
    free(s);
    char iso[21];
    assert_true(cv_imap_mime_date("Mon, 7 Dec 2026 10:05:00 +0100 (CET)", iso));
    assert_string_equal(iso, "2026-12-07T09:05:00Z");
    assert_true(cv_imap_mime_date("7 Dec 26 23:30 -0500", iso));
    assert_string_equal(iso, "2026-12-08T04:30:00Z");
    assert_false(cv_imap_mime_date("hier soir", iso));
}

static void test_bodies(void **state)
{
    json_t *r = s_mail("From: \"Jeanne =?ISO-8859-1?Q?H=E9l=E8ne?=\" <Jeanne@Exemple.FR>\r\n"
                       "Subject: Test\r\nDate: Mon, 07 Dec 2026 10:05:00 +0100\r\nMessage-ID: <a@b>\r\n"
                       "Content-Type: text/plain; charset=ISO-8859-1\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                       "Le trottoir est ab=EEm=E9 =\r\ndevant l=27=E9cole.\r\n");
    assert_string_equal(s_get(r, "from"), "Jeanne@exemple.fr");
    assert_string_equal(s_get(r, "from_name"), "Jeanne Hélène");
    assert_string_equal(s_get(r, "body"), "Le trottoir est abîmé devant l'école.");
    assert_string_equal(s_get(r, "date"), "2026-12-07T09:05:00Z");
    assert_int_equal(strlen(s_get(r, "message_id_hash")), 64);
    assert_false(json_is_true(json_object_get(r, "automatic")));
    assert_null(json_object_get(r, "problems"));
    json_decref(r);

    r = s_mail("From: a@b.fr\r\nContent-Type: multipart/alternative; boundary=\"x\"\r\n\r\n"
               "preamble\r\n--x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n"
               "--x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               "TGUgbGFtcGFkYWlyZSDDqXRlaW50Lg==\r\n--x--\r\n");
    assert_string_equal(s_get(r, "body"), "Le lampadaire éteint.");
    assert_false(json_is_true(json_object_get(r, "html_only")));
    json_decref(r);

    r = s_mail("From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n"
               "--y\r\nContent-Type: text/html; charset=windows-1252\r\n\r\n"
               "<html><head><title>t</title><style>p{}</style></head><body><p>Facture &eacute;&#8364;\x80</p>"
               "<!-- note --><script>alert(1)</script><p>ligne&nbsp;2</p></body></html>\r\n"
               "--y\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n"
               "JVBERi0=\r\n--y--\r\n");
    assert_string_equal(s_get(r, "body"), "Facture é€€\nligne 2");
    assert_true(json_is_true(json_object_get(r, "html_only")));
    assert_int_equal(json_integer_value(json_object_get(r, "attachments")), 1);
    json_decref(r);

    r = s_mail("garbage without headers");
    assert_non_null(json_object_get(r, "problems"));
    json_decref(r);
}

static void test_automatic(void **state)
{
    static const struct { const char *headers, *reason; } cases[] = {
        { "Auto-Submitted: auto-replied\r\n", "auto-submitted" },
        { "Auto-Submitted: no\r\n", NULL },
        { "Precedence: bulk\r\n", "precedence" },
        { "Precedence: list\r\n", "precedence" },
        { "X-Loop: mairie\r\n", "x-loop" },
        { "Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n", "delivery-report" },
        { "Subject: =?utf-8?Q?R=C3=A9ponse_automatique?= : absent\r\n", "subject" },
        { "Subject: Out of Office\r\n", "subject" },
        { "Return-Path: <>\r\n", "null-sender" },
        { "Subject: une vraie demande\r\n", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char raw[512];
        snprintf(raw, sizeof raw, "From: a@b.fr\r\n%s\r\nbody\r\n", cases[i].headers);
        json_t *r = s_mail(raw);
        assert_int_equal(json_is_true(json_object_get(r, "automatic")), cases[i].reason != NULL);
        if (cases[i].reason)
            assert_string_equal(s_get(r, "automatic_reason"), cases[i].reason);
        json_decref(r);
    }
    json_t *r = s_mail("From: MAILER-DAEMON@civibus.test\r\n\r\nx\r\n");
    assert_string_equal(s_get(r, "automatic_reason"), "mailer-daemon");
    json_decref(r);
}

static int s_config(const char *yaml, cv_imap_config_t **out, char *err, size_t errlen)
{
    char yerr[256];
    cv_yaml_doc_t *doc = cv_yaml_parse("adapter.yaml", yaml, strlen(yaml), yerr, sizeof yerr);
    assert_non_null(doc);
    cv_driver_ctx_t ctx = { doc, cv_yaml_get(doc->root, "driver"), "/tmp", "courriel", NULL };
    *out = cv_imap_config_new(&ctx, err, errlen);
    cv_yaml_destroy(&doc);
    return *out ? 0 : -1;
}

static void test_config(void **state)
{
    char path[] = "/tmp/test_imap_pw.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret\n", 7), 7);
    close(fd);
    char yaml[1024], err[512];
    cv_imap_config_t *c;
    snprintf(yaml, sizeof yaml, "driver:\n  kind: imap\n  source: courriel\n  url: imaps://imap.example.fr\n"
             "  user: accueil\n  password_file: %s\n", path);
    assert_int_equal(s_config(yaml, &c, err, sizeof err), 0);
    assert_string_equal(c->password, "s3cret");
    assert_string_equal(c->mailbox, "INBOX");
    assert_string_equal(c->flag, "\\Seen");
    assert_null(c->done_folder);
    assert_int_equal(c->poll_ms, 5000);
    assert_string_equal(c->url_for_logs, "imaps://imap.example.fr");
    cv_imap_config_destroy(&c);

    snprintf(yaml, sizeof yaml, "driver:\n  kind: imap\n  url: imap://127.0.0.1:1143\n  user: u\n"
             "  password_file: %s\n  done_folder: Traite\n", path);
    assert_int_equal(s_config(yaml, &c, err, sizeof err), 0);
    assert_null(c->flag);
    assert_string_equal(c->done_folder, "Traite");
    cv_imap_config_destroy(&c);

    static const struct { const char *extra, *error; } bad[] = {
        { "  url: imap://imap.example.fr\n", "adapter.yaml:3: 'url' is plain imap://" },
        { "  url: https://imap.example.fr\n", "adapter.yaml:3: 'url' must start with imaps://" },
        { "  url: imaps://u:p@imap.example.fr\n", "must not hold a user name" },
        { "  url: imaps://imap.example.fr/INBOX\n", "the folder is 'mailbox'" },
        { "  url: imaps://h\n  flag: \\Deleted\n", "'flag' must be" },
        { "  url: imaps://h\n  flag: $Civibus\n  done_folder: X\n", "not both" },
        { "  url: imaps://h\n  mailbox: \"A B\"\n", "plain IMAP name" },
        { "  url: imaps://h\n  poll_ms: 1\n", "poll_ms" },
        { "  url: imaps://h\n  pol_ms: 100\n", "unknown key 'pol_ms'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(yaml, sizeof yaml, "driver:\n  kind: imap\n%s  user: u\n  password_file: %s\n", bad[i].extra, path);
        assert_int_equal(s_config(yaml, &c, err, sizeof err), -1);
        if (!strstr(err, bad[i].error))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].error);
        assert_null(strstr(err, "s3cret"));
    }
    snprintf(yaml, sizeof yaml, "driver:\n  kind: imap\n  url: imaps://h\n  user: u\n  password_file: /nonexistent\n");
    assert_int_equal(s_config(yaml, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot read 'password_file'"));
    unlink(path);
    assert_true(cv_imap_config_loopback("127.0.0.5"));
    assert_true(cv_imap_config_loopback("localhost"));
    assert_false(cv_imap_config_loopback("128.0.0.1"));
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_automatic),
        cmocka_unit_test(test_config),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
