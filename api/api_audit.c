/*  api_audit — see api_audit.h. The queue is a growable array swapped out
    whole by the writer thread, so a handler holds the mutex for one copy. */
#include "api_audit.h"

#include "cv_alloc.h"
#include "cv_log.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX 100000

typedef struct {
    struct timespec at;
    int64_t token_id;
    cv_api_role_t role;
    char service[128];
    const char *action;
    int64_t citizen_id;
    int64_t request_id;
    int results;
    char client[48];
    int64_t *citizen_ids;       /* owned; NULL = not a list */
    size_t ncitizens;
} entry_t;

struct cv_api_audit {
    char *conninfo;
    int flush_ms;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stopping;
    entry_t *queue;
    size_t count, cap;
    uint64_t written;
    PGconn *pg;
};

static const char *s_insert =
    "INSERT INTO api_audit (at, token_id, role, service, action, citizen_id, request_id, results,"
    " client, citizen_ids)"
    " VALUES (to_timestamp($1::double precision), $2, $3, $4, $5, $6, $7, $8, $9::inet, $10::bigint[])";

/* The ids as an array literal, "{1,2,3}" (malloc'd; NULL when none is a list). */
static char *s_ids(const entry_t *e)
{
    if (!e->citizen_ids)
        return NULL;
    char *text = malloc(e->ncitizens * 21 + 3);
    if (!text)
        return NULL;
    size_t n = 0;
    text[n++] = '{';
    for (size_t i = 0; i < e->ncitizens; i++)
        n += (size_t) sprintf(text + n, "%s%lld", i ? "," : "", (long long) e->citizen_ids[i]);
    text[n++] = '}';
    text[n] = 0;
    return text;
}

static void s_entries_free(entry_t *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++)
        free(e[i].citizen_ids);
    free(e);
}

static bool s_connect(cv_api_audit_t *self)
{
    if (self->pg && PQstatus(self->pg) == CONNECTION_OK)
        return true;
    if (self->pg)
        PQfinish(self->pg);
    self->pg = PQconnectdb(self->conninfo);
    if (PQstatus(self->pg) != CONNECTION_OK) {
        cv_warn("audit", "cannot connect to PostgreSQL (will retry)");
        return false;
    }
    PGresult *r = PQprepare(self->pg, "audit_insert", s_insert, 0, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        cv_error("audit", "cannot prepare the audit insert: SQLSTATE %s",
                 PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "?");
    PQclear(r);
    return ok;
}

static bool s_exec(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

/* One transaction for the batch. */
static bool s_write(cv_api_audit_t *self, const entry_t *e, size_t n)
{
    if (!s_connect(self) || !s_exec(self->pg, "BEGIN"))
        return false;
    for (size_t i = 0; i < n; i++) {
        char at[40], tok[24], cit[24], req[24], res[16];
        snprintf(at, sizeof at, "%lld.%06ld", (long long) e[i].at.tv_sec, e[i].at.tv_nsec / 1000);
        snprintf(tok, sizeof tok, "%lld", (long long) e[i].token_id);
        snprintf(cit, sizeof cit, "%lld", (long long) e[i].citizen_id);
        snprintf(req, sizeof req, "%lld", (long long) e[i].request_id);
        snprintf(res, sizeof res, "%d", e[i].results);
        char *ids = s_ids(&e[i]);
        if (e[i].citizen_ids && !ids) {
            s_exec(self->pg, "ROLLBACK");
            return false;
        }
        const char *v[10] = { at, e[i].token_id ? tok : NULL, cv_api_role_name(e[i].role),
                              e[i].service[0] ? e[i].service : NULL, e[i].action,
                              e[i].citizen_id ? cit : NULL, e[i].request_id ? req : NULL,
                              e[i].results >= 0 ? res : NULL, e[i].client[0] ? e[i].client : NULL, ids };
        PGresult *r = PQexecPrepared(self->pg, "audit_insert", 10, v, NULL, NULL, 0);
        free(ids);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            s_exec(self->pg, "ROLLBACK");
            return false;
        }
    }
    return s_exec(self->pg, "COMMIT");
}

static void *s_run(void *arg)
{
    cv_api_audit_t *self = arg;
    entry_t *batch = NULL;
    size_t nbatch = 0;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        if (!self->stopping && self->count == 0 && nbatch == 0) {
            pthread_cond_wait(&self->wake, &self->lock);
            continue;
        }
        bool stopping = self->stopping;
        if (!stopping) {        /* let a batch build up */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += (long) (self->flush_ms % 1000) * 1000000L;
            until.tv_sec += self->flush_ms / 1000 + until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&self->wake, &self->lock, &until);
        }
        if (nbatch == 0) {      /* take the queue (a failed batch is retried first) */
            batch = self->queue;
            nbatch = self->count;
            self->queue = NULL;
            self->count = self->cap = 0;
        }
        stopping = self->stopping;
        pthread_mutex_unlock(&self->lock);
        bool ok = nbatch == 0 || s_write(self, batch, nbatch);
        pthread_mutex_lock(&self->lock);
        if (ok) {
            self->written += nbatch;
            s_entries_free(batch, nbatch);
            batch = NULL;
            nbatch = 0;
            if (stopping && self->count == 0)
                break;
        } else if (stopping) {
            cv_error("audit", "%zu audit rows could not be written at shutdown", nbatch);
            s_entries_free(batch, nbatch);
            break;
        } else {
            pthread_mutex_unlock(&self->lock);
            struct timespec pause = { 1, 0 };
            nanosleep(&pause, NULL);
            pthread_mutex_lock(&self->lock);
        }
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

cv_api_audit_t *cv_api_audit_new(const char *conninfo, int flush_ms)
{
    cv_api_audit_t *self = cv_zcalloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->conninfo = cv_zstrdup(conninfo);
    self->flush_ms = flush_ms > 0 ? flush_ms : 200;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        pthread_cond_destroy(&self->wake);
        pthread_mutex_destroy(&self->lock);
        free(self->conninfo);
        free(self);
        return NULL;
    }
    return self;
}

void cv_api_audit_destroy(cv_api_audit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_api_audit_t *self = *self_p;
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    if (self->pg)
        PQfinish(self->pg);
    s_entries_free(self->queue, self->count);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

int cv_api_audit_record(cv_api_audit_t *self, const cv_api_principal_t *who,
                        const cv_api_audit_row_t *row)
{
    entry_t e = { .token_id = who->token_id, .role = who->role, .action = row->action,
                  .citizen_id = row->citizen_id, .request_id = row->request_id, .results = row->results };
    clock_gettime(CLOCK_REALTIME, &e.at);
    snprintf(e.service, sizeof e.service, "%s", who->service);
    snprintf(e.client, sizeof e.client, "%s", row->client ? row->client : "");
    if (row->citizen_ids) {     /* a list: its ids copied (a page holds at most http.page_max) */
        e.citizen_ids = malloc((row->ncitizens ? row->ncitizens : 1) * sizeof *e.citizen_ids);
        if (!e.citizen_ids)
            return -1;
        memcpy(e.citizen_ids, row->citizen_ids, row->ncitizens * sizeof *e.citizen_ids);
        e.ncitizens = row->ncitizens;
    }
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    if (self->count >= QUEUE_MAX)
        rc = -1;
    else {
        if (self->count == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 64;
            entry_t *grown = realloc(self->queue, cap * sizeof *grown);
            if (!grown)
                rc = -1;
            else {
                self->queue = grown;
                self->cap = cap;
            }
        }
        if (rc == 0) {
            self->queue[self->count++] = e;
            if (self->count == 1)
                pthread_cond_signal(&self->wake);
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (rc != 0)
        free(e.citizen_ids);
    return rc;
}

uint64_t cv_api_audit_written(cv_api_audit_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->written;
    pthread_mutex_unlock(&self->lock);
    return n;
}
