/*  cv_spool_resend — what the spool keeps so an adapter can resend what a
    restore of the hub's database lost (docs/adapters.md "After a restore").

    The problem. The hub ACKs an event once it is committed; the adapter
    then settles it. If the database is later restored to a point P, the
    events the hub committed after P are gone, and the adapter has settled
    them. Settled records stay in their segments for retention_days; what
    is needed is (1) which of them may have been settled at or after P and
    (2) a way to send them again. The hub deduplicates by event id and
    content hash, so sending more than was lost is harmless: what survived
    the restore comes back as duplicates.

    (1) Marks. At a sync (at most once per MARK_EVERY_MS, and only when
    something moved) the spool appends to marks.log one mark
        [i64 unix time in ms][u64 low][u32 crc32c of the 16 bytes]
    where low is the lowest id not settled in memory at that time (the next
    id when every record is settled). A record settled at or after P was
    either unsettled at the time of every mark written before P, or appended
    after it: its id is >= the low of the last mark written before P. So
    cv_spool_settled_since(P) reads the marks in file order and returns the
    low of the last mark whose time is < P, stopping at the first mark at or
    after P (a wall clock that jumped back then only makes the answer
    lower, i.e. resends more); 1 when no mark is older than P. Note the
    criterion: the time a record was SETTLED, not spooled; a record spooled
    before P while the hub was away and committed after P is lost too.
    Marks need no fdatasync: a lost mark only makes an earlier one answer,
    which is again lower. A torn tail is cut when the spool opens; gc drops
    marks older than the retention (the segments they describe are gone)
    once there is a day's worth of them to drop.

    (2) Unsettling. cv_spool_unsettle_from(id) puts every retained record
    with an id >= id back into the index as unsettled and rewrites
    settled.log as the complement of the index (temp file, fdatasync,
    rename: one atomic step). The client then resends them like records
    left by a crash, in id order. No byte is copied; a run interrupted by
    kill -9 is simply run again (it unsettles the same records). */
#include "cv_spool.h"
#include "cv_spool_int.h"

#include "cv_crc32c.h"
#include "cv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MARKS_LOG     "marks.log"
#define MARK_BYTES    20
#define MARK_EVERY_MS 1000
#define DAY_MS        86400000LL
#define RECORD_CEILING (64u << 20)     /* cv_spool.c's limit: a record of an older config may be larger */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_put_mark(unsigned char *p, int64_t ms, uint64_t low)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char) ((uint64_t) ms >> (8 * i));
        p[8 + i] = (unsigned char) (low >> (8 * i));
    }
    uint32_t crc = cv_crc32c(0, p, 16);
    for (int i = 0; i < 4; i++)
        p[16 + i] = (unsigned char) (crc >> (8 * i));
}

static bool s_get_mark(const unsigned char *p, int64_t *ms, uint64_t *low)
{
    if (cv_spool__get32(p + 16) != cv_crc32c(0, p, 16))
        return false;
    *ms = (int64_t) cv_spool__get64(p);
    *low = cv_spool__get64(p + 8);
    return true;
}

/* The lowest id not settled in memory (the next id when none). */
static uint64_t s_low(const cv_spool_t *self)
{
    for (size_t i = 0; i < self->nents; i++)
        if (!self->ents[i].settled)
            return self->ents[i].id;
    return self->next_id;
}

int cv_spool__marks_open(cv_spool_t *self)
{
    self->marks_fd = openat(self->dir_fd, MARKS_LOG, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (self->marks_fd < 0)
        return cv_spool__error(self, "%s/%s: open: %s", self->dir, MARKS_LOG, strerror(errno));
    struct stat st;
    if (fstat(self->marks_fd, &st))
        return cv_spool__error(self, "%s/%s: stat: %s", self->dir, MARKS_LOG, strerror(errno));
    if (st.st_size % MARK_BYTES && ftruncate(self->marks_fd, st.st_size - st.st_size % MARK_BYTES))
        return cv_spool__error(self, "%s/%s: truncate: %s", self->dir, MARKS_LOG, strerror(errno));
    return 0;
}

int cv_spool__mark(cv_spool_t *self)
{
    int64_t now = s_now_ms();
    if (self->marks_fd < 0 || (now >= self->mark_ms && now - self->mark_ms < MARK_EVERY_MS))
        return 0;
    uint64_t low = s_low(self);
    if (low == self->mark_low && self->next_id == self->mark_next)
        return 0;
    unsigned char rec[MARK_BYTES];
    s_put_mark(rec, now, low);
    if (write(self->marks_fd, rec, sizeof rec) != (ssize_t) sizeof rec)
        return cv_spool__io_error(self, MARKS_LOG, "write");
    self->mark_ms = now;
    self->mark_low = low;
    self->mark_next = self->next_id;
    return 0;
}

/* Reads marks.log whole (malloc'd, a multiple of MARK_BYTES). */
static int s_read_marks(cv_spool_t *self, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    struct stat st;
    if (fstat(self->marks_fd, &st))
        return cv_spool__io_error(self, MARKS_LOG, "stat");
    size_t n = (size_t) st.st_size - (size_t) st.st_size % MARK_BYTES;
    if (n == 0)
        return 0;
    if (!(*buf = malloc(n))) {
        errno = ENOMEM;
        return cv_spool__io_error(self, MARKS_LOG, "read");
    }
    if (cv_spool__pread_all(self->marks_fd, *buf, n, 0)) {
        free(*buf);
        *buf = NULL;
        return cv_spool__io_error(self, MARKS_LOG, "read");
    }
    *len = n;
    return 0;
}

int cv_spool__marks_compact(cv_spool_t *self, time_t now)
{
    if (self->marks_fd < 0)
        return 0;
    int64_t cutoff = (int64_t) now * 1000 - (int64_t) self->opts.retention_days * DAY_MS;
    unsigned char first[MARK_BYTES];
    int64_t ms;
    uint64_t low;
    ssize_t got = pread(self->marks_fd, first, sizeof first, 0);
    if (got != (ssize_t) sizeof first || !s_get_mark(first, &ms, &low) || ms >= cutoff - DAY_MS)
        return 0;                   /* empty, or less than a day's worth to drop */
    unsigned char *buf;
    size_t len, kept = 0;
    if (s_read_marks(self, &buf, &len))
        return -1;
    for (size_t off = 0; off < len; off += MARK_BYTES)
        if (s_get_mark(buf + off, &ms, &low) && ms >= cutoff) {
            memmove(buf + kept, buf + off, MARK_BYTES);
            kept += MARK_BYTES;
        }
    int rc = cv_spool__replace_file(self, MARKS_LOG, buf, kept);
    free(buf);
    if (rc)
        return -1;
    close(self->marks_fd);
    self->marks_fd = openat(self->dir_fd, MARKS_LOG, O_RDWR | O_APPEND | O_CLOEXEC);
    if (self->marks_fd < 0)
        return cv_spool__io_error(self, MARKS_LOG, "open");
    return 0;
}

int cv_spool_settled_since(cv_spool_t *self, int64_t since_ms, uint64_t *first_id)
{
    *first_id = 1;
    if (self->broken)
        return -1;
    unsigned char *buf;
    size_t len;
    if (s_read_marks(self, &buf, &len))
        return -1;
    for (size_t off = 0; off < len; off += MARK_BYTES) {
        int64_t ms;
        uint64_t low;
        if (!s_get_mark(buf + off, &ms, &low))
            continue;               /* a damaged mark: the one before answers */
        if (ms >= since_ms)
            break;
        *first_id = low;
    }
    free(buf);
    return 0;
}

static int s_id_cmp(const void *a, const void *b)
{
    uint64_t x = ((const entry_t *) a)->id, y = ((const entry_t *) b)->id;
    return x < y ? -1 : x > y;
}

/* True when id is an entry of the (compacted, sorted) index. */
static bool s_indexed(const entry_t *ents, size_t n, uint64_t id)
{
    return n > 0 && bsearch(&(entry_t) { .id = id }, ents, n, sizeof *ents, s_id_cmp) != NULL;
}

/* Appends to *add the settled records of seg with an id >= from. */
static int s_collect(cv_spool_t *self, segment_t *seg, uint64_t from, entry_t **add, size_t *nadd,
                     size_t *cap)
{
    char name[SEG_NAME_LEN];
    cv_spool__seg_name(name, seg->first_id);
    int fd = openat(self->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cv_spool__io_error(self, name, "open");
    uint64_t off = 0;
    int rc = 0;
    for (uint64_t id = seg->first_id; rc == 0 && id < seg->first_id + seg->count; id++) {
        unsigned char hdr[HDR_BYTES];
        if (cv_spool__pread_all(fd, hdr, sizeof hdr, off)) {
            rc = cv_spool__io_error(self, name, "read");
            break;
        }
        uint32_t len = cv_spool__get32(hdr);
        if (cv_spool__get64(hdr + 8) != id || len > RECORD_CEILING) {   /* recovery checked the CRCs */
            errno = EIO;
            rc = cv_spool__io_error(self, name, "record header");
            break;
        }
        if (id >= from && !s_indexed(self->ents, self->nents, id)) {
            if (*nadd == *cap) {
                size_t ncap = *cap ? *cap * 2 : 1024;
                entry_t *p = realloc(*add, ncap * sizeof *p);
                if (!p) {
                    errno = ENOMEM;
                    rc = cv_spool__io_error(self, name, "index");
                    break;
                }
                *add = p;
                *cap = ncap;
            }
            (*add)[(*nadd)++] = (entry_t) { .id = id, .offset = off, .len = len };
            seg->live++;
            self->live_count++;
            self->live_bytes += len;
        }
        off += HDR_BYTES + len;
    }
    close(fd);
    return rc;
}

int64_t cv_spool_unsettle_from(cv_spool_t *self, uint64_t from)
{
    if (cv_spool_sync(self))        /* every record on disk, the buffer empty */
        return -1;
    size_t n = 0;                   /* the index without its settled entries */
    for (size_t i = 0; i < self->nents; i++)
        if (!self->ents[i].settled)
            self->ents[n++] = self->ents[i];
    self->nents = n;
    self->nsettled = 0;

    entry_t *add = NULL;
    size_t nadd = 0, cap = 0;
    for (size_t i = 0; i < self->nsegs; i++) {
        segment_t *seg = &self->segs[i];
        if (seg->first_id + seg->count > from && s_collect(self, seg, from, &add, &nadd, &cap)) {
            free(add);
            return -1;
        }
    }
    if (nadd == 0) {
        free(add);
        return 0;
    }
    entry_t *merged = malloc((self->nents + nadd) * sizeof *merged);
    if (!merged) {
        free(add);
        errno = ENOMEM;
        return cv_spool__io_error(self, "index", "unsettle");
    }
    size_t a = 0, b = 0, m = 0;     /* both sorted by id, no id in both */
    while (a < self->nents || b < nadd)
        merged[m++] = b == nadd || (a < self->nents && self->ents[a].id < add[b].id) ? self->ents[a++]
                                                                                   : add[b++];
    free(add);
    free(self->ents);
    self->ents = merged;
    self->nents = self->ents_cap = m;
    if (cv_spool__settled_compact(self))
        return -1;
    cv_info("spool", "%s: %zu settled records from id %" PRIu64 " marked to be sent again", self->dir,
            nadd, from);
    return (int64_t) nadd;
}
