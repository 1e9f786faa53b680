/*  cv_spool — see cv_spool.h for the on-disk format and the semantics.

    Writing. Appends go to a write buffer (one record never spans two
    buffers); the buffer goes to the current segment with one pwrite when it
    fills or at cv_spool_sync, which then fdatasyncs the segment, writes and
    fdatasyncs settled.log, and replaces the position file. Segments roll
    over past segment_bytes; the old one is fdatasynced first, so only the
    LAST segment can ever hold a torn record.

    Memory. `ents` is an array of records sorted by id (appends come in id
    order): binary search finds an id. Settling only marks an entry; the
    array is compacted once marked entries outnumber live ones, so it holds
    at most about twice the unsettled records (24 bytes each). Settled ids
    are coalesced into ranges before they reach settled.log.

    Opening. settled.log is read into sorted, merged ranges; then each
    segment is mmapped and walked record by record (length, CRC, expected
    id); only records outside the settled ranges enter the index. A bad
    record is "torn" (cut) when it is in the last segment and no valid
    record follows it; otherwise open fails naming the file and offset.
    A bad settled.log record only loses settlements (records are resent),
    so it is logged and settled.log is rewritten from memory.

    Ids. The next id is the largest of: the last record's id + 1, the first
    id of an empty last segment, and the `next-id` file, which gc writes
    before it deletes segments (it may delete all of them).

    Errors. Open returns its reason in err; later I/O errors are logged
    once (path, operation, errno text, never record bytes) and leave the
    spool "broken": every call fails until it is destroyed and reopened,
    which recovers from what is on disk. Not thread-safe: one owner. */
#include "cv_spool.h"

#include "cv_crc32c.h"
#include "cv_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_BYTES        16                      /* u32 len, u32 crc, u64 id */
#define RANGE_BYTES      20                      /* u64 lo, u64 hi, u32 crc */
#define RANGES_BUFFERED  1024
#define WBUF_MIN         (1u << 20)
#define RECORD_LIMIT     (64u << 20)             /* ceiling for max_record_bytes */
#define COMPACT_MIN      1024                    /* settled entries before compacting */
#define SEG_NAME_LEN     sizeof "seg-00000000000000000000.log"
#define SETTLED_LOG      "settled.log"
#define POSITION_FILE    "position"
#define NEXT_ID_FILE     "next-id"

typedef struct {
    uint64_t id;
    uint64_t offset;                /* of the record header in its segment */
    uint32_t len;                   /* payload bytes */
    uint32_t settled;
} entry_t;

typedef struct {
    uint64_t first_id;              /* from the file name */
    uint64_t count;                 /* records in the file (ids first_id...) */
    uint64_t size;                  /* bytes in the file (not the write buffer) */
    uint64_t live;                  /* unsettled records */
    int fd;                         /* -1 until a read needs it */
    bool doomed;                    /* gc: to delete */
} segment_t;

typedef struct {
    uint64_t lo, hi;
} range_t;

struct cv_spool {
    char *dir;                      /* for messages */
    int dir_fd, lock_fd, settled_fd;
    cv_spool_opts_t opts;
    bool opening;                   /* errors go to err, not the log */
    bool broken;                    /* an I/O error happened: reopen */
    char err[512];

    segment_t *segs;                /* sorted by first id */
    size_t nsegs, segs_cap;
    bool has_current;               /* segs[nsegs - 1] takes appends */
    bool cur_dirty;                 /* written since its last fdatasync */
    unsigned char *wbuf;            /* appends not yet written */
    size_t wlen, wcap;

    entry_t *ents;                  /* sorted by id; settled ones marked */
    size_t nents, ents_cap, nsettled;
    uint64_t next_id;
    uint64_t live_count, live_bytes;

    range_t pending;                /* settled ids being coalesced; lo 0: none */
    unsigned char sbuf[RANGES_BUFFERED * RANGE_BYTES];
    size_t slen;
    bool settled_dirty;             /* written since its last fdatasync */

    char *position;
    bool position_dirty;
};

/* ---------------------------------------------------------------- helpers */

static void s_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char) (v >> (8 * i));
}

static void s_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char) (v >> (8 * i));
}

static uint32_t s_get32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t s_get64(const unsigned char *p)
{
    return (uint64_t) s_get32(p) | (uint64_t) s_get32(p + 4) << 32;
}

/* The record CRC covers the length, the id and the payload. */
static uint32_t s_record_crc(const unsigned char *hdr, const unsigned char *data, uint32_t len)
{
    uint32_t crc = cv_crc32c(0, hdr, 4);
    crc = cv_crc32c(crc, hdr + 8, 8);
    return cv_crc32c(crc, data, len);
}

static void s_put_range(unsigned char *p, uint64_t lo, uint64_t hi)
{
    s_put64(p, lo);
    s_put64(p + 8, hi);
    s_put32(p + 16, cv_crc32c(0, p, 16));
}

static void s_seg_name(char out[SEG_NAME_LEN], uint64_t first_id)
{
    snprintf(out, SEG_NAME_LEN, "seg-%020" PRIu64 ".log", first_id);
}

static int s_error(cv_spool_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keeps the reason for open's caller, or logs it once open is done. */
static int s_error(cv_spool_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->err, sizeof self->err, fmt, ap);
    va_end(ap);
    if (!self->opening)
        cv_error("spool", "%s", self->err);
    return -1;
}

/* An I/O error on a file of the spool: after it the spool is broken. */
static int s_io_error(cv_spool_t *self, const char *name, const char *op)
{
    int e = errno;
    self->broken = true;
    s_error(self, "%s/%s: %s: %s", self->dir, name, op, strerror(e));
    errno = e;
    return -1;
}

static int s_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t) off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t) n;
        off += (uint64_t) n;
    }
    return 0;
}

static int s_write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

/* A short read (file shorter than expected) fails with EIO. */
static int s_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t) off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t) n;
        off += (uint64_t) n;
    }
    return 0;
}

/* Writes name atomically: temp file, fdatasync, rename, fsync of the dir. */
static int s_replace_file(cv_spool_t *self, const char *name, const void *data, size_t len)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = openat(self->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return s_io_error(self, tmp, "create");
    if (s_write_all(fd, data, len) || fdatasync(fd)) {
        int e = errno;
        close(fd);
        errno = e;
        return s_io_error(self, tmp, "write");
    }
    close(fd);
    if (renameat(self->dir_fd, tmp, self->dir_fd, name))
        return s_io_error(self, name, "rename");
    if (fsync(self->dir_fd))
        return s_io_error(self, ".", "fsync");
    return 0;
}

/* ------------------------------------------------------------------ index */

static entry_t *s_entry_push(cv_spool_t *self)
{
    if (self->nents == self->ents_cap) {
        size_t cap = self->ents_cap ? self->ents_cap * 2 : 1024;
        entry_t *ents = realloc(self->ents, cap * sizeof *ents);
        if (!ents)
            return NULL;
        self->ents = ents;
        self->ents_cap = cap;
    }
    return &self->ents[self->nents++];
}

/* Index of the first entry with an id >= id. */
static size_t s_lower_bound(const cv_spool_t *self, uint64_t id)
{
    size_t lo = 0, hi = self->nents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->ents[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static entry_t *s_entry_find(cv_spool_t *self, uint64_t id)
{
    size_t i = s_lower_bound(self, id);
    return i < self->nents && self->ents[i].id == id ? &self->ents[i] : NULL;
}

/* Drops settled entries once they are more than the live ones. */
static void s_index_compact(cv_spool_t *self)
{
    if (self->nsettled < COMPACT_MIN || self->nsettled * 2 < self->nents)
        return;
    size_t n = 0;
    for (size_t i = 0; i < self->nents; i++)
        if (!self->ents[i].settled)
            self->ents[n++] = self->ents[i];
    self->nents = n;
    self->nsettled = 0;
    if (self->ents_cap > 4 * COMPACT_MIN && n < self->ents_cap / 4) {
        entry_t *ents = realloc(self->ents, self->ents_cap / 2 * sizeof *ents);
        if (ents) {
            self->ents = ents;
            self->ents_cap /= 2;
        }
    }
}

/* --------------------------------------------------------------- segments */

static segment_t *s_current(cv_spool_t *self)
{
    return self->has_current ? &self->segs[self->nsegs - 1] : NULL;
}

/* The segment that holds id (the last one whose first id is <= id). */
static segment_t *s_seg_of(cv_spool_t *self, uint64_t id)
{
    size_t lo = 0, hi = self->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->segs[mid].first_id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? &self->segs[lo - 1] : NULL;
}

static segment_t *s_seg_push(cv_spool_t *self, uint64_t first_id)
{
    if (self->nsegs == self->segs_cap) {
        size_t cap = self->segs_cap ? self->segs_cap * 2 : 16;
        segment_t *segs = realloc(self->segs, cap * sizeof *segs);
        if (!segs)
            return NULL;
        self->segs = segs;
        self->segs_cap = cap;
    }
    segment_t *seg = &self->segs[self->nsegs++];
    *seg = (segment_t) { .first_id = first_id, .fd = -1 };
    return seg;
}

/* Closes the file of a segment nothing will read or write any more. */
static void s_seg_release(cv_spool_t *self, segment_t *seg)
{
    if (seg->live == 0 && seg != s_current(self) && seg->fd >= 0) {
        close(seg->fd);
        seg->fd = -1;
    }
}

static int s_seg_fd(cv_spool_t *self, segment_t *seg)
{
    if (seg->fd < 0) {
        char name[SEG_NAME_LEN];
        s_seg_name(name, seg->first_id);
        seg->fd = openat(self->dir_fd, name, O_RDONLY | O_CLOEXEC);
        if (seg->fd < 0)
            s_error(self, "%s/%s: open: %s", self->dir, name, strerror(errno));
    }
    return seg->fd;
}

/* Creates seg-<next id>.log and makes it current. */
static segment_t *s_start_segment(cv_spool_t *self)
{
    char name[SEG_NAME_LEN];
    s_seg_name(name, self->next_id);
    int fd = openat(self->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        s_io_error(self, name, "create");
        return NULL;
    }
    segment_t *seg = s_seg_push(self, self->next_id);
    if (!seg) {
        close(fd);
        errno = ENOMEM;
        s_io_error(self, name, "create");
        return NULL;
    }
    seg->fd = fd;
    self->has_current = true;
    if (fsync(self->dir_fd)) {
        s_io_error(self, ".", "fsync");
        return NULL;
    }
    return seg;
}

/* Writes the buffer to the current segment (one pwrite, no sync). */
static int s_flush(cv_spool_t *self)
{
    segment_t *cur = s_current(self);
    if (self->wlen == 0 || !cur)
        return 0;
    if (s_pwrite_all(cur->fd, self->wbuf, self->wlen, cur->size)) {
        char name[SEG_NAME_LEN];
        s_seg_name(name, cur->first_id);
        return s_io_error(self, name, "write");
    }
    cur->size += self->wlen;
    self->wlen = 0;
    self->cur_dirty = true;
    return 0;
}

static int s_datasync_current(cv_spool_t *self)
{
    segment_t *cur = s_current(self);
    if (!self->cur_dirty || !cur)
        return 0;
    if (fdatasync(cur->fd)) {
        char name[SEG_NAME_LEN];
        s_seg_name(name, cur->first_id);
        return s_io_error(self, name, "fdatasync");
    }
    self->cur_dirty = false;
    return 0;
}

/* Makes the current segment durable and stops appending to it. */
static int s_seal_current(cv_spool_t *self)
{
    if (s_flush(self) || s_datasync_current(self))
        return -1;
    segment_t *cur = s_current(self);
    self->has_current = false;
    if (cur)
        s_seg_release(self, cur);
    return 0;
}

/* ------------------------------------------------------------ settlement */

static int s_settled_write(cv_spool_t *self)
{
    if (self->slen == 0)
        return 0;
    if (s_write_all(self->settled_fd, self->sbuf, self->slen))
        return s_io_error(self, SETTLED_LOG, "write");
    self->slen = 0;
    self->settled_dirty = true;
    return 0;
}

static int s_settled_add(cv_spool_t *self, range_t r)
{
    if (self->slen == sizeof self->sbuf && s_settled_write(self))
        return -1;
    s_put_range(self->sbuf + self->slen, r.lo, r.hi);
    self->slen += RANGE_BYTES;
    return 0;
}

/* Grows the pending range when id touches it, else queues it. */
static int s_note_settled(cv_spool_t *self, uint64_t id)
{
    range_t *p = &self->pending;
    if (p->lo && id == p->hi + 1)
        p->hi = id;
    else if (p->lo && id + 1 == p->lo)
        p->lo = id;
    else {
        if (p->lo && s_settled_add(self, *p))
            return -1;
        *p = (range_t) { id, id };
    }
    return 0;
}

static int s_settled_sync(cv_spool_t *self)
{
    if (self->pending.lo) {
        if (s_settled_add(self, self->pending))
            return -1;
        self->pending.lo = 0;
    }
    if (s_settled_write(self))
        return -1;
    if (self->settled_dirty && fdatasync(self->settled_fd))
        return s_io_error(self, SETTLED_LOG, "fdatasync");
    self->settled_dirty = false;
    return 0;
}

/* Rewrites settled.log from memory: every id below the next one that is
   not an unsettled record is settled, so the log is the complement of the
   index (at most one range per unsettled record, plus one). */
static int s_settled_compact(cv_spool_t *self)
{
    size_t cap = (size_t) (self->live_count + 1) * RANGE_BYTES, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        errno = ENOMEM;
        return s_io_error(self, SETTLED_LOG, "compact");
    }
    uint64_t lo = 1;
    for (size_t i = 0; i < self->nents; i++) {
        const entry_t *e = &self->ents[i];
        if (e->settled)
            continue;
        if (e->id > lo) {
            s_put_range(buf + n, lo, e->id - 1);
            n += RANGE_BYTES;
        }
        lo = e->id + 1;
    }
    if (lo < self->next_id) {
        s_put_range(buf + n, lo, self->next_id - 1);
        n += RANGE_BYTES;
    }
    int rc = s_replace_file(self, SETTLED_LOG, buf, n);
    free(buf);
    if (rc)
        return -1;
    if (self->settled_fd >= 0)
        close(self->settled_fd);
    self->settled_fd = openat(self->dir_fd, SETTLED_LOG, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (self->settled_fd < 0)
        return s_io_error(self, SETTLED_LOG, "open");
    self->pending.lo = 0;
    self->slen = 0;
    self->settled_dirty = false;
    return 0;
}

/* ------------------------------------------------------------- recovery */

static int s_open_dir(cv_spool_t *self, const char *dir)
{
    self->dir = strdup(dir);
    if (!self->dir)
        return s_error(self, "%s: out of memory", dir);
    bool created = mkdir(dir, 0700) == 0;
    if (!created && errno != EEXIST)
        return s_error(self, "%s: mkdir: %s", dir, strerror(errno));
    self->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0)
        return s_error(self, "%s: open: %s", dir, strerror(errno));
    if (created) {                  /* make the new entry durable in the parent */
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash)
            *(slash == parent ? slash + 1 : slash) = '\0';
        else
            snprintf(parent, sizeof parent, ".");
        int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0) {
            fsync(pfd);
            close(pfd);
        }
    }
    self->lock_fd = openat(self->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0)
        return s_error(self, "%s/lock: open: %s", dir, strerror(errno));
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB))
        return s_error(self, "%s: %s", dir, errno == EWOULDBLOCK ? "spool in use by another process"
                                                                : strerror(errno));
    return 0;
}

static int s_seg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const segment_t *) a)->first_id, y = ((const segment_t *) b)->first_id;
    return x < y ? -1 : x > y;
}

/* Parses "seg-<20 digits>.log"; 0 when name is not a segment. */
static uint64_t s_parse_seg_name(const char *name)
{
    if (strlen(name) != SEG_NAME_LEN - 1 || strncmp(name, "seg-", 4) || strcmp(name + 24, ".log"))
        return 0;
    uint64_t id = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9' || id > (UINT64_MAX - 9) / 10)
            return 0;
        id = id * 10 + (uint64_t) (name[i] - '0');
    }
    return id;
}

/* Lists the segments (sorted) and removes temp files left by a crash. */
static int s_list_dir(cv_spool_t *self)
{
    DIR *d = opendir(self->dir);
    if (!d)
        return s_error(self, "%s: opendir: %s", self->dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        uint64_t first = s_parse_seg_name(de->d_name);
        if (first && !s_seg_push(self, first))
            rc = s_error(self, "%s: out of memory", self->dir);
        else if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0
                 && unlinkat(self->dir_fd, de->d_name, 0))
            rc = s_error(self, "%s/%s: unlink: %s", self->dir, de->d_name, strerror(errno));
    }
    closedir(d);
    if (self->nsegs > 1)
        qsort(self->segs, self->nsegs, sizeof *self->segs, s_seg_cmp);
    return rc;
}

static int s_read_next_id(cv_spool_t *self, uint64_t *next)
{
    *next = 0;
    int fd = openat(self->dir_fd, NEXT_ID_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : s_error(self, "%s/%s: open: %s", self->dir, NEXT_ID_FILE, strerror(errno));
    char text[32];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n < 0)
        return s_error(self, "%s/%s: read: %s", self->dir, NEXT_ID_FILE, strerror(errno));
    text[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || strcmp(end, "\n") || v == 0 || text[0] < '0' || text[0] > '9')
        return s_error(self, "%s/%s: not a record id", self->dir, NEXT_ID_FILE);
    *next = v;
    return 0;
}

static int s_range_cmp(const void *a, const void *b)
{
    uint64_t x = ((const range_t *) a)->lo, y = ((const range_t *) b)->lo;
    return x < y ? -1 : x > y;
}

/* Reads settled.log into sorted, merged ranges. *rewrite is set when the
   file has a torn or bad record (then it must be rewritten). */
static int s_read_settled(cv_spool_t *self, range_t **out, size_t *nout, bool *rewrite)
{
    *out = NULL;
    *nout = 0;
    *rewrite = false;
    int fd = openat(self->dir_fd, SETTLED_LOG, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : s_error(self, "%s/%s: open: %s", self->dir, SETTLED_LOG, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return s_error(self, "%s/%s: stat: %s", self->dir, SETTLED_LOG, strerror(errno));
    }
    uint64_t whole = (uint64_t) st.st_size / RANGE_BYTES;
    range_t *r = whole ? malloc(whole * sizeof *r) : NULL;
    if (whole && !r) {
        close(fd);
        return s_error(self, "%s/%s: out of memory", self->dir, SETTLED_LOG);
    }
    *rewrite = (uint64_t) st.st_size % RANGE_BYTES != 0;
    unsigned char buf[RANGES_BUFFERED * RANGE_BYTES];
    size_t n = 0;
    for (uint64_t done = 0; done < whole && n == done;) {
        size_t chunk = whole - done < RANGES_BUFFERED ? (size_t) (whole - done) : RANGES_BUFFERED;
        if (s_pread_all(fd, buf, chunk * RANGE_BYTES, done * RANGE_BYTES)) {
            int e = errno;
            close(fd);
            free(r);
            return s_error(self, "%s/%s: read: %s", self->dir, SETTLED_LOG, strerror(e));
        }
        for (size_t i = 0; i < chunk; i++) {
            const unsigned char *p = buf + i * RANGE_BYTES;
            range_t x = { s_get64(p), s_get64(p + 8) };
            if (s_get32(p + 16) != cv_crc32c(0, p, 16) || x.lo == 0 || x.lo > x.hi) {
                cv_warn("spool", "%s/%s: bad record at offset %" PRIu64 "; later settlements are "
                        "dropped (their records will be resent)", self->dir, SETTLED_LOG,
                        (done + i) * RANGE_BYTES);
                *rewrite = true;
                break;
            }
            r[n++] = x;
        }
        done += chunk;
    }
    close(fd);
    if (n > 1)
        qsort(r, n, sizeof *r, s_range_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && r[i].lo <= r[m - 1].hi + 1) {
            if (r[i].hi > r[m - 1].hi)
                r[m - 1].hi = r[i].hi;
        } else
            r[m++] = r[i];
    }
    *out = r;
    *nout = m;
    return 0;
}

typedef enum { REC_OK, REC_SHORT, REC_BAD_CRC, REC_BAD_ID } rec_state_t;

static rec_state_t s_check_record(const unsigned char *map, uint64_t size, uint64_t off,
                                  uint64_t id, uint32_t *len)
{
    if (size - off < HDR_BYTES)
        return REC_SHORT;
    const unsigned char *p = map + off;
    uint32_t n = s_get32(p);
    if (n > size - off - HDR_BYTES)
        return REC_SHORT;
    if (s_get32(p + 4) != s_record_crc(p, p + HDR_BYTES, n))
        return REC_BAD_CRC;
    if (s_get64(p + 8) != id)
        return REC_BAD_ID;
    *len = n;
    return REC_OK;
}

/* Offset of a valid record after a bad one at off, or 0 when none. Cheap
   filters first (an id in the possible range), the CRC last. */
static uint64_t s_valid_after(const unsigned char *map, uint64_t size, uint64_t off,
                              uint64_t min_id, uint64_t id)
{
    uint64_t max_id = id + (size - off) / HDR_BYTES;
    for (uint64_t q = off + 1; q + HDR_BYTES <= size; q++) {
        uint64_t k = s_get64(map + q + 8);
        uint32_t len;
        if (k >= min_id && k <= max_id && s_check_record(map, size, q, k, &len) == REC_OK)
            return q;
    }
    return 0;
}

static bool s_in_ranges(const range_t *r, size_t n, size_t *at, uint64_t id)
{
    while (*at < n && r[*at].hi < id)
        (*at)++;
    return *at < n && r[*at].lo <= id;
}

/* Walks one segment: indexes its unsettled records, cuts a torn tail
   (last segment only) or fails on a bad record with data after it. */
static int s_scan_segment(cv_spool_t *self, segment_t *seg, bool last,
                          const range_t *ranges, size_t nranges, size_t *at)
{
    char name[SEG_NAME_LEN];
    s_seg_name(name, seg->first_id);
    int fd = openat(self->dir_fd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return s_error(self, "%s/%s: open: %s", self->dir, name, strerror(e));
    }
    uint64_t size = (uint64_t) st.st_size, off = 0, id = seg->first_id;
    const unsigned char *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return s_error(self, "%s/%s: mmap: %s", self->dir, name, strerror(e));
        }
    }
    int rc = 0;
    rec_state_t state = REC_OK;
    while (off < size && rc == 0) {
        uint32_t len = 0;
        state = s_check_record(map, size, off, id, &len);
        if (state != REC_OK)
            break;
        if (!s_in_ranges(ranges, nranges, at, id)) {
            entry_t *e = s_entry_push(self);
            if (!e) {
                rc = s_error(self, "%s/%s: out of memory", self->dir, name);
                break;
            }
            *e = (entry_t) { .id = id, .offset = off, .len = len };
            seg->live++;
            self->live_count++;
            self->live_bytes += len;
        }
        off += HDR_BYTES + len;
        id++;
    }
    if (rc == 0 && off < size) {
        uint64_t follows = state == REC_BAD_ID ? 0 : s_valid_after(map, size, off, seg->first_id, id);
        if (state == REC_BAD_ID)
            rc = s_error(self, "%s/%s: record at offset %" PRIu64 " has id %" PRIu64 ", %" PRIu64
                         " expected", self->dir, name, off, s_get64(map + off + 8), id);
        else if (follows)
            rc = s_error(self, "%s/%s: corrupt record at offset %" PRIu64 " (valid records follow "
                         "at offset %" PRIu64 ")", self->dir, name, off, follows);
        else if (!last)
            rc = s_error(self, "%s/%s: corrupt or truncated record at offset %" PRIu64
                         " in a sealed segment", self->dir, name, off);
    }
    if (map)
        munmap((void *) map, size);
    if (rc == 0 && off < size) {
        cv_warn("spool", "%s/%s: cut a torn last record at offset %" PRIu64 " (%" PRIu64 " bytes)",
                self->dir, name, off, size - off);
        if (ftruncate(fd, (off_t) off) || fdatasync(fd))
            rc = s_error(self, "%s/%s: truncate: %s", self->dir, name, strerror(errno));
    }
    seg->count = id - seg->first_id;
    seg->size = off;
    if (rc == 0 && last)
        seg->fd = fd;
    else
        close(fd);
    return rc;
}

/* The last segment takes appends if its ids end at the next id; an empty
   one with another name is stale (e.g. gc removed what came before). */
static int s_pick_current(cv_spool_t *self)
{
    if (self->nsegs == 0)
        return 0;
    segment_t *last = &self->segs[self->nsegs - 1];
    if (last->first_id + last->count == self->next_id) {
        self->has_current = true;
        return 0;
    }
    if (last->count == 0) {
        char name[SEG_NAME_LEN];
        s_seg_name(name, last->first_id);
        if (last->fd >= 0)
            close(last->fd);
        self->nsegs--;
        if (unlinkat(self->dir_fd, name, 0))
            return s_error(self, "%s/%s: unlink: %s", self->dir, name, strerror(errno));
        return 0;
    }
    s_seg_release(self, last);
    return 0;
}

static int s_recover(cv_spool_t *self)
{
    uint64_t file_next;
    if (s_read_next_id(self, &file_next) || s_list_dir(self))
        return -1;
    range_t *ranges;
    size_t nranges, at = 0;
    bool rewrite;
    if (s_read_settled(self, &ranges, &nranges, &rewrite))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < self->nsegs && rc == 0; i++) {
        segment_t *seg = &self->segs[i], *prev = i ? seg - 1 : NULL;
        if (prev && seg->first_id < prev->first_id + prev->count)
            rc = s_error(self, "%s: segments overlap at id %" PRIu64, self->dir, seg->first_id);
        else
            rc = s_scan_segment(self, seg, i + 1 == self->nsegs, ranges, nranges, &at);
    }
    if (rc == 0) {
        self->next_id = file_next > 1 ? file_next : 1;
        if (self->nsegs) {
            const segment_t *last = &self->segs[self->nsegs - 1];
            if (last->first_id + last->count > self->next_id)
                self->next_id = last->first_id + last->count;
        }
        rc = s_pick_current(self);
    }
    /* ranges at or past the next id were never durable records: drop them
       before their ids are given to new records */
    bool stale = nranges && ranges[nranges - 1].hi >= self->next_id;
    free(ranges);
    if (rc)
        return -1;
    if (rewrite || stale)
        return s_settled_compact(self);
    self->settled_fd = openat(self->dir_fd, SETTLED_LOG, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (self->settled_fd < 0)
        return s_error(self, "%s/%s: open: %s", self->dir, SETTLED_LOG, strerror(errno));
    if (fsync(self->dir_fd))        /* removed temps, created files */
        return s_error(self, "%s: fsync: %s", self->dir, strerror(errno));
    return 0;
}

static int s_read_position(cv_spool_t *self)
{
    int fd = openat(self->dir_fd, POSITION_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : s_error(self, "%s/%s: open: %s", self->dir, POSITION_FILE, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st))
        rc = s_error(self, "%s/%s: stat: %s", self->dir, POSITION_FILE, strerror(errno));
    else if (st.st_size > CV_SPOOL_POSITION_MAX)
        rc = s_error(self, "%s/%s: larger than %d bytes", self->dir, POSITION_FILE, CV_SPOOL_POSITION_MAX);
    else if (!(self->position = calloc(1, (size_t) st.st_size + 1)))
        rc = s_error(self, "%s/%s: out of memory", self->dir, POSITION_FILE);
    else if (s_pread_all(fd, self->position, (size_t) st.st_size, 0))
        rc = s_error(self, "%s/%s: read: %s", self->dir, POSITION_FILE, strerror(errno));
    close(fd);
    return rc;
}

static void s_free(cv_spool_t *self)
{
    for (size_t i = 0; i < self->nsegs; i++)
        if (self->segs[i].fd >= 0)
            close(self->segs[i].fd);
    if (self->settled_fd >= 0)
        close(self->settled_fd);
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    if (self->dir_fd >= 0)
        close(self->dir_fd);
    free(self->segs);
    free(self->wbuf);
    free(self->ents);
    free(self->position);
    free(self->dir);
    free(self);
}

/* ------------------------------------------------------------ public API */

cv_spool_t *cv_spool_open(const char *dir, const cv_spool_opts_t *opts, char *err, size_t errlen)
{
    cv_spool_t *self = calloc(1, sizeof *self);
    if (!self) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", dir);
        return NULL;
    }
    self->dir_fd = self->lock_fd = self->settled_fd = -1;
    self->opening = true;
    self->next_id = 1;
    self->opts = (cv_spool_opts_t) { .retention_days = 7 };
    if (opts)
        self->opts = *opts;
    if (self->opts.segment_bytes == 0)
        self->opts.segment_bytes = 64ull << 20;
    if (self->opts.max_bytes == 0)
        self->opts.max_bytes = 1ull << 30;
    if (self->opts.max_record_bytes == 0)
        self->opts.max_record_bytes = 1u << 20;
    if (self->opts.retention_days < 0)
        self->opts.retention_days = 0;

    int rc = 0;
    if (self->opts.max_record_bytes > RECORD_LIMIT)
        rc = s_error(self, "%s: max_record_bytes over %u", dir, RECORD_LIMIT);
    self->wcap = HDR_BYTES + (size_t) self->opts.max_record_bytes;
    if (self->wcap < WBUF_MIN)
        self->wcap = WBUF_MIN;
    if (rc == 0 && !(self->wbuf = malloc(self->wcap)))
        rc = s_error(self, "%s: out of memory", dir);
    if (rc == 0)
        rc = s_open_dir(self, dir);
    if (rc == 0)
        rc = s_recover(self);
    if (rc == 0)
        rc = s_read_position(self);
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s", self->err);
        s_free(self);
        return NULL;
    }
    self->opening = false;
    return self;
}

void cv_spool_destroy(cv_spool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_spool_t *self = *self_p;
    if (!self->broken)
        cv_spool_sync(self);
    s_free(self);
    *self_p = NULL;
}

int cv_spool_append(cv_spool_t *self, const void *data, size_t len, uint64_t *id_out)
{
    if (self->broken)
        return -1;
    if (len > self->opts.max_record_bytes) {
        cv_warn("spool", "%s: refused a record of %zu bytes (max_record_bytes %" PRIu32 ")",
                self->dir, len, self->opts.max_record_bytes);
        errno = EMSGSIZE;
        return -1;
    }
    size_t rec = HDR_BYTES + len;
    segment_t *cur = s_current(self);
    if (cur && cur->size + self->wlen > 0 && cur->size + self->wlen + rec > self->opts.segment_bytes) {
        if (s_seal_current(self))
            return -1;
        cur = NULL;
    }
    if (!cur && !(cur = s_start_segment(self)))
        return -1;
    if (self->wlen + rec > self->wcap && s_flush(self))
        return -1;
    entry_t *e = s_entry_push(self);
    if (!e) {
        cv_error("spool", "%s: out of memory for the index", self->dir);
        errno = ENOMEM;
        return -1;
    }
    unsigned char *p = self->wbuf + self->wlen;
    s_put32(p, (uint32_t) len);
    s_put64(p + 8, self->next_id);
    if (len)
        memcpy(p + HDR_BYTES, data, len);
    s_put32(p + 4, s_record_crc(p, p + HDR_BYTES, (uint32_t) len));
    *e = (entry_t) { .id = self->next_id, .offset = cur->size + self->wlen, .len = (uint32_t) len };
    self->wlen += rec;
    cur->count++;
    cur->live++;
    self->live_count++;
    self->live_bytes += len;
    *id_out = self->next_id++;
    return 0;
}

int cv_spool_sync(cv_spool_t *self)
{
    if (self->broken)
        return -1;
    if (s_flush(self) || s_datasync_current(self) || s_settled_sync(self))
        return -1;
    if (self->position_dirty) {
        if (s_replace_file(self, POSITION_FILE, self->position, strlen(self->position)))
            return -1;
        self->position_dirty = false;
    }
    return 0;
}

int cv_spool_settle(cv_spool_t *self, uint64_t id)
{
    if (self->broken)
        return -1;
    entry_t *e = s_entry_find(self, id);
    if (!e || e->settled)
        return 0;
    e->settled = 1;
    self->nsettled++;
    self->live_count--;
    self->live_bytes -= e->len;
    segment_t *seg = s_seg_of(self, id);
    seg->live--;
    s_seg_release(self, seg);
    if (s_note_settled(self, id))
        return -1;
    s_index_compact(self);
    return 0;
}

/* Reads a record back (from the write buffer if not yet written) and
   checks it again: the disk may have changed since open. */
static int s_read_record(cv_spool_t *self, const entry_t *e, void **data)
{
    segment_t *seg = s_seg_of(self, e->id);
    char name[SEG_NAME_LEN];
    s_seg_name(name, seg->first_id);
    size_t total = HDR_BYTES + e->len;
    unsigned char *buf = malloc(total);
    if (!buf)
        return s_error(self, "%s: out of memory", self->dir);
    if (seg == s_current(self) && e->offset >= seg->size)
        memcpy(buf, self->wbuf + (e->offset - seg->size), total);
    else {
        int fd = s_seg_fd(self, seg);
        if (fd < 0) {
            free(buf);
            return -1;
        }
        if (s_pread_all(fd, buf, total, e->offset)) {
            free(buf);
            return s_error(self, "%s/%s: read at offset %" PRIu64 ": %s", self->dir, name,
                           e->offset, strerror(errno));
        }
    }
    if (s_get32(buf) != e->len || s_get64(buf + 8) != e->id
        || s_get32(buf + 4) != s_record_crc(buf, buf + HDR_BYTES, e->len)) {
        free(buf);
        errno = EIO;
        return s_error(self, "%s/%s: record %" PRIu64 " at offset %" PRIu64 " is corrupt",
                       self->dir, name, e->id, e->offset);
    }
    memmove(buf, buf + HDR_BYTES, e->len);
    *data = buf;
    return 0;
}

int cv_spool_next_unsettled(cv_spool_t *self, uint64_t after, uint64_t *id, void **data, size_t *len)
{
    if (self->broken)
        return -1;
    if (after == UINT64_MAX)
        return 0;
    for (size_t i = s_lower_bound(self, after + 1); i < self->nents; i++) {
        const entry_t *e = &self->ents[i];
        if (e->settled)
            continue;
        if (s_read_record(self, e, data))
            return -1;
        *id = e->id;
        *len = e->len;
        return 1;
    }
    return 0;
}

uint64_t cv_spool_next_id(const cv_spool_t *self)
{
    return self->next_id;
}

bool cv_spool_is_settled(const cv_spool_t *self, uint64_t id)
{
    if (id == 0 || id >= self->next_id)
        return false;                /* not appended yet */
    size_t i = s_lower_bound(self, id);
    /* the index holds every unsettled record; an id missing from it was
       settled and compacted away */
    return !(i < self->nents && self->ents[i].id == id && !self->ents[i].settled);
}

uint64_t cv_spool_unsettled_count(const cv_spool_t *self)
{
    return self->live_count;
}

uint64_t cv_spool_unsettled_bytes(const cv_spool_t *self)
{
    return self->live_bytes;
}

bool cv_spool_full(const cv_spool_t *self)
{
    return self->live_bytes > self->opts.max_bytes;
}

/* True when the segment's file was last written retention_days ago. */
static int s_expired(cv_spool_t *self, const segment_t *seg, time_t now, bool *expired)
{
    char name[SEG_NAME_LEN];
    s_seg_name(name, seg->first_id);
    struct stat st;
    if (fstatat(self->dir_fd, name, &st, 0))
        return s_io_error(self, name, "stat");
    *expired = st.st_mtime + (time_t) self->opts.retention_days * 86400 <= now;
    return 0;
}

int cv_spool_gc(cv_spool_t *self, time_t now)
{
    if (cv_spool_sync(self))
        return -1;
    int doomed = 0;
    for (size_t i = 0; i < self->nsegs; i++) {
        segment_t *seg = &self->segs[i];
        seg->doomed = false;
        if (seg->live == 0 && s_expired(self, seg, now, &seg->doomed))
            return -1;
        doomed += seg->doomed;
    }
    if (doomed) {
        char text[32];
        int n = snprintf(text, sizeof text, "%" PRIu64 "\n", self->next_id);
        if (s_replace_file(self, NEXT_ID_FILE, text, (size_t) n))
            return -1;
        if (self->has_current && self->segs[self->nsegs - 1].doomed)
            self->has_current = false;
        size_t kept = 0;
        for (size_t i = 0; i < self->nsegs; i++) {
            segment_t *seg = &self->segs[i];
            if (!seg->doomed) {
                self->segs[kept++] = *seg;
                continue;
            }
            char name[SEG_NAME_LEN];
            s_seg_name(name, seg->first_id);
            if (seg->fd >= 0)
                close(seg->fd);
            seg->fd = -1;
            if (unlinkat(self->dir_fd, name, 0)) {
                for (size_t j = i; j < self->nsegs; j++)        /* keep the array whole */
                    self->segs[kept++] = self->segs[j];
                self->nsegs = kept;
                return s_io_error(self, name, "unlink");
            }
        }
        self->nsegs = kept;
        if (fsync(self->dir_fd))
            return s_io_error(self, ".", "fsync");
    }
    if (s_settled_compact(self))
        return -1;
    return doomed;
}

int cv_spool_set_position(cv_spool_t *self, const char *position)
{
    if (self->broken)
        return -1;
    if (strlen(position) > CV_SPOOL_POSITION_MAX) {
        cv_warn("spool", "%s: position over %d bytes refused", self->dir, CV_SPOOL_POSITION_MAX);
        errno = EMSGSIZE;
        return -1;
    }
    char *copy = strdup(position);
    if (!copy)
        return -1;
    free(self->position);
    self->position = copy;
    self->position_dirty = true;
    return 0;
}

const char *cv_spool_position(const cv_spool_t *self)
{
    return self->position;
}
