/*  test_tz — zones, the DST rules for local time, and reading date text.

    Fixed cases pin the rules civibus documents (Paris: repeated hour =
    first occurrence, gap = offset before the jump). A cross-check then
    compares every offset with the C library's own reading of the same
    zone files, over two centuries, for zones of both hemispheres, with
    half-hour offsets and with rules that changed. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cv_test.h"

#include "map/cv_tz.h"

/* UTC text of Paris (or zone) wall-clock fields. */
static void s_local(const char *zone, int y, int mo, int d, int h, int mi, int s, char out[CV_TZ_UTC_LEN + 1])
{
    char err[256];
    cv_tz_t *tz = cv_tz_new(zone, err, sizeof err);
    assert_non_null(tz);
    cv_tz_format_utc(cv_tz_local_to_utc(tz, cv_tz_civil_secs(y, mo, d, h, mi, s)), out);
    cv_tz_destroy(&tz);
    assert_null(tz);
}

#define LOCAL_IS(zone, y, mo, d, h, mi, s, want) do {         \
        char got_[CV_TZ_UTC_LEN + 1];                          \
        s_local(zone, y, mo, d, h, mi, s, got_);               \
        assert_string_equal(got_, want);                       \
    } while (0)

static void test_paris_winter_and_summer(void **state)
{
    LOCAL_IS("Europe/Paris", 2024, 1, 15, 10, 0, 0, "2024-01-15T09:00:00Z");
    LOCAL_IS("Europe/Paris", 2024, 7, 1, 10, 0, 0, "2024-07-01T08:00:00Z");
    LOCAL_IS("Europe/Paris", 2024, 3, 4, 10, 0, 0, "2024-03-04T09:00:00Z");      /* the example event */
    LOCAL_IS("Europe/Paris", 2024, 1, 1, 0, 30, 0, "2023-12-31T23:30:00Z");     /* crosses a year */
}

static void test_paris_autumn_repeated_hour_is_first(void **state)
{
    /* 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00Z */
    LOCAL_IS("Europe/Paris", 2024, 10, 27, 2, 30, 0, "2024-10-27T00:30:00Z");
    LOCAL_IS("Europe/Paris", 2024, 10, 27, 2, 0, 0, "2024-10-27T00:00:00Z");
    LOCAL_IS("Europe/Paris", 2024, 10, 27, 2, 59, 59, "2024-10-27T00:59:59Z");
    LOCAL_IS("Europe/Paris", 2024, 10, 27, 1, 59, 59, "2024-10-26T23:59:59Z");
    LOCAL_IS("Europe/Paris", 2024, 10, 27, 3, 0, 0, "2024-10-27T02:00:00Z");
}

static void test_paris_spring_gap_uses_offset_before(void **state)
{
    /* 2024-03-31: 02:00 CET jumps to 03:00 CEST at 01:00Z */
    LOCAL_IS("Europe/Paris", 2024, 3, 31, 2, 30, 0, "2024-03-31T01:30:00Z");
    LOCAL_IS("Europe/Paris", 2024, 3, 31, 2, 0, 0, "2024-03-31T01:00:00Z");
    LOCAL_IS("Europe/Paris", 2024, 3, 31, 1, 59, 59, "2024-03-31T00:59:59Z");
    LOCAL_IS("Europe/Paris", 2024, 3, 31, 3, 0, 0, "2024-03-31T01:00:00Z");
    LOCAL_IS("Europe/Paris", 2024, 3, 31, 3, 30, 0, "2024-03-31T01:30:00Z");
}

static void test_rule_years_and_other_zones(void **state)
{
    /* past the zone file's table: the POSIX rule (last Sunday of March / October) */
    LOCAL_IS("Europe/Paris", 2060, 7, 1, 12, 0, 0, "2060-07-01T10:00:00Z");
    LOCAL_IS("Europe/Paris", 2060, 12, 1, 12, 0, 0, "2060-12-01T11:00:00Z");
    LOCAL_IS("Europe/Paris", 2060, 3, 28, 2, 30, 0, "2060-03-28T01:30:00Z");     /* gap */
    LOCAL_IS("Europe/Paris", 2060, 10, 31, 2, 30, 0, "2060-10-31T00:30:00Z");    /* repeated */
    /* southern hemisphere: summer time spans the new year */
    LOCAL_IS("Australia/Sydney", 2024, 1, 15, 12, 0, 0, "2024-01-15T01:00:00Z");
    LOCAL_IS("Australia/Sydney", 2024, 7, 15, 12, 0, 0, "2024-07-15T02:00:00Z");
    LOCAL_IS("Australia/Sydney", 2055, 1, 15, 12, 0, 0, "2055-01-15T01:00:00Z");
    LOCAL_IS("America/New_York", 2024, 11, 3, 1, 30, 0, "2024-11-03T05:30:00Z"); /* repeated: EDT */
    LOCAL_IS("America/New_York", 2024, 3, 10, 2, 30, 0, "2024-03-10T07:30:00Z"); /* gap: EST */
    LOCAL_IS("Asia/Kolkata", 2024, 6, 1, 12, 0, 0, "2024-06-01T06:30:00Z");
    LOCAL_IS("America/Cayenne", 2024, 6, 1, 12, 0, 0, "2024-06-01T15:00:00Z");
    LOCAL_IS("UTC", 2024, 6, 1, 12, 0, 0, "2024-06-01T12:00:00Z");
    /* Paris before 1976 had no summer time */
    LOCAL_IS("Europe/Paris", 1971, 7, 1, 12, 0, 0, "1971-07-01T11:00:00Z");
}

/* Every offset agrees with glibc's reading of the same zone; local time
   built from an instant converts back to that instant (or, in a repeated
   hour, to its first occurrence). */
static void test_cross_check_with_libc(void **state)
{
    static const char *zones[] = { "Europe/Paris", "America/New_York", "Australia/Sydney",
                                   "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham",
                                   "America/Sao_Paulo", "Europe/London", "Africa/Casablanca",
                                   "Indian/Reunion", "America/Martinique", NULL };
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    for (int z = 0; zones[z]; z++) {
        char err[256];
        cv_tz_t *tz = cv_tz_new(zones[z], err, sizeof err);
        assert_non_null(tz);
        setenv("TZ", zones[z], 1);
        tzset();
        long checked = 0;
        for (int64_t t = cv_tz_civil_secs(1925, 1, 1, 0, 0, 0); t < cv_tz_civil_secs(2100, 1, 1, 0, 0, 0);
             t += 86400 * 2 + 3599) {
            time_t tt = (time_t) t;
            struct tm tm;
            assert_non_null(localtime_r(&tt, &tm));
            int32_t off = cv_tz_offset_at(tz, t);
            if (off != tm.tm_gmtoff)
                fail_msg("%s at %lld: offset %d, libc %ld", zones[z], (long long) t, off, tm.tm_gmtoff);
            int64_t back = cv_tz_local_to_utc(tz, t + off);
            assert_true(back <= t);
            assert_int_equal(back + cv_tz_offset_at(tz, back), t + off);
            checked++;
        }
        assert_true(checked > 30000);
        cv_tz_destroy(&tz);
    }
    if (old)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old);
}

static void test_bad_zone_names(void **state)
{
    static const char *bad[] = { "Europe/Nowhere", "../../etc/passwd", "/etc/localtime", "",
                                 "Europe//Paris", "Europe/./Paris", "zone.tab", "Europe/Paris\n", NULL };
    for (int i = 0; bad[i]; i++) {
        char err[256] = "";
        cv_tz_t *tz = cv_tz_new(bad[i], err, sizeof err);
        if (tz)
            fail_msg("zone name '%s' was accepted", bad[i]);
        assert_true(strlen(err) > 0);
    }
    char err[256];
    assert_null(cv_tz_new("Europe/Nowhere", err, sizeof err));
    assert_non_null(strstr(err, "Europe/Nowhere"));
    cv_tz_t *tz = cv_tz_new("Europe/Paris", err, sizeof err);
    assert_string_equal(cv_tz_name(tz), "Europe/Paris");
    cv_tz_destroy(&tz);
    cv_tz_destroy(&tz);            /* destroying NULL is harmless */
}

static void test_format_utc(void **state)
{
    char out[CV_TZ_UTC_LEN + 1];
    cv_tz_format_utc(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    cv_tz_format_utc(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
    cv_tz_format_utc(cv_tz_civil_secs(2024, 2, 29, 12, 34, 56), out);
    assert_string_equal(out, "2024-02-29T12:34:56Z");
    cv_tz_format_utc(cv_tz_civil_secs(2999, 12, 31, 23, 59, 59), out);
    assert_string_equal(out, "2999-12-31T23:59:59Z");
    cv_tz_format_utc(cv_tz_civil_secs(1800, 3, 1, 0, 0, 0), out);
    assert_string_equal(out, "1800-03-01T00:00:00Z");
    /* civil_secs agrees with timegm on every day of four centuries */
    for (int y = 1800; y < 2200; y++)
        for (int m = 1; m <= 12; m++) {
            struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 28, .tm_hour = 5 };
            assert_int_equal(cv_tz_civil_secs(y, m, 28, 5, 0, 0), (int64_t) timegm(&tm));
        }
}

static int64_t s_parse_utc(const char *text, const char *format)
{
    char err[256];
    cv_tz_civil_t c;
    if (cv_tz_parse(text, format, &c) < 0)
        return INT64_MIN;
    cv_tz_t *tz = cv_tz_new("Europe/Paris", err, sizeof err);
    int64_t utc = cv_tz_civil_to_utc(tz, &c);
    cv_tz_destroy(&tz);
    return utc;
}

#define PARSES_TO(text, format, want) do {                                     \
        int64_t u_ = s_parse_utc(text, format);                                \
        if (u_ == INT64_MIN)                                                   \
            fail_msg("'%s' was refused", text);                                \
        char got_[CV_TZ_UTC_LEN + 1];                                          \
        cv_tz_format_utc(u_, got_);                                            \
        assert_string_equal(got_, want);                                       \
    } while (0)

static void test_parse_iso(void **state)
{
    PARSES_TO("2024-03-04", NULL, "2024-03-03T23:00:00Z");
    PARSES_TO("2024-03-04T10:00", NULL, "2024-03-04T09:00:00Z");
    PARSES_TO("2024-03-04 10:00:05", NULL, "2024-03-04T09:00:05Z");
    PARSES_TO("2024-07-04T10:00:00.123456", NULL, "2024-07-04T08:00:00Z");
    PARSES_TO("2024-03-04T10:00:00Z", NULL, "2024-03-04T10:00:00Z");
    PARSES_TO("2024-03-04T10:00:00+05:30", NULL, "2024-03-04T04:30:00Z");
    PARSES_TO("2024-03-04T10:00:00-0300", NULL, "2024-03-04T13:00:00Z");
    PARSES_TO("2024-03-04T10:00-05", NULL, "2024-03-04T15:00:00Z");
    /* explicit offsets are taken as written, even inside Paris's gap */
    PARSES_TO("2024-03-31T02:30:00+02:00", NULL, "2024-03-31T00:30:00Z");
    PARSES_TO("2024-02-29", NULL, "2024-02-28T23:00:00Z");
    static const char *bad[] = { "2024-02-30", "2023-02-29", "2024-13-01", "2024-00-10", "2024-3-4",
                                 "2024-03-04T24:00", "2024-03-04T10:60", "2024-03-04T10:00:60",
                                 "2024-03-04T10", "2024-03-04T10:00+02:", "2024-03-04T10:00+2",
                                 "2024-03-04T10:00:00.Z", "2024-03-04Z", "garbage", "", "04/03/2024",
                                 "2024-03-04T10:00:00 trailing", "0000-01-01", NULL };
    for (int i = 0; bad[i]; i++)
        if (s_parse_utc(bad[i], NULL) != INT64_MIN)
            fail_msg("'%s' was accepted", bad[i]);
}

static void test_parse_format(void **state)
{
    PARSES_TO("04/03/2024 10:15", "%d/%m/%Y %H:%M", "2024-03-04T09:15:00Z");
    PARSES_TO("4/3/2024 9:05", "%d/%m/%Y %H:%M", "2024-03-04T08:05:00Z");
    PARSES_TO("10/03/2024", "%d/%m/%Y", "2024-03-09T23:00:00Z");
    PARSES_TO("27/10/2024 02:30", "%d/%m/%Y %H:%M", "2024-10-27T00:30:00Z");
    PARSES_TO("31/03/2024 02:30", "%d/%m/%Y %H:%M", "2024-03-31T01:30:00Z");
    PARSES_TO("20240304 101500 +0100", "%Y%m%d %H%M%S %z", "2024-03-04T09:15:00Z");
    PARSES_TO("2024-03-04T10:15:00", "%FT%T", "2024-03-04T09:15:00Z");
    PARSES_TO("29/02/2024", "%d/%m/%Y", "2024-02-28T23:00:00Z");
    static const char *bad[] = { "31/02/2024", "29/02/2023", "32/01/2024", "01/13/2024", "garbage",
                                 "04/03/2024 10:15 extra", "04-03-2024", "", "04/03/2024 25:00", NULL };
    for (int i = 0; bad[i]; i++) {
        const char *format = strchr(bad[i], ':') ? "%d/%m/%Y %H:%M" : "%d/%m/%Y";
        if (s_parse_utc(bad[i], format) != INT64_MIN)
            fail_msg("'%s' was accepted with '%s'", bad[i], format);
    }
}

static void test_check_format(void **state)
{
    char why[256];
    assert_int_equal(cv_tz_check_format("%d/%m/%Y %H:%M", why, sizeof why), 0);
    assert_int_equal(cv_tz_check_format("%F", why, sizeof why), 0);
    assert_int_equal(cv_tz_check_format("%e.%m.%y %T %z", why, sizeof why), 0);
    assert_int_equal(cv_tz_check_format("%d/%m", why, sizeof why), -1);
    assert_non_null(strstr(why, "year"));
    assert_int_equal(cv_tz_check_format("%d %B %Y", why, sizeof why), 0);      /* our own names */
    assert_int_equal(cv_tz_check_format("%d %j %Y", why, sizeof why), -1);
    assert_non_null(strstr(why, "%j"));
    assert_int_equal(cv_tz_check_format("%d/%m/%Y %", why, sizeof why), -1);
    assert_int_equal(cv_tz_check_format("%d/%m/%Y %j", why, sizeof why), -1);
}

/* A loaded zone is read-only: two threads converting at once get the
   same answers as one. */
typedef struct {
    const cv_tz_t *tz;
    int64_t sum;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    for (int64_t local = cv_tz_civil_secs(2020, 1, 1, 0, 0, 0); local < cv_tz_civil_secs(2030, 1, 1, 0, 0, 0);
         local += 3601)
        w->sum += cv_tz_local_to_utc(w->tz, local) - local;
    return NULL;
}

static void test_two_threads(void **state)
{
    char err[256];
    cv_tz_t *tz = cv_tz_new("Europe/Paris", err, sizeof err);
    worker_t one = { tz, 0 }, a = { tz, 0 }, b = { tz, 0 };
    s_worker(&one);
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, s_worker, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, s_worker, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_true(one.sum != 0);
    assert_true(a.sum == one.sum && b.sum == one.sum);
    cv_tz_destroy(&tz);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paris_winter_and_summer),
        cmocka_unit_test(test_paris_autumn_repeated_hour_is_first),
        cmocka_unit_test(test_paris_spring_gap_uses_offset_before),
        cmocka_unit_test(test_rule_years_and_other_zones),
        cmocka_unit_test(test_cross_check_with_libc),
        cmocka_unit_test(test_bad_zone_names),
        cmocka_unit_test(test_format_utc),
        cmocka_unit_test(test_parse_iso),
        cmocka_unit_test(test_parse_format),
        cmocka_unit_test(test_check_format),
        cmocka_unit_test(test_two_threads),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
