/*  handle_result — RESULT | session | command id | done|failed | detail JSON
    object (docs/commands.md): the outcome of a command the adapter ran
    goes into the batch like an event; the `commands` row and a
    command_result event of the request's timeline commit together, then
    RESULT_ACK (RESULT_NACK when the hub knows no such command for this
    source) is sent by send_answers.c. */
#include "cv_ingest_int.h"

#include <stdint.h>
#include <string.h>

#include "cv_hash.h"
#include "cv_log.h"

static bool s_frame_is(zframe_t *frame, const char *text)
{
    return frame && zframe_size(frame) == strlen(text) && memcmp(zframe_data(frame), text, strlen(text)) == 0;
}

void cv_ingest__handle_result(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg)
{
    const cv_source_conf_t *source = &self->config->sources[src];
    zframe_t *sid = zmsg_pop(msg), *idf = zmsg_pop(msg), *outf = zmsg_pop(msg), *detail = zmsg_pop(msg);
    uint64_t id = 0;
    bool done = s_frame_is(outf, "done");
    json_t *parsed = NULL;
    cv_ingest__ref_t ref = { "RESULT", sid, idf };
    if (!detail || zmsg_size(msg) > 0 || cv_proto_parse_u64(zframe_data(idf), zframe_size(idf), &id) < 0
        || id == 0 || id > INT64_MAX || (!done && !s_frame_is(outf, "failed"))
        || (int64_t) zframe_size(detail) > self->config->max_event_bytes
        || !(parsed = json_loadb((const char *) zframe_data(detail), zframe_size(detail), 0, NULL))
        || !json_is_object(parsed)) {
        cv_ingest__refuse(self, src, routing, &ref, "malformed",
                          "RESULT needs: session id, command id, done or failed, detail JSON object");
        goto done;
    }
    cv_ingest__session_t *s = cv_ingest__session(self, src, routing, &ref);
    if (!s)
        goto done;
    cv_batch_meta_t *m;
    cv_store_item_t *it = cv_ingest__push(self, src, s, id, &m);
    if (!it) {
        cv_error("ingest", "source %s: out of memory for a RESULT", source->name);
        cv_ingest__end_session(self, src, "ended: the hub is out of memory");
        goto done;                                /* the adapter resends on its next session */
    }
    it->kind = CV_ITEM_RESULT;
    it->record = json_pack("{s:I, s:s, s:o}", "command", (json_int_t) id, "outcome", done ? "done" : "failed",
                           "detail", parsed);
    parsed = NULL;
    cv_hash_json(it->record, it->content_hash);
    cv_ingest__hold(self, it, m, detail);
    detail = NULL;
done:
    json_decref(parsed);
    zframe_destroy(&sid);
    zframe_destroy(&idf);
    zframe_destroy(&outf);
    zframe_destroy(&detail);
}
