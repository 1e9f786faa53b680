/*  cv_ingest — see cv_ingest.h: the object, its life cycle, the poll loop and
    the batches. Reading a message and its handlers, answering, and
    publishing live in the files cv_ingest_int.h lists. */
#include "cv_ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_auth.h"
#include "cv_ingest_int.h"
#include "cv_log.h"

/* The filling batch's next item for (source, session, sequence). */
cv_store_item_t *cv_ingest__push(cv_ingest_t *self, int src, const cv_ingest__session_t *s, uint64_t seq,
                                 cv_batch_meta_t **meta)
{
    cv_batch_t *b = self->filling;
    long idx = cv_batch_push(b);
    if (idx < 0)
        return NULL;
    if (b->n == 1)
        b->opened_ms = zclock_mono();
    cv_batch_meta_t *m = &b->meta[idx];
    m->source = src;
    memcpy(m->session, s->id, sizeof m->session);
    m->seq = seq;
    cv_store_item_t *it = &b->items[idx];
    snprintf(it->source, sizeof it->source, "%s", self->config->sources[src].name);
    *meta = m;
    return it;
}

/* The item keeps its frame (freed with the batch) and reads its raw bytes
   from it; the batch and the uncommitted total count them (back-pressure).
   A NULL frame (no record) is an empty record. */
void cv_ingest__hold(cv_ingest_t *self, cv_store_item_t *it, cv_batch_meta_t *m, zframe_t *frame)
{
    m->frame = frame;
    it->raw = frame ? (const char *) zframe_data(frame) : "";
    it->raw_len = frame ? zframe_size(frame) : 0;
    self->filling->bytes += it->raw_len;
    self->pending_bytes += (int64_t) it->raw_len;
}

/* ---- batching ------------------------------------------------------- */

static void s_maybe_submit(cv_ingest_t *self, bool force)
{
    cv_batch_t *b = self->filling;
    if (self->inflight || b->n == 0)
        return;
    if (!force && (int) b->n < self->config->batch_max_events
        && zclock_mono() - b->opened_ms < self->config->batch_max_delay_ms)
        return;
    self->inflight = b;
    self->filling = self->spare ? self->spare : cv_batch_new();
    self->spare = NULL;
    self->submitted_us = cv_metrics_now_us();
    cv_metrics_writer(self->metrics, true);
    cv_writer_submit(self->writer, self->inflight);
}

static void s_on_committed(cv_ingest_t *self)
{
    cv_batch_t *b = cv_writer_recv(self->writer);
    if (!b)
        return;
    cv_metrics_writer(self->metrics, false);
    bool committed = false;                      /* all NONE: given up while stopping */
    for (size_t i = 0; i < b->n && !committed; i++)
        committed = b->items[i].outcome != CV_OUT_NONE;
    if (committed)
        cv_metrics_batch(self->metrics, b->n, cv_metrics_now_us() - self->submitted_us);
    uint64_t hits, misses;
    cv_store_identity_cache_stats(self->store, &hits, &misses);
    cv_metrics_identity_cache(self->metrics, hits, misses);
    /* The next batch goes to the writer first: PostgreSQL works on it while
       this one is answered and freed (a few ms of CPU for 1,000 events). */
    self->inflight = NULL;
    s_maybe_submit(self, false);
    cv_ingest__answer(self, b);
    self->pending_bytes -= (int64_t) b->bytes;
    cv_batch_clear(b);
    if (self->spare)
        cv_batch_destroy(&b);
    else
        self->spare = b;
}

/* Whether to read from adapters now. Logs when the byte cap starts and
   stops holding them back (a full batch waiting for the writer is the
   normal rhythm under load and is not logged). */
static bool s_accepting(cv_ingest_t *self)
{
    bool over = self->pending_bytes >= self->config->pending_max_bytes;
    if (over != self->over_cap) {
        self->over_cap = over;
        if (over)
            cv_warn("ingest", "holding %" PRId64 " uncommitted bytes (store.pending_max_bytes): "
                    "not reading from adapters until PostgreSQL catches up", self->pending_bytes);
        else
            cv_info("ingest", "reading from adapters again");
    }
    if (over)
        return false;
    return !(self->inflight && (int) self->filling->n >= self->config->batch_max_events);
}

/* ---- life cycle --------------------------------------------------------- */

cv_ingest_t *cv_ingest_new(cv_hub_config_t *config, cv_store_t *store, char *err, size_t errlen)
{
    cv_ingest_t *self = cv_zmalloc(sizeof *self);
    self->config = config;
    self->sessions = cv_zcalloc(CV_MAX_SOURCES, sizeof *self->sessions);    /* a reload may add */
    self->filling = cv_batch_new();
    self->metrics = cv_metrics_new(config);
    /* authentication first: the ZAP handler must run before any socket binds */
    self->auth = cv_auth_start(config, err, errlen);
    if (!self->auth)
        goto fail;
    self->router = zsock_new(ZMQ_ROUTER);
    cv_auth_curve_server(config, self->router);
    zsock_set_maxmsgsize(self->router, config->max_message_bytes);
    zsock_set_rcvhwm(self->router, 100000);
    zsock_set_sndhwm(self->router, 100000);
    zsock_set_linger(self->router, 1000);
    self->monitor = cv_monitor_new(self->router, "adapters");
    if (!self->monitor) {
        snprintf(err, errlen, "cannot monitor the adapters socket: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (zsock_bind(self->router, "%s", config->adapters_endpoint) < 0) {
        snprintf(err, errlen, "cannot bind the adapters endpoint %s: %s", config->adapters_endpoint,
                 zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (config->publish_endpoint && !(self->publish = cv_publish_new(config, err, errlen)))
        goto fail;
    if (config->metrics_address) {
        int port = cv_metrics_listen(self->metrics, config->metrics_address, config->metrics_port, err, errlen);
        if (port < 0)
            goto fail;
        bool v6 = strchr(config->metrics_address, ':') != NULL;
        cv_info("ingest", "metrics on http://%s%s%s:%d/metrics", v6 ? "[" : "", config->metrics_address,
                v6 ? "]" : "", port);
    }
    self->writer = cv_writer_new(store);
    self->store = store;
    store = NULL;                                /* the writer owns it now */
    self->commander = cv_commander_new(config);
    if (!self->commander) {
        snprintf(err, errlen, "cannot start the commander thread");
        goto fail;
    }
    return self;
fail:
    cv_store_destroy(&store);
    cv_ingest_destroy(&self);
    return NULL;
}

void cv_ingest_destroy(cv_ingest_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_ingest_t *self = *self_p;
    cv_metrics_destroy(&self->metrics);          /* first: its HTTP thread reads the counters */
    cv_commander_destroy(&self->commander);
    cv_writer_destroy(&self->writer);
    cv_publish_destroy(&self->publish);
    cv_monitor_destroy(&self->monitor);
    zsock_destroy(&self->router);
    zactor_destroy(&self->auth);
    for (size_t i = 0; self->sessions && i < self->config->nsources; i++) {
        zframe_destroy(&self->sessions[i].routing);
        for (int k = 0; k < CV_ACK_KINDS; k++)
            cv_rangeset_free(&self->sessions[i].acks[k]);
    }
    free(self->sessions);
    cv_batch_destroy(&self->filling);
    cv_batch_destroy(&self->inflight);
    cv_batch_destroy(&self->spare);
    free(self);
    *self_p = NULL;
}

static void s_log_stats(cv_ingest_t *self)
{
    cv_info("ingest", "received %" PRIu64 " stored %" PRIu64 " duplicates %" PRIu64 " id_reused %" PRIu64
            " dead_lettered %" PRIu64 " batches %" PRIu64 " commands %" PRIu64 " results %" PRIu64,
            self->stats.received, self->stats.stored, self->stats.duplicates, self->stats.id_reused,
            self->stats.dead, self->stats.batches, self->stats.commands, self->stats.results);
}

int cv_ingest_run(cv_ingest_t *self)
{
    cv_info("ingest", "listening for adapters on %s (%zu sources)", self->config->adapters_endpoint,
            self->config->nsources);
    int64_t last_expiry = zclock_mono(), last_stats = zclock_mono();
    uint64_t logged_received = 0;
    while (!zsys_interrupted) {
        if (cv_ingest__reload_requested())
            cv_ingest__reload(self);
        zmq_pollitem_t items[5] = {
            { zsock_resolve(cv_writer_sock(self->writer)), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve(cv_monitor_sock(self->monitor)), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve(cv_commander_sock(self->commander)), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve(self->publish ? cv_publish_sock(self->publish) : cv_writer_sock(self->writer)),
              0, ZMQ_POLLIN, 0 },
            { zsock_resolve(self->router), 0, ZMQ_POLLIN, 0 },
        };
        int nitems = s_accepting(self) ? 5 : 4;
        long timeout = 1000;
        if (self->filling->n && !self->inflight) {
            int64_t left = self->filling->opened_ms + self->config->batch_max_delay_ms - zclock_mono();
            timeout = left < 0 ? 0 : left;
        }
        if (zmq_poll(items, nitems, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if (self->publish)
            cv_publish_subscriptions(self->publish);
        if (items[0].revents & ZMQ_POLLIN)
            s_on_committed(self);
        if (items[1].revents & ZMQ_POLLIN)
            cv_monitor_handle(self->monitor);
        for (int i = 0; i < 100 && (zsock_events(cv_commander_sock(self->commander)) & ZMQ_POLLIN); i++)
            cv_ingest__send_command(self);
        /* read a bounded number of messages per turn, so commits are answered promptly */
        for (int i = 0; i < 1000 && nitems == 5 && s_accepting(self); i++) {
            if (!(zsock_events(self->router) & ZMQ_POLLIN))
                break;
            cv_ingest__read(self);
        }
        s_maybe_submit(self, false);
        cv_metrics_pending_bytes(self->metrics, self->pending_bytes);
        int64_t now = zclock_mono();
        if (now - last_expiry >= 1000) {
            cv_ingest__expire_sessions(self);
            last_expiry = now;
        }
        if (now - last_stats >= 10000) {
            if (self->stats.received != logged_received)
                s_log_stats(self);
            logged_received = self->stats.received;
            last_stats = now;
        }
    }
    /* stopping: commit and answer what we hold (the writer gives up, leaving
       it unanswered, if PostgreSQL is unreachable) */
    cv_info("ingest", "stopping: committing %zu held events", self->filling->n
            + (self->inflight ? self->inflight->n : 0));
    for (int round = 0; round < 2; round++) {
        if (self->inflight) {
            zsock_set_rcvtimeo(cv_writer_sock(self->writer), 30000);
            s_on_committed(self);
            if (self->inflight)
                break;
        }
        s_maybe_submit(self, true);
    }
    s_log_stats(self);
    return 0;
}
