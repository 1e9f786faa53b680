/*  api_server — the HTTP side of civibus-api (libmicrohttpd, thread pool).

    Limits, each answered at once with a JSON error (docs/api.md, "Limits"):
    a request target over http.max_url_bytes is 414, more than
    http.max_params query parameters 400, request headers over
    http.max_header_bytes 431, a body over http.max_body_bytes 413 (from its
    Content-Length before any of it is read; a chunked body at its end, its
    excess dropped, and closed without an answer past twice the limit). libmicrohttpd's memory per connection is sized from
    these limits; a head too big even for that is answered 414 / 431 by
    libmicrohttpd itself (an HTML body), at once too. The head of a request
    must arrive within http.header_timeout_s and one address holds at most
    http.per_address_connections connections (api_conn.c). The one route
    that takes files, POST /v1/requests with a bearer token, has the larger
    cap its attachments need (cv_api_body_cap, api_attachments.c).

    The server then checks that the path, the query keys and values and the
    body are valid UTF-8 without NUL (400) and the path holds no "..",
    splits the path into segments, finds the client address (the peer, or
    through a trusted proxy the address X-Forwarded-For gives,
    api_conn.c) and hands a cv_api_req_t to the router (api_router.c,
    serving the route table of api_route_table.c). The router puts the path
    parameters in `params`, and the handler fills `status` and `reply` (a
    JSON object) or `text` (with its content type: ready JSON text, such as
    the timeline api_timeline.c writes from rows, goes this way); the server
    sends it with no-store caching headers (`allow` as the Allow header of
    a 405, a WWW-Authenticate challenge with every 401).
    Every error is a JSON object {"error": {"code", "message"}} with a 4xx
    status — under /open311/ the specification's [{"code", "description"}]
    (or its XML), the server's own errors too; a 5xx only when PostgreSQL
    fails (503) — never a crash. */
#ifndef CV_API_SERVER_H
#define CV_API_SERVER_H

#include "api_access.h"
#include "api_audit.h"
#include "api_config.h"
#include "api_conn.h"
#include "api_ratelimit.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define CV_API_MAX_SEGMENTS 8
#define CV_API_PATH_MAX 2048         /* longer paths are refused (400) */
#define CV_API_MAX_PARAMS 4

typedef struct {
    const cv_api_config_t *config;
    cv_api_audit_t *audit;
    cv_api_ratelimit_t *track_limit;     /* public lookups, per client address */
    cv_api_ratelimit_t *owner_limit;     /* citizen searches by tracking code, per token */
    cv_api_conn_t *conns;                /* header deadline, per-address connections */
    atomic_ulong requests[6];        /* by status class: [2] = 2xx ... [5] = 5xx */
    atomic_ulong track_limited;
    atomic_ulong owner_limited;
    atomic_ulong refused[4];         /* by limit: [0] URL, [1] parameters, [2] headers, [3] body */
    struct cv_api_web *web;          /* the pages (api_web.c), or NULL without web.dir */
    char *costs;                     /* the cost per contact by channel, JSON (api_dashboard.c) */
    bool links;                      /* citizen links on (a key was loaded) */
    unsigned char link_key[32];
} cv_api_ctx_t;

/* A request's path parameters: names and values (decoded) copied in buf. */
typedef struct {
    int n;
    const char *name[CV_API_MAX_PARAMS];
    const char *value[CV_API_MAX_PARAMS];
    char buf[CV_API_PATH_MAX + 256];
} cv_api_params_t;

struct cv_api_route;

typedef struct {
    cv_api_ctx_t *ctx;
    void *conn;                      /* struct MHD_Connection */
    const char *method;
    char *seg[CV_API_MAX_SEGMENTS];  /* path segments (decoded) */
    int nseg;
    const struct cv_api_route *route;   /* the route served (api_route.h), NULL before */
    cv_api_params_t params;          /* of the route's pattern */
    const char *body;
    size_t body_len;
    char client[64];                 /* client address bytes, for rate limits */
    size_t client_len;
    char client_text[INET6_ADDRSTRLEN];  /* the same as text, for the audit ("" unknown) */
    /* answer */
    int status;
    json_t *reply;                   /* owned; sent as JSON */
    char *text;                      /* owned; sent as text (metrics, XML) */
    const char *content_type;        /* of text; default Prometheus text */
    size_t text_len;                 /* of text when it is bytes (a file: cv_api_reply_bytes); 0 = a C string */
    char *disposition;               /* owned; a Content-Disposition header, or NULL */
    char allow[48];                  /* the Allow header of a 405, "" otherwise */
    bool page;                       /* a page or an asset (api_web.c): its headers */
    char session[65];                /* the console session authenticating it (api_session.c), "" */
    char set_cookie[200];            /* a Set-Cookie header to send, "" for none */
    char etag[24];                   /* of a page or an asset, or "" */
} cv_api_req_t;

typedef struct cv_api_server cv_api_server_t;

cv_api_server_t *cv_api_server_new(cv_api_ctx_t *ctx, char *err, size_t errlen);
int cv_api_server_port(const cv_api_server_t *self);
void cv_api_server_destroy(cv_api_server_t **self_p);

/* For the router and the handlers. */
const char *cv_api_header(cv_api_req_t *req, const char *name);
/* A query-string value; NULL when absent. */
const char *cv_api_query(cv_api_req_t *req, const char *name);
/* A path parameter of the route's pattern ({name}); NULL when it has none. */
const char *cv_api_param(const cv_api_req_t *req, const char *name);
/* Sets an error reply; returns the status. */
int cv_api_error(cv_api_req_t *req, int status, const char *code, const char *message);
/* Sets a JSON reply (takes the reference). */
int cv_api_reply(cv_api_req_t *req, int status, json_t *reply);
/* Sets a reply whose body is JSON text already (malloc'd, taken; sent as
   is, with the headers of cv_api_reply). */
int cv_api_reply_json_text(cv_api_req_t *req, int status, char *json);

/* Sets a reply of bytes (malloc'd, taken; len > 0) of type `type` (a
   constant), with a Content-Disposition header (malloc'd, taken; or NULL). */
int cv_api_reply_bytes(cv_api_req_t *req, int status, char *bytes, size_t len, const char *type,
                       char *disposition);

/* For tests/fuzz/ only: the server's own checks of the path (split into
   req->seg, pointing into copy) and of a query key and value (after
   cv_api_server__unescape, the server's %HH decoding). */
bool cv_api_server__split(const char *url, char *copy, size_t cap, cv_api_req_t *req);
size_t cv_api_server__unescape(char *s);
bool cv_api_server__arg_ok(const char *key, const char *value);

#endif
