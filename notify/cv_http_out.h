/*  cv_http_out — one POST to another system (a webhook, the SMS gateway).

    The body is JSON; headers are given whole ("X-Civibus-Signature: ...").
    Outcomes as cv_smtp's: 2xx sent; 408, 429 and 5xx retried; other 4xx
    failed for good; a connection lost before the body was handed over is
    retried; after it (no answer read), unknown — never sent again.
    code: "http_503", "curl_7". */
#ifndef CV_HTTP_OUT_H
#define CV_HTTP_OUT_H

#include "cv_smtp.h"

cv_send_t cv_http_post(const char *url, const char *const *headers, const char *body, size_t len, int timeout_s,
                       char *code, size_t codelen);

/* X-Civibus-Signature's value for body under key: "sha256=<hex HMAC-SHA256>". */
void cv_http_sign(const unsigned char *key, size_t keylen, const char *body, size_t len, char out[72]);

#endif
