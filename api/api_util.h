/*  api_util — small checks the API applies to everything that comes in:
    UTF-8 validity, tracking-code shape, integer parameters, and bearer
    tokens (256-bit random, shown once as 64 hex digits, stored as SHA-256);
    and the compaction of JSON text PostgreSQL built (the timeline's
    identities). */
#ifndef CV_API_UTIL_H
#define CV_API_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_API_TOKEN_HEX 64

/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF), no NUL
   and no other C0 control character when `text` is true. */
bool cv_api_utf8_valid(const char *s, size_t len, bool text);

/* A tracking code: 11 characters of ACDEFHJKLMNPRTUVWXY34679, the last a
   check character (023_tracking_check.sql), or 10 without one (issued
   before). Lower case is accepted, '-' and ' ' between characters skipped
   ("kxd7-m4rt-9c"); the code goes upper-cased into out. MISTYPED: 11
   characters whose check fails — one wrong or two swapped characters —,
   known before any lookup. */
#define CV_API_CODE_MAX 12
typedef enum { CV_API_CODE_BAD = 0, CV_API_CODE_OK, CV_API_CODE_MISTYPED } cv_api_code_t;
cv_api_code_t cv_api_tracking_code_read(const char *in, char out[CV_API_CODE_MAX]);
/* cv_api_tracking_code_read(...) == CV_API_CODE_OK */
bool cv_api_tracking_code(const char *in, char out[CV_API_CODE_MAX]);

/* A decimal integer in [min, max], the whole string. */
bool cv_api_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* A fresh token: 32 bytes from libsodium, as 64 lower-case hex digits. */
void cv_api_token_new(char out[CV_API_TOKEN_HEX + 1]);

/* The stored form of a token (sha256 hex), or false when the token is not
   64 hex digits. */
bool cv_api_token_hash(const char *token, char out[CV_API_TOKEN_HEX + 1]);

/* Copies the JSON text src (len bytes) into dst (at least len + 1 bytes)
   without the whitespace between tokens (PostgreSQL's json output puts
   " : " and ", " there), NUL-terminated, as compact as jansson's
   JSON_COMPACT; strings are copied untouched. Returns the new length. One
   pass, no parsing: src must be valid JSON. */
size_t cv_api_json_compact(char *dst, const char *src, size_t len);

#endif
