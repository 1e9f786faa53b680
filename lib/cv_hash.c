/*  cv_hash — see cv_hash.h.

    The canonical form is exactly what jansson's json_dumps writes with
    JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY: keys in byte order,
    no spaces, strings as UTF-8 with only '"', '\\' and control characters
    escaped (\b \f \n \r \t by name, the others as \u00XX in upper-case
    hex), integers in decimal. It is written straight into the SHA-256
    state through a small buffer instead of into a string first: the hub
    hashes every record it receives, and building, growing and freeing
    that string cost more than the digest itself. Reals, rare in records,
    are formatted by jansson itself so that they stay byte-identical.
    Strings are taken as valid UTF-8, as jansson's parser guarantees for
    every record (json_dumps would also refuse a string that is not).
    tests/unit/test_hash.c checks the two forms hash the same. */
#include "cv_hash.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SINK_BYTES 4096
#define MAX_DEPTH  2048                          /* jansson's own parser limit */

typedef struct {
    crypto_hash_sha256_state state;
    size_t len;
    unsigned char buf[SINK_BYTES];
} sink_t;

void cv_hash_bytes(const void *data, size_t len, char out[CV_HASH_HEX_LEN + 1])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data, len);
    sodium_bin2hex(out, CV_HASH_HEX_LEN + 1, digest, sizeof digest);
}

static void s_put(sink_t *s, const void *data, size_t len)
{
    if (s->len + len > sizeof s->buf) {
        crypto_hash_sha256_update(&s->state, s->buf, s->len);
        s->len = 0;
        if (len > sizeof s->buf) {
            crypto_hash_sha256_update(&s->state, data, len);
            return;
        }
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
}

static void s_put_string(sink_t *s, const char *str, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    s_put(s, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) str[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        s_put(s, str + from, i - from);
        from = i + 1;
        char esc[6] = { '\\', 0 };
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        s_put(s, esc, n);
    }
    s_put(s, str + from, len - from);
    s_put(s, "\"", 1);
}

typedef struct {
    const char *key;
    size_t len;
    const json_t *value;
} member_t;

static int s_cmp_members(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    int r = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    if (r)
        return r;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int s_put_value(sink_t *s, const json_t *v, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        member_t local[32], *m = n <= 32 ? local : malloc(n * sizeof *m);
        if (!m)
            return -1;
        const char *key;
        size_t key_len;
        json_t *value;
        json_object_keylen_foreach((json_t *) v, key, key_len, value)
            m[i++] = (member_t) { key, key_len, value };
        qsort(m, n, sizeof *m, s_cmp_members);
        int rc = 0;
        s_put(s, "{", 1);
        for (i = 0; i < n && rc == 0; i++) {
            if (i)
                s_put(s, ",", 1);
            s_put_string(s, m[i].key, m[i].len);
            s_put(s, ":", 1);
            rc = s_put_value(s, m[i].value, depth + 1);
        }
        s_put(s, "}", 1);
        if (m != local)
            free(m);
        return rc;
    }
    case JSON_ARRAY: {
        s_put(s, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                s_put(s, ",", 1);
            if (s_put_value(s, json_array_get(v, i), depth + 1))
                return -1;
        }
        s_put(s, "]", 1);
        return 0;
    }
    case JSON_STRING:
        s_put_string(s, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER: {
        char num[32];
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s_put(s, num, (size_t) n);
        return 0;
    }
    case JSON_REAL: {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
            return -1;
        s_put(s, text, strlen(text));
        free(text);
        return 0;
    }
    case JSON_TRUE:
        s_put(s, "true", 4);
        return 0;
    case JSON_FALSE:
        s_put(s, "false", 5);
        return 0;
    case JSON_NULL:
        s_put(s, "null", 4);
        return 0;
    }
    return -1;
}

int cv_hash_json(const json_t *value, char out[CV_HASH_HEX_LEN + 1])
{
    if (!value)
        return -1;
    sink_t s;
    crypto_hash_sha256_init(&s.state);
    s.len = 0;
    if (s_put_value(&s, value, 0) != 0)
        return -1;
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_update(&s.state, s.buf, s.len);
    crypto_hash_sha256_final(&s.state, digest);
    sodium_bin2hex(out, CV_HASH_HEX_LEN + 1, digest, sizeof digest);
    return 0;
}
