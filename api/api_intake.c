/*  api_intake — the front office registers a request (docs/intake.md):

        POST /v1/requests   {"channel": "guichet" | "telephone" | "courrier",
                             "category", "service"?, "description",
                             "citizen_id" | "citizen": {...},
                             "checked_document"?, "requested_at"?,
                             "location"?}

    A counter visit, a phone call or a letter, typed by an agent: the
    request enters the timeline as the hub's records do (cv_intake_register,
    schemas/sql/functions/intake.sql: cv_ingest with source 'accueil', the
    identity rules, a letter's registration number) and the answer, 201,
    gives the tracking code to read out or write on the receipt at once.
    What the person says about who they are is self-declared until the
    agent checks a document (docs/identity.md, Certainty). Staff only; the
    token is the actor; audited (request_register) with the citizen. The
    SQL function checks every field and names it when refusing (400);
    an unknown, merged or erased citizen_id is 409 (as the identity
    writes answer an unknown id in their body). */
#include "api_handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cv_api_request_register(cv_api_req_t *req, const cv_api_principal_t *who)
{
    json_t *body = cv_api_body_json(req);
    if (!body) {
        cv_api_error(req, 400, "bad_request", "give a JSON object: channel, category, description, and "
                     "citizen_id or citizen (docs/intake.md)");
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char actor[48];
    snprintf(actor, sizeof actor, "token:%lld", (long long) who->token_id);
    const char *v[2] = { text, actor };
    PGresult *r = text ? cv_api_db_exec_params("SELECT cv_intake_register($1::jsonb, $2)::text", 2, v) : NULL;
    free(text);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        cv_api_identity_refusal(req, r, 409);      /* an unknown citizen_id: 409, as identity writes */
        PQclear(r);
        return;
    }
    json_t *reply = cv_api_row_json(r, 0, 0);
    PQclear(r);
    if (!reply) {
        CV_API_DB_DOWN(req);
        return;
    }
    json_int_t citizen = json_integer_value(json_object_get(reply, "citizen_id"));
    if (cv_api_audit(req, who, citizen, json_integer_value(json_object_get(reply, "request_id")), 1) != 0) {
        json_decref(reply);
        return;
    }
    cv_api_reply(req, 201, reply);
}
