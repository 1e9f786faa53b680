/*  commander — outbound commands: the hub side (docs/commands.md).

    Commands wait in the `commands` outbox table (schemas/sql/003_commands.sql)
    until their adapter is connected. The commander is a thread with its own
    PostgreSQL connection (a CZMQ actor, like the writer): the ingest loop
    tells it when a source's session opens or closes; it LISTENs on
    'civibus_commands' (a trigger notifies when a command becomes pending)
    and polls every second, and for each connected source it marks open
    commands `sent` (deliveries + 1) and hands them to the ingest loop,
    which sends COMMAND to the adapter. It delivers:
      - pending commands, as soon as their source is connected;
      - every `sent` command of a source again when that source opens a new
        session (the adapter may have lost it; its journal makes a second
        delivery harmless);
      - a `sent` command again when no result came within
        commands.result_timeout_ms.

    Results do NOT go through this thread's connection: the events table
    has one writer. The ingest loop puts a RESULT in its batch as a
    CV_ITEM_RESULT item; the store (writer thread) calls
    cv_commander_store_results in the batch's transaction, which updates
    the commands row and appends the command_result event; RESULT_ACK
    follows the commit. */
#ifndef CV_COMMANDER_H
#define CV_COMMANDER_H

#include <czmq.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "cv_hub_config.h"
#include "store/cv_store.h"

typedef struct cv_commander cv_commander_t;

/* One command to send to an adapter (what COMMAND carries). */
typedef struct {
    int source;              /* index in the config's sources */
    uint64_t id;             /* commands.id */
    char *kind;
    char *key;               /* idempotency key: our reference */
    char *payload;           /* JSON object (personal data: never log it) */
} cv_command_t;

/* Starts the thread. It connects to PostgreSQL itself, and keeps trying
   (logging) while it cannot: commands then wait, nothing else stops. */
cv_commander_t *cv_commander_new(const cv_hub_config_t *config);
void cv_commander_destroy(cv_commander_t **self_p);

/* The socket to poll for commands to send. */
zsock_t *cv_commander_sock(cv_commander_t *self);

/* A session of source (index) opened (true; also when a new HELLO replaces
   one) or closed. Never blocks: if the thread is far behind, the news is
   dropped and the next poll catches up. */
void cv_commander_session(cv_commander_t *self, int source, bool open);

/* Receives one command (call when the socket is readable). 0, or -1 when
   nothing usable was read. Free with cv_commander_command_clear. */
/* A reload appended sources: config->nsources is now n (the names of the
   new entries are written before this call). */
void cv_commander_sources(cv_commander_t *self, size_t n);
int cv_commander_recv(cv_commander_t *self, cv_command_t *command);
void cv_commander_command_clear(cv_command_t *command);

/* The writer side, called by the store inside the batch's transaction:
   records every CV_ITEM_RESULT item of items[0..n) with cv_command_results
   (functions/commands.sql) and sets its outcome: STORED (recorded now; event,
   event_seq, request_id and tracking_code are set when the command has a
   request), DUPLICATE (recorded before) or DEAD_LETTERED (reason
   unknown_command, or data_error when PostgreSQL refuses the values).
   Returns 0, or -1 with a reason (no personal data) in err: the caller
   rolls back and retries the whole batch. */
int cv_commander_store_results(PGconn *conn, cv_store_item_t *items, size_t n, char *err, size_t errlen);

#endif
