/*  api_check — an agent checks identity fields against a document
    (docs/identity.md, "Certainty"):

        POST /v1/citizens/{id}/check   {"source", "source_citizen_id",
             "fields": ["family_name", "birth_date", ...],
             "document": "cni" | "passeport" | "titre_sejour" |
                         "permis_conduire" | "livret_famille" |
                         "acte_naissance" | "justificatif_domicile" |
                         "contact_confirme"}

    Each field of that identity block gets level 3 ("agent": checked by an
    agent), with the kind of document (never its number), the token and
    the time; the pair's identifiers follow (cv_identity_check). Staff: an
    agent checks only a citizen their service dealt with (any other answers
    404, as the timeline does: existence is not revealed); supervisors any.
    400 for a field, a document or a pair of them refused (an identity card
    does not prove an e-mail), with the check's words; 409 for a pair the
    citizen does not have. Audited (citizen_check) with the citizen's id. */
#include "api_handler.h"

#include "api_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_USAGE "give {\"source\", \"source_citizen_id\", \"fields\": [family_name|birth_name|given_names|" \
                    "birth_date|email|phone|address, ...], \"document\": cni|passeport|titre_sejour|" \
                    "permis_conduire|livret_famille|acte_naissance|justificatif_domicile|contact_confirme}"

/* The fields as a PostgreSQL array literal {a,b}: 1 to 7 names of
   lower-case letters and '_' (nothing to quote). Returns false for
   anything else. */
static bool s_fields(json_t *fields, char *out, size_t size)
{
    size_t n = json_array_size(fields), len = 0;
    if (!json_is_array(fields) || n == 0 || n > 7)
        return false;
    out[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        const char *f = json_string_value(json_array_get(fields, i));
        size_t fl = f ? strlen(f) : 0;
        if (fl == 0 || fl > 20 || len + fl + 3 > size)
            return false;
        for (const char *p = f; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
                return false;
        if (i)
            out[len++] = ',';
        memcpy(out + len, f, fl);
        len += fl;
    }
    out[len++] = '}';
    out[len] = '\0';
    return true;
}

void cv_api_citizen_check(cv_api_req_t *req, const cv_api_principal_t *who)
{
    int64_t id;
    char cid[24], actor[48], fields[7 * 22 + 3];
    if (!cv_api_parse_int(cv_api_param(req, "id"), 1, INT64_MAX, &id)) {
        cv_api_error(req, 404, "not_found", "no such citizen");
        return;
    }
    snprintf(cid, sizeof cid, "%lld", (long long) id);
    json_t *body = cv_api_body_json(req);
    const char *source = cv_api_body_text(body, "source"), *key = cv_api_body_text(body, "source_citizen_id");
    const char *document = cv_api_body_text(body, "document");
    if (!source || !key || !document || !s_fields(json_object_get(body, "fields"), fields, sizeof fields)) {
        json_decref(body);
        cv_api_error(req, 400, "bad_request", CHECK_USAGE);
        return;
    }
    snprintf(actor, sizeof actor, "token:%lld", (long long) who->token_id);
    bool agent = who->role == CV_API_AGENT;
    const char *v[7] = { cid, source, key, fields, document, actor, agent ? who->service : NULL };
    PGresult *r = cv_api_db_exec_params("SELECT cv_identity_check($1::bigint, $2, $3, $4::text[], $5, $6, $7)",
                                        7, v);
    json_decref(body);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (state && strcmp(state, "42501") == 0)     /* another service's citizen */
            cv_api_error(req, 404, "not_found", "no such citizen");
        else
            cv_api_identity_refusal(req, r, agent ? 404 : 409);
        PQclear(r);
        return;
    }
    json_t *reply = json_pack("{s:I, s:I}", "citizen_id", (json_int_t) id, "checked",
                              (json_int_t) strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
    if (cv_api_audit(req, who, id, 0, 1) != 0) {
        json_decref(reply);
        return;
    }
    cv_api_reply(req, 200, reply);
}
