/*  api_route_request — an agent re-routes a request (docs/routing.md):

        POST /v1/requests/{code}/route   {"service": "voirie"}

    The request keeps its tracking code and its one timeline: it moves to
    the service (one of deploy/routing.yaml's `services`), its timeline gains
    a 'routed' event, and the service's software gets a command of its own
    (idempotency key route-<request>-<n>), in one transaction
    (cv_routing_reroute, schemas/sql/functions/routing.sql). An agent
    re-routes the requests of their own service only (the triage queue's
    agents empty it); supervisors and admins any. The token is the actor;
    audited (request_route) with the request and its citizen.

    Answers: 200 {tracking_code, request_id, service, previous_service,
    command_id}; 400 a body without a known service; 403 another service's
    request; 409 no such request (a mistyped code too: as the API's other
    writes answer an unknown id), already in that service, closed, or no
    routing loaded. */
#include "api_handler.h"

#include "api_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cv_api_request_route(cv_api_req_t *req, const cv_api_principal_t *who)
{
    json_t *body = cv_api_body_json(req);
    const char *service = body ? cv_api_body_text(body, "service") : NULL;
    if (!service || json_object_size(body) != 1) {
        json_decref(body);
        cv_api_error(req, 400, "bad_request", "give a JSON object {\"service\": \"...\"} (a service of "
                     "deploy/routing.yaml)");
        return;
    }
    char code[CV_API_CODE_MAX];
    if (!cv_api_tracking_code(cv_api_param(req, "code"), code)) {
        json_decref(body);
        cv_api_error(req, 409, "conflict", "no such request");
        return;
    }
    char actor[48];
    snprintf(actor, sizeof actor, "token:%lld", (long long) who->token_id);
    const char *v[4] = { code, service, actor, who->role == CV_API_AGENT ? who->service : NULL };
    PGresult *r = cv_api_db_exec_params("SELECT cv_routing_reroute($1, $2, $3, $4)::text", 4, v);
    json_decref(body);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (st && strcmp(st, "22023") == 0)
            cv_api_error(req, 409, "conflict", "no such request");
        else if (st && strcmp(st, "42501") == 0)
            cv_api_error(req, 403, "forbidden", "an agent re-routes the requests of their own service only");
        else if (st && strcmp(st, "55000") == 0)
            cv_api_error(req, 409, "conflict", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
        else
            cv_api_identity_refusal(req, r, 404);    /* 22000: 400 with the function's words; else 503 */
        PQclear(r);
        return;
    }
    json_t *reply = cv_api_row_json(r, 0, 0);
    PQclear(r);
    if (!reply) {
        CV_API_DB_DOWN(req);
        return;
    }
    json_t *cid = json_object_get(reply, "citizen_id");
    int64_t citizen = json_is_integer(cid) ? json_integer_value(cid) : 0;
    int64_t request = json_integer_value(json_object_get(reply, "request_id"));
    json_object_del(reply, "citizen_id");
    if (cv_api_audit(req, who, citizen, request, 1) != 0) {
        json_decref(reply);
        return;
    }
    cv_api_reply(req, 200, reply);
}
