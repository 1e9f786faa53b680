/*  handle_session — a message's session, refusals, PING | session (→ PONG),
    BYE | session, and the expiry of silent sessions (3 heartbeats).

    A session lives on the connection its HELLO came on. A message naming
    the source's open session on that connection refreshes its last
    contact. Anything else is refused with an ERROR naming the message's
    command, session and number (docs/protocol.md), and every ERROR ends a
    session, so an adapter is never left waiting for an answer that will
    not come:

    - no session frame: ERROR malformed;
    - a session id that is not the source's open one (never opened,
      replaced by a newer HELLO, closed, forgotten): ERROR unknown_session;
      the session it names is already over;
    - the open session's id from another connection: ZeroMQ dropped the
      session's connection and the adapter's socket reconnected by itself
      (a network break, or a message over limits.max_message_bytes, which
      libzmq drops without telling anyone). Messages and answers may have
      been lost with the old connection: ERROR unknown_session, the session
      ends, the adapter sends HELLO again and resends what is unsettled.

    cv_ingest__refuse ends the session the ERROR names when it is the open
    one, or, when it names none (no session frame, or one that is not a
    session id), the source's session living on the message's connection. */
#include "cv_ingest_int.h"

#include "cv_log.h"

void cv_ingest__end_session(cv_ingest_t *self, int src, const char *why)
{
    cv_ingest__session_t *s = &self->sessions[src];
    if (!s->open)
        return;
    s->open = false;
    cv_info("ingest", "source %s: session %.8s… %s", self->config->sources[src].name, s->id, why);
    cv_metrics_session(self->metrics, src, false);
    cv_commander_session(self->commander, src, false);
}

static bool s_names_open(const cv_ingest__session_t *s, zframe_t *sid)
{
    return s->open && sid && zframe_streq(sid, s->id);
}

void cv_ingest__refuse(cv_ingest_t *self, int src, zframe_t *routing, const cv_ingest__ref_t *ref,
                       const char *code, const char *text)
{
    cv_ingest__send_error(self, routing, code, text, ref);
    cv_ingest__session_t *s = &self->sessions[src];
    /* the ERROR echoes a session id only when the frame is one (send_answers.c) */
    bool named = ref && ref->sid && cv_proto_is_session_id(zframe_data(ref->sid), zframe_size(ref->sid));
    if (named ? s_names_open(s, ref->sid) : (s->open && s->routing && zframe_eq(s->routing, routing))) {
        cv_warn("ingest", "source %s: %s refused (%s): session %.8s… ended", self->config->sources[src].name,
                ref && ref->cmd ? ref->cmd : "message", code, s->id);
        cv_ingest__end_session(self, src, "ended by an ERROR");
    }
    else
        cv_info("ingest", "source %s: %s refused (%s)", self->config->sources[src].name,
                ref && ref->cmd ? ref->cmd : "message", code);
}

cv_ingest__session_t *cv_ingest__session(cv_ingest_t *self, int src, zframe_t *routing,
                                         const cv_ingest__ref_t *ref)
{
    cv_ingest__session_t *s = &self->sessions[src];
    if (!ref->sid) {
        cv_ingest__refuse(self, src, routing, ref, "malformed", "missing session id");
        return NULL;
    }
    if (!s_names_open(s, ref->sid)) {
        cv_ingest__refuse(self, src, routing, ref, "unknown_session", "no such session: send HELLO again");
        return NULL;
    }
    if (!zframe_eq(s->routing, routing)) {
        cv_ingest__refuse(self, src, routing, ref, "unknown_session",
                          "the session's connection was lost (a network break, or a message over the hub's "
                          "max_message_bytes): send HELLO again and resend what is unsettled");
        return NULL;
    }
    s->last_seen_ms = zclock_mono();
    return s;
}

void cv_ingest__handle_ping(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    zframe_t *sid = zmsg_pop(msg);
    cv_ingest__ref_t ref = { "PING", sid, NULL };
    cv_ingest__session_t *s;
    if (zmsg_size(msg) > 0)
        cv_ingest__refuse(self, src, routing, &ref, "malformed", "PING needs: session id");
    else if ((s = cv_ingest__session(self, src, routing, &ref)))
        cv_ingest__send(self, s, "PONG", s->id, NULL, NULL, NULL);
    zframe_destroy(&sid);
}

void cv_ingest__handle_bye(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    zframe_t *sid = zmsg_pop(msg);
    cv_ingest__ref_t ref = { "BYE", sid, NULL };
    if (zmsg_size(msg) > 0)
        cv_ingest__refuse(self, src, routing, &ref, "malformed", "BYE needs: session id");
    else if (cv_ingest__session(self, src, routing, &ref))
        cv_ingest__end_session(self, src, "closed by the adapter");
    zframe_destroy(&sid);
}

void cv_ingest__expire_sessions(cv_ingest_t *self)
{
    int64_t now = zclock_mono();
    for (size_t i = 0; i < self->config->nsources; i++) {
        cv_ingest__session_t *s = &self->sessions[i];
        if (s->open && now - s->last_seen_ms > 3 * (int64_t) self->config->heartbeat_ms)
            cv_ingest__end_session(self, (int) i, "silent, forgotten");
    }
}
