/*  cv_spool — the adapter's on-disk spool of events not yet settled.

    Every event an adapter reads from its software is appended here and made
    durable (fdatasync, once per batch) before it is sent to the hub; it
    stays until the hub ACKs or NACKs it ("settled"). After a crash or a
    reconnect the adapter resends every unsettled record, in id order.

    On disk (one directory per adapter source, mode 0700, files 0600):
      seg-<first id, 20 digits>.log   append-only segments of records:
                                      [u32 length][u32 crc32c][u64 id][bytes]
                                      (little-endian; crc over length, id and
                                      bytes; ids consecutive in a segment)
      settled.log                     append-only settled id ranges, each
                                      [u64 lo][u64 hi][u32 crc32c of lo, hi]
      position                        the adapter's source position (cursor,
                                      file and line), replaced atomically
                                      (write temp, fdatasync, rename)
      next-id                         the next id in decimal, written by gc
                                      before it deletes segments
      marks.log                       settlement marks, at most one a second:
                                      [i64 unix ms][u64 lowest unsettled id]
                                      [u32 crc32c] (cv_spool_resend.c)
      lock                            flock'ed while the spool is open: one
                                      process per spool
    A torn last record (short or bad CRC, in the last segment, with no valid
    record after it) is cut off on open. Any other bad record makes open
    fail with the file and offset (nothing is dropped silently); a bad
    settled.log record only loses settlements, so it is logged and the
    records are resent. A segment whose records are all settled is deleted
    by cv_spool_gc once it is older (mtime) than the retention
    (retention_days, so events can be resent after a database restore); the
    current segment too, when idle that long (the next append starts one).

    Settlement need not be durable at once: losing it only means a resend,
    which the hub deduplicates. Appends are durable only after cv_spool_sync.
    Unsettled records are indexed in memory (id, segment, offset, length);
    their bytes are read back from disk when resent. After an I/O error
    (logged once) every call fails: destroy and reopen the spool, which
    recovers from what is on disk. One thread at a time. */
#ifndef CV_SPOOL_H
#define CV_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct cv_spool cv_spool_t;

typedef struct {
    uint64_t segment_bytes;   /* start a new segment past this size (default 64 MiB) */
    uint64_t max_bytes;       /* unsettled bytes above which cv_spool_full() is true (default 1 GiB) */
    int retention_days;       /* keep fully settled segments this long (0: delete at once) */
    uint32_t max_record_bytes;/* refuse appends larger than this (default 1 MiB, at most 64 MiB) */
} cv_spool_opts_t;                /* zero sizes mean the defaults; NULL opts: retention 7 days */

#define CV_SPOOL_POSITION_MAX 4096  /* bytes of position text */

/* Opens or creates the spool in dir (created if missing, not its parents).
   NULL opts means defaults. Returns NULL with a reason in err. Destroy
   syncs what was appended, settled or set. */
cv_spool_t *cv_spool_open(const char *dir, const cv_spool_opts_t *opts, char *err, size_t errlen);
void cv_spool_destroy(cv_spool_t **self_p);

/* Appends one record; its id (1, 2, ... never reused, even across restarts)
   goes to *id_out. Not durable until cv_spool_sync. -1 on I/O error or a
   record over max_record_bytes. */
int cv_spool_append(cv_spool_t *self, const void *data, size_t len, uint64_t *id_out);

/* Writes out and fdatasyncs appended records (and the position, if set
   since the last sync). Call once per batch, before sending the batch. */
int cv_spool_sync(cv_spool_t *self);

/* Marks a record settled (ACKed or NACKed). Unknown or already settled ids
   are ignored. */
int cv_spool_settle(cv_spool_t *self, uint64_t id);

/* The first unsettled record with id > after: returns 1 and fills *id and
   a malloc'd copy of its bytes (*data, *len; caller frees), 0 when there is
   none, -1 on I/O error. */
int cv_spool_next_unsettled(cv_spool_t *self, uint64_t after, uint64_t *id, void **data, size_t *len);

/* The id the next cv_spool_append will give. */
uint64_t cv_spool_next_id(const cv_spool_t *self);

/* True when record id was appended and is settled since. */
bool cv_spool_is_settled(const cv_spool_t *self, uint64_t id);

uint64_t cv_spool_unsettled_count(const cv_spool_t *self);
uint64_t cv_spool_unsettled_bytes(const cv_spool_t *self);

/* True when unsettled bytes exceed max_bytes: stop reading from the source. */
bool cv_spool_full(const cv_spool_t *self);

/* Deletes fully settled segments older than the retention; compacts
   settled.log. Returns the number of segments deleted or -1. */
int cv_spool_gc(cv_spool_t *self, time_t now);

/* The adapter's source position (NUL-terminated text, at most
   CV_SPOOL_POSITION_MAX bytes, longer is refused with -1):
   set is persisted with the next cv_spool_sync; get returns the last
   persisted or set value, or NULL. */
int cv_spool_set_position(cv_spool_t *self, const char *position);
const char *cv_spool_position(const cv_spool_t *self);

/* After a restore of the hub's database (cv_spool_resend.c). The lowest
   id that may have been settled at or after since_ms (unix time in ms),
   from the marks: every record settled since then has an id >= *first_id
   (1 when no mark is that old). 0 or -1. */
int cv_spool_settled_since(cv_spool_t *self, int64_t since_ms, uint64_t *first_id);

/* Marks every retained settled record with an id >= from unsettled again
   (durably: settled.log is rewritten), so the client sends it again.
   Returns how many, or -1. */
int64_t cv_spool_unsettle_from(cv_spool_t *self, uint64_t from);

#endif
