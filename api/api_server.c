/*  api_server — see api_server.h. One MHD daemon with an internal thread
    pool; the access handler is called several times per request: first
    (headers; an over-long Content-Length is refused at once), then with
    each body chunk (accumulated up to the limit), then a last time with no
    data, when the request is routed and answered. */
#include "api_server.h"

#include "api_route.h"
#include "api_util.h"
#include "cv_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cv_api_server {
    struct MHD_Daemon *daemon;
    cv_api_ctx_t *ctx;
    int port;
};

typedef struct {
    char *body;
    size_t len;
    bool too_large;
} upload_t;

const char *cv_api_header(cv_api_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *cv_api_query(cv_api_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int cv_api_reply(cv_api_req_t *req, int status, json_t *reply)
{
    json_decref(req->reply);
    req->reply = reply;
    req->status = status;
    return status;
}

int cv_api_reply_json_text(cv_api_req_t *req, int status, char *json)
{
    json_decref(req->reply);
    req->reply = NULL;
    free(req->text);
    req->text = json;
    req->content_type = "application/json; charset=utf-8";
    req->status = status;
    return status;
}

int cv_api_error(cv_api_req_t *req, int status, const char *code, const char *message)
{
    return cv_api_reply(req, status, json_pack("{s:{s:s, s:s}}", "error", "code", code,
                                               "message", message));
}

static enum MHD_Result s_send(struct MHD_Connection *conn, cv_api_ctx_t *ctx, int status,
                              char *body, const char *type, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body,
                                                                MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", type);
    if (allow && *allow)
        MHD_add_response_header(resp, "Allow", allow);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned) status, resp);
    MHD_destroy_response(resp);
    if (status >= 100 && status < 600)
        atomic_fetch_add(&ctx->requests[status / 100], 1);
    return rc;
}

static enum MHD_Result s_send_error(struct MHD_Connection *conn, cv_api_ctx_t *ctx, int status,
                                    const char *code, const char *message)
{
    json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s_send(conn, ctx, status, body, "application/json; charset=utf-8", NULL);
}

/* Path → segments. Refuses invalid UTF-8, control characters, "." and ".."
   segments and too many segments. The segments point into `copy`. */
static bool s_split(const char *url, char *copy, size_t cap, cv_api_req_t *req)
{
    size_t len = strlen(url);
    if (len == 0 || len >= cap || url[0] != '/' || !cv_api_utf8_valid(url, len, true))
        return false;
    memcpy(copy, url, len + 1);
    req->nseg = 0;
    char *save = NULL;
    for (char *s = strtok_r(copy + 1, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (req->nseg == CV_API_MAX_SEGMENTS || strcmp(s, "..") == 0 || strcmp(s, ".") == 0
            || strchr(s, '\\'))
            return false;
        req->seg[req->nseg++] = s;
    }
    return true;
}

static enum MHD_Result s_check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    bool *bad = cls;
    if (!cv_api_utf8_valid(key, strlen(key), true)
        || (value && (strlen(value) > 1024 || !cv_api_utf8_valid(value, strlen(value), true)))) {
        *bad = true;
        return MHD_NO;
    }
    return MHD_YES;
}

/* MHD's %HH decoding of the path and the query values, except that %00
   becomes the byte 0xFF: a NUL would cut the C string short (the id
   "1%00x" read as "1"), while 0xFF is invalid UTF-8, refused with 400. */
static size_t s_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    for (char *p = s; (p = strstr(p, "%00")) != NULL; p += 3)
        p[1] = p[2] = 'F';
    return MHD_http_unescape(s);
}

static void s_client(struct MHD_Connection *conn, cv_api_req_t *req)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    req->client_len = 0;
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        memcpy(req->client, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        req->client_len = 4;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(req->client, &((const struct sockaddr_in6 *) sa)->sin6_addr, 8);   /* the /64 */
        req->client_len = 8;
    }
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
    cv_api_ctx_t *ctx = cls;
    upload_t *up = *con_cls;
    if (!up) {                                   /* first call: headers only */
        up = calloc(1, sizeof *up);
        if (!up)
            return MHD_NO;
        *con_cls = up;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        int64_t n;
        if (cl && (!cv_api_parse_int(cl, 0, INT64_MAX, &n) || n > ctx->config->max_body_bytes))
            up->too_large = true;
        return MHD_YES;
    }
    if (*upload_data_size) {                     /* a body chunk */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (up->too_large || up->len + n > (size_t) ctx->config->max_body_bytes) {
            up->too_large = true;
            free(up->body);
            up->body = NULL;
            up->len = 0;
            return MHD_YES;
        }
        char *grown = realloc(up->body, up->len + n + 1);
        if (!grown)
            return MHD_NO;
        memcpy(grown + up->len, upload_data, n);
        up->body = grown;
        up->len += n;
        up->body[up->len] = 0;
        return MHD_YES;
    }
    /* the whole request is in */
    if (up->too_large)
        return s_send_error(conn, ctx, 413, "too_large", "the body is over the size limit");
    cv_api_req_t req = { .ctx = ctx, .conn = conn, .method = method, .body = up->body,
                         .body_len = up->len, .status = 500 };
    char path[CV_API_PATH_MAX];
    bool bad_arg = false;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, s_check_arg, &bad_arg);
    if (!s_split(url, path, sizeof path, &req) || bad_arg)
        return s_send_error(conn, ctx, 400, "bad_path", "the path or a query value is not valid");
    if (up->body && !cv_api_utf8_valid(up->body, up->len, false))
        return s_send_error(conn, ctx, 400, "invalid_utf8", "the body is not valid UTF-8");
    s_client(conn, &req);
    cv_api_route(&req);
    enum MHD_Result rc;
    if (req.text) {
        rc = s_send(conn, ctx, req.status, req.text,
                    req.content_type ? req.content_type : "text/plain; version=0.0.4; charset=utf-8",
                    req.allow);
    } else {
        if (!req.reply)
            cv_api_error(&req, 500, "internal", "no reply");
        char *body = json_dumps(req.reply, JSON_COMPACT);
        rc = body ? s_send(conn, ctx, req.status, body, "application/json; charset=utf-8", req.allow)
                  : MHD_NO;
    }
    json_decref(req.reply);
    return rc;
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    upload_t *up = *con_cls;
    if (up) {
        free(up->body);
        free(up);
        *con_cls = NULL;
    }
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    cv_warn("http", "%s", line);
}

cv_api_server_t *cv_api_server_new(cv_api_ctx_t *ctx, char *err, size_t errlen)
{
    const cv_api_config_t *cfg = ctx->config;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t) cfg->port) };
    if (inet_pton(AF_INET, cfg->address, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "%s: listen.address '%s' is not an IPv4 address", cfg->file, cfg->address);
        return NULL;
    }
    cv_api_server_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = ctx;
    self->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        s_handle, ctx,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned) cfg->threads,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) 1000,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) 64,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d", cfg->address, cfg->port);
        free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = di ? di->port : cfg->port;
    return self;
}

int cv_api_server_port(const cv_api_server_t *self)
{
    return self->port;
}

void cv_api_server_destroy(cv_api_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    MHD_stop_daemon((*self_p)->daemon);
    free(*self_p);
    *self_p = NULL;
}

/* For tests/fuzz/ (fuzz_api_path, fuzz_api_query): the path and query-value
   checks above are static, s_split filling the request and the other two
   being libmicrohttpd callbacks; these reach them without a connection. */
bool cv_api_server__split(const char *url, char *copy, size_t cap, cv_api_req_t *req)
{
    return s_split(url, copy, cap, req);
}

size_t cv_api_server__unescape(char *s)
{
    return s_unescape(NULL, NULL, s);
}

bool cv_api_server__arg_ok(const char *key, const char *value)
{
    bool bad = false;
    return s_check_arg(&bad, MHD_GET_ARGUMENT_KIND, key, value) == MHD_YES && !bad;
}
