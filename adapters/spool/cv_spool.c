/*  cv_spool — see cv_spool.h for the on-disk format and the semantics.

    This file: the API, appends, sync, settlement, reading, gc and the
    position. Recovery on open is in cv_spool_recover.c; the structures
    and the internal functions both files share (cv_spool__ names) are in
    the private header cv_spool_int.h.

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

    Ids. gc writes the `next-id` file before it deletes segments (it may
    delete all of them); open takes the next id from it and from the
    segments (see cv_spool_recover.c).

    Errors. Open returns its reason in err; later I/O errors are logged
    once (path, operation, errno text, never record bytes) and leave the
    spool "broken": every call fails until it is destroyed and reopened,
    which recovers from what is on disk. Not thread-safe: one owner. */
#include "cv_spool.h"
#include "cv_spool_int.h"

#include "cv_crc32c.h"
#include "cv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WBUF_MIN         (1u << 20)
#define RECORD_LIMIT     (64u << 20)             /* ceiling for max_record_bytes */
#define COMPACT_MIN      1024                    /* settled entries before compacting */

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

/* The record CRC covers the length, the id and the payload. */
uint32_t cv_spool__record_crc(const unsigned char *hdr, const unsigned char *data, uint32_t len)
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

void cv_spool__seg_name(char out[SEG_NAME_LEN], uint64_t first_id)
{
    snprintf(out, SEG_NAME_LEN, "seg-%020" PRIu64 ".log", first_id);
}

/* Keeps the reason for open's caller, or logs it once open is done. */
int cv_spool__error(cv_spool_t *self, const char *fmt, ...)
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
int cv_spool__io_error(cv_spool_t *self, const char *name, const char *op)
{
    int e = errno;
    self->broken = true;
    cv_spool__error(self, "%s/%s: %s: %s", self->dir, name, op, strerror(e));
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
int cv_spool__pread_all(int fd, void *buf, size_t len, uint64_t off)
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
int cv_spool__replace_file(cv_spool_t *self, const char *name, const void *data, size_t len)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = openat(self->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return cv_spool__io_error(self, tmp, "create");
    if (s_write_all(fd, data, len) || fdatasync(fd)) {
        int e = errno;
        close(fd);
        errno = e;
        return cv_spool__io_error(self, tmp, "write");
    }
    close(fd);
    if (renameat(self->dir_fd, tmp, self->dir_fd, name))
        return cv_spool__io_error(self, name, "rename");
    if (fsync(self->dir_fd))
        return cv_spool__io_error(self, ".", "fsync");
    return 0;
}

/* ------------------------------------------------------------------ index */

entry_t *cv_spool__entry_push(cv_spool_t *self)
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

segment_t *cv_spool__seg_push(cv_spool_t *self, uint64_t first_id)
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
void cv_spool__seg_release(cv_spool_t *self, segment_t *seg)
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
        cv_spool__seg_name(name, seg->first_id);
        seg->fd = openat(self->dir_fd, name, O_RDONLY | O_CLOEXEC);
        if (seg->fd < 0)
            cv_spool__error(self, "%s/%s: open: %s", self->dir, name, strerror(errno));
    }
    return seg->fd;
}

/* Creates seg-<next id>.log and makes it current. */
static segment_t *s_start_segment(cv_spool_t *self)
{
    char name[SEG_NAME_LEN];
    cv_spool__seg_name(name, self->next_id);
    int fd = openat(self->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cv_spool__io_error(self, name, "create");
        return NULL;
    }
    segment_t *seg = cv_spool__seg_push(self, self->next_id);
    if (!seg) {
        close(fd);
        errno = ENOMEM;
        cv_spool__io_error(self, name, "create");
        return NULL;
    }
    seg->fd = fd;
    self->has_current = true;
    if (fsync(self->dir_fd)) {
        cv_spool__io_error(self, ".", "fsync");
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
        cv_spool__seg_name(name, cur->first_id);
        return cv_spool__io_error(self, name, "write");
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
        cv_spool__seg_name(name, cur->first_id);
        return cv_spool__io_error(self, name, "fdatasync");
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
        cv_spool__seg_release(self, cur);
    return 0;
}

/* ------------------------------------------------------------ settlement */

static int s_settled_write(cv_spool_t *self)
{
    if (self->slen == 0)
        return 0;
    if (s_write_all(self->settled_fd, self->sbuf, self->slen))
        return cv_spool__io_error(self, SETTLED_LOG, "write");
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
        return cv_spool__io_error(self, SETTLED_LOG, "fdatasync");
    self->settled_dirty = false;
    return 0;
}

/* Rewrites settled.log from memory: every id below the next one that is
   not an unsettled record is settled, so the log is the complement of the
   index (at most one range per unsettled record, plus one). */
int cv_spool__settled_compact(cv_spool_t *self)
{
    size_t cap = (size_t) (self->live_count + 1) * RANGE_BYTES, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        errno = ENOMEM;
        return cv_spool__io_error(self, SETTLED_LOG, "compact");
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
    int rc = cv_spool__replace_file(self, SETTLED_LOG, buf, n);
    free(buf);
    if (rc)
        return -1;
    if (self->settled_fd >= 0)
        close(self->settled_fd);
    self->settled_fd = openat(self->dir_fd, SETTLED_LOG, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (self->settled_fd < 0)
        return cv_spool__io_error(self, SETTLED_LOG, "open");
    self->pending.lo = 0;
    self->slen = 0;
    self->settled_dirty = false;
    return 0;
}

static void s_free(cv_spool_t *self)
{
    for (size_t i = 0; i < self->nsegs; i++)
        if (self->segs[i].fd >= 0)
            close(self->segs[i].fd);
    if (self->settled_fd >= 0)
        close(self->settled_fd);
    if (self->marks_fd >= 0)
        close(self->marks_fd);
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
    self->dir_fd = self->lock_fd = self->settled_fd = self->marks_fd = -1;
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
        rc = cv_spool__error(self, "%s: max_record_bytes over %u", dir, RECORD_LIMIT);
    self->wcap = HDR_BYTES + (size_t) self->opts.max_record_bytes;
    if (self->wcap < WBUF_MIN)
        self->wcap = WBUF_MIN;
    if (rc == 0 && !(self->wbuf = malloc(self->wcap)))
        rc = cv_spool__error(self, "%s: out of memory", dir);
    if (rc == 0)
        rc = cv_spool__open_dir(self, dir);
    if (rc == 0)
        rc = cv_spool__recover(self);
    if (rc == 0)
        rc = cv_spool__read_position(self);
    if (rc == 0)
        rc = cv_spool__marks_open(self);
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
    entry_t *e = cv_spool__entry_push(self);
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
    s_put32(p + 4, cv_spool__record_crc(p, p + HDR_BYTES, (uint32_t) len));
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
        if (cv_spool__replace_file(self, POSITION_FILE, self->position, strlen(self->position)))
            return -1;
        self->position_dirty = false;
    }
    return cv_spool__mark(self);
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
    cv_spool__seg_release(self, seg);
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
    cv_spool__seg_name(name, seg->first_id);
    size_t total = HDR_BYTES + e->len;
    unsigned char *buf = malloc(total);
    if (!buf)
        return cv_spool__error(self, "%s: out of memory", self->dir);
    if (seg == s_current(self) && e->offset >= seg->size)
        memcpy(buf, self->wbuf + (e->offset - seg->size), total);
    else {
        int fd = s_seg_fd(self, seg);
        if (fd < 0) {
            free(buf);
            return -1;
        }
        if (cv_spool__pread_all(fd, buf, total, e->offset)) {
            free(buf);
            return cv_spool__error(self, "%s/%s: read at offset %" PRIu64 ": %s", self->dir, name,
                                   e->offset, strerror(errno));
        }
    }
    if (cv_spool__get32(buf) != e->len || cv_spool__get64(buf + 8) != e->id
        || cv_spool__get32(buf + 4) != cv_spool__record_crc(buf, buf + HDR_BYTES, e->len)) {
        free(buf);
        errno = EIO;
        return cv_spool__error(self, "%s/%s: record %" PRIu64 " at offset %" PRIu64 " is corrupt",
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
    cv_spool__seg_name(name, seg->first_id);
    struct stat st;
    if (fstatat(self->dir_fd, name, &st, 0))
        return cv_spool__io_error(self, name, "stat");
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
        if (cv_spool__replace_file(self, NEXT_ID_FILE, text, (size_t) n))
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
            cv_spool__seg_name(name, seg->first_id);
            if (seg->fd >= 0)
                close(seg->fd);
            seg->fd = -1;
            if (unlinkat(self->dir_fd, name, 0)) {
                for (size_t j = i; j < self->nsegs; j++)        /* keep the array whole */
                    self->segs[kept++] = self->segs[j];
                self->nsegs = kept;
                return cv_spool__io_error(self, name, "unlink");
            }
        }
        self->nsegs = kept;
        if (fsync(self->dir_fd))
            return cv_spool__io_error(self, ".", "fsync");
    }
    if (cv_spool__settled_compact(self) || cv_spool__marks_compact(self, now))
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
