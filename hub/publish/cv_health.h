/*  health — the hub's GET /healthz, served beside /metrics.

    Two questions a supervisor (systemd, a load balancer, the city's
    monitoring) asks: can the hub reach its database, and is its writer
    moving? The database is asked with a connection of its own (the
    writer's may be busy with a batch), opened with a 2 s connect timeout
    and a 2 s statement timeout, at most once a second (answers in between
    reuse the last one). The writer is stuck when a batch has been with
    PostgreSQL for store.stuck_after_s without committing: the ingest
    thread stamps the hand-over and the commit, the HTTP thread compares.

    The answer is JSON, 200 when both hold, 503 otherwise, and names no
    host, no user and no record. */
#ifndef CV_HEALTH_H
#define CV_HEALTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct cv_health cv_health_t;

/* conninfo: the hub's (libpq); stuck_after_s: store.stuck_after_s. */
cv_health_t *cv_health_new(const char *conninfo, int stuck_after_s);
void cv_health_destroy(cv_health_t **self_p);

/* The ingest thread: a batch handed to the writer (busy) or answered. */
void cv_health_writer(cv_health_t *self, int busy, int64_t now_us);

/* The page (malloc'ed JSON) and its HTTP status. */
char *cv_health_render(cv_health_t *self, int64_t now_us, unsigned *status, size_t *len);

#endif
