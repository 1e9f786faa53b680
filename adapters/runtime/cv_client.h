/*  cv_client — the adapter side of the CIVIBUS/1 protocol (docs/protocol.md).

    Every adapter links this runtime. It owns the adapter's durable spool
    (adapters/spool/cv_spool.h) and one CURVE DEALER connection to the hub:

        cv_client_t *c = cv_client_new(&opts, err, sizeof err);
        while (records to read && cv_client_can_accept(c)) {
            cv_client_submit(c, bytes, len);          // refuse too large, else spool
            ... every batch: cv_client_poll(c, 0);     // one spool sync, then send
        }
        cv_client_wait_settled(c, -1);               // every record ACKed or NACKed
        cv_client_destroy(&c);

    A submitted record is appended to the spool; cv_client_flush (and every
    cv_client_poll) makes the batch durable with ONE cv_spool_sync and only
    then sends it. EVENTs go out within the hub's window, in spool id order;
    ACK ranges and NACKs settle them in the spool. After a reconnect (ERROR
    unknown_session, silence for 3 x heartbeat_ms while waiting, or a
    disconnect) or a restart, every unsettled record is resent first, with
    new sequence numbers, before anything newer.

    The client is single-threaded and does nothing between calls: the caller
    must call cv_client_poll regularly (it sends PINGs, detects a dead hub,
    reconnects with back-off). An unknown key (the hub's ZAP handler refuses
    the handshake) is permanent: cv_client_poll returns -1 and
    cv_client_error() says CV_CLIENT_ERR_AUTH.

    Outbound commands (docs/commands.md): when the options carry a
    `commands` configuration, the client also performs the hub's COMMANDs
    (cv_commands.h, journal in the spool folder) from cv_client_poll and
    reports their RESULTs, again after every reconnect until the hub's
    RESULT_ACK.

    Nothing here logs record contents: only counts, ids, session ids and
    reason codes. */
#ifndef CV_CLIENT_H
#define CV_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "commands/cv_commands.h"
#include "spool/cv_spool.h"

typedef struct cv_client cv_client_t;

typedef struct {
    const char *endpoint;         /* hub ROUTER, e.g. "tcp://127.0.0.1:5560" */
    const char *hub_public_key;   /* hub's CURVE public key, Z85 (40 chars) */
    const char *secret_key_file;  /* this adapter's zcert secret file (zcert_load) */
    const char *spool_dir;        /* created if missing */
    cv_spool_opts_t spool;        /* max_record_bytes is set from max_event_bytes */
    uint32_t max_event_bytes;     /* refuse larger records locally (0: 262144) */
    const char *description;      /* HELLO text, e.g. "civibus-adapter/0.1 replay" */
    const char *name;             /* source name, for logs only (may be NULL) */
    const cv_commands_conf_t *commands;  /* perform outbound commands (NULL: none);
                                            must outlive the client */
} cv_client_opts_t;

typedef struct {
    uint64_t submitted;   /* records accepted into the spool */
    uint64_t refused;     /* records refused locally (over max_event_bytes) */
    uint64_t sent;        /* EVENT messages sent, resends included */
    uint64_t resent;      /* of which resends (after a reconnect or a restart) */
    uint64_t acked;       /* records settled by an ACK */
    uint64_t duplicates;  /* of them, ACKed as already stored (protocol 1.1) */
    uint64_t nacked;      /* records settled by a NACK */
    uint64_t reconnects;  /* sessions opened after the first one */
} cv_client_stats_t;

typedef enum {
    CV_CLIENT_OK = 0,
    CV_CLIENT_ERR_AUTH,       /* the hub refused our key (ZAP): permanent */
    CV_CLIENT_ERR_PROTOCOL,   /* ERROR bad_protocol: the hub does not speak CIVIBUS/1 */
    CV_CLIENT_ERR_IO          /* the spool failed (disk full, I/O error) */
} cv_client_error_t;

/* Opens the spool, loads the key and starts connecting (HELLO is sent by
   the first cv_client_poll). Returns NULL with a reason in err. */
cv_client_t *cv_client_new(const cv_client_opts_t *opts, char *err, size_t errlen);

/* Sends BYE when a session is open, closes the socket and the spool
   (unsettled records stay in the spool for the next run). */
void cv_client_destroy(cv_client_t **self_p);

/* Appends one record to the spool (not yet durable, not yet sent).
   Returns 0, 1 when the record is refused locally because it exceeds
   max_event_bytes (the configured one, or the hub's if lower; counted in
   stats.refused), -1 on a spool error (fatal, see cv_client_error). */
int cv_client_submit(cv_client_t *self, const void *data, size_t len);

/* False when the spool holds more than its max_bytes unsettled, or when
   the hub is connected and enough records already wait to be sent: the
   caller must stop reading its source and keep calling cv_client_poll. */
bool cv_client_can_accept(const cv_client_t *self);

/* Makes submitted records durable (one cv_spool_sync), then sends what the
   window allows. Returns 0 or -1 (fatal). */
int cv_client_flush(cv_client_t *self);

/* Flushes, then waits up to timeout_ms (0: do not wait, -1: forever) for
   messages from the hub, handles them (settling records, reconnecting,
   heartbeats) and sends more. Returns as soon as something was received,
   or at the timeout: 0. Returns -1 on a fatal error (cv_client_error). */
int cv_client_poll(cv_client_t *self, int timeout_ms);

/* True when every record in the spool is settled. */
bool cv_client_settled(const cv_client_t *self);

/* Polls until settled: 0 when settled, 1 at the timeout (-1: no timeout),
   -1 on a fatal error. */
int cv_client_wait_settled(cv_client_t *self, int timeout_ms);

cv_client_error_t cv_client_error(const cv_client_t *self);
const char *cv_client_error_text(cv_client_error_t error);
cv_client_stats_t cv_client_stats(const cv_client_t *self);

/* True while a session is open (WELCOME received, not yet lost). */
bool cv_client_connected(const cv_client_t *self);
/* Current session id ("" when none), and the hub's announced parameters
   (defaults before the first WELCOME: window 1000, heartbeat 2000 ms). */
const char *cv_client_session(const cv_client_t *self);
uint32_t cv_client_window(const cv_client_t *self);
uint32_t cv_client_max_event_bytes(const cv_client_t *self);
/* Records in the spool not yet settled. */
uint64_t cv_client_unsettled(const cv_client_t *self);

/* Spool id of the last record submitted (0: none yet), and whether a
   record is settled: a driver that must know when everything it read from
   one unit (a file, a page) is ACKed or NACKed remembers the last id of
   that unit and asks. */
uint64_t cv_client_last_id(const cv_client_t *self);
bool cv_client_is_settled(const cv_client_t *self, uint64_t id);
/* Called once for each record the hub settles in this run, as it is
   settled: its spool id, whether it was ACKed, and a short ASCII code
   (never a value): for an ACK what the hub did, "stored", "duplicate"
   (stored before), "id_reused" (its id came with another content: kept as
   a dead letter) or "settled" (a CIVIBUS/1 hub, which does not say); for
   a NACK the hub's reason code ("?" when missing).
   A driver that reports per unit (a file) tallies them; fn NULL stops
   the calls. Records settled by an earlier run are not reported. */
typedef void (*cv_client_settle_fn)(void *arg, uint64_t id, bool acked, const char *reason);
void cv_client_on_settle(cv_client_t *self, cv_client_settle_fn fn, void *arg);
/* The adapter's source position (cursor, page token, file offset), kept in
   the spool: set it after submitting the records it covers; it is made
   durable by the same sync as those records (next flush or poll), so a
   restart never skips a record. Returns 0 or -1 (over 4 KiB, or I/O).
   position returns the last value set or found on disk, or NULL. */
int cv_client_set_position(cv_client_t *self, const char *position);
const char *cv_client_position(const cv_client_t *self);

/* The outbound commands module, or NULL when the options had none. */
cv_commands_t *cv_client_commands(const cv_client_t *self);

/* This adapter's public key (Z85), e.g. for error messages. */
const char *cv_client_public_key(const cv_client_t *self);

#endif
