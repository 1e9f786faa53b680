/*  api_dashboard — the city's dashboard figures (GET /v1/dashboard, docs/web.md).

    One SQL function, cv_dashboard(year, costs) in schemas/sql/functions/dashboard.sql,
    gives every figure from its view (volumes by month, channel and service; response
    times; requests past due; the cost by channel); this file only reads the year, passes
    the cost per contact of deploy/costs.yaml and answers the JSON as PostgreSQL wrote it.
    Counts and durations only: nobody's data, so no audit row (like /v1/requests/count).

    deploy/costs.yaml (dashboard.costs_file) is read at start-up and again at a
    SIGHUP (cv_api_costs_reload: the new amounts swapped in under a lock, the
    handler copies them before its query):

        per_contact:          # euros per contact, by channel; empty: not set by the city
          guichet: 12
          web: 3
          telephone:
    A channel that is not one of the model's, a negative or absurd amount, or an unknown
    key stops start-up with file:line: reason. Without the file: counter 12 €, online 3 €,
    the rest not set. */
#include "api_dashboard.h"
#include "api_handler.h"
#include "api_util.h"
#include "cv_yaml.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_alloc.h"

static pthread_mutex_t s_costs_lock = PTHREAD_MUTEX_INITIALIZER;   /* ctx->costs, swapped by a reload */

static const char *const s_channels[] = { "guichet", "telephone", "courrier", "email", "web", "api", "interne",
                                          "autre", "inconnu", NULL };

static bool s_unset(const char *v)
{
    return !v || !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

char *cv_api_costs_load(const char *path, char *err, size_t errlen)
{
    json_t *costs = json_object();
    if (!path) {
        json_object_set_new(costs, "guichet", json_integer(12));
        json_object_set_new(costs, "web", json_integer(3));
        json_object_set_new(costs, "telephone", json_null());
        json_object_set_new(costs, "courrier", json_null());
        json_object_set_new(costs, "email", json_null());
        char *text = json_dumps(costs, JSON_COMPACT);
        json_decref(costs);
        return text;
    }
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, errlen);
    if (!doc) {
        json_decref(costs);
        return NULL;
    }
    static const char *const top[] = { "per_contact", NULL };
    const cv_yaml_node_t *root = doc->root, *per;
    int rc = !root ? cv_yaml_fail(doc, NULL, err, errlen, "empty file: per_contact is required")
             : cv_yaml_expect(doc, root, CV_YAML_MAP, "the costs file", err, errlen) < 0
                   || cv_yaml_check_keys(doc, root, top, "the costs file", err, errlen) < 0 ? -1
             : !(per = cv_yaml_get(root, "per_contact"))
                   ? cv_yaml_fail(doc, root, err, errlen, "'per_contact' is required")
             : cv_yaml_expect(doc, per, CV_YAML_MAP, "'per_contact'", err, errlen) < 0
                   || cv_yaml_check_keys(doc, per, s_channels, "'per_contact' (a channel of the model)", err,
                                         errlen) < 0 ? -1 : 0;
    for (const cv_yaml_node_t *c = rc == 0 ? per->child : NULL; c && rc == 0; c = c->next) {
        char *end = NULL;
        double v = 0;
        if (c->type != CV_YAML_SCALAR)
            rc = cv_yaml_fail(doc, c, err, errlen, "'%s': an amount in euros, or nothing", c->key);
        else if (s_unset(c->value))
            json_object_set_new(costs, c->key, json_null());
        else if ((v = strtod(c->value, &end)), !end || *end || v < 0 || v > 10000)
            rc = cv_yaml_fail(doc, c, err, errlen, "'%s': an amount in euros from 0 to 10000, or nothing", c->key);
        else
            json_object_set_new(costs, c->key, json_real(v));
    }
    cv_yaml_destroy(&doc);
    char *text = rc == 0 ? json_dumps(costs, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(costs);
    return text;
}

int cv_api_costs_reload(cv_api_ctx_t *ctx, char *err, size_t errlen)
{
    char *costs = cv_api_costs_load(ctx->config->costs_file, err, errlen);
    if (!costs)
        return -1;
    pthread_mutex_lock(&s_costs_lock);
    char *old = ctx->costs;
    ctx->costs = costs;
    pthread_mutex_unlock(&s_costs_lock);
    free(old);
    return 0;
}

void cv_api_dashboard(cv_api_req_t *req, const cv_api_principal_t *who)
{
    (void) who;
    const char *y = cv_api_query(req, "year");
    int64_t year;
    char buf[8];
    if (y) {
        if (!cv_api_parse_int(y, 2000, 2100, &year)) {
            cv_api_error(req, 400, "bad_year", "year is a year from 2000 to 2100");
            return;
        }
    } else {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        year = tm.tm_year + 1900;
    }
    snprintf(buf, sizeof buf, "%d", (int) year);
    pthread_mutex_lock(&s_costs_lock);
    char *costs = cv_zstrdup(req->ctx->costs);
    pthread_mutex_unlock(&s_costs_lock);
    const char *v[2] = { buf, costs };
    PGresult *r = cv_api_db_exec_params("SELECT cv_dashboard($1::int, $2::jsonb)::text", 2, v);
    free(costs);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        CV_API_DB_DOWN(req);
        return;
    }
    char *text = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!text) {
        cv_api_error(req, 503, "unavailable", "out of memory");
        return;
    }
    cv_api_reply_json_text(req, 200, text);
}
