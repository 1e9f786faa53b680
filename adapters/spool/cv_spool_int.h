/*  cv_spool_int — private to cv_spool.c and cv_spool_recover.c, not
    installed and not for other code: the spool's structures, the constants
    both files use, and the internal functions they share. Shared functions
    are named cv_spool__* (double underscore: internal). The design is
    explained at the top of cv_spool.c (writing, memory, errors) and of
    cv_spool_recover.c (opening). */
#ifndef CV_SPOOL_INT_H
#define CV_SPOOL_INT_H

#include "cv_spool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HDR_BYTES        16                      /* u32 len, u32 crc, u64 id */
#define RANGE_BYTES      20                      /* u64 lo, u64 hi, u32 crc */
#define RANGES_BUFFERED  1024
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

    int marks_fd;                   /* marks.log (cv_spool_resend.c); -1: none */
    int64_t mark_ms;                /* the last mark written: its time, low id */
    uint64_t mark_low, mark_next;   /* and the next id then */
};

/* little-endian fields of the on-disk records, read where they are */
static inline uint32_t cv_spool__get32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static inline uint64_t cv_spool__get64(const unsigned char *p)
{
    return (uint64_t) cv_spool__get32(p) | (uint64_t) cv_spool__get32(p + 4) << 32;
}

/* cv_spool.c: helpers */
uint32_t cv_spool__record_crc(const unsigned char *hdr, const unsigned char *data, uint32_t len);
void cv_spool__seg_name(char out[SEG_NAME_LEN], uint64_t first_id);
int cv_spool__error(cv_spool_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cv_spool__pread_all(int fd, void *buf, size_t len, uint64_t off);
int cv_spool__io_error(cv_spool_t *self, const char *name, const char *op);
int cv_spool__replace_file(cv_spool_t *self, const char *name, const void *data, size_t len);

/* cv_spool.c: index, segments, settlement */
entry_t *cv_spool__entry_push(cv_spool_t *self);
segment_t *cv_spool__seg_push(cv_spool_t *self, uint64_t first_id);
void cv_spool__seg_release(cv_spool_t *self, segment_t *seg);
int cv_spool__settled_compact(cv_spool_t *self);

/* cv_spool_recover.c: the steps of cv_spool_open */
int cv_spool__open_dir(cv_spool_t *self, const char *dir);
int cv_spool__recover(cv_spool_t *self);
int cv_spool__read_position(cv_spool_t *self);

/* cv_spool_resend.c: settlement marks (for a resend after a restore) */
int cv_spool__marks_open(cv_spool_t *self);
int cv_spool__mark(cv_spool_t *self);
int cv_spool__marks_compact(cv_spool_t *self, time_t now);

#endif
