/*  driver_webhook_http — the HTTP side of the webhook driver: a
    libmicrohttpd server on its own thread that receives POSTs and hands
    their bodies to the run loop.

    Everything that can be decided without the spool is decided on the
    HTTP thread, at once:
        wrong path 404, wrong method 405 (Allow: POST),
        not accepting (spool full, stopping) 503 + Retry-After,
        no signature header, or a wrong one, 401,
        a body over max_body_bytes (Content-Length or counted) 413,
        an empty body 400.
    A signed body is cut into records (cv_webhook_body.h) and queued
    (mutex); its connection is suspended. The run loop takes the queue
    (cv_webhook_http_take), spools the records, syncs once, and answers
    each post (cv_webhook_http_answer): the connection is resumed and the
    answer sent. So a 2xx always means "spooled and fdatasync'ed".

    The connection count and the body size are bounded, idle connections
    time out, and suspended connections are all answered (503) before the
    server stops. Nothing here logs a body or a header value. */
#ifndef CV_DRIVER_WEBHOOK_HTTP_H
#define CV_DRIVER_WEBHOOK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_webhook_body.h"

typedef struct cv_webhook_http cv_webhook_http_t;

typedef struct {
    const char *address;          /* IPv4 or IPv6 literal */
    uint16_t port;                /* 0: any free port (see cv_webhook_http_port) */
    const char *path;             /* the only path served */
    bool array;                   /* bodies may be JSON arrays of records */
    size_t max_body_bytes;
    unsigned max_connections;
    unsigned timeout_s;           /* idle connection timeout */
    unsigned retry_after_s;       /* Retry-After of 503 answers */
    const void *secret;           /* HMAC key */
    size_t secret_len;
    const char *sig_header;       /* e.g. X-Signature */
    const char *sig_prefix;       /* e.g. "sha256=" */
} cv_webhook_http_opts_t;

/* One signed POST waiting for the run loop. Owned by its connection:
   valid from take until answer. */
typedef struct cv_webhook_post {
    char *body;
    size_t len;
    cv_webhook_span_t *spans;     /* the records */
    size_t count;
    struct cv_webhook_post *next; /* in the list take returns */
    /* private to cv_webhook_http.c */
    struct MHD_Connection *conn;
    size_t cap;
    int state;
    unsigned status;
    unsigned refuse;              /* status to answer once the body is read, or 0 */
    uint64_t discarded;           /* body bytes dropped since refused */
} cv_webhook_post_t;

/* Counters since start (read from any thread). */
typedef struct {
    uint64_t accepted;         /* POSTs answered 202 */
    uint64_t records;          /* records in them */
    uint64_t bad_signature;    /* 401 */
    uint64_t too_large;        /* 413 */
    uint64_t busy;             /* 503 */
    uint64_t not_found;        /* 404 and 405 */
    uint64_t empty;            /* 400 */
    uint64_t not_json;         /* bodies spooled although not JSON records */
} cv_webhook_http_stats_t;

/* Binds and starts the server thread. NULL with a reason in err. */
cv_webhook_http_t *cv_webhook_http_new(const cv_webhook_http_opts_t *opts, char *err, size_t errlen);

/* Answers every waiting post 503, stops the server, frees. */
void cv_webhook_http_destroy(cv_webhook_http_t **self_p);

/* The port actually bound. */
uint16_t cv_webhook_http_port(const cv_webhook_http_t *self);

/* Whether new POSTs may be queued; when false they are answered 503 at
   once (the run loop says so after each step). */
void cv_webhook_http_set_accepting(cv_webhook_http_t *self, bool accepting);

/* Takes every queued post, oldest first (NULL: none). */
cv_webhook_post_t *cv_webhook_http_take(cv_webhook_http_t *self);

/* How many posts wait in the queue. */
size_t cv_webhook_http_waiting(cv_webhook_http_t *self);

/* Answers a taken post (202 with the number of records, 413, 503) and
   resumes its connection; post is invalid afterwards. */
void cv_webhook_http_answer(cv_webhook_http_t *self, cv_webhook_post_t *post, unsigned status);

cv_webhook_http_stats_t cv_webhook_http_stats(const cv_webhook_http_t *self);

#endif
