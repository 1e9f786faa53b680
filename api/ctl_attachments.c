/*  ctl_attachments — see ctl_attachments.h. The folder is DIR/ab/<sha256>
    (lib/cv_attach.h); per fan-out folder: lock, list, one query for the
    names listed (sha256 = ANY, on the attachments_sha index), unlink what
    no row names and is older than the grace, fsync the folder, unlock. */
#include "ctl_attachments.h"

#include "api_attachments.h"
#include "api_util.h"
#include "cv_attach.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_AGE_S 3600

typedef struct {
    long long deleted, deleted_bytes, tmp, tmp_bytes, fresh, referenced, unknown, missing;
} gc_counts_t;

static int s_usage(void)
{
    fprintf(stderr, "usage: civibusctl --config FILE attachments gc [--dry-run] [--grace-minutes N]\n");
    return 2;
}

static bool s_query(PGconn *pg, const char *sql, int n, const char *const *v, PGresult **out)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "civibusctl: attachments gc: %s", PQresultErrorMessage(r));
        PQclear(r);
        return false;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return true;
}

static bool s_hex2(const char *s)
{
    for (int i = 0; i < 2; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[2] == 0;
}

static bool s_sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* One fan-out folder. false on a database or folder error (printed). */
static bool s_sweep(PGconn *pg, const char *sub, const char *fan, bool dry, time_t now, long grace_s,
                    gc_counts_t *c)
{
    DIR *d = opendir(sub);
    if (!d) {
        fprintf(stderr, "civibusctl: attachments gc: %s: %s\n", sub, strerror(errno));
        return false;
    }
    size_t cap = 64, n = 0;
    char (*names)[CV_ATTACH_SHA_LEN + 1] = malloc(cap * sizeof *names);
    struct dirent *e;
    char path[4400];
    while (names && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", sub, e->d_name) >= (int) sizeof path
            || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            c->unknown++;
            continue;
        }
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' && len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
            if (now - st.st_mtime >= TMP_AGE_S && (dry || unlink(path) == 0)) {
                c->tmp++;
                c->tmp_bytes += st.st_size;
            }
            continue;
        }
        if (!cv_attach_sha_ok(e->d_name) || strncmp(e->d_name, fan, 2) != 0) {
            c->unknown++;                       /* not ours: left alone */
            continue;
        }
        if (n == cap) {
            void *grown = realloc(names, 2 * cap * sizeof *names);
            if (!grown)
                break;
            names = grown;
            cap *= 2;
        }
        memcpy(names[n++], e->d_name, CV_ATTACH_SHA_LEN + 1);
    }
    closedir(d);
    if (!names) {
        fprintf(stderr, "civibusctl: attachments gc: out of memory\n");
        return false;
    }
    /* the names listed, as a text[] literal (hex digits only: no quoting) */
    char *arr = malloc(n * (CV_ATTACH_SHA_LEN + 1) + 3);
    bool ok = arr != NULL;
    if (ok) {
        char *w = arr;
        *w++ = '{';
        for (size_t i = 0; i < n; i++) {
            if (i)
                *w++ = ',';
            memcpy(w, names[i], CV_ATTACH_SHA_LEN);
            w += CV_ATTACH_SHA_LEN;
        }
        *w++ = '}';
        *w = 0;
    }
    PGresult *r = NULL;
    const char *v[1] = { arr };
    ok = ok && s_query(pg, "SELECT DISTINCT sha256 FROM attachments WHERE sha256 = ANY ($1::text[])", 1, v, &r);
    free(arr);
    long long deleted = 0;
    for (size_t i = 0; ok && i < n; i++) {
        bool named = false;
        for (int k = 0; k < PQntuples(r) && !named; k++)
            named = strcmp(PQgetvalue(r, k, 0), names[i]) == 0;
        if (named) {
            c->referenced++;
            continue;
        }
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", sub, names[i]);
        if (lstat(path, &st) != 0)
            continue;                           /* gone meanwhile */
        if (now - st.st_mtime < grace_s) {
            c->fresh++;
            continue;
        }
        if (!dry && unlink(path) != 0) {
            fprintf(stderr, "civibusctl: attachments gc: %s: %s\n", path, strerror(errno));
            ok = false;
            break;
        }
        deleted++;
        c->deleted++;
        c->deleted_bytes += st.st_size;
    }
    PQclear(r);
    free(names);
    if (ok && deleted && !dry && !s_sync_dir(sub)) {
        fprintf(stderr, "civibusctl: attachments gc: %s: fsync: %s\n", sub, strerror(errno));
        ok = false;
    }
    return ok;
}

/* Rows whose file is not in the folder: counted (data to restore). */
static bool s_missing(PGconn *pg, const char *dir, gc_counts_t *c)
{
    PGresult *r;
    if (!s_query(pg, "SELECT DISTINCT sha256 FROM attachments", 0, NULL, &r))
        return false;
    char path[4400];
    struct stat st;
    for (int i = 0; i < PQntuples(r); i++)
        if (cv_attach_path(dir, PQgetvalue(r, i, 0), path, sizeof path) != 0 || stat(path, &st) != 0)
            c->missing++;
    PQclear(r);
    return true;
}

static int s_gc(const cv_api_config_t *cfg, PGconn *pg, bool dry, long grace_s)
{
    gc_counts_t c = { 0 };
    const char *dir = cfg->attach_dir;
    DIR *d = opendir(dir);
    if (!d && errno != ENOENT) {
        fprintf(stderr, "civibusctl: attachments gc: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    time_t now = time(NULL);
    bool ok = true;
    const char *lock[1] = { CV_API_ATTACH_LOCK };
    struct dirent *e;
    while (ok && d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[4200];
        struct stat st;
        if (!s_hex2(e->d_name) || snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= (int) sizeof sub
            || lstat(sub, &st) != 0 || !S_ISDIR(st.st_mode)) {
            c.unknown++;
            continue;
        }
        /* exclusive: no registration is between its first write and its commit */
        ok = dry || s_query(pg, "SELECT pg_advisory_lock($1::bigint)", 1, lock, NULL);
        ok = ok && s_sweep(pg, sub, e->d_name, dry, now, grace_s, &c);
        if (!dry)
            ok = s_query(pg, "SELECT pg_advisory_unlock($1::bigint)", 1, lock, NULL) && ok;
    }
    if (d)
        closedir(d);
    ok = ok && s_missing(pg, dir, &c);
    if (!ok)
        return 1;
    printf("attachments gc%s: %lld files deleted (%lld bytes), %lld stray temporary files deleted (%lld bytes);"
           " kept: %lld named by a row, %lld unnamed but younger than %ld minutes, %lld not ours\n",
           dry ? " (dry run: nothing deleted; would be)" : "", c.deleted, c.deleted_bytes, c.tmp, c.tmp_bytes,
           c.referenced, c.fresh, grace_s / 60, c.unknown);
    if (c.missing)
        fprintf(stderr, "civibusctl: attachments gc: WARNING: %lld attachment rows name a file that is not in %s:"
                " restore it from the backup (docs/attachments.md)\n", c.missing, dir);
    return 0;
}

int cv_ctl_attachments_main(const cv_api_config_t *cfg, int argc, char **argv)
{
    bool dry = false;
    int64_t minutes = 60;
    if (argc < 2 || strcmp(argv[1], "gc") != 0)
        return s_usage();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry = true;
        else if (strcmp(argv[i], "--grace-minutes") == 0 && i + 1 < argc
                 && cv_api_parse_int(argv[i + 1], 0, 525600, &minutes))
            i++;
        else
            return s_usage();
    }
    if (!cfg) {
        fprintf(stderr, "civibusctl: attachments gc needs --config FILE (its attachments.dir)\n");
        return 2;
    }
    PGconn *pg = PQconnectdb(cfg->conninfo);
    int rc;
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "civibusctl: connection failed: %s", PQerrorMessage(pg));
        rc = 1;
    } else {
        rc = s_gc(cfg, pg, dry, (long) minutes * 60);
    }
    PQfinish(pg);
    return rc;
}
