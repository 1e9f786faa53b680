/*  writer — see cv_writer.h. The thread is a CZMQ actor: its pipe carries
    "p" (pointer) messages each way, and the $TERM command stops it. */
#include "cv_writer.h"

#include "cv_alloc.h"
#include "cv_log.h"

struct cv_writer {
    zactor_t *actor;
    cv_store_t *store;
};

/* Commits the batch, through as many reconnects as it takes. Gives up
   only when the process is being stopped: then every outcome stays
   CV_OUT_NONE and nothing of the batch is acknowledged. */
static void s_commit(cv_store_t *store, cv_batch_t *batch)
{
    int delay_ms = 100;
    while (cv_store_write_batch(store, batch->items, batch->n) != 0) {
        cv_warn("writer", "batch of %zu not committed (%s); holding ACKs, reconnecting",
                batch->n, cv_store_error(store));
        while (cv_store_reconnect(store) != 0) {
            if (zsys_interrupted)
                goto stopped;
            zclock_sleep(delay_ms);
            if (delay_ms < 2000)
                delay_ms *= 2;
        }
        cv_info("writer", "PostgreSQL connection back; writing the batch again");
        if (zsys_interrupted)
            goto stopped;
    }
    return;
stopped:
    for (size_t i = 0; i < batch->n; i++)
        batch->items[i].outcome = CV_OUT_NONE;
}

static void s_actor(zsock_t *pipe, void *arg)
{
    cv_writer_t *self = arg;
    zsock_signal(pipe, 0);
    while (true) {
        zmsg_t *msg = zmsg_recv(pipe);
        if (!msg)
            break;
        char *cmd = zmsg_popstr(msg);
        bool term = cmd && strcmp(cmd, "$TERM") == 0;
        if (!term && cmd && strcmp(cmd, "BATCH") == 0) {
            zframe_t *ptr = zmsg_pop(msg);
            cv_batch_t *batch = NULL;
            if (ptr && zframe_size(ptr) == sizeof batch)
                memcpy(&batch, zframe_data(ptr), sizeof batch);
            zframe_destroy(&ptr);
            if (batch) {
                s_commit(self->store, batch);
                zsock_send(pipe, "p", batch);
            }
        }
        free(cmd);
        zmsg_destroy(&msg);
        if (term)
            break;
    }
}

cv_writer_t *cv_writer_new(cv_store_t *store)
{
    cv_writer_t *self = cv_zcalloc(1, sizeof *self);
    self->store = store;
    self->actor = zactor_new(s_actor, self);
    return self;
}

void cv_writer_destroy(cv_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_writer_t *self = *self_p;
    zactor_destroy(&self->actor);
    cv_store_destroy(&self->store);
    free(self);
    *self_p = NULL;
}

zsock_t *cv_writer_sock(cv_writer_t *self)
{
    return zactor_sock(self->actor);
}

int cv_writer_submit(cv_writer_t *self, cv_batch_t *batch)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, "BATCH");
    zmsg_addmem(msg, &batch, sizeof batch);
    return zmsg_send(&msg, self->actor);
}

cv_batch_t *cv_writer_recv(cv_writer_t *self)
{
    void *batch = NULL;
    if (zsock_recv(self->actor, "p", &batch) < 0)
        return NULL;
    return batch;
}
