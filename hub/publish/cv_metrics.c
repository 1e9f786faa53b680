/*  metrics — see cv_metrics.h and docs/operations.md.

    Layout: one slot of atomics per configured source, two fixed-bucket
    histograms, two gauges. Histogram buckets are stored per bucket (not
    cumulative); the page adds them up, and writes _count as that sum so
    that a scrape's buckets and count always agree. */
#include "cv_metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_alloc.h"
#include "cv_health.h"
#include "cv_log.h"

/* Dead-letter reason codes (docs/protocol.md, docs/schema.md); the last
   one takes any code not listed, so labels stay a closed set. */
static const char *const s_reasons[] = {
    "invalid_json", "invalid_utf8", "too_large", "missing_field", "bad_type", "bad_date",
    "unmapped_value", "no_rule", "invalid_event", "data_error", "id_reused", "malformed", "other",
};
#define NREASONS (sizeof s_reasons / sizeof s_reasons[0])

typedef struct {
    char *name;
    atomic_uint_least64_t received, stored, duplicate, commands, results, sessions_opened;
    atomic_uint_least64_t session_open;     /* a gauge: 0 or 1 */
    atomic_uint_least64_t dead[NREASONS];
} source_t;

#define MAX_BUCKETS 16

typedef struct {
    const char *name, *help;
    double scale;                           /* bound and sum unit → exposed unit */
    int64_t bounds[MAX_BUCKETS];            /* upper bounds, ascending, in stored units */
    size_t nbounds;
    atomic_uint_least64_t counts[MAX_BUCKETS + 1];   /* last: above every bound (+Inf) */
    atomic_uint_least64_t sum;
} histogram_t;

struct cv_metrics {
    source_t *sources;                      /* room for CV_MAX_SOURCES */
    atomic_size_t nsources;                 /* grows at a reload; names written before */
    histogram_t batch_size;
    histogram_t commit_latency;             /* stored in microseconds, exposed in seconds */
    atomic_int_least64_t pending_bytes;
    atomic_uint_least64_t identity_hits, identity_misses;
    cv_health_t *health;                    /* GET /healthz */
    struct MHD_Daemon *daemon;
};

/* ---- counting ----------------------------------------------------------- */

static source_t *s_source(cv_metrics_t *self, int source)
{
    return self && source >= 0 && (size_t) source < atomic_load(&self->nsources) ? &self->sources[source] : NULL;
}

static void s_add(atomic_uint_least64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

void cv_metrics_received(cv_metrics_t *self, int source)
{
    source_t *s = s_source(self, source);
    if (s)
        s_add(&s->received);
}

void cv_metrics_stored(cv_metrics_t *self, int source)
{
    source_t *s = s_source(self, source);
    if (s)
        s_add(&s->stored);
}

void cv_metrics_duplicate(cv_metrics_t *self, int source)
{
    source_t *s = s_source(self, source);
    if (s)
        s_add(&s->duplicate);
}

void cv_metrics_dead_lettered(cv_metrics_t *self, int source, const char *reason)
{
    source_t *s = s_source(self, source);
    if (!s)
        return;
    size_t r = 0;
    while (r < NREASONS - 1 && !(reason && strcmp(reason, s_reasons[r]) == 0))
        r++;
    s_add(&s->dead[r]);
}

void cv_metrics_command_sent(cv_metrics_t *self, int source)
{
    source_t *s = s_source(self, source);
    if (s)
        s_add(&s->commands);
}

void cv_metrics_command_result(cv_metrics_t *self, int source)
{
    source_t *s = s_source(self, source);
    if (s)
        s_add(&s->results);
}

void cv_metrics_session(cv_metrics_t *self, int source, bool open)
{
    source_t *s = s_source(self, source);
    if (!s)
        return;
    atomic_store_explicit(&s->session_open, open ? 1u : 0u, memory_order_relaxed);
    if (open)
        s_add(&s->sessions_opened);
}

static void s_observe(histogram_t *h, int64_t value)
{
    size_t b = 0;
    while (b < h->nbounds && value > h->bounds[b])
        b++;
    s_add(&h->counts[b]);
    atomic_fetch_add_explicit(&h->sum, (uint64_t) (value > 0 ? value : 0), memory_order_relaxed);
}

void cv_metrics_batch(cv_metrics_t *self, size_t items, int64_t commit_us)
{
    if (!self)
        return;
    s_observe(&self->batch_size, (int64_t) items);
    s_observe(&self->commit_latency, commit_us);
}

void cv_metrics_pending_bytes(cv_metrics_t *self, int64_t bytes)
{
    if (self)
        atomic_store_explicit(&self->pending_bytes, bytes, memory_order_relaxed);
}

void cv_metrics_identity_cache(cv_metrics_t *self, uint64_t hits, uint64_t misses)
{
    if (!self)
        return;
    atomic_store_explicit(&self->identity_hits, hits, memory_order_relaxed);
    atomic_store_explicit(&self->identity_misses, misses, memory_order_relaxed);
}

void cv_metrics_writer(cv_metrics_t *self, bool busy)
{
    cv_health_writer(self->health, busy, cv_metrics_now_us());
}

int64_t cv_metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the page ------------------------------------------------------------ */

static uint64_t s_get(atomic_uint_least64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

/* One counter or gauge with a value per source: the atomic at offset in
   each source_t. Source names are [a-z0-9_-] (cv_hub_config.c), so label
   values need no escaping. */
static void s_per_source(FILE *out, cv_metrics_t *self, const char *name, const char *type, const char *help,
                         size_t offset)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0, n = atomic_load(&self->nsources); i < n; i++) {
        source_t *s = &self->sources[i];
        uint64_t v = s_get((atomic_uint_least64_t *) ((char *) s + offset));
        fprintf(out, "%s{source=\"%s\"} %" PRIu64 "\n", name, s->name, v);
    }
}

static void s_histogram(FILE *out, histogram_t *h)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= h->nbounds; b++) {
        cumulative += s_get(&h->counts[b]);
        if (b < h->nbounds)
            fprintf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", h->name, (double) h->bounds[b] * h->scale, cumulative);
        else
            fprintf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", h->name, cumulative);
    }
    double sum = (double) s_get(&h->sum) * h->scale;
    fprintf(out, "%s_sum %.*f\n%s_count %" PRIu64 "\n", h->name, h->scale < 1 ? 6 : 0, sum, h->name, cumulative);
}

char *cv_metrics_render(cv_metrics_t *self, size_t *len)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out)
        return NULL;
    s_per_source(out, self, "civibus_hub_events_received_total", "counter",
                 "Records received from adapters (EVENT messages), before any check.",
                 offsetof(source_t, received));
    s_per_source(out, self, "civibus_hub_events_stored_total", "counter",
                 "Events committed to the timeline for the first time.", offsetof(source_t, stored));
    s_per_source(out, self, "civibus_hub_events_duplicate_total", "counter",
                 "Events received again with the same id and content: ACKed, not stored again.",
                 offsetof(source_t, duplicate));
    fprintf(out, "# HELP civibus_hub_events_dead_lettered_total Records committed to dead_letters, by reason code.\n"
                 "# TYPE civibus_hub_events_dead_lettered_total counter\n");
    for (size_t i = 0, n = atomic_load(&self->nsources); i < n; i++)
    for (size_t r = 0; r < NREASONS; r++)
            fprintf(out, "civibus_hub_events_dead_lettered_total{source=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                    self->sources[i].name, s_reasons[r], s_get(&self->sources[i].dead[r]));
    s_per_source(out, self, "civibus_hub_adapter_session_open", "gauge",
                 "1 while the source's adapter has an open session, else 0.", offsetof(source_t, session_open));
    s_per_source(out, self, "civibus_hub_adapter_sessions_opened_total", "counter",
                 "Sessions opened by the source's adapter (HELLO answered WELCOME).",
                 offsetof(source_t, sessions_opened));
    s_per_source(out, self, "civibus_hub_commands_sent_total", "counter",
                 "Outbound commands delivered to the source's adapter (redeliveries included).",
                 offsetof(source_t, commands));
    s_per_source(out, self, "civibus_hub_command_results_total", "counter",
                 "Command results received from the source's adapter and committed.",
                 offsetof(source_t, results));
    s_histogram(out, &self->batch_size);
    s_histogram(out, &self->commit_latency);
    fprintf(out, "# HELP civibus_hub_pending_bytes Raw bytes received and not yet committed.\n"
                 "# TYPE civibus_hub_pending_bytes gauge\n"
                 "civibus_hub_pending_bytes %" PRId64 "\n",
            (int64_t) atomic_load_explicit(&self->pending_bytes, memory_order_relaxed));
    fprintf(out, "# HELP civibus_hub_identity_cache_total Events whose identity block the hub's cache "
                 "knew unchanged (hit: sent without it) or not (miss).\n"
                 "# TYPE civibus_hub_identity_cache_total counter\n"
                 "civibus_hub_identity_cache_total{result=\"hit\"} %" PRIu64 "\n"
                 "civibus_hub_identity_cache_total{result=\"miss\"} %" PRIu64 "\n",
            (uint64_t) atomic_load_explicit(&self->identity_hits, memory_order_relaxed),
            (uint64_t) atomic_load_explicit(&self->identity_misses, memory_order_relaxed));
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    if (len)
        *len = size;
    return text;
}

/* ---- the HTTP server (libmicrohttpd's own thread) -------------------------- */

/* Queues body (freed by libmicrohttpd when sent). */
static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                               const char *type)
{
    struct MHD_Response *response = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!response) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    cv_metrics_t *self = cls;
    const char *refusal = NULL;
    unsigned status = MHD_HTTP_OK;
    bool health = strcmp(url, "/healthz") == 0;
    if (!health && strcmp(url, "/metrics") != 0)
        status = MHD_HTTP_NOT_FOUND, refusal = "not found: the pages are /metrics and /healthz\n";
    else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        status = MHD_HTTP_METHOD_NOT_ALLOWED, refusal = "only GET\n";
    if (refusal)
        return s_reply(conn, status, cv_zstrdup(refusal), strlen(refusal), "text/plain; charset=utf-8");
    size_t len = 0;
    if (health) {
        char *body = cv_health_render(self->health, cv_metrics_now_us(), &status, &len);
        return s_reply(conn, status, body, len, "application/json");
    }
    char *text = cv_metrics_render(self, &len);
    return s_reply(conn, status, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    cv_warn("metrics", "http server: %s", line);
}

int cv_metrics_listen(cv_metrics_t *self, const char *address, int port, char *err, size_t errlen)
{
    struct sockaddr_storage sa = { 0 };
    struct sockaddr_in *v4 = (struct sockaddr_in *) &sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) &sa;
    bool ipv6 = false;
    if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t) port);
    }
    else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t) port);
        ipv6 = true;
    }
    else {
        snprintf(err, errlen, "metrics: '%s' is not an IPv4 or IPv6 address", address);
        return -1;
    }
    errno = 0;
    self->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG
                                    | (ipv6 ? MHD_USE_IPv6 : 0),
                                    (uint16_t) port, NULL, NULL, s_handler, self,
                                    MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
                                    MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                                    MHD_OPTION_CONNECTION_LIMIT, 16u,
                                    MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                                    MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "cannot serve /metrics on %s port %d: %s", address, port,
                 errno ? strerror(errno) : "unknown reason");
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : port;
}

/* ---- life cycle ------------------------------------------------------------ */

static void s_histogram_init(histogram_t *h, const char *name, const char *help, double scale,
                             const int64_t *bounds, size_t nbounds)
{
    h->name = name;
    h->help = help;
    h->scale = scale;
    h->nbounds = nbounds < MAX_BUCKETS ? nbounds : MAX_BUCKETS;
    memcpy(h->bounds, bounds, h->nbounds * sizeof *bounds);
    for (size_t b = 0; b <= MAX_BUCKETS; b++)
        atomic_init(&h->counts[b], 0);
    atomic_init(&h->sum, 0);
}

void cv_metrics_add_source(cv_metrics_t *self, const char *name)
{
    size_t n = atomic_load(&self->nsources);
    if (n >= CV_MAX_SOURCES)
        return;
    source_t *s = &self->sources[n];
    s->name = cv_zstrdup(name);
    atomic_init(&s->received, 0);
    atomic_init(&s->stored, 0);
    atomic_init(&s->duplicate, 0);
    atomic_init(&s->commands, 0);
    atomic_init(&s->results, 0);
    atomic_init(&s->sessions_opened, 0);
    atomic_init(&s->session_open, 0);
    for (size_t r = 0; r < NREASONS; r++)
        atomic_init(&s->dead[r], 0);
    atomic_store(&self->nsources, n + 1);      /* seq_cst: the slot is written before it is seen */
}

cv_metrics_t *cv_metrics_new(const cv_hub_config_t *config)
{
    cv_metrics_t *self = cv_zcalloc(1, sizeof *self);
    self->health = cv_health_new(config->conninfo, config->stuck_after_s);
    self->sources = cv_zcalloc(CV_MAX_SOURCES, sizeof *self->sources);
    atomic_init(&self->nsources, 0);
    for (size_t i = 0; i < config->nsources; i++)
        cv_metrics_add_source(self, config->sources[i].name);
    static const int64_t sizes[] = { 1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000 };
    static const int64_t latencies_us[] = { 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
                                            500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000 };
    s_histogram_init(&self->batch_size, "civibus_hub_batch_size",
                     "Items (events and command results) per committed batch.", 1.0,
                     sizes, sizeof sizes / sizeof sizes[0]);
    s_histogram_init(&self->commit_latency, "civibus_hub_commit_latency_seconds",
                     "Time from handing a batch to the writer to its commit, reconnects included.", 1e-6,
                     latencies_us, sizeof latencies_us / sizeof latencies_us[0]);
    atomic_init(&self->pending_bytes, 0);
    return self;
}

void cv_metrics_destroy(cv_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_metrics_t *self = *self_p;
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    for (size_t i = 0, n = atomic_load(&self->nsources); i < n; i++)
        free(self->sources[i].name);
    free(self->sources);
    cv_health_destroy(&self->health);
    free(self);
    *self_p = NULL;
}
