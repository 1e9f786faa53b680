/*  cv_json — see cv_json.h. A recursive walk; object members are sorted
    through a small on-stack array (a heap one for wide objects) only when
    asked. Strings are scanned byte by byte: in UTF-8 no byte of a
    multi-byte character is below 0x80, so only ASCII bytes need a look. */
#include "cv_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2048                           /* jansson's parser limit */

typedef struct {
    cv_json_put_fn put;
    void *ctx;
    bool sorted;
} writer_t;

static void s_string(const writer_t *w, const char *str, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    w->put(w->ctx, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) str[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (i > from)
            w->put(w->ctx, str + from, i - from);
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
        w->put(w->ctx, esc, n);
    }
    if (len > from)
        w->put(w->ctx, str + from, len - from);
    w->put(w->ctx, "\"", 1);
}

typedef struct {
    const char *key;
    size_t len;
    const json_t *value;
} member_t;

/* jansson's order: bytes, then length. */
static int s_cmp_members(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    int r = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    if (r)
        return r;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int s_value(const writer_t *w, const json_t *v, int depth);

static int s_object(const writer_t *w, const json_t *v, int depth)
{
    size_t n = json_object_size(v), i = 0;
    member_t local[32], *m = n <= 32 ? local : malloc(n * sizeof *m);
    if (!m)
        return -1;
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach((json_t *) v, key, key_len, value)
        m[i++] = (member_t) { key, key_len, value };
    if (w->sorted)
        qsort(m, n, sizeof *m, s_cmp_members);
    int rc = 0;
    w->put(w->ctx, "{", 1);
    for (i = 0; i < n && rc == 0; i++) {
        if (i)
            w->put(w->ctx, ",", 1);
        s_string(w, m[i].key, m[i].len);
        w->put(w->ctx, ":", 1);
        rc = s_value(w, m[i].value, depth + 1);
    }
    w->put(w->ctx, "}", 1);
    if (m != local)
        free(m);
    return rc;
}

static int s_value(const writer_t *w, const json_t *v, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return s_object(w, v, depth);
    case JSON_ARRAY:
        w->put(w->ctx, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                w->put(w->ctx, ",", 1);
            if (s_value(w, json_array_get(v, i), depth + 1))
                return -1;
        }
        w->put(w->ctx, "]", 1);
        return 0;
    case JSON_STRING:
        s_string(w, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER: {
        char num[32];
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        w->put(w->ctx, num, (size_t) n);
        return 0;
    }
    case JSON_REAL: {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
            return -1;
        w->put(w->ctx, text, strlen(text));
        free(text);
        return 0;
    }
    case JSON_TRUE:
        w->put(w->ctx, "true", 4);
        return 0;
    case JSON_FALSE:
        w->put(w->ctx, "false", 5);
        return 0;
    case JSON_NULL:
        w->put(w->ctx, "null", 4);
        return 0;
    }
    return -1;
}

int cv_json_write(const json_t *value, bool sorted, cv_json_put_fn put, void *ctx)
{
    if (!value)
        return -1;
    writer_t w = { put, ctx, sorted };
    return s_value(&w, value, 0);
}

static void s_put_buf(void *ctx, const void *data, size_t len)
{
    cv_buf_add(ctx, data, len);
}

void cv_json_string_to_buf(const char *str, size_t len, cv_buf_t *b)
{
    writer_t w = { s_put_buf, b, false };
    s_string(&w, str, len);
}

int cv_json_to_buf(const json_t *value, bool sorted, cv_buf_t *b)
{
    if (cv_json_write(value, sorted, s_put_buf, b) != 0)
        return -1;
    return b->failed ? -1 : 0;
}
