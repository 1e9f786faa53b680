/*  handle_hello — HELLO | protocol version | description: opens (or
    replaces) the source's session on the connection HELLO came on and
    answers WELCOME | session | window | max_event_bytes | heartbeat_ms
    (docs/protocol.md). The protocol is CIVIBUS/1 or CIVIBUS/1.1; the
    session keeps which, as its ACKs differ (send_answers.c). The source is the one owning the message's CURVE key
    (read_handle.c), never anything the adapter writes; the description is
    free text and goes nowhere (it is not logged). A new HELLO replaces the
    source's open session: what that session had in flight is not answered,
    and the adapter resends it. The new session expects sequence 1 and has
    its whole window. */
#include "cv_ingest_int.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"

void cv_ingest__handle_hello(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    cv_ingest__ref_t ref = { "HELLO", NULL, NULL };
    if (zmsg_size(msg) < 1 || zmsg_size(msg) > 2) {
        cv_ingest__refuse(self, src, routing, &ref, "malformed", "HELLO needs: protocol, description");
        return;
    }
    char *proto = zmsg_popstr(msg);
    int minor = !proto ? -1 : strcmp(proto, CV_PROTO_VERSION) == 0 ? 0
                : strcmp(proto, CV_PROTO_VERSION_1_1) == 0 ? 1 : -1;
    free(proto);
    if (minor < 0) {
        cv_ingest__refuse(self, src, routing, &ref, "bad_protocol",
                          "expected " CV_PROTO_VERSION_1_1 " or " CV_PROTO_VERSION);
        return;
    }
    cv_ingest__session_t *s = &self->sessions[src];
    if (s->open)
        cv_info("ingest", "source %s: new session replaces %.8s…", self->config->sources[src].name, s->id);
    unsigned char rnd[CV_SESSION_ID_LEN / 2];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(s->id, sizeof s->id, rnd, sizeof rnd);
    zframe_destroy(&s->routing);
    s->routing = zframe_dup(routing);
    s->open = true;
    s->last_seen_ms = zclock_mono();
    s->next_seq = 1;
    s->inflight = 0;
    s->minor = minor;
    for (int k = 0; k < CV_ACK_KINDS; k++)
        cv_rangeset_clear(&s->acks[k]);
    char window[16], meb[24], hb[16];
    snprintf(window, sizeof window, "%d", self->config->window);
    snprintf(meb, sizeof meb, "%" PRId64, self->config->max_event_bytes);
    snprintf(hb, sizeof hb, "%d", self->config->heartbeat_ms);
    cv_ingest__send(self, s, "WELCOME", s->id, window, meb, hb);
    cv_info("ingest", "source %s: session %.8s… opened", self->config->sources[src].name, s->id);
    cv_metrics_session(self->metrics, src, true);
    cv_commander_session(self->commander, src, true);
}
