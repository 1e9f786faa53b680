/*  api_handler — what the API's handlers share, and the handlers the route
    table (api_route_table.c) names, by file:

        api_public.c     health, metrics, tracking codes, citizen links
        api_citizens.c   citizen search, a citizen's timeline
        api_requests.c   a request, a service's open requests, overdue ones
        api_identity.c   merge proposals, merge, split, detach
        api_rgpd.c       a citizen's export and rectification (docs/rgpd.md)
        api_check.c      an agent's check of identity fields (docs/identity.md)
        api_intake.c     the front office registers a request (docs/intake.md)
        api_attachments.c  a request's files (docs/attachments.md)
        api_open311.c    Open311 GeoReport v2

    Each handler: check the parameters (400), run prepared statements,
    parse the JSON rows, filter them by the caller's view, audit reads of
    citizens' data (503 if the audit queue refuses), answer. The router has
    already authenticated the caller, checked the role and the rate limit
    of the route's table entry. Unknown ids answer 404; a citizen an agent's
    service never dealt with is 404 too (existence is not revealed). */
#ifndef CV_API_HANDLER_H
#define CV_API_HANDLER_H

#include "api_db.h"
#include "api_route.h"
#include "api_server.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define CV_API_DB_DOWN(req) cv_api_error(req, 503, "unavailable", "the database is not reachable")

/* A prepared statement's rows; NULL after answering 503 (or 400 for a value
   PostgreSQL refuses, SQLSTATE class 22). */
PGresult *cv_api_sql(cv_api_req_t *req, cv_sql_t stmt, int n, const char *const *values);
/* The statement's one row, or NULL when it failed (answered already) or
   found nothing (answered 404 with the message not_found). */
PGresult *cv_api_sql_row(cv_api_req_t *req, cv_sql_t stmt, int n, const char *const *values,
                         const char *not_found);
/* Column col of row `row` parsed as JSON (NULL if it is not). */
json_t *cv_api_row_json(PGresult *r, int row, int col);

/* The principal of a token's row (id, role, service: row 0 of CV_SQL_TOKEN's shape). */
void cv_api_principal_from_row(PGresult *r, cv_api_principal_t *who);
/* Bearer token → principal; 0, or the error status already answered (401/503). */
int cv_api_authenticate(cv_api_req_t *req, cv_api_principal_t *who);
/* Queues an audit row with the action of the request's route (its table
   entry); 0, or 503 already answered. citizen_id / request_id 0 = none. */
int cv_api_audit(cv_api_req_t *req, const cv_api_principal_t *who, int64_t citizen_id,
                 int64_t request_id, int results);
/* The audit row of a list: the citizens whose data it showed (ids > 0,
   each kept once; the read log of docs/access.md), `results` its rows. */
int cv_api_audit_list(cv_api_req_t *req, const cv_api_principal_t *who, const int64_t *citizen_ids,
                      size_t n, int results);

/* The request's body as a JSON object (duplicate keys refused), or NULL. */
json_t *cv_api_body_json(const cv_api_req_t *req);
/* A string member of 1 to 200 bytes of a body, or NULL. */
const char *cv_api_body_text(json_t *body, const char *key);

/* Answers the refusal of an identity write (PQclear is the caller's): SQLSTATE
   22023 (an unknown, merged or erased citizen, or a pair it does not have)
   with status_22023 (409, or 404 where existence is not revealed); 22000
   400 with the function's words (which never hold a value); another
   class-22 error 400; anything else 503. */
void cv_api_identity_refusal(cv_api_req_t *req, const PGresult *r, int status_22023);

/* A page of a list: the limit / offset query parameters, and the same as
   SQL parameter texts. Lists fetch limit + 1 rows: the extra one tells
   whether a next page exists. */
typedef struct {
    int64_t limit, offset;
    char limit_text[24], fetch_text[24], offset_text[24];   /* limit, limit + 1, offset */
} cv_api_page_t;

/* Reads limit / offset; 0, or 400 answered. */
int cv_api_page(cv_api_req_t *req, cv_api_page_t *page);
/* {items, limit, offset, next_offset}: items holds up to limit + 1 rows (taken). */
json_t *cv_api_paged(json_t *items, const cv_api_page_t *page);

/* api_requests.c: a page of requests (rows: a request's JSON, its service)
   answered in the caller's view, with the read log of the citizens it
   shows; takes r. */
void cv_api_reply_request_page(cv_api_req_t *req, const cv_api_principal_t *who, PGresult *r,
                               const cv_api_page_t *page);

/* api_public.c */
cv_api_handler_t cv_api_metrics, cv_api_track, cv_api_me;
/* api_citizens.c */
cv_api_handler_t cv_api_citizen_search, cv_api_citizen_timeline;
/* api_requests.c */
cv_api_handler_t cv_api_request, cv_api_service_requests, cv_api_overdue_requests, cv_api_request_count;
cv_api_handler_t cv_api_service_queue;          /* api_queue.c */
/* api_identity.c */
cv_api_handler_t cv_api_merge_proposals, cv_api_merge, cv_api_split, cv_api_detach;
cv_api_handler_t cv_api_proposal_reject;
/* api_rgpd.c */
cv_api_handler_t cv_api_citizen_export, cv_api_citizen_rectify;
/* api_intake.c */
cv_api_handler_t cv_api_request_register;
/* api_attachments.c (api_attachments.h) */
cv_api_handler_t cv_api_request_attachments, cv_api_request_attachment;
cv_api_handler_t cv_api_request_route;            /* api_route_request.c */
/* api_check.c */
cv_api_handler_t cv_api_citizen_check;
/* api_open311.c */
cv_api_handler_t cv_api_o311_services, cv_api_o311_requests, cv_api_o311_request, cv_api_o311_post;
/* The POST's fields: its body (form or JSON, after the Content-Type ct) as a
   JSON object, or NULL with the reason in *why (cv_api_o311_post answers it
   with 400). */
json_t *cv_api_o311_post_fields(const char *ct, const char *body, size_t body_len, const char **why);
/* Rewrites an API error reply ({"error": {...}}) in Open311's format (JSON
   or XML after the path's suffix): the router applies it under /open311/. */
void cv_api_o311_reformat(cv_api_req_t *req);
/* The body of an error in Open311's format for a request to `url` (XML
   when its last segment ends in .xml), with its content type; malloc'd,
   NULL when out of memory. The server's own errors under /open311/. */
char *cv_api_o311_error_body(const char *url, int status, const char *description, const char **type);

#endif
