/*  driver_webhook_body — what a webhook POST carries, judged before it is
    spooled: its signature, and the records in its body.

    The signature is an HMAC-SHA256 of the raw body under a shared secret,
    sent as text in one header: a fixed prefix, then 64 hex digits
    (`X-Signature: sha256=9f86d0...`). It is checked with libsodium and
    compared in constant time.

    A body is cut into records without re-encoding anything: each record is
    a byte range (span) of the body, so what the hub stores and hashes is
    exactly what the software sent.
      - object mode: the whole body is one record;
      - array mode: a JSON array gives one record per element (an empty
        array gives none); a lone object is one record.
    Validity is decided as the hub decides it (jansson, no flags), so a body
    that is not JSON, or not the shape expected, is still one span — the
    whole body — and the verdict says so: the driver spools it and the hub
    dead-letters it, keeping it for an operator (docs/drivers/webhook.md). */
#ifndef CV_DRIVER_WEBHOOK_BODY_H
#define CV_DRIVER_WEBHOOK_BODY_H

#include <stdbool.h>
#include <stddef.h>

#define CV_WEBHOOK_SIG_HEX 64   /* hex digits of an HMAC-SHA256 */

typedef struct {
    size_t offset;
    size_t len;
} cv_webhook_span_t;

typedef enum {
    CV_WEBHOOK_BODY_RECORDS = 0,   /* spans are the records, as expected */
    CV_WEBHOOK_BODY_NOT_JSON,      /* not JSON (or not UTF-8): one span, the whole body */
    CV_WEBHOOK_BODY_WRONG_SHAPE,   /* JSON, but a value that is not an object where
                                      a record is expected: spans as cut */
    CV_WEBHOOK_BODY_NO_MEMORY
} cv_webhook_verdict_t;

/* Cuts body into records (see above). *spans is malloc'd (caller frees),
   possibly NULL when *count is 0. */
cv_webhook_verdict_t cv_webhook_body_split(const char *body, size_t len, bool array,
                                           cv_webhook_span_t **spans, size_t *count);

/* HMAC-SHA256 of body under key, as 64 lower-case hex digits + NUL. */
void cv_webhook_body_sign(const void *key, size_t keylen, const void *body, size_t len,
                     char out[CV_WEBHOOK_SIG_HEX + 1]);

/* True when header is prefix followed by the hex HMAC of body under key
   (either case of hex digits). NULL header: false. Constant time in the
   digest. */
bool cv_webhook_body_signature_ok(const void *key, size_t keylen, const char *prefix,
                             const char *header, const void *body, size_t len);

#endif
