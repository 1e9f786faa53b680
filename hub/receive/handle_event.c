/*  handle_event — EVENT | session | sequence | record (docs/protocol.md).

    Every EVENT gets one answer. When its session and sequence can be read
    and are right, the record goes into the filling batch whatever happens
    to it: missing or followed by extra frames (malformed), too large, not
    JSON, not UTF-8, or refused by its source's mapping, it becomes a
    dead-letter item with its reason, committed with the batch and NACKed
    after COMMIT; mapped, it becomes an event, ACKed after COMMIT
    (send_answers.c). Otherwise it is refused at once with an ERROR naming
    its session and sequence, and the session ends (handle_session.c):

    - no readable sequence number: malformed;
    - a sequence other than the next one (0, a reused one, a gap):
      bad_sequence; a session's sequence starts at 1 and grows by one;
    - a `window`-th + 1 EVENT in flight (received, not yet answered):
      window_exceeded.

    An adapter resends what was unsettled with new sequence numbers after
    its new HELLO: the new session starts again at 1 with a whole window,
    and items of the old one still in a batch are committed, not answered,
    and out of every window. */
#include "cv_ingest_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "cv_hash.h"
#include "cv_log.h"

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

/* The record of one EVENT: checked, parsed, hashed, mapped. `extra` is
   the number of frames after the record (0 when well formed); payload is
   NULL when the record frame is missing. */
static void s_event(cv_ingest_t *self, int src, cv_ingest__session_t *s, uint64_t seq,
                    zframe_t *payload, size_t extra)
{
    const cv_source_conf_t *source = &self->config->sources[src];
    cv_batch_meta_t *m;
    cv_store_item_t *it = cv_ingest__push(self, src, s, seq, &m);
    if (!it) {
        zframe_destroy(&payload);
        cv_error("ingest", "source %s: out of memory for an EVENT", source->name);
        cv_ingest__end_session(self, src, "ended: the hub is out of memory");
        return;                              /* the adapter's next message gets unknown_session */
    }
    s->next_seq++;
    s->inflight++;
    it->kind = CV_ITEM_EVENT;
    cv_ingest__hold(self, it, m, payload);
    self->stats.received++;
    cv_metrics_received(self->metrics, src);

    if (!payload || extra > 0) {
        cv_hash_bytes(it->raw, it->raw_len, it->content_hash);
        if (!payload)
            s_dead(it, "malformed", "EVENT without its record frame");
        else
            s_dead(it, "malformed", "EVENT with %zu frames after its record (expected none)", extra);
        return;
    }
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

void cv_ingest__handle_event(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    zframe_t *sid = zmsg_pop(msg);
    zframe_t *seqf = zmsg_pop(msg);
    zframe_t *payload = zmsg_pop(msg);
    size_t extra = zmsg_size(msg);
    cv_ingest__ref_t ref = { "EVENT", sid, seqf };
    uint64_t seq;
    char text[160];
    cv_ingest__session_t *s = cv_ingest__session(self, src, routing, &ref);
    if (!s)
        goto done;                               /* refused: unknown session, or no session frame */
    if (!seqf || cv_proto_parse_u64(zframe_data(seqf), zframe_size(seqf), &seq) < 0)
        cv_ingest__refuse(self, src, routing, &ref, "malformed",
                          "EVENT needs: session id, sequence number (decimal), record");
    else if (seq != s->next_seq) {
        snprintf(text, sizeof text, "sequence %" PRIu64 " where %" PRIu64 " was expected (sequences start "
                 "at 1 and grow by one): send HELLO again", seq, s->next_seq);
        cv_ingest__refuse(self, src, routing, &ref, "bad_sequence", text);
    }
    else if (s->inflight >= (uint64_t) self->config->window) {
        snprintf(text, sizeof text, "%" PRIu64 " EVENTs already wait for an answer (window %d): send HELLO "
                 "again", s->inflight, self->config->window);
        cv_ingest__refuse(self, src, routing, &ref, "window_exceeded", text);
    }
    else {
        s_event(self, src, s, seq, payload, extra);
        payload = NULL;
    }
done:
    zframe_destroy(&sid);
    zframe_destroy(&seqf);
    zframe_destroy(&payload);
}
