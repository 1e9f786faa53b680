/*  driver_webhook_body — see cv_webhook_body.h.

    The body is parsed once with jansson to decide whether it is JSON and
    of which shape; the elements of an array are then found by a small
    scanner over the bytes, which only ever runs on text jansson accepted
    (so it only tracks strings, escapes and nesting). */
#include "cv_webhook_body.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static bool s_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t s_skip_space(const char *s, size_t i, size_t len)
{
    while (i < len && s_is_space(s[i]))
        i++;
    return i;
}

/* The body without its surrounding white space, as one span. */
static cv_webhook_span_t s_trimmed(const char *body, size_t len)
{
    size_t start = s_skip_space(body, 0, len), end = len;
    while (end > start && s_is_space(body[end - 1]))
        end--;
    return (cv_webhook_span_t) { start, end - start };
}

/* End of the value starting at i: the index of the ',' or ']' that follows
   it at depth 0 (or len). */
static size_t s_value_end(const char *s, size_t i, size_t len)
{
    int depth = 0;
    while (i < len) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i;
            depth--;
        } else if (c == ',' && depth == 0) {
            return i;
        }
        i++;
    }
    return len;
}

/* Spans of the elements of the (valid) array in body; count known. */
static void s_cut_array(const char *body, size_t len, cv_webhook_span_t *spans, size_t count)
{
    size_t i = s_skip_space(body, 0, len) + 1;     /* past '[' */
    for (size_t n = 0; n < count; n++) {
        size_t start = s_skip_space(body, i, len);
        size_t end = s_value_end(body, start, len);
        size_t last = end;
        while (last > start && s_is_space(body[last - 1]))
            last--;
        spans[n] = (cv_webhook_span_t) { start, last - start };
        i = end + 1;                               /* past ',' */
    }
}

cv_webhook_verdict_t cv_webhook_body_split(const char *body, size_t len, bool array,
                                           cv_webhook_span_t **spans, size_t *count)
{
    *spans = NULL;
    *count = 0;
    json_error_t jerr;
    json_t *value = json_loadb(body, len, 0, &jerr);
    cv_webhook_verdict_t verdict = CV_WEBHOOK_BODY_RECORDS;
    size_t n = 1;
    if (!value)
        verdict = CV_WEBHOOK_BODY_NOT_JSON;
    else if (json_is_array(value) && array) {
        n = json_array_size(value);
        for (size_t k = 0; k < n; k++)
            if (!json_is_object(json_array_get(value, k)))
                verdict = CV_WEBHOOK_BODY_WRONG_SHAPE;
    } else if (!json_is_object(value))
        verdict = CV_WEBHOOK_BODY_WRONG_SHAPE;
    if (n > 0 && !(*spans = calloc(n, sizeof **spans))) {
        json_decref(value);
        return CV_WEBHOOK_BODY_NO_MEMORY;
    }
    if (verdict == CV_WEBHOOK_BODY_NOT_JSON)
        (*spans)[0] = (cv_webhook_span_t) { 0, len };
    else if (json_is_array(value) && array)
        s_cut_array(body, len, *spans, n);
    else
        (*spans)[0] = s_trimmed(body, len);
    *count = n;
    json_decref(value);
    return verdict;
}

static void s_hmac(const void *key, size_t keylen, const void *body, size_t len,
                   unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, key, keylen);
    crypto_auth_hmacsha256_update(&state, body, len);
    crypto_auth_hmacsha256_final(&state, mac);
    sodium_memzero(&state, sizeof state);
}

void cv_webhook_body_sign(const void *key, size_t keylen, const void *body, size_t len,
                     char out[CV_WEBHOOK_SIG_HEX + 1])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    s_hmac(key, keylen, body, len, mac);
    sodium_bin2hex(out, CV_WEBHOOK_SIG_HEX + 1, mac, sizeof mac);
}

bool cv_webhook_body_signature_ok(const void *key, size_t keylen, const char *prefix,
                             const char *header, const void *body, size_t len)
{
    size_t plen = strlen(prefix);
    if (!header || strncmp(header, prefix, plen) != 0 || strlen(header + plen) != CV_WEBHOOK_SIG_HEX)
        return false;
    unsigned char given[crypto_auth_hmacsha256_BYTES], mac[crypto_auth_hmacsha256_BYTES];
    size_t got = 0;
    if (sodium_hex2bin(given, sizeof given, header + plen, CV_WEBHOOK_SIG_HEX, NULL, &got, NULL) != 0
        || got != sizeof given)
        return false;
    s_hmac(key, keylen, body, len, mac);
    bool ok = sodium_memcmp(given, mac, sizeof mac) == 0;
    sodium_memzero(mac, sizeof mac);
    return ok;
}
