/*  driver_rest — internals of the REST polling driver (`kind: rest`),
    shared by its four files; the driver itself is only `cv_rest_driver`
    (cv_driver.h). docs/drivers/rest.md describes the YAML keys.

      cv_rest_config.c  the `driver:` section -> cv_rest_config_t, with
                            ${ENV} and ${file:PATH} secrets expanded
      cv_rest_cursor.c  since-cursor values (integers or ISO 8601
                            date-times): compare, subtract the overlap,
                            and the position text kept in the spool
      cv_rest_http.c    one GET at a time on the curl multi interface,
                            advanced without blocking, body bounded
      cv_rest.c         the driver: one page per request, submit its
                            records, then move the position; retries

    Nothing here logs header values, passwords, query strings or record
    contents: only the URL's scheme, host and path, HTTP statuses, counts
    and page numbers. */
#ifndef CV_DRIVER_REST_H
#define CV_DRIVER_REST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/cv_driver.h"

/* ---------------------------------------------------------------- config */

typedef enum { CV_REST_TOKEN, CV_REST_SINCE } cv_rest_mode_t;

typedef struct {
    char *name;
    char *value;                 /* expanded; may be a secret */
} cv_rest_pair_t;

typedef struct {
    char *url;                   /* expanded; may carry a query of its own */
    char *url_for_logs;          /* scheme://host[:port]/path: no query, no user */
    cv_rest_pair_t *query;       /* static query parameters */
    size_t query_count;
    cv_rest_pair_t *headers;     /* extra request headers (Authorization...) */
    size_t header_count;
    char *username, *password;   /* basic auth, or NULL */
    char *ca_file;               /* resolved path, or NULL: system CAs */
    char *records_path;          /* "" : the body is the list */
    cv_rest_mode_t mode;
    char *token_param;           /* token mode */
    char *next_token_path;
    char *since_param;           /* since mode */
    char *cursor_field;
    char *since_start;           /* first since value, or NULL: none sent */
    int64_t overlap;
    char *page_size_param;       /* NULL: not sent */
    int64_t page_size;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;
    int64_t retry_initial_ms;
    int64_t retry_max_ms;
    int64_t poll_interval_ms;
    double rate_limit;           /* requests per second, 0: none */
    int64_t max_response_bytes;
} cv_rest_config_t;

/* Reads and checks ctx->conf ("file:line: reason" in err), or NULL. */
cv_rest_config_t *cv_rest_config_new(const cv_driver_ctx_t *ctx, char *err, size_t errlen);
/* Frees, wiping secrets first. */
void cv_rest_config_destroy(cv_rest_config_t **self_p);

/* The value at a dotted path ("a.b.0.c"; "" is root), or NULL. */
json_t *cv_rest_config_json_path(json_t *root, const char *path);

/* ---------------------------------------------------------------- cursor */

#define CV_REST_CURSOR_TEXT 64

typedef struct {
    bool valid;
    bool is_int;                 /* an integer (a change number, epoch) */
    int64_t number;              /* integer value, or UTC (or naive) seconds */
    int32_t nanos;               /* fraction of a date-time */
    bool date_only;              /* "YYYY-MM-DD" */
    char sep;                    /* 'T' or ' ' between date and time */
    bool has_offset;
    int32_t offset;              /* seconds east of UTC, when has_offset */
    char suffix[8];              /* the offset as written: "Z", "+01:00"... */
    char text[CV_REST_CURSOR_TEXT];  /* the value as the source wrote it */
} cv_rest_cursor_t;

/* Reads a record's cursor value: a JSON integer or an ISO 8601 date-time
   text (YYYY-MM-DD[(T| )HH:MM[:SS[.f]]][Z|+HH:MM|+HHMM|+HH]). Returns
   false (cursor invalid) for anything else. */
bool cv_rest_cursor_from_json(const json_t *value, cv_rest_cursor_t *out);
bool cv_rest_cursor_from_text(const char *text, bool is_int, cv_rest_cursor_t *out);

/* <0, 0, >0 like strcmp; an invalid cursor is lower than any valid one. */
int cv_rest_cursor_cmp(const cv_rest_cursor_t *a, const cv_rest_cursor_t *b);

/* The since value to send: the cursor minus `overlap` (seconds for a
   date-time, units for an integer), written like the source writes it. */
void cv_rest_cursor_since(const cv_rest_cursor_t *c, int64_t overlap, char *out, size_t outlen);

/* The position kept in the spool: {"token": "..."} or {"since": "..."}
   ({"since": 42} for an integer cursor). Returns a malloc'ed string. */
char *cv_rest_cursor_position_token(const char *token);
char *cv_rest_cursor_position_since(const cv_rest_cursor_t *c);
/* Parses a saved position for `mode`: 0 with *token (malloc'ed) or
   *cursor filled, -1 when it is not a position of that mode. */
int cv_rest_cursor_position_parse(const char *text, cv_rest_mode_t mode, char **token, cv_rest_cursor_t *cursor);

/* ------------------------------------------------------------------ http */

typedef struct cv_rest_http cv_rest_http_t;

typedef struct {
    bool ok;                     /* the transfer completed (any HTTP status) */
    long status;                 /* HTTP status when ok */
    bool too_large;              /* the body passed max_response_bytes */
    char error[256];             /* transport error when !ok (no query, no secret) */
    const char *body;            /* NUL-terminated, valid until the next start */
    size_t len;
} cv_rest_reply_t;

cv_rest_http_t *cv_rest_http_new(const cv_rest_config_t *config, char *err, size_t errlen);
void cv_rest_http_destroy(cv_rest_http_t **self_p);

/* Starts GET url. Returns 0, or -1 (out of memory, bad URL) with a reason
   in reply->error of the next poll (the poll then reports it as done). */
int cv_rest_http_start(cv_rest_http_t *self, const char *url);

/* Advances the transfer without blocking: 0 still running, 1 done (the
   reply is filled). */
int cv_rest_http_poll(cv_rest_http_t *self, cv_rest_reply_t *reply);

/* Aborts a running transfer (nothing when idle). */
void cv_rest_http_cancel(cv_rest_http_t *self);

#endif
