/*  cv_ingest_int — what the files of the socket loop share (not a public header).

    cv_ingest.c owns the object, its life cycle, the poll loop and the batches;
    read_handle.c reads one message and hands it to the handler of its
    command, one file per protocol command as Mosquitto does (handle_hello.c,
    handle_event.c, handle_result.c, handle_session.c for PING and BYE);
    send_answers.c writes what goes back to adapters: errors, ACK ranges and
    NACKs after COMMIT, COMMANDs from the commander. docs/protocol.md is the
    specification of every frame. All of it runs on the socket thread. */
#ifndef CV_INGEST_INT_H
#define CV_INGEST_INT_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "cv_ingest.h"
#include "cv_monitor.h"
#include "cv_proto.h"
#include "commands/cv_commander.h"
#include "publish/cv_metrics.h"
#include "publish/cv_publish.h"
#include "store/cv_batch.h"
#include "store/cv_writer.h"

/* What an ACK says of its ranges (protocol 1.1's third frame). */
enum { CV_ACK_STORED, CV_ACK_DUPLICATE, CV_ACK_ID_REUSED, CV_ACK_KINDS };

typedef struct {
    bool open;
    char id[CV_SESSION_ID_LEN + 1];
    zframe_t *routing;            /* the connection the session lives on (HELLO's routing id) */
    int64_t last_seen_ms;
    uint64_t next_seq;            /* the sequence number the next EVENT must carry */
    uint64_t inflight;            /* EVENTs received, not yet ACKed or NACKed (the window) */
    int minor;                    /* protocol 1.minor, from HELLO: 1 names what ACKs are */
    cv_rangeset_t acks[CV_ACK_KINDS]; /* sequence numbers to ACK after this commit, by kind
                                     (protocol 1.0: all in acks[CV_ACK_STORED]) */
} cv_ingest__session_t;

/* What a message refers to, echoed in an ERROR that answers it: its
   command, the frame holding the session id it named and the frame
   holding its number (an EVENT's sequence, a RESULT's command id). Any of
   them may be NULL; unreadable ones are sent as empty frames. */
typedef struct {
    const char *cmd;
    zframe_t *sid;
    zframe_t *num;
} cv_ingest__ref_t;

struct cv_ingest {
    cv_hub_config_t *config;      /* changed only by a reload (cv_reload.c), on this thread */
    zactor_t *auth;
    zsock_t *router;
    cv_monitor_t *monitor;
    cv_publish_t *publish;        /* NULL without listen.publish */
    cv_writer_t *writer;
    const cv_store_t *store;      /* owned by the writer; only its atomic counters are read here */
    cv_commander_t *commander;    /* outbound commands (hub/commands/) */
    cv_metrics_t *metrics;        /* counters for /metrics */
    int64_t submitted_us;         /* when the batch in flight went to the writer */
    cv_ingest__session_t *sessions;   /* one per configured source (room for CV_MAX_SOURCES) */
    cv_batch_t *filling;          /* receiving events */
    cv_batch_t *inflight;         /* with the writer, or NULL */
    cv_batch_t *spare;
    int64_t pending_bytes;
    bool over_cap;                /* pending_bytes reached store.pending_max_bytes */
    struct {
        uint64_t received, stored, duplicates, id_reused, dead, batches;
        uint64_t commands, results;
    } stats;
};

/* read_handle.c: one message from the ROUTER socket */
void cv_ingest__read(cv_ingest_t *self);

/* handle_*.c: one protocol command each; msg holds the frames after the command */
void cv_ingest__handle_hello(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg);
void cv_ingest__handle_event(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg);
void cv_ingest__handle_result(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg);
void cv_ingest__handle_ping(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg);
void cv_ingest__handle_bye(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg);

/* handle_session.c: the open session a message names, on the connection
   it lives on (its last contact updated), or NULL after refusing the
   message; refusing (ERROR, and the end of the session it concerns, see
   docs/protocol.md); ending a session; expiry */
cv_ingest__session_t *cv_ingest__session(cv_ingest_t *self, int src, zframe_t *routing,
                                         const cv_ingest__ref_t *ref);
void cv_ingest__refuse(cv_ingest_t *self, int src, zframe_t *routing, const cv_ingest__ref_t *ref,
                       const char *code, const char *text);
void cv_ingest__end_session(cv_ingest_t *self, int src, const char *why);
void cv_ingest__expire_sessions(cv_ingest_t *self);

/* cv_reload.c: a SIGHUP came; reload the configuration file now */
bool cv_ingest__reload_requested(void);
void cv_ingest__reload(cv_ingest_t *self);

/* send_answers.c */
void cv_ingest__send(cv_ingest_t *self, const cv_ingest__session_t *s, const char *cmd, const char *a,
                     const char *b, const char *c, const char *d);
void cv_ingest__send_error(cv_ingest_t *self, zframe_t *routing, const char *code, const char *text,
                           const cv_ingest__ref_t *ref);
void cv_ingest__answer(cv_ingest_t *self, cv_batch_t *batch);      /* a committed batch */
void cv_ingest__send_command(cv_ingest_t *self);                    /* one from the commander */

/* cv_ingest.c: the filling batch's next item (NULL when full: not answered,
   the adapter resends), its meta filled for (src, session, seq) */
cv_store_item_t *cv_ingest__push(cv_ingest_t *self, int src, const cv_ingest__session_t *s, uint64_t seq,
                                 cv_batch_meta_t **meta);
/* cv_ingest.c: the item holds its frame (raw bytes, counted for back-pressure) */
void cv_ingest__hold(cv_ingest_t *self, cv_store_item_t *it, cv_batch_meta_t *m, zframe_t *frame);

#endif
