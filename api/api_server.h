/*  api_server — the HTTP side of civibus-api (libmicrohttpd, thread pool).

    The server reads the request (body capped at http.max_body_bytes: 413
    past it, without reading the rest into memory), checks that the path,
    the query values and the body are valid UTF-8 and the path holds no
    "..", splits the path into segments and hands a cv_api_req_t to the
    router (api_routes.c). The router fills `status` and `reply` (a JSON
    object) or `text` (with its content type: ready JSON text, such as the
    timeline api_timeline.c writes from rows, goes this way); the server
    sends it with no-store caching headers.
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

typedef struct {
    const cv_api_config_t *config;
    cv_api_audit_t *audit;
    cv_api_ratelimit_t *track_limit;
    atomic_ulong requests[6];        /* by status class: [2] = 2xx ... [5] = 5xx */
    atomic_ulong track_limited;
    bool links;                      /* citizen links on (a key was loaded) */
    unsigned char link_key[32];
} cv_api_ctx_t;

typedef struct {
    cv_api_ctx_t *ctx;
    void *conn;                      /* struct MHD_Connection */
    const char *method;
    char *seg[CV_API_MAX_SEGMENTS];  /* path segments (decoded) */
    int nseg;
    const char *body;
    size_t body_len;
    char client[64];                 /* client address bytes, for rate limits */
    size_t client_len;
    /* answer */
    int status;
    json_t *reply;                   /* owned; sent as JSON */
    char *text;                      /* owned; sent as text (metrics, XML) */
    const char *content_type;        /* of text; default Prometheus text */
} cv_api_req_t;

typedef struct cv_api_server cv_api_server_t;

cv_api_server_t *cv_api_server_new(cv_api_ctx_t *ctx, char *err, size_t errlen);
int cv_api_server_port(const cv_api_server_t *self);
void cv_api_server_destroy(cv_api_server_t **self_p);

/* For the router. */
const char *cv_api_header(cv_api_req_t *req, const char *name);
/* A query-string value; NULL when absent. */
const char *cv_api_query(cv_api_req_t *req, const char *name);
/* Sets an error reply; returns the status. */
int cv_api_error(cv_api_req_t *req, int status, const char *code, const char *message);
/* Sets a JSON reply (takes the reference). */
int cv_api_reply(cv_api_req_t *req, int status, json_t *reply);
/* Sets a reply whose body is JSON text already (malloc'd, taken; sent as
   is, with the headers of cv_api_reply). */
int cv_api_reply_json_text(cv_api_req_t *req, int status, char *json);

/* The router (api_routes.c), and what its handlers share with api_open311.c. */
void cv_api_route(cv_api_req_t *req);
/* A prepared statement's rows; NULL after answering 503 (or 400 for a value
   PostgreSQL refuses, SQLSTATE class 22). */
#include "api_db.h"
PGresult *cv_api_sql(cv_api_req_t *req, cv_sql_t stmt, int n, const char *const *values);
/* Bearer token → principal; 0, or the error status already answered (401/503). */
int cv_api_authenticate(cv_api_req_t *req, cv_api_principal_t *who);
/* Queues an audit row; 0, or 503 already answered. */
int cv_api_audit_read(cv_api_req_t *req, const cv_api_principal_t *who, const char *action,
                      int64_t citizen_id, int64_t request_id, int results);

/* Open311 GeoReport v2 under /open311/v2/ (api_open311.c). */
void cv_api_open311(cv_api_req_t *req);

#endif
