/*  api_server — see api_server.h. One MHD daemon with an internal thread
    pool. Per request, libmicrohttpd calls the URI log callback as soon as
    the request line is in, before it parses the query string: the target's
    length and its parameter count are measured there, and a query string
    refused is cut off in place (libmicrohttpd 0.9.75 would otherwise store
    every parameter in the connection's memory pool, and when that runs
    out it neither answers nor closes: the request hung until the idle
    timeout). Then the access handler is called several times: first
    (headers: the refusals found so far, the header size and an over-long
    Content-Length are answered at once), then with each body chunk
    (accumulated up to the limit; past it answered 413 at once, written to
    the socket since libmicrohttpd 0.9.75 cannot queue an answer mid-body,
    the rest dropped, and the connection closed at the end of the body or
    once it passes twice the limit), then a last time with no data, when the request is routed and
    answered. */
#include "api_server.h"

#include "api_attachments.h"
#include "api_handler.h"
#include "api_route.h"
#include "api_tls.h"
#include "api_util.h"
#include "api_web.h"
#include "cv_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cv_api_server {
    struct MHD_Daemon *daemon;
    cv_api_ctx_t *ctx;
    int port;
};

/* A request's state across the calls of the access handler (its con_cls). */
typedef enum { REFUSE_NONE = 0, REFUSE_URL, REFUSE_PARAMS } refusal_t;

typedef struct {
    bool started;               /* the first call (headers) happened */
    refusal_t refuse;           /* found by the URI log callback */
    char *body;
    size_t len;
    bool too_large;             /* over max_body_bytes */
    bool answered_early;        /* its 413 written at once (s_early_413): never answered again */
    bool answered;              /* an answer is queued already (at the headers): the rest is dropped */
    size_t received;            /* bytes of the body so far */
    size_t cap;                 /* this request's body cap (cv_api_body_cap) */
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

int cv_api_reply_bytes(cv_api_req_t *req, int status, char *bytes, size_t len, const char *type,
                       char *disposition)
{
    cv_api_reply_json_text(req, status, bytes);
    req->content_type = type;
    req->text_len = len;
    free(req->disposition);
    req->disposition = disposition;
    return status;
}

int cv_api_error(cv_api_req_t *req, int status, const char *code, const char *message)
{
    return cv_api_reply(req, status, json_pack("{s:{s:s, s:s}}", "error", "code", code,
                                               "message", message));
}

/* One answer. `page` (may be NULL) is the request it answers: its cookie, a
   page's headers (api_web.c) and a file's Content-Disposition. */
static enum MHD_Result s_send_n(struct MHD_Connection *conn, cv_api_ctx_t *ctx, int status, char *body,
                                size_t len, const char *type, const char *allow, const cv_api_req_t *page)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", type);
    if (page && page->disposition)
        MHD_add_response_header(resp, "Content-Disposition", page->disposition);
    if (allow && *allow)
        MHD_add_response_header(resp, "Allow", allow);
    if (status == 401)          /* RFC 7235: a 401 names the scheme it wants */
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"civibus\"");
    if (page && page->set_cookie[0])
        MHD_add_response_header(resp, "Set-Cookie", page->set_cookie);
    if (page && page->page) {   /* api_web.c: revalidated, never framed, no Referer out */
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        if (page->etag[0])
            MHD_add_response_header(resp, "ETag", page->etag);
        MHD_add_response_header(resp, "Content-Security-Policy", CV_API_WEB_CSP);
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    } else
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (ctx->config->tls_cert)  /* served over TLS (api_tls.h): browsers keep to https */
        MHD_add_response_header(resp, "Strict-Transport-Security", CV_API_HSTS);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned) status, resp);
    MHD_destroy_response(resp);
    if (status >= 100 && status < 600)
        atomic_fetch_add(&ctx->requests[status / 100], 1);
    return rc;
}

static enum MHD_Result s_send(struct MHD_Connection *conn, cv_api_ctx_t *ctx, int status,
                              char *body, const char *type, const char *allow, const cv_api_req_t *page)
{
    return s_send_n(conn, ctx, status, body, strlen(body), type, allow, page);
}

/* The body of a server-level error (before routing): the API's JSON error,
   or under /open311/ the specification's format (api_open311.c); malloc'd. */
static char *s_error_body(const char *url, int status, const char *code, const char *message,
                          const char **type)
{
    *type = "application/json; charset=utf-8";
    if (url && strncmp(url, "/open311/", 9) == 0)
        return cv_api_o311_error_body(url, status, message, type);
    json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return body;
}

static enum MHD_Result s_send_error(struct MHD_Connection *conn, cv_api_ctx_t *ctx, const char *url,
                                    int status, const char *code, const char *message)
{
    const char *type;
    char *body = s_error_body(url, status, code, message, &type);
    if (!body)
        return MHD_NO;
    return s_send(conn, ctx, status, body, type, NULL, NULL);
}

/* A 413 in the middle of a chunked body. libmicrohttpd 0.9.75 refuses to
   queue an answer while a body is being read (MHD_queue_response answers
   MHD_NO until the whole request is in), so the answer is written to the
   socket here, the moment the body passes the limit, with "Connection:
   close": nothing else is ever written on this connection, whose body is
   read and dropped until it ends (then closed) or passes twice the limit
   (closed at once). A client that reads while it sends (curl does) stops
   there. False when it could not be written at once (a full socket
   buffer): then 413 at the end of the body, as before. */
static bool s_early_413(struct MHD_Connection *conn, cv_api_ctx_t *ctx, const char *url)
{
    if (ctx->config->tls_cert)   /* the socket carries TLS records: the 413 at the end of the body then */
        return false;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const char *type;
    char *body = ci ? s_error_body(url, 413, "too_large", "the body is over the size limit", &type) : NULL;
    if (!body)
        return false;
    char *all = NULL;
    int n = asprintf(&all, "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "\r\n%s", type, strlen(body), body);
    free(body);
    /* a part written (never seen: ~300 bytes to an idle socket) counts as sent: never a second answer */
    bool sent = n > 0 && send(ci->connect_fd, all, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT) > 0;
    if (n > 0)
        free(all);
    if (sent)
        atomic_fetch_add(&ctx->requests[4], 1);
    return sent;
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

/* The URI log callback: the request line is in, its query string not yet
   parsed. Measures the target; a refused query string is cut off here, so
   libmicrohttpd parses none of it (the answer is sent at the first call of
   the access handler). `uri` points into the connection's own read buffer,
   which libmicrohttpd writes NULs into itself: writing one more, just past
   the '?', is what makes its parser see an empty query. */
static void *s_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    cv_api_ctx_t *ctx = cls;
    upload_t *up = calloc(1, sizeof *up);
    if (!up)
        return NULL;
    size_t len = strlen(uri);
    char *q = strchr(uri, '?');
    int params = 0;
    if (q)
        for (const char *p = q + 1; *p; ) {
            const char *amp = strchr(p, '&');
            size_t n = amp ? (size_t) (amp - p) : strlen(p);
            params += n > 0;
            p += n + (amp != NULL);
        }
    if (len > (size_t) ctx->config->max_url_bytes)
        up->refuse = REFUSE_URL;
    else if (params > ctx->config->max_params)
        up->refuse = REFUSE_PARAMS;
    if (up->refuse && q)
        q[1] = 0;
    return up;
}

/* The sum of the request's header fields, as "name: value\r\n". */
static enum MHD_Result s_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    *(size_t *) cls += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* The client address: the peer's, or for a trusted proxy the one its
   X-Forwarded-For gives (api_conn.c); as bytes for the rate limits (an
   IPv6 address by its /64) and as text for the audit. */
static void s_client(struct MHD_Connection *conn, cv_api_ctx_t *ctx, cv_api_req_t *req)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    req->client_len = 0;
    req->client_text[0] = 0;
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    unsigned char addr[16];
    int family = sa->sa_family;
    if (family == AF_INET)
        memcpy(addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
    else if (family == AF_INET6)
        memcpy(addr, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
    else
        return;
    if (ctx->config->ntrusted && cv_api_config_trusted(ctx->config, family, addr)) {
        int ffamily;
        unsigned char faddr[16];
        const char *xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
        if (cv_api_conn_forwarded(ctx->config, xff, &ffamily, faddr)) {
            family = ffamily;
            memcpy(addr, faddr, 16);
        }
    }
    memcpy(req->client, addr, family == AF_INET ? 4 : 8);
    req->client_len = family == AF_INET ? 4 : 8;
    inet_ntop(family, addr, req->client_text, sizeof req->client_text);
}

/* Who asks, for the replica's read-your-writes (api_db.c): a hash of the
   bearer token, else of the session cookie, else of the client address.
   Only ever compared with itself, in memory. */
static uint64_t s_caller(struct MHD_Connection *conn, const cv_api_req_t *req)
{
    const char *who = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!who)
        who = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Cookie");
    uint64_t h = 1469598103934665603ULL;            /* FNV-1a */
    const unsigned char *p = who ? (const unsigned char *) who : (const unsigned char *) req->client;
    size_t n = who ? strlen(who) : req->client_len;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
    cv_api_ctx_t *ctx = cls;
    const cv_api_config_t *cfg = ctx->config;
    upload_t *up = *con_cls;
    if (!up) {                                   /* the URI log callback could not allocate */
        up = calloc(1, sizeof *up);
        if (!up)
            return MHD_NO;
        *con_cls = up;
    }
    if (up->answered) {                          /* refused at the headers: drop the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!up->started) {                          /* first call: headers only */
        up->started = true;
        if (ctx->conns)
            cv_api_conn_head_done(ctx->conns, conn);
        up->answered = true;                     /* unless the checks below all pass */
        if (up->refuse == REFUSE_URL) {
            atomic_fetch_add(&ctx->refused[0], 1);
            return s_send_error(conn, ctx, url, 414, "uri_too_long", "the request target is over the length limit");
        }
        if (up->refuse == REFUSE_PARAMS) {
            atomic_fetch_add(&ctx->refused[1], 1);
            return s_send_error(conn, ctx, url, 400, "too_many_parameters", "the query has too many parameters");
        }
        size_t hsize = 0;
        MHD_get_connection_values(conn, MHD_HEADER_KIND, s_header_size, &hsize);
        if (hsize > (size_t) cfg->max_header_bytes) {
            atomic_fetch_add(&ctx->refused[2], 1);
            return s_send_error(conn, ctx, url, 431, "headers_too_large", "the request headers are over the size limit");
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        up->cap = (size_t) cv_api_body_cap(cfg, method, url,
                                           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"));
        int64_t n;
        if (cl && (!cv_api_parse_int(cl, 0, INT64_MAX, &n) || n > (int64_t) up->cap)) {
            atomic_fetch_add(&ctx->refused[3], 1);
            return s_send_error(conn, ctx, url, 413, "too_large", "the body is over the size limit");
        }
        up->answered = false;
        return MHD_YES;
    }
    if (*upload_data_size) {                     /* a body chunk */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        up->received += n;
        if (!up->too_large && up->len + n > up->cap) {
            up->too_large = true;
            free(up->body);
            up->body = NULL;
            up->len = 0;
            atomic_fetch_add(&ctx->refused[3], 1);
            up->answered_early = s_early_413(conn, ctx, url);
        }
        /* a chunked body past the limit: answered 413 at once (s_early_413),
           the rest read and dropped — unless it goes on past twice the limit:
           then the connection is closed at once */
        if (up->too_large)
            return up->received > 2 * up->cap ? MHD_NO : MHD_YES;
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
    if (up->too_large && up->answered_early)     /* its 413 is sent: close */
        return MHD_NO;
    if (up->too_large)                           /* a chunked body over the limit */
        return s_send_error(conn, ctx, url, 413, "too_large", "the body is over the size limit");
    cv_api_req_t req = { .ctx = ctx, .conn = conn, .method = method, .body = up->body,
                         .body_len = up->len, .status = 500 };
    char path[CV_API_PATH_MAX];
    bool bad_arg = false;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, s_check_arg, &bad_arg);
    if (!s_split(url, path, sizeof path, &req) || bad_arg)
        return s_send_error(conn, ctx, url, 400, "bad_path", "the path or a query value is not valid");
    if (up->body && !cv_api_utf8_valid(up->body, up->len, false))
        return s_send_error(conn, ctx, url, 400, "invalid_utf8", "the body is not valid UTF-8 (or holds a NUL)");
    s_client(conn, ctx, &req);
    bool read_only = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    cv_api_db_request_begin(read_only, s_caller(conn, &req));
    if (!cv_api_web_serve(ctx->web, &req))
        cv_api_route(&req);
    cv_api_db_request_end(!read_only && req.status >= 200 && req.status < 300);
    enum MHD_Result rc;
    if (req.text) {
        rc = s_send_n(conn, ctx, req.status, req.text, req.text_len ? req.text_len : strlen(req.text),
                      req.content_type ? req.content_type : "text/plain; version=0.0.4; charset=utf-8",
                      req.allow, &req);
    } else {
        if (!req.reply)
            cv_api_error(&req, 500, "internal", "no reply");
        char *body = json_dumps(req.reply, JSON_COMPACT);
        rc = body ? s_send(conn, ctx, req.status, body, "application/json; charset=utf-8", req.allow, &req)
                  : MHD_NO;
    }
    json_decref(req.reply);
    free(req.disposition);
    return rc;
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    cv_api_ctx_t *ctx = cls;
    if (ctx->conns && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        cv_api_conn_request_done(ctx->conns, conn);
    upload_t *up = *con_cls;
    if (up) {
        free(up->body);
        free(up);
        *con_cls = NULL;
    }
}

/* libmicrohttpd's messages, into our log at their level (its own answers
   to a request head over the memory pool are counted as refusals too). */
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    cv_api_ctx_t *ctx = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    unsigned status;
    if (sscanf(line, "Error processing request (HTTP response code is %u", &status) == 1) {
        /* a head too big for the pool (414, 431) or malformed (400, 505):
           answered by libmicrohttpd itself, with its own HTML (docs/api.md) */
        if (ctx && (status == 414 || status == 431))
            atomic_fetch_add(&ctx->refused[status == 414 ? 0 : 2], 1);
        cv_info("http", "libmicrohttpd answered %u itself (a request head over its memory pool, or malformed)",
                status);
    } else if (strncmp(line, "Application reported internal error", 35) == 0)
        cv_debug("http", "connection closed by the API (a body past the limit, or out of memory)");
    else if (strstr(line, "Failed to") && (strstr(line, "bind") || strstr(line, "listen") || strstr(line, "thread")))
        cv_error("http", "%s", line);
    else if (strstr(line, "onnection") || strstr(line, "ocket") || strstr(line, "request")
             || strstr(line, "header"))
        cv_info("http", "%s", line);            /* one client's connection: not the server's trouble */
    else
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
    /* libmicrohttpd's memory per connection: the head (request line and
       headers, read in place) and its records (each query parameter and
       header a record of about 64 bytes) within the limits, twice over,
       plus room for the body's chunks and the answer's headers */
    size_t head = (size_t) cfg->max_url_bytes + (size_t) cfg->max_header_bytes;
    size_t pool = 2 * head + 64 * ((size_t) cfg->max_params + (size_t) cfg->max_header_bytes / 8) + 32768;
    /* HTTPS (api_tls.h): the PEM texts read and checked with the config */
    struct MHD_OptionItem tls[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, cfg->tls_cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, cfg->tls_key },
        { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *) CV_API_TLS_PRIORITIES },
        { MHD_OPTION_END, 0, NULL },
    };
    if (!cfg->tls_cert)
        tls[0].option = MHD_OPTION_END;
    self->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (cfg->tls_cert ? MHD_USE_TLS : 0),
        0, NULL, NULL,
        s_handle, ctx,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, ctx,    /* first: every message is ours */
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned) cfg->threads,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) cfg->idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) cfg->max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        MHD_OPTION_URI_LOG_CALLBACK, s_uri_log, ctx,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, ctx,
        MHD_OPTION_NOTIFY_CONNECTION, cv_api_conn_notify, ctx->conns,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL,
        MHD_OPTION_ARRAY, tls,
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
