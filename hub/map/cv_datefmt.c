/*  datefmt — see cv_datefmt.h.

    The reader walks the format and the text together. A run of white
    space in the format (or %n, %t) matches one or more white space
    characters of the text (space, tab, line breaks, U+00A0, U+202F); any
    other character of the format must be in the text as written; each
    conversion reads its field:

      %Y  1 to 4 digits            %y  1 or 2 digits, 69-99 = 19xx, else 20xx
      %m  month 1-12, 1 or 2 digits, %d %e day 1-31 (%e may start with a space)
      %H  hour 0-23   %I hour 1-12 (with %p)   %M minutes, %S seconds 0-59
      %p  AM / PM, any case, with or without dots (a.m., P.M.)
      %z  Z, +HH, +HHMM or +HH:MM (or -)
      %b %B %h  a month name or abbreviation, French or English
      %a %A     a day name or abbreviation, French or English
      %F = %Y-%m-%d   %T = %H:%M:%S   %R = %H:%M   %% a '%'

    Names are compared folded: ASCII letters in lower case and the accented
    Latin-1 letters as their base letter (É é è ê -> e, û -> u), so
    `FÉVRIER`, `fevrier` and `févr.` are all February; a dot right after a
    name is part of it. A day name is checked against the date it goes
    with. 12 AM is 00h, 12 PM is 12h.

    Reasons say what was expected and at which character (counted in
    characters, from 1), or which part of a well-formed date does not
    exist; never the text. */
#include "cv_datefmt.h"
#include "cv_tz.h"             /* its calendar: day counts and dates */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DF_WORD_MAX 16
#define DF_EXCEL_MAX 2958465       /* 9999-12-31 */

typedef struct {
    const char *text;              /* the whole text, for positions */
    const char *s;                 /* where reading is */
    cv_datefmt_civil_t *out;
    int hour12;                    /* %I, or -1 */
    int pm;                        /* %p: 0 AM, 1 PM, or -1 */
    int wday;                      /* %a: 0 Monday .. 6 Sunday, or -1 */
    int wday_at;                   /* its character position */
    char *why;
    size_t whylen;
} df_t;

static const char *const s_month_names[12] = {
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December"
};

/* Folded names, space-separated, by month and by day (Monday first). */
static const char *const s_months[12] = {
    "janvier janv jan january", "fevrier fevr fev february feb", "mars mar march",
    "avril avr april apr", "mai may", "juin jun june", "juillet juil jul july",
    "aout aug august", "septembre sept sep september", "octobre oct october",
    "novembre nov november", "decembre dec december"
};
static const char *const s_days[7] = {
    "lundi lun monday mon", "mardi mar tuesday tue tues", "mercredi mer wednesday wed",
    "jeudi jeu thursday thu thur thurs", "vendredi ven friday fri", "samedi sam saturday sat",
    "dimanche dim sunday sun"
};

/* ---- calendar ------------------------------------------------------------ */

static bool s_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int s_month_days(int y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && s_leap(y) ? 29 : days[m - 1];
}

/* 0 Monday .. 6 Sunday (1970-01-01 was a Thursday). */
static int s_weekday(int y, int m, int d)
{
    int64_t days = cv_tz_civil_secs(y, m, d, 0, 0, 0) / 86400;
    return (int) (((days + 3) % 7 + 7) % 7);
}

int cv_datefmt_valid(const cv_datefmt_civil_t *c, char *why, size_t whylen)
{
    const char *bad = NULL;
    char buf[96];
    if (c->year < 1 || c->year > 9999)
        bad = "the year is outside 1-9999";
    else if (c->month < 1 || c->month > 12)
        bad = "the month is outside 1-12";
    else if (c->day < 1 || c->day > s_month_days(c->year, c->month)) {
        snprintf(buf, sizeof buf, c->month == 2 && c->day == 29 ? "day 29 does not exist in February of that year"
                                                                : "day %d does not exist in %s",
                 c->day, s_month_names[c->month - 1]);
        bad = buf;
    } else if (c->hour < 0 || c->hour > 23 || c->min < 0 || c->min > 59 || c->sec < 0 || c->sec > 59)
        bad = "the time of day does not exist";
    else if (c->has_offset && (c->offset <= -86400 || c->offset >= 86400))
        bad = "the UTC offset is not below 24 hours";
    if (!bad)
        return 0;
    if (why)
        snprintf(why, whylen, "%s", bad);
    return CV_DATEFMT_NODATE;
}

/* ---- the text ------------------------------------------------------------ */

int cv_datefmt_char_at(const char *text, const char *p)
{
    int n = 1;
    for (const char *q = text; q < p; q++)
        n += ((unsigned char) *q & 0xC0) != 0x80;
    return n;
}

static int s_at(const df_t *df, const char *p)
{
    return cv_datefmt_char_at(df->text, p);
}

/* The reason "<what> at character N" for the reading position. */
static int s_fail(df_t *df, const char *fmt, ...)
{
    if (!df->why)
        return CV_DATEFMT_NOMATCH;
    char what[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(df->why, df->whylen, "%s at character %d%s", what, s_at(df, df->s),
             *df->s ? "" : " (the end of the text)");
    return CV_DATEFMT_NOMATCH;
}

/* Bytes of the white space character at p, or 0. */
static int s_space(const char *p)
{
    const unsigned char *u = (const unsigned char *) p;
    if (*u == ' ' || (*u >= '\t' && *u <= '\r'))
        return 1;
    if (u[0] == 0xC2 && u[1] == 0xA0)
        return 2;                  /* U+00A0 no-break space */
    if (u[0] == 0xE2 && u[1] == 0x80 && u[2] == 0xAF)
        return 3;                  /* U+202F narrow no-break space */
    return 0;
}

static bool s_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* A number of 1 to width digits within lo..hi. */
static int s_number(df_t *df, int width, int lo, int hi, const char *what, int *out)
{
    if (!s_digit(*df->s))
        return s_fail(df, "expected %s", what);
    const char *start = df->s;
    int v = 0;
    for (int i = 0; i < width && s_digit(*df->s); i++)
        v = v * 10 + (*df->s++ - '0');
    if (v < lo || v > hi) {
        df->s = start;
        return s_fail(df, "%s is outside %d-%d", what, lo, hi);
    }
    *out = v;
    return 0;
}

/* The folded letter at p (its bytes in *len), or 0. */
static char s_fold(const char *p, int *len)
{
    unsigned char c = (unsigned char) *p;
    *len = 1;
    if (c >= 'a' && c <= 'z')
        return (char) c;
    if (c >= 'A' && c <= 'Z')
        return (char) (c - 'A' + 'a');
    if (c != 0xC3)
        return 0;
    static const char latin1[] = "aaaaaa ceeeeiiii"      /* U+00C0-U+00DF, and U+00E0 on */
                                 " nooooo ouuuuy  ";
    unsigned char t = (unsigned char) p[1];
    if (t < 0x80 || t > 0xBF)
        return 0;
    char base = latin1[(t - 0x80) & 0x1F];
    *len = 2;
    return base == ' ' ? 0 : base;
}

/* A word, folded into buf; a dot right after it is part of it unless the
   format's next character is a dot. False when it has no letter or is
   longer than any name. */
static bool s_word(df_t *df, const char *next, char buf[DF_WORD_MAX + 1])
{
    size_t n = 0;
    int len;
    char ch;
    while ((ch = s_fold(df->s, &len))) {
        if (n == DF_WORD_MAX)
            return false;
        buf[n++] = ch;
        df->s += len;
    }
    buf[n] = '\0';
    if (n > 0 && *df->s == '.' && *next != '.')
        df->s++;
    return n > 0;
}

/* Index of word in one of the space-separated lists, or -1. */
static int s_lookup(const char *word, const char *const *lists, int count)
{
    size_t n = strlen(word);
    for (int i = 0; i < count; i++)
        for (const char *p = lists[i]; *p; p += strcspn(p, " "), p += *p == ' ') {
            if (strcspn(p, " ") == n && memcmp(p, word, n) == 0)
                return i;
        }
    return -1;
}

static int s_name(df_t *df, const char *next, bool month)
{
    const char *start = df->s;
    char word[DF_WORD_MAX + 1];
    int i = s_word(df, next, word) ? s_lookup(word, month ? s_months : s_days, month ? 12 : 7) : -1;
    if (i < 0) {
        df->s = start;
        return s_fail(df, month ? "month name not recognised" : "day name not recognised");
    }
    if (month)
        df->out->month = i + 1;
    else {
        df->wday = i;
        df->wday_at = s_at(df, start);
    }
    return 0;
}

/* AM or PM: a.m., P.M, am ... */
static int s_meridiem(df_t *df, const char *next)
{
    const char *start = df->s;
    int len;
    char ch = s_fold(df->s, &len);
    if (ch == 'a' || ch == 'p') {
        df->s += len;
        df->s += *df->s == '.';
        if (s_fold(df->s, &len) == 'm') {
            df->s += len;
            df->s += *df->s == '.' && *next != '.';
            df->pm = ch == 'p';
            return 0;
        }
    }
    df->s = start;
    return s_fail(df, "expected AM or PM");
}

static int s_offset(df_t *df)
{
    if (*df->s == 'Z' || *df->s == 'z') {
        df->s++;
        df->out->has_offset = true;
        df->out->offset = 0;
        return 0;
    }
    if (*df->s != '+' && *df->s != '-')
        return s_fail(df, "expected a UTC offset such as +01:00 or Z (%%z)");
    int sign = *df->s++ == '-' ? -1 : 1, h = 0, m = 0;
    if (!s_digit(df->s[0]) || !s_digit(df->s[1]))
        return s_fail(df, "expected the hours of the UTC offset (%%z)");
    if (s_number(df, 2, 0, 23, "the hours of the UTC offset (%z)", &h) < 0)
        return CV_DATEFMT_NOMATCH;
    if (*df->s == ':' || s_digit(*df->s)) {
        df->s += *df->s == ':';
        if (!s_digit(df->s[0]) || !s_digit(df->s[1]))
            return s_fail(df, "expected the minutes of the UTC offset (%%z)");
        if (s_number(df, 2, 0, 59, "the minutes of the UTC offset (%z)", &m) < 0)
            return CV_DATEFMT_NOMATCH;
    }
    df->out->has_offset = true;
    df->out->offset = sign * (h * 3600 + m * 60);
    return 0;
}

/* ---- conversions --------------------------------------------------------- */

static int s_run(df_t *df, const char *format);

/* The numeric conversions: width, range and name. */
typedef struct {
    char conv;
    int width, lo, hi;
    const char *what;
} df_number_t;

static const df_number_t s_numbers[] = {
    { 'Y', 4, 0, 9999, "a year (%Y)" },   { 'y', 2, 0, 99, "a year (%y)" },
    { 'm', 2, 1, 12, "a month (%m)" },    { 'd', 2, 1, 31, "a day (%d)" },
    { 'e', 2, 1, 31, "a day (%e)" },      { 'H', 2, 0, 23, "an hour (%H)" },
    { 'I', 2, 1, 12, "an hour (%I)" },    { 'M', 2, 0, 59, "the minutes (%M)" },
    { 'S', 2, 0, 59, "the seconds (%S)" },
};
#define DF_NUMBERS (sizeof s_numbers / sizeof *s_numbers)

static int s_numeric(df_t *df, const df_number_t *n)
{
    int v = 0;
    if (n->conv == 'e')
        while (*df->s == ' ')
            df->s++;
    if (s_number(df, n->width, n->lo, n->hi, n->what, &v) < 0)
        return CV_DATEFMT_NOMATCH;
    cv_datefmt_civil_t *o = df->out;
    switch (n->conv) {
    case 'Y': o->year = v; break;
    case 'y': o->year = v < 69 ? 2000 + v : 1900 + v; break;
    case 'm': o->month = v; break;
    case 'd': case 'e': o->day = v; break;
    case 'H': o->hour = v; break;
    case 'I': df->hour12 = v; break;
    case 'M': o->min = v; break;
    default: o->sec = v; break;
    }
    return 0;
}

/* One conversion; next is the rest of the format. */
static int s_conv(df_t *df, char conv, const char *next)
{
    for (size_t i = 0; i < DF_NUMBERS; i++)
        if (s_numbers[i].conv == conv)
            return s_numeric(df, &s_numbers[i]);
    switch (conv) {
    case 'F': return s_run(df, "%Y-%m-%d");
    case 'T': return s_run(df, "%H:%M:%S");
    case 'R': return s_run(df, "%H:%M");
    case 'b': case 'B': case 'h': return s_name(df, next, true);
    case 'a': case 'A': return s_name(df, next, false);
    case 'p': return s_meridiem(df, next);
    case 'z': return s_offset(df);
    case '%':
        if (*df->s != '%')
            return s_fail(df, "expected '%%'");
        df->s++;
        return 0;
    default:
        return s_fail(df, "format conversion '%%%c' is not supported", conv ? conv : ' ');
    }
}

/* The format's white space: one or more white space characters; next is
   the rest of the format, named in the reason when it starts with a
   conversion ("expected a space before '%p'"). */
static int s_blank(df_t *df, const char *next)
{
    int n = s_space(df->s);
    if (n == 0 && next[0] == '%' && next[1] && next[1] != '%')
        return s_fail(df, "expected a space before '%%%c'", next[1]);
    if (n == 0)
        return s_fail(df, "expected a space");
    while ((n = s_space(df->s)))
        df->s += n;
    return 0;
}

static int s_run(df_t *df, const char *f)
{
    while (*f) {
        int n = s_space(f);
        bool blank = n > 0 || (f[0] == '%' && (f[1] == 'n' || f[1] == 't'));
        if (blank) {
            while ((n = s_space(f)) || (f[0] == '%' && (f[1] == 'n' || f[1] == 't')))
                f += n ? n : 2;
            if (s_blank(df, f) < 0)
                return CV_DATEFMT_NOMATCH;
        } else if (*f != '%') {
            if (*df->s != *f)
                return (unsigned char) *f < 0x80 ? s_fail(df, "expected '%c'", *f)
                                                 : s_fail(df, "expected the format's text");
            df->s++;
            f++;
        } else {
            char conv = f[1];
            f += conv ? 2 : 1;
            if (s_conv(df, conv, f) < 0)
                return CV_DATEFMT_NOMATCH;
        }
    }
    return 0;
}

/* ---- Excel serial dates -------------------------------------------------- */

/* Days since 1899-12-30, a fraction the time of day. Excel believes 1900
   was a leap year: serial 60 is its 29 February 1900, which never was,
   and serials 1-59 (1 = 1900-01-01) come one day later than the count. */
static int s_excel(df_t *df)
{
    cv_datefmt_civil_t *o = df->out;
    long serial = 0;
    int digits = 0;
    while (s_digit(*df->s) && digits < 8) {
        serial = serial * 10 + (*df->s++ - '0');
        digits++;
    }
    if (digits == 0)
        return s_fail(df, "expected an Excel serial date (days since 1899-12-30)");
    long long num = 0, den = 1;
    if ((*df->s == '.' || *df->s == ',') && s_digit(df->s[1])) {
        df->s++;
        for (; s_digit(*df->s); df->s++)
            if (den < 1000000000000LL) {
                num = num * 10 + (*df->s - '0');
                den *= 10;
            }
    }
    if (*df->s)
        return s_fail(df, "expected an Excel serial date (days since 1899-12-30)");
    long long secs = (num * 86400 + den / 2) / den;     /* rounded to the second */
    if (secs == 86400) {
        serial++;
        secs = 0;
    }
    const char *bad = serial < 1 ? "Excel serial dates start at 1 (1900-01-01)"
                    : serial == 60 ? "Excel serial 60 is 29 February 1900, a day that did not exist"
                                     " (Excel's 1900 leap-year bug)"
                    : serial > DF_EXCEL_MAX ? "the Excel serial date is after year 9999" : NULL;
    if (bad) {
        if (df->why)
            snprintf(df->why, df->whylen, "%s", bad);
        return CV_DATEFMT_NODATE;
    }
    int64_t days = cv_tz_civil_secs(1899, 12, 30, 0, 0, 0) / 86400 + serial + (serial < 60);
    cv_tz_civil_date(days, &o->year, &o->month, &o->day);
    o->hour = (int) (secs / 3600);
    o->min = (int) (secs / 60 % 60);
    o->sec = (int) (secs % 60);
    return 0;
}

/* ---- reading ------------------------------------------------------------- */

int cv_datefmt_read(const char *text, const char *format, cv_datefmt_civil_t *out,
                    char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    df_t df = { .text = text, .s = text, .out = out, .hour12 = -1, .pm = -1, .wday = -1,
                .why = why, .whylen = whylen };
    if (why && whylen)
        why[0] = '\0';
    if (strcmp(format, CV_DATEFMT_EXCEL) == 0) {
        int rc = s_excel(&df);
        return rc < 0 ? rc : cv_datefmt_valid(out, why, whylen);
    }
    if (s_run(&df, format) < 0)
        return CV_DATEFMT_NOMATCH;
    if (*df.s)
        return s_fail(&df, "the text goes on after the format ends");
    if (df.hour12 >= 0)
        out->hour = df.hour12 % 12 + (df.pm == 1 ? 12 : 0);
    int rc = cv_datefmt_valid(out, why, whylen);
    if (rc == 0 && df.wday >= 0 && df.wday != s_weekday(out->year, out->month, out->day)) {
        if (why)
            snprintf(why, whylen, "the day name at character %d does not match the date", df.wday_at);
        return CV_DATEFMT_NODATE;
    }
    return rc;
}

/* ---- checking a format --------------------------------------------------- */

static bool s_letter(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* True when the format writes AM or PM as text (a word "AM", "pm",
   "a.m." outside conversions): such a format reads every row as that
   half of the day, and refuses the others. */
static bool s_literal_meridiem(const char *f)
{
    bool after_letter = false;
    for (; *f; f++) {
        if (*f == '%') {
            f += f[1] != '\0';
            after_letter = false;
            continue;
        }
        char ch = (char) (*f | 0x20);
        const char *m = f + 1 + (f[1] == '.');
        if ((ch == 'a' || ch == 'p') && !after_letter && (*m | 0x20) == 'm'
            && !s_letter(m[1]))
            return true;
        after_letter = s_letter(*f);
    }
    return false;
}

int cv_datefmt_check(const char *format, char *why, size_t whylen)
{
    if (strcmp(format, CV_DATEFMT_EXCEL) == 0)
        return 0;
    if (strlen(format) > CV_DATEFMT_MAX) {
        snprintf(why, whylen, "format is longer than %d characters", CV_DATEFMT_MAX);
        return -1;
    }
    bool year = false, month = false, day = false, h24 = false, h12 = false, ampm = false;
    for (const char *p = format; *p; p++) {
        if (*p != '%')
            continue;
        char conv = *++p;
        if (conv == '\0' || !strchr("YymdeHIMSpzFTRbBhaAnt%", conv)) {
            snprintf(why, whylen, "format conversion '%%%c' is not supported (use %%Y %%y %%m %%d %%e %%H "
                     "%%I %%M %%S %%p %%z %%F %%T %%R %%b %%B %%a %%A, or the format 'excel')",
                     conv ? conv : ' ');
            return -1;
        }
        year |= conv == 'Y' || conv == 'y' || conv == 'F';
        month |= conv == 'm' || conv == 'F' || conv == 'b' || conv == 'B' || conv == 'h';
        day |= conv == 'd' || conv == 'e' || conv == 'F';
        h24 |= conv == 'H' || conv == 'T' || conv == 'R';
        h12 |= conv == 'I';
        ampm |= conv == 'p';
    }
    const char *bad = !year || !month || !day ? "format must read a year, a month and a day"
                    : ampm && !h12 ? "'%p' (AM/PM) needs a 12-hour clock hour '%I'"
                    : h12 && !ampm ? "'%I' (12-hour clock) needs '%p' (AM/PM)"
                    : h12 && h24 ? "format reads the hour twice ('%I' and '%H', '%T' or '%R')"
                    : s_literal_meridiem(format) ? "format writes AM or PM as text: read it with '%p'"
                                                   " and the hour with '%I'" : NULL;
    if (bad) {
        snprintf(why, whylen, "%s", bad);
        return -1;
    }
    return 0;
}
