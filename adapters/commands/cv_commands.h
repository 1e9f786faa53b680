/*  cv_commands — outbound commands: the adapter side (docs/commands.md).

    The hub sends COMMAND (id, kind, idempotency key, payload); this module
    performs it in the software with libcurl, as the `commands:` section of
    adapter.yaml describes that kind (method, URL template, headers, body),
    retries with back-off, and reports RESULT (done or failed, with a
    detail: HTTP status, the software's reference for what it created,
    attempts, possible_duplicate). The client (cv_client.c) owns one when
    the config has a `commands:` section, feeds it the hub's messages and
    calls cv_commands_step from its poll loop (transfers run in a curl
    multi handle, so heartbeats and ACKs keep flowing meanwhile).

    Never twice, when the software allows it. A journal in the spool folder
    (commands.journal, fdatasync'ed) says "started" before the first
    attempt, "try" before each request that may reach the software,
    "done" with the result after the last one. A request whose outcome we
    did not learn (timeout after sending, connection cut, 502/504, a crash
    or kill -9 mid-request) leaves the command *uncertain*. An uncertain
    command is retried:
      - with the same idempotency key header, if the kind has
        `idempotency_header` (the software returns the object it created);
      - after a lookup by our reference (`lookup_url`, GET: 200 = it
        exists, done; 404 = it does not, send again), if it has one;
      - otherwise anyway, at-least-once, and the result is flagged
        possible_duplicate for an operator to check.
    A result stays in the journal until the hub's RESULT_ACK, and is sent
    again on every new session. A command the hub delivers again (a new
    session, a timeout) is recognised by its key: running, it is left
    alone; finished, its result is sent again.

    Personal data: payloads are in the journal (like the spool, mode 0600)
    until the command is finished; logs name command ids, kinds, HTTP
    statuses and curl error codes, never URLs, bodies or answers. */
#ifndef CV_COMMANDS_H
#define CV_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One kind of command, from adapter.yaml (commands.kinds.<name>).
   Templates take {key} (our reference, the idempotency key), {id} (the
   hub's command id), {kind}, {payload.a.b} (a field of the payload;
   URL-encoded in URLs) and {env:NAME}; "{{" is a literal "{". */
typedef struct {
    char *name;
    char *method;               /* POST (default), PUT, PATCH, DELETE, GET */
    char *url;                  /* template */
    char **header_names;        /* headers: name → value template */
    char **header_values;
    size_t nheaders;
    bool body;                  /* send the payload as a JSON body (default: not for GET/DELETE) */
    char *reference_field;      /* body field set to our reference, or NULL */
    char *idempotency_header;   /* header carrying our reference, or NULL */
    char *lookup_url;           /* template: GET finds the object by our reference, or NULL */
    char *reference;            /* dot path of the software's reference in the answer, or NULL */
    char *lookup_reference;     /* same in the lookup's answer (default: reference) */
} cv_command_kind_t;

typedef struct {
    int timeout_ms;             /* per HTTP request (default 10000) */
    int max_attempts;           /* HTTP requests per command, lookups included (default 8) */
    int backoff_ms;             /* first retry delay, doubled each time (default 500) */
    int backoff_max_ms;         /* (default 30000) */
    int concurrency;            /* commands performed at once (default 4) */
    int keep_days;              /* acknowledged results remembered (default 7) */
    cv_command_kind_t *kinds;
    size_t nkinds;
} cv_commands_conf_t;

/* Checks a template's placeholders; -1 with the reason in why. */
int cv_commands_template_check(const char *tpl, char *why, size_t len);

typedef struct cv_commands cv_commands_t;

/* Sends a RESULT: 0 sent, 1 no session now (it is sent on the next one),
   -1 failed. detail is a JSON object. */
typedef int (cv_commands_send_fn)(void *arg, uint64_t id, const char *outcome, const char *detail);

/* Opens (creates) dir/commands.journal and resumes what it holds:
   unfinished commands are retried as above, results not yet acknowledged
   wait for a session. name is for logs. NULL with a reason in err. */
cv_commands_t *cv_commands_new(const cv_commands_conf_t *conf, const char *dir, const char *name,
                               char *err, size_t errlen);
/* Aborts transfers in flight (they stay uncertain in the journal). */
void cv_commands_destroy(cv_commands_t **self_p);

void cv_commands_set_sender(cv_commands_t *self, cv_commands_send_fn *send, void *arg);

/* The hub's messages. payload is the COMMAND's JSON text (len bytes). */
void cv_commands_receive(cv_commands_t *self, uint64_t id, const char *kind, const char *key,
                         const char *payload, size_t len);
/* RESULT_ACK (reason NULL) or RESULT_NACK (reason): the hub is done with it. */
void cv_commands_result_ack(cv_commands_t *self, uint64_t id, const char *reason);
/* A session opened: results not yet acknowledged are sent again. */
void cv_commands_session(cv_commands_t *self);

/* Starts due attempts, moves transfers on, finishes commands. Returns the
   milliseconds after which it wants to run again (at most 1000), or -1
   when the journal cannot be written (fatal: nothing more is performed). */
int cv_commands_step(cv_commands_t *self);

/* What the module knows of a command, for tests and tools. */
typedef enum { CV_COMMAND_UNKNOWN = 0, CV_COMMAND_RUNNING, CV_COMMAND_FINISHED, CV_COMMAND_ACKED } cv_command_state_t;
typedef struct {
    cv_command_state_t state;
    bool done;                  /* outcome done (else failed), when finished */
    bool possible_duplicate;
    bool uncertain;             /* running: an attempt may have reached the software */
    int attempts;
    int http_status;            /* of the last answer, 0 if none */
    char reference[128];        /* the software's reference, "" if none */
} cv_command_info_t;
cv_command_info_t cv_commands_info(const cv_commands_t *self, uint64_t id);

/* Commands running or finished but not acknowledged. */
size_t cv_commands_open(const cv_commands_t *self);

#endif
