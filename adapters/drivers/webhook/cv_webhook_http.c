/*  driver_webhook_http — see cv_webhook_http.h.

    libmicrohttpd calls s_handler several times per request: once with the
    headers (s_begin: every check that needs no body), once per piece of
    body (s_append), once at the end (s_end: signature, records, queue and
    suspend), and once more after the run loop resumed the connection
    (the answer it chose is sent). A post's state says which. A refused
    request's body is read and dropped (up to DISCARD_MAX) before the
    answer goes out: a client that is still sending when the server
    closes would see a broken pipe instead of the answer, and retry.

    Threads: MHD's one polling thread runs the handler; the run loop
    thread calls take/answer/set_accepting. They share the queue (mutex),
    the accepting flag and the counters (atomics). A post is only touched
    by the run loop between take and answer, while its connection is
    suspended, so MHD does not look at it then. */
#include "cv_webhook_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cv_hash.h"
#include "cv_log.h"

#define COMP "webhook"
#define NOISY_PER_MINUTE 20   /* individual lines about bad bodies, then counts only */
#define DISCARD_MAX (16u << 20) /* body bytes read and dropped before a refusal is sent */

enum { S_READING = 0, S_REJECTED, S_QUEUED, S_DONE };

struct cv_webhook_http {
    cv_webhook_http_opts_t opts;
    char *path, *sig_header, *sig_prefix;
    struct MHD_Daemon *daemon;
    uint16_t port;
    pthread_mutex_t lock;
    cv_webhook_post_t *head, *tail;   /* queued for the run loop */
    bool stopping;
    atomic_bool accepting;
    atomic_int answering;             /* answered by the run loop, not yet sent */
    struct {
        atomic_uint_least64_t accepted, records, bad_signature, too_large, busy, not_found, empty, not_json;
    } stats;
    atomic_bool started;              /* MHD messages before: kept for the start error */
    char start_error[256];
    time_t noisy_minute;              /* HTTP thread only */
    int noisy_count;
};

/* ---- answers ------------------------------------------------------------ */

static void s_count(cv_webhook_http_t *self, unsigned status, size_t records)
{
    switch (status) {
    case MHD_HTTP_ACCEPTED:
        atomic_fetch_add(&self->stats.accepted, 1);
        atomic_fetch_add(&self->stats.records, records);
        break;
    case MHD_HTTP_UNAUTHORIZED: atomic_fetch_add(&self->stats.bad_signature, 1); break;
    case MHD_HTTP_CONTENT_TOO_LARGE: atomic_fetch_add(&self->stats.too_large, 1); break;
    case MHD_HTTP_SERVICE_UNAVAILABLE: atomic_fetch_add(&self->stats.busy, 1); break;
    case MHD_HTTP_NOT_FOUND:
    case MHD_HTTP_METHOD_NOT_ALLOWED: atomic_fetch_add(&self->stats.not_found, 1); break;
    case MHD_HTTP_BAD_REQUEST: atomic_fetch_add(&self->stats.empty, 1); break;
    default: break;
    }
}

/* Queues the answer for status on conn (HTTP thread, inside the handler). */
static enum MHD_Result s_reply(cv_webhook_http_t *self, struct MHD_Connection *conn, unsigned status,
                               size_t records)
{
    char text[128];
    switch (status) {
    case MHD_HTTP_ACCEPTED: snprintf(text, sizeof text, "{\"accepted\":%zu}\n", records); break;
    case MHD_HTTP_BAD_REQUEST: snprintf(text, sizeof text, "{\"error\":\"empty body\"}\n"); break;
    case MHD_HTTP_UNAUTHORIZED: snprintf(text, sizeof text, "{\"error\":\"missing or bad signature\"}\n"); break;
    case MHD_HTTP_NOT_FOUND: snprintf(text, sizeof text, "{\"error\":\"not found\"}\n"); break;
    case MHD_HTTP_METHOD_NOT_ALLOWED: snprintf(text, sizeof text, "{\"error\":\"only POST\"}\n"); break;
    case MHD_HTTP_CONTENT_TOO_LARGE:
        snprintf(text, sizeof text, "{\"error\":\"body too large\",\"max_bytes\":%zu}\n", self->opts.max_body_bytes);
        break;
    default: snprintf(text, sizeof text, "{\"error\":\"busy, retry later\"}\n"); break;
    }
    struct MHD_Response *response = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "POST");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) {
        char retry[16];
        snprintf(retry, sizeof retry, "%u", self->opts.retry_after_s);
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, retry);
    }
    enum MHD_Result rc = MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    s_count(self, status, records);
    return rc;
}

/* Answers now; whatever body still comes is dropped. */
static enum MHD_Result s_reject(cv_webhook_http_t *self, cv_webhook_post_t *post, unsigned status)
{
    post->state = S_REJECTED;
    free(post->body);
    post->body = NULL;
    return s_reply(self, post->conn, status, 0);
}

/* ---- the request, piece by piece ---------------------------------------- */

/* Refuses the request: the answer is sent once its body is read (and
   dropped), so that a simple client, still sending, can read it; a body
   over DISCARD_MAX is not waited for (the connection closes after the
   answer). */
static enum MHD_Result s_refuse(cv_webhook_http_t *self, cv_webhook_post_t *post, unsigned status,
                                uint64_t length)
{
    post->refuse = status;
    free(post->body);
    post->body = NULL;
    post->len = post->cap = 0;
    if (length > DISCARD_MAX)
        return s_reject(self, post, status);
    return MHD_YES;
}

static enum MHD_Result s_begin(cv_webhook_http_t *self, struct MHD_Connection *conn, const char *url,
                               const char *method, void **con_cls)
{
    cv_webhook_post_t *post = calloc(1, sizeof *post);
    if (!post)
        return MHD_NO;
    post->conn = conn;
    *con_cls = post;
    const char *text = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t length = text ? strtoull(text, NULL, 10) : 0;
    if (strcmp(url, self->path) != 0)
        return s_refuse(self, post, MHD_HTTP_NOT_FOUND, length);
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return s_refuse(self, post, MHD_HTTP_METHOD_NOT_ALLOWED, length);
    if (!atomic_load(&self->accepting))
        return s_refuse(self, post, MHD_HTTP_SERVICE_UNAVAILABLE, length);
    if (!MHD_lookup_connection_value(conn, MHD_HEADER_KIND, self->sig_header))
        return s_refuse(self, post, MHD_HTTP_UNAUTHORIZED, length);
    if (length > self->opts.max_body_bytes)
        return s_refuse(self, post, MHD_HTTP_CONTENT_TOO_LARGE, length);
    return MHD_YES;
}

/* Keeps a piece of body, or drops it once the request is refused. */
static enum MHD_Result s_append(cv_webhook_http_t *self, cv_webhook_post_t *post, const char *data, size_t size)
{
    if (post->refuse) {
        post->discarded += size;
        return post->discarded > DISCARD_MAX ? s_reject(self, post, post->refuse) : MHD_YES;
    }
    if (size > self->opts.max_body_bytes - post->len)
        return s_refuse(self, post, MHD_HTTP_CONTENT_TOO_LARGE, 0);
    size_t need = post->len + size;
    if (need > post->cap) {
        size_t cap = post->cap ? post->cap : 4096;
        while (cap < need)
            cap *= 2;
        if (cap > self->opts.max_body_bytes)
            cap = self->opts.max_body_bytes;
        char *body = realloc(post->body, cap);
        if (!body) {
            cv_error(COMP, "out of memory for a body of %zu bytes: answered 503", need);
            return s_refuse(self, post, MHD_HTTP_SERVICE_UNAVAILABLE, 0);
        }
        post->body = body;
        post->cap = cap;
    }
    memcpy(post->body + post->len, data, size);
    post->len = need;
    return MHD_YES;
}

/* One line per bad body, at most NOISY_PER_MINUTE a minute. */
static bool s_may_log(cv_webhook_http_t *self)
{
    time_t minute = time(NULL) / 60;
    if (minute != self->noisy_minute) {
        self->noisy_minute = minute;
        self->noisy_count = 0;
    }
    return self->noisy_count++ < NOISY_PER_MINUTE;
}

static void s_log_verdict(cv_webhook_http_t *self, const cv_webhook_post_t *post, cv_webhook_verdict_t verdict)
{
    if (verdict != CV_WEBHOOK_BODY_NOT_JSON && verdict != CV_WEBHOOK_BODY_WRONG_SHAPE)
        return;
    atomic_fetch_add(&self->stats.not_json, 1);
    if (!s_may_log(self))
        return;
    char hash[CV_HASH_HEX_LEN + 1];
    cv_hash_bytes(post->body, post->len, hash);
    if (verdict == CV_WEBHOOK_BODY_NOT_JSON)
        cv_warn(COMP, "a signed POST body of %zu bytes is not JSON (sha256 %.16s...): spooled as one record, "
                "the hub will keep it as a dead letter (invalid_json or invalid_utf8)", post->len, hash);
    else
        cv_warn(COMP, "a signed POST body of %zu bytes (sha256 %.16s...) holds JSON that is not %s: spooled, "
                "the hub will keep what is not an object as a dead letter", post->len, hash,
                self->opts.array ? "objects" : "one object");
}

static enum MHD_Result s_end(cv_webhook_http_t *self, cv_webhook_post_t *post)
{
    if (post->refuse)
        return s_reject(self, post, post->refuse);
    if (post->len == 0)
        return s_reject(self, post, MHD_HTTP_BAD_REQUEST);
    const char *sig = MHD_lookup_connection_value(post->conn, MHD_HEADER_KIND, self->sig_header);
    if (!cv_webhook_body_signature_ok(self->opts.secret, self->opts.secret_len, self->sig_prefix, sig,
                                 post->body, post->len))
        return s_reject(self, post, MHD_HTTP_UNAUTHORIZED);
    cv_webhook_verdict_t verdict = cv_webhook_body_split(post->body, post->len, self->opts.array,
                                                         &post->spans, &post->count);
    if (verdict == CV_WEBHOOK_BODY_NO_MEMORY)
        return s_reject(self, post, MHD_HTTP_SERVICE_UNAVAILABLE);
    s_log_verdict(self, post, verdict);
    pthread_mutex_lock(&self->lock);
    if (self->stopping || !atomic_load(&self->accepting)) {
        pthread_mutex_unlock(&self->lock);
        return s_reject(self, post, MHD_HTTP_SERVICE_UNAVAILABLE);
    }
    post->state = S_QUEUED;
    if (self->tail)
        self->tail->next = post;
    else
        self->head = post;
    self->tail = post;
    MHD_suspend_connection(post->conn);   /* under the lock: the run loop resumes only after this */
    pthread_mutex_unlock(&self->lock);
    return MHD_YES;
}

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    cv_webhook_http_t *self = cls;
    cv_webhook_post_t *post = *con_cls;
    if (!post)
        return s_begin(self, conn, url, method, con_cls);
    if (post->state == S_DONE)
        return s_reply(self, conn, post->status, post->count);
    if (post->state != S_READING) {       /* answered already: drop what still comes */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        return s_append(self, post, upload_data, size);
    }
    return s_end(self, post);
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    cv_webhook_http_t *self = cls;
    cv_webhook_post_t *post = *con_cls;
    if (!post)
        return;
    if (post->state == S_DONE)
        atomic_fetch_sub(&self->answering, 1);
    free(post->body);
    free(post->spans);
    free(post);
    *con_cls = NULL;
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    cv_webhook_http_t *self = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == '.'))
        line[--len] = '\0';
    if (atomic_load(&self->started))
        cv_warn(COMP, "http server: %s", line);
    else if (!self->start_error[0])
        snprintf(self->start_error, sizeof self->start_error, "%.200s", line);
}

/* ---- life cycle ----------------------------------------------------------- */

/* addr:port into *sa; 0, or -1 when address is not an IP literal. */
static int s_sockaddr(const char *address, uint16_t port, struct sockaddr_storage *sa, bool *v6)
{
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *in4 = (struct sockaddr_in *) sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) sa;
    if (inet_pton(AF_INET, address, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *v6 = false;
        return 0;
    }
    if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *v6 = true;
        return 0;
    }
    return -1;
}

cv_webhook_http_t *cv_webhook_http_new(const cv_webhook_http_opts_t *opts, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    bool v6;
    if (s_sockaddr(opts->address, opts->port, &sa, &v6) < 0) {
        snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", opts->address);
        return NULL;
    }
    cv_webhook_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->opts = *opts;
    self->path = strdup(opts->path);
    self->sig_header = strdup(opts->sig_header);
    self->sig_prefix = strdup(opts->sig_prefix);
    pthread_mutex_init(&self->lock, NULL);
    atomic_init(&self->accepting, true);
    atomic_init(&self->answering, 0);
    atomic_init(&self->started, false);
    if (!self->path || !self->sig_header || !self->sig_prefix) {
        snprintf(err, errlen, "out of memory");
        cv_webhook_http_destroy(&self);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME
                   | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    errno = 0;
    self->daemon = MHD_start_daemon(flags, opts->port, NULL, NULL, s_handler, self,
                                    MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
                                    MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                                    MHD_OPTION_CONNECTION_LIMIT, (unsigned) opts->max_connections,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) opts->timeout_s,
                                    MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
                                    MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "cannot listen on %s port %u (%s)", opts->address, opts->port,
                 self->start_error[0] ? self->start_error : errno ? strerror(errno) : "unknown reason");
        cv_webhook_http_destroy(&self);
        return NULL;
    }
    atomic_store(&self->started, true);
    if (self->start_error[0])
        cv_warn(COMP, "http server: %s", self->start_error);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : opts->port;
    return self;
}

/* Stops taking connections, answers every waiting post 503 and lets the
   answers go out (at most 2 s) before the server stops. */
void cv_webhook_http_destroy(cv_webhook_http_t **self_p)
{
    cv_webhook_http_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    cv_webhook_post_t *waiting = self->head;
    self->head = self->tail = NULL;
    pthread_mutex_unlock(&self->lock);
    if (self->daemon) {
        MHD_socket listener = MHD_quiesce_daemon(self->daemon);
        if (listener != MHD_INVALID_SOCKET)
            close(listener);
    }
    while (waiting) {
        cv_webhook_post_t *next = waiting->next;
        cv_webhook_http_answer(self, waiting, MHD_HTTP_SERVICE_UNAVAILABLE);
        waiting = next;
    }
    for (int i = 0; i < 200 && atomic_load(&self->answering) > 0; i++)
        usleep(10000);
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    pthread_mutex_destroy(&self->lock);
    free(self->path);
    free(self->sig_header);
    free(self->sig_prefix);
    free(self);
    *self_p = NULL;
}

uint16_t cv_webhook_http_port(const cv_webhook_http_t *self)
{
    return self->port;
}

void cv_webhook_http_set_accepting(cv_webhook_http_t *self, bool accepting)
{
    atomic_store(&self->accepting, accepting);
}

cv_webhook_post_t *cv_webhook_http_take(cv_webhook_http_t *self)
{
    pthread_mutex_lock(&self->lock);
    cv_webhook_post_t *head = self->head;
    self->head = self->tail = NULL;
    pthread_mutex_unlock(&self->lock);
    return head;
}

size_t cv_webhook_http_waiting(cv_webhook_http_t *self)
{
    size_t n = 0;
    pthread_mutex_lock(&self->lock);
    for (const cv_webhook_post_t *p = self->head; p; p = p->next)
        n++;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void cv_webhook_http_answer(cv_webhook_http_t *self, cv_webhook_post_t *post, unsigned status)
{
    struct MHD_Connection *conn = post->conn;
    post->status = status;
    post->state = S_DONE;
    post->next = NULL;
    atomic_fetch_add(&self->answering, 1);
    MHD_resume_connection(conn);   /* from here on, post belongs to the HTTP thread */
}

cv_webhook_http_stats_t cv_webhook_http_stats(const cv_webhook_http_t *self)
{
    cv_webhook_http_stats_t s = {
        atomic_load(&self->stats.accepted), atomic_load(&self->stats.records),
        atomic_load(&self->stats.bad_signature), atomic_load(&self->stats.too_large),
        atomic_load(&self->stats.busy), atomic_load(&self->stats.not_found),
        atomic_load(&self->stats.empty), atomic_load(&self->stats.not_json),
    };
    return s;
}
