/*  api_intake — the front office registers a request (docs/intake.md):

        POST /v1/requests   {"channel": "guichet" | "telephone" | "courrier",
                             "category", "service"?, "description",
                             "citizen_id" | "citizen": {...},
                             "checked_document"?, "requested_at"?,
                             "location"?,
                             "attachments"?: [{"name", "content_base64"}]}

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
    writes answer an unknown id in their body).

    Attachments (a letter's scan, docs/attachments.md): read and checked
    first (api_attachments.c: strict base64, caps, type by content, names
    cleaned; 400 naming the index), then written to the folder
    (cv_attach_put) BEFORE the registration's statement, which inserts
    their rows in its transaction and lists them in the answer. All of it
    under the shared advisory lock that `civibusctl attachments gc` takes
    exclusively: a file is never collected between its write and its row.
    A refused registration leaves at most files no row names (gc's). Puts
    are serialised in this process (cv_attach_put's temporary name is per
    process: two threads storing the same bytes at once would share it). */
#include "api_attachments.h"
#include "api_handler.h"
#include "cv_attach.h"
#include "cv_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static pthread_mutex_t s_put_lock = PTHREAD_MUTEX_INITIALIZER;

/* mkdir -p dir, each folder made 0700. */
static int s_mkdirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int) sizeof path)
        return -1;
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (!c)
                return 0;
        }
    }
}

/* Writes the files; their {sha256, mime, size, name} into body's
   "attachments" for the SQL function. 0, or 503 answered (logged: the
   folder's error, never a name). */
static int s_store(cv_api_req_t *req, json_t *body, const cv_api_attachments_t *files)
{
    const cv_api_config_t *cfg = req->ctx->config;
    json_t *list = json_array();
    char err[512] = "";
    int rc = 0;
    pthread_mutex_lock(&s_put_lock);
    if (s_mkdirs(cfg->attach_dir) < 0) {
        snprintf(err, sizeof err, "%s: cannot make the folder: %s", cfg->attach_dir, strerror(errno));
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < files->n; i++) {
        cv_attach_info_t info;
        rc = cv_attach_put(cfg->attach_dir, files->items[i].data, files->items[i].len,
                           (size_t) cfg->attach_max_bytes, &info, err, sizeof err);
        if (rc == 0)
            json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:s?}", "sha256", info.sha256, "mime", info.mime,
                                                  "size", (json_int_t) info.size, "name", files->items[i].name));
    }
    pthread_mutex_unlock(&s_put_lock);
    if (rc != 0) {
        cv_error("attach", "registration: %s", err);
        json_decref(list);
        cv_api_error(req, 503, "unavailable", "the attachments cannot be stored; the administrator is told");
        return 503;
    }
    json_object_set_new(body, "attachments", list);
    return 0;
}

/* The shared advisory lock of the attachments folder, taken or given back;
   0, or 503 answered. */
static int s_folder_lock(cv_api_req_t *req, bool take)
{
    const char *v[1] = { CV_API_ATTACH_LOCK };
    PGresult *r = cv_api_db_exec_params(take ? "SELECT pg_advisory_lock_shared($1::bigint)"
                                             : "SELECT pg_advisory_unlock_shared($1::bigint)", 1, v);
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (!ok && take)
        CV_API_DB_DOWN(req);
    return ok ? 0 : 503;
}

void cv_api_request_register(cv_api_req_t *req, const cv_api_principal_t *who)
{
    json_t *body = cv_api_body_json(req);
    if (!body) {
        cv_api_error(req, 400, "bad_request", "give a JSON object: channel, category, description, and "
                     "citizen_id or citizen (docs/intake.md)");
        return;
    }
    cv_api_attachments_t files;
    char why[256];
    if (cv_api_attachments_read(body, req->ctx->config, &files, why, sizeof why) != 0) {
        json_decref(body);
        cv_api_error(req, 400, "bad_request", why);
        return;
    }
    bool locked = false;
    if (files.n > 0) {
        locked = s_folder_lock(req, true) == 0;
        if (!locked || s_store(req, body, &files) != 0) {
            if (locked)
                s_folder_lock(req, false);
            cv_api_attachments_free(&files);
            json_decref(body);
            return;
        }
    }
    cv_api_attachments_free(&files);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char actor[48];
    snprintf(actor, sizeof actor, "token:%lld", (long long) who->token_id);
    const char *v[2] = { text, actor };
    PGresult *r = text ? cv_api_db_exec_params("SELECT cv_intake_register($1::jsonb, $2)::text", 2, v) : NULL;
    free(text);
    if (locked)
        s_folder_lock(req, false);
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
