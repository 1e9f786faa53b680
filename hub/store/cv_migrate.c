/*  migrate — see cv_migrate.h.

    One pass: list the directory, sort by version, read the manifest of
    rewritten migrations (dir/rewritten), refuse a database that those files
    can no longer finish (s_check_partial), then for each numbered file:
    BEGIN, advisory lock, look the version up, run the file or skip it (or
    replace a listed former checksum), record it, COMMIT. Then the same for
    each repeatable file of dir/functions, by name, keyed by its checksum in
    schema_repeatables. The lock is per transaction, so a crash mid-way
    leaves nothing half-applied and nothing locked. */
#include "cv_migrate.h"

#include "cv_hash.h"
#include "cv_log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(1667856994, 1)"   /* 'civb', 1 */
#define MAX_MIGRATION_BYTES (16L * 1024 * 1024)
#define REPEATABLE_DIR "functions"      /* under the migrations directory */
#define MANIFEST_FILE "rewritten"       /* under the migrations directory */

static const char *s_table_sql =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

static const char *s_repeatables_sql =
    "CREATE TABLE IF NOT EXISTS schema_repeatables ("
    " name text PRIMARY KEY,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

typedef struct {
    int version;               /* numbered: NNN; repeatable: 0 */
    char name[300];            /* 001_init.sql, or functions/ingest.sql */
    char path[4096 + 300];     /* the directory (at most 4096), '/', name */
} migration_t;

/* A line of the manifest: a version and a checksum its file had before it
   was rewritten. */
typedef struct {
    int version;
    char checksum[CV_HASH_HEX_LEN + 1];
} former_t;

typedef struct {
    former_t *list;
    size_t n;
} manifest_t;

/* "NNN_name.sql": digits, '_', [A-Za-z0-9_-]+, ".sql". */
static bool s_parse_name(const char *name, int *version)
{
    const char *p = name;
    long v = 0;
    while (isdigit((unsigned char) *p) && p - name < 9)
        v = v * 10 + (*p++ - '0');
    if (p == name || *p != '_')
        return false;
    const char *stem = ++p;
    while (isalnum((unsigned char) *p) || *p == '_' || *p == '-')
        p++;
    if (p == stem || strcmp(p, ".sql") != 0)
        return false;
    *version = (int) v;
    return true;
}

/* "name.sql" with name [A-Za-z0-9_-]+. */
static bool s_repeatable_name(const char *name)
{
    const char *p = name;
    while (isalnum((unsigned char) *p) || *p == '_' || *p == '-')
        p++;
    return p != name && strcmp(p, ".sql") == 0;
}

static int s_by_version(const void *a, const void *b)
{
    const migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static int s_by_name(const void *a, const void *b)
{
    return strcmp(((const migration_t *) a)->name, ((const migration_t *) b)->name);
}

/* The numbered files of dir (at least one, sorted by version, versions
   unique), or with repeatable the files of dir/functions (sorted by name;
   none when that folder does not exist). */
static int s_list(const char *dir, bool repeatable, migration_t **out, size_t *count,
                  char *err, size_t errlen)
{
    char where[4096];
    snprintf(where, sizeof where, repeatable ? "%s/" REPEATABLE_DIR : "%s", dir);
    *out = NULL;
    *count = 0;
    DIR *d = opendir(where);
    if (!d && repeatable && errno == ENOENT)
        return 0;
    if (!d) {
        snprintf(err, errlen, "%s: cannot open migrations directory: %s", where, strerror(errno));
        return -1;
    }
    migration_t *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int version = 0;
        if (repeatable ? !s_repeatable_name(e->d_name) : !s_parse_name(e->d_name, &version))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            migration_t *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                free(list);
                closedir(d);
                snprintf(err, errlen, "%s: out of memory", where);
                return -1;
            }
            list = grown;
        }
        list[n].version = version;
        snprintf(list[n].name, sizeof list[n].name, repeatable ? REPEATABLE_DIR "/%s" : "%s", e->d_name);
        snprintf(list[n].path, sizeof list[n].path, "%s/%s", where, e->d_name);
        n++;
    }
    closedir(d);
    if (n == 0 && !repeatable) {
        free(list);
        snprintf(err, errlen, "%s: no migration files (NNN_name.sql)", dir);
        return -1;
    }
    qsort(list, n, sizeof *list, repeatable ? s_by_name : s_by_version);
    for (size_t i = 1; i < n && !repeatable; i++)
        if (list[i].version == list[i - 1].version) {
            snprintf(err, errlen, "%s: version %d is used by %s and %s", dir,
                     list[i].version, list[i - 1].name, list[i].name);
            free(list);
            return -1;
        }
    *out = list;
    *count = n;
    return 0;
}

static char *s_read(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || len > MAX_MIGRATION_BYTES || fseek(f, 0, SEEK_SET) != 0)
        snprintf(err, errlen, "%s: unreadable or larger than %ld bytes", path, MAX_MIGRATION_BYTES);
    else if (!(text = malloc((size_t) len + 1)))
        snprintf(err, errlen, "%s: out of memory", path);
    else if (fread(text, 1, (size_t) len, f) != (size_t) len) {
        snprintf(err, errlen, "%s: read error", path);
        free(text);
        text = NULL;
    } else
        text[len] = '\0';
    fclose(f);
    return text;
}

/* 1-based line of a 1-based character position (PostgreSQL counts
   characters, not bytes). */
static int s_line_of(const char *text, long position)
{
    int line = 1;
    for (const char *p = text; *p && position > 1; p++) {
        if (((unsigned char) *p & 0xC0) == 0x80)
            continue;                   /* UTF-8 continuation byte */
        if (*p == '\n')
            line++;
        position--;
    }
    return line;
}

/* Formats a failed result: "where[:line]: SQLSTATE xxxxx: message". */
static void s_sql_error(PGconn *conn, PGresult *res, const char *where, const char *text,
                        char *err, size_t errlen)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    if (!msg)
        msg = PQerrorMessage(conn);
    char line[24] = "";
    if (pos && text)
        snprintf(line, sizeof line, ":%d", s_line_of(text, atol(pos)));
    snprintf(err, errlen, "%s%s: SQLSTATE %s: %.*s", where, line, state ? state : "none",
             (int) strcspn(msg, "\n"), msg);
}

static int s_exec(PGconn *conn, const char *sql, const char *where, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        s_sql_error(conn, res, where, NULL, err, errlen);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* dir/rewritten: "version checksum [file]" lines, '#' comments. A missing
   file is an empty manifest. */
static int s_manifest(const char *dir, manifest_t *m, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" MANIFEST_FILE, dir);
    m->list = NULL;
    m->n = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        const char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        former_t e;
        char hex[CV_HASH_HEX_LEN + 2];
        if (sscanf(p, "%d %65s", &e.version, hex) != 2 || strlen(hex) != CV_HASH_HEX_LEN
            || strspn(hex, "0123456789abcdef") != CV_HASH_HEX_LEN) {
            snprintf(err, errlen, "%s:%d: expected \"version sha256-hex [file]\"", path, lineno);
            rc = -1;
            break;
        }
        memcpy(e.checksum, hex, sizeof e.checksum);
        if (m->n == cap) {
            cap = cap ? cap * 2 : 16;
            former_t *grown = realloc(m->list, cap * sizeof *grown);
            if (!grown) {
                snprintf(err, errlen, "%s: out of memory", path);
                rc = -1;
                break;
            }
            m->list = grown;
        }
        m->list[m->n++] = e;
    }
    fclose(f);
    if (rc < 0) {
        free(m->list);
        m->list = NULL;
        m->n = 0;
    }
    return rc;
}

/* The manifest lists this version (with checksum, when not NULL). */
static bool s_listed(const manifest_t *m, int version, const char *checksum)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->list[i].version == version && (!checksum || strcmp(m->list[i].checksum, checksum) == 0))
            return true;
    return false;
}

/* BEGIN, the runner's lock, its two tables. On failure nothing is left open. */
static int s_begin(PGconn *conn, const char *where, char *err, size_t errlen)
{
    if (s_exec(conn, "BEGIN", where, err, errlen) < 0)
        return -1;
    if (s_exec(conn, MIGRATE_LOCK_SQL, where, err, errlen) < 0
        || s_exec(conn, s_table_sql, where, err, errlen) < 0
        || s_exec(conn, s_repeatables_sql, where, err, errlen) < 0) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    return 0;
}

/* A file holding only comments is an empty query: nothing to run. */
static bool s_ran(PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

/* Inside s_begin's transaction: runs the file's text, then record_sql (which
   records it), and commits. 1: applied, -1: error (rolled back). */
static int s_run(PGconn *conn, const migration_t *m, const char *text, const char *record_sql,
                 int nparams, const char *const *params, const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, text);
    if (s_ran(res)) {
        PQclear(res);
        res = PQexecParams(conn, record_sql, nparams, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            if (s_exec(conn, "COMMIT", m->path, err, errlen) < 0)
                return -1;
            cv_info("store", "applied %s %s", what, m->name);
            return 1;
        }
        s_sql_error(conn, res, m->path, NULL, err, errlen);
    } else
        s_sql_error(conn, res, m->path, text, err, errlen);
    PQclear(res);
    PQclear(PQexec(conn, "ROLLBACK"));
    return -1;
}

/* A database that applied the files listed in the manifest in their former
   content (one of its versions still has its former checksum) but not all
   of them: the rewritten files cannot finish it (their backfills needed the
   functions that moved to functions/). Refused before anything changes. */
static int s_check_partial(PGconn *conn, const char *dir, const manifest_t *m,
                           char *err, size_t errlen)
{
    if (m->n == 0)
        return 0;
    if (s_begin(conn, dir, err, errlen) < 0)
        return -1;
    PGresult *res = PQexec(conn, "SELECT version, checksum FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_sql_error(conn, res, dir, NULL, err, errlen);
        PQclear(res);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    bool former = false;
    int missing = 0;
    for (int r = 0; r < PQntuples(res); r++)
        former = former || s_listed(m, atoi(PQgetvalue(res, r, 0)), PQgetvalue(res, r, 1));
    for (size_t i = 0; i < m->n && former && !missing; i++) {
        bool recorded = false;
        for (int r = 0; r < PQntuples(res) && !recorded; r++)
            recorded = atoi(PQgetvalue(res, r, 0)) == m->list[i].version;
        if (!recorded)
            missing = m->list[i].version;
    }
    PQclear(res);
    if (missing) {
        snprintf(err, errlen, "%s: version %d is pending on a database migrated with the former "
                 "files, and was rewritten when the functions moved to %s/ (" MANIFEST_FILE
                 "): bring the database to the last version listed there with a hub from "
                 "before that change first", dir, missing, REPEATABLE_DIR);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    return s_exec(conn, "COMMIT", dir, err, errlen);
}

/* 1: applied, 0: already there, -1: error (transaction rolled back). */
static int s_apply(PGconn *conn, const migration_t *m, const manifest_t *manifest,
                   const char *refuse, char *err, size_t errlen)
{
    char *text = s_read(m->path, err, errlen);
    if (!text)
        return -1;
    char checksum[CV_HASH_HEX_LEN + 1];
    cv_hash_bytes(text, strlen(text), checksum);
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);

    int rc = -1;
    PGresult *res = NULL;
    if (s_begin(conn, m->path, err, errlen) < 0)
        goto done;

    const char *params[3] = { version, m->name, checksum };
    res = PQexecParams(conn, "SELECT checksum FROM schema_migrations WHERE version = $1::int",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_sql_error(conn, res, m->path, NULL, err, errlen);
        goto rollback;
    }
    if (PQntuples(res) == 1) {
        const char *recorded = PQgetvalue(res, 0, 0);
        bool former = strcmp(recorded, checksum) != 0 && s_listed(manifest, m->version, recorded);
        if (strcmp(recorded, checksum) != 0 && !former) {
            snprintf(err, errlen, "%s: version %d was applied with another content; applied "
                     "migrations are immutable, add a new file instead", m->path, m->version);
            goto rollback;
        }
        if (former) {
            PQclear(res);
            const char *upd[2] = { version, checksum };
            res = PQexecParams(conn, "UPDATE schema_migrations SET checksum = $2 WHERE version = $1::int",
                               2, NULL, upd, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                s_sql_error(conn, res, m->path, NULL, err, errlen);
                goto rollback;
            }
        }
        rc = s_exec(conn, "COMMIT", m->path, err, errlen) < 0 ? -1 : 0;
        if (rc == 0 && former)
            cv_info("store", "migration %s: its former content's checksum (listed in %s) "
                    "replaced by the current one", m->name, MANIFEST_FILE);
        goto done;
    }
    if (refuse) {               /* pending, on a database a newer civibus migrated */
        snprintf(err, errlen, "%s", refuse);
        goto rollback;
    }
    PQclear(res);
    res = NULL;
    rc = s_run(conn, m, text, "INSERT INTO schema_migrations (version, name, checksum) "
               "VALUES ($1::int, $2, $3)", 3, params, "migration", err, errlen);
    goto done;

rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
done:
    PQclear(res);
    free(text);
    return rc;
}

/* A repeatable file: run when its checksum differs from the one recorded
   (or none is), or always with again. 1: applied, 0: unchanged, -1: error (rolled back). */
static int s_apply_repeatable(PGconn *conn, const migration_t *m, bool again,
                              char *err, size_t errlen)
{
    char *text = s_read(m->path, err, errlen);
    if (!text)
        return -1;
    char checksum[CV_HASH_HEX_LEN + 1];
    cv_hash_bytes(text, strlen(text), checksum);

    int rc = -1;
    PGresult *res = NULL;
    if (s_begin(conn, m->path, err, errlen) < 0)
        goto done;
    const char *params[2] = { m->name, checksum };
    res = PQexecParams(conn, "SELECT checksum FROM schema_repeatables WHERE name = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_sql_error(conn, res, m->path, NULL, err, errlen);
        goto rollback;
    }
    if (!again && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), checksum) == 0) {
        rc = s_exec(conn, "COMMIT", m->path, err, errlen) < 0 ? -1 : 0;
        goto done;
    }
    PQclear(res);
    res = NULL;
    rc = s_run(conn, m, text, "INSERT INTO schema_repeatables (name, checksum) VALUES ($1, $2) "
               "ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
               2, params, "repeatable", err, errlen);
    goto done;

rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
done:
    PQclear(res);
    free(text);
    return rc;
}

/* One boolean query: 1 (true), 0 (false), -1 with the reason in err. */
static int s_bool(PGconn *conn, const char *sql, const char *where, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    int rc = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    else
        s_sql_error(conn, res, where, NULL, err, errlen);
    PQclear(res);
    return rc;
}

/* The highest version recorded in schema_migrations (0 when the table does
   not exist or is empty), or -1 with a reason. */
static int s_recorded_max(PGconn *conn, const char *dir, char *err, size_t errlen)
{
    int exists = s_bool(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL", dir, err, errlen);
    if (exists <= 0)
        return exists;
    PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    int v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        v = atoi(PQgetvalue(res, 0, 0));
    else
        s_sql_error(conn, res, dir, NULL, err, errlen);
    PQclear(res);
    return v;
}

/* A database holding a migration this civibus does not know was migrated by a
   newer civibus: nothing may run against it. 1 (and why in refuse) when it
   does, 0 when not, -1 on an error. */
static int s_newer(PGconn *conn, const char *dir, int highest, char *refuse, size_t len,
                   char *err, size_t errlen)
{
    int recorded = s_recorded_max(conn, dir, err, errlen);
    if (recorded < 0)
        return -1;
    if (recorded <= highest)
        return 0;
    snprintf(refuse, len, "the database holds migration %03d (newer than this civibus, which "
             "knows up to %03d): upgrade civibus before starting it", recorded, highest);
    return 1;
}

static int s_refuse_newer(PGconn *conn, const char *dir, int highest, char *err, size_t errlen)
{
    int newer = s_newer(conn, dir, highest, err, errlen, err, errlen);
    return newer == 0 ? 0 : -1;
}

/* 1 when a civibus function (cv_*) of the schema has its default privileges
   (no ACL: created since the grants last ran), 0 when none, -1 on an error. */
static int s_fresh_functions(PGconn *conn, const char *where, char *err, size_t errlen)
{
    return s_bool(conn, "SELECT EXISTS (SELECT 1 FROM pg_proc"
                        " WHERE pronamespace = current_schema()::regnamespace"
                        " AND proname LIKE 'cv\\_%' AND proacl IS NULL)", where, err, errlen);
}

int cv_migrate_highest(const char *dir, char *err, size_t errlen)
{
    migration_t *list = NULL;
    size_t n = 0;
    if (s_list(dir, false, &list, &n, err, errlen) < 0)
        return -1;
    int highest = list[n - 1].version;
    free(list);
    return highest;
}

int cv_migrate_apply(PGconn *conn, const char *dir, char *err, size_t errlen)
{
    migration_t *list = NULL, *rep = NULL;
    size_t n = 0, nrep = 0;
    manifest_t manifest = { NULL, 0 };
    int applied = -1;
    char refuse[256];
    int newer = 0;
    if (s_list(dir, false, &list, &n, err, errlen) < 0
        || s_list(dir, true, &rep, &nrep, err, errlen) < 0
        || (newer = s_newer(conn, dir, list[n - 1].version, refuse, sizeof refuse, err, errlen)) < 0
        || s_manifest(dir, &manifest, err, errlen) < 0
        || s_check_partial(conn, dir, &manifest, err, errlen) < 0)
        goto done;
    /* on a newer database each file is still checked against what is recorded (an
       applied file that changed says so first), but nothing runs */
    applied = 0;
    for (size_t i = 0; i < n + nrep; i++) {
        int rc;
        if (i < n)
            rc = s_apply(conn, &list[i], &manifest, newer ? refuse : NULL, err, errlen);
        else if (newer) {
            snprintf(err, errlen, "%s", refuse);
            rc = -1;
        } else {
            /* a zz_ file (the grants) runs again, unchanged, when a function was
               created since it ran (dropped and created again, it lost its grants) */
            bool again = false;
            if (applied > 0 && strncmp(rep[i - n].name, REPEATABLE_DIR "/zz_",
                                       strlen(REPEATABLE_DIR "/zz_")) == 0) {
                int fresh = s_fresh_functions(conn, rep[i - n].path, err, errlen);
                if (fresh < 0) {
                    applied = -1;
                    break;
                }
                again = fresh > 0;
            }
            rc = s_apply_repeatable(conn, &rep[i - n], again, err, errlen);
        }
        if (rc < 0) {
            applied = -1;
            break;
        }
        applied += rc;
    }
done:
    free(list);
    free(rep);
    free(manifest.list);
    return applied;
}

int cv_migrate_check(PGconn *conn, const char *dir, char *err, size_t errlen)
{
    migration_t *list = NULL, *rep = NULL;
    size_t n = 0, nrep = 0;
    int rc = -1;
    PGresult *res = NULL;
    char *text = NULL;
    if (s_list(dir, false, &list, &n, err, errlen) < 0
        || s_list(dir, true, &rep, &nrep, err, errlen) < 0
        || s_refuse_newer(conn, dir, list[n - 1].version, err, errlen) < 0)
        goto done;
    int recorded = s_recorded_max(conn, dir, err, errlen);
    if (recorded < 0)
        goto done;
    if (recorded == 0) {
        snprintf(err, errlen, "the database is at migration 000, this hub needs %03d: "
                 "run civibus-hub --migrate as civibus_owner", list[n - 1].version);
        goto done;
    }
    res = PQexec(conn, "SELECT version FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_sql_error(conn, res, dir, NULL, err, errlen);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (int r = 0; r < PQntuples(res) && !found; r++)
            found = atoi(PQgetvalue(res, r, 0)) == list[i].version;
        if (!found) {
            snprintf(err, errlen, "the database is at migration %03d, this hub needs %03d (%s "
                     "is missing): run civibus-hub --migrate as civibus_owner",
                     recorded, list[n - 1].version, list[i].name);
            goto done;
        }
    }
    PQclear(res);
    res = PQexec(conn, "SELECT name, checksum FROM schema_repeatables");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_sql_error(conn, res, dir, NULL, err, errlen);
        goto done;
    }
    for (size_t i = 0; i < nrep; i++) {
        if (!(text = s_read(rep[i].path, err, errlen)))
            goto done;
        char checksum[CV_HASH_HEX_LEN + 1];
        cv_hash_bytes(text, strlen(text), checksum);
        free(text);
        text = NULL;
        bool same = false;
        for (int r = 0; r < PQntuples(res) && !same; r++)
            same = strcmp(PQgetvalue(res, r, 0), rep[i].name) == 0
                && strcmp(PQgetvalue(res, r, 1), checksum) == 0;
        if (!same) {
            snprintf(err, errlen, "the database's %s is not this hub's: run civibus-hub "
                     "--migrate as civibus_owner", rep[i].name);
            goto done;
        }
    }
    rc = 0;
done:
    PQclear(res);
    free(text);
    free(list);
    free(rep);
    return rc;
}

/* 1: the connected role may change the schema (a superuser, a member of the
   role owning schema_migrations, or anyone who may create tables when that
   table does not exist yet), 0: not, -1: error. */
static int s_may_migrate(PGconn *conn, const char *dir, char *err, size_t errlen)
{
    return s_bool(conn,
        "SELECT r.rolsuper OR coalesce(pg_has_role(current_user, c.relowner, 'USAGE'),"
        "                              has_schema_privilege(current_schema(), 'CREATE'))"
        " FROM pg_roles r LEFT JOIN pg_class c ON c.oid = to_regclass('schema_migrations')"
        " WHERE r.rolname = current_user", dir, err, errlen);
}

int cv_migrate(PGconn *conn, const char *dir, char *err, size_t errlen)
{
    int may = s_may_migrate(conn, dir, err, errlen);
    if (may < 0)
        return -1;
    if (may)
        return cv_migrate_apply(conn, dir, err, errlen);
    if (cv_migrate_check(conn, dir, err, errlen) < 0)
        return -1;
    cv_info("store", "schema checked (this role does not own it, so it migrates nothing)");
    return 0;
}
