/*  cv_alloc — see cv_alloc.h. */
#include "cv_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_out_of_memory(size_t size)
{
    fprintf(stderr, "civibus: out of memory (%zu bytes): stopping\n", size);
    abort();
}

void *cv_zmalloc(size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (!p)
        s_out_of_memory(size);
    return p;
}

void *cv_zcalloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        s_out_of_memory(SIZE_MAX);
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        s_out_of_memory(n * size);
    return p;
}

void *cv_zrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        s_out_of_memory(size);
    return q;
}

char *cv_zstrdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d)
        s_out_of_memory(n);
    memcpy(d, s, n);
    return d;
}

char *cv_zstrndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = malloc(len + 1);
    if (!d)
        s_out_of_memory(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
