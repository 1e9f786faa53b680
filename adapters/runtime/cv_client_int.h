/*  cv_client_int — what the files of the client share (not a public header):
    the client's state (cv_client.c explains the design) and the functions the
    receiving side (cv_client_recv.c) and the rest call across. */
#ifndef CV_CLIENT_INT_H
#define CV_CLIENT_INT_H

#include "cv_client.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cv_log.h"
#include "cv_proto.h"

#define DEFAULT_WINDOW        1000
#define DEFAULT_HEARTBEAT_MS  2000
#define DEFAULT_EVENT_BYTES   262144
#define BACKOFF_MIN_MS        100
#define BACKOFF_MAX_MS        2000
#define CACHE_SLOTS           8192            /* fixed FIFO size */
#define CACHE_MIN             256             /* cached records allowed: 2 x window, */
#define CACHE_MAX_BYTES       (32u << 20)     /* within these bounds */
#define RECV_BURST            10000           /* messages handled per wake-up */
#define GC_EVERY_MS           60000           /* cv_spool_gc period */
#define SETTLE_SYNC_MS        200             /* settlements alone synced at most this often */
#define COMP                  "client"

typedef struct { uint64_t id; void *data; size_t len; } cv_client__rec_t;

typedef enum { S_DOWN = 0, S_HELLO, S_READY } cv_client__state_t;

struct cv_client {
    char *endpoint, *hub_key, *description, *name;
    zcert_t *cert;
    cv_spool_t *spool;
    uint32_t cfg_max_event_bytes;

    /* connection */
    zsock_t *dealer, *monitor;
    cv_client__state_t state;
    char session[CV_SESSION_ID_LEN + 1];
    uint32_t window, hub_max_event_bytes, heartbeat_ms;
    bool welcomed;                     /* a first session was opened */
    int proto_minor;                   /* HELLO asks for CIVIBUS/1.minor: 1, or 0 once refused */
    const char *ack_kind;              /* the ACK being read: what its ranges are */
    int backoff_ms;
    int64_t reconnect_at, last_send, alive_at;
    bool ping_out;
    int64_t next_gc;

    /* in flight: seq -> spool id for seqs in [low_seq, next_seq) */
    uint64_t *ring;
    size_t ring_cap;                   /* power of two */
    uint64_t low_seq, next_seq, inflight;

    /* records submitted here, not yet sent, in spool id order */
    cv_client__rec_t *cache;
    size_t cache_head, cache_count, cache_bytes;
    bool overflow;                     /* newer records than the cache tail are on disk only */
    bool disk_pending;                 /* records before the cache head must be read back */
    uint64_t send_after;               /* spool id of the last record sent in this session */
    uint64_t unsynced_from;            /* first id appended since the last sync (0: none) */
    bool position_dirty;               /* a source position waits for the next sync */
    bool settled_dirty;                /* settlements wait for the next sync */
    int64_t next_settle_sync;          /* when settlements alone are worth a sync */
    uint64_t first_own_id, max_sent_id;/* to tell resends from first sends */

    cv_commands_t *commands;           /* outbound commands, or NULL */
    cv_client_settle_fn on_settle;     /* cv_client_on_settle, or NULL */
    void *on_settle_arg;

    cv_client_error_t error;
    cv_client_stats_t stats;
};

int64_t cv_client__now(void);
const char *cv_client__name(const cv_client_t *self);
void cv_client__fail(cv_client_t *self, cv_client_error_t error);
void cv_client__drop(cv_client_t *self, const char *why);
void cv_client__ring_advance(cv_client_t *self);
void cv_client__settle(cv_client_t *self, uint64_t seq, bool acked, const char *reason);
void cv_client__settle_range(uint64_t lo, uint64_t hi, void *arg);
uint64_t *cv_client__slot(cv_client_t *self, uint64_t seq);
int cv_client__read(cv_client_t *self, int64_t wait_ms);
int64_t cv_client__commands_step(cv_client_t *self);
int cv_client__send_result(void *arg, uint64_t id, const char *outcome, const char *detail);

#endif
