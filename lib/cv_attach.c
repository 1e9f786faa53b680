/*  cv_attach — the attachments store (cv_attach.h has the design).

    put: sniff, hash, and if DIR/ab/<sha> exists, done; else write
    DIR/ab/.<sha>.<pid>.tmp, fsync it, rename it over, fsync DIR/ab (and
    DIR when ab/ was just made). Files are 0600, folders 0700: attachments
    are personal data. A DIR its owner shared with a group (the package's
    2770 civibus-api:civibus-files, where the mailbox adapter writes what
    the API serves) makes them 0640 and 02770 instead, set with fchmod and
    chmod so no process's umask decides: DIR's group may read them, nobody
    else. DIR itself is never made shared here: that is the city's act. */
#include "cv_attach.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_hash.h"

const char *cv_attach_sniff(const void *data, size_t len)
{
    const unsigned char *p = data;
    if (len >= 5 && memcmp(p, "%PDF-", 5) == 0)
        return "application/pdf";
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return "image/jpeg";
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "image/png";
    return NULL;
}

int cv_attach_sha_ok(const char *sha256)
{
    if (!sha256)
        return 0;
    size_t i = 0;
    for (; sha256[i]; i++)
        if (!((sha256[i] >= '0' && sha256[i] <= '9') || (sha256[i] >= 'a' && sha256[i] <= 'f')))
            return 0;
    return i == CV_ATTACH_SHA_LEN;
}

int cv_attach_path(const char *dir, const char *sha256, char *out, size_t outlen)
{
    if (!cv_attach_sha_ok(sha256))
        return -1;
    int n = snprintf(out, outlen, "%s/%.2s/%s", dir, sha256, sha256);
    return n < 0 || (size_t) n >= outlen ? -1 : 0;
}

static int s_sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* mkdir 0700 unless it exists; *made says whether it was made now. A
   folder made in a shared DIR is 02770 (its group writes there too; files inherit the group). */
static int s_mkdir(const char *path, bool shared, int *made)
{
    *made = 0;
    if (mkdir(path, 0700) == 0) {
        *made = 1;
        return shared ? chmod(path, 02770) : 0;
    }
    return errno == EEXIST ? 0 : -1;
}

static int s_write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

int cv_attach_put(const char *dir, const void *data, size_t len, size_t max_bytes, cv_attach_info_t *info,
                  char *err, size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "the file is empty");
        return -1;
    }
    if (len > max_bytes) {
        snprintf(err, errlen, "the file is larger than %zu bytes", max_bytes);
        return -1;
    }
    const char *mime = cv_attach_sniff(data, len);
    if (!mime) {
        snprintf(err, errlen, "not a PDF, JPEG or PNG file");
        return -1;
    }
    cv_hash_bytes(data, len, info->sha256);
    info->mime = mime;
    info->size = len;

    char sub[4096], path[4200], tmp[4300];
    int made_top, made_sub;
    if (snprintf(sub, sizeof sub, "%s/%.2s", dir, info->sha256) >= (int) sizeof sub
        || cv_attach_path(dir, info->sha256, path, sizeof path) < 0) {
        snprintf(err, errlen, "%s: path too long", dir);
        return -1;
    }
    struct stat top;
    bool shared = stat(dir, &top) == 0 && S_ISDIR(top.st_mode) && (top.st_mode & 070) && !(top.st_mode & 007);
    if (s_mkdir(dir, false, &made_top) < 0 || s_mkdir(sub, shared, &made_sub) < 0) {
        snprintf(err, errlen, "%s: cannot make the folder: %s", sub, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && (size_t) st.st_size == len)
        return 0;                                   /* there already: same name, same bytes */
    snprintf(tmp, sizeof tmp, "%s/.%s.%ld.tmp", sub, info->sha256, (long) getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        return -1;
    }
    if ((shared && fchmod(fd, 0640) < 0) || s_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) < 0 || s_sync_dir(sub) < 0 || ((made_sub || made_top) && s_sync_dir(dir) < 0)) {
        snprintf(err, errlen, "%s: cannot store: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
