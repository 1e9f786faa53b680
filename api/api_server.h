/*  api_server — the HTTP side of civibus-api (libmicrohttpd, thread pool).

    The server reads the request (body capped at http.max_body_bytes: 413
    past it, without reading the rest into memory), checks that the path,
    the query values and the body are valid UTF-8 and the path holds no
    "..", splits the path into segments and hands a cv_api_req_t to the
    router (api_router.c, serving the route table of api_route_table.c).
    The router puts the path parameters in `params`, and the handler fills
    `status` and `reply` (a JSON object) or `text` (with its content type:
    ready JSON text, such as the timeline api_timeline.c writes from rows,
    goes this way); the server sends it with no-store caching headers (and
    `allow` as the Allow header of a 405).
    Every error is a JSON object {"error": {"code", "message"}} with a 4xx
    status; a 5xx only when PostgreSQL fails (503) — never a crash. */
#ifndef CV_API_SERVER_H
#define CV_API_SERVER_H

#include "api_access.h"
#include "api_audit.h"
#include "api_config.h"
#include "api_ratelimit.h"

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
    cv_api_ratelimit_t *track_limit;
    atomic_ulong requests[6];        /* by status class: [2] = 2xx ... [5] = 5xx */
    atomic_ulong track_limited;
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
    /* answer */
    int status;
    json_t *reply;                   /* owned; sent as JSON */
    char *text;                      /* owned; sent as text (metrics, XML) */
    const char *content_type;        /* of text; default Prometheus text */
    char allow[48];                  /* the Allow header of a 405, "" otherwise */
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

/* For tests/fuzz/ only: the server's own checks of the path (split into
   req->seg, pointing into copy) and of a query key and value (after
   cv_api_server__unescape, the server's %HH decoding). */
bool cv_api_server__split(const char *url, char *copy, size_t cap, cv_api_req_t *req);
size_t cv_api_server__unescape(char *s);
bool cv_api_server__arg_ok(const char *key, const char *value);

#endif
