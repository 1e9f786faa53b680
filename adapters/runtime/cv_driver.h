/*  cv_driver — how an adapter reads its software: one driver per kind of
    interface, chosen in adapter.yaml (`driver: {kind: rest | webhook |
    filedrop | imap | none, source: NAME, ...}`; `none` only performs commands), run by `civibus-adapter run`.

    The run loop (cv_run.c) owns the client (cv_client.h) and calls the
    driver's step again and again; between steps it polls the client, so
    ACKs settle records and the connection is kept alive. A driver:
      - reads from its software only while cv_client_can_accept(client);
      - submits each raw record (JSON object bytes) with cv_client_submit;
      - moves its source position (cursor, page token, file and line) with
        cv_client_set_position only AFTER submitting the records it covers
        (the next flush makes both durable together), so a restart neither
        skips records nor resends more than the unacknowledged tail;
      - finds its position after a restart with cv_client_position;
      - never logs record contents (personal data).
    A new kind of software that speaks REST, webhooks or files needs no C:
    a driver's YAML keys are enough (docs/adapters.md). A C driver is worth
    writing for another transport (SOAP, a database, a message queue): it
    implements this interface and is added to the table in cv_driver.c. */
#ifndef CV_DRIVER_H
#define CV_DRIVER_H

#include "cv_client.h"
#include "cv_yaml.h"

typedef struct {
    const cv_yaml_doc_t *doc;      /* adapter.yaml, for "file:line: reason" */
    const cv_yaml_node_t *conf;    /* the `driver:` section (kind, source, own keys) */
    const char *config_dir;        /* resolve relative paths against this */
    const char *source;            /* the source this adapter serves */
    cv_client_t *client;           /* valid until stop */
} cv_driver_ctx_t;

typedef struct {
    const char *kind;
    /* Checks the section (unknown keys, bad values: "file:line: reason")
       and prepares; NULL on error. */
    void *(*start)(const cv_driver_ctx_t *ctx, char *err, size_t errlen);
    /* Does a bounded amount of work (say at most one page, one file chunk,
       or what arrived). Returns the milliseconds after which it wants to
       run again (0: as soon as possible), or -1 on a fatal error, already
       logged. */
    int (*step)(void *self);
    /* Stops and frees; *self_p becomes NULL. */
    void (*stop)(void **self_p);
} cv_driver_t;

/* The driver of a kind, or NULL when this build has none of that kind. */
const cv_driver_t *cv_driver_find(const char *kind);

/* Kinds this build knows, comma-separated, for error messages. */
const char *cv_driver_kinds(void);

#endif
