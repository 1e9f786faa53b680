/*  cv_client_recv — what the client receives from the hub (docs/protocol.md):
    WELCOME opens the session and sends every unsettled record again; ACK
    ranges and NACKs settle records in the spool; COMMAND, RESULT_ACK and
    RESULT_NACK go to the commands module; an ERROR about our session (or
    about none) and the socket monitor's events (a refused key, a dropped
    connection) end the connection (cv_client.c reconnects); an ERROR about
    an older session is ignored. */
#include "cv_client_int.h"

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
    return frame && cv_proto_is_session_id(zframe_data(frame), zframe_size(frame));
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
        cv_error(COMP, "%s: malformed WELCOME from the hub", cv_client__name(self));
        cv_client__drop(self, "malformed WELCOME");
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
            cv_client__name(self), self->session, self->window, self->hub_max_event_bytes, self->heartbeat_ms,
            cv_spool_unsettled_count(self->spool));
    if (self->commands)
        cv_commands_session(self->commands);
}

/* ACK | session | ranges [| kind]: CIVIBUS/1.1 names what the ranges are;
   a kind we do not know still settles them ("settled", as from a 1.0 hub). */
static void s_on_ack(cv_client_t *self, zmsg_t *msg)
{
    zframe_t *ranges = zmsg_next(msg);
    zframe_t *kind = zmsg_size(msg) >= 4 ? zmsg_next(msg) : NULL;
    self->ack_kind = s_frame_is(kind, "stored") ? "stored" : s_frame_is(kind, "duplicate") ? "duplicate"
                     : s_frame_is(kind, "id_reused") ? "id_reused" : "settled";
    if (!ranges || cv_rangeset_parse((const char *) zframe_data(ranges), zframe_size(ranges),
                                   cv_client__settle_range, self) < 0)
        cv_warn(COMP, "%s: ignoring an ACK with malformed ranges", cv_client__name(self));
    self->ack_kind = NULL;
    cv_client__ring_advance(self);
}

static void s_on_nack(cv_client_t *self, zmsg_t *msg)
{
    uint64_t seq;
    if (s_frame_u64(zmsg_next(msg), &seq) < 0) {
        cv_warn(COMP, "%s: ignoring a NACK with a malformed sequence number", cv_client__name(self));
        return;
    }
    zframe_t *reason = zmsg_next(msg);
    char code[64] = "?";
    if (reason) {
        size_t n = zframe_size(reason) < sizeof code - 1 ? zframe_size(reason) : sizeof code - 1;
        memcpy(code, zframe_data(reason), n);
        code[n] = '\0';
    }
    uint64_t id = seq >= self->low_seq && seq < self->next_seq ? *cv_client__slot(self, seq) : 0;
    cv_debug(COMP, "%s: record %" PRIu64 " (seq %" PRIu64 ") rejected by the hub: %s",
             cv_client__name(self), id, seq, code);
    cv_client__settle(self, seq, false, code);
    cv_client__ring_advance(self);
}

/* ------------------------------------------------------------- commands */

/* The sender cv_commands uses: RESULT | session | id | outcome | detail. */
int cv_client__send_result(void *arg, uint64_t id, const char *outcome, const char *detail)
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
    self->last_send = cv_client__now();
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
    /* exactly COMMAND | session | id | kind | key | payload (zmsg_next would
       wrap around to the first frame after the last) */
    if (zmsg_size(msg) != 6 || s_frame_u64(idf, &id) < 0 || !kind || !key || !payload)
        cv_warn(COMP, "%s: ignoring a malformed COMMAND", cv_client__name(self));
    else if (!self->commands) {
        /* nothing performed, nothing to journal: a lost answer is asked again */
        cv_warn(COMP, "%s: command %" PRIu64 " refused: this adapter's config has no 'commands' section",
                cv_client__name(self), id);
        cv_client__send_result(self, id, "failed", "{\"attempts\":0,\"error\":\"this adapter performs no "
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
        cv_warn(COMP, "%s: ignoring a RESULT_%s with a malformed command id", cv_client__name(self), acked ? "ACK" : "NACK");
        return;
    }
    char *reason = acked ? NULL : s_frame_str(zmsg_next(msg));
    if (self->commands)
        cv_commands_result_ack(self->commands, id, acked ? NULL : reason ? reason : "?");
    free(reason);
}

/* Steps the commands module: the milliseconds it may wait. */
int64_t cv_client__commands_step(cv_client_t *self)
{
    if (!self->commands || self->error)
        return INT64_MAX;
    int wait = cv_commands_step(self->commands);
    if (wait < 0) {
        cv_client__fail(self, CV_CLIENT_ERR_IO);
        return 0;
    }
    return wait;
}

/* ERROR | code | text | command | session | number (docs/protocol.md): the
   last three name the message it answers, empty when unknown; a hub
   older than them sends code and text only. An ERROR naming a session
   other than ours answers a message of a session already over (sent
   before a reconnect): nothing to do. Any other ends our session. */
static void s_on_error(cv_client_t *self, zmsg_t *msg)
{
    /* zmsg_next starts again from the first frame after the last: read
       each frame only while the previous one was there */
    zframe_t *code = zmsg_next(msg), *text = code ? zmsg_next(msg) : NULL;
    zframe_t *cmdf = text ? zmsg_next(msg) : NULL, *sid = cmdf ? zmsg_next(msg) : NULL;
    zframe_t *numf = sid ? zmsg_next(msg) : NULL;
    char what[160] = "", about[64] = "";
    if (text) {
        size_t n = zframe_size(text) < sizeof what - 1 ? zframe_size(text) : sizeof what - 1;
        memcpy(what, zframe_data(text), n);
        what[n] = '\0';
    }
    if (sid && zframe_size(sid) > 0
        && (self->state != S_READY || zframe_size(sid) != CV_SESSION_ID_LEN
            || memcmp(zframe_data(sid), self->session, CV_SESSION_ID_LEN) != 0)) {
        cv_debug(COMP, "%s: ignoring an ERROR about another session", cv_client__name(self));
        return;
    }
    uint64_t num;
    cv_cmd_t cmd = cmdf ? cv_proto_cmd(zframe_data(cmdf), zframe_size(cmdf)) : CV_CMD_INVALID;
    if (cmd != CV_CMD_INVALID && s_frame_u64(numf, &num) == 0)
        snprintf(about, sizeof about, " on %s %" PRIu64, cv_proto_cmd_name(cmd), num);
    else if (cmd != CV_CMD_INVALID)
        snprintf(about, sizeof about, " on %s", cv_proto_cmd_name(cmd));
    if (s_frame_is(code, "unknown_session"))
        cv_client__drop(self, "the hub does not know our session");
    else if (s_frame_is(code, "bad_protocol") && self->proto_minor >= 1) {
        /* an older hub: CIVIBUS/1 settles the same, only ACKs say less */
        cv_warn(COMP, "%s: the hub refused %s (%s): speaking %s, whose ACKs do not tell duplicates",
                cv_client__name(self), CV_PROTO_VERSION_1_1, what, CV_PROTO_VERSION);
        self->proto_minor = 0;
        cv_client__drop(self, "protocol 1.1 refused");
    }
    else if (s_frame_is(code, "bad_protocol")) {
        cv_error(COMP, "%s: the hub refused protocol %s: %s", cv_client__name(self), CV_PROTO_VERSION, what);
        cv_client__fail(self, CV_CLIENT_ERR_PROTOCOL);
    }
    else {
        cv_error(COMP, "%s: ERROR from the hub (%.*s)%s: %s", cv_client__name(self),
                 code ? (int) (zframe_size(code) > 64 ? 64 : zframe_size(code)) : 1,
                 code ? (const char *) zframe_data(code) : "?", about, what);
        cv_client__drop(self, "ERROR from the hub");
    }
}

static void s_handle(cv_client_t *self, zmsg_t *msg)
{
    zframe_t *head = zmsg_first(msg);
    cv_cmd_t cmd = head ? cv_proto_cmd(zframe_data(head), zframe_size(head)) : CV_CMD_INVALID;
    self->alive_at = cv_client__now();
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
        cv_debug(COMP, "%s: ignoring %s outside our session", cv_client__name(self), cv_proto_cmd_name(cmd));
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
        cv_warn(COMP, "%s: ignoring unexpected %s from the hub", cv_client__name(self), cv_proto_cmd_name(cmd));
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
                    cv_client__name(self), value);
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            cv_error(COMP, "%s: the hub refused this adapter's key %s (CURVE handshake, ZAP status %u)",
                     cv_client__name(self), zcert_public_txt(self->cert), value);
            cv_client__fail(self, CV_CLIENT_ERR_AUTH);
            return;
        }
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            cv_warn(COMP, "%s: CURVE handshake with the hub failed (check hub.public_key)", cv_client__name(self));
        else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            cv_debug(COMP, "%s: secure connection to the hub established", cv_client__name(self));
        else if (event == ZMQ_EVENT_DISCONNECTED)
            drop = true;
    }
    if (drop && self->state != S_DOWN)
        cv_client__drop(self, "disconnected");
}

/* Waits up to wait_ms for the hub or the monitor; returns the number of
   hub messages handled. */
int cv_client__read(cv_client_t *self, int64_t wait_ms)
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
