/*  test_spool — the adapter's on-disk spool (adapters/spool/cv_spool.c) and its
    checksum (lib/cv_crc32c.c), on real files in a mkdtemp directory.

    A crash is simulated by copying the spool's files while it is still
    open ("snapshot"): after kill -9 the disk holds exactly what the process
    had written, so opening the copy is opening after the crash. Damage is
    done by truncating files or flipping bytes at known record offsets
    (a record is a 16-byte header plus its payload). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cv_crc32c.h"
#include "spool/cv_spool.h"

#define HDR 16
#define DAY 86400

#include "spool_fixture.h"

static const char *s_path(const char *dir, const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static const char *s_seg(const char *dir, uint64_t first_id)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/seg-%020" PRIu64 ".log", dir, first_id);
    return path;
}

static long s_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long) st.st_size : -1;
}

static int s_count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strncmp(de->d_name, "seg-", 4) == 0;
    closedir(d);
    return n;
}

/* Deterministic payload of a record, 8 to ~120 bytes. */
static size_t s_payload(uint64_t id, unsigned char buf[256])
{
    int n = snprintf((char *) buf, 256, "{\"id\":%" PRIu64 ",\"pad\":\"", id);
    size_t len = (size_t) n + id % 97;
    for (size_t i = (size_t) n; i < len; i++)
        buf[i] = (unsigned char) ('a' + (id + i) % 26);
    return len;
}

static cv_spool_t *s_open(const char *dir, const cv_spool_opts_t *opts)
{
    char err[512] = "";
    cv_spool_t *sp = cv_spool_open(dir, opts, err, sizeof err);
    if (!sp)
        print_error("open failed: %s\n", err);
    assert_non_null(sp);
    return sp;
}

/* Appends the payload of the expected id; checks the id given. */
static void s_append(cv_spool_t *sp, uint64_t expect_id)
{
    unsigned char buf[256];
    size_t len = s_payload(expect_id, buf);
    uint64_t id = 0;
    assert_int_equal(cv_spool_append(sp, buf, len, &id), 0);
    assert_int_equal(id, expect_id);
}

/* The first unsettled record after `after` is expect_id, with its bytes. */
static void s_expect_next(cv_spool_t *sp, uint64_t after, uint64_t expect_id)
{
    uint64_t id = 0;
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(cv_spool_next_unsettled(sp, after, &id, &data, &len), 1);
    assert_int_equal(id, expect_id);
    unsigned char want[256];
    size_t want_len = s_payload(expect_id, want);
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, len);
    free(data);
}

static void s_expect_none(cv_spool_t *sp, uint64_t after)
{
    uint64_t id;
    void *data = NULL;
    size_t len;
    assert_int_equal(cv_spool_next_unsettled(sp, after, &id, &data, &len), 0);
    assert_null(data);
}

/* Offset of record id in segment first (all records there unsettled or
   not, payloads from s_payload). */
static long s_offset(uint64_t first, uint64_t id)
{
    long off = 0;
    unsigned char buf[256];
    for (uint64_t i = first; i < id; i++)
        off += HDR + (long) s_payload(i, buf);
    return off;
}

static void s_flip(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* Copies the spool's files as they are now: what a crash would leave. */
static void s_snapshot(const char *src, const char *dst)
{
    assert_int_equal(mkdir(dst, 0700), 0);
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char from[512], to[512];
        snprintf(from, sizeof from, "%s/%s", src, de->d_name);
        snprintf(to, sizeof to, "%s/%s", dst, de->d_name);
        int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(in >= 0 && out >= 0);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
            assert_int_equal(write(out, buf, (size_t) n), n);
        close(in);
        close(out);
    }
    closedir(d);
}

/* ------------------------------------------------------------------ tests */

static void test_crc32c(void **state)
{
    unsigned char zeros[32] = { 0 }, ones[32], inc[32];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++)
        inc[i] = (unsigned char) i;
    /* RFC 3720 (iSCSI) test vectors */
    assert_int_equal(cv_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(cv_crc32c(0, zeros, 32), 0x8A9136AAu);
    assert_int_equal(cv_crc32c(0, ones, 32), 0x62A8AB43u);
    assert_int_equal(cv_crc32c(0, inc, 32), 0x46DD794Eu);
    assert_int_equal(cv_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(cv_crc32c(0, "", 0), 0);

    unsigned char buf[1100];
    srand(7);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char) rand();
    for (size_t start = 0; start < 9; start++)
        for (size_t len = 0; len + start <= sizeof buf; len += 37) {
            uint32_t whole = cv_crc32c(0, buf + start, len);
            assert_int_equal(whole, cv_crc32c_portable(0, buf + start, len));
            size_t cut = len / 3;
            assert_int_equal(whole, cv_crc32c(cv_crc32c(0, buf + start, cut), buf + start + cut, len - cut));
        }
}

static void test_append_sync_reopen(void **state)
{
    fixture_t *f = *state;
    cv_spool_t *sp = s_open(f->dir, NULL);
    uint64_t bytes = 0;
    unsigned char buf[256];
    for (uint64_t id = 1; id <= 10; id++) {
        s_append(sp, id);
        bytes += s_payload(id, buf);
    }
    assert_int_equal(cv_spool_sync(sp), 0);
    assert_int_equal(s_size(s_seg(f->dir, 1)), s_offset(1, 11));
    cv_spool_destroy(&sp);
    assert_null(sp);

    sp = s_open(f->dir, NULL);
    assert_int_equal(cv_spool_unsettled_count(sp), 10);
    assert_int_equal(cv_spool_unsettled_bytes(sp), bytes);
    for (uint64_t id = 1; id <= 10; id++)
        s_expect_next(sp, id - 1, id);
    s_expect_none(sp, 10);
    s_append(sp, 11);
    cv_spool_destroy(&sp);
}

static void test_settle_reopen(void **state)
{
    fixture_t *f = *state;
    cv_spool_t *sp = s_open(f->dir, NULL);
    for (uint64_t id = 1; id <= 10; id++)
        s_append(sp, id);
    assert_int_equal(cv_spool_sync(sp), 0);
    uint64_t settle[] = { 3, 2, 4, 7, 10 };
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(cv_spool_settle(sp, settle[i]), 0);
    assert_int_equal(cv_spool_settle(sp, 3), 0);        /* already settled: ignored */
    assert_int_equal(cv_spool_settle(sp, 99), 0);       /* unknown: ignored */
    assert_int_equal(cv_spool_unsettled_count(sp), 5);
    assert_int_equal(cv_spool_sync(sp), 0);
    cv_spool_destroy(&sp);

    sp = s_open(f->dir, NULL);
    assert_int_equal(cv_spool_unsettled_count(sp), 5);
    uint64_t left[] = { 1, 5, 6, 8, 9 }, after = 0;
    for (size_t i = 0; i < 5; i++) {
        s_expect_next(sp, after, left[i]);
        after = left[i];
    }
    s_expect_none(sp, after);
    s_append(sp, 11);
    cv_spool_destroy(&sp);
}

static void test_crash_snapshot(void **state)
{
    fixture_t *f = *state;
    char b[128], c[128];
    snprintf(b, sizeof b, "%s/b", f->root);
    snprintf(c, sizeof c, "%s/c", f->root);
    cv_spool_t *sp = s_open(f->dir, NULL);
    for (uint64_t id = 1; id <= 5; id++)
        s_append(sp, id);
    assert_int_equal(cv_spool_sync(sp), 0);
    for (uint64_t id = 6; id <= 8; id++)                /* not synced */
        s_append(sp, id);
    assert_int_equal(cv_spool_settle(sp, 1), 0);        /* lazy */
    assert_int_equal(cv_spool_settle(sp, 2), 0);
    assert_int_equal(cv_spool_set_position(sp, "line=8"), 0);
    s_snapshot(f->dir, b);

    cv_spool_t *crashed = s_open(b, NULL);
    assert_int_equal(cv_spool_unsettled_count(crashed), 5);
    s_expect_next(crashed, 0, 1);                       /* settlement lost: resent */
    s_expect_next(crashed, 4, 5);
    s_expect_none(crashed, 5);
    assert_null(cv_spool_position(crashed));
    s_append(crashed, 6);                               /* 6 was never durable */
    cv_spool_destroy(&crashed);

    assert_int_equal(cv_spool_sync(sp), 0);
    s_snapshot(f->dir, c);
    crashed = s_open(c, NULL);
    assert_int_equal(cv_spool_unsettled_count(crashed), 6);
    s_expect_next(crashed, 0, 3);
    s_expect_next(crashed, 7, 8);
    assert_string_equal(cv_spool_position(crashed), "line=8");
    cv_spool_destroy(&crashed);
    cv_spool_destroy(&sp);
}

static void test_ids_continue_after_gc(void **state)
{
    fixture_t *f = *state;
    cv_spool_opts_t opts = { .retention_days = 0 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    for (uint64_t id = 1; id <= 3; id++)
        s_append(sp, id);
    cv_spool_destroy(&sp);

    sp = s_open(f->dir, &opts);
    s_append(sp, 4);
    for (uint64_t id = 1; id <= 4; id++)
        assert_int_equal(cv_spool_settle(sp, id), 0);
    assert_int_equal(cv_spool_gc(sp, time(NULL) + 1), 1);
    assert_int_equal(s_count_segments(f->dir), 0);
    assert_int_equal(cv_spool_unsettled_count(sp), 0);
    s_append(sp, 5);                                    /* starts a new segment */
    assert_true(s_size(s_seg(f->dir, 5)) == 0);         /* buffered until sync */
    cv_spool_destroy(&sp);
    assert_int_equal(s_count_segments(f->dir), 1);

    sp = s_open(f->dir, &opts);
    assert_int_equal(cv_spool_settle(sp, 5), 0);
    assert_int_equal(cv_spool_gc(sp, time(NULL) + 1), 1);
    cv_spool_destroy(&sp);
    assert_int_equal(s_count_segments(f->dir), 0);

    sp = s_open(f->dir, &opts);                         /* nothing on disk but next-id */
    assert_int_equal(cv_spool_unsettled_count(sp), 0);
    s_expect_none(sp, 0);
    s_append(sp, 6);
    cv_spool_destroy(&sp);
}

static void test_torn_tail_truncated(void **state)
{
    fixture_t *f = *state;
    cv_spool_t *sp = s_open(f->dir, NULL);
    for (uint64_t id = 1; id <= 5; id++)
        s_append(sp, id);
    cv_spool_destroy(&sp);
    const char *seg = s_seg(f->dir, 1);
    long off5 = s_offset(1, 5);

    assert_int_equal(truncate(seg, s_size(seg) - 3), 0);        /* mid payload */
    sp = s_open(f->dir, NULL);
    assert_int_equal(s_size(seg), off5);
    assert_int_equal(cv_spool_unsettled_count(sp), 4);
    for (uint64_t id = 1; id <= 4; id++)
        s_expect_next(sp, id - 1, id);
    s_append(sp, 5);
    s_append(sp, 6);
    cv_spool_destroy(&sp);

    long off6 = s_offset(1, 6);
    assert_int_equal(truncate(seg, off6 + 7), 0);               /* mid header */
    sp = s_open(f->dir, NULL);
    assert_int_equal(s_size(seg), off6);
    assert_int_equal(cv_spool_unsettled_count(sp), 5);
    s_expect_next(sp, 4, 5);
    s_expect_none(sp, 5);
    cv_spool_destroy(&sp);
}

static void test_torn_tail_flipped(void **state)
{
    fixture_t *f = *state;
    cv_spool_t *sp = s_open(f->dir, NULL);
    for (uint64_t id = 1; id <= 6; id++)
        s_append(sp, id);
    cv_spool_destroy(&sp);
    const char *seg = s_seg(f->dir, 1);

    s_flip(seg, s_size(seg) - 1);                               /* last payload byte */
    sp = s_open(f->dir, NULL);
    assert_int_equal(s_size(seg), s_offset(1, 6));
    assert_int_equal(cv_spool_unsettled_count(sp), 5);
    s_expect_next(sp, 4, 5);
    cv_spool_destroy(&sp);

    s_flip(seg, s_offset(1, 5));                                /* length of the last one */
    sp = s_open(f->dir, NULL);
    assert_int_equal(s_size(seg), s_offset(1, 5));
    assert_int_equal(cv_spool_unsettled_count(sp), 4);
    s_expect_next(sp, 3, 4);
    s_append(sp, 5);
    cv_spool_destroy(&sp);

    /* a zero-filled tail (space allocated, data never written) */
    long good = s_size(seg);
    int fd = open(seg, O_WRONLY | O_APPEND);
    char zeros[4096] = { 0 };
    assert_int_equal(write(fd, zeros, sizeof zeros), (ssize_t) sizeof zeros);
    close(fd);
    sp = s_open(f->dir, NULL);
    assert_int_equal(s_size(seg), good);
    assert_int_equal(cv_spool_unsettled_count(sp), 5);
    s_expect_next(sp, 4, 5);
    cv_spool_destroy(&sp);
}

static void test_corrupt_middle(void **state)
{
    fixture_t *f = *state;
    cv_spool_t *sp = s_open(f->dir, NULL);
    for (uint64_t id = 1; id <= 5; id++)
        s_append(sp, id);
    cv_spool_destroy(&sp);
    const char *seg = s_seg(f->dir, 1);
    long size = s_size(seg), off2 = s_offset(1, 2);

    s_flip(seg, off2 + HDR + 3);                                /* payload of record 2 */
    char err[512] = "", want[128];
    assert_null(cv_spool_open(f->dir, NULL, err, sizeof err));
    assert_non_null(strstr(err, "seg-00000000000000000001.log"));
    snprintf(want, sizeof want, "corrupt record at offset %ld ", off2);
    assert_non_null(strstr(err, want));
    assert_null(strstr(err, "\"id\""));                         /* no record bytes */
    assert_int_equal(s_size(seg), size);                        /* nothing dropped */

    s_flip(seg, off2 + HDR + 3);                                /* repaired: opens again */
    s_flip(seg, off2);                                          /* now its length */
    err[0] = '\0';
    assert_null(cv_spool_open(f->dir, NULL, err, sizeof err));
    assert_non_null(strstr(err, want));
    assert_int_equal(s_size(seg), size);
}

static void test_rollover(void **state)
{
    fixture_t *f = *state;
    cv_spool_opts_t opts = { .segment_bytes = 1000, .retention_days = 1 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    for (uint64_t id = 1; id <= 100; id++)
        s_append(sp, id);
    assert_int_equal(cv_spool_sync(sp), 0);
    for (uint64_t id = 1; id <= 100; id++)
        s_expect_next(sp, id - 1, id);
    cv_spool_destroy(&sp);

    int nsegs = s_count_segments(f->dir);
    assert_true(nsegs >= 5);
    /* every segment starts where the previous one ended; none passes the size */
    uint64_t first = 1;
    for (int i = 0; i < nsegs; i++) {
        long size = s_size(s_seg(f->dir, first));
        assert_true(size > 0 && size <= 1000);
        uint64_t next = first;
        while (next <= 100 && s_offset(first, next + 1) <= size)
            next++;
        assert_int_equal(s_offset(first, next), size);
        if (next <= 100)                                /* the next one did not fit */
            assert_true(s_offset(first, next + 1) > 1000);
        first = next;
    }
    assert_int_equal(first, 101);

    sp = s_open(f->dir, &opts);
    assert_int_equal(cv_spool_unsettled_count(sp), 100);
    for (uint64_t id = 1; id <= 100; id++)
        s_expect_next(sp, id - 1, id);
    s_append(sp, 101);
    cv_spool_destroy(&sp);
}

static void test_corrupt_sealed_segment(void **state)
{
    fixture_t *f = *state;
    cv_spool_opts_t opts = { .segment_bytes = 1000 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    for (uint64_t id = 1; id <= 30; id++)
        s_append(sp, id);
    cv_spool_destroy(&sp);
    assert_true(s_count_segments(f->dir) >= 2);
    const char *seg = s_seg(f->dir, 1);
    assert_int_equal(truncate(seg, s_size(seg) - 1), 0);       /* torn, but not last */
    char err[512] = "";
    assert_null(cv_spool_open(f->dir, &opts, err, sizeof err));
    assert_non_null(strstr(err, "seg-00000000000000000001.log"));
    assert_non_null(strstr(err, "sealed segment"));
}

static void test_gc_retention(void **state)
{
    fixture_t *f = *state;
    cv_spool_opts_t opts = { .segment_bytes = 1000, .retention_days = 2 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    for (uint64_t id = 1; id <= 60; id++)
        s_append(sp, id);
    assert_int_equal(cv_spool_sync(sp), 0);
    int nsegs = s_count_segments(f->dir);
    assert_true(nsegs >= 3);
    /* settle everything but one record of the second segment and the last */
    uint64_t second = 2;
    while (access(s_seg(f->dir, second), F_OK) != 0)
        second++;
    for (uint64_t id = 1; id < 60; id++)
        if (id != second)
            assert_int_equal(cv_spool_settle(sp, id), 0);
    time_t now = time(NULL);
    assert_int_equal(cv_spool_gc(sp, now), 0);                  /* too young */
    assert_int_equal(s_count_segments(f->dir), nsegs);
    assert_int_equal(cv_spool_gc(sp, now + 3 * DAY), nsegs - 2);
    assert_int_equal(access(s_seg(f->dir, 1), F_OK), -1);      /* fully settled: gone */
    assert_int_equal(access(s_seg(f->dir, second), F_OK), 0);  /* has unsettled */
    assert_int_equal(s_count_segments(f->dir), 2);
    /* settled.log was compacted to the complement of {second, 60} */
    assert_int_equal(s_size(s_path(f->dir, "settled.log")), 2 * 20);
    s_expect_next(sp, 0, second);
    s_expect_next(sp, second, 60);
    cv_spool_destroy(&sp);

    sp = s_open(f->dir, &opts);
    assert_int_equal(cv_spool_unsettled_count(sp), 2);
    s_expect_next(sp, 0, second);
    s_expect_next(sp, second, 60);
    assert_int_equal(cv_spool_settle(sp, second), 0);
    assert_int_equal(cv_spool_settle(sp, 60), 0);
    assert_int_equal(cv_spool_gc(sp, now + 1 * DAY), 0);
    assert_int_equal(cv_spool_gc(sp, now + 3 * DAY), 2);
    assert_int_equal(s_count_segments(f->dir), 0);
    assert_int_equal(s_size(s_path(f->dir, "settled.log")), 20);   /* [1, 60] */
    cv_spool_destroy(&sp);

    sp = s_open(f->dir, &opts);
    s_expect_none(sp, 0);
    s_append(sp, 61);
    cv_spool_destroy(&sp);
}

static void test_full(void **state)
{
    fixture_t *f = *state;
    cv_spool_opts_t opts = { .max_bytes = 1000 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    unsigned char rec[100] = { 0 };
    uint64_t id;
    for (int i = 0; i < 10; i++) {
        assert_false(cv_spool_full(sp));
        assert_int_equal(cv_spool_append(sp, rec, sizeof rec, &id), 0);
    }
    assert_int_equal(cv_spool_unsettled_bytes(sp), 1000);
    assert_false(cv_spool_full(sp));                            /* at the cap, not over */
    assert_int_equal(cv_spool_append(sp, rec, sizeof rec, &id), 0);
    assert_true(cv_spool_full(sp));
    cv_spool_destroy(&sp);

    sp = s_open(f->dir, &opts);                                 /* still full after restart */
    assert_true(cv_spool_full(sp));
    assert_int_equal(cv_spool_settle(sp, 4), 0);
    assert_false(cv_spool_full(sp));
    assert_int_equal(cv_spool_unsettled_bytes(sp), 1000);
    cv_spool_destroy(&sp);
}

static void test_position(void **state)
{
    fixture_t *f = *state;
    char b[128];
    snprintf(b, sizeof b, "%s/b", f->root);
    cv_spool_t *sp = s_open(f->dir, NULL);
    assert_null(cv_spool_position(sp));
    assert_int_equal(cv_spool_set_position(sp, "file=a.csv;line=42"), 0);
    assert_string_equal(cv_spool_position(sp), "file=a.csv;line=42");
    assert_int_equal(cv_spool_sync(sp), 0);
    assert_int_equal(cv_spool_set_position(sp, "file=a.csv;line=43"), 0);
    s_snapshot(f->dir, b);                                      /* crash before the sync */

    char big[CV_SPOOL_POSITION_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(cv_spool_set_position(sp, big), -1);
    assert_string_equal(cv_spool_position(sp), "file=a.csv;line=43");
    big[CV_SPOOL_POSITION_MAX] = '\0';                          /* exactly the max */
    assert_int_equal(cv_spool_set_position(sp, big), 0);
    cv_spool_destroy(&sp);

    sp = s_open(f->dir, NULL);
    assert_string_equal(cv_spool_position(sp), big);
    assert_int_equal(cv_spool_set_position(sp, ""), 0);
    cv_spool_destroy(&sp);
    sp = s_open(f->dir, NULL);
    assert_string_equal(cv_spool_position(sp), "");
    cv_spool_destroy(&sp);

    sp = s_open(b, NULL);
    assert_string_equal(cv_spool_position(sp), "file=a.csv;line=42");
    cv_spool_destroy(&sp);
}

static void test_next_unsettled_order(void **state)
{
    fixture_t *f = *state;
    cv_spool_opts_t opts = { .segment_bytes = 1000 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    for (uint64_t id = 1; id <= 40; id++)               /* some sealed, some buffered */
        s_append(sp, id);
    for (uint64_t pass = 0; pass < 2; pass++) {         /* before and after sync */
        for (uint64_t id = 2; id <= 40; id += 2)
            assert_int_equal(cv_spool_settle(sp, id), 0);
        uint64_t after = 0, id;
        void *data;
        size_t len;
        int n = 0;
        while (cv_spool_next_unsettled(sp, after, &id, &data, &len) == 1) {
            assert_int_equal(id, after ? after + 2 : 1);
            unsigned char want[256];
            assert_int_equal(len, s_payload(id, want));
            assert_memory_equal(data, want, len);
            free(data);
            after = id;
            n++;
        }
        assert_int_equal(n, 20);
        assert_int_equal(after, 39);
        s_expect_next(sp, 6, 7);
        s_expect_next(sp, 7, 9);
        s_expect_none(sp, 39);
        s_expect_none(sp, UINT64_MAX);
        assert_int_equal(cv_spool_sync(sp), 0);
    }
    cv_spool_destroy(&sp);
}

static void test_limits_and_lock(void **state)
{
    fixture_t *f = *state;
    cv_spool_opts_t opts = { .max_record_bytes = 100 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    unsigned char big[101] = { 0 };
    uint64_t id = 0;
    assert_int_equal(cv_spool_append(sp, big, sizeof big, &id), -1);
    assert_int_equal(cv_spool_append(sp, big, 100, &id), 0);   /* refusal used no id */
    assert_int_equal(id, 1);
    assert_int_equal(cv_spool_append(sp, NULL, 0, &id), 0);    /* empty record */
    assert_int_equal(id, 2);

    char err[512] = "";
    assert_null(cv_spool_open(f->dir, &opts, err, sizeof err));
    assert_non_null(strstr(err, "in use"));
    cv_spool_destroy(&sp);

    sp = s_open(f->dir, &opts);                                 /* lock released */
    void *data = NULL;
    size_t len = 1;
    assert_int_equal(cv_spool_next_unsettled(sp, 1, &id, &data, &len), 1);
    assert_int_equal(id, 2);
    assert_int_equal(len, 0);
    free(data);
    cv_spool_destroy(&sp);

    opts.max_record_bytes = 100u << 20;
    err[0] = '\0';
    assert_null(cv_spool_open(f->dir, &opts, err, sizeof err));
    assert_non_null(strstr(err, "max_record_bytes"));
}

static void test_settled_log_damage(void **state)
{
    fixture_t *f = *state;
    cv_spool_t *sp = s_open(f->dir, NULL);
    for (uint64_t id = 1; id <= 10; id++)
        s_append(sp, id);
    for (uint64_t id = 1; id <= 5; id++)
        assert_int_equal(cv_spool_settle(sp, id), 0);
    assert_int_equal(cv_spool_sync(sp), 0);                     /* range [1, 5] */
    assert_int_equal(cv_spool_settle(sp, 7), 0);
    cv_spool_destroy(&sp);                                      /* range [7, 7] */
    const char *log = s_path(f->dir, "settled.log");
    assert_int_equal(s_size(log), 40);

    int fd = open(log, O_WRONLY | O_APPEND);                    /* torn tail */
    assert_int_equal(write(fd, "torn", 4), 4);
    close(fd);
    sp = s_open(f->dir, NULL);
    assert_int_equal(cv_spool_unsettled_count(sp), 4);
    s_expect_next(sp, 0, 6);
    s_expect_next(sp, 6, 8);
    cv_spool_destroy(&sp);
    assert_int_equal(s_size(log) % 20, 0);                      /* rewritten */

    s_flip(log, 3);                                             /* first range */
    sp = s_open(f->dir, NULL);                                  /* settlements lost: resend */
    assert_int_equal(cv_spool_unsettled_count(sp), 10);
    s_expect_next(sp, 0, 1);
    cv_spool_destroy(&sp);
}

/* Settled ids that never became durable records (settled before the sync,
   written because the range buffer filled) must not settle the new records
   that get those ids after a crash. */
static void test_stale_settlements(void **state)
{
    fixture_t *f = *state;
    char b[128];
    snprintf(b, sizeof b, "%s/b", f->root);
    cv_spool_t *sp = s_open(f->dir, NULL);
    s_append(sp, 1);
    s_append(sp, 2);
    assert_int_equal(cv_spool_sync(sp), 0);
    for (uint64_t id = 3; id <= 2200; id++)             /* buffered, not written */
        s_append(sp, id);
    for (uint64_t id = 3; id <= 2200; id += 2)          /* > 1024 separate ranges */
        assert_int_equal(cv_spool_settle(sp, id), 0);
    assert_true(s_size(s_path(f->dir, "settled.log")) > 0);
    assert_int_equal(s_size(s_seg(f->dir, 1)), s_offset(1, 3));
    s_snapshot(f->dir, b);
    cv_spool_destroy(&sp);

    sp = s_open(b, NULL);
    assert_int_equal(cv_spool_unsettled_count(sp), 2);
    s_append(sp, 3);
    s_append(sp, 4);
    cv_spool_destroy(&sp);
    sp = s_open(b, NULL);
    assert_int_equal(cv_spool_unsettled_count(sp), 4);
    s_expect_next(sp, 2, 3);
    s_expect_next(sp, 3, 4);
    cv_spool_destroy(&sp);
}

static void test_volume(void **state)
{
    fixture_t *f = *state;
    enum { N = 100000 };
    cv_spool_opts_t opts = { .segment_bytes = 1 << 20 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    unsigned char buf[256];
    uint64_t bytes = 0, id;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 1; i <= N; i++) {
        size_t len = s_payload(i, buf);
        assert_int_equal(cv_spool_append(sp, buf, len, &id), 0);
        if (i % 1000 == 0)
            assert_int_equal(cv_spool_sync(sp), 0);
        if (i % 3)
            bytes += len;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("    %d appends (syncs every 1000) in %.3f s: %.0f records/s\n", N, secs, N / secs);
    assert_int_equal(id, N);
    for (uint64_t i = 3; i <= N; i += 3)
        assert_int_equal(cv_spool_settle(sp, i), 0);
    cv_spool_destroy(&sp);

    sp = s_open(f->dir, &opts);
    assert_int_equal(cv_spool_unsettled_count(sp), N - N / 3);
    assert_int_equal(cv_spool_unsettled_bytes(sp), bytes);
    uint64_t after = 0, n = 0;
    void *data;
    size_t len;
    while (cv_spool_next_unsettled(sp, after, &id, &data, &len) == 1) {
        assert_true(id % 3 != 0 && id > after);
        assert_int_equal(len, s_payload(id, buf));
        assert_memory_equal(data, buf, len);
        free(data);
        after = id;
        n++;
    }
    assert_int_equal(n, N - N / 3);
    for (uint64_t i = 1; i <= N; i++)
        assert_int_equal(cv_spool_settle(sp, i), 0);
    assert_int_equal(cv_spool_unsettled_count(sp), 0);
    assert_int_equal(cv_spool_unsettled_bytes(sp), 0);
    s_expect_none(sp, 0);
    cv_spool_destroy(&sp);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_append_sync_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_settle_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_crash_snapshot, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ids_continue_after_gc, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_truncated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_flipped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rollover, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_sealed_segment, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_gc_retention, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_full, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_position, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_next_unsettled_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_lock, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_settled_log_damage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stale_settlements, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_volume, s_setup, s_teardown),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
