/*  ingest — the hub's socket loop: where an event is received.

    One thread owns the adapters' ROUTER socket and the publish socket (an
    XPUB: events are serialised for it only while someone subscribes). For
    each EVENT it checks size and JSON, maps the record with its source's
    mapping (cv_mapping.c) and appends it to the filling batch. A batch goes to
    the writer thread (cv_writer.c → cv_store.c) when it reaches
    store.batch_max_events or store.batch_max_delay_ms, whichever comes
    first; while one batch commits, the next fills (double buffering). When
    a batch comes back committed, every item is answered — ACK ranges per
    session, NACK per rejected record — and stored events are published.

    Back-pressure: while a full batch waits for the writer, or more than
    store.pending_max_bytes are uncommitted, the loop stops reading the
    ROUTER socket; ZeroMQ queues fill and adapters wait. */
#ifndef CV_INGEST_H
#define CV_INGEST_H

#include "cv_hub_config.h"
#include "store/cv_store.h"

typedef struct cv_ingest cv_ingest_t;

/* Binds the sockets (after starting CURVE authentication) and starts the
   writer thread, which takes ownership of store. NULL with reason in err. */
cv_ingest_t *cv_ingest_new(cv_hub_config_t *config, cv_store_t *store, char *err, size_t errlen);
void cv_ingest_destroy(cv_ingest_t **self_p);

/* Runs until SIGINT/SIGTERM; then commits and answers what it holds and
   returns 0. */
int cv_ingest_run(cv_ingest_t *self);

/* A signal handler (SIGHUP): the loop reloads the configuration file at
   its next turn (cv_reload.c); the config given to _new is updated in
   place: sources added, removed, their keys, mappings and levels, the
   routing and deadline files. What needs a restart is logged and kept. */
void cv_ingest_request_reload(int signum);

#endif
