/*  cv_spool_recover — opening a spool: rebuilds the state of cv_spool.c
    from what is on disk (see cv_spool.h for the on-disk format).

    Opening. settled.log is read into sorted, merged ranges; then each
    segment is mmapped and walked record by record (length, CRC, expected
    id); only records outside the settled ranges enter the index. A bad
    record is "torn" (cut) when it is in the last segment and no valid
    record follows it; otherwise open fails naming the file and offset.
    (Writing, at the top of cv_spool.c, says why only the last segment can
    hold a torn record.) A bad settled.log record only loses settlements
    (records are resent), so it is logged and settled.log is rewritten from
    memory.

    Ids. The next id is the largest of: the last record's id + 1, the first
    id of an empty last segment, and the `next-id` file, which gc writes
    before it deletes segments (it may delete all of them).

    Errors. Open returns its reason in err: while the spool is opening,
    cv_spool__error keeps the message there instead of logging it. */
#include "cv_spool.h"
#include "cv_spool_int.h"

#include "cv_crc32c.h"
#include "cv_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int cv_spool__open_dir(cv_spool_t *self, const char *dir)
{
    self->dir = strdup(dir);
    if (!self->dir)
        return cv_spool__error(self, "%s: out of memory", dir);
    bool created = mkdir(dir, 0700) == 0;
    if (!created && errno != EEXIST)
        return cv_spool__error(self, "%s: mkdir: %s", dir, strerror(errno));
    self->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0)
        return cv_spool__error(self, "%s: open: %s", dir, strerror(errno));
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
        return cv_spool__error(self, "%s/lock: open: %s", dir, strerror(errno));
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB))
        return cv_spool__error(self, "%s: %s", dir, errno == EWOULDBLOCK ? "spool in use by another process"
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
        return cv_spool__error(self, "%s: opendir: %s", self->dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        uint64_t first = s_parse_seg_name(de->d_name);
        if (first && !cv_spool__seg_push(self, first))
            rc = cv_spool__error(self, "%s: out of memory", self->dir);
        else if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0
                 && unlinkat(self->dir_fd, de->d_name, 0))
            rc = cv_spool__error(self, "%s/%s: unlink: %s", self->dir, de->d_name, strerror(errno));
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
        return errno == ENOENT ? 0 : cv_spool__error(self, "%s/%s: open: %s", self->dir, NEXT_ID_FILE,
                                                     strerror(errno));
    char text[32];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n < 0)
        return cv_spool__error(self, "%s/%s: read: %s", self->dir, NEXT_ID_FILE, strerror(errno));
    text[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || strcmp(end, "\n") || v == 0 || text[0] < '0' || text[0] > '9')
        return cv_spool__error(self, "%s/%s: not a record id", self->dir, NEXT_ID_FILE);
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
        return errno == ENOENT ? 0 : cv_spool__error(self, "%s/%s: open: %s", self->dir, SETTLED_LOG,
                                                     strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return cv_spool__error(self, "%s/%s: stat: %s", self->dir, SETTLED_LOG, strerror(errno));
    }
    uint64_t whole = (uint64_t) st.st_size / RANGE_BYTES;
    range_t *r = whole ? malloc(whole * sizeof *r) : NULL;
    if (whole && !r) {
        close(fd);
        return cv_spool__error(self, "%s/%s: out of memory", self->dir, SETTLED_LOG);
    }
    *rewrite = (uint64_t) st.st_size % RANGE_BYTES != 0;
    unsigned char buf[RANGES_BUFFERED * RANGE_BYTES];
    size_t n = 0;
    for (uint64_t done = 0; done < whole && n == done;) {
        size_t chunk = whole - done < RANGES_BUFFERED ? (size_t) (whole - done) : RANGES_BUFFERED;
        if (cv_spool__pread_all(fd, buf, chunk * RANGE_BYTES, done * RANGE_BYTES)) {
            int e = errno;
            close(fd);
            free(r);
            return cv_spool__error(self, "%s/%s: read: %s", self->dir, SETTLED_LOG, strerror(e));
        }
        for (size_t i = 0; i < chunk; i++) {
            const unsigned char *p = buf + i * RANGE_BYTES;
            range_t x = { cv_spool__get64(p), cv_spool__get64(p + 8) };
            if (cv_spool__get32(p + 16) != cv_crc32c(0, p, 16) || x.lo == 0 || x.lo > x.hi) {
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
    uint32_t n = cv_spool__get32(p);
    if (n > size - off - HDR_BYTES)
        return REC_SHORT;
    if (cv_spool__get32(p + 4) != cv_spool__record_crc(p, p + HDR_BYTES, n))
        return REC_BAD_CRC;
    if (cv_spool__get64(p + 8) != id)
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
        uint64_t k = cv_spool__get64(map + q + 8);
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
    cv_spool__seg_name(name, seg->first_id);
    int fd = openat(self->dir_fd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return cv_spool__error(self, "%s/%s: open: %s", self->dir, name, strerror(e));
    }
    uint64_t size = (uint64_t) st.st_size, off = 0, id = seg->first_id;
    const unsigned char *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return cv_spool__error(self, "%s/%s: mmap: %s", self->dir, name, strerror(e));
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
            entry_t *e = cv_spool__entry_push(self);
            if (!e) {
                rc = cv_spool__error(self, "%s/%s: out of memory", self->dir, name);
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
            rc = cv_spool__error(self, "%s/%s: record at offset %" PRIu64 " has id %" PRIu64 ", %" PRIu64
                                 " expected", self->dir, name, off, cv_spool__get64(map + off + 8), id);
        else if (follows)
            rc = cv_spool__error(self, "%s/%s: corrupt record at offset %" PRIu64 " (valid records follow "
                                 "at offset %" PRIu64 ")", self->dir, name, off, follows);
        else if (!last)
            rc = cv_spool__error(self, "%s/%s: corrupt or truncated record at offset %" PRIu64
                                 " in a sealed segment", self->dir, name, off);
    }
    if (map)
        munmap((void *) map, size);
    if (rc == 0 && off < size) {
        cv_warn("spool", "%s/%s: cut a torn last record at offset %" PRIu64 " (%" PRIu64 " bytes)",
                self->dir, name, off, size - off);
        if (ftruncate(fd, (off_t) off) || fdatasync(fd))
            rc = cv_spool__error(self, "%s/%s: truncate: %s", self->dir, name, strerror(errno));
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
        cv_spool__seg_name(name, last->first_id);
        if (last->fd >= 0)
            close(last->fd);
        self->nsegs--;
        if (unlinkat(self->dir_fd, name, 0))
            return cv_spool__error(self, "%s/%s: unlink: %s", self->dir, name, strerror(errno));
        return 0;
    }
    cv_spool__seg_release(self, last);
    return 0;
}

int cv_spool__recover(cv_spool_t *self)
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
            rc = cv_spool__error(self, "%s: segments overlap at id %" PRIu64, self->dir, seg->first_id);
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
        return cv_spool__settled_compact(self);
    self->settled_fd = openat(self->dir_fd, SETTLED_LOG, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (self->settled_fd < 0)
        return cv_spool__error(self, "%s/%s: open: %s", self->dir, SETTLED_LOG, strerror(errno));
    if (fsync(self->dir_fd))        /* removed temps, created files */
        return cv_spool__error(self, "%s: fsync: %s", self->dir, strerror(errno));
    return 0;
}

int cv_spool__read_position(cv_spool_t *self)
{
    int fd = openat(self->dir_fd, POSITION_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : cv_spool__error(self, "%s/%s: open: %s", self->dir, POSITION_FILE,
                                                     strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st))
        rc = cv_spool__error(self, "%s/%s: stat: %s", self->dir, POSITION_FILE, strerror(errno));
    else if (st.st_size > CV_SPOOL_POSITION_MAX)
        rc = cv_spool__error(self, "%s/%s: larger than %d bytes", self->dir, POSITION_FILE,
                             CV_SPOOL_POSITION_MAX);
    else if (!(self->position = calloc(1, (size_t) st.st_size + 1)))
        rc = cv_spool__error(self, "%s/%s: out of memory", self->dir, POSITION_FILE);
    else if (cv_spool__pread_all(fd, self->position, (size_t) st.st_size, 0))
        rc = cv_spool__error(self, "%s/%s: read: %s", self->dir, POSITION_FILE, strerror(errno));
    close(fd);
    return rc;
}
