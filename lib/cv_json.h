/*  cv_json — compact JSON text of a jansson value, fast.

    Writes exactly the bytes jansson's json_dumps writes with JSON_COMPACT |
    JSON_ENCODE_ANY (and JSON_SORT_KEYS when `sorted`): UTF-8 as it is,
    only '"', '\\' and control characters escaped (\b \f \n \r \t by name,
    the others as \u00XX in upper-case hex), integers in decimal, reals as
    jansson formats them. Strings must be valid UTF-8, as jansson's parser
    guarantees. It exists because jansson's dumper walks strings code point
    by code point and grows a string for each value: the hub serialises
    every event's citizen block and extra fields, and hashes every record,
    so that cost showed in its profile. tests/unit/lib/test_json.c checks the
    output against json_dumps. */
#ifndef CV_JSON_H
#define CV_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cv_buf.h"

/* Receives the text in pieces. */
typedef void (*cv_json_put_fn)(void *ctx, const void *data, size_t len);

/* Writes value through put; 0, or -1 when it cannot be written (NULL,
   nesting deeper than jansson's parser allows, out of memory). */
int cv_json_write(const json_t *value, bool sorted, cv_json_put_fn put, void *ctx);

/* Appends len bytes of UTF-8 text to b as a JSON string literal. */
void cv_json_string_to_buf(const char *str, size_t len, cv_buf_t *b);

/* Appends the compact text to b; -1 when it cannot be written or b failed. */
int cv_json_to_buf(const json_t *value, bool sorted, cv_buf_t *b);

#endif
