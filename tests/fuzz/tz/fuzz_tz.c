/*  fuzz_tz — the dates of records (hub/map/cv_tz.c), as a mapping reads
    them: cv_tz_parse_why in ISO 8601 form or in a format that passed
    cv_tz_check_format (what cv_mapping_load checks; read by our own
    reader, hub/map/cv_datefmt.c: 12-hour clocks with %I %p, month and day
    names, Excel serials), then cv_tz_civil_to_utc in Europe/Paris and
    cv_tz_format_utc.

    Input: the first byte picks the format: one of those the mappings use
    (0-6 and 9-15), ISO 8601 (7, NULL), or one read from the input up to
    its first newline (8)
    (only if cv_tz_check_format accepts it, since the hub refuses to start
    with any other). The rest, up to a NUL, is the date text.
    Checked:
      - a refused text gets a reason, and the character it names is within
        the text (or just after its end); cv_tz_parse agrees;
      - a parsed date names a real day and time (month 1-12, day within the
        month, hour 0-23 ...), and an offset below 24 hours;
      - its UTC instant is written as "YYYY-MM-DDTHH:MM:SSZ" and that text,
        read back in ISO form, names the same instant;
      - the UTC offset Paris had then is within a day (whole minutes only
        since 1911: before, Paris mean time was +0:09:21). */
#include "fuzz_util.h"

#include <inttypes.h>

#include "map/cv_tz.h"

static cv_tz_t *s_paris;

static const char *const s_formats[] = {
    "%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%Y%m%d %H%M%S %z", "%Y-%m-%dT%H:%M:%S%z",
    "%F %T", "%e/%m/%y %R",
    /* picks 9 on: the conversions of our own reader */
    "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%d %B %Y", "%b %e, %Y", "%A %d/%m/%Y",
    "%a, %d %b %Y %T %z", "excel",
};
#define NFORMATS (sizeof s_formats / sizeof *s_formats)
#define PICK_ISO 7                 /* picks 7 and 8 kept their meaning when formats were added */
#define PICK_OWN 8

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    char err[256];
    if (!(s_paris = cv_tz_new("Europe/Paris", err, sizeof err))) {
        fprintf(stderr, "fuzz_tz: %s (is tzdata installed?)\n", err);
        exit(1);
    }
    return 0;
}

static bool s_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned pick = fuzz_take_byte(&data, &size) % (NFORMATS + 2);
    char *own = NULL;
    const char *format = NULL;
    if (pick != PICK_ISO && pick != PICK_OWN) {
        format = s_formats[pick < PICK_ISO ? pick : pick - 2];
    } else if (pick == PICK_OWN) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t n = nl ? (size_t) (nl - data) : size;
        own = fuzz_strndup(data, n);
        data += nl ? n + 1 : n;
        size -= nl ? n + 1 : n;
        char why[256];
        if (strlen(own) != n || cv_tz_check_format(own, why, sizeof why) < 0) {
            free(own);
            return 0;
        }
        format = own;
    }
    char *text = fuzz_strndup(data, size);
    cv_tz_civil_t c;
    char why[200];
    int rc = cv_tz_parse_why(text, format, &c, why, sizeof why);
    fuzz_check((rc == 0) == (cv_tz_parse(text, format, &c) == 0), "cv_tz_parse and cv_tz_parse_why disagree");
    if (rc != 0) {
        fuzz_check(rc == CV_DATEFMT_NOMATCH || rc == CV_DATEFMT_NODATE, "code %d", rc);
        fuzz_check(why[0] != '\0', "no reason for code %d", rc);
        const char *at = strstr(why, " at character ");
        int chars = 0;
        for (const char *p = text; *p; p++)
            chars += ((unsigned char) *p & 0xC0) != 0x80;
        fuzz_check(!at || atoi(at + 14) >= 1, "reason '%s' names no character", why);
        fuzz_check(!at || atoi(at + 14) <= chars + 1, "reason '%s' is past the text's %d characters", why, chars);
    }
    if (rc == 0) {
        static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        fuzz_check(c.month >= 1 && c.month <= 12, "month %d", c.month);
        fuzz_check(c.day >= 1 && c.day <= mdays[c.month - 1] + (c.month == 2 && s_leap(c.year)),
                   "day %d of month %d", c.day, c.month);
        fuzz_check(c.hour >= 0 && c.hour <= 23 && c.min >= 0 && c.min <= 59 && c.sec >= 0 && c.sec <= 59,
                   "time %d:%d:%d", c.hour, c.min, c.sec);
        fuzz_check(!c.has_offset || (c.offset > -86400 && c.offset < 86400), "offset %" PRId32, c.offset);
        int64_t utc = cv_tz_civil_to_utc(s_paris, &c);
        char out[CV_TZ_UTC_LEN + 1];
        cv_tz_format_utc(utc, out);
        fuzz_check(strlen(out) == CV_TZ_UTC_LEN && out[CV_TZ_UTC_LEN - 1] == 'Z', "UTC text '%s'", out);
        cv_tz_civil_t back;
        if (c.year >= 2 && c.year <= 9998) {      /* the UTC day stays within years 1-9999 */
            fuzz_check(cv_tz_parse(out, NULL, &back) == 0, "own UTC text '%s' refused", out);
            int64_t again = cv_tz_civil_to_utc(s_paris, &back);
            fuzz_check(again == utc, "'%s' read back as %" PRId64 ", not %" PRId64, out, again, utc);
        }
        int32_t off = cv_tz_offset_at(s_paris, utc);
        fuzz_check(off > -86400 && off < 86400, "Paris offset %" PRId32, off);
    }
    free(text);
    free(own);
    return 0;
}
