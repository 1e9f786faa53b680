/*  cv_buf — see cv_buf.h. Capacity doubles from 256 bytes; a secret buffer
    grows by malloc + copy + wipe, never realloc (which could leave the old
    bytes in freed memory). */
#include "cv_buf.h"

#include <stdlib.h>
#include <string.h>

static void s_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

int cv_buf_reserve(cv_buf_t *b, size_t n)
{
    if ((b->limit && n > b->limit - b->len) || n > (size_t) -1 / 2 - b->len) {
        b->failed = true;
        return -1;
    }
    if (b->data && b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p;
    if (b->secret) {
        p = malloc(cap);
        if (p && b->data) {
            memcpy(p, b->data, b->len + 1);
            s_wipe(b->data, b->cap);
            free(b->data);
        }
    } else
        p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return -1;
    }
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return 0;
}

int cv_buf_add(cv_buf_t *b, const void *p, size_t n)
{
    if (cv_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cv_buf_addstr(cv_buf_t *b, const char *s)
{
    return cv_buf_add(b, s, strlen(s));
}

void cv_buf_reset(cv_buf_t *b)
{
    if (b->secret)
        s_wipe(b->data, b->len);
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
    b->failed = false;
}

void cv_buf_free(cv_buf_t *b)
{
    if (b->secret)
        s_wipe(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

char *cv_buf_take(cv_buf_t *b)
{
    if (!b->data && cv_buf_reserve(b, 0) < 0)
        return NULL;
    char *data = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
    return data;
}
