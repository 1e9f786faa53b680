/*  handle_event — EVENT | session | sequence | record (docs/protocol.md).

    The record goes into the filling batch whatever happens to it: too
    large, not JSON, not UTF-8, or refused by its source's mapping, it
    becomes a dead-letter item with its reason, committed with the batch and
    NACKed after COMMIT; mapped, it becomes an event. Nothing is answered
    here: answers wait for the commit (send_answers.c). */
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

/* The record of one EVENT: checked, parsed, hashed, mapped. */
static void s_event(cv_ingest_t *self, int src, const cv_ingest__session_t *s, uint64_t seq,
                    zframe_t *payload)
{
    const cv_source_conf_t *source = &self->config->sources[src];
    cv_batch_meta_t *m;
    cv_store_item_t *it = cv_ingest__push(self, src, s, seq, &m);
    if (!it) {
        zframe_destroy(&payload);            /* not answered: the adapter resends */
        return;
    }
    m->frame = payload;
    it->kind = CV_ITEM_EVENT;
    it->raw = (const char *) zframe_data(payload);
    it->raw_len = zframe_size(payload);
    self->filling->bytes += it->raw_len;
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

void cv_ingest__handle_event(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    zframe_t *sid = zmsg_pop(msg);
    zframe_t *seqf = zmsg_pop(msg);
    zframe_t *payload = zmsg_pop(msg);
    uint64_t seq;
    cv_ingest__session_t *s;
    if (!payload || cv_proto_parse_u64(zframe_data(seqf), zframe_size(seqf), &seq) < 0 || zmsg_size(msg) > 0) {
        cv_ingest__send_error(self, routing, "malformed", "EVENT needs: session id, sequence number, record");
        cv_warn("ingest", "source %s: malformed EVENT dropped", self->config->sources[src].name);
    }
    else if ((s = cv_ingest__session(self, src, routing, sid))) {
        s_event(self, src, s, seq, payload);
        payload = NULL;
    }
    zframe_destroy(&sid);
    zframe_destroy(&seqf);
    zframe_destroy(&payload);
}
