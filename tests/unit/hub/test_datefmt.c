/*  test_datefmt — dates as exports write them (hub/map/cv_datefmt.c).

    12-hour clocks with AM/PM (12 AM is midnight, 12 PM noon), French and
    English month and day names, Excel serial dates, the reason given for
    each way a text can fail, and that none of it follows the process
    locale. Cases are tables: text, format, and the fields expected. */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cv_test.h"

#include "map/cv_datefmt.h"
#include "map/cv_tz.h"

typedef struct {
    const char *text, *format;
    int year, month, day, hour, min, sec;
} date_case_t;

static void s_reads(const date_case_t *c)
{
    cv_datefmt_civil_t d;
    char why[200];
    int rc = cv_datefmt_read(c->text, c->format, &d, why, sizeof why);
    if (rc != 0)
        fail_msg("'%s' with '%s' was refused: %s", c->text, c->format, why);
    if (d.year != c->year || d.month != c->month || d.day != c->day || d.hour != c->hour
        || d.min != c->min || d.sec != c->sec)
        fail_msg("'%s' with '%s' read as %04d-%02d-%02d %02d:%02d:%02d", c->text, c->format, d.year,
                 d.month, d.day, d.hour, d.min, d.sec);
}

static void s_reads_all(const date_case_t *cases)
{
    for (int i = 0; cases[i].text; i++)
        s_reads(&cases[i]);
}

#define US "%m/%d/%Y %I:%M:%S %p"

static const date_case_t s_ampm[] = {
    { "04/12/2018 11:11:26 AM", US, 2018, 4, 12, 11, 11, 26 },
    { "04/12/2018 11:11:26 PM", US, 2018, 4, 12, 23, 11, 26 },
    { "04/12/2018 12:00:00 AM", US, 2018, 4, 12, 0, 0, 0 },       /* midnight */
    { "04/12/2018 12:30:15 AM", US, 2018, 4, 12, 0, 30, 15 },
    { "04/12/2018 12:00:00 PM", US, 2018, 4, 12, 12, 0, 0 },      /* noon */
    { "04/12/2018 12:59:59 PM", US, 2018, 4, 12, 12, 59, 59 },
    { "04/12/2018 01:00:00 AM", US, 2018, 4, 12, 1, 0, 0 },
    { "04/12/2018 01:00:00 PM", US, 2018, 4, 12, 13, 0, 0 },
    { "4/3/2018 9:05:00 AM", US, 2018, 4, 3, 9, 5, 0 },           /* single digits */
    { "4/3/2018 9:05:00 pm", US, 2018, 4, 3, 21, 5, 0 },
    { "4/3/2018 9:05:00 a.m.", US, 2018, 4, 3, 9, 5, 0 },
    { "4/3/2018 9:05:00 P.M.", US, 2018, 4, 3, 21, 5, 0 },
    { "4/3/2018 9:05:00 A.M", US, 2018, 4, 3, 9, 5, 0 },
    { "4/3/2018  9:05:00   PM", US, 2018, 4, 3, 21, 5, 0 },       /* several spaces */
    { "4/3/2018 9:05 AM", "%m/%d/%Y %I:%M %p", 2018, 4, 3, 9, 5, 0 },
    { "4/3/2018 9:05PM", "%m/%d/%Y %I:%M%p", 2018, 4, 3, 21, 5, 0 },
    { NULL, NULL, 0, 0, 0, 0, 0, 0 }
};

static void test_twelve_hour_clock(void **state)
{
    s_reads_all(s_ampm);
}

static const date_case_t s_names[] = {
    { "14 mars 2024", "%d %B %Y", 2024, 3, 14, 0, 0, 0 },
    { "Mar 14, 2024", "%b %d, %Y", 2024, 3, 14, 0, 0, 0 },
    { "jeudi 14/03/2024", "%A %d/%m/%Y", 2024, 3, 14, 0, 0, 0 },
    { "14 févr. 2024", "%d %b %Y", 2024, 2, 14, 0, 0, 0 },
    { "14 FEVRIER 2024", "%d %B %Y", 2024, 2, 14, 0, 0, 0 },
    { "14 FÉVRIER 2024", "%d %B %Y", 2024, 2, 14, 0, 0, 0 },
    { "1 janvier 2024", "%e %B %Y", 2024, 1, 1, 0, 0, 0 },
    { "2 janv. 2024", "%e %b %Y", 2024, 1, 2, 0, 0, 0 },
    { "3 avr. 2024", "%d %b %Y", 2024, 4, 3, 0, 0, 0 },
    { "3 mai 2024", "%d %b %Y", 2024, 5, 3, 0, 0, 0 },
    { "3 juin 2024", "%d %b %Y", 2024, 6, 3, 0, 0, 0 },
    { "3 juil. 2024", "%d %b %Y", 2024, 7, 3, 0, 0, 0 },
    { "15 août 2024", "%d %B %Y", 2024, 8, 15, 0, 0, 0 },
    { "15 aout 2024", "%d %B %Y", 2024, 8, 15, 0, 0, 0 },
    { "15 AOÛT 2024", "%d %B %Y", 2024, 8, 15, 0, 0, 0 },
    { "3 sept. 2024", "%d %b %Y", 2024, 9, 3, 0, 0, 0 },
    { "3 oct. 2024", "%d %b %Y", 2024, 10, 3, 0, 0, 0 },
    { "3 nov. 2024", "%d %b %Y", 2024, 11, 3, 0, 0, 0 },
    { "25 déc. 2024", "%d %b %Y", 2024, 12, 25, 0, 0, 0 },
    { "25 decembre 2024", "%d %B %Y", 2024, 12, 25, 0, 0, 0 },
    { "January 5, 2024", "%B %e, %Y", 2024, 1, 5, 0, 0, 0 },
    { "Sept 5, 2024", "%b %e, %Y", 2024, 9, 5, 0, 0, 0 },
    { "sep 5 2024", "%b %e %Y", 2024, 9, 5, 0, 0, 0 },
    { "Feb. 29, 2024", "%b %d, %Y", 2024, 2, 29, 0, 0, 0 },
    { "05-Aug-2024", "%d-%b-%Y", 2024, 8, 5, 0, 0, 0 },
    { "Thu, 14 Mar 2024 10:00:00 +0100", "%a, %d %b %Y %T %z", 2024, 3, 14, 10, 0, 0 },
    { "Thursday March 14 2024 3:04 PM", "%A %B %d %Y %I:%M %p", 2024, 3, 14, 15, 4, 0 },
    { "jeu. 14 mars 2024", "%a %d %B %Y", 2024, 3, 14, 0, 0, 0 },
    { "Dimanche 31 mars 2024 à 14h05", "%A %d %B %Y à %Hh%M", 2024, 3, 31, 14, 5, 0 },
    { NULL, NULL, 0, 0, 0, 0, 0, 0 }
};

static void test_month_and_day_names(void **state)
{
    s_reads_all(s_names);
}

static const date_case_t s_numbers[] = {
    { "20240304 101500 +0100", "%Y%m%d %H%M%S %z", 2024, 3, 4, 10, 15, 0 },
    { "2024-03-04T10:15:00", "%FT%T", 2024, 3, 4, 10, 15, 0 },
    { "04.03.24 10:15", "%d.%m.%y %R", 2024, 3, 4, 10, 15, 0 },
    { "04.03.70", "%d.%m.%y", 1970, 3, 4, 0, 0, 0 },
    { " 4/03/2024", "%e/%m/%Y", 2024, 3, 4, 0, 0, 0 },
    { "4/3/2024\t9:05", "%d/%m/%Y%t%H:%M", 2024, 3, 4, 9, 5, 0 },
    { "100% 04/03/2024", "100%% %d/%m/%Y", 2024, 3, 4, 0, 0, 0 },
    { NULL, NULL, 0, 0, 0, 0, 0, 0 }
};

static void test_numeric_conversions(void **state)
{
    s_reads_all(s_numbers);
    cv_datefmt_civil_t d;
    assert_int_equal(cv_datefmt_read("04/03/2024 10:00 +05:30", "%d/%m/%Y %H:%M %z", &d, NULL, 0), 0);
    assert_true(d.has_offset);
    assert_int_equal(d.offset, 5 * 3600 + 30 * 60);
    assert_int_equal(cv_datefmt_read("04/03/2024 10:00 Z", "%d/%m/%Y %H:%M %z", &d, NULL, 0), 0);
    assert_true(d.has_offset && d.offset == 0);
    assert_int_equal(cv_datefmt_read("04/03/2024 10:00 -03", "%d/%m/%Y %H:%M %z", &d, NULL, 0), 0);
    assert_int_equal(d.offset, -3 * 3600);
    assert_int_equal(cv_datefmt_read("04/03/2024", "%d/%m/%Y", &d, NULL, 0), 0);
    assert_false(d.has_offset);
}

/* Excel: days since 1899-12-30, with its 29 February 1900 (serial 60). */
static const date_case_t s_excel[] = {
    { "43203.4652", "excel", 2018, 4, 13, 11, 9, 53 },    /* .4652 day = 40193.28 s */
    { "43203", "excel", 2018, 4, 13, 0, 0, 0 },
    { "43203,5", "excel", 2018, 4, 13, 12, 0, 0 },        /* a French decimal comma */
    { "45365.75", "excel", 2024, 3, 14, 18, 0, 0 },
    { "1", "excel", 1900, 1, 1, 0, 0, 0 },               /* Excel's first day */
    { "59", "excel", 1900, 2, 28, 0, 0, 0 },
    { "61", "excel", 1900, 3, 1, 0, 0, 0 },
    { "2958465", "excel", 9999, 12, 31, 0, 0, 0 },
    { "43203.99999999", "excel", 2018, 4, 14, 0, 0, 0 },  /* rounds to the next midnight */
    { NULL, NULL, 0, 0, 0, 0, 0, 0 }
};

static void test_excel_serials(void **state)
{
    s_reads_all(s_excel);
    char why[200];
    cv_datefmt_civil_t d;
    assert_int_equal(cv_datefmt_read("60", "excel", &d, why, sizeof why), CV_DATEFMT_NODATE);
    assert_non_null(strstr(why, "29 February 1900"));
    assert_int_equal(cv_datefmt_read("0", "excel", &d, why, sizeof why), CV_DATEFMT_NODATE);
    assert_int_equal(cv_datefmt_read("0.5", "excel", &d, why, sizeof why), CV_DATEFMT_NODATE);
    assert_non_null(strstr(why, "start at 1"));
    assert_int_equal(cv_datefmt_read("2958466", "excel", &d, why, sizeof why), CV_DATEFMT_NODATE);
    static const char *bad[] = { "", "-1", "12a", "4.5.6", "1e5", ".5", "43203.", "99999999999", NULL };
    for (int i = 0; bad[i]; i++)
        if (cv_datefmt_read(bad[i], "excel", &d, why, sizeof why) == 0)
            fail_msg("'%s' was read as an Excel date", bad[i]);
}

/* Each way to fail, its code and reason; the reason never holds the text. */
typedef struct {
    const char *text, *format;
    int rc;
    const char *why;
} bad_case_t;

static const bad_case_t s_bad[] = {
    { "04/12/2018 11:11:26 XM", US, CV_DATEFMT_NOMATCH, "expected AM or PM at character 21" },
    { "04/12/2018 11:11:26", US, CV_DATEFMT_NOMATCH, "expected a space before '%p' at character 20 (the end of the text)" },
    { "04/12/2018 13:11:26 PM", US, CV_DATEFMT_NOMATCH, "an hour (%I) is outside 1-12 at character 12" },
    { "04/12/2018 00:11:26 AM", US, CV_DATEFMT_NOMATCH, "an hour (%I) is outside 1-12 at character 12" },
    { "14 mrs 2024", "%d %B %Y", CV_DATEFMT_NOMATCH, "month name not recognised at character 4" },
    { "14 2024", "%d %B %Y", CV_DATEFMT_NOMATCH, "month name not recognised at character 4" },
    { "joudi 14/03/2024", "%A %d/%m/%Y", CV_DATEFMT_NOMATCH, "day name not recognised at character 1" },
    { "vendredi 14/03/2024", "%A %d/%m/%Y", CV_DATEFMT_NODATE, "the day name at character 1 does not match the date" },
    { "31/04/2024", "%d/%m/%Y", CV_DATEFMT_NODATE, "day 31 does not exist in April" },
    { "29/02/2023", "%d/%m/%Y", CV_DATEFMT_NODATE, "day 29 does not exist in February of that year" },
    { "30 févr. 2024", "%d %b %Y", CV_DATEFMT_NODATE, "day 30 does not exist in February" },
    { "32/01/2024", "%d/%m/%Y", CV_DATEFMT_NOMATCH, "a day (%d) is outside 1-31 at character 1" },
    { "04/13/2024", "%d/%m/%Y", CV_DATEFMT_NOMATCH, "a month (%m) is outside 1-12 at character 4" },
    { "04-03-2024", "%d/%m/%Y", CV_DATEFMT_NOMATCH, "expected '/' at character 3" },
    { "04/03/2024 25:00", "%d/%m/%Y %H:%M", CV_DATEFMT_NOMATCH, "an hour (%H) is outside 0-23 at character 12" },
    { "04/03/2024 10:61", "%d/%m/%Y %H:%M", CV_DATEFMT_NOMATCH, "the minutes (%M) is outside 0-59 at character 15" },
    { "04/03/2024 10:", "%d/%m/%Y %H:%M", CV_DATEFMT_NOMATCH, "expected the minutes (%M) at character 15 (the end" },
    { "04/03/2024 10:15 extra", "%d/%m/%Y %H:%M", CV_DATEFMT_NOMATCH, "the text goes on after the format ends at character 17" },
    { "04/03/2024 10:00", "%d/%m/%Y %H:%M %z", CV_DATEFMT_NOMATCH, "expected a space before '%z' at character 17" },
    { "04/03/2024 10:00 +2", "%d/%m/%Y %H:%M %z", CV_DATEFMT_NOMATCH, "expected the hours of the UTC offset (%z) at character 19" },
    { "04/03/2024 10:00 CET", "%d/%m/%Y %H:%M %z", CV_DATEFMT_NOMATCH, "expected a UTC offset such as +01:00 or Z (%z) at character 18" },
    { "garbage", "%d/%m/%Y", CV_DATEFMT_NOMATCH, "expected a day (%d) at character 1" },
    { "", "%d/%m/%Y", CV_DATEFMT_NOMATCH, "expected a day (%d) at character 1 (the end of the text)" },
    { "é4/03/2024", "%d/%m/%Y", CV_DATEFMT_NOMATCH, "expected a day (%d) at character 1" },
    { "14 déc. x", "%d %b %Y", CV_DATEFMT_NOMATCH, "expected a year (%Y) at character 9" },   /* characters, not bytes */
    { "0000-01-01", "%F", CV_DATEFMT_NODATE, "the year is outside 1-9999" },
    { NULL, NULL, 0, NULL }
};

static void test_failure_reasons(void **state)
{
    for (int i = 0; s_bad[i].text; i++) {
        const bad_case_t *b = &s_bad[i];
        cv_datefmt_civil_t d;
        char why[200];
        int rc = cv_datefmt_read(b->text, b->format, &d, why, sizeof why);
        if (rc != b->rc || !strstr(why, b->why))
            fail_msg("'%s' with '%s': %d '%s', expected %d '%s'", b->text, b->format, rc, why, b->rc, b->why);
        if (strlen(b->text) > 3 && strstr(why, b->text))
            fail_msg("the reason '%s' holds the text", why);
    }
    /* no room for a reason: the code alone */
    cv_datefmt_civil_t d;
    assert_int_equal(cv_datefmt_read("31/04/2024", "%d/%m/%Y", &d, NULL, 0), CV_DATEFMT_NODATE);
}

/* cv_tz_parse_why: the same reasons, and ISO 8601's. */
static void test_tz_parse_why(void **state)
{
    cv_tz_civil_t c;
    char why[200];
    assert_int_equal(cv_tz_parse_why("2024-03-04X", NULL, &c, why, sizeof why), CV_DATEFMT_NOMATCH);
    assert_non_null(strstr(why, "at character 11"));
    assert_int_equal(cv_tz_parse_why("2024-04-31", NULL, &c, why, sizeof why), CV_DATEFMT_NODATE);
    assert_string_equal(why, "day 31 does not exist in April");
    assert_int_equal(cv_tz_parse_why("04/12/2018 12:05:00 AM", US, &c, why, sizeof why), 0);
    assert_int_equal(c.hour, 0);
    assert_int_equal(cv_tz_parse("45365.75", "excel", &c), 0);
    assert_int_equal(c.hour, 18);
    assert_int_equal(cv_tz_parse("garbage", US, &c), -1);
}

static void test_check(void **state)
{
    char why[300];
    static const char *good[] = { US, "%d %B %Y", "%b %e, %Y", "%A %d/%m/%Y", "%a, %d %h %Y %T %z", "excel",
                                  "%d/%m/%y%n%I%p", "%F", "%d %B %Y à %Hh%M", "%d/%m/%Y CAMPAGNE",
                                  "PAM %d/%m/%Y", "%d/%m/%Y jamais", NULL };
    for (int i = 0; good[i]; i++)
        if (cv_datefmt_check(good[i], why, sizeof why) < 0)
            fail_msg("'%s' refused: %s", good[i], why);
    static const struct { const char *format, *why; } bad[] = {
        { "%d/%m/%Y %H:%M %p", "'%p' (AM/PM) needs a 12-hour clock hour '%I'" },
        { "%d/%m/%Y %I:%M", "'%I' (12-hour clock) needs '%p' (AM/PM)" },
        { "%d/%m/%Y %I:%H %p", "reads the hour twice" },
        { "%d/%m/%Y %T %I %p", "reads the hour twice" },
        { "%m/%d/%Y %H:%M:%S AM", "writes AM or PM as text" },
        { "%m/%d/%Y %H:%M:%S pm", "writes AM or PM as text" },
        { "%m/%d/%Y %H:%M a.m.", "writes AM or PM as text" },
        { "%d %B", "a year, a month and a day" },
        { "%A %Y", "a year, a month and a day" },
        { "%d %j %Y", "'%j' is not supported" },
        { "%d/%m/%Y %", "'% ' is not supported" },
        { "Excel", "a year, a month and a day" },
        { "%d/%m/%Y ................................................................", "longer than 64" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (cv_datefmt_check(bad[i].format, why, sizeof why) == 0 || !strstr(why, bad[i].why))
            fail_msg("'%s': '%s', expected '%s'", bad[i].format, why, bad[i].why);
}

/* Names, AM/PM and digits are ours: the same under any locale the
   machine has (strptime's %b and %p would follow LC_TIME). */
static void test_locale_independent(void **state)
{
    static const char *const locales[] = { "fr_FR.UTF-8", "fr_FR.utf8", "de_DE.UTF-8", "C.UTF-8", "C.utf8",
                                           "POSIX", NULL };
    int tried = 0;
    for (int i = 0; locales[i]; i++) {
        if (!setlocale(LC_ALL, locales[i]))
            continue;
        tried++;
        s_reads_all(s_ampm);
        s_reads_all(s_names);
        s_reads_all(s_excel);
    }
    setlocale(LC_ALL, "C");
    assert_true(tried > 0);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twelve_hour_clock),
        cmocka_unit_test(test_month_and_day_names),
        cmocka_unit_test(test_numeric_conversions),
        cmocka_unit_test(test_excel_serials),
        cmocka_unit_test(test_failure_reasons),
        cmocka_unit_test(test_tz_parse_why),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_locale_independent),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
