/*  spool_torture — appends to a spool until killed, then checks it.

        spool_torture run DIR [MAX]     append batches, print "lo hi" per synced batch
        spool_torture verify DIR        read the printed lines on stdin, check DIR

    `run` appends batches of 1..500 records whose bytes derive from their id,
    sets the position "last=<hi>", calls cv_spool_sync, then prints the
    batch's id range (so every printed id is durable), settles some ids
    ("acked") and runs gc now and then with retention 0 and 64 KiB segments,
    so rollover, settled.log compaction and segment deletion all happen
    while it may be killed. tests/it/spool_kill9.sh kills it with -9 at
    random moments and runs `verify`, which opens the spool (recovery must
    succeed) and checks:
      - printed ranges are increasing across runs: no durable id reused;
      - every record present has exactly the bytes of its id;
      - every printed id that is never settled is present;
      - the position is never ahead of the records: every id <= it that
        is never settled is present.
    A last line without its newline (killed mid-print) is ignored. */
#include "spool/cv_spool.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PAYLOAD 2000

static const cv_spool_opts_t s_opts = { .segment_bytes = 64 * 1024, .retention_days = 0 };

/* Ids settled after their batch: whole runs of 4096 ids (so segments get
   fully settled and deleted) and every third id elsewhere. */
static bool s_acked(uint64_t id)
{
    return (id / 4096) % 2 == 0 || id % 3 == 0;
}

static size_t s_payload(uint64_t id, unsigned char *buf)
{
    uint64_t x = id * 0x9E3779B97F4A7C15ull + 1;
    size_t len = (size_t) (x % MAX_PAYLOAD);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char) x;
    }
    return len;
}

static cv_spool_t *s_open(const char *dir)
{
    char err[512];
    cv_spool_t *sp = cv_spool_open(dir, &s_opts, err, sizeof err);
    if (!sp)
        fprintf(stderr, "spool_torture: open: %s\n", err);
    return sp;
}

static int s_run(const char *dir, uint64_t max)
{
    cv_spool_t *sp = s_open(dir);
    if (!sp)
        return 1;
    srand((unsigned) time(NULL) ^ (unsigned) clock());
    unsigned char buf[MAX_PAYLOAD];
    int rc = 0;
    for (uint64_t done = 0, batch = 1; done < max && rc == 0; batch++) {
        uint64_t lo = cv_spool_next_id(sp), hi = 0, id;
        int n = 1 + rand() % 500;
        for (int i = 0; i < n && rc == 0; i++) {
            size_t len = s_payload(cv_spool_next_id(sp), buf);
            rc = cv_spool_append(sp, buf, len, &hi);
        }
        char position[64];
        snprintf(position, sizeof position, "last=%" PRIu64, hi);
        if (rc || cv_spool_set_position(sp, position) || cv_spool_sync(sp)) {
            rc = 1;
            break;
        }
        printf("%" PRIu64 " %" PRIu64 "\n", lo, hi);
        fflush(stdout);
        for (id = lo; id <= hi && rc == 0; id++)
            if (s_acked(id))
                rc = cv_spool_settle(sp, id);
        if (rc == 0 && batch % 20 == 0 && cv_spool_gc(sp, time(NULL)) < 0)
            rc = 1;
        done += (uint64_t) n;
    }
    cv_spool_destroy(&sp);
    return rc ? 1 : 0;
}

static int s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int s_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spool_torture verify: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* Reads the complete "lo hi" lines; checks they increase. */
static int s_read_printed(uint64_t **out, size_t *nout)
{
    size_t n = 0, cap = 1024;
    uint64_t *r = malloc(cap * sizeof *r), prev_hi = 0;
    char line[128];
    while (r && fgets(line, sizeof line, stdin)) {
        if (!strchr(line, '\n'))
            break;                              /* killed mid-line */
        uint64_t lo, hi;
        if (sscanf(line, "%" SCNu64 " %" SCNu64, &lo, &hi) != 2 || lo > hi) {
            free(r);
            return s_fail("bad line after id %" PRIu64, prev_hi);
        }
        if (lo <= prev_hi) {
            free(r);
            return s_fail("id %" PRIu64 " reused (already synced up to %" PRIu64 ")", lo, prev_hi);
        }
        if (n + 2 > cap) {
            uint64_t *bigger = realloc(r, (cap *= 2) * sizeof *r);
            if (!bigger) {
                free(r);
                return s_fail("out of memory");
            }
            r = bigger;
        }
        r[n++] = lo;
        r[n++] = hi;
        prev_hi = hi;
    }
    if (!r)
        return s_fail("out of memory");
    *out = r;
    *nout = n / 2;
    return 0;
}

static int s_verify(const char *dir)
{
    uint64_t *printed = NULL;
    size_t nprinted = 0;
    if (s_read_printed(&printed, &nprinted))
        return 1;
    cv_spool_t *sp = s_open(dir);
    if (!sp) {
        free(printed);
        return 1;
    }
    uint64_t top = cv_spool_next_id(sp);
    unsigned char *present = calloc(top + 1, 1), want[MAX_PAYLOAD];
    int rc = present ? 0 : s_fail("out of memory");
    uint64_t after = 0, id, count = 0;
    void *data;
    size_t len;
    int got;
    while (rc == 0 && (got = cv_spool_next_unsettled(sp, after, &id, &data, &len)) == 1) {
        if (id <= after || id >= top)
            rc = s_fail("id %" PRIu64 " out of order after %" PRIu64, id, after);
        else if (len != s_payload(id, want) || memcmp(data, want, len))
            rc = s_fail("record %" PRIu64 " has wrong bytes (%zu long)", id, len);
        else
            present[id] = 1;
        free(data);
        after = id;
        count++;
    }
    if (rc == 0 && got < 0)
        rc = s_fail("cannot read the record after %" PRIu64, after);
    for (size_t i = 0; i < nprinted && rc == 0; i++)
        for (id = printed[2 * i]; id <= printed[2 * i + 1] && rc == 0; id++)
            if (!s_acked(id) && (id >= top || !present[id]))
                rc = s_fail("synced record %" PRIu64 " is missing (next id %" PRIu64 ")", id, top);
    const char *pos = cv_spool_position(sp);
    uint64_t last = 0;
    if (rc == 0 && pos && sscanf(pos, "last=%" SCNu64, &last) != 1)
        rc = s_fail("bad position");
    for (id = 1; id <= last && rc == 0; id++)
        if (!s_acked(id) && (id >= top || !present[id]))
            rc = s_fail("position %" PRIu64 " is ahead of missing record %" PRIu64, last, id);
    if (rc == 0)
        printf("ok: %zu batches printed, %" PRIu64 " unsettled, next id %" PRIu64 ", position %" PRIu64 "\n",
               nprinted, count, top, last);
    free(present);
    free(printed);
    cv_spool_destroy(&sp);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "run") == 0)
        return s_run(argv[2], argc > 3 ? strtoull(argv[3], NULL, 10) : 2000000);
    if (argc == 3 && strcmp(argv[1], "verify") == 0)
        return s_verify(argv[2]);
    fprintf(stderr, "usage: spool_torture run DIR [MAX] | verify DIR < printed\n");
    return 2;
}
