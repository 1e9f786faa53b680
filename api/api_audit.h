/*  api_audit — the audit trail of reads of citizens' data (RGPD): who
    (token id, role, service, client address), what (action, citizen id,
    request id, rows, and for a list the ids of every citizen it showed)
    and when. No data of the citizens read: the client address is the
    reader's (through a trusted proxy, the one X-Forwarded-For gives).

    Handlers call cv_api_audit_record() before they answer: it only appends
    to an in-memory queue (bounded; when full it refuses, and the handler
    answers 503 rather than serve an unaudited read). A background thread
    with its own PostgreSQL connection writes the queue to api_audit every
    flush_ms, one transaction per batch; a failed batch is kept and retried.
    cv_api_audit_destroy() writes what is left. */
#ifndef CV_API_AUDIT_H
#define CV_API_AUDIT_H

#include "api_access.h"

#include <stdint.h>

typedef struct cv_api_audit cv_api_audit_t;

cv_api_audit_t *cv_api_audit_new(const char *conninfo, int flush_ms);
void cv_api_audit_destroy(cv_api_audit_t **self_p);

/* What one audit row says besides who reads. citizen_id / request_id 0 =
   none, results < 0 = none; citizen_ids (ncitizens of them, copied) the
   citizens a list showed, NULL = not a list; client "" = unknown. */
typedef struct {
    const char *action;          /* a constant string */
    int64_t citizen_id, request_id;
    int results;
    const int64_t *citizen_ids;
    size_t ncitizens;
    const char *client;
} cv_api_audit_row_t;

/* 0, or -1 when the queue is full (or the list cannot be copied). */
int cv_api_audit_record(cv_api_audit_t *self, const cv_api_principal_t *who,
                        const cv_api_audit_row_t *row);

/* Rows written so far (for /metrics and tests). */
uint64_t cv_api_audit_written(cv_api_audit_t *self);

#endif
