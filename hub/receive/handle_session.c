/*  handle_session — a message's session, PING | session (→ PONG), BYE |
    session, and the expiry of silent sessions (3 heartbeats).

    A message naming the source's open session refreshes its routing id
    (the adapter may have reconnected) and its last contact; one naming no
    open session gets ERROR unknown_session ("send HELLO again"); one naming
    a session the source replaced meanwhile is dropped without an answer. */
#include "cv_ingest_int.h"

#include "cv_log.h"

cv_ingest__session_t *cv_ingest__session(cv_ingest_t *self, int src, zframe_t *routing, zframe_t *sid)
{
    cv_ingest__session_t *s = &self->sessions[src];
    if (!sid) {
        cv_ingest__send_error(self, routing, "malformed", "missing session id");
        return NULL;
    }
    if (s->open && zframe_streq(sid, s->id)) {
        zframe_destroy(&s->routing);
        s->routing = zframe_dup(routing);
        s->last_seen_ms = zclock_mono();
        return s;
    }
    if (!s->open) {
        cv_ingest__send_error(self, routing, "unknown_session", "send HELLO again");
        return NULL;
    }
    /* a message of a session this source already replaced: drop it */
    return NULL;
}

void cv_ingest__handle_ping(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    zframe_t *sid = zmsg_pop(msg);
    cv_ingest__session_t *s = cv_ingest__session(self, src, routing, sid);
    if (s)
        cv_ingest__send(self, s, "PONG", s->id, NULL, NULL, NULL);
    zframe_destroy(&sid);
}

static void s_close(cv_ingest_t *self, int src, const char *why)
{
    cv_ingest__session_t *s = &self->sessions[src];
    s->open = false;
    cv_info("ingest", "source %s: session %.8s… %s", self->config->sources[src].name, s->id, why);
    cv_metrics_session(self->metrics, src, false);
    cv_commander_session(self->commander, src, false);
}

void cv_ingest__handle_bye(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    zframe_t *sid = zmsg_pop(msg);
    if (cv_ingest__session(self, src, routing, sid))
        s_close(self, src, "closed by the adapter");
    zframe_destroy(&sid);
}

void cv_ingest__expire_sessions(cv_ingest_t *self)
{
    int64_t now = zclock_mono();
    for (size_t i = 0; i < self->config->nsources; i++) {
        cv_ingest__session_t *s = &self->sessions[i];
        if (s->open && now - s->last_seen_ms > 3 * (int64_t) self->config->heartbeat_ms)
            s_close(self, (int) i, "silent, forgotten");
    }
}
