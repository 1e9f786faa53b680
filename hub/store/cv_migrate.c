/*  migrate — see cv_migrate.h.

    One pass: list the directory, sort by version, then for each file:
    BEGIN, advisory lock, look the version up, run the file or skip it,
    record it, COMMIT. The lock is per transaction, so a crash mid-way
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

static const char *s_table_sql =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

typedef struct {
    int version;
    char name[256];            /* file name, e.g. 001_init.sql */
    char path[4096];
} migration_t;

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

static int s_by_version(const void *a, const void *b)
{
    const migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static int s_list(const char *dir, migration_t **out, size_t *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open migrations directory: %s", dir, strerror(errno));
        return -1;
    }
    migration_t *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int version;
        if (!s_parse_name(e->d_name, &version) || strlen(e->d_name) >= sizeof list->name)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            migration_t *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                free(list);
                closedir(d);
                snprintf(err, errlen, "%s: out of memory", dir);
                return -1;
            }
            list = grown;
        }
        list[n].version = version;
        snprintf(list[n].name, sizeof list[n].name, "%s", e->d_name);
        snprintf(list[n].path, sizeof list[n].path, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n == 0) {
        free(list);
        snprintf(err, errlen, "%s: no migration files (NNN_name.sql)", dir);
        return -1;
    }
    qsort(list, n, sizeof *list, s_by_version);
    for (size_t i = 1; i < n; i++)
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

/* 1: applied, 0: already there, -1: error (transaction rolled back). */
static int s_apply(PGconn *conn, const migration_t *m, char *err, size_t errlen)
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
    if (s_exec(conn, "BEGIN", m->path, err, errlen) < 0)
        goto done;
    if (s_exec(conn, MIGRATE_LOCK_SQL, m->path, err, errlen) < 0
        || s_exec(conn, s_table_sql, m->path, err, errlen) < 0)
        goto rollback;

    const char *params[3] = { version, m->name, checksum };
    res = PQexecParams(conn, "SELECT checksum FROM schema_migrations WHERE version = $1::int",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_sql_error(conn, res, m->path, NULL, err, errlen);
        goto rollback;
    }
    if (PQntuples(res) == 1) {
        if (strcmp(PQgetvalue(res, 0, 0), checksum) != 0) {
            snprintf(err, errlen, "%s: version %d was applied with another content; applied "
                     "migrations are immutable, add a new file instead", m->path, m->version);
            goto rollback;
        }
        rc = s_exec(conn, "COMMIT", m->path, err, errlen) < 0 ? -1 : 0;
        goto done;
    }
    PQclear(res);

    res = PQexec(conn, text);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_sql_error(conn, res, m->path, text, err, errlen);
        goto rollback;
    }
    PQclear(res);
    res = PQexecParams(conn, "INSERT INTO schema_migrations (version, name, checksum) "
                       "VALUES ($1::int, $2, $3)", 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        s_sql_error(conn, res, m->path, NULL, err, errlen);
        goto rollback;
    }
    if (s_exec(conn, "COMMIT", m->path, err, errlen) < 0)
        goto done;
    cv_info("store", "applied migration %s", m->name);
    rc = 1;
    goto done;

rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
done:
    PQclear(res);
    free(text);
    return rc;
}

int cv_migrate(PGconn *conn, const char *dir, char *err, size_t errlen)
{
    migration_t *list;
    size_t n;
    if (s_list(dir, &list, &n, err, errlen) < 0)
        return -1;
    int applied = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = s_apply(conn, &list[i], err, errlen);
        if (rc < 0) {
            applied = -1;
            break;
        }
        applied += rc;
    }
    free(list);
    return applied;
}
