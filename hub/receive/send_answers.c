/*  send_answers — what goes back to adapters (docs/protocol.md): ERROR at
    once for a refused message, naming what it answers; after a batch's
    COMMIT, ACK ranges per session (stored, duplicate, id_reused: with
    protocol 1.1 one ACK per kind, naming it) and a
    NACK with its reason per dead-lettered record, RESULT_ACK / RESULT_NACK
    for command results; and the COMMANDs the commander thread hands over
    (docs/commands.md).

    Items of a session replaced or ended meanwhile are not answered: the
    adapter resends them and dedupe ACKs them. Each answered EVENT leaves
    its session's window. Stored events are published (hub/publish/) in
    events.id order, results after the events. */
#include "cv_ingest_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cv_log.h"

void cv_ingest__send(cv_ingest_t *self, const cv_ingest__session_t *s, const char *cmd, const char *a,
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

/* ERROR | code | text | command | session | number: the last three name
   what the error answers, each an empty frame when unknown or unreadable
   (a session id is echoed only when it is one, a number only when it is
   decimal: nothing else the adapter wrote comes back). */
void cv_ingest__send_error(cv_ingest_t *self, zframe_t *routing, const char *code, const char *text,
                           const cv_ingest__ref_t *ref)
{
    zmsg_t *msg = zmsg_new();
    zmsg_append(msg, &(zframe_t *) { zframe_dup(routing) });
    zmsg_addstr(msg, "ERROR");
    zmsg_addstr(msg, code);
    zmsg_addstr(msg, text);
    zmsg_addstr(msg, ref && ref->cmd ? ref->cmd : "");
    zframe_t *sid = ref ? ref->sid : NULL;
    if (sid && cv_proto_is_session_id(zframe_data(sid), zframe_size(sid)))
        zmsg_addmem(msg, zframe_data(sid), zframe_size(sid));
    else
        zmsg_addstr(msg, "");
    uint64_t num;
    zframe_t *numf = ref ? ref->num : NULL;
    if (numf && cv_proto_parse_u64(zframe_data(numf), zframe_size(numf), &num) == 0)
        zmsg_addstrf(msg, "%" PRIu64, num);
    else
        zmsg_addstr(msg, "");
    zmsg_send(&msg, self->router);
}

/* ACK | session | ranges, and with protocol 1.1 | kind: one message (or
   several, when long) per kind the commit settled. */
static void s_flush_acks(cv_ingest_t *self, cv_ingest__session_t *s)
{
    static const char *kinds[CV_ACK_KINDS] = { "stored", "duplicate", "id_reused" };
    char buf[8192];
    for (int kind = 0; kind < CV_ACK_KINDS; kind++) {
        cv_rangeset_t *set = &s->acks[kind];
        for (size_t from = 0; from < set->n;) {
            size_t k = cv_rangeset_format(set, from, buf, sizeof buf);
            cv_ingest__send(self, s, "ACK", s->id, buf, s->minor >= 1 ? kinds[kind] : NULL, NULL);
            from += k;
        }
        cv_rangeset_clear(set);
    }
}

static void s_clear_acks(cv_ingest__session_t *s)
{
    for (int kind = 0; kind < CV_ACK_KINDS; kind++)
        cv_rangeset_clear(&s->acks[kind]);
}

static void s_publish(cv_ingest_t *self, const cv_store_item_t *it)
{
    if (self->publish)
        cv_publish_item(self->publish, it);
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
    cv_ingest__session_t *s = &self->sessions[m->source];
    if (!s->open || strcmp(s->id, m->session) != 0)
        return;                                  /* session replaced: the adapter resends */
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, m->seq);
    if (it->outcome == CV_OUT_DEAD_LETTERED)
        cv_ingest__send(self, s, "RESULT_NACK", s->id, id, it->reason, NULL);
    else
        cv_ingest__send(self, s, "RESULT_ACK", s->id, id, NULL, NULL);
}

void cv_ingest__answer(cv_ingest_t *self, cv_batch_t *batch)
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
        cv_ingest__session_t *s = &self->sessions[m->source];
        if (!s->open || strcmp(s->id, m->session) != 0)
            continue;                            /* session replaced: the adapter resends */
        s->inflight--;                           /* answered: out of the window */
        if (it->outcome == CV_OUT_DEAD_LETTERED) {
            char seq[24];
            snprintf(seq, sizeof seq, "%" PRIu64, m->seq);
            cv_ingest__send(self, s, "NACK", s->id, seq, it->reason, NULL);
        }
        else {
            int kind = s->minor < 1 ? CV_ACK_STORED
                       : it->outcome == CV_OUT_DUPLICATE ? CV_ACK_DUPLICATE
                       : it->outcome == CV_OUT_ID_REUSED ? CV_ACK_ID_REUSED : CV_ACK_STORED;
            cv_rangeset_add(&s->acks[kind], m->seq);
        }
    }
    for (size_t i = 0; i < self->config->nsources; i++)
        if (self->sessions[i].open)
            s_flush_acks(self, &self->sessions[i]);
        else
            s_clear_acks(&self->sessions[i]);
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

/* A command from the commander: sent if its source has a session; if not,
   it stays `sent` and goes again on the source's next session. */
void cv_ingest__send_command(cv_ingest_t *self)
{
    cv_command_t c;
    if (cv_commander_recv(self->commander, &c) < 0)
        return;
    cv_ingest__session_t *s = c.source >= 0 && (size_t) c.source < self->config->nsources
                              ? &self->sessions[c.source] : NULL;
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
    cv_commander_command_clear(&c);
}
