/*  api_rgpd — the citizen's rights over HTTP (docs/rgpd.md), for supervisors
    and admins (the route table):

        GET  /v1/citizens/{id}/export    everything civibus keeps about the
             person, the document of cv_citizen_export (schemas/v1/
             citizen-export.schema.json; the same as `civibusctl citizen
             export`). 404 for an unknown, erased or merged-away citizen.
        POST /v1/citizens/{id}/rectify   {"source", "source_citizen_id",
             "field", "value", "document"?}: one field of one identity block
             (cv_citizen_rectify); with "document" (as for POST .../check,
             api_check.c) the new value is checked by the supervisor. 400 for a bad field or value, 409 for a
             citizen or pair that does not exist (as the identity writes).

    Agents get neither: an export holds every service's data, and a
    rectification changes the identity every service's linkage reads (an
    agent corrects the record in the service's own software, which sends
    it). Both are audited (citizen_export, citizen_rectify) with the
    citizen's id; the SQL functions hold the document and the checks. */
#include "api_handler.h"

#include "api_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool s_citizen_id(cv_api_req_t *req, char out[24], int64_t *id)
{
    const char *text = cv_api_param(req, "id");
    if (!text || !cv_api_parse_int(text, 1, INT64_MAX, id))
        return false;
    snprintf(out, 24, "%lld", (long long) *id);
    return true;
}

void cv_api_citizen_export(cv_api_req_t *req, const cv_api_principal_t *who)
{
    char cid[24];
    int64_t id;
    if (!s_citizen_id(req, cid, &id)) {
        cv_api_error(req, 404, "not_found", "no such citizen");
        return;
    }
    const char *v[1] = { cid };
    PGresult *r = cv_api_db_exec_params("SELECT cv_citizen_export($1::bigint)::text", 1, v);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (state && strcmp(state, "P0002") == 0)
            cv_api_error(req, 404, "not_found", "no such citizen (unknown, erased, or merged into another)");
        else
            CV_API_DB_DOWN(req);
        PQclear(r);
        return;
    }
    json_t *doc = cv_api_row_json(r, 0, 0);
    PQclear(r);
    if (!doc) {
        CV_API_DB_DOWN(req);
        return;
    }
    if (cv_api_audit(req, who, id, 0, 1) != 0) {
        json_decref(doc);
        return;
    }
    cv_api_reply(req, 200, doc);
}

#define RECTIFY_USAGE "give {\"source\", \"source_citizen_id\", \"field\": family_name|birth_name|given_names|" \
                      "birth_date|email|phone|address, \"value\": a text (address: an object), " \
                      "\"document\" (optional): the document the new value was checked against}"

void cv_api_citizen_rectify(cv_api_req_t *req, const cv_api_principal_t *who)
{
    char cid[24], actor[48];
    int64_t id;
    if (!s_citizen_id(req, cid, &id)) {
        cv_api_error(req, 404, "not_found", "no such citizen");
        return;
    }
    json_t *body = cv_api_body_json(req);
    const char *source = cv_api_body_text(body, "source"), *key = cv_api_body_text(body, "source_citizen_id");
    const char *field = cv_api_body_text(body, "field");
    json_t *value = json_object_get(body, "value"), *doc = json_object_get(body, "document");
    const char *document = cv_api_body_text(body, "document");
    bool address = field && strcmp(field, "address") == 0;
    if (!source || !key || !field || !(address ? json_is_object(value) : json_is_string(value))
        || (doc && !document)) {
        json_decref(body);
        cv_api_error(req, 400, "bad_request", RECTIFY_USAGE);
        return;
    }
    char *value_text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(actor, sizeof actor, "token:%lld", (long long) who->token_id);
    const char *v[7] = { cid, source, key, field, value_text, actor, document };
    PGresult *r = value_text ? cv_api_db_exec_params("SELECT cv_citizen_rectify($1::bigint, $2, $3, $4, $5::jsonb, $6, $7)",
                                                     7, v) : NULL;
    free(value_text);
    char field_copy[201];
    snprintf(field_copy, sizeof field_copy, "%s", field);
    json_decref(body);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        cv_api_identity_refusal(req, r, 409);
        PQclear(r);
        return;
    }
    json_t *reply = json_pack("{s:I, s:I, s:s}", "rectification_id",
                              (json_int_t) strtoll(PQgetvalue(r, 0, 0), NULL, 10), "citizen_id", (json_int_t) id,
                              "field", field_copy);
    PQclear(r);
    if (cv_api_audit(req, who, id, 0, 1) != 0) {
        json_decref(reply);
        return;
    }
    cv_api_reply(req, 200, reply);
}
