/*  metrics — the hub's own /metrics page (Prometheus text format 0.0.4).

    The ingest thread counts; a libmicrohttpd thread answers GET /metrics.
    Every value is a C11 atomic written by one thread (ingest) and read by
    the other, so counting costs one relaxed atomic add and the socket loop
    never waits for a scrape. A scrape is not a snapshot: a counter may
    move between two lines, never backwards.

    Labels are the source name (from the configuration) and the dead-letter
    reason code (a fixed list, docs/protocol.md; anything else counts as
    "other"): never anything from a record. Histograms (batch size, commit
    latency) have fixed buckets and are written in the text format by
    hand. docs/operations.md lists every metric. The same server answers
    GET /healthz (cv_health.h). */
#ifndef CV_METRICS_H
#define CV_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_hub_config.h"

typedef struct cv_metrics cv_metrics_t;

/* Counters for the configuration's sources, all zero. No server yet. */
cv_metrics_t *cv_metrics_new(const cv_hub_config_t *config);
/* A source a reload added (at most CV_MAX_SOURCES in all): counted from now. */
void cv_metrics_add_source(cv_metrics_t *self, const char *name);
/* Stops the HTTP server (if started), then frees. */
void cv_metrics_destroy(cv_metrics_t **self_p);

/* Serves GET /metrics on address:port (port 0: any free port) from its own
   thread. Returns the bound port, or -1 with the reason in err. */
int cv_metrics_listen(cv_metrics_t *self, const char *address, int port, char *err, size_t errlen);

/* ---- counting (ingest thread); source = index in config->sources ---- */
void cv_metrics_received(cv_metrics_t *self, int source);
void cv_metrics_stored(cv_metrics_t *self, int source);
void cv_metrics_duplicate(cv_metrics_t *self, int source);
/* reason: the dead letter's reason code, "id_reused" included */
void cv_metrics_dead_lettered(cv_metrics_t *self, int source, const char *reason);
void cv_metrics_command_sent(cv_metrics_t *self, int source);
void cv_metrics_command_result(cv_metrics_t *self, int source);
/* A session opened (HELLO) or ended (BYE, silence). */
void cv_metrics_session(cv_metrics_t *self, int source, bool open);
/* A committed batch: its items and the time from hand-over to commit. */
void cv_metrics_batch(cv_metrics_t *self, size_t items, int64_t commit_us);
/* A batch handed to the writer (busy) or back from it: /healthz's "writer stuck". */
void cv_metrics_writer(cv_metrics_t *self, bool busy);
void cv_metrics_pending_bytes(cv_metrics_t *self, int64_t bytes);
/* The store's identity cache counters, as totals. */
void cv_metrics_identity_cache(cv_metrics_t *self, uint64_t hits, uint64_t misses);

/* Monotonic clock in microseconds, for commit_us. */
int64_t cv_metrics_now_us(void);

/* The page as text (malloc'ed, NUL-terminated), length in *len. */
char *cv_metrics_render(cv_metrics_t *self, size_t *len);

#endif
