/*  cv_buf — a growable byte buffer, the one every module appends to.

    Plain struct, zero-initialised by its user, optionally with:
      - a limit: len never passes it (a record larger than allowed, a
        response body over its maximum) — the add fails instead;
      - secret: memory that held the bytes is wiped before it is freed or
        left behind by a move (expanded credentials, tokens).
    The data stays NUL-terminated after every add (it may also hold NULs).
    A failed add (the limit, or memory) returns -1, appends nothing and
    sets `failed`, which stays set until cv_buf_reset: a caller may append
    many pieces and check once. */
#ifndef CV_BUF_H
#define CV_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data;                 /* NULL until the first add */
    size_t len, cap;
    size_t limit;               /* 0: none */
    bool secret;                /* wipe on grow and free */
    bool failed;                /* an add failed since the last reset */
} cv_buf_t;

int cv_buf_add(cv_buf_t *b, const void *p, size_t n);
int cv_buf_addstr(cv_buf_t *b, const char *s);
/* Makes room for n more bytes (and the NUL); -1 as cv_buf_add. */
int cv_buf_reserve(cv_buf_t *b, size_t n);
/* Empties it, keeping its memory; clears `failed`. */
void cv_buf_reset(cv_buf_t *b);
/* Frees the memory (wiped when secret); the limit and secret flag stay. */
void cv_buf_free(cv_buf_t *b);
/* Hands the data over (malloc'ed, NUL-terminated, never NULL unless out of
   memory) and leaves the buffer empty. */
char *cv_buf_take(cv_buf_t *b);

#endif
