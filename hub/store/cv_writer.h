/*  writer — the thread that owns the PostgreSQL connection.

    Database work runs off the socket loop: the ingest loop sends a batch
    pointer down an inproc pipe; the writer commits it with the store,
    retrying through reconnects as long as it takes (a lost connection or a
    COMMIT of unknown outcome is never answered with a NACK), and sends the
    same pointer back once the batch has committed. One batch is in flight
    at a time, which keeps events.id in commit order. */
#ifndef CV_WRITER_H
#define CV_WRITER_H

#include <czmq.h>

#include "cv_batch.h"
#include "cv_store.h"

typedef struct cv_writer cv_writer_t;

/* Starts the thread; it takes ownership of store. */
cv_writer_t *cv_writer_new(cv_store_t *store);
/* Stops the thread after the batch in flight (if any) is committed. */
void cv_writer_destroy(cv_writer_t **self_p);

/* The socket to poll for committed batches. */
zsock_t *cv_writer_sock(cv_writer_t *self);

/* Hands a batch over (non-blocking). Only one at a time. */
int cv_writer_submit(cv_writer_t *self, cv_batch_t *batch);

/* Receives the committed batch back (call when the socket is readable). */
cv_batch_t *cv_writer_recv(cv_writer_t *self);

#endif
