/*  cv_client — see cv_client.h and docs/protocol.md.

    Design. Three small structures carry all the state:

    - the spool (lib/cv_spool.c) is the truth: a record is unsettled until
      an ACK or NACK settles it there; nothing else needs to survive a crash.
    - the in-flight ring maps the sequence numbers of the open session to
      spool ids. Seqs are dense, so a power-of-two array indexed by
      seq & mask covers [low_seq, next_seq); low_seq moves past settled
      slots. It grows when a slow seq holds the low end back.
    - the send cache is a FIFO of copies of records submitted by this
      process and not yet sent, so the common path never reads the disk.
      When it is full (the hub is away or slow) records go to the spool
      only, and `disk_pending` makes the sender read them back in order
      with cv_spool_next_unsettled. After a reconnect or at start-up the
      sender starts again from spool id 0: every unsettled record is
      resent first, then it meets the cache head and switches to it.

    `send_after` is the spool id of the last record sent in this session;
    the sender always sends the next unsettled id after it, so records go
    out in spool order exactly once per session. A record is sent only
    once its batch is durable (ids below `unsynced_from`).

    One connection = one DEALER socket + one inproc monitor. Any reason to
    reconnect (ERROR unknown_session, silence, disconnect) destroys both
    and schedules a new pair after a back-off (100 ms doubling to 2 s,
    reset by WELCOME). HANDSHAKE_FAILED_AUTH with ZAP status 400 (our key
    is unknown) on the monitor is permanent; 300/500 are retried.

    Outbound commands ride the same session: COMMAND, RESULT_ACK and
    RESULT_NACK go to the cv_commands module, which sends RESULTs through
    s_send_result and is stepped by every poll; each WELCOME makes it send
    again the results the hub has not acknowledged. */
#include "cv_client.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cv_log.h"
#include "cv_proto.h"

#define DEFAULT_WINDOW        1000
#define DEFAULT_HEARTBEAT_MS  2000
#define DEFAULT_EVENT_BYTES   262144
#define BACKOFF_MIN_MS        100
#define BACKOFF_MAX_MS        2000
#define CACHE_SLOTS           8192            /* fixed FIFO size */
#define CACHE_MIN             256             /* cached records allowed: 2 x window, */
#define CACHE_MAX_BYTES       (32u << 20)     /* within these bounds */
#define RECV_BURST            10000           /* messages handled per wake-up */
#define GC_EVERY_MS           60000           /* cv_spool_gc period */
#define SETTLE_SYNC_MS        200             /* settlements alone synced at most this often */
#define COMP                  "client"

typedef struct { uint64_t id; void *data; size_t len; } s_rec_t;

typedef enum { S_DOWN = 0, S_HELLO, S_READY } s_state_t;

struct cv_client {
    char *endpoint, *hub_key, *description, *name;
    zcert_t *cert;
    cv_spool_t *spool;
    uint32_t cfg_max_event_bytes;

    /* connection */
    zsock_t *dealer, *monitor;
    s_state_t state;
    char session[CV_SESSION_ID_LEN + 1];
    uint32_t window, hub_max_event_bytes, heartbeat_ms;
    bool welcomed;                     /* a first session was opened */
    int backoff_ms;
    int64_t reconnect_at, last_send, alive_at;
    bool ping_out;
    int64_t next_gc;

    /* in flight: seq -> spool id for seqs in [low_seq, next_seq) */
    uint64_t *ring;
    size_t ring_cap;                   /* power of two */
    uint64_t low_seq, next_seq, inflight;

    /* records submitted here, not yet sent, in spool id order */
    s_rec_t *cache;
    size_t cache_head, cache_count, cache_bytes;
    bool overflow;                     /* newer records than the cache tail are on disk only */
    bool disk_pending;                 /* records before the cache head must be read back */
    uint64_t send_after;               /* spool id of the last record sent in this session */
    uint64_t unsynced_from;            /* first id appended since the last sync (0: none) */
    bool position_dirty;               /* a source position waits for the next sync */
    bool settled_dirty;                /* settlements wait for the next sync */
    int64_t next_settle_sync;          /* when settlements alone are worth a sync */
    uint64_t first_own_id, max_sent_id;/* to tell resends from first sends */

    cv_commands_t *commands;           /* outbound commands, or NULL */

    cv_client_error_t error;
    cv_client_stats_t stats;
};

static int64_t s_now(void)
{
    return zclock_mono();
}

static const char *s_name(const cv_client_t *self)
{
    return self->name ? self->name : "adapter";
}

static void s_fail(cv_client_t *self, cv_client_error_t error)
{
    if (self->error == CV_CLIENT_OK)
        self->error = error;
}

/* ---------------------------------------------------------------- in flight */

static uint64_t *s_slot(cv_client_t *self, uint64_t seq)
{
    return &self->ring[seq & (self->ring_cap - 1)];
}

static void s_ring_reset(cv_client_t *self)
{
    for (uint64_t seq = self->low_seq; seq < self->next_seq; seq++)
        *s_slot(self, seq) = 0;
    self->low_seq = self->next_seq = 1;
    self->inflight = 0;
}

/* Makes room for next_seq; -1 when out of memory. */
static int s_ring_reserve(cv_client_t *self)
{
    if (self->next_seq - self->low_seq < self->ring_cap)
        return 0;
    size_t cap = self->ring_cap * 2;
    uint64_t *ring = calloc(cap, sizeof *ring);
    if (!ring)
        return -1;
    for (uint64_t seq = self->low_seq; seq < self->next_seq; seq++)
        ring[seq & (cap - 1)] = *s_slot(self, seq);
    free(self->ring);
    self->ring = ring;
    self->ring_cap = cap;
    return 0;
}

static void s_settle(cv_client_t *self, uint64_t seq, bool acked)
{
    if (seq < self->low_seq || seq >= self->next_seq)
        return;
    uint64_t *slot = s_slot(self, seq);
    if (*slot == 0)
        return;
    if (cv_spool_settle(self->spool, *slot) < 0) {
        cv_error(COMP, "%s: cannot mark spool record %" PRIu64 " settled", s_name(self), *slot);
        s_fail(self, CV_CLIENT_ERR_IO);
        return;
    }
    *slot = 0;
    self->inflight--;
    self->settled_dirty = true;
    if (acked)
        self->stats.acked++;
    else
        self->stats.nacked++;
}

static void s_settle_range(uint64_t lo, uint64_t hi, void *arg)
{
    cv_client_t *self = arg;
    if (lo < self->low_seq)
        lo = self->low_seq;
    if (hi >= self->next_seq)
        hi = self->next_seq - 1;
    for (uint64_t seq = lo; seq <= hi && seq >= lo; seq++)
        s_settle(self, seq, true);
}

static void s_ring_advance(cv_client_t *self)
{
    while (self->low_seq < self->next_seq && *s_slot(self, self->low_seq) == 0)
        self->low_seq++;
}

/* ------------------------------------------------------------------ cache */

static size_t s_cache_limit(const cv_client_t *self)
{
    size_t limit = (size_t) self->window * 2;
    if (limit < CACHE_MIN)
        limit = CACHE_MIN;
    return limit > CACHE_SLOTS ? CACHE_SLOTS : limit;
}

static bool s_cache_push(cv_client_t *self, uint64_t id, const void *data, size_t len)
{
    if (self->overflow || self->cache_count >= s_cache_limit(self)
        || self->cache_bytes + len > CACHE_MAX_BYTES)
        return false;
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return false;
    memcpy(copy, data, len);
    s_rec_t *rec = &self->cache[(self->cache_head + self->cache_count) % CACHE_SLOTS];
    *rec = (s_rec_t) { id, copy, len };
    self->cache_count++;
    self->cache_bytes += len;
    return true;
}

static s_rec_t s_cache_pop(cv_client_t *self)
{
    s_rec_t rec = self->cache[self->cache_head];
    self->cache_head = (self->cache_head + 1) % CACHE_SLOTS;
    self->cache_count--;
    self->cache_bytes -= rec.len;
    if (self->cache_count == 0 && self->overflow) {
        self->overflow = false;          /* what overflowed is now after send_after */
        self->disk_pending = true;
    }
    return rec;
}

/* ----------------------------------------------------------------- socket */

static void s_close_socket(cv_client_t *self)
{
    if (self->dealer) {
        zmq_socket_monitor(zsock_resolve(self->dealer), NULL, 0);
        zsock_destroy(&self->dealer);
    }
    zsock_destroy(&self->monitor);
}

static int s_send_hello(cv_client_t *self)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, "HELLO");
    zmsg_addstr(msg, CV_PROTO_VERSION);
    zmsg_addstr(msg, self->description);
    return zmsg_send(&msg, self->dealer);
}

/* New DEALER + monitor, connect, HELLO. -1 when the socket cannot be made
   (the endpoint is invalid, or the process is out of sockets). */
static int s_connect(cv_client_t *self, char *err, size_t errlen)
{
    static unsigned counter;
    char monitor_ep[96];
    snprintf(monitor_ep, sizeof monitor_ep, "inproc://cv-client-monitor-%p-%u", (void *) self, ++counter);

    self->dealer = zsock_new(ZMQ_DEALER);
    if (!self->dealer) {
        snprintf(err, errlen, "cannot create a ZeroMQ socket");
        return -1;
    }
    zcert_apply(self->cert, self->dealer);
    zsock_set_curve_serverkey(self->dealer, self->hub_key);
    zsock_set_linger(self->dealer, 0);
    zsock_set_sndhwm(self->dealer, 0);      /* the window bounds what we queue */
    zsock_set_rcvhwm(self->dealer, 0);
    int events = ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
               | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
               | ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
    if (zmq_socket_monitor(zsock_resolve(self->dealer), monitor_ep, events) < 0
        || !(self->monitor = zsock_new_pair(monitor_ep))) {
        snprintf(err, errlen, "cannot monitor the hub socket: %s", zmq_strerror(zmq_errno()));
        s_close_socket(self);
        return -1;
    }
    if (zsock_connect(self->dealer, "%s", self->endpoint) < 0) {
        snprintf(err, errlen, "cannot connect to '%s': %s", self->endpoint, zmq_strerror(zmq_errno()));
        s_close_socket(self);
        return -1;
    }
    if (s_send_hello(self) < 0) {
        snprintf(err, errlen, "cannot send HELLO: %s", zmq_strerror(zmq_errno()));
        s_close_socket(self);
        return -1;
    }
    self->state = S_HELLO;
    self->alive_at = self->last_send = s_now();
    cv_debug(COMP, "%s: connecting to %s", s_name(self), self->endpoint);
    return 0;
}

/* Forgets the session: what was in flight stays unsettled in the spool and
   is resent, from the first unsettled record, on the next session. */
static void s_drop(cv_client_t *self, const char *why)
{
    if (self->state == S_READY)
        cv_warn(COMP, "%s: session %s lost (%s), %" PRIu64 " in flight; reconnecting",
                s_name(self), self->session, why, self->inflight);
    else
        cv_warn(COMP, "%s: no session with the hub (%s); retrying in %d ms",
                s_name(self), why, self->backoff_ms);
    s_close_socket(self);
    s_ring_reset(self);
    self->state = S_DOWN;
    self->session[0] = '\0';
    self->send_after = 0;
    self->disk_pending = true;
    self->ping_out = false;
    self->reconnect_at = s_now() + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : self->backoff_ms * 2;
}

/* ------------------------------------------------------------------ send */

static bool s_durable(const cv_client_t *self, uint64_t id)
{
    return self->unsynced_from == 0 || id < self->unsynced_from;
}

/* The next record to send: 1 (rec filled, caller owns rec->data), 0 none. */
static int s_next_record(cv_client_t *self, s_rec_t *rec)
{
    if (self->disk_pending) {
        uint64_t id;
        void *data;
        size_t len;
        int rc = cv_spool_next_unsettled(self->spool, self->send_after, &id, &data, &len);
        if (rc < 0) {
            cv_error(COMP, "%s: cannot read back spool record after %" PRIu64, s_name(self), self->send_after);
            s_fail(self, CV_CLIENT_ERR_IO);
            return 0;
        }
        if (rc == 0)
            self->disk_pending = false;
        else if (self->cache_count > 0 && id >= self->cache[self->cache_head].id) {
            free(data);                 /* the cache has it: read from memory from now on */
            self->disk_pending = false;
        }
        else if (!s_durable(self, id)) {
            free(data);
            return 0;
        }
        else {
            *rec = (s_rec_t) { id, data, len };
            return 1;
        }
    }
    if (self->cache_count == 0 || !s_durable(self, self->cache[self->cache_head].id))
        return 0;
    *rec = s_cache_pop(self);
    return 1;
}

static void s_free_data(void *data, void *hint)
{
    free(data);
}

/* Sends one EVENT; the record's bytes are handed to ZeroMQ (zero copy). */
static int s_send_event(cv_client_t *self, s_rec_t *rec)
{
    if (s_ring_reserve(self) < 0) {
        free(rec->data);
        return -1;
    }
    void *sock = zsock_resolve(self->dealer);
    char seq[24];
    int n = snprintf(seq, sizeof seq, "%" PRIu64, self->next_seq);
    zmq_msg_t body;
    if (rec->len == 0) {
        free(rec->data);
        zmq_msg_init(&body);
    }
    else if (zmq_msg_init_data(&body, rec->data, rec->len, s_free_data, NULL) < 0) {
        free(rec->data);
        return -1;
    }
    if (zmq_send(sock, "EVENT", 5, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send(sock, self->session, CV_SESSION_ID_LEN, ZMQ_SNDMORE) < 0
        || zmq_send(sock, seq, (size_t) n, ZMQ_SNDMORE) < 0
        || zmq_msg_send(&body, sock, 0) < 0) {
        zmq_msg_close(&body);
        return -1;
    }
    if (self->inflight == 0 && !self->ping_out)
        self->alive_at = s_now();        /* we start waiting for the hub now */
    *s_slot(self, self->next_seq) = rec->id;
    self->next_seq++;
    self->inflight++;
    self->send_after = rec->id;
    self->last_send = s_now();
    self->stats.sent++;
    if (rec->id <= self->max_sent_id || rec->id < self->first_own_id)
        self->stats.resent++;
    if (rec->id > self->max_sent_id)
        self->max_sent_id = rec->id;
    return 0;
}

static void s_send_more(cv_client_t *self)
{
    while (self->state == S_READY && self->inflight < self->window && !self->error) {
        s_rec_t rec;
        if (s_next_record(self, &rec) == 0)
            return;
        if (s_send_event(self, &rec) < 0) {
            /* the record is still in the spool: read it back next session */
            s_drop(self, "cannot send an EVENT");
            return;
        }
    }
}

static void s_send_ping(cv_client_t *self)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, "PING");
    zmsg_addmem(msg, self->session, CV_SESSION_ID_LEN);
    if (zmsg_send(&msg, self->dealer) < 0) {
        s_drop(self, "cannot send PING");
        return;
    }
    if (self->inflight == 0 && !self->ping_out)
        self->alive_at = s_now();
    self->ping_out = true;
    self->last_send = s_now();
}

/* --------------------------------------------------------------- receive */

static bool s_frame_is(zframe_t *frame, const char *text)
{
    size_t len = strlen(text);
    return frame && zframe_size(frame) == len && memcmp(zframe_data(frame), text, len) == 0;
}

static int s_frame_u64(zframe_t *frame, uint64_t *out)
{
    return frame ? cv_proto_parse_u64(zframe_data(frame), zframe_size(frame), out) : -1;
}

static bool s_is_session(zframe_t *frame)
{
    if (!frame || zframe_size(frame) != CV_SESSION_ID_LEN)
        return false;
    const char *p = (const char *) zframe_data(frame);
    for (size_t i = 0; i < CV_SESSION_ID_LEN; i++)
        if (!strchr("0123456789abcdefABCDEF", p[i]) || p[i] == '\0')
            return false;
    return true;
}

static void s_on_welcome(cv_client_t *self, zmsg_t *msg)
{
    if (self->state != S_HELLO)
        return;
    zframe_t *session = zmsg_next(msg);
    uint64_t window, max_bytes, heartbeat;
    if (!s_is_session(session) || s_frame_u64(zmsg_next(msg), &window) < 0
        || s_frame_u64(zmsg_next(msg), &max_bytes) < 0 || s_frame_u64(zmsg_next(msg), &heartbeat) < 0
        || window == 0 || window > 1000000 || max_bytes == 0 || heartbeat == 0 || heartbeat > 3600000) {
        cv_error(COMP, "%s: malformed WELCOME from the hub", s_name(self));
        s_drop(self, "malformed WELCOME");
        return;
    }
    memcpy(self->session, zframe_data(session), CV_SESSION_ID_LEN);
    self->session[CV_SESSION_ID_LEN] = '\0';
    self->window = (uint32_t) window;
    self->hub_max_event_bytes = max_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t) max_bytes;
    self->heartbeat_ms = (uint32_t) heartbeat;
    self->state = S_READY;
    self->backoff_ms = BACKOFF_MIN_MS;
    if (self->welcomed)
        self->stats.reconnects++;
    self->welcomed = true;
    cv_info(COMP, "%s: session %s open (window %u, max_event_bytes %u, heartbeat %u ms), %" PRIu64 " unsettled in spool",
            s_name(self), self->session, self->window, self->hub_max_event_bytes, self->heartbeat_ms,
            cv_spool_unsettled_count(self->spool));
    if (self->commands)
        cv_commands_session(self->commands);
}

static void s_on_ack(cv_client_t *self, zmsg_t *msg)
{
    zframe_t *ranges = zmsg_next(msg);
    if (!ranges || cv_ranges_parse((const char *) zframe_data(ranges), zframe_size(ranges),
                                   s_settle_range, self) < 0)
        cv_warn(COMP, "%s: ignoring an ACK with malformed ranges", s_name(self));
    s_ring_advance(self);
}

static void s_on_nack(cv_client_t *self, zmsg_t *msg)
{
    uint64_t seq;
    if (s_frame_u64(zmsg_next(msg), &seq) < 0) {
        cv_warn(COMP, "%s: ignoring a NACK with a malformed sequence number", s_name(self));
        return;
    }
    zframe_t *reason = zmsg_next(msg);
    char code[64] = "?";
    if (reason) {
        size_t n = zframe_size(reason) < sizeof code - 1 ? zframe_size(reason) : sizeof code - 1;
        memcpy(code, zframe_data(reason), n);
        code[n] = '\0';
    }
    uint64_t id = seq >= self->low_seq && seq < self->next_seq ? *s_slot(self, seq) : 0;
    cv_debug(COMP, "%s: record %" PRIu64 " (seq %" PRIu64 ") rejected by the hub: %s",
             s_name(self), id, seq, code);
    s_settle(self, seq, false);
    s_ring_advance(self);
}

/* ------------------------------------------------------------- commands */

/* The sender cv_commands uses: RESULT | session | id | outcome | detail. */
static int s_send_result(void *arg, uint64_t id, const char *outcome, const char *detail)
{
    cv_client_t *self = arg;
    if (self->state != S_READY)
        return 1;
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, "RESULT");
    zmsg_addmem(msg, self->session, CV_SESSION_ID_LEN);
    zmsg_addstrf(msg, "%" PRIu64, id);
    zmsg_addstr(msg, outcome);
    zmsg_addstr(msg, detail);
    if (zmsg_send(&msg, self->dealer) < 0) {
        zmsg_destroy(&msg);
        return -1;
    }
    self->last_send = s_now();
    return 0;
}

/* A frame as a NUL-terminated string (malloc'd), or NULL. */
static char *s_frame_str(zframe_t *frame)
{
    return frame ? zframe_strdup(frame) : NULL;
}

static void s_on_command(cv_client_t *self, zmsg_t *msg)
{
    uint64_t id;
    zframe_t *idf = zmsg_next(msg);
    char *kind = s_frame_str(zmsg_next(msg)), *key = s_frame_str(zmsg_next(msg));
    zframe_t *payload = zmsg_next(msg);
    if (s_frame_u64(idf, &id) < 0 || !kind || !key || !payload)
        cv_warn(COMP, "%s: ignoring a malformed COMMAND", s_name(self));
    else if (!self->commands) {
        /* nothing performed, nothing to journal: a lost answer is asked again */
        cv_warn(COMP, "%s: command %" PRIu64 " refused: this adapter's config has no 'commands' section",
                s_name(self), id);
        s_send_result(self, id, "failed", "{\"attempts\":0,\"error\":\"this adapter performs no "
                      "commands (no 'commands' section in its config)\"}");
    }
    else
        cv_commands_receive(self->commands, id, kind, key, (const char *) zframe_data(payload),
                            zframe_size(payload));
    free(kind);
    free(key);
}

static void s_on_result_ack(cv_client_t *self, zmsg_t *msg, bool acked)
{
    uint64_t id;
    if (s_frame_u64(zmsg_next(msg), &id) < 0) {
        cv_warn(COMP, "%s: ignoring a RESULT_%s with a malformed command id", s_name(self), acked ? "ACK" : "NACK");
        return;
    }
    char *reason = acked ? NULL : s_frame_str(zmsg_next(msg));
    if (self->commands)
        cv_commands_result_ack(self->commands, id, acked ? NULL : reason ? reason : "?");
    free(reason);
}

/* Steps the commands module: the milliseconds it may wait. */
static int64_t s_commands_step(cv_client_t *self)
{
    if (!self->commands || self->error)
        return INT64_MAX;
    int wait = cv_commands_step(self->commands);
    if (wait < 0) {
        s_fail(self, CV_CLIENT_ERR_IO);
        return 0;
    }
    return wait;
}

static void s_on_error(cv_client_t *self, zmsg_t *msg)
{
    zframe_t *code = zmsg_next(msg), *text = zmsg_next(msg);
    char what[160] = "";
    if (text) {
        size_t n = zframe_size(text) < sizeof what - 1 ? zframe_size(text) : sizeof what - 1;
        memcpy(what, zframe_data(text), n);
        what[n] = '\0';
    }
    if (s_frame_is(code, "unknown_session"))
        s_drop(self, "the hub does not know our session");
    else if (s_frame_is(code, "bad_protocol")) {
        cv_error(COMP, "%s: the hub refused protocol %s: %s", s_name(self), CV_PROTO_VERSION, what);
        s_fail(self, CV_CLIENT_ERR_PROTOCOL);
    }
    else {
        cv_error(COMP, "%s: ERROR from the hub (%.*s): %s", s_name(self),
                 code ? (int) (zframe_size(code) > 64 ? 64 : zframe_size(code)) : 1,
                 code ? (const char *) zframe_data(code) : "?", what);
        s_drop(self, "ERROR from the hub");
    }
}

static void s_handle(cv_client_t *self, zmsg_t *msg)
{
    zframe_t *head = zmsg_first(msg);
    cv_cmd_t cmd = head ? cv_proto_cmd(zframe_data(head), zframe_size(head)) : CV_CMD_INVALID;
    self->alive_at = s_now();
    self->ping_out = false;
    if (cmd == CV_CMD_WELCOME) {
        s_on_welcome(self, msg);
        return;
    }
    if (cmd == CV_CMD_ERROR) {
        s_on_error(self, msg);
        return;
    }
    zframe_t *session = zmsg_next(msg);
    if (self->state != S_READY || !session || zframe_size(session) != CV_SESSION_ID_LEN
        || memcmp(zframe_data(session), self->session, CV_SESSION_ID_LEN) != 0) {
        cv_debug(COMP, "%s: ignoring %s outside our session", s_name(self), cv_proto_cmd_name(cmd));
        return;
    }
    if (cmd == CV_CMD_ACK)
        s_on_ack(self, msg);
    else if (cmd == CV_CMD_NACK)
        s_on_nack(self, msg);
    else if (cmd == CV_CMD_COMMAND)
        s_on_command(self, msg);
    else if (cmd == CV_CMD_RESULT_ACK)
        s_on_result_ack(self, msg, true);
    else if (cmd == CV_CMD_RESULT_NACK)
        s_on_result_ack(self, msg, false);
    else if (cmd != CV_CMD_PONG)
        cv_warn(COMP, "%s: ignoring unexpected %s from the hub", s_name(self), cv_proto_cmd_name(cmd));
}

static void s_on_monitor(cv_client_t *self)
{
    bool drop = false;
    while (self->monitor && (zsock_events(self->monitor) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv(self->monitor);
        zframe_t *head = msg ? zmsg_first(msg) : NULL;
        if (!head || zframe_size(head) < 6) {
            zmsg_destroy(&msg);
            break;
        }
        uint16_t event;
        uint32_t value;
        memcpy(&event, zframe_data(head), 2);
        memcpy(&value, zframe_data(head) + 2, 4);
        zmsg_destroy(&msg);
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && value != 400)
            cv_warn(COMP, "%s: the hub's authentication failed temporarily (ZAP status %u)",
                    s_name(self), value);
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            cv_error(COMP, "%s: the hub refused this adapter's key %s (CURVE handshake, ZAP status %u)",
                     s_name(self), zcert_public_txt(self->cert), value);
            s_fail(self, CV_CLIENT_ERR_AUTH);
            return;
        }
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            cv_warn(COMP, "%s: CURVE handshake with the hub failed (check hub.public_key)", s_name(self));
        else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            cv_debug(COMP, "%s: secure connection to the hub established", s_name(self));
        else if (event == ZMQ_EVENT_DISCONNECTED)
            drop = true;
    }
    if (drop && self->state != S_DOWN)
        s_drop(self, "disconnected");
}

/* Waits up to wait_ms for the hub or the monitor; returns the number of
   hub messages handled. */
static int s_read(cv_client_t *self, int64_t wait_ms)
{
    if (!self->dealer) {
        if (wait_ms > 0)
            zclock_sleep((int) wait_ms);
        return 0;
    }
    zmq_pollitem_t items[] = {
        { zsock_resolve(self->dealer), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve(self->monitor), 0, ZMQ_POLLIN, 0 },
    };
    if (zmq_poll(items, 2, (long) wait_ms) <= 0)
        return 0;
    int handled = 0;
    while (handled < RECV_BURST && self->dealer && !self->error
           && (zsock_events(self->dealer) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv(self->dealer);
        if (!msg)
            break;
        s_handle(self, msg);
        zmsg_destroy(&msg);
        handled++;
    }
    if (!self->error)
        s_on_monitor(self);
    return handled;
}

/* ---------------------------------------------------------------- timers */

static bool s_waiting(const cv_client_t *self)
{
    return self->state == S_HELLO
        || (self->state == S_READY && (self->inflight > 0 || self->ping_out));
}

/* Deletes spool segments settled for longer than the retention. */
static void s_gc(cv_client_t *self, int64_t now)
{
    self->next_gc = now + GC_EVERY_MS;
    int deleted = cv_spool_gc(self->spool, time(NULL));   /* syncs the spool first */
    self->unsynced_from = 0;
    self->position_dirty = false;
    self->settled_dirty = false;
    if (deleted < 0) {
        cv_error(COMP, "%s: spool clean-up failed", s_name(self));
        s_fail(self, CV_CLIENT_ERR_IO);
    }
    else if (deleted > 0)
        cv_info(COMP, "%s: deleted %d settled spool segments past retention", s_name(self), deleted);
}

static void s_timers(cv_client_t *self)
{
    int64_t now = s_now();
    if (now >= self->next_gc)
        s_gc(self, now);
    if (self->state == S_DOWN && now >= self->reconnect_at) {
        char err[256];
        if (s_connect(self, err, sizeof err) < 0) {
            cv_warn(COMP, "%s: %s", s_name(self), err);
            self->reconnect_at = now + self->backoff_ms;
            self->backoff_ms = self->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : self->backoff_ms * 2;
        }
        return;
    }
    if (s_waiting(self) && now - self->alive_at >= 3 * (int64_t) self->heartbeat_ms) {
        s_drop(self, self->state == S_HELLO ? "no WELCOME" : "the hub is silent");
        return;
    }
    if (self->state == S_READY && !self->ping_out && now - self->last_send >= self->heartbeat_ms)
        s_send_ping(self);
}

static int64_t s_next_timer(const cv_client_t *self)
{
    if (self->state == S_DOWN)
        return self->reconnect_at;
    int64_t next = INT64_MAX;
    if (s_waiting(self))
        next = self->alive_at + 3 * (int64_t) self->heartbeat_ms;
    if (self->state == S_READY && !self->ping_out && self->last_send + self->heartbeat_ms < next)
        next = self->last_send + self->heartbeat_ms;
    return next;
}

/* ------------------------------------------------------------- public API */

/* mkdir -p, private: the spool holds personal data. */
static int s_mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int) sizeof buf)
        return -1;
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (c == '\0')
                return 0;
        }
    }
}

static char *s_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

cv_client_t *cv_client_new(const cv_client_opts_t *opts, char *err, size_t errlen)
{
    if (!opts->endpoint || !opts->hub_public_key || !opts->secret_key_file || !opts->spool_dir) {
        snprintf(err, errlen, "endpoint, hub public key, secret key file and spool directory are required");
        return NULL;
    }
    if (strlen(opts->hub_public_key) != 40) {
        snprintf(err, errlen, "the hub public key must be 40 Z85 characters");
        return NULL;
    }
    cv_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->endpoint = strdup(opts->endpoint);
    self->hub_key = strdup(opts->hub_public_key);
    self->description = strdup(opts->description ? opts->description : "civibus-adapter/0.1");
    self->name = s_strdup(opts->name);
    self->cfg_max_event_bytes = opts->max_event_bytes ? opts->max_event_bytes : DEFAULT_EVENT_BYTES;
    self->window = DEFAULT_WINDOW;
    self->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
    self->backoff_ms = BACKOFF_MIN_MS;
    self->ring_cap = 1024;
    self->ring = calloc(self->ring_cap, sizeof *self->ring);
    self->cache = calloc(CACHE_SLOTS, sizeof *self->cache);
    self->low_seq = self->next_seq = 1;
    self->disk_pending = true;                /* leftovers of a previous run go first */
    self->first_own_id = UINT64_MAX;
    if (!self->endpoint || !self->hub_key || !self->description || (opts->name && !self->name)
        || !self->ring || !self->cache) {
        snprintf(err, errlen, "out of memory");
        cv_client_destroy(&self);
        return NULL;
    }
    self->cert = zcert_load(opts->secret_key_file);
    static const byte zero[32];
    if (!self->cert || memcmp(zcert_secret_key(self->cert), zero, sizeof zero) == 0) {
        snprintf(err, errlen, "cannot load a secret key from '%s'", opts->secret_key_file);
        cv_client_destroy(&self);
        return NULL;
    }
    cv_spool_opts_t spool_opts = opts->spool;
    spool_opts.max_record_bytes = self->cfg_max_event_bytes;
    char spool_err[256];
    if (s_mkdirs(opts->spool_dir) < 0) {
        snprintf(err, errlen, "cannot create spool directory '%s': %s", opts->spool_dir, strerror(errno));
        cv_client_destroy(&self);
        return NULL;
    }
    self->spool = cv_spool_open(opts->spool_dir, &spool_opts, spool_err, sizeof spool_err);
    if (!self->spool) {
        snprintf(err, errlen, "spool '%s': %s", opts->spool_dir, spool_err);
        cv_client_destroy(&self);
        return NULL;
    }
    if (opts->commands) {
        self->commands = cv_commands_new(opts->commands, opts->spool_dir, s_name(self), err, errlen);
        if (!self->commands) {
            cv_client_destroy(&self);
            return NULL;
        }
        cv_commands_set_sender(self->commands, s_send_result, self);
    }
    if (s_connect(self, err, errlen) < 0) {
        cv_client_destroy(&self);
        return NULL;
    }
    self->next_gc = s_now();                 /* at the first poll */
    uint64_t left = cv_spool_unsettled_count(self->spool);
    if (left > 0)
        cv_info(COMP, "%s: %" PRIu64 " unsettled records from a previous run will be sent first",
                s_name(self), left);
    return self;
}

void cv_client_destroy(cv_client_t **self_p)
{
    cv_client_t *self = *self_p;
    if (!self)
        return;
    cv_commands_destroy(&self->commands);
    if (self->spool && (self->unsynced_from || self->position_dirty || self->settled_dirty)
        && cv_spool_sync(self->spool) < 0)
        cv_error(COMP, "%s: cannot sync the spool on close", s_name(self));
    if (self->state == S_READY) {
        zmsg_t *msg = zmsg_new();
        zmsg_addstr(msg, "BYE");
        zmsg_addmem(msg, self->session, CV_SESSION_ID_LEN);
        zsock_set_linger(self->dealer, 200);
        zmsg_send(&msg, self->dealer);
    }
    s_close_socket(self);
    if (self->spool)
        cv_info(COMP, "%s: closing: submitted %" PRIu64 " refused %" PRIu64 " sent %" PRIu64
                " (resent %" PRIu64 ") acked %" PRIu64 " nacked %" PRIu64 ", %" PRIu64 " unsettled",
                s_name(self), self->stats.submitted, self->stats.refused, self->stats.sent,
                self->stats.resent, self->stats.acked, self->stats.nacked,
                cv_spool_unsettled_count(self->spool));
    while (self->cache && self->cache_count > 0)
        free(s_cache_pop(self).data);
    cv_spool_destroy(&self->spool);
    zcert_destroy(&self->cert);
    free(self->cache);
    free(self->ring);
    free(self->endpoint);
    free(self->hub_key);
    free(self->description);
    free(self->name);
    free(self);
    *self_p = NULL;
}

int cv_client_submit(cv_client_t *self, const void *data, size_t len)
{
    if (self->error)
        return -1;
    if (len > cv_client_max_event_bytes(self)) {
        self->stats.refused++;
        cv_debug(COMP, "%s: refused a record of %zu bytes (limit %u)", s_name(self), len,
                 cv_client_max_event_bytes(self));
        return 1;
    }
    uint64_t id;
    if (cv_spool_append(self->spool, data, len, &id) < 0) {
        cv_error(COMP, "%s: cannot append to the spool", s_name(self));
        s_fail(self, CV_CLIENT_ERR_IO);
        return -1;
    }
    self->stats.submitted++;
    if (self->unsynced_from == 0)
        self->unsynced_from = id;
    if (self->first_own_id == UINT64_MAX)
        self->first_own_id = id;
    if (!s_cache_push(self, id, data, len)) {
        if (self->cache_count > 0)
            self->overflow = true;
        else
            self->disk_pending = true;
    }
    return 0;
}

bool cv_client_can_accept(const cv_client_t *self)
{
    if (self->error || cv_spool_full(self->spool))
        return false;
    return self->state != S_READY || (!self->overflow && self->cache_count < s_cache_limit(self));
}

int cv_client_flush(cv_client_t *self)
{
    if (self->error)
        return -1;
    /* Settlements ride along with the next batch's sync; while no batch
       comes (the driver waits for ACKs, or the source is idle) they are
       synced on their own every SETTLE_SYNC_MS, so a crash resends at most
       that much more than the unacknowledged tail. */
    bool settle_due = self->settled_dirty && s_now() >= self->next_settle_sync;
    if (self->unsynced_from || self->position_dirty || settle_due) {
        if (cv_spool_sync(self->spool) < 0) {
            cv_error(COMP, "%s: cannot sync the spool", s_name(self));
            s_fail(self, CV_CLIENT_ERR_IO);
            return -1;
        }
        self->unsynced_from = 0;
        self->position_dirty = false;
        self->settled_dirty = false;
        self->next_settle_sync = s_now() + SETTLE_SYNC_MS;
    }
    s_send_more(self);
    return self->error ? -1 : 0;
}

int cv_client_poll(cv_client_t *self, int timeout_ms)
{
    if (cv_client_flush(self) < 0)
        return -1;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : s_now() + timeout_ms;
    while (true) {
        s_timers(self);
        s_send_more(self);
        int64_t commands_wait = s_commands_step(self);
        if (self->error)
            return -1;
        int64_t now = s_now();
        int64_t until = s_next_timer(self);
        if (until > deadline)
            until = deadline;
        if (commands_wait != INT64_MAX && now + commands_wait < until)
            until = now + commands_wait;
        int64_t wait = until > now ? until - now : 0;
        if (wait > 1000)
            wait = 1000;
        int handled = s_read(self, wait);
        if (self->error)
            return -1;
        if (handled > 0) {
            s_send_more(self);
            return self->error ? -1 : 0;
        }
        if (s_now() >= deadline)
            return 0;
    }
}

bool cv_client_settled(const cv_client_t *self)
{
    return cv_spool_unsettled_count(self->spool) == 0;
}

int cv_client_wait_settled(cv_client_t *self, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : s_now() + timeout_ms;
    while (!cv_client_settled(self)) {
        int64_t left = deadline - s_now();
        if (left <= 0)
            return 1;
        if (cv_client_poll(self, left > 1000 ? 1000 : (int) left) < 0)
            return -1;
    }
    return 0;
}

cv_client_error_t cv_client_error(const cv_client_t *self)
{
    return self->error;
}

const char *cv_client_error_text(cv_client_error_t error)
{
    switch (error) {
    case CV_CLIENT_OK:           return "no error";
    case CV_CLIENT_ERR_AUTH:     return "the hub refused this adapter's key";
    case CV_CLIENT_ERR_PROTOCOL: return "the hub refused the protocol version";
    case CV_CLIENT_ERR_IO:       return "spool I/O error";
    }
    return "unknown error";
}

cv_client_stats_t cv_client_stats(const cv_client_t *self)
{
    return self->stats;
}

bool cv_client_connected(const cv_client_t *self)
{
    return self->state == S_READY;
}

const char *cv_client_session(const cv_client_t *self)
{
    return self->session;
}

uint32_t cv_client_window(const cv_client_t *self)
{
    return self->window;
}

uint32_t cv_client_max_event_bytes(const cv_client_t *self)
{
    uint32_t limit = self->cfg_max_event_bytes;
    if (self->hub_max_event_bytes && self->hub_max_event_bytes < limit)
        limit = self->hub_max_event_bytes;
    return limit;
}

uint64_t cv_client_unsettled(const cv_client_t *self)
{
    return cv_spool_unsettled_count(self->spool);
}

uint64_t cv_client_last_id(const cv_client_t *self)
{
    return cv_spool_next_id(self->spool) - 1;
}

bool cv_client_is_settled(const cv_client_t *self, uint64_t id)
{
    return cv_spool_is_settled(self->spool, id);
}

int cv_client_set_position(cv_client_t *self, const char *position)
{
    if (self->error)
        return -1;
    if (cv_spool_set_position(self->spool, position) < 0)
        return -1;
    self->position_dirty = true;
    return 0;
}

const char *cv_client_position(const cv_client_t *self)
{
    return cv_spool_position(self->spool);
}

cv_commands_t *cv_client_commands(const cv_client_t *self)
{
    return self->commands;
}

const char *cv_client_public_key(const cv_client_t *self)
{
    return zcert_public_txt(self->cert);
}
