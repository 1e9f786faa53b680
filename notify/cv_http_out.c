/*  cv_http_out — see cv_http_out.h. The signature is HMAC-SHA256 over the
    exact body bytes, like the webhook driver's (adapters/drivers/webhook). */
#include "cv_http_out.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *p;
    size_t left;
    bool done;
} src_t;

static size_t s_read(char *buf, size_t size, size_t n, void *arg)
{
    src_t *s = arg;
    size_t k = size * n < s->left ? size * n : s->left;
    memcpy(buf, s->p, k);
    s->p += k;
    s->left -= k;
    if (s->left == 0)
        s->done = true;
    return k;
}

static size_t s_sink(char *p, size_t size, size_t n, void *arg)
{
    (void) p, (void) arg;
    return size * n;
}

void cv_http_sign(const unsigned char *key, size_t keylen, const char *body, size_t len, char out[72])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "sha256=", 7);
    sodium_bin2hex(out + 7, 65, mac, sizeof mac);
}

cv_send_t cv_http_post(const char *url, const char *const *headers, const char *body, size_t len, int timeout_s,
                       char *code, size_t codelen)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(code, codelen, "curl_init");
        return CV_SEND_RETRY;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    for (const char *const *p = headers; p && *p; p++)
        h = curl_slist_append(h, *p);
    src_t src = { .p = body, .left = len, .done = len == 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, s_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long) timeout_s);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK) {
        snprintf(code, codelen, "http_%ld", status);
        if (status >= 200 && status < 300)
            return CV_SEND_OK;
        if (status == 408 || status == 429 || status >= 500)
            return CV_SEND_RETRY;
        return CV_SEND_FAILED;
    }
    snprintf(code, codelen, "curl_%d", (int) rc);
    return src.done ? CV_SEND_UNKNOWN : CV_SEND_RETRY;
}
