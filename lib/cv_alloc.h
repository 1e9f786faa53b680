/*  cv_alloc — allocations that cannot fail (CZMQ's zmalloc).

    Where a process cannot go on without the memory — a constructor's
    object, a batch's arrays, a session table — running out of memory is not
    an error to report and unwind from: there is nothing sensible left to do.
    These functions return zeroed memory or print one line on stderr and
    abort(), so no allocation goes unchecked and no caller writes the check.

    Where input decides the size (a record, a body, a file), keep plain
    malloc and refuse the input instead: an attacker must not be able to
    abort a process by sending a big value. */
#ifndef CV_ALLOC_H
#define CV_ALLOC_H

#include <stddef.h>

/* size bytes, zeroed (calloc). Never NULL. */
void *cv_zmalloc(size_t size);

/* n elements of size bytes, zeroed; n * size checked for overflow. */
void *cv_zcalloc(size_t n, size_t size);

/* realloc; the new part is not zeroed. Never NULL. */
void *cv_zrealloc(void *p, size_t size);

/* strdup. Never NULL (NULL gives NULL). */
char *cv_zstrdup(const char *s);

/* strndup: at most n bytes of s, NUL-terminated. Never NULL (NULL gives NULL). */
char *cv_zstrndup(const char *s, size_t n);

#endif
