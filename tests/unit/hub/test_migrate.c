/*  test_migrate — hub/store/cv_migrate.c's version checks, against a real
    PostgreSQL (tests/unit/pg_fixture.h: a fresh database, dropped at the end).
    Run from the repository root (the migrations are read from schemas/sql).

    - CV_SCHEMA_VERSION (lib/cv_schema.h, what the API refuses beyond) is
      the highest file number of schemas/sql: a new migration must bump it.
    - a database not migrated yet, then migrated: cv_migrate_check refuses,
      then accepts; a changed function file runs alone, a function created
      again makes zz_grants.sql run again (its grants were lost).
    - a database holding a migration newer than the files (a newer civibus
      migrated it): both cv_migrate_check and cv_migrate_apply refuse, with
      the versions in the message, and change nothing. */
#include "store/cv_migrate.h"
#include "store/cv_store.h"

#include "cv_schema.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pg_fixture.h"

static void test_schema_version_is_the_highest_file(void **state)
{
    (void) state;
    char err[512] = "";
    int highest = cv_migrate_highest(PGF_SQL_DIR, err, sizeof err);
    if (highest < 0)
        print_error("%s\n", err);
    if (highest != CV_SCHEMA_VERSION)
        print_error("schemas/sql goes up to %03d but lib/cv_schema.h says %03d: bump CV_SCHEMA_VERSION\n",
                    highest, CV_SCHEMA_VERSION);
    assert_int_equal(highest, CV_SCHEMA_VERSION);
}

static void test_check_before_and_after(void **state)
{
    (void) state;
    char err[512] = "";
    assert_int_equal(cv_migrate_check(pgf_db, PGF_SQL_DIR, err, sizeof err), -1);
    assert_non_null(strstr(err, "the database is at migration 000, this hub needs"));
    assert_non_null(strstr(err, "run civibus-hub --migrate as civibus_owner"));
    assert_true(cv_migrate_apply(pgf_db, PGF_SQL_DIR, err, sizeof err) > 0);
    assert_int_equal(cv_migrate_check(pgf_db, PGF_SQL_DIR, err, sizeof err), 0);
    assert_int_equal(cv_migrate(pgf_db, PGF_SQL_DIR, err, sizeof err), 0);   /* up to date */

    /* a function file the database does not hold as it is now */
    PQclear(PQexec(pgf_db, "UPDATE schema_repeatables SET checksum = 'x' WHERE name = 'functions/search.sql'"));
    assert_int_equal(cv_migrate_check(pgf_db, PGF_SQL_DIR, err, sizeof err), -1);
    assert_non_null(strstr(err, "functions/search.sql is not this hub's"));
    assert_int_equal(cv_migrate(pgf_db, PGF_SQL_DIR, err, sizeof err), 1);  /* it alone: OR REPLACE */
    assert_int_equal(cv_migrate_check(pgf_db, PGF_SQL_DIR, err, sizeof err), 0);
    /* a function dropped and created again has lost its grants: zz_grants.sql runs again */
    PQclear(PQexec(pgf_db, "UPDATE schema_repeatables SET checksum = 'x' WHERE name = 'functions/search.sql'"));
    PQclear(PQexec(pgf_db, "DROP FUNCTION cv_search_texts() CASCADE"));
    assert_int_equal(cv_migrate(pgf_db, PGF_SQL_DIR, err, sizeof err), 2);  /* it and zz_grants */
    pgf_expect("f", "SELECT proacl IS NULL FROM pg_proc WHERE proname = 'cv_search_texts'", NULL, NULL);
    pgf_expect("t", "SELECT prosecdef FROM pg_proc WHERE proname = 'cv_ingest'", NULL, NULL);

    /* one migration behind */
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM schema_migrations WHERE version = %d", CV_SCHEMA_VERSION);
    PQclear(PQexec(pgf_db, sql));
    assert_int_equal(cv_migrate_check(pgf_db, PGF_SQL_DIR, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "this hub needs %03d", CV_SCHEMA_VERSION);
    assert_non_null(strstr(err, want));
}

static void test_newer_database_refused(void **state)
{
    (void) state;
    char err[512] = "";
    PQclear(PQexec(pgf_db, "INSERT INTO schema_migrations (version, name, checksum)"
                           " VALUES (999, '999_future.sql', 'x')"));
    pgf_expect("1", "SELECT count(*) FROM schema_migrations WHERE version = 999", NULL, NULL);
    char want[200];
    snprintf(want, sizeof want, "the database holds migration 999 (newer than this civibus, which "
             "knows up to %03d): upgrade civibus before starting it", CV_SCHEMA_VERSION);
    assert_int_equal(cv_migrate_check(pgf_db, PGF_SQL_DIR, err, sizeof err), -1);
    assert_string_equal(err, want);
    err[0] = '\0';
    assert_int_equal(cv_migrate_apply(pgf_db, PGF_SQL_DIR, err, sizeof err), -1);
    assert_string_equal(err, want);
    err[0] = '\0';
    assert_int_equal(cv_migrate(pgf_db, PGF_SQL_DIR, err, sizeof err), -1);
    assert_string_equal(err, want);
    /* the missing migration of the previous test was not applied: nothing ran */
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM schema_migrations WHERE version = %d", CV_SCHEMA_VERSION);
    pgf_expect("0", sql, NULL, NULL);
}

static int s_setup(void **state)
{
    (void) state;
    return pgf_setup("migrate");
}

static int s_teardown(void **state)
{
    (void) state;
    return pgf_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_version_is_the_highest_file),
        cmocka_unit_test(test_check_before_and_after),
        cmocka_unit_test(test_newer_database_refused),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
