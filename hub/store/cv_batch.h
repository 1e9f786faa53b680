/*  batch — events received from adapters, waiting for one commit.

    The ingest loop fills a batch; the writer thread commits it; the ingest
    loop then answers every item (ACK or NACK) and publishes what was
    stored. An item keeps what it needs to be answered after the commit:
    the session it came from (by id; the session may be gone by then) and
    its sequence number. */
#ifndef CV_BATCH_H
#define CV_BATCH_H

#include <czmq.h>
#include <stdint.h>

#include "cv_proto.h"
#include "cv_store.h"

typedef struct {
    int source;                            /* index in the config's sources */
    char session[CV_SESSION_ID_LEN + 1];   /* session the event came in */
    uint64_t seq;                          /* its sequence number there */
    zframe_t *frame;                       /* owns the raw bytes (items[i].raw) */
} cv_batch_meta_t;

typedef struct {
    cv_store_item_t *items;                /* what the store sees */
    cv_batch_meta_t *meta;                 /* meta[i] belongs to items[i] */
    size_t n, cap;
    size_t bytes;                          /* raw bytes held */
    int64_t opened_ms;                     /* when the first item arrived */
} cv_batch_t;

cv_batch_t *cv_batch_new(void);
void cv_batch_destroy(cv_batch_t **self_p);

/* A new item at the end (item and meta zeroed); returns its index, or -1
   when out of memory. */
long cv_batch_push(cv_batch_t *self);

/* Frees what the items own and empties the batch, keeping its memory. */
void cv_batch_clear(cv_batch_t *self);

#endif
