/*  api_audit — the audit trail of reads of citizens' data (RGPD): who
    (token id, role, service), what (action, citizen id, request id, rows)
    and when. No personal data.

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

/* 0, or -1 when the queue is full. citizen_id / request_id 0 = none,
   results < 0 = none. `action` is a constant string. */
int cv_api_audit_record(cv_api_audit_t *self, const cv_api_principal_t *who, const char *action,
                        int64_t citizen_id, int64_t request_id, int results);

/* Rows written so far (for /metrics and tests). */
uint64_t cv_api_audit_written(cv_api_audit_t *self);

#endif
