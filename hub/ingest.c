/*  ingest — see ingest.h, docs/protocol.md and docs/commands.md. */
#include "ingest.h"

#include <czmq.h>
#include <inttypes.h>
#include <sodium.h>

#include "auth.h"
#include "batch.h"
#include "commander.h"
#include "cv_hash.h"
#include "cv_log.h"
#include "cv_proto.h"
#include "metrics.h"
#include "monitor.h"
#include "writer.h"

typedef struct {
    bool open;
    char id[CV_SESSION_ID_LEN + 1];
    zframe_t *routing;            /* routing id of the session's latest message */
    int64_t last_seen_ms;
    cv_rangeset_t acks;           /* sequence numbers to ACK after this commit */
} session_t;

struct cv_ingest {
    const cv_hub_config_t *config;
    zactor_t *auth;
    zsock_t *router;
    cv_monitor_t *monitor;
    zsock_t *pub;                 /* XPUB: it tells us whether anyone listens */
    int64_t subscribed_topics;    /* topics with at least one subscriber */
    cv_writer_t *writer;
    const cv_store_t *store;      /* owned by the writer; only its atomic counters are read here */
    cv_commander_t *commander;    /* outbound commands (commander.c) */
    cv_metrics_t *metrics;        /* counters for /metrics (metrics.c) */
    int64_t submitted_us;         /* when the batch in flight went to the writer */
    session_t *sessions;          /* one per configured source */
    cv_batch_t *filling;          /* receiving events */
    cv_batch_t *inflight;         /* with the writer, or NULL */
    cv_batch_t *spare;
    int64_t pending_bytes;
    bool over_cap;                /* pending_bytes reached store.pending_max_bytes */
    struct {
        uint64_t received, stored, duplicates, id_reused, dead, batches;
        uint64_t commands, results;
    } stats;
};

static int s_source_index(const cv_ingest_t *self, const cv_source_conf_t *src)
{
    return (int) (src - self->config->sources);
}

/* ---- subscribers --------------------------------------------------- */

/* Reads the XPUB socket's subscription messages (first byte 1: a topic gets
   its first subscriber, 0: its last one left, including by disconnecting),
   so that events are serialised for publication only while someone
   listens. */
static void s_on_subscriptions(cv_ingest_t *self)
{
    while (self->pub && (zsock_events(self->pub) & ZMQ_POLLIN)) {
        zframe_t *f = zframe_recv(self->pub);
        if (!f)
            break;
        if (zframe_size(f) >= 1)
            self->subscribed_topics += zframe_data(f)[0] == 1 ? 1 : -1;
        zframe_destroy(&f);
    }
}

/* ---- answering adapters -------------------------------------------- */

static void s_send(cv_ingest_t *self, const session_t *s, const char *cmd, const char *a,
                   const char *b, const char *c, const char *d)
{
    zmsg_t *msg = zmsg_new();
    zmsg_append(msg, &(zframe_t *) { zframe_dup(s->routing) });
    zmsg_addstr(msg, cmd);
    const char *args[] = { a, b, c, d };
    for (int i = 0; i < 4 && args[i]; i++)
        zmsg_addstr(msg, args[i]);
    zmsg_send(&msg, self->router);
}

static void s_send_error(cv_ingest_t *self, zframe_t *routing, const char *code, const char *text)
{
    session_t tmp = { .routing = routing };
    s_send(self, &tmp, "ERROR", code, text, NULL, NULL);
}

static void s_flush_acks(cv_ingest_t *self, session_t *s)
{
    char buf[8192];
    for (size_t from = 0; from < s->acks.n;) {
        size_t k = cv_ranges_format(&s->acks, from, buf, sizeof buf);
        s_send(self, s, "ACK", s->id, buf, NULL, NULL);
        from += k;
    }
    cv_rangeset_clear(&s->acks);
}

/* Publishes a stored event without its personal data: what the events
   table holds, plus the commit-ordered id and the tracking code. */
static void s_publish(cv_ingest_t *self, const cv_store_item_t *it)
{
    if (!self->pub || !it->event || self->subscribed_topics <= 0)
        return;                   /* nobody listens: build nothing */
    /* a shallow view: the kept values are shared with the event, not copied */
    json_t *ev = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(it->event, key, value)
        if (strcmp(key, "citizen") != 0 && strcmp(key, "summary") != 0 && strcmp(key, "extra") != 0)
            json_object_set(ev, key, value);
    json_object_set_new(ev, "seq", json_integer(it->event_seq));
    json_object_set_new(ev, "request_id", json_integer(it->request_id));
    json_object_set_new(ev, "tracking_code", json_string(it->tracking_code));
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    const char *service = json_string_value(json_object_get(it->event, "service"));
    char seq[24];
    snprintf(seq, sizeof seq, "%" PRId64, it->event_seq);
    zsock_send(self->pub, "sss", service ? service : "", seq, text);
    free(text);
}

/* RESULT_ACK once the result is recorded (now or before), RESULT_NACK when
   the hub knows no such command for this source. */
static void s_answer_result(cv_ingest_t *self, const cv_store_item_t *it, const cv_batch_meta_t *m)
{
    if (it->outcome == CV_OUT_NONE)
        return;
    self->stats.results++;
    cv_metrics_command_result(self->metrics, m->source);
    if (it->outcome == CV_OUT_DEAD_LETTERED)
        cv_warn("ingest", "source %s: result for command %" PRIu64 " refused: %s",
                self->config->sources[m->source].name, m->seq, it->reason);
    session_t *s = &self->sessions[m->source];
    if (!s->open || strcmp(s->id, m->session) != 0)
        return;                                  /* session replaced: the adapter resends */
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, m->seq);
    if (it->outcome == CV_OUT_DEAD_LETTERED)
        s_send(self, s, "RESULT_NACK", s->id, id, it->reason, NULL);
    else
        s_send(self, s, "RESULT_ACK", s->id, id, NULL, NULL);
}

static void s_answer(cv_ingest_t *self, cv_batch_t *batch)
{
    bool results = false;
    for (size_t i = 0; i < batch->n; i++) {
        cv_store_item_t *it = &batch->items[i];
        cv_batch_meta_t *m = &batch->meta[i];
        if (it->kind == CV_ITEM_RESULT) {
            results = true;
            continue;
        }
        switch (it->outcome) {
        case CV_OUT_STORED:
            self->stats.stored++;
            cv_metrics_stored(self->metrics, m->source);
            s_publish(self, it);
            break;
        case CV_OUT_DUPLICATE:
            self->stats.duplicates++;
            cv_metrics_duplicate(self->metrics, m->source);
            break;
        case CV_OUT_ID_REUSED:
            self->stats.id_reused++;
            cv_metrics_dead_lettered(self->metrics, m->source, "id_reused");
            break;
        case CV_OUT_DEAD_LETTERED:
            self->stats.dead++;
            cv_metrics_dead_lettered(self->metrics, m->source, it->reason);
            break;
        case CV_OUT_NONE: continue;              /* not committed: never answered */
        }
        session_t *s = &self->sessions[m->source];
        if (!s->open || strcmp(s->id, m->session) != 0)
            continue;                            /* session replaced: the adapter resends */
        if (it->outcome == CV_OUT_DEAD_LETTERED) {
            char seq[24];
            snprintf(seq, sizeof seq, "%" PRIu64, m->seq);
            s_send(self, s, "NACK", s->id, seq, it->reason, NULL);
        }
        else
            cv_rangeset_add(&s->acks, m->seq);
    }
    for (size_t i = 0; i < self->config->nsources; i++)
        if (self->sessions[i].open && self->sessions[i].acks.n)
            s_flush_acks(self, &self->sessions[i]);
        else
            cv_rangeset_clear(&self->sessions[i].acks);
    /* results after the events: their command_result events were appended
       last in the transaction, so publishing stays in events.id order */
    for (size_t i = 0; results && i < batch->n; i++)
        if (batch->items[i].kind == CV_ITEM_RESULT) {
            if (batch->items[i].outcome == CV_OUT_STORED)
                s_publish(self, &batch->items[i]);
            s_answer_result(self, &batch->items[i], &batch->meta[i]);
        }
    self->stats.batches++;
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
    cv_writer_submit(self->writer, self->inflight);
}

static void s_on_committed(cv_ingest_t *self)
{
    cv_batch_t *b = cv_writer_recv(self->writer);
    if (!b)
        return;
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
    s_answer(self, b);
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

/* ---- one EVENT ------------------------------------------------------- */

static void s_dead(cv_store_item_t *it, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_dead(cv_store_item_t *it, const char *reason, const char *fmt, ...)
{
    it->kind = CV_ITEM_DEAD;
    snprintf(it->reason, sizeof it->reason, "%s", reason);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->detail, sizeof it->detail, fmt, ap);
    va_end(ap);
}

static void s_on_event(cv_ingest_t *self, int src, const session_t *s, uint64_t seq, zframe_t *payload)
{
    const cv_source_conf_t *source = &self->config->sources[src];
    cv_batch_t *b = self->filling;
    long idx = cv_batch_push(b);
    if (idx < 0) {
        zframe_destroy(&payload);            /* not answered: the adapter resends */
        return;
    }
    cv_store_item_t *it = &b->items[idx];
    cv_batch_meta_t *m = &b->meta[idx];
    if (b->n == 1)
        b->opened_ms = zclock_mono();
    m->source = src;
    memcpy(m->session, s->id, sizeof m->session);
    m->seq = seq;
    m->frame = payload;
    it->kind = CV_ITEM_EVENT;
    snprintf(it->source, sizeof it->source, "%s", source->name);
    it->raw = (const char *) zframe_data(payload);
    it->raw_len = zframe_size(payload);
    b->bytes += it->raw_len;
    self->pending_bytes += (int64_t) it->raw_len;
    self->stats.received++;
    cv_metrics_received(self->metrics, src);

    if ((int64_t) it->raw_len > self->config->max_event_bytes) {
        cv_hash_bytes(it->raw, it->raw_len, it->content_hash);
        s_dead(it, "too_large", "record of %zu bytes exceeds max_event_bytes %" PRId64,
               it->raw_len, self->config->max_event_bytes);
        return;
    }
    json_error_t jerr;
    it->record = json_loadb(it->raw, it->raw_len, 0, &jerr);
    if (!it->record) {
        cv_hash_bytes(it->raw, it->raw_len, it->content_hash);
        enum json_error_code code = json_error_code(&jerr);
        if (code == json_error_invalid_utf8)
            s_dead(it, "invalid_utf8", "record is not valid UTF-8 (byte %d)", jerr.position);
        else if (code == json_error_null_character)
            s_dead(it, "invalid_json", "record contains a \\u0000 character (line %d, column %d)",
                   jerr.line, jerr.column);
        else
            s_dead(it, "invalid_json", "record is not valid JSON (line %d, column %d)", jerr.line, jerr.column);
        return;
    }
    if (!json_is_object(it->record)) {
        cv_hash_bytes(it->raw, it->raw_len, it->content_hash);
        s_dead(it, "invalid_json", "record is JSON but not an object");
        return;
    }
    cv_hash_json(it->record, it->content_hash);
    char reason[48], detail[256];
    if (cv_mapping_apply_hashed(source->mapping, it->record, it->content_hash, &it->event,
                                reason, sizeof reason, detail, sizeof detail) != 0) {
        s_dead(it, reason, "%s", detail);
        return;
    }
    cv_store_item_prepare(it);             /* here, not on the writer's critical path */
}

/* ---- messages --------------------------------------------------------- */

static void s_on_hello(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    char *proto = zmsg_popstr(msg);
    bool ok = proto && strcmp(proto, CV_PROTO_VERSION) == 0;
    free(proto);
    if (!ok) {
        s_send_error(self, routing, "bad_protocol", "expected " CV_PROTO_VERSION);
        return;
    }
    session_t *s = &self->sessions[src];
    if (s->open)
        cv_info("ingest", "source %s: new session replaces %.8s…", self->config->sources[src].name, s->id);
    unsigned char rnd[CV_SESSION_ID_LEN / 2];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(s->id, sizeof s->id, rnd, sizeof rnd);
    zframe_destroy(&s->routing);
    s->routing = zframe_dup(routing);
    s->open = true;
    s->last_seen_ms = zclock_mono();
    cv_rangeset_clear(&s->acks);
    char window[16], meb[24], hb[16];
    snprintf(window, sizeof window, "%d", self->config->window);
    snprintf(meb, sizeof meb, "%" PRId64, self->config->max_event_bytes);
    snprintf(hb, sizeof hb, "%d", self->config->heartbeat_ms);
    s_send(self, s, "WELCOME", s->id, window, meb, hb);
    cv_info("ingest", "source %s: session %.8s… opened", self->config->sources[src].name, s->id);
    cv_metrics_session(self->metrics, src, true);
    cv_commander_session(self->commander, src, true);
}

/* The session a message names, or NULL after answering the adapter. */
static session_t *s_session(cv_ingest_t *self, int src, zframe_t *routing, zframe_t *sid)
{
    session_t *s = &self->sessions[src];
    if (!sid) {
        s_send_error(self, routing, "malformed", "missing session id");
        return NULL;
    }
    if (s->open && zframe_streq(sid, s->id)) {
        zframe_destroy(&s->routing);
        s->routing = zframe_dup(routing);
        s->last_seen_ms = zclock_mono();
        return s;
    }
    if (!s->open) {
        s_send_error(self, routing, "unknown_session", "send HELLO again");
        return NULL;
    }
    /* a message of a session this source already replaced: drop it */
    return NULL;
}

/* ---- outbound commands (docs/commands.md) ------------------------------ */

/* A command from the commander: sent if its source has a session; if not,
   it stays `sent` and goes again on the source's next session. */
static void s_on_command(cv_ingest_t *self)
{
    cv_command_t c;
    if (cv_commander_recv(self->commander, &c) < 0)
        return;
    session_t *s = c.source >= 0 && (size_t) c.source < self->config->nsources ? &self->sessions[c.source] : NULL;
    if (s && s->open) {
        char id[24];
        snprintf(id, sizeof id, "%" PRIu64, c.id);
        zmsg_t *msg = zmsg_new();
        zmsg_append(msg, &(zframe_t *) { zframe_dup(s->routing) });
        zmsg_addstr(msg, "COMMAND");
        zmsg_addstr(msg, s->id);
        zmsg_addstr(msg, id);
        zmsg_addstr(msg, c.kind);
        zmsg_addstr(msg, c.key);
        zmsg_addstr(msg, c.payload);
        zmsg_send(&msg, self->router);
        self->stats.commands++;
        cv_metrics_command_sent(self->metrics, c.source);
        cv_debug("ingest", "source %s: command %" PRIu64 " (%s) sent", self->config->sources[c.source].name,
                 c.id, c.kind);
    }
    cv_command_clear(&c);
}

static bool s_frame_is(zframe_t *frame, const char *text)
{
    return frame && zframe_size(frame) == strlen(text) && memcmp(zframe_data(frame), text, strlen(text)) == 0;
}

/* RESULT | session | command id | done|failed | detail JSON object: into
   the batch, answered (RESULT_ACK / RESULT_NACK) after commit. */
static void s_on_result(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    const cv_source_conf_t *source = &self->config->sources[src];
    zframe_t *sid = zmsg_pop(msg), *idf = zmsg_pop(msg), *outf = zmsg_pop(msg), *detail = zmsg_pop(msg);
    uint64_t id = 0;
    bool done = s_frame_is(outf, "done");
    json_t *parsed = NULL;
    if (!detail || zmsg_size(msg) > 0 || cv_proto_parse_u64(zframe_data(idf), zframe_size(idf), &id) < 0
        || id == 0 || id > INT64_MAX || (!done && !s_frame_is(outf, "failed"))
        || (int64_t) zframe_size(detail) > self->config->max_event_bytes
        || !(parsed = json_loadb((const char *) zframe_data(detail), zframe_size(detail), 0, NULL))
        || !json_is_object(parsed)) {
        s_send_error(self, routing, "malformed",
                     "RESULT needs: session id, command id, done or failed, detail JSON object");
        cv_warn("ingest", "source %s: malformed RESULT dropped", source->name);
        goto done;
    }
    session_t *s = s_session(self, src, routing, sid);
    if (!s)
        goto done;
    cv_batch_t *b = self->filling;
    long idx = cv_batch_push(b);
    if (idx < 0)
        goto done;                                /* not answered: the adapter resends */
    cv_store_item_t *it = &b->items[idx];
    cv_batch_meta_t *m = &b->meta[idx];
    if (b->n == 1)
        b->opened_ms = zclock_mono();
    m->source = src;
    memcpy(m->session, s->id, sizeof m->session);
    m->seq = id;
    it->kind = CV_ITEM_RESULT;
    snprintf(it->source, sizeof it->source, "%s", source->name);
    it->record = json_pack("{s:I, s:s, s:o}", "command", (json_int_t) id, "outcome", done ? "done" : "failed",
                           "detail", parsed);
    parsed = NULL;
    cv_hash_json(it->record, it->content_hash);
    it->raw = (const char *) zframe_data(detail);
    it->raw_len = zframe_size(detail);
    m->frame = detail;
    detail = NULL;
    b->bytes += it->raw_len;
    self->pending_bytes += (int64_t) it->raw_len;
done:
    json_decref(parsed);
    zframe_destroy(&sid);
    zframe_destroy(&idf);
    zframe_destroy(&outf);
    zframe_destroy(&detail);
}

static void s_on_message(cv_ingest_t *self)
{
    zmsg_t *msg = zmsg_recv(self->router);
    if (!msg)
        return;
    zframe_t *routing = zmsg_pop(msg);
    zframe_t *cmdf = zmsg_pop(msg);
    if (!routing || !cmdf) {
        zframe_destroy(&routing);
        zframe_destroy(&cmdf);
        zmsg_destroy(&msg);
        return;
    }
    const char *key = zframe_meta(cmdf, "User-Id");
    const cv_source_conf_t *source = key ? cv_hub_config_source_by_key(self->config, key) : NULL;
    if (!source) {
        /* CURVE let it in, so it is a subscriber key talking to the wrong socket */
        cv_warn("ingest", "message from a key that belongs to no source: dropped");
        goto done;
    }
    int src = s_source_index(self, source);
    cv_cmd_t cmd = cv_proto_cmd(zframe_data(cmdf), zframe_size(cmdf));
    session_t *s;
    switch (cmd) {
    case CV_CMD_HELLO:
        s_on_hello(self, src, routing, msg);
        break;
    case CV_CMD_EVENT: {
        zframe_t *sid = zmsg_pop(msg);
        zframe_t *seqf = zmsg_pop(msg);
        zframe_t *payload = zmsg_pop(msg);
        uint64_t seq;
        if (!payload || cv_proto_parse_u64(zframe_data(seqf), zframe_size(seqf), &seq) < 0 || zmsg_size(msg) > 0) {
            s_send_error(self, routing, "malformed", "EVENT needs: session id, sequence number, record");
            cv_warn("ingest", "source %s: malformed EVENT dropped", source->name);
        }
        else if ((s = s_session(self, src, routing, sid)))
            s_on_event(self, src, s, seq, payload), payload = NULL;
        zframe_destroy(&sid);
        zframe_destroy(&seqf);
        zframe_destroy(&payload);
        break;
    }
    case CV_CMD_PING: {
        zframe_t *sid = zmsg_pop(msg);
        if ((s = s_session(self, src, routing, sid)))
            s_send(self, s, "PONG", s->id, NULL, NULL, NULL);
        zframe_destroy(&sid);
        break;
    }
    case CV_CMD_BYE: {
        zframe_t *sid = zmsg_pop(msg);
        if ((s = s_session(self, src, routing, sid))) {
            s->open = false;
            cv_info("ingest", "source %s: session %.8s… closed by the adapter", source->name, s->id);
            cv_metrics_session(self->metrics, src, false);
            cv_commander_session(self->commander, src, false);
        }
        zframe_destroy(&sid);
        break;
    }
    case CV_CMD_RESULT:
        s_on_result(self, src, routing, msg);
        break;
    default:
        s_send_error(self, routing, "malformed", "unknown command");
        cv_warn("ingest", "source %s: unknown command dropped", source->name);
        break;
    }
done:
    zframe_destroy(&routing);
    zframe_destroy(&cmdf);
    zmsg_destroy(&msg);
}

static void s_expire_sessions(cv_ingest_t *self)
{
    int64_t now = zclock_mono();
    for (size_t i = 0; i < self->config->nsources; i++) {
        session_t *s = &self->sessions[i];
        if (s->open && now - s->last_seen_ms > 3 * (int64_t) self->config->heartbeat_ms) {
            s->open = false;
            cv_info("ingest", "source %s: session %.8s… silent, forgotten", self->config->sources[i].name, s->id);
            cv_metrics_session(self->metrics, (int) i, false);
            cv_commander_session(self->commander, (int) i, false);
        }
    }
}

/* ---- life cycle --------------------------------------------------------- */

cv_ingest_t *cv_ingest_new(const cv_hub_config_t *config, cv_store_t *store, char *err, size_t errlen)
{
    cv_ingest_t *self = calloc(1, sizeof *self);
    self->config = config;
    self->sessions = calloc(config->nsources ? config->nsources : 1, sizeof *self->sessions);
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
    if (config->publish_endpoint) {
        self->pub = zsock_new(ZMQ_XPUB);
        if (config->publish_curve)
            cv_auth_curve_server(config, self->pub);
        zsock_set_sndhwm(self->pub, 100000);
        zsock_set_linger(self->pub, 0);
        if (zsock_bind(self->pub, "%s", config->publish_endpoint) < 0) {
            snprintf(err, errlen, "cannot bind the publish endpoint %s: %s", config->publish_endpoint,
                     zmq_strerror(zmq_errno()));
            goto fail;
        }
    }
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
    self->commander = cv_commander_new(config);
    if (!self->commander) {
        snprintf(err, errlen, "cannot start the commander thread");
        cv_ingest_destroy(&self);
        return NULL;
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
    zsock_destroy(&self->pub);
    cv_monitor_destroy(&self->monitor);
    zsock_destroy(&self->router);
    zactor_destroy(&self->auth);
    for (size_t i = 0; self->sessions && i < self->config->nsources; i++) {
        zframe_destroy(&self->sessions[i].routing);
        cv_rangeset_free(&self->sessions[i].acks);
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
        zmq_pollitem_t items[5] = {
            { zsock_resolve(cv_writer_sock(self->writer)), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve(cv_monitor_sock(self->monitor)), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve(cv_commander_sock(self->commander)), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve(self->pub ? self->pub : cv_writer_sock(self->writer)), 0, ZMQ_POLLIN, 0 },
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
        s_on_subscriptions(self);
        if (items[0].revents & ZMQ_POLLIN)
            s_on_committed(self);
        if (items[1].revents & ZMQ_POLLIN)
            cv_monitor_handle(self->monitor);
        for (int i = 0; i < 100 && (zsock_events(cv_commander_sock(self->commander)) & ZMQ_POLLIN); i++)
            s_on_command(self);
        /* read a bounded number of messages per turn, so commits are answered promptly */
        for (int i = 0; i < 1000 && nitems == 5 && s_accepting(self); i++) {
            if (!(zsock_events(self->router) & ZMQ_POLLIN))
                break;
            s_on_message(self);
        }
        s_maybe_submit(self, false);
        cv_metrics_pending_bytes(self->metrics, self->pending_bytes);
        int64_t now = zclock_mono();
        if (now - last_expiry >= 1000) {
            s_expire_sessions(self);
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
