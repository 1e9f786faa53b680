/*  api_db — see api_db.h. */
#include "api_db.h"

#include "cv_alloc.h"
#include "cv_log.h"
#include "cv_schema.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *s_conninfo;
static pthread_key_t s_key;
static bool s_key_made;
static atomic_bool s_identity;          /* identity and search migrations installed (same for all) */

static void s_close(void *pg)
{
    PQfinish(pg);
}

int cv_api_db_init(const char *conninfo)
{
    free(s_conninfo);
    s_conninfo = cv_zstrdup(conninfo);
    if (!s_key_made && pthread_key_create(&s_key, s_close) != 0)
        return -1;
    s_key_made = true;
    return 0;
}

void cv_api_db_term(void)
{
    if (s_key_made) {
        PGconn *pg = pthread_getspecific(s_key);
        if (pg) {
            PQfinish(pg);
            pthread_setspecific(s_key, NULL);
        }
        pthread_key_delete(s_key);
        s_key_made = false;
    }
    free(s_conninfo);
    s_conninfo = NULL;
}

static bool s_ok(PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
}

static PGconn *s_open(void)
{
    PGconn *pg = PQconnectdb(s_conninfo ? s_conninfo : "");
    if (PQstatus(pg) != CONNECTION_OK) {
        cv_warn("db", "cannot connect to PostgreSQL");
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
            cv_error("db", "cannot prepare statement q%d: SQLSTATE %s", i, st ? st : "?");
            PQclear(r);
            PQfinish(pg);
            return NULL;
        }
        PQclear(r);
    }
    return pg;
}

static PGconn *s_conn(void)
{
    PGconn *pg = pthread_getspecific(s_key);
    if (pg && PQstatus(pg) != CONNECTION_OK) {
        PQfinish(pg);
        pg = NULL;
        pthread_setspecific(s_key, NULL);
    }
    if (!pg) {
        pg = s_open();
        pthread_setspecific(s_key, pg);
    }
    return pg;
}

PGresult *cv_api_db_exec(cv_sql_t stmt, int nparams, const char *const *values)
{
    PGconn *pg = s_conn();
    if (!pg)
        return NULL;
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

PGresult *cv_api_db_exec_params(const char *sql, int nparams, const char *const *values)
{
    PGconn *pg = s_conn();
    if (!pg)
        return NULL;
    return PQexecParams(pg, sql, nparams, NULL, values, NULL, NULL, 0);
}

int cv_api_db_check_schema(const char *conninfo, char *err, size_t errlen)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(pg));
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = 0;
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
