/*  test_spool_resend — what the spool keeps for a resend after a restore of
    the hub's database (adapters/spool/cv_spool_resend.c): the settlement
    marks (marks.log) that answer "which records may have been settled since
    P", unsettling retained records durably, and the --since parser of
    `civibus-adapter resend` (adapters/runtime/cv_resend.c). Real files in a
    mkdtemp directory; the marks are at most one a second, so the tests
    sleep a little over a second between the moments they compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cv_resend.h"
#include "spool/cv_spool.h"

#include "spool_fixture.h"

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_pause(void)             /* past the marks' one second */
{
    usleep(1150 * 1000);
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

static size_t s_payload(uint64_t id, char *buf, size_t pad)
{
    int n = snprintf(buf, 64, "{\"id\":%" PRIu64 "}", id);
    memset(buf + n, 'x', pad);
    return (size_t) n + pad;
}

static void s_append_range(cv_spool_t *sp, uint64_t lo, uint64_t hi, size_t pad)
{
    char *buf = malloc(64 + pad);
    for (uint64_t want = lo; want <= hi; want++) {
        uint64_t id = 0;
        assert_int_equal(cv_spool_append(sp, buf, s_payload(want, buf, pad), &id), 0);
        assert_int_equal(id, want);
    }
    free(buf);
    assert_int_equal(cv_spool_sync(sp), 0);
}

static void s_settle_range(cv_spool_t *sp, uint64_t lo, uint64_t hi)
{
    for (uint64_t id = lo; id <= hi; id++)
        assert_int_equal(cv_spool_settle(sp, id), 0);
    assert_int_equal(cv_spool_sync(sp), 0);
}

static uint64_t s_since(cv_spool_t *sp, int64_t ms)
{
    uint64_t id = 0;
    assert_int_equal(cv_spool_settled_since(sp, ms, &id), 0);
    return id;
}

/* The unsettled records are exactly lo..hi, with their bytes. */
static void s_expect_unsettled(cv_spool_t *sp, uint64_t lo, uint64_t hi, size_t pad)
{
    assert_int_equal(cv_spool_unsettled_count(sp), hi - lo + 1);
    uint64_t after = 0;
    char *want = malloc(64 + pad);
    for (uint64_t expect = lo; expect <= hi; expect++) {
        uint64_t id = 0;
        void *data = NULL;
        size_t len = 0;
        assert_int_equal(cv_spool_next_unsettled(sp, after, &id, &data, &len), 1);
        assert_int_equal(id, expect);
        size_t want_len = s_payload(expect, want, pad);
        assert_int_equal(len, want_len);
        assert_memory_equal(data, want, len);
        free(data);
        after = id;
    }
    free(want);
    uint64_t id;
    void *data;
    size_t len;
    assert_int_equal(cv_spool_next_unsettled(sp, after, &id, &data, &len), 0);
}

/* Records 1-10 settled before P, 11-15 spooled and settled after it: the
   marks say "from 11" for P, everything for a P older than every mark,
   nothing for a P in the future; unsettling survives a reopen, and again
   after a second settlement (a resend run twice unsettles the same set). */
static void test_marks_and_unsettle(void **state)
{
    fixture_t *f = *state;
    int64_t before_all = s_now_ms() - 5000;
    cv_spool_t *sp = s_open(f->dir, NULL);
    s_append_range(sp, 1, 10, 5);
    s_settle_range(sp, 1, 10);
    s_pause();
    assert_int_equal(cv_spool_sync(sp), 0);      /* a mark: low 11 */
    s_pause();
    int64_t p = s_now_ms();
    s_pause();
    s_append_range(sp, 11, 15, 5);
    s_settle_range(sp, 11, 15);
    s_pause();
    assert_int_equal(cv_spool_sync(sp), 0);      /* a mark: low 16 */

    assert_int_equal(s_since(sp, before_all), 1);
    assert_int_equal(s_since(sp, p), 11);
    assert_int_equal(s_since(sp, s_now_ms() + 3600000), 16);
    assert_int_equal(cv_spool_unsettled_count(sp), 0);

    assert_int_equal(cv_spool_unsettle_from(sp, 11), 5);
    s_expect_unsettled(sp, 11, 15, 5);
    cv_spool_destroy(&sp);                       /* durable: reopen */

    sp = s_open(f->dir, NULL);
    s_expect_unsettled(sp, 11, 15, 5);
    assert_int_equal(s_since(sp, p), 11);        /* the marks survive too */
    /* the unsettled ones are not counted twice; 1..10 join them */
    assert_int_equal(cv_spool_unsettle_from(sp, 1), 10);
    s_expect_unsettled(sp, 1, 15, 5);
    s_settle_range(sp, 1, 15);
    cv_spool_destroy(&sp);

    sp = s_open(f->dir, NULL);
    assert_int_equal(cv_spool_unsettled_count(sp), 0);
    assert_int_equal(cv_spool_unsettle_from(sp, 11), 5);
    assert_int_equal(cv_spool_unsettle_from(sp, 11), 0);
    s_append_range(sp, 16, 16, 5);               /* new ids go on after them */
    s_expect_unsettled(sp, 11, 16, 5);
    cv_spool_destroy(&sp);
}

/* A record spooled before P while the hub was away and settled after P
   (lost by the restore too) is selected: the criterion is settlement. */
static void test_spooled_before_settled_after(void **state)
{
    fixture_t *f = *state;
    cv_spool_t *sp = s_open(f->dir, NULL);
    s_append_range(sp, 1, 3, 5);
    s_settle_range(sp, 1, 2);                    /* 3 waits for the hub */
    s_pause();
    assert_int_equal(cv_spool_sync(sp), 0);
    s_append_range(sp, 4, 6, 5);
    s_settle_range(sp, 4, 6);
    s_pause();
    int64_t p = s_now_ms();
    s_pause();
    s_settle_range(sp, 3, 3);                    /* committed after P */
    assert_int_equal(s_since(sp, p), 3);
    assert_int_equal(cv_spool_unsettle_from(sp, s_since(sp, p)), 4);
    s_expect_unsettled(sp, 3, 6, 5);
    cv_spool_destroy(&sp);
}

/* Several segments, the oldest deleted by gc: only retained records come
   back, with their bytes, from sealed and current segments. */
static void test_unsettle_segments_gc(void **state)
{
    fixture_t *f = *state;
    cv_spool_opts_t opts = { .segment_bytes = 4096, .retention_days = 1 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    s_append_range(sp, 1, 40, 500);              /* about 8 records a segment */
    s_settle_range(sp, 1, 40);
    assert_true(cv_spool_gc(sp, time(NULL) + 2 * 86400) > 0);   /* every sealed one */
    assert_int_equal(cv_spool_unsettle_from(sp, 1), 0);
    s_append_range(sp, 41, 80, 500);
    s_settle_range(sp, 41, 80);
    assert_int_equal(cv_spool_unsettle_from(sp, 50), 31);
    s_expect_unsettled(sp, 50, 80, 500);
    cv_spool_destroy(&sp);
    sp = s_open(f->dir, &opts);
    s_expect_unsettled(sp, 50, 80, 500);
    cv_spool_destroy(&sp);
}

/* A torn marks.log (a crash in the middle of a mark) is cut on open; a
   damaged mark is skipped, the one before it answers. */
static void test_marks_damage(void **state)
{
    fixture_t *f = *state;
    cv_spool_t *sp = s_open(f->dir, NULL);
    s_append_range(sp, 1, 2, 5);
    s_settle_range(sp, 1, 2);
    s_pause();
    assert_int_equal(cv_spool_sync(sp), 0);      /* mark 2: low 3 */
    s_pause();
    s_append_range(sp, 3, 3, 5);                 /* mark 3: low 3, next 4 */
    s_settle_range(sp, 3, 3);
    s_pause();
    assert_int_equal(cv_spool_sync(sp), 0);      /* mark 4: low 4 */
    cv_spool_destroy(&sp);

    char path[160];
    snprintf(path, sizeof path, "%s/marks.log", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 4 * 20);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "torn", 4), 4);
    close(fd);
    fd = open(path, O_RDWR);
    unsigned char byte;
    assert_int_equal(pread(fd, &byte, 1, 3 * 20 + 9), 1);    /* mark 4's low */
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, 3 * 20 + 9), 1);
    close(fd);

    sp = s_open(f->dir, NULL);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 4 * 20);        /* the torn tail is gone */
    assert_int_equal(s_since(sp, s_now_ms() + 1000), 3);     /* mark 3, not 4 */
    cv_spool_destroy(&sp);
}

/* gc drops marks older than the retention (once a day's worth is due),
   not the younger ones. */
static void test_marks_gc(void **state)
{
    fixture_t *f = *state;
    cv_spool_opts_t opts = { .retention_days = 1 };
    cv_spool_t *sp = s_open(f->dir, &opts);
    s_append_range(sp, 1, 2, 5);
    s_settle_range(sp, 1, 2);
    s_pause();
    assert_int_equal(cv_spool_sync(sp), 0);
    char path[160];
    snprintf(path, sizeof path, "%s/marks.log", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 2 * 20);
    time_t now = time(NULL);
    assert_true(cv_spool_gc(sp, now + 86400 + 3600) >= 0);    /* older than 1 day, not 2: kept */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 2 * 20);
    assert_true(cv_spool_gc(sp, now + 3 * 86400) >= 0);       /* a day past the retention: dropped */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(s_since(sp, s_now_ms()), 1);              /* no mark: all that is retained */
    s_pause();
    s_append_range(sp, 3, 3, 5);                               /* marks go on after the rewrite */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 20);
    cv_spool_destroy(&sp);
}

static void test_parse_time(void **state)
{
    int64_t ms = 0;
    assert_int_equal(cv_resend_parse_time("2026-12-07T10:15:00Z", &ms), 0);
    assert_int_equal(ms, 1796638500000LL);
    assert_int_equal(cv_resend_parse_time("2026-12-07 11:15:00+01:00", &ms), 0);
    assert_int_equal(ms, 1796638500000LL);
    assert_int_equal(cv_resend_parse_time("2026-12-07 10:15:00.25 UTC", &ms), 0);
    assert_int_equal(ms, 1796638500250LL);
    assert_int_equal(cv_resend_parse_time("2026-12-07T05:15-0500", &ms), 0);
    assert_int_equal(ms, 1796638500000LL);
    assert_int_equal(cv_resend_parse_time("@1796638500", &ms), 0);
    assert_int_equal(ms, 1796638500000LL);
    const char *bad[] = { "2026-12-07T10:15:00", "2026-12-07", "2026-02-31T00:00:00Z",
                          "2026-12-07T25:00:00Z", "2026-12-07T10:15:00Zjunk", "@", "@12x",
                          "yesterday", "2026-12-07T10:15:00+1", "" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (cv_resend_parse_time(bad[i], &ms) == 0)
            fail_msg("'%s' was accepted", bad[i]);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_marks_and_unsettle, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_spooled_before_settled_after, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unsettle_segments_gc, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_marks_damage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_marks_gc, s_setup, s_teardown),
        cmocka_unit_test(test_parse_time),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
