/*  api_web — web/'s files from memory (api_web.h has the design).

    Loading walks web.dir two levels deep (web/PAGE/FILE): names of
    [a-z0-9._-] only, not starting with '.', known extensions only, regular
    files only (no symlinks followed out of the folder). Serving matches the
    first path segment against the folders, then the file. A reload (SIGHUP)
    reads the folder again into a new set and swaps it in whole: a page is
    served from one set, never from half of each. */
#include "api_web.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "cv_hash.h"

#define MAX_FILES 128
#define MAX_FILE_BYTES (512 * 1024)

typedef struct {
    char folder[64];             /* "suivi", "assets" */
    char name[96];               /* "index.html", "suivi.js" */
    char *data;                  /* NUL-terminated */
    size_t len;
    const char *type;
    char etag[24];               /* "\"" + 16 hex + "\"" */
} web_file_t;

typedef struct {
    web_file_t files[MAX_FILES];
    size_t n;
} web_set_t;

/* The set served, swapped whole by a reload under the write lock; workers
   serve under the read lock and copy what they answer. */
struct cv_api_web {
    pthread_rwlock_t lock;
    web_set_t *set;
    char *dir;
};

static const struct { const char *ext, *type; } s_types[] = {
    { ".html", "text/html; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".json", "application/json; charset=utf-8" },
    { ".svg", "image/svg+xml" },
    { ".txt", "text/plain; charset=utf-8" },
};

static const char *s_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof s_types / sizeof *s_types; i++)
        if (strcmp(dot, s_types[i].ext) == 0)
            return s_types[i].type;
    return NULL;
}

static bool s_name_ok(const char *name, size_t max)
{
    size_t n = strlen(name);
    if (n == 0 || n >= max || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int s_read(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        close(fd);
        snprintf(err, errlen, "%s: larger than %d bytes", path, MAX_FILE_BYTES);
        return -1;
    }
    *data = cv_zmalloc((size_t) st.st_size + 1);
    ssize_t got = read(fd, *data, (size_t) st.st_size);
    close(fd);
    if (got != st.st_size) {
        free(*data);
        snprintf(err, errlen, "%s: short read", path);
        return -1;
    }
    (*data)[got] = '\0';
    *len = (size_t) got;
    return 0;
}

static int s_load_folder(web_set_t *self, const char *dir, const char *folder, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, folder);
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !s_type(e->d_name))
            continue;                            /* dot files, READMEs, sources: not served */
        if (!s_name_ok(e->d_name, sizeof self->files[0].name)) {
            snprintf(err, errlen, "%s/%s: a served file's name is [a-z0-9._-]", path, e->d_name);
            rc = -1;
        } else if (self->n == MAX_FILES) {
            snprintf(err, errlen, "%s: more than %d files", dir, MAX_FILES);
            rc = -1;
        } else {
            web_file_t *f = &self->files[self->n];
            char file[4400];
            snprintf(file, sizeof file, "%s/%.255s", path, e->d_name);
            if ((rc = s_read(file, &f->data, &f->len, err, errlen)) == 0) {
                snprintf(f->folder, sizeof f->folder, "%.63s", folder);
                snprintf(f->name, sizeof f->name, "%.95s", e->d_name);
                f->type = s_type(e->d_name);
                char hex[CV_HASH_HEX_LEN + 1];
                cv_hash_bytes(f->data, f->len, hex);
                snprintf(f->etag, sizeof f->etag, "\"%.16s\"", hex);
                self->n++;
            }
        }
    }
    closedir(d);
    return rc;
}

static void s_set_free(web_set_t **set_p)
{
    if (!*set_p)
        return;
    for (size_t i = 0; i < (*set_p)->n; i++)
        free((*set_p)->files[i].data);
    free(*set_p);
    *set_p = NULL;
}

static web_set_t *s_load(const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot read the pages' folder (web.dir): %s", dir, strerror(errno));
        return NULL;
    }
    web_set_t *self = cv_zcalloc(1, sizeof *self);
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (!s_name_ok(e->d_name, sizeof self->files[0].folder)) {
            snprintf(err, errlen, "%s: a page folder's name is [a-z0-9._-]", path);
            rc = -1;
        } else
            rc = s_load_folder(self, dir, e->d_name, err, errlen);
    }
    closedir(d);
    if (rc < 0)
        s_set_free(&self);
    return self;
}

cv_api_web_t *cv_api_web_new(const char *dir, char *err, size_t errlen)
{
    web_set_t *set = s_load(dir, err, errlen);
    if (!set)
        return NULL;
    cv_api_web_t *self = cv_zcalloc(1, sizeof *self);
    pthread_rwlock_init(&self->lock, NULL);
    self->set = set;
    self->dir = cv_zstrdup(dir);
    return self;
}

int cv_api_web_reload(cv_api_web_t *self, size_t *nfiles, char *err, size_t errlen)
{
    web_set_t *set = s_load(self->dir, err, errlen);
    if (!set)
        return -1;
    pthread_rwlock_wrlock(&self->lock);
    web_set_t *old = self->set;
    self->set = set;
    pthread_rwlock_unlock(&self->lock);
    s_set_free(&old);
    if (nfiles)
        *nfiles = set->n;
    return 0;
}

void cv_api_web_destroy(cv_api_web_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_set_free(&(*self_p)->set);
    pthread_rwlock_destroy(&(*self_p)->lock);
    free((*self_p)->dir);
    free(*self_p);
    *self_p = NULL;
}

static const web_file_t *s_find(const web_set_t *self, const char *folder, const char *name)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->files[i].folder, folder) == 0 && strcmp(self->files[i].name, name) == 0)
            return &self->files[i];
    return NULL;
}

static bool s_has_folder(const web_set_t *self, const char *folder)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->files[i].folder, folder) == 0)
            return true;
    return false;
}

static void s_text(cv_api_req_t *req, int status, const char *text)
{
    req->status = status;
    req->text = cv_zstrdup(text);
    req->content_type = "text/plain; charset=utf-8";
}

static bool s_serve(const web_set_t *self, cv_api_req_t *req)
{
    if (!s_has_folder(self, req->seg[0]))
        return false;
    req->page = true;    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        snprintf(req->allow, sizeof req->allow, "GET, HEAD");
        s_text(req, 405, "Méthode non permise.\n");
        return true;
    }
    const web_file_t *f;
    if (strcmp(req->seg[0], "assets") == 0)
        f = req->nseg == 2 ? s_find(self, "assets", req->seg[1]) : NULL;
    else
        f = req->nseg <= 2 ? s_find(self, req->seg[0], "index.html") : NULL;
    if (!f) {
        s_text(req, 404, "Page introuvable.\n");
        return true;
    }
    snprintf(req->etag, sizeof req->etag, "%s", f->etag);
    const char *inm = cv_api_header(req, "If-None-Match");
    if (inm && strcmp(inm, f->etag) == 0) {
        req->status = 304;
        req->text = cv_zstrdup("");
        req->content_type = f->type;
        return true;
    }
    req->status = 200;
    req->text = cv_zmalloc(f->len + 1);
    memcpy(req->text, f->data, f->len + 1);
    req->content_type = f->type;
    return true;
}

bool cv_api_web_serve(cv_api_web_t *web, cv_api_req_t *req)
{
    if (!web || req->nseg < 1)
        return false;
    pthread_rwlock_rdlock(&web->lock);
    bool served = s_serve(web->set, req);
    pthread_rwlock_unlock(&web->lock);
    return served;
}
