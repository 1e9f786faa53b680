/*  health — see cv_health.h.

    The probe's result is cached for a second so that a monitoring system
    polling fast (or a client hammering the port) costs PostgreSQL one
    connection a second at most. A change of state is logged once, at WARN
    when it goes bad and INFO when it comes back. */
#include "cv_health.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_log.h"

#define PROBE_EVERY_US 1000000

struct cv_health {
    char *conninfo;
    int64_t stuck_after_us;
    atomic_int_least64_t busy_since_us;     /* 0: no batch with the writer */
    pthread_mutex_t lock;                   /* the probe's cache */
    int64_t probed_us;
    bool db_ok, said_db, said_writer, writer_was_ok;
};

cv_health_t *cv_health_new(const char *conninfo, int stuck_after_s)
{
    cv_health_t *self = cv_zcalloc(1, sizeof *self);
    self->conninfo = cv_zstrdup(conninfo ? conninfo : "");
    self->stuck_after_us = (int64_t) stuck_after_s * 1000000;
    atomic_init(&self->busy_since_us, 0);
    pthread_mutex_init(&self->lock, NULL);
    self->db_ok = self->writer_was_ok = true;
    return self;
}

void cv_health_destroy(cv_health_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_health_t *self = *self_p;
    pthread_mutex_destroy(&self->lock);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

void cv_health_writer(cv_health_t *self, int busy, int64_t now_us)
{
    if (self)
        atomic_store_explicit(&self->busy_since_us, busy ? (now_us ? now_us : 1) : 0, memory_order_relaxed);
}

/* SELECT 1 over a connection of its own; true when it answered. */
static bool s_probe(const cv_health_t *self)
{
    const char *keys[] = { "dbname", "connect_timeout", "options", "application_name", NULL };
    const char *values[] = { self->conninfo, "2", "-c statement_timeout=2000", "civibus-hub healthz", NULL };
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    bool ok = false;
    if (pg && PQstatus(pg) == CONNECTION_OK) {
        PGresult *r = PQexec(pg, "SELECT 1");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    PQfinish(pg);
    return ok;
}

char *cv_health_render(cv_health_t *self, int64_t now_us, unsigned *status, size_t *len)
{
    pthread_mutex_lock(&self->lock);
    if (!self->probed_us || now_us - self->probed_us >= PROBE_EVERY_US) {
        bool ok = s_probe(self);
        if (ok != self->db_ok || !self->said_db) {
            if (!ok)
                cv_warn("health", "PostgreSQL does not answer: /healthz says unhealthy");
            else if (self->said_db)
                cv_info("health", "PostgreSQL answers again");
            self->said_db = true;
        }
        self->db_ok = ok;
        self->probed_us = now_us;
    }
    bool db_ok = self->db_ok;
    int64_t since = atomic_load_explicit(&self->busy_since_us, memory_order_relaxed);
    int64_t waited_us = since ? now_us - since : 0;
    bool writer_ok = waited_us < self->stuck_after_us;
    if (writer_ok != self->writer_was_ok) {
        if (!writer_ok)
            cv_warn("health", "a batch has waited %lld s for its commit: /healthz says the writer is stuck",
                    (long long) (waited_us / 1000000));
        else
            cv_info("health", "the writer commits again");
        self->writer_was_ok = writer_ok;
    }
    pthread_mutex_unlock(&self->lock);

    char *body = cv_zmalloc(160);
    int n = snprintf(body, 160, "{\"status\":\"%s\",\"database\":\"%s\",\"writer\":\"%s\","
                            "\"uncommitted_seconds\":%lld}\n",
                     db_ok && writer_ok ? "ok" : "unhealthy", db_ok ? "ok" : "unreachable",
                     writer_ok ? "ok" : "stuck", (long long) (waited_us / 1000000));
    *status = db_ok && writer_ok ? 200 : 503;
    if (len)
        *len = n > 0 && n < 160 ? (size_t) n : strlen(body);
    return body;
}
