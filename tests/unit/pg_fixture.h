/*  pg_fixture — the PostgreSQL side of the unit tests that need a database
    (test_store, test_identity, test_commander): a fresh database per test
    program, made on the server the PG* environment names and dropped at
    the end, the test's own connection to it, and one-value query helpers
    that fail the test with the query and the server's message.

    Header-only (static inline): each test program includes it once; the
    Makefile links every tests/unit/test_*.c on its own. Needs cmocka.h,
    libpq-fe.h and cv_store.h first. */
#ifndef PG_FIXTURE_H
#define PG_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PGF_SQL_DIR "schemas/sql"

static char pgf_dbname[64];
static char pgf_conninfo[128];
static PGconn *pgf_db;              /* the test's own connection to its database */

static inline PGconn *pgf_connect(const char *dbname)
{
    const char *keys[] = { "dbname", NULL };
    const char *values[] = { dbname, NULL };
    PGconn *c = PQconnectdbParams(keys, values, 0);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to PostgreSQL (database %s): %s"
                "  start one with: deploy/pgctl.sh start DIR && eval \"$(deploy/pgctl.sh env DIR)\"\n",
                dbname, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Runs a command in the maintenance database (PGDATABASE, else postgres). */
static inline int pgf_admin_exec(const char *sql)
{
    const char *maint = getenv("PGDATABASE") ? getenv("PGDATABASE") : "postgres";
    PGconn *admin = pgf_connect(maint);
    if (!admin)
        return -1;
    PGresult *res = PQexec(admin, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc < 0)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(admin));
    PQclear(res);
    PQfinish(admin);
    return rc;
}

/* Group setup: database civibus_test_NAME_PID, and pgf_db connected to it. */
static inline int pgf_setup(const char *name)
{
    snprintf(pgf_dbname, sizeof pgf_dbname, "civibus_test_%s_%ld", name, (long) getpid());
    snprintf(pgf_conninfo, sizeof pgf_conninfo, "dbname=%s", pgf_dbname);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", pgf_dbname);
    if (pgf_admin_exec(sql) < 0)
        return -1;
    pgf_db = pgf_connect(pgf_dbname);
    return pgf_db ? 0 : -1;
}

static inline int pgf_teardown(void)
{
    if (pgf_db)
        PQfinish(pgf_db);
    pgf_db = NULL;
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", pgf_dbname);
    return pgf_admin_exec(sql);
}

/* A store on the test database (migrations applied). */
static inline cv_store_t *pgf_store(void)
{
    char err[512] = "";
    cv_store_t *store = cv_store_new(pgf_conninfo, PGF_SQL_DIR, err, sizeof err);
    if (!store)
        print_error("cv_store_new: %s\n", err);
    assert_non_null(store);
    return store;
}

/* First column of the first row, malloc'd, or NULL (no row / SQL NULL). */
static inline char *pgf_value(const char *sql, const char *p1, const char *p2)
{
    const char *params[2] = { p1, p2 };
    int np = p2 ? 2 : p1 ? 1 : 0;
    PGresult *res = PQexecParams(pgf_db, sql, np, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        print_error("query failed: %s\n%s", sql, PQerrorMessage(pgf_db));
        PQclear(res);
        fail();
    }
    char *out = NULL;
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        out = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

static inline long long pgf_number(const char *sql, const char *p1, const char *p2)
{
    char *v = pgf_value(sql, p1, p2);
    long long n = v ? atoll(v) : -1;
    free(v);
    return n;
}

/* The query's value is `expected` (NULL: no row or SQL NULL). */
static inline void pgf_expect(const char *expected, const char *sql, const char *p1, const char *p2)
{
    char *v = pgf_value(sql, p1, p2);
    if (!expected)
        assert_null(v);
    else {
        if (!v || strcmp(v, expected) != 0)
            print_error("%s\n  expected: %s\n  got:      %s\n", sql, expected, v ? v : "(null)");
        assert_non_null(v);
        assert_string_equal(v, expected);
    }
    free(v);
}

/* The statement fails with SQLSTATE `state`. */
static inline void pgf_refused(const char *state, const char *sql, const char *p1, const char *p2)
{
    const char *params[2] = { p1, p2 };
    int np = p2 ? 2 : p1 ? 1 : 0;
    PGresult *res = PQexecParams(pgf_db, sql, np, NULL, params, NULL, NULL, 0);
    const char *got = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!got || strcmp(got, state) != 0)
        print_error("%s\n  expected SQLSTATE %s, got %s\n", sql, state, got ? got : "(success)");
    assert_non_null(got);
    assert_string_equal(got, state);
    PQclear(res);
}

#endif
