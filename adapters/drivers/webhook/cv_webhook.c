/*  driver_webhook — `kind: webhook`: the software pushes its records to us.

    The HTTP server (cv_webhook_http.c) runs on its own thread and
    queues every signed POST; step() — on the run loop's thread, the only
    one that touches the client — spools the records of every queued POST,
    makes them durable with ONE cv_client_flush, and only then answers them
    202 Accepted. A 2xx therefore means "on disk": if the adapter dies
    before answering, the software did not get its 2xx and sends again,
    and the hub deduplicates the event id. When the spool cannot take more
    (cv_client_can_accept false) POSTs are answered 503 with Retry-After,
    at once on the HTTP thread, and the software keeps its records.

    The software holds the position (it resends until a 2xx), so this
    driver stores none. A body that is not JSON is spooled all the same and
    dead-lettered by the hub, where an operator finds it (its sha256 is in
    the log line); see docs/drivers/webhook.md for every answer.

    Every 10 s with traffic, one log line counts what was accepted and
    refused; no body, header value or record content is ever logged. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cv_log.h"
#include "cv_webhook_config.h"
#include "cv_webhook_http.h"
#include "runtime/cv_driver.h"

#define COMP "webhook"
#define IDLE_MS 5            /* how soon step looks at the queue again */
#define REPORT_S 10

typedef struct {
    cv_client_t *client;
    const char *source;
    cv_webhook_config_t config;
    cv_webhook_http_t *http;
    cv_webhook_http_stats_t reported;   /* counters at the last report */
    time_t report_at;
} webhook_t;

/* ---- start and stop --------------------------------------------------------- */

/* Writes the bound port to the port file, atomically (temp + rename). */
static int s_write_port_file(const char *path, uint16_t port, char *err, size_t errlen)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp", path) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    bool ok = f && fprintf(f, "%u\n", port) > 0 && fflush(f) == 0 && fdatasync(fileno(f)) == 0;
    int saved = errno;
    if (f)
        fclose(f);
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        snprintf(err, errlen, "cannot write the port file '%.300s' (%s)", path, strerror(saved));
        unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

static void s_stop(void **self_p)
{
    webhook_t *self = *self_p;
    if (!self)
        return;
    if (self->http) {
        cv_webhook_http_destroy(&self->http);   /* answers waiting POSTs 503 first */
        if (self->config.port_file)
            unlink(self->config.port_file);
    }
    cv_webhook_config_clear(&self->config);
    free(self);
    *self_p = NULL;
}

static void *s_start(const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "civibus-adapter: libsodium cannot start");
        return NULL;
    }
    webhook_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "civibus-adapter: out of memory");
        return NULL;
    }
    self->client = ctx->client;
    self->source = ctx->source;
    self->report_at = time(NULL);
    if (cv_webhook_config_read(ctx, &self->config, err, errlen) < 0) {
        free(self);
        return NULL;
    }
    char reason[512];
    self->http = cv_webhook_http_new(&self->config.http, reason, sizeof reason);
    if (!self->http) {
        cv_yaml_node_t at = { .line = ctx->conf->key_line };
        cv_yaml_fail(ctx->doc, cv_yaml_get(ctx->conf, "port") ? cv_yaml_get(ctx->conf, "port") : &at,
                     err, errlen, "webhook: %s", reason);
        void *p = self;
        s_stop(&p);
        return NULL;
    }
    uint16_t port = cv_webhook_http_port(self->http);
    if (self->config.port_file && s_write_port_file(self->config.port_file, port, reason, sizeof reason) < 0) {
        snprintf(err, errlen, "civibus-adapter: webhook: %s", reason);
        void *p = self;
        s_stop(&p);
        return NULL;
    }
    cv_info(COMP, "source %s: listening on %s port %u, POST %s (%s bodies, at most %zu bytes, "
            "signature header %s)", self->source, self->config.http.address, port, self->config.http.path,
            self->config.http.array ? "array" : "object", self->config.http.max_body_bytes,
            self->config.http.sig_header);
    return self;
}

/* One line about what happened since the last one (or since start). */
static void s_report(webhook_t *self, bool final)
{
    time_t now = time(NULL);
    if (!final && now - self->report_at < REPORT_S)
        return;
    cv_webhook_http_stats_t s = cv_webhook_http_stats(self->http), *r = &self->reported;
    if (final)
        memset(r, 0, sizeof *r);
    uint64_t refused = (s.bad_signature - r->bad_signature) + (s.too_large - r->too_large)
                     + (s.busy - r->busy) + (s.not_found - r->not_found) + (s.empty - r->empty);
    uint64_t accepted = s.accepted - r->accepted, not_json = s.not_json - r->not_json;
    if (final || accepted || refused || not_json)
        cv_log(refused || not_json ? CV_LOG_WARN : CV_LOG_INFO, COMP,
               "source %s: %s: %" PRIu64 " POSTs accepted (%" PRIu64 " records); refused: %" PRIu64
               " bad signature (401), %" PRIu64 " too large (413), %" PRIu64 " busy (503), %" PRIu64
               " wrong path or method (404/405), %" PRIu64 " empty (400); %" PRIu64
               " bodies not JSON records, spooled for dead letters",
               self->source, final ? "in all" : "last 10 s", accepted, s.records - r->records,
               s.bad_signature - r->bad_signature, s.too_large - r->too_large, s.busy - r->busy,
               s.not_found - r->not_found, s.empty - r->empty, not_json);
    self->reported = s;
    self->report_at = now;
}

/* ---- step -------------------------------------------------------------------- */

/* Submits the records of one post: the status to answer once synced (202),
   or at once (413, 503). *fatal is set when the spool failed. */
static unsigned s_submit(webhook_t *self, const cv_webhook_post_t *post, bool *fatal)
{
    if (!cv_client_can_accept(self->client))
        return 503;
    uint32_t max = cv_client_max_event_bytes(self->client);
    for (size_t i = 0; i < post->count; i++)
        if (post->spans[i].len > max) {
            cv_warn(COMP, "source %s: a POST holds a record of %zu bytes, over max_event_bytes %u: answered 413",
                    self->source, post->spans[i].len, max);
            return 413;
        }
    for (size_t i = 0; i < post->count; i++) {
        int rc = cv_client_submit(self->client, post->body + post->spans[i].offset, post->spans[i].len);
        if (rc < 0) {
            *fatal = true;
            return 503;
        }
        if (rc == 1)                 /* over the limit checked above: cannot happen */
            return 413;
    }
    return 202;
}

/* Spools every post of the list, syncs once, then answers them. */
static int s_spool(webhook_t *self, cv_webhook_post_t *posts)
{
    bool fatal = false;
    cv_webhook_post_t *spooled = NULL, **tail = &spooled;
    while (posts) {
        cv_webhook_post_t *post = posts;
        posts = post->next;
        post->next = NULL;
        unsigned status = fatal ? 503 : s_submit(self, post, &fatal);
        if (status == 202) {
            *tail = post;
            tail = &post->next;
        } else {
            cv_webhook_http_answer(self->http, post, status);
        }
    }
    if (!fatal && spooled && cv_client_flush(self->client) < 0)
        fatal = true;
    while (spooled) {
        cv_webhook_post_t *post = spooled;
        spooled = post->next;
        cv_webhook_http_answer(self->http, post, fatal ? 503 : 202);
    }
    if (fatal)
        cv_error(COMP, "source %s: the spool failed (%s): waiting POSTs answered 503, stopping",
                 self->source, cv_client_error_text(cv_client_error(self->client)));
    return fatal ? -1 : 0;
}

static int s_step(void *p)
{
    webhook_t *self = p;
    cv_webhook_http_set_accepting(self->http, cv_client_can_accept(self->client));
    cv_webhook_post_t *posts = cv_webhook_http_take(self->http);
    int rc = posts ? s_spool(self, posts) : 0;
    cv_webhook_http_set_accepting(self->http, rc == 0 && cv_client_can_accept(self->client));
    s_report(self, false);
    return rc < 0 ? -1 : posts ? 0 : IDLE_MS;
}

static void s_driver_stop(void **self_p)
{
    webhook_t *self = *self_p;
    if (self && self->http)
        s_report(self, true);
    s_stop(self_p);
}

const cv_driver_t cv_webhook_driver = { "webhook", s_start, s_step, s_driver_stop };
