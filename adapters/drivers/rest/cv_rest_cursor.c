/*  driver_rest_cursor — since-cursor values and the saved position.

    A since-cursor is the largest value of one record field (`cursor_field`)
    among the records submitted so far. Sources write it either as an
    integer (a change number, epoch seconds) or as an ISO 8601 date-time,
    with an offset ("2024-03-31T03:05:00+02:00") or without one (the
    software's local time). Comparing texts would break when the offset
    changes with summer time, so values are parsed: date-times become
    seconds (UTC when an offset is written; naive wall-clock otherwise,
    compared among themselves) plus nanoseconds.

    The since value sent back is the cursor minus the overlap, written the
    way the source writes it (same separator, same offset), so the API
    compares like with like. The saved position is a small JSON object. */
#include "cv_alloc.h"
#include "cv_rest.h"


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void s_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int s_days_in_month(int64_t y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly n digits; -1 when they are not all there. */
static int s_digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

/* The offset part: Z, +HH, +HHMM, +HH:MM (or -). */
static bool s_offset(const char *p, cv_rest_cursor_t *c)
{
    if (!*p)
        return true;
    if (strlen(p) >= sizeof c->suffix)
        return false;
    snprintf(c->suffix, sizeof c->suffix, "%s", p);
    c->has_offset = true;
    if (*p == 'Z' || *p == 'z')
        return p[1] == '\0';
    int sign = *p == '+' ? 1 : *p == '-' ? -1 : 0;
    if (!sign)
        return false;
    p++;
    int hh = s_digits(&p, 2), mm = 0;
    if (hh < 0 || hh > 23)
        return false;
    if (*p == ':')
        p++;
    if (*p && ((mm = s_digits(&p, 2)) < 0 || mm > 59))
        return false;
    c->offset = sign * (hh * 3600 + mm * 60);
    return *p == '\0';
}

static bool s_parse_datetime(const char *text, cv_rest_cursor_t *c)
{
    const char *p = text;
    int y = s_digits(&p, 4), mo, d;
    if (y < 0 || *p++ != '-' || (mo = s_digits(&p, 2)) < 1 || mo > 12 || *p++ != '-'
        || (d = s_digits(&p, 2)) < 1 || d > s_days_in_month(y, mo))
        return false;
    int h = 0, mi = 0, s = 0;
    c->date_only = *p == '\0';
    if (!c->date_only) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return false;
        c->sep = *p++;
        if ((h = s_digits(&p, 2)) < 0 || h > 23 || *p++ != ':' || (mi = s_digits(&p, 2)) < 0 || mi > 59)
            return false;
        if (*p == ':' && (p++, (s = s_digits(&p, 2)) < 0 || s > 60))
            return false;
        if (*p == '.' || *p == ',') {
            p++;
            int n = 0;
            int64_t scale = 100000000;
            while (*p >= '0' && *p <= '9') {
                c->nanos += (int32_t) ((*p - '0') * scale);
                scale /= 10;
                p++;
                n++;
            }
            if (n == 0)
                return false;
        }
        if (!s_offset(p, c))
            return false;
    }
    c->number = s_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - c->offset;
    return true;
}

bool cv_rest_cursor_from_text(const char *text, bool is_int, cv_rest_cursor_t *out)
{
    memset(out, 0, sizeof *out);
    if (strlen(text) >= sizeof out->text)
        return false;
    snprintf(out->text, sizeof out->text, "%s", text);
    if (is_int) {
        char *end = NULL;
        out->number = strtoll(text, &end, 10);
        out->is_int = true;
        out->valid = end != text && *end == '\0';
    } else {
        out->valid = s_parse_datetime(text, out);
    }
    if (!out->valid)
        memset(out, 0, sizeof *out);
    return out->valid;
}

bool cv_rest_cursor_from_json(const json_t *value, cv_rest_cursor_t *out)
{
    if (json_is_integer(value)) {
        char text[32];
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return cv_rest_cursor_from_text(text, true, out);
    }
    if (json_is_string(value))
        return cv_rest_cursor_from_text(json_string_value(value), false, out);
    memset(out, 0, sizeof *out);
    return false;
}

int cv_rest_cursor_cmp(const cv_rest_cursor_t *a, const cv_rest_cursor_t *b)
{
    if (!a->valid || !b->valid)
        return (int) a->valid - (int) b->valid;
    if (a->number != b->number)
        return a->number < b->number ? -1 : 1;
    return (a->nanos > b->nanos) - (a->nanos < b->nanos);
}

void cv_rest_cursor_since(const cv_rest_cursor_t *c, int64_t overlap, char *out, size_t outlen)
{
    if (!c->valid) {
        snprintf(out, outlen, "%s", "");
        return;
    }
    if (overlap == 0) {
        snprintf(out, outlen, "%s", c->text);
        return;
    }
    if (c->is_int) {
        /* a record's integer may be close to INT64_MIN: the lowest then, not an overflow
           (overlap is 0 to 31 days, never negative) */
        int64_t since = c->number < INT64_MIN + overlap ? INT64_MIN : c->number - overlap;
        snprintf(out, outlen, "%lld", (long long) since);
        return;
    }
    int64_t local = c->number - overlap + c->offset;
    int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    int64_t secs = local - days * 86400;
    int64_t y;
    int m, d;
    s_civil_from_days(days, &y, &m, &d);
    if (c->date_only)
        snprintf(out, outlen, "%04lld-%02d-%02d", (long long) y, m, d);
    else
        snprintf(out, outlen, "%04lld-%02d-%02d%c%02d:%02d:%02d%s", (long long) y, m, d, c->sep,
                 (int) (secs / 3600), (int) (secs / 60 % 60), (int) (secs % 60), c->suffix);
}

static char *s_dump(json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return text;
}

char *cv_rest_cursor_position_token(const char *token)
{
    return s_dump(json_pack("{s:s}", "token", token));
}

char *cv_rest_cursor_position_since(const cv_rest_cursor_t *c)
{
    if (c->is_int)
        return s_dump(json_pack("{s:I}", "since", (json_int_t) c->number));
    return s_dump(json_pack("{s:s}", "since", c->text));
}

int cv_rest_cursor_position_parse(const char *text, cv_rest_mode_t mode, char **token, cv_rest_cursor_t *cursor)
{
    json_t *root = json_loads(text, 0, NULL);
    int rc = -1;
    json_t *v;
    if (mode == CV_REST_TOKEN && (v = json_object_get(root, "token")) && json_is_string(v)) {
        *token = cv_zstrdup(json_string_value(v));
        rc = *token ? 0 : -1;
    } else if (mode == CV_REST_SINCE && (v = json_object_get(root, "since"))) {
        rc = cv_rest_cursor_from_json(v, cursor) ? 0 : -1;
    }
    json_decref(root);
    return rc;
}
