/*  api_identity — identity resolution over HTTP (docs/identity.md): open
    merge proposals, merging two citizens, undoing a merge (split), taking
    a wrongly linked (source, source_citizen_id) pair off a citizen
    (detach), answering a proposal "two different people" (reject). The route table keeps them to supervisors and admins. The
    writes call the store's SQL functions (cv_citizen_merge, _split,
    _detach, cv_proposal_reject) with the acting token as the actor. */
#include "api_handler.h"

#include "api_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cv_api_merge_proposals(cv_api_req_t *req, const cv_api_principal_t *who)
{
    cv_api_page_t page;
    if (cv_api_page(req, &page) != 0)
        return;
    PGresult *r = cv_api_sql(req, CV_SQL_HAS_PROPOSALS, 0, NULL);
    if (!r)
        return;
    bool has = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!has) {
        cv_api_error(req, 404, "not_available", "identity resolution (004_identity.sql) is not installed");
        return;
    }
    const char *v[2] = { page.fetch_text, page.offset_text };
    r = cv_api_db_exec_params(
        "SELECT json_build_object('id', p.id, 'citizen_a', p.citizen_a, 'citizen_b', p.citizen_b,"
        " 'rule', p.rule, 'confidence', p.confidence, 'status', p.status,"
        " 'created_at', p.created_at)::text FROM merge_proposals p WHERE p.status = 'open'"
        " ORDER BY p.id LIMIT $1::int OFFSET $2::bigint", 2, v);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        CV_API_DB_DOWN(req);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *p = cv_api_row_json(r, i, 0);
        if (p)
            json_array_append_new(items, p);
    }
    PQclear(r);
    if (cv_api_audit(req, who, 0, 0, (int) json_array_size(items)) != 0) {
        json_decref(items);
        return;
    }
    cv_api_reply(req, 200, cv_api_paged(items, &page));
}

/* Runs one of the identity functions (cv_citizen_merge, _split, _detach).
   Their refusals answer 409 with the caller's words: SQLSTATE 22023 (an
   unknown citizen, merge or pair, or one already merged or split) and
   55000 (the state forbids it for now); another class-22 error 400; a lost
   database 503. Returns the one-row result or NULL. */
static PGresult *s_identity_call(cv_api_req_t *req, const char *sql, int n, const char *const *v,
                                 const char *if_22023, const char *if_55000)
{
    PGresult *r = cv_api_db_exec_params(sql, n, v);
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        return r;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && (strcmp(state, "22023") == 0 || strcmp(state, "55000") == 0))
        cv_api_error(req, 409, "conflict", strcmp(state, "22023") == 0 ? if_22023 : if_55000);
    else if (state && strncmp(state, "22", 2) == 0)
        cv_api_error(req, 400, "bad_request", "a value was refused");
    else
        CV_API_DB_DOWN(req);
    PQclear(r);
    return NULL;
}

#define MERGE_22023 "unknown citizen or merge, or already merged or split"
#define MERGE_55000 "a later merge of one of these citizens must be split first"

/* The audit and the functions name the acting token this way. */
static void s_actor(const cv_api_principal_t *who, char out[48])
{
    snprintf(out, 48, "token:%lld", (long long) who->token_id);
}

static bool s_id_arg(const char *text, char out[24])
{
    int64_t id;
    if (!text || !cv_api_parse_int(text, 1, INT64_MAX, &id))
        return false;
    snprintf(out, 24, "%lld", (long long) id);
    return true;
}

void cv_api_merge(cv_api_req_t *req, const cv_api_principal_t *who)
{
    char keep[24], absorb[24], actor[48];
    json_t *body = cv_api_body_json(req);
    json_t *a = json_object_get(body, "absorb");
    char given[24] = "";
    if (json_is_integer(a))
        snprintf(given, sizeof given, "%lld", (long long) json_integer_value(a));
    json_decref(body);
    if (!s_id_arg(cv_api_param(req, "id"), keep) || !s_id_arg(given, absorb)) {
        cv_api_error(req, 400, "bad_request", "give the citizen to keep in the path and {\"absorb\": id} in the body");
        return;
    }
    s_actor(who, actor);
    const char *v[3] = { keep, absorb, actor };
    PGresult *r = s_identity_call(req, "SELECT cv_citizen_merge($1::bigint, $2::bigint, $3)", 3, v,
                                  MERGE_22023, MERGE_55000);
    if (!r)
        return;
    json_t *reply = json_pack("{s:s, s:s, s:s}", "merge_id", PQgetvalue(r, 0, 0), "keep", keep, "absorb", absorb);
    PQclear(r);
    if (cv_api_audit(req, who, strtoll(keep, NULL, 10), 0, 1) != 0) {
        json_decref(reply);
        return;
    }
    cv_api_reply(req, 200, reply);
}

void cv_api_split(cv_api_req_t *req, const cv_api_principal_t *who)
{
    char merge[24], actor[48];
    if (!s_id_arg(cv_api_param(req, "id"), merge)) {
        cv_api_error(req, 400, "bad_request", "the merge id must be a positive whole number");
        return;
    }
    s_actor(who, actor);
    const char *v[2] = { merge, actor };
    PGresult *r = s_identity_call(req, "SELECT cv_citizen_split($1::bigint, $2)", 2, v,
                                  MERGE_22023, MERGE_55000);
    if (!r)
        return;
    PQclear(r);
    if (cv_api_audit(req, who, 0, 0, 1) != 0)
        return;
    cv_api_reply(req, 200, json_pack("{s:s, s:b}", "merge_id", merge, "split", 1));
}

/* Runs cv_citizen_detach (its refusals: s_identity_call). Returns the new
   citizen's id (malloc'd) or NULL. */
static char *s_detach_call(cv_api_req_t *req, const char *const v[4])
{
    PGresult *r = s_identity_call(req, "SELECT cv_citizen_detach($1::bigint, $2, $3, $4)", 4, v,
                                  "unknown or merged citizen, a pair it does not have, or its only pair",
                                  "the citizen has another pair of that source: merge or split instead");
    if (!r)
        return NULL;
    char *id = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!id)
        CV_API_DB_DOWN(req);
    return id;
}

/* Takes one (source, source_citizen_id) pair off a citizen (a wrong
   automatic link): it moves to a new citizen (docs/identity.md). */
void cv_api_detach(cv_api_req_t *req, const cv_api_principal_t *who)
{
    char citizen[24], actor[48];
    if (!s_id_arg(cv_api_param(req, "id"), citizen)) {
        cv_api_error(req, 404, "not_found", "no such citizen");
        return;
    }
    json_t *body = cv_api_body_json(req);
    const char *source = cv_api_body_text(body, "source"), *key = cv_api_body_text(body, "source_citizen_id");
    if (!source || !key) {
        json_decref(body);
        cv_api_error(req, 400, "bad_request", "give {\"source\": \"...\", \"source_citizen_id\": \"...\"} in the body");
        return;
    }
    s_actor(who, actor);
    const char *v[4] = { citizen, source, key, actor };
    char *created = s_detach_call(req, v);
    json_decref(body);
    if (!created)
        return;
    json_t *reply = json_pack("{s:I, s:I}", "citizen_id", (json_int_t) strtoll(created, NULL, 10),
                              "from", (json_int_t) strtoll(citizen, NULL, 10));
    free(created);
    if (cv_api_audit(req, who, strtoll(citizen, NULL, 10), 0, 1) != 0) {
        json_decref(reply);
        return;
    }
    cv_api_reply(req, 200, reply);
}

/* Answers proposal {id} "two different people" (cv_proposal_reject): it is
   never proposed again. 409 for an unknown proposal or one answered
   already, as the other identity writes; audited with its first citizen. */
void cv_api_proposal_reject(cv_api_req_t *req, const cv_api_principal_t *who)
{
    char proposal[24], actor[48];
    if (!s_id_arg(cv_api_param(req, "id"), proposal)) {
        cv_api_error(req, 409, "conflict", "unknown proposal, or answered already");
        return;
    }
    s_actor(who, actor);
    const char *v[2] = { proposal, actor };
    PGresult *r = s_identity_call(req, "SELECT cv_proposal_reject($1::bigint, $2)::text", 2, v,
                                  "unknown proposal, or answered already", "the proposal cannot be answered now");
    if (!r)
        return;
    json_t *pair = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    json_int_t a = json_integer_value(json_object_get(pair, "citizen_a"));
    json_t *reply = json_pack("{s:I, s:s, s:O?, s:O?}", "id", (json_int_t) strtoll(proposal, NULL, 10),
                              "status", "rejected", "citizen_a", json_object_get(pair, "citizen_a"),
                              "citizen_b", json_object_get(pair, "citizen_b"));
    json_decref(pair);
    if (!reply) {
        CV_API_DB_DOWN(req);
        return;
    }
    if (cv_api_audit(req, who, (int64_t) a, 0, 1) != 0) {
        json_decref(reply);
        return;
    }
    cv_api_reply(req, 200, reply);
}
