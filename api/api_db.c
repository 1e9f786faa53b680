/*  api_db — see api_db.h. Two connections per worker thread when a
    replica is configured (postgres.read_dsn): the primary's and the
    replica's, each with every statement prepared. Which one a statement
    runs on is decided per request (cv_api_db_request_begin):

    - a GET or HEAD may read from the replica, a POST never (what it reads
      it may act on: all of it on the primary);
    - only the statements s_replica_ok lists (timelines, searches, lists,
      Open311 reads, the dashboard); tokens, sessions and revoked links are
      read on the primary, so a revoked token or link stops at once;
    - not while the watcher (api_health.c) finds the replica down or
      lagging over postgres.max_replica_lag_s;
    - read your own writes: after a POST answered 2xx, the primary's WAL
      position is kept for the caller (its bearer token, session cookie or
      client address, hashed into a slot); the caller's next GETs ask the
      replica whether it has replayed that far, and read from the primary
      until it has (within 60 s; a slot two callers share only sends both
      to the primary for a moment).

    A replica connection that fails, or a statement the replica cancels (a
    conflict with recovery), is run again on the primary: a replica down
    costs no answer. Every such fallback is counted. */
#include "api_db.h"

#include "cv_alloc.h"
#include "cv_log.h"
#include "cv_schema.h"
#include "cv_text.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *s_conninfo;
static char *s_read_dsn;                /* NULL = no replica */
static pthread_key_t s_key, s_rkey;
static bool s_key_made;
static atomic_bool s_identity;          /* identity and search migrations installed (same for all) */
static atomic_bool s_replica_usable;    /* set by the watcher (cv_api_db_replica_usable) */
static atomic_ulong s_replica_reads, s_fallbacks;

/* this worker's current request */
static _Thread_local bool s_req_replica;        /* may read from the replica */
static _Thread_local uint64_t s_req_need_lsn;   /* the caller's last write, 0 = none */
static _Thread_local int s_req_checked;         /* 0 not yet, 1 replica has it, -1 primary */
static _Thread_local uint64_t s_req_caller;

#define RYW_SLOTS 4096
#define RYW_KEEP_MS 60000
static struct { uint64_t lsn; int64_t at_ms; } s_ryw[RYW_SLOTS];
static pthread_mutex_t s_ryw_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_close(void *pg)
{
    PQfinish(pg);
}

int cv_api_db_init(const char *conninfo)
{
    free(s_conninfo);
    s_conninfo = cv_zstrdup(conninfo);
    if (!s_key_made && (pthread_key_create(&s_key, s_close) != 0 || pthread_key_create(&s_rkey, s_close) != 0))
        return -1;
    s_key_made = true;
    return 0;
}

void cv_api_db_set_replica(const char *read_dsn)
{
    free(s_read_dsn);
    s_read_dsn = read_dsn ? cv_zstrdup(read_dsn) : NULL;
    atomic_store(&s_replica_usable, false);
}

void cv_api_db_replica_usable(bool usable)
{
    atomic_store(&s_replica_usable, usable);
}

void cv_api_db_counts(unsigned long *replica_reads, unsigned long *fallbacks)
{
    *replica_reads = atomic_load(&s_replica_reads);
    *fallbacks = atomic_load(&s_fallbacks);
}

void cv_api_db_term(void)
{
    if (s_key_made) {
        pthread_key_t keys[2] = { s_key, s_rkey };
        for (int i = 0; i < 2; i++) {
            PGconn *pg = pthread_getspecific(keys[i]);
            if (pg) {
                PQfinish(pg);
                pthread_setspecific(keys[i], NULL);
            }
            pthread_key_delete(keys[i]);
        }
        s_key_made = false;
    }
    free(s_conninfo);
    s_conninfo = NULL;
    free(s_read_dsn);
    s_read_dsn = NULL;
}

static bool s_ok(PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
}

static PGconn *s_open(const char *conninfo, const char *which)
{
    /* the replica's: a 2 s connect timeout unless read_dsn gives one (a
       replica gone from the network must not hold a worker for minutes) */
    const char *keys[] = { "connect_timeout", "dbname", NULL };
    const char *vals[] = { "2", conninfo ? conninfo : "", NULL };
    PGconn *pg = conninfo == s_read_dsn ? PQconnectdbParams(keys, vals, 1) : PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(pg) != CONNECTION_OK) {
        cv_warn("db", "cannot connect to PostgreSQL (%s)", which);
        PQfinish(pg);
        return NULL;
    }
    if (!s_ok(PQexec(pg, "SET TIME ZONE 'UTC'; SET statement_timeout = '10s'"))) {
        PQfinish(pg);
        return NULL;
    }
    PGresult *has = PQexec(pg, cv_api_sql_text(CV_SQL_IDENTITY_INSTALLED, false));
    bool identity = PQresultStatus(has) == PGRES_TUPLES_OK && strcmp(PQgetvalue(has, 0, 0), "t") == 0;
    PQclear(has);
    atomic_store(&s_identity, identity);
    for (int i = 0; i < CV_SQL_COUNT; i++) {
        char name[16];
        snprintf(name, sizeof name, "q%d", i);
        PGresult *r = PQprepare(pg, name, cv_api_sql_text((cv_sql_t) i, identity), 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            cv_error("db", "cannot prepare statement q%d (%s): SQLSTATE %s", i, which, st ? st : "?");
            PQclear(r);
            PQfinish(pg);
            return NULL;
        }
        PQclear(r);
    }
    return pg;
}

static PGconn *s_conn_of(pthread_key_t key, const char *conninfo, const char *which)
{
    PGconn *pg = pthread_getspecific(key);
    if (pg && PQstatus(pg) != CONNECTION_OK) {
        PQfinish(pg);
        pg = NULL;
        pthread_setspecific(key, NULL);
    }
    if (!pg) {
        pg = s_open(conninfo, which);
        pthread_setspecific(key, pg);
    }
    return pg;
}

static PGconn *s_conn(void)
{
    return s_conn_of(s_key, s_conninfo, "primary");
}

/* The reads the replica may serve. Anything not listed (a statement added
   later included) runs on the primary. */
static bool s_replica_ok(cv_sql_t stmt)
{
    switch (stmt) {
    case CV_SQL_REQUEST: case CV_SQL_REQUEST_EVENTS: case CV_SQL_REQUEST_NOTIFICATIONS:
    case CV_SQL_SERVICE_OPEN: case CV_SQL_OVERDUE: case CV_SQL_TIMELINE: case CV_SQL_TIMELINE_AGENT:
    case CV_SQL_CITIZEN_SEARCH: case CV_SQL_TRACK: case CV_SQL_HAS_PROPOSALS: case CV_SQL_O311_SERVICES:
    case CV_SQL_O311_SERVICE_OF: case CV_SQL_O311_REQUESTS: case CV_SQL_O311_REQUEST:
    case CV_SQL_O311_REQUEST_ID: case CV_SQL_LINK_REQUESTS: case CV_SQL_REQUEST_COUNT: case CV_SQL_QUEUE:
        return true;
    default:
        return false;
    }
}

/* Statements run through cv_api_db_exec_params that only read and may be
   served by the replica, by the start of their text. */
static bool s_replica_ok_sql(const char *sql)
{
    static const char *const reads[] = { "SELECT cv_dashboard(", NULL };
    for (int i = 0; reads[i]; i++)
        if (strncmp(sql, reads[i], strlen(reads[i])) == 0)
            return true;
    return false;
}

static uint64_t s_lsn(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    uint64_t v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
               ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return v;
}

void cv_api_db_request_begin(bool read_only, uint64_t caller)
{
    s_req_replica = read_only && s_read_dsn;
    s_req_need_lsn = 0;
    s_req_checked = 0;
    s_req_caller = caller;
    if (!s_req_replica)
        return;
    int64_t now = s_now_ms();
    pthread_mutex_lock(&s_ryw_lock);
    if (s_ryw[caller % RYW_SLOTS].lsn && now - s_ryw[caller % RYW_SLOTS].at_ms < RYW_KEEP_MS)
        s_req_need_lsn = s_ryw[caller % RYW_SLOTS].lsn;
    pthread_mutex_unlock(&s_ryw_lock);
}

void cv_api_db_request_end(bool wrote)
{
    if (wrote && s_read_dsn) {
        PGconn *pg = pthread_getspecific(s_key);
        uint64_t lsn = pg && PQstatus(pg) == CONNECTION_OK
                     ? s_lsn(pg, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn") : 0;
        if (lsn) {
            pthread_mutex_lock(&s_ryw_lock);
            size_t k = s_req_caller % RYW_SLOTS;
            if (lsn > s_ryw[k].lsn)
                s_ryw[k].lsn = lsn;
            s_ryw[k].at_ms = s_now_ms();
            pthread_mutex_unlock(&s_ryw_lock);
        }
    }
    s_req_replica = false;
}

/* The replica's connection for this statement of this request, or NULL:
   the primary serves it. */
static PGconn *s_replica_for(bool allowed)
{
    if (!allowed || !s_req_replica || s_req_checked < 0)
        return NULL;
    if (!atomic_load(&s_replica_usable)) {
        atomic_fetch_add(&s_fallbacks, 1);
        return NULL;
    }
    PGconn *pg = s_conn_of(s_rkey, s_read_dsn, "replica");
    if (!pg) {
        atomic_fetch_add(&s_fallbacks, 1);
        return NULL;
    }
    if (s_req_checked == 0 && s_req_need_lsn) {    /* the caller wrote: has the replica replayed it? */
        uint64_t have = s_lsn(pg, "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn");
        s_req_checked = have >= s_req_need_lsn ? 1 : -1;
        if (s_req_checked < 0)
            return NULL;
    }
    s_req_checked = 1;
    return pg;
}

/* A result the primary should give instead: the replica's connection
   broke, or it cancelled the statement (conflict with recovery, 40001;
   57014 its statement timeout is the primary's too, so not that). */
static bool s_retry_on_primary(PGconn *pg, PGresult *r)
{
    if (!r || PQstatus(pg) != CONNECTION_OK)
        return true;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return false;
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return !code || strncmp(code, "40", 2) == 0 || strncmp(code, "08", 2) == 0 || strncmp(code, "57P", 3) == 0;
}

static PGresult *s_run(PGconn *pg, cv_sql_t stmt, const char *sql, int nparams, const char *const *values)
{
    if (sql)
        return PQexecParams(pg, sql, nparams, NULL, values, NULL, NULL, 0);
    /* The search's tests are "parameter is NULL or matches": only a plan made
       for the actual values drops the NULL ones and uses the trigram and
       identifier indexes, so it is planned at each call (a few hundred µs). */
    if (stmt == CV_SQL_CITIZEN_SEARCH)
        return PQexecParams(pg, cv_api_sql_text(stmt, atomic_load(&s_identity)), nparams, NULL, values,
                            NULL, NULL, 0);
    char name[16];
    snprintf(name, sizeof name, "q%d", (int) stmt);
    return PQexecPrepared(pg, name, nparams, values, NULL, NULL, 0);
}

static PGresult *s_exec(bool replica_ok, cv_sql_t stmt, const char *sql, int nparams, const char *const *values)
{
    PGconn *rp = s_replica_for(replica_ok);
    if (rp) {
        PGresult *r = s_run(rp, stmt, sql, nparams, values);
        if (!s_retry_on_primary(rp, r)) {
            atomic_fetch_add(&s_replica_reads, 1);
            return r;
        }
        PQclear(r);
        atomic_fetch_add(&s_fallbacks, 1);
    }
    PGconn *pg = s_conn();
    return pg ? s_run(pg, stmt, sql, nparams, values) : NULL;
}

PGresult *cv_api_db_exec(cv_sql_t stmt, int nparams, const char *const *values)
{
    return s_exec(s_replica_ok(stmt), stmt, NULL, nparams, values);
}

PGresult *cv_api_db_exec_params(const char *sql, int nparams, const char *const *values)
{
    return s_exec(s_replica_ok_sql(sql), CV_SQL_COUNT, sql, nparams, values);
}

int cv_api_db_check_schema(const char *conninfo, char *err, size_t errlen)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        char line[512];
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", cv_text_one_line(PQerrorMessage(pg), line, sizeof line));
        PQfinish(pg);
        return -1;
    }
    PGresult *r = PQexec(pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
        PQclear(r);
        r = PQexec(pg, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = 5),"
                       " EXISTS (SELECT 1 FROM schema_migrations WHERE version = 16),"
                       " (SELECT coalesce(max(version), 0) FROM schema_migrations)");
    }
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "cannot read schema_migrations: SQLSTATE %s",
                 PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "?");
        rc = -1;
    } else if (PQnfields(r) == 3 && atoi(PQgetvalue(r, 0, 2)) > CV_SCHEMA_VERSION) {
        snprintf(err, errlen, "the database holds migration %03d (newer than this civibus, which "
                 "knows up to %03d): upgrade civibus before starting it",
                 atoi(PQgetvalue(r, 0, 2)), CV_SCHEMA_VERSION);
        rc = -1;
    } else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        snprintf(err, errlen, "the database lacks migration 005_api.sql: start the hub once "
                              "(it applies schemas/sql) before civibus-api");
        rc = -1;
    } else if (strcmp(PQgetvalue(r, 0, 1), "t") != 0) {     /* the audit's client and citizen_ids */
        snprintf(err, errlen, "the database lacks migration 016_api_audit_reads.sql: start the "
                              "hub of this version once (it applies schemas/sql) before civibus-api");
        rc = -1;
    }
    PQclear(r);
    PQfinish(pg);
    return rc;
}
