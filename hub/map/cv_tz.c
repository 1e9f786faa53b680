/*  tz — see cv_tz.h.

    A zone is loaded once into two plain tables: the instants of its
    transitions and the UTC offset in force from each one on. Instants past
    the last transition use the zone file's POSIX rule ("CET-1CEST,M3.5.0,
    M10.5.0/3": standard and summer offsets, and the day and local time of
    each change), evaluated for the year in question. So the offset at an
    instant is a binary search or a few lines of calendar arithmetic, with
    no global state and no allocation.

    Local to UTC: the offsets in force a day before and a day after the
    wall-clock time are the candidates (a zone changes offset at most once
    in that span); a candidate o is right if the instant local - o really
    has offset o. Two right answers: the hour is repeated, take the
    earlier instant. None: the time is in a gap, use the offset before.

    The file is TZif (RFC 8536): a header with six counts, a 32-bit data
    block, then (version 2 and later) the same with 64-bit times and the
    footer "\n<POSIX TZ>\n". Only the 64-bit block and footer are used. */
#include "cv_tz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TZ_NAME_MAX 100
#define TZ_FILE_MAX (256 * 1024)
#define TZ_DAY 86400
#define TZ_OFFSET_MAX (26 * 3600)

/* When a POSIX rule switches: day kind 'J' (1..365, no Feb 29), 'D' (0..365)
   or 'M' (month a, week b, weekday c), at `time` seconds local. */
typedef struct {
    char kind;
    int a, b, c;
    int32_t time;
} tz_rule_t;

struct cv_tz {
    char name[TZ_NAME_MAX + 1];
    size_t ntrans;
    int64_t *trans;                /* transition instants, ascending */
    int32_t *trans_off;            /* offset in force from trans[i] on */
    int32_t first_off;             /* before the first transition */
    bool has_rule;                 /* footer rule for instants after the table */
    bool has_dst;
    int32_t std_off, dst_off;
    tz_rule_t start, end;          /* to summer time, back to standard time */
};

/* ---- calendar ------------------------------------------------------------ */

static bool s_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int s_month_days(int64_t y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && s_leap(y) ? 29 : days[m - 1];
}

/* Leap years in [1, y). */
static int64_t s_leaps_before(int64_t y)
{
    y -= 1;
    return y / 4 - y / 100 + y / 400;
}

/* Days since 1970-01-01 of a date, for years 1..9999. */
static int64_t s_days(int64_t y, int m, int d)
{
    static const int before[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };
    return (y - 1970) * 365 + s_leaps_before(y) - s_leaps_before(1970)
         + before[m - 1] + (m > 2 && s_leap(y)) + d - 1;
}

static int64_t s_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Year, month and day of a day count (clamped to years 1..9999). */
static void s_civil(int64_t days, int *y, int *m, int *d)
{
    int64_t lo = s_days(1, 1, 1), hi = s_days(9999, 12, 31);
    days = days < lo ? lo : days > hi ? hi : days;
    int64_t yy = 1970 + s_floor_div(days * 400, 146097);
    if (yy < 1)
        yy = 1;
    if (yy > 9999)
        yy = 9999;
    while (yy > 1 && s_days(yy, 1, 1) > days)
        yy--;
    while (yy < 9999 && s_days(yy + 1, 1, 1) <= days)
        yy++;
    int64_t doy = days - s_days(yy, 1, 1);
    int mm = 1;
    while (mm < 12 && doy >= s_month_days(yy, mm))
        doy -= s_month_days(yy, mm++);
    *y = (int) yy;
    *m = mm;
    *d = (int) doy + 1;
}

void cv_tz_civil_date(int64_t days, int *year, int *month, int *day)
{
    s_civil(days, year, month, day);
}

int64_t cv_tz_civil_secs(int year, int month, int day, int hour, int min, int sec)
{
    return s_days(year, month, day) * TZ_DAY + hour * 3600 + min * 60 + sec;
}

static void s_put(char *out, int value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char) ('0' + value % 10);
        value /= 10;
    }
}

void cv_tz_format_utc(int64_t utc, char out[CV_TZ_UTC_LEN + 1])
{
    int64_t days = s_floor_div(utc, TZ_DAY);
    int secs = (int) (utc - days * TZ_DAY);
    int y, m, d;
    s_civil(days, &y, &m, &d);
    memcpy(out, "0000-00-00T00:00:00Z", CV_TZ_UTC_LEN + 1);
    s_put(out, y, 4);
    s_put(out + 5, m, 2);
    s_put(out + 8, d, 2);
    s_put(out + 11, secs / 3600, 2);
    s_put(out + 14, secs / 60 % 60, 2);
    s_put(out + 17, secs % 60, 2);
}

/* ---- POSIX TZ rule (the zone file's footer) ------------------------------ */

static const char *s_rule_name(const char *s)
{
    if (*s == '<') {
        const char *close = strchr(s, '>');
        return close && close > s + 1 ? close + 1 : NULL;
    }
    const char *start = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    return s - start >= 3 ? s : NULL;
}

static const char *s_number(const char *s, int max, int *out)
{
    if (*s < '0' || *s > '9')
        return NULL;
    int v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (v > max)
            return NULL;
    }
    *out = v;
    return s;
}

/* [+-]hh[:mm[:ss]] in seconds. */
static const char *s_hms(const char *s, int max_hours, int32_t *out)
{
    int sign = 1, h = 0, m = 0, sec = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (!(s = s_number(s, max_hours, &h)))
        return NULL;
    if (*s == ':' && !(s = s_number(s + 1, 59, &m)))
        return NULL;
    if (s && *s == ':' && !(s = s_number(s + 1, 59, &sec)))
        return NULL;
    *out = sign * (h * 3600 + m * 60 + sec);
    return s;
}

static const char *s_rule_date(const char *s, tz_rule_t *r)
{
    r->time = 7200;
    if (*s == 'J') {
        r->kind = 'J';
        s = s_number(s + 1, 365, &r->a);
        if (!s || r->a < 1)
            return NULL;
    } else if (*s == 'M') {
        r->kind = 'M';
        if (!(s = s_number(s + 1, 12, &r->a)) || r->a < 1 || *s != '.'
            || !(s = s_number(s + 1, 5, &r->b)) || r->b < 1 || *s != '.'
            || !(s = s_number(s + 1, 6, &r->c)))
            return NULL;
    } else {
        r->kind = 'D';
        if (!(s = s_number(s, 365, &r->a)))
            return NULL;
    }
    if (*s == '/')
        s = s_hms(s + 1, 167, &r->time);
    return s;
}

/* Parses "std offset [dst [offset] [,start[/time],end[/time]]]". */
static int s_parse_rule(cv_tz_t *z, const char *s)
{
    int32_t v;
    if (*s == '\0')
        return 0;                  /* empty footer: no rule */
    if (!(s = s_rule_name(s)) || !(s = s_hms(s, 24, &v)))
        return -1;
    z->std_off = -v;
    if (*s == '\0') {
        z->has_rule = true;
        return 0;
    }
    if (!(s = s_rule_name(s)))
        return -1;
    z->dst_off = z->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!(s = s_hms(s, 24, &v)))
            return -1;
        z->dst_off = -v;
    }
    if (*s != ',' || !(s = s_rule_date(s + 1, &z->start)) || *s != ','
        || !(s = s_rule_date(s + 1, &z->end)) || *s != '\0')
        return -1;
    z->has_rule = z->has_dst = true;
    return 0;
}

/* Local seconds at which rule r switches in year y. */
static int64_t s_rule_local(const tz_rule_t *r, int y)
{
    int64_t day;
    if (r->kind == 'J')
        day = s_days(y, 1, 1) + r->a - 1 + (s_leap(y) && r->a >= 60);
    else if (r->kind == 'D')
        day = s_days(y, 1, 1) + r->a;
    else {
        int64_t first = s_days(y, r->a, 1);
        int wday = (int) (((first + 4) % 7 + 7) % 7);   /* 1970-01-01 was a Thursday */
        int d = (r->c - wday + 7) % 7 + (r->b - 1) * 7;
        while (d >= s_month_days(y, r->a))
            d -= 7;                /* week 5 means the last one */
        day = first + d;
    }
    return day * TZ_DAY + r->time;
}

static int32_t s_rule_offset(const cv_tz_t *z, int64_t utc)
{
    if (!z->has_dst)
        return z->std_off;
    int y, m, d;
    s_civil(s_floor_div(utc + z->std_off, TZ_DAY), &y, &m, &d);
    int64_t start = s_rule_local(&z->start, y) - z->std_off;
    int64_t end = s_rule_local(&z->end, y) - z->dst_off;
    bool dst = start < end ? utc >= start && utc < end     /* northern hemisphere */
                           : !(utc >= end && utc < start); /* southern */
    return dst ? z->dst_off : z->std_off;
}

/* ---- offsets ------------------------------------------------------------- */

int32_t cv_tz_offset_at(const cv_tz_t *self, int64_t utc)
{
    size_t n = self->ntrans;
    if (self->has_rule && (n == 0 || utc >= self->trans[n - 1]))
        return s_rule_offset(self, utc);
    if (n == 0 || utc < self->trans[0])
        return self->first_off;
    size_t lo = 0, hi = n;         /* last i with trans[i] <= utc */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->trans[mid] <= utc)
            lo = mid;
        else
            hi = mid;
    }
    return self->trans_off[lo];
}

int64_t cv_tz_local_to_utc(const cv_tz_t *self, int64_t local)
{
    int32_t before = cv_tz_offset_at(self, local - TZ_DAY);
    int32_t after = cv_tz_offset_at(self, local + TZ_DAY);
    bool before_ok = cv_tz_offset_at(self, local - before) == before;
    bool after_ok = cv_tz_offset_at(self, local - after) == after;
    if (before_ok && after_ok)     /* repeated hour: the first occurrence */
        return local - (before > after ? before : after);
    if (after_ok)
        return local - after;
    return local - before;         /* normal time, or a gap */
}

int64_t cv_tz_civil_to_utc(const cv_tz_t *zone, const cv_tz_civil_t *c)
{
    int64_t local = cv_tz_civil_secs(c->year, c->month, c->day, c->hour, c->min, c->sec);
    return c->has_offset ? local - c->offset : cv_tz_local_to_utc(zone, local);
}

/* ---- loading a zone file ------------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t len, pos;
} tz_reader_t;

static const unsigned char *s_take(tz_reader_t *r, size_t n)
{
    if (n > r->len - r->pos)
        return NULL;
    const unsigned char *at = r->p + r->pos;
    r->pos += n;
    return at;
}

static int64_t s_be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    if (bytes == 4)
        return (int32_t) (uint32_t) v;
    return (int64_t) v;
}

/* Header: "TZif", version, 15 reserved bytes, six counts. */
static int s_header(tz_reader_t *r, char *version, uint32_t counts[6])
{
    const unsigned char *h = s_take(r, 44);
    if (!h || memcmp(h, "TZif", 4) != 0)
        return -1;
    *version = (char) h[4];
    for (int i = 0; i < 6; i++)
        counts[i] = (uint32_t) s_be(h + 20 + 4 * i, 4) & 0xffffffffu;
    return 0;
}

enum { C_ISUT, C_ISSTD, C_LEAP, C_TIME, C_TYPE, C_CHAR };

static size_t s_block_size(const uint32_t c[6], size_t tsize)
{
    return (size_t) c[C_TIME] * (tsize + 1) + (size_t) c[C_TYPE] * 6 + c[C_CHAR]
         + (size_t) c[C_LEAP] * (tsize + 4) + c[C_ISSTD] + c[C_ISUT];
}

static int s_data(cv_tz_t *z, tz_reader_t *r, const uint32_t c[6], size_t tsize, const char **why)
{
    if (c[C_TYPE] == 0 || c[C_TYPE] > 256 || c[C_TIME] > 100000) {
        *why = "bad counts";
        return -1;
    }
    if (c[C_LEAP] > 0) {
        *why = "zones with leap seconds (right/...) are not supported";
        return -1;
    }
    const unsigned char *times = s_take(r, (size_t) c[C_TIME] * tsize);
    const unsigned char *idx = s_take(r, c[C_TIME]);
    const unsigned char *types = s_take(r, (size_t) c[C_TYPE] * 6);
    if (!times || !idx || !types || !s_take(r, (size_t) c[C_CHAR] + c[C_ISSTD] + c[C_ISUT])) {
        *why = "file is truncated";
        return -1;
    }
    int32_t offs[256];
    for (uint32_t i = 0; i < c[C_TYPE]; i++) {
        int64_t off = s_be(types + 6 * i, 4);
        if (off < -TZ_OFFSET_MAX || off > TZ_OFFSET_MAX) {
            *why = "offset out of range";
            return -1;
        }
        offs[i] = (int32_t) off;
    }
    z->first_off = offs[0];
    z->ntrans = c[C_TIME];
    z->trans = calloc(z->ntrans ? z->ntrans : 1, sizeof *z->trans);
    z->trans_off = calloc(z->ntrans ? z->ntrans : 1, sizeof *z->trans_off);
    if (!z->trans || !z->trans_off) {
        *why = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < z->ntrans; i++) {
        z->trans[i] = s_be(times + tsize * i, (int) tsize);
        if (idx[i] >= c[C_TYPE] || (i > 0 && z->trans[i] <= z->trans[i - 1])) {
            *why = "bad transition table";
            return -1;
        }
        z->trans_off[i] = offs[idx[i]];
    }
    return 0;
}

static int s_parse_file(cv_tz_t *z, const unsigned char *buf, size_t len, const char **why)
{
    tz_reader_t r = { buf, len, 0 };
    char version;
    uint32_t c[6];
    *why = "not a TZif zone file";
    if (s_header(&r, &version, c) < 0)
        return -1;
    if (version == '\0')           /* version 1: 32-bit data, no rule */
        return s_data(z, &r, c, 4, why);
    if (!s_take(&r, s_block_size(c, 4)) || s_header(&r, &version, c) < 0)
        return -1;
    if (s_data(z, &r, c, 8, why) < 0)
        return -1;
    const unsigned char *nl = s_take(&r, 1);
    const char *footer = (const char *) (r.p + r.pos);
    const char *end = memchr(footer, '\n', r.len - r.pos);
    char rule[128];
    if (!nl || *nl != '\n' || !end || (size_t) (end - footer) >= sizeof rule) {
        *why = "bad footer";
        return -1;
    }
    memcpy(rule, footer, (size_t) (end - footer));
    rule[end - footer] = '\0';
    if (s_parse_rule(z, rule) < 0) {
        *why = "unsupported POSIX TZ rule in footer";
        return -1;
    }
    return 0;
}

static bool s_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TZ_NAME_MAX || name[0] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
               || ch == '_' || ch == '+' || ch == '-' || ch == '/' || ch == '.';
        if (!ok || (ch == '.' && (i == 0 || name[i - 1] == '/')) || (ch == '/' && name[i + 1] == '/'))
            return false;          /* no hidden or ".." segments, no "//" */
    }
    return true;
}

static unsigned char *s_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= TZ_FILE_MAX
        && (buf = malloc((size_t) st.st_size + 1))) {
        *len = fread(buf, 1, (size_t) st.st_size, f);
        if (*len != (size_t) st.st_size) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

cv_tz_t *cv_tz_new(const char *name, char *err, size_t errlen)
{
    if (!s_name_ok(name)) {
        snprintf(err, errlen, "'%s' is not a time zone name (like Europe/Paris)", name);
        return NULL;
    }
    char path[sizeof CV_TZ_DIR + TZ_NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", CV_TZ_DIR, name);
    size_t len = 0;
    unsigned char *buf = s_read(path, &len);
    if (!buf) {
        snprintf(err, errlen, "unknown time zone '%s' (no zone file %s)", name, path);
        return NULL;
    }
    cv_tz_t *self = calloc(1, sizeof *self);
    const char *why = "out of memory";
    if (!self || s_parse_file(self, buf, len, &why) < 0) {
        snprintf(err, errlen, "time zone '%s': %s: %s", name, path, why);
        free(buf);
        cv_tz_destroy(&self);
        return NULL;
    }
    free(buf);
    snprintf(self->name, sizeof self->name, "%s", name);
    return self;
}

void cv_tz_destroy(cv_tz_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_tz_t *self = *self_p;
    free(self->trans);
    free(self->trans_off);
    free(self);
    *self_p = NULL;
}

const char *cv_tz_name(const cv_tz_t *self)
{
    return self->name;
}

/* ---- reading dates ------------------------------------------------------- */

/* Exactly n digits. */
static bool s_fixed(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*s)[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *s += n;
    *out = v;
    return true;
}

/* ISO 8601; on failure *at is where the text stops matching. */
static int s_parse_iso(const char *s, cv_tz_civil_t *c, const char **at)
{
    *at = s;
    if (!s_fixed(&s, 4, &c->year) || *s++ != '-' || !s_fixed(&s, 2, &c->month)
        || *s++ != '-' || !s_fixed(&s, 2, &c->day))
        return -1;
    *at = s;
    if (*s == '\0')
        return 0;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return -1;
    s++;
    if (!s_fixed(&s, 2, &c->hour) || *s++ != ':' || !s_fixed(&s, 2, &c->min))
        return -1;
    *at = s;
    if (*s == ':') {
        s++;
        if (!s_fixed(&s, 2, &c->sec))
            return -1;
        if (*s == '.' || *s == ',') {          /* fraction: dropped */
            s++;
            if (*s < '0' || *s > '9')
                return -1;
            while (*s >= '0' && *s <= '9')
                s++;
        }
        *at = s;
    }
    if (*s == 'Z' || *s == 'z') {
        c->has_offset = true;
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, h, m = 0;
        if (!s_fixed(&s, 2, &h))
            return -1;
        bool colon = *s == ':';
        s += colon;
        if ((colon || *s != '\0') && (!s_fixed(&s, 2, &m) || m > 59))
            return -1;
        c->has_offset = true;
        c->offset = sign * (h * 3600 + m * 60);
    }
    *at = s;
    return *s == '\0' ? 0 : -1;
}

int cv_tz_parse_why(const char *text, const char *format, cv_tz_civil_t *out, char *why, size_t whylen)
{
    if (format)
        return cv_datefmt_read(text, format, out, why, whylen);
    memset(out, 0, sizeof *out);
    const char *at;
    if (s_parse_iso(text, out, &at) < 0) {
        if (why)
            snprintf(why, whylen, "expected YYYY-MM-DD, then optionally THH:MM[:SS] and Z or +HH:MM,"
                     " at character %d", cv_datefmt_char_at(text, at));
        return CV_DATEFMT_NOMATCH;
    }
    return cv_datefmt_valid(out, why, whylen);
}

int cv_tz_parse(const char *text, const char *format, cv_tz_civil_t *out)
{
    return cv_tz_parse_why(text, format, out, NULL, 0) == 0 ? 0 : -1;
}

int cv_tz_check_format(const char *format, char *why, size_t whylen)
{
    return cv_datefmt_check(format, why, whylen);
}
