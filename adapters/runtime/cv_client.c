/*  cv_client — see cv_client.h and docs/protocol.md.

    Design. Three small structures carry all the state:

    - the spool (adapters/spool/cv_spool.c) is the truth: a record is unsettled until
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
    cv_client__send_result and is stepped by every poll; each WELCOME makes it send
    again the results the hub has not acknowledged. */
#include "cv_alloc.h"
#include "cv_client_int.h"


int64_t cv_client__now(void)
{
    return zclock_mono();
}

const char *cv_client__name(const cv_client_t *self)
{
    return self->name ? self->name : "adapter";
}

void cv_client__fail(cv_client_t *self, cv_client_error_t error)
{
    if (self->error == CV_CLIENT_OK)
        self->error = error;
}

/* ---------------------------------------------------------------- in flight */

uint64_t *cv_client__slot(cv_client_t *self, uint64_t seq)
{
    return &self->ring[seq & (self->ring_cap - 1)];
}

static void s_ring_reset(cv_client_t *self)
{
    for (uint64_t seq = self->low_seq; seq < self->next_seq; seq++)
        *cv_client__slot(self, seq) = 0;
    self->low_seq = self->next_seq = 1;
    self->inflight = 0;
}

/* Makes room for next_seq; -1 when out of memory. */
static int s_ring_reserve(cv_client_t *self)
{
    if (self->next_seq - self->low_seq < self->ring_cap)
        return 0;
    size_t cap = self->ring_cap * 2;
    uint64_t *ring = cv_zcalloc(cap, sizeof *ring);
    if (!ring)
        return -1;
    for (uint64_t seq = self->low_seq; seq < self->next_seq; seq++)
        ring[seq & (cap - 1)] = *cv_client__slot(self, seq);
    free(self->ring);
    self->ring = ring;
    self->ring_cap = cap;
    return 0;
}

void cv_client__settle(cv_client_t *self, uint64_t seq, bool acked, const char *reason)
{
    if (seq < self->low_seq || seq >= self->next_seq)
        return;
    uint64_t *slot = cv_client__slot(self, seq);
    if (*slot == 0)
        return;
    if (cv_spool_settle(self->spool, *slot) < 0) {
        cv_error(COMP, "%s: cannot mark spool record %" PRIu64 " settled", cv_client__name(self), *slot);
        cv_client__fail(self, CV_CLIENT_ERR_IO);
        return;
    }
    uint64_t id = *slot;
    *slot = 0;
    self->inflight--;
    self->settled_dirty = true;
    if (acked)
        self->stats.acked++;
    else
        self->stats.nacked++;
    if (acked && reason && strcmp(reason, "duplicate") == 0)
        self->stats.duplicates++;
    if (self->on_settle)
        self->on_settle(self->on_settle_arg, id, acked, reason ? reason : acked ? "settled" : "?");
}

void cv_client_on_settle(cv_client_t *self, cv_client_settle_fn fn, void *arg)
{
    self->on_settle = fn;
    self->on_settle_arg = arg;
}

void cv_client__settle_range(uint64_t lo, uint64_t hi, void *arg)
{
    cv_client_t *self = arg;
    if (lo < self->low_seq)
        lo = self->low_seq;
    if (hi >= self->next_seq)
        hi = self->next_seq - 1;
    for (uint64_t seq = lo; seq <= hi && seq >= lo; seq++)
        cv_client__settle(self, seq, true, self->ack_kind);
}

void cv_client__ring_advance(cv_client_t *self)
{
    while (self->low_seq < self->next_seq && *cv_client__slot(self, self->low_seq) == 0)
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
    cv_client__rec_t *rec = &self->cache[(self->cache_head + self->cache_count) % CACHE_SLOTS];
    *rec = (cv_client__rec_t) { id, copy, len };
    self->cache_count++;
    self->cache_bytes += len;
    return true;
}

static cv_client__rec_t s_cache_pop(cv_client_t *self)
{
    cv_client__rec_t rec = self->cache[self->cache_head];
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
    zmsg_addstr(msg, self->proto_minor >= 1 ? CV_PROTO_VERSION_1_1 : CV_PROTO_VERSION);
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
    self->alive_at = self->last_send = cv_client__now();
    cv_debug(COMP, "%s: connecting to %s", cv_client__name(self), self->endpoint);
    return 0;
}

/* Forgets the session: what was in flight stays unsettled in the spool and
   is resent, from the first unsettled record, on the next session. */
void cv_client__drop(cv_client_t *self, const char *why)
{
    if (self->state == S_READY)
        cv_warn(COMP, "%s: session %s lost (%s), %" PRIu64 " in flight; reconnecting",
                cv_client__name(self), self->session, why, self->inflight);
    else
        cv_warn(COMP, "%s: no session with the hub (%s); retrying in %d ms",
                cv_client__name(self), why, self->backoff_ms);
    s_close_socket(self);
    s_ring_reset(self);
    self->state = S_DOWN;
    self->session[0] = '\0';
    self->send_after = 0;
    self->disk_pending = true;
    self->ping_out = false;
    self->reconnect_at = cv_client__now() + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : self->backoff_ms * 2;
}

/* ------------------------------------------------------------------ send */

static bool s_durable(const cv_client_t *self, uint64_t id)
{
    return self->unsynced_from == 0 || id < self->unsynced_from;
}

/* The next record to send: 1 (rec filled, caller owns rec->data), 0 none. */
static int s_next_record(cv_client_t *self, cv_client__rec_t *rec)
{
    if (self->disk_pending) {
        uint64_t id;
        void *data;
        size_t len;
        int rc = cv_spool_next_unsettled(self->spool, self->send_after, &id, &data, &len);
        if (rc < 0) {
            cv_error(COMP, "%s: cannot read back spool record after %" PRIu64, cv_client__name(self), self->send_after);
            cv_client__fail(self, CV_CLIENT_ERR_IO);
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
            *rec = (cv_client__rec_t) { id, data, len };
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
static int s_send_event(cv_client_t *self, cv_client__rec_t *rec)
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
        self->alive_at = cv_client__now();        /* we start waiting for the hub now */
    *cv_client__slot(self, self->next_seq) = rec->id;
    self->next_seq++;
    self->inflight++;
    self->send_after = rec->id;
    self->last_send = cv_client__now();
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
        cv_client__rec_t rec;
        if (s_next_record(self, &rec) == 0)
            return;
        if (s_send_event(self, &rec) < 0) {
            /* the record is still in the spool: read it back next session */
            cv_client__drop(self, "cannot send an EVENT");
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
        cv_client__drop(self, "cannot send PING");
        return;
    }
    if (self->inflight == 0 && !self->ping_out)
        self->alive_at = cv_client__now();
    self->ping_out = true;
    self->last_send = cv_client__now();
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
        cv_error(COMP, "%s: spool clean-up failed", cv_client__name(self));
        cv_client__fail(self, CV_CLIENT_ERR_IO);
    }
    else if (deleted > 0)
        cv_info(COMP, "%s: deleted %d settled spool segments past retention", cv_client__name(self), deleted);
}

static void s_timers(cv_client_t *self)
{
    int64_t now = cv_client__now();
    if (now >= self->next_gc)
        s_gc(self, now);
    if (self->state == S_DOWN && now >= self->reconnect_at) {
        char err[256];
        if (s_connect(self, err, sizeof err) < 0) {
            cv_warn(COMP, "%s: %s", cv_client__name(self), err);
            self->reconnect_at = now + self->backoff_ms;
            self->backoff_ms = self->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : self->backoff_ms * 2;
        }
        return;
    }
    if (s_waiting(self) && now - self->alive_at >= 3 * (int64_t) self->heartbeat_ms) {
        cv_client__drop(self, self->state == S_HELLO ? "no WELCOME" : "the hub is silent");
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
    return s ? cv_zstrdup(s) : NULL;
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
    cv_client_t *self = cv_zcalloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->endpoint = cv_zstrdup(opts->endpoint);
    self->hub_key = cv_zstrdup(opts->hub_public_key);
    self->description = cv_zstrdup(opts->description ? opts->description : "civibus-adapter/0.1");
    self->proto_minor = 1;
    self->name = s_strdup(opts->name);
    self->cfg_max_event_bytes = opts->max_event_bytes ? opts->max_event_bytes : DEFAULT_EVENT_BYTES;
    self->window = DEFAULT_WINDOW;
    self->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
    self->backoff_ms = BACKOFF_MIN_MS;
    self->ring_cap = 1024;
    self->ring = cv_zcalloc(self->ring_cap, sizeof *self->ring);
    self->cache = cv_zcalloc(CACHE_SLOTS, sizeof *self->cache);
    self->low_seq = self->next_seq = 1;
    self->disk_pending = true;                /* leftovers of a previous run go first */
    self->first_own_id = UINT64_MAX;
    if (!self->endpoint || !self->hub_key || !self->description || (opts->name && !self->name)
        || !self->ring || !self->cache) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    self->cert = zcert_load(opts->secret_key_file);
    static const byte zero[32];
    if (!self->cert || memcmp(zcert_secret_key(self->cert), zero, sizeof zero) == 0) {
        snprintf(err, errlen, "cannot load a secret key from '%s'", opts->secret_key_file);
        goto fail;
    }
    cv_spool_opts_t spool_opts = opts->spool;
    spool_opts.max_record_bytes = self->cfg_max_event_bytes;
    char spool_err[256];
    if (s_mkdirs(opts->spool_dir) < 0) {
        snprintf(err, errlen, "cannot create spool directory '%s': %s", opts->spool_dir, strerror(errno));
        goto fail;
    }
    self->spool = cv_spool_open(opts->spool_dir, &spool_opts, spool_err, sizeof spool_err);
    if (!self->spool) {
        snprintf(err, errlen, "spool '%s': %s", opts->spool_dir, spool_err);
        goto fail;
    }
    if (opts->commands) {
        self->commands = cv_commands_new(opts->commands, opts->spool_dir, cv_client__name(self), err, errlen);
        if (!self->commands) {
            goto fail;
        }
        cv_commands_set_sender(self->commands, cv_client__send_result, self);
    }
    if (s_connect(self, err, errlen) < 0) {
        goto fail;
    }
    self->next_gc = cv_client__now();                 /* at the first poll */
    uint64_t left = cv_spool_unsettled_count(self->spool);
    if (left > 0)
        cv_info(COMP, "%s: %" PRIu64 " unsettled records from a previous run will be sent first",
                cv_client__name(self), left);
    return self;
fail:
    cv_client_destroy(&self);
    return NULL;
}

void cv_client_destroy(cv_client_t **self_p)
{
    cv_client_t *self = *self_p;
    if (!self)
        return;
    cv_commands_destroy(&self->commands);
    if (self->spool && (self->unsynced_from || self->position_dirty || self->settled_dirty)
        && cv_spool_sync(self->spool) < 0)
        cv_error(COMP, "%s: cannot sync the spool on close", cv_client__name(self));
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
                " (resent %" PRIu64 ") acked %" PRIu64 " (duplicates %" PRIu64 ") nacked %" PRIu64
                ", %" PRIu64 " unsettled",
                cv_client__name(self), self->stats.submitted, self->stats.refused, self->stats.sent,
                self->stats.resent, self->stats.acked, self->stats.duplicates, self->stats.nacked,
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
        cv_debug(COMP, "%s: refused a record of %zu bytes (limit %u)", cv_client__name(self), len,
                 cv_client_max_event_bytes(self));
        return 1;
    }
    uint64_t id;
    if (cv_spool_append(self->spool, data, len, &id) < 0) {
        cv_error(COMP, "%s: cannot append to the spool", cv_client__name(self));
        cv_client__fail(self, CV_CLIENT_ERR_IO);
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
    bool settle_due = self->settled_dirty && cv_client__now() >= self->next_settle_sync;
    if (self->unsynced_from || self->position_dirty || settle_due) {
        if (cv_spool_sync(self->spool) < 0) {
            cv_error(COMP, "%s: cannot sync the spool", cv_client__name(self));
            cv_client__fail(self, CV_CLIENT_ERR_IO);
            return -1;
        }
        self->unsynced_from = 0;
        self->position_dirty = false;
        self->settled_dirty = false;
        self->next_settle_sync = cv_client__now() + SETTLE_SYNC_MS;
    }
    s_send_more(self);
    return self->error ? -1 : 0;
}

int cv_client_poll(cv_client_t *self, int timeout_ms)
{
    if (cv_client_flush(self) < 0)
        return -1;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : cv_client__now() + timeout_ms;
    while (true) {
        s_timers(self);
        s_send_more(self);
        int64_t commands_wait = cv_client__commands_step(self);
        if (self->error)
            return -1;
        int64_t now = cv_client__now();
        int64_t until = s_next_timer(self);
        if (until > deadline)
            until = deadline;
        if (commands_wait != INT64_MAX && now + commands_wait < until)
            until = now + commands_wait;
        int64_t wait = until > now ? until - now : 0;
        if (wait > 1000)
            wait = 1000;
        int handled = cv_client__read(self, wait);
        if (self->error)
            return -1;
        if (handled > 0) {
            s_send_more(self);
            return self->error ? -1 : 0;
        }
        if (cv_client__now() >= deadline)
            return 0;
    }
}

bool cv_client_settled(const cv_client_t *self)
{
    return cv_spool_unsettled_count(self->spool) == 0;
}

int cv_client_wait_settled(cv_client_t *self, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : cv_client__now() + timeout_ms;
    while (!cv_client_settled(self)) {
        int64_t left = deadline - cv_client__now();
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
