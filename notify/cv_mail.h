/*  cv_mail — one notification mail, written as RFC 5322 bytes.

    multipart/alternative (text/plain then text/html), UTF-8, both parts in
    base64 (no line of a value can reach the header section, whatever it
    holds); the subject and the sender's name as RFC 2047 encoded-words;
    Auto-Submitted: auto-generated and X-Auto-Response-Suppress: All so that
    auto-responders do not answer (no mail loops). Addresses are checked by
    cv_mail_addr_ok before they are written: one addr-spec, nothing that
    could end a header or add a recipient. Lines end in CRLF. */
#ifndef CV_MAIL_H
#define CV_MAIL_H

#include "cv_buf.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *from, *from_name;    /* from_name may be NULL */
    const char *to;
    const char *reply_to;            /* NULL: none */
    const char *message_id;          /* without <> */
    const char *subject;             /* UTF-8, one line */
    const char *text, *html;         /* UTF-8 bodies */
} cv_mail_t;

/* One addr-spec: local@domain, printable ASCII without space, <>()[],;:"\. */
bool cv_mail_addr_ok(const char *addr);

/* Writes a fresh Message-ID (32 random hex @ domain, without <>) into out. */
void cv_mail_message_id(const char *domain, char *out, size_t outlen);

/* Appends the message to out. -1 when an address is not one, or out of memory. */
int cv_mail_compose(const cv_mail_t *m, cv_buf_t *out);

/* Appends the RFC 2047 encoding of a UTF-8 header value (folded words). */
void cv_mail_encode_word(cv_buf_t *out, const char *s);

#endif
