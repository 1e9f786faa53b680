/*  driver_filedrop_inbox — the drop folder: which file to read next, and
    where it goes afterwards.

    A file is complete when the software renamed it from its temporary
    name, so names matching the ignore patterns (".*", "*.tmp", "*.part",
    "*~" by default) are never read; min_age_ms adds a wait for software
    that writes in place. Only regular files count: done/ and error/ may
    live inside the inbox. Files leave the inbox with rename (atomic, same
    file system), never overwriting: a software that writes export.csv
    every night gets export.csv, export-2.csv, export-3.csv... in done/. */
#include "cv_filedrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool s_matches(const cv_filedrop_strs_t *patterns, const char *name, int flags)
{
    for (size_t i = 0; i < patterns->n; i++)
        if (fnmatch(patterns->v[i], name, flags) == 0)
            return true;
    return false;
}

cv_filedrop_format_t cv_filedrop_inbox_format(const cv_filedrop_conf_t *conf, const char *name)
{
    if (conf->csv_on && s_matches(&conf->csv_match, name, FNM_CASEFOLD))
        return CV_FILEDROP_FMT_CSV;
    if (conf->xml_on && s_matches(&conf->xml_match, name, FNM_CASEFOLD))
        return CV_FILEDROP_FMT_XML;
    return CV_FILEDROP_FMT_NONE;
}

/* Whether file a (name, mtime) comes before b in the configured order. */
static bool s_before(const cv_filedrop_conf_t *conf, const char *a, const struct timespec *ta,
                     const char *b, const struct timespec *tb)
{
    if (conf->order_mtime && (ta->tv_sec != tb->tv_sec || ta->tv_nsec != tb->tv_nsec))
        return ta->tv_sec < tb->tv_sec || (ta->tv_sec == tb->tv_sec && ta->tv_nsec < tb->tv_nsec);
    return strcmp(a, b) < 0;
}

int cv_filedrop_inbox_next(const cv_filedrop_conf_t *conf, bool (*skip)(void *arg, const char *name), void *arg,
                  char **name_out)
{
    DIR *dir = opendir(conf->inbox);
    if (!dir)
        return -1;
    char *best = NULL;
    struct timespec best_t = { 0, 0 };
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct dirent *de;
    while ((de = readdir(dir))) {
        const char *name = de->d_name;
        struct stat st;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || s_matches(&conf->ignore, name, 0)
            || (skip && skip(arg, name)) || fstatat(dirfd(dir), name, &st, 0) < 0 || !S_ISREG(st.st_mode))
            continue;
        int64_t age_ms = (int64_t) (now.tv_sec - st.st_mtim.tv_sec) * 1000
                         + (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000;
        if (age_ms < conf->min_age_ms)
            continue;
        if (best && !s_before(conf, name, &st.st_mtim, best, &best_t))
            continue;
        char *copy = strdup(name);
        if (!copy) {
            free(best);
            closedir(dir);
            errno = ENOMEM;
            return -1;
        }
        free(best);
        best = copy;
        best_t = st.st_mtim;
    }
    closedir(dir);
    *name_out = best;
    return best ? 1 : 0;
}

/* name with "-<n>" before its extension (n > 1), or name itself. */
static void s_variant(const char *name, int n, char *out, size_t len)
{
    const char *dot = strrchr(name, '.');
    if (n == 1)
        snprintf(out, len, "%s", name);
    else if (dot && dot != name)
        snprintf(out, len, "%.*s-%d%s", (int) (dot - name), name, n, dot);
    else
        snprintf(out, len, "%s-%d", name, n);
}

/* rename that never replaces an existing file. */
static int s_rename_new(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    struct stat st;                /* a file system without RENAME_NOREPLACE */
    if (lstat(to, &st) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(from, to);
}

static int s_write_reason(const char *path, const char *reason)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", reason);
    return fclose(f) == 0 ? 0 : -1;
}

int cv_filedrop_inbox_move(const cv_filedrop_conf_t *conf, const char *name, bool ok, const char *reason,
                  char *moved, size_t movedlen, char *err, size_t errlen)
{
    const char *dir = ok ? conf->done_dir : conf->error_dir;
    char from[4096], to[4096], final[512];
    snprintf(from, sizeof from, "%s/%s", conf->inbox, name);
    int n = 1;
    for (; n < 10000; n++) {
        s_variant(name, n, final, sizeof final);
        snprintf(to, sizeof to, "%s/%s", dir, final);
        if (s_rename_new(from, to) == 0)
            break;
        if (errno != EEXIST) {
            snprintf(err, errlen, "cannot move %s to %s: %s", name, dir, strerror(errno));
            return -1;
        }
    }
    if (n == 10000) {
        snprintf(err, errlen, "cannot move %s to %s: 9999 files of that name are there already", name, dir);
        return -1;
    }
    if (moved)
        snprintf(moved, movedlen, "%s", final);
    if (reason) {
        snprintf(to, sizeof to, "%s/%s.reason", dir, final);
        if (s_write_reason(to, reason) < 0) {
            snprintf(err, errlen, "moved %s to %s but cannot write %s.reason: %s", name, dir, final, strerror(errno));
            return -1;
        }
    }
    return 0;
}
