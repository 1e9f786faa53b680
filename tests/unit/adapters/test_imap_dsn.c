/*  test_imap_dsn — delivery status notifications read by the imap driver
    (adapters/drivers/imap/cv_imap_dsn.c, through cv_imap_mime_record):
      - a Postfix DSN as Postfix writes it (5.1.1 user unknown; the returned
        mail as message/rfc822 or its headers as text/rfc822-headers): the
        recipient, action, status, permanent, the returned Message-ID hash;
      - 5.2.2 (mailbox full) and 4.4.1 (delayed) are not permanent;
      - several recipients, more than CV_IMAP_DSN_MAX (capped, counted);
      - garbage: no fields, an address type other than rfc822, a CR inside a
        value, an address with blanks or two '@', a bad status, folded
        fields, a delivery-status part outside a report, base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_buf.h"
#include "drivers/imap/cv_imap.h"
#include "drivers/imap/cv_imap_dsn.h"

/* A Postfix bounce: `fields` is the delivery-status part's body, `returned`
   the third part's type ("message/rfc822" or "text/rfc822-headers"). */
static json_t *s_bounce(const char *fields, const char *returned)
{
    cv_buf_t b = { 0 };
    cv_buf_addstr(&b, "Return-Path: <>\r\n"
                      "From: MAILER-DAEMON@mail.civibus.test (Mail Delivery System)\r\n"
                      "Subject: Undelivered Mail Returned to Sender\r\n"
                      "To: mairie@civibus.test\r\n"
                      "Auto-Submitted: auto-replied\r\n"
                      "MIME-Version: 1.0\r\n"
                      "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                      "\tboundary=\"4C1D2E3F4A.1796605310/mail.civibus.test\"\r\n"
                      "Message-Id: <20261207090000.4C1D2E3F4A@mail.civibus.test>\r\n"
                      "Date: Mon,  7 Dec 2026 10:00:00 +0100 (CET)\r\n\r\n"
                      "This is a MIME-encapsulated message.\r\n\r\n"
                      "--4C1D2E3F4A.1796605310/mail.civibus.test\r\n"
                      "Content-Description: Notification\r\n"
                      "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                      "This is the mail system at host mail.civibus.test.\r\n\r\n"
                      "I'm sorry to have to inform you that your message could not\r\n"
                      "be delivered to one or more recipients.\r\n\r\n"
                      "--4C1D2E3F4A.1796605310/mail.civibus.test\r\n"
                      "Content-Description: Delivery report\r\n"
                      "Content-Type: message/delivery-status\r\n\r\n");
    cv_buf_addstr(&b, fields);
    cv_buf_addstr(&b, "\r\n--4C1D2E3F4A.1796605310/mail.civibus.test\r\n"
                      "Content-Description: Undelivered Message\r\nContent-Type: ");
    cv_buf_addstr(&b, returned);
    cv_buf_addstr(&b, "\r\n\r\n"
                      "From: Mairie <mairie@civibus.test>\r\n"
                      "To: inconnu@civibus.test\r\n"
                      "Subject: =?utf-8?Q?Votre_demande?=\r\n"
                      "Message-ID: <0123456789abcdef@civibus.test>\r\n"
                      "Date: Mon, 07 Dec 2026 09:59:59 +0100\r\n\r\n");
    if (strcmp(returned, "message/rfc822") == 0)
        cv_buf_addstr(&b, "Bonjour,\r\nvotre demande est enregistrée.\r\n\r\n");
    cv_buf_addstr(&b, "--4C1D2E3F4A.1796605310/mail.civibus.test--\r\n");
    cv_buf_add(&b, "", 0);
    assert_false(b.failed);
    json_t *r = cv_imap_mime_record(b.data, b.len - 1, NULL);
    cv_buf_free(&b);
    assert_non_null(r);
    return r;
}

static const char *const s_postfix_head = "Reporting-MTA: dns; mail.civibus.test\r\n"
                                          "X-Postfix-Queue-ID: 4C1D2E3F4A\r\n"
                                          "X-Postfix-Sender: rfc822; mairie@civibus.test\r\n"
                                          "Arrival-Date: Mon,  7 Dec 2026 10:00:00 +0100 (CET)\r\n\r\n";

static json_t *s_recipients(json_t *rec)
{
    json_t *d = json_object_get(rec, "dsn");
    assert_true(json_is_object(d));
    json_t *l = json_object_get(d, "recipients");
    assert_true(json_is_array(l));
    return l;
}

static const char *s_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void s_hash_of(const char *id, char hex[65])
{
    assert_true(cv_imap_msgid_hash(id, strlen(id), hex));
}

static void test_postfix_511(void **state)
{
    (void) state;
    char fields[1024], want[65];
    snprintf(fields, sizeof fields, "%s"
             "Final-Recipient: rfc822; Inconnu@Civibus.TEST\r\n"
             "Original-Recipient: rfc822;inconnu@civibus.test\r\n"
             "Action: failed\r\n"
             "Status: 5.1.1\r\n"
             "Remote-MTA: dns; 127.0.0.1\r\n"
             "Diagnostic-Code: smtp; 550 5.1.1 <inconnu@civibus.test> User doesn't exist:\r\n"
             "    inconnu@civibus.test\r\n", s_postfix_head);
    s_hash_of("<0123456789abcdef@civibus.test>", want);
    static const char *const kinds[] = { "message/rfc822", "text/rfc822-headers" };
    for (size_t k = 0; k < 2; k++) {
        json_t *r = s_bounce(fields, kinds[k]);
        assert_true(json_is_true(json_object_get(r, "automatic")));
        json_t *d = json_object_get(r, "dsn");
        assert_string_equal(s_str(d, "returned_message_id_hash"), want);
        /* the DSN's own Message-ID is the record's, not the returned one */
        assert_string_not_equal(s_str(r, "message_id_hash"), want);
        json_t *l = s_recipients(r);
        assert_int_equal(json_array_size(l), 1);
        json_t *x = json_array_get(l, 0);
        assert_string_equal(s_str(x, "recipient"), "inconnu@civibus.test");
        assert_string_equal(s_str(x, "original_recipient"), "inconnu@civibus.test");
        assert_string_equal(s_str(x, "action"), "failed");
        assert_string_equal(s_str(x, "status"), "5.1.1");
        assert_true(json_is_true(json_object_get(x, "permanent")));
        assert_null(json_object_get(d, "recipients_dropped"));
        json_decref(r);
    }
}

static void test_transient(void **state)
{
    (void) state;
    static const struct { const char *action, *status, *want; bool permanent; } cases[] = {
        { "failed", "5.2.2", "5.2.2", false },                 /* mailbox full */
        { "failed", "5.02.002 (quota)", "5.2.2", false },      /* the same, written otherwise */
        { "delayed", "4.4.1", "4.4.1", false },
        { "failed", "4.4.7", "4.4.7", false },                 /* 4.x.x never */
        { "delivered", "2.0.0", "2.0.0", false },
        { "failed", "5.7.1 (relay denied)", "5.7.1", true },
        { "FAILED (gave up)", "5.1.10", "5.1.10", true },
        { "failed", "5.1", NULL, false },
        { "failed", "6.1.1", NULL, false },
        { "failed", "5.1.1x", NULL, false },
        { "failed", "5.1111.1", NULL, false },
        { "failed-ish", "5.1.1", NULL, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char fields[1024];
        snprintf(fields, sizeof fields, "%sFinal-Recipient: rfc822; a@b.fr\r\nAction: %s\r\nStatus: %s\r\n",
                 s_postfix_head, cases[i].action, cases[i].status);
        json_t *r = s_bounce(fields, "text/rfc822-headers");
        json_t *x = json_array_get(s_recipients(r), 0);
        assert_non_null(x);
        if (cases[i].want)
            assert_string_equal(s_str(x, "status"), cases[i].want);
        else
            assert_true(s_str(x, "status") == NULL || s_str(x, "action") == NULL);
        assert_int_equal(json_is_true(json_object_get(x, "permanent")), cases[i].permanent);
        json_decref(r);
    }
    assert_false(cv_imap_dsn_permanent("failed", "5.2.2"));
    assert_true(cv_imap_dsn_permanent("failed", "5.2.1"));
    assert_false(cv_imap_dsn_permanent(NULL, "5.1.1"));
    assert_false(cv_imap_dsn_permanent("failed", NULL));
}

static void test_several(void **state)
{
    (void) state;
    cv_buf_t f = { 0 };
    cv_buf_addstr(&f, s_postfix_head);
    cv_buf_addstr(&f, "Final-Recipient: rfc822; un@exemple.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
                      "Final-Recipient: rfc822; deux@exemple.fr\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n"
                      "Final-Recipient: rfc822;\r\n  <trois@exemple.fr>\r\nAction: failed\r\nStatus: 5.2.2\r\n");
    cv_buf_add(&f, "", 0);
    json_t *r = s_bounce(f.data, "text/rfc822-headers");
    json_t *l = s_recipients(r);
    assert_int_equal(json_array_size(l), 3);
    assert_string_equal(s_str(json_array_get(l, 0), "recipient"), "un@exemple.fr");
    assert_true(json_is_true(json_object_get(json_array_get(l, 0), "permanent")));
    assert_string_equal(s_str(json_array_get(l, 1), "status"), "4.4.1");
    assert_false(json_is_true(json_object_get(json_array_get(l, 1), "permanent")));
    assert_string_equal(s_str(json_array_get(l, 2), "recipient"), "trois@exemple.fr");  /* folded */
    assert_false(json_is_true(json_object_get(json_array_get(l, 2), "permanent")));
    json_decref(r);

    /* a hostile DSN: 500 recipients, 50 kept, the rest counted */
    cv_buf_reset(&f);
    cv_buf_addstr(&f, s_postfix_head);
    for (int i = 0; i < 500; i++) {
        char one[128];
        snprintf(one, sizeof one, "Final-Recipient: rfc822; r%d@exemple.fr\nAction: failed\nStatus: 5.1.1\n\n", i);
        cv_buf_addstr(&f, one);
    }
    cv_buf_add(&f, "", 0);
    r = s_bounce(f.data, "text/rfc822-headers");
    l = s_recipients(r);
    assert_int_equal(json_array_size(l), CV_IMAP_DSN_MAX);
    assert_string_equal(s_str(json_array_get(l, 49), "recipient"), "r49@exemple.fr");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "dsn"), "recipients_dropped")), 450);
    json_decref(r);
    cv_buf_free(&f);
}

static void test_garbage(void **state)
{
    (void) state;
    static const char *const bad[] = {
        "Final-Recipient: x400; /C=FR/O=mairie\r\nAction: failed\r\nStatus: 5.1.1\r\n",   /* type */
        "Final-Recipient: rfc822; victime@exemple.fr\rAction: failed\r\nStatus: 5.1.1\r\n", /* a CR */
        "Final-Recipient: rfc822; un@exemple.fr deux@exemple.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        "Final-Recipient: rfc822; a@b@c.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        "Final-Recipient: rfc822; @exemple.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        "Final-Recipient: rfc822; sans-arobase\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        "Final-Recipient: rfc822; a\x01@b.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        "Final-Recipient: rfc822; caf\xc3\xa9@b.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        "Final-Recipient rfc822; a@b.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n",          /* no colon */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char fields[1024];
        snprintf(fields, sizeof fields, "%s%s", s_postfix_head, bad[i]);
        json_t *r = s_bounce(fields, "text/rfc822-headers");
        json_t *l = s_recipients(r);
        for (size_t k = 0; k < json_array_size(l); k++)
            assert_false(json_is_true(json_object_get(json_array_get(l, k), "permanent")) &&
                         strstr(s_str(json_array_get(l, k), "recipient"), "victime"));
        if (i != 1)
            assert_int_equal(json_array_size(l), 0);
        json_decref(r);
    }
    /* an address too long for a suppression */
    char fields[2048], longaddr[400];
    memset(longaddr, 'a', 330);
    strcpy(longaddr + 330, "@b.fr");
    snprintf(fields, sizeof fields, "%sFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\n",
             s_postfix_head, longaddr);
    json_t *r = s_bounce(fields, "text/rfc822-headers");
    assert_int_equal(json_array_size(s_recipients(r)), 0);
    json_decref(r);
    /* the first field of a block counts; a block without a recipient is none */
    snprintf(fields, sizeof fields, "%sFinal-Recipient: rfc822; un@b.fr\r\nFinal-Recipient: rfc822; deux@b.fr\r\n"
             "Action: failed\r\nStatus: 5.1.1\r\n\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\r\n", s_postfix_head);
    r = s_bounce(fields, "text/rfc822-headers");
    assert_int_equal(json_array_size(s_recipients(r)), 1);
    assert_string_equal(s_str(json_array_get(s_recipients(r), 0), "recipient"), "un@b.fr");
    json_decref(r);
    /* nothing readable at all: an empty list, no hash when the headers have no Message-ID */
    r = cv_imap_mime_record("From: x@y.fr\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
                            "--b\r\nContent-Type: message/delivery-status\r\n\r\n\x00\xff garbage : : ;\r\n"
                            "--b\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: x\r\n--b--\r\n", 200, NULL);
    assert_non_null(r);
    assert_int_equal(json_array_size(s_recipients(r)), 0);
    assert_null(json_object_get(json_object_get(r, "dsn"), "returned_message_id_hash"));
    json_decref(r);
}

static void test_where(void **state)
{
    (void) state;
    /* a delivery-status part outside a delivery-status report is not read */
    const char *mixed = "From: x@y.fr\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
                        "Final-Recipient: rfc822; a@b.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--\r\n";
    json_t *r = cv_imap_mime_record(mixed, strlen(mixed), NULL);
    assert_null(json_object_get(r, "dsn"));
    json_decref(r);
    const char *mdn = "From: x@y.fr\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n"
                      "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
                      "Final-Recipient: rfc822; a@b.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--\r\n";
    r = cv_imap_mime_record(mdn, strlen(mdn), NULL);
    assert_null(json_object_get(r, "dsn"));
    json_decref(r);
    /* nested one level deeper than the report's own parts: not read */
    const char *deep = "From: x@y.fr\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
                       "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
                       "--c\r\nContent-Type: message/delivery-status\r\n\r\n"
                       "Final-Recipient: rfc822; a@b.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n--c--\r\n--b--\r\n";
    r = cv_imap_mime_record(deep, strlen(deep), NULL);
    assert_null(json_object_get(r, "dsn"));
    json_decref(r);
    /* base64 delivery-status (Final-Recipient: rfc822; a@b.fr / Action: failed / Status: 5.1.1) */
    const char *b64 = "From: x@y.fr\r\nContent-Type: multipart/report; report-type=\"delivery-status\"; boundary=b\r\n\r\n"
                      "--b\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                      "RmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGFAYi5mcgpBY3Rpb246IGZhaWxlZApTdGF0dXM6IDUuMS4xCg==\r\n"
                      "--b--\r\n";
    r = cv_imap_mime_record(b64, strlen(b64), NULL);
    json_t *x = json_array_get(s_recipients(r), 0);
    assert_non_null(x);
    assert_string_equal(s_str(x, "recipient"), "a@b.fr");
    assert_true(json_is_true(json_object_get(x, "permanent")));
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postfix_511),
        cmocka_unit_test(test_transient),
        cmocka_unit_test(test_several),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_where),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
