/*  model — see cv_model.h.

    Validation is table driven: each level of the event (the event, its
    citizen, the citizen's address) is a list of fields with a kind (what
    values it accepts) and whether it is required. One pass over an
    object's keys finds each key's entry and checks its value; a second
    look at the table catches the required fields that were not seen.
    A null value is the same as an absent one. */
#include "cv_model.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const char *const cv_model_statuses[] = {
    "received", "acknowledged", "in_progress", "waiting_citizen",
    "resolved", "rejected", "closed", "cancelled", NULL
};

const char *const cv_model_channels[] = {
    "courrier", "telephone", "guichet", "email", "web", "api", "interne", "autre", "inconnu", NULL
};

const char *const cv_model_outcomes[] = {
    "done", "duplicate", "transferred", "refused", "withdrawn", "no_action", "other", NULL
};

const char *const cv_model_required[] = {
    "schema_version", "source", "event_id", "source_record_id", "service",
    "status", "occurred_at", "channel", "category", NULL
};

typedef enum {
    F_VERSION, F_SOURCE,
    F_ID,                          /* identifier: no control characters */
    F_LABEL,                       /* short label: no control characters */
    F_TEXT,                        /* personal text, up to LABEL_MAX bytes */
    F_SUMMARY,                     /* free text, up to SUMMARY_MAX bytes */
    F_STATUS, F_CHANNEL, F_OUTCOME, F_UTC, F_DATE,
    F_LAT, F_LON,                  /* decimal degrees (JSON numbers) */
    F_CITIZEN, F_ADDRESS, F_LOCATION, F_OUTCOME_OBJ, F_EXTRA
} field_kind_t;

typedef struct {
    const char *name;
    field_kind_t kind;
    bool required;
} field_t;

static const field_t s_event[] = {
    { "schema_version", F_VERSION, true },
    { "source", F_SOURCE, true },
    { "event_id", F_ID, true },
    { "kind", F_LABEL, false },
    { "source_record_id", F_ID, true },
    { "request_ref", F_ID, false },
    { "service", F_LABEL, true },
    { "category", F_LABEL, true },
    { "channel", F_CHANNEL, true },
    { "status", F_STATUS, true },
    { "source_status", F_LABEL, false },
    { "source_channel", F_LABEL, false },
    { "occurred_at", F_UTC, true },
    { "due_at", F_UTC, false },
    { "summary", F_SUMMARY, false },
    { "requested_at", F_UTC, false },
    { "location", F_LOCATION, false },
    { "outcome", F_OUTCOME_OBJ, false },
    { "citizen", F_CITIZEN, false },
    { "extra", F_EXTRA, false },
    { NULL, 0, false }
};

static const field_t s_citizen[] = {
    { "source_citizen_id", F_ID, false },
    { "family_name", F_TEXT, false },
    { "birth_name", F_TEXT, false },
    { "given_names", F_TEXT, false },
    { "birth_date", F_DATE, false },
    { "email", F_TEXT, false },
    { "phone", F_TEXT, false },
    { "address", F_ADDRESS, false },
    { NULL, 0, false }
};

static const field_t s_address[] = {
    { "line1", F_TEXT, false },
    { "line2", F_TEXT, false },
    { "postcode", F_TEXT, false },
    { "city", F_TEXT, false },
    { "country", F_TEXT, false },
    { NULL, 0, false }
};

static const field_t s_location[] = {
    { "address", F_TEXT, false },
    { "postcode", F_TEXT, false },
    { "city", F_TEXT, false },
    { "lat", F_LAT, false },
    { "lon", F_LON, false },
    { NULL, 0, false }
};

static const field_t s_outcome[] = {
    { "code", F_OUTCOME, true },
    { "reason", F_LABEL, false },
    { "related_ref", F_ID, false },
    { NULL, 0, false }
};

static bool s_in(const char *const *list, const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

bool cv_model_status_valid(const char *status)
{
    return s_in(cv_model_statuses, status);
}

bool cv_model_channel_valid(const char *channel)
{
    return s_in(cv_model_channels, channel);
}

bool cv_model_outcome_valid(const char *outcome)
{
    return s_in(cv_model_outcomes, outcome);
}

/* ---- dates --------------------------------------------------------------- */

static int s_num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool s_day_ok(const char *s)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y = s_num(s, 4), m = s_num(s + 5, 2), d = s_num(s + 8, 2);
    if (s[4] != '-' || s[7] != '-' || y < CV_MODEL_YEAR_MIN || y > CV_MODEL_YEAR_MAX || m < 1 || m > 12)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d >= 1 && d <= days[m - 1] + (m == 2 && leap);
}

bool cv_model_date_valid(const char *text)
{
    return text && strlen(text) == 10 && s_day_ok(text);
}

bool cv_model_utc_valid(const char *text)
{
    if (!text || strlen(text) != 20 || !s_day_ok(text))
        return false;
    int h = s_num(text + 11, 2), m = s_num(text + 14, 2), s = s_num(text + 17, 2);
    return text[10] == 'T' && text[13] == ':' && text[16] == ':' && text[19] == 'Z'
        && h >= 0 && h <= 23 && m >= 0 && m <= 59 && s >= 0 && s <= 59;
}

/* ---- validation ---------------------------------------------------------- */

static int s_fail(char *detail, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(char *detail, size_t len, const char *fmt, ...)
{
    if (detail && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool s_source_ok(const char *s, size_t n)
{
    if (n < 1 || n > CV_MODEL_SOURCE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

static int s_string(const json_t *v, const field_t *f, const char *prefix, char *detail, size_t len)
{
    if (!json_is_string(v))
        return s_fail(detail, len, "field '%s%s' must be a string", prefix, f->name);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    size_t max = f->kind == F_ID ? CV_MODEL_ID_MAX
               : f->kind == F_SUMMARY ? CV_MODEL_SUMMARY_MAX : CV_MODEL_LABEL_MAX;
    if (n == 0)
        return s_fail(detail, len, "field '%s%s' is empty (absent values are null)", prefix, f->name);
    if (n > max)
        return s_fail(detail, len, "field '%s%s' is longer than %zu bytes", prefix, f->name, max);
    if (memchr(s, '\0', n))
        return s_fail(detail, len, "field '%s%s' contains a NUL character", prefix, f->name);
    if (f->kind == F_ID || f->kind == F_LABEL)
        for (size_t i = 0; i < n; i++)
            if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                return s_fail(detail, len, "field '%s%s' contains a control character", prefix, f->name);
    bool ok = true;
    const char *what = NULL;
    switch (f->kind) {
    case F_SOURCE:  ok = s_source_ok(s, n); what = "a source name (a-z 0-9 _ -, 1-63)"; break;
    case F_STATUS:  ok = cv_model_status_valid(s); what = "a canonical status"; break;
    case F_CHANNEL: ok = cv_model_channel_valid(s); what = "a canonical channel"; break;
    case F_OUTCOME: ok = cv_model_outcome_valid(s); what = "a canonical outcome"; break;
    case F_UTC:     ok = cv_model_utc_valid(s); what = "a UTC time YYYY-MM-DDTHH:MM:SSZ"; break;
    case F_DATE:    ok = cv_model_date_valid(s); what = "a date YYYY-MM-DD"; break;
    default:        break;
    }
    if (!ok)
        return s_fail(detail, len, "field '%s%s' is not %s", prefix, f->name, what);
    return 0;
}

/* Extra holds the source's own fields: any JSON, within size bounds, and
   no NUL in strings (PostgreSQL text and jsonb refuse it). */
static int s_extra(const json_t *v, int depth, size_t *nodes)
{
    if (++*nodes > CV_MODEL_EXTRA_MAX_NODES || depth > CV_MODEL_EXTRA_MAX_DEPTH)
        return -1;
    if (json_is_string(v))
        return memchr(json_string_value(v), '\0', json_string_length(v)) ? -1 : 0;
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *) v, key, child)
            if (s_extra(child, depth + 1, nodes) < 0)
                return -1;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
            if (s_extra(child, depth + 1, nodes) < 0)
                return -1;
    }
    return 0;
}

static int s_object(const json_t *obj, const field_t *fields, const char *prefix,
                    char *detail, size_t len);

static int s_value(const json_t *v, const field_t *f, const char *prefix, char *detail, size_t len)
{
    switch (f->kind) {
    case F_VERSION:                /* 1 is 2 without its optional new fields */
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > CV_MODEL_SCHEMA_VERSION)
            return s_fail(detail, len, "field 'schema_version' must be 1 or %d", CV_MODEL_SCHEMA_VERSION);
        return 0;
    case F_LAT:
    case F_LON: {
        double max = f->kind == F_LAT ? 90 : 180, d = json_number_value(v);
        if (!json_is_number(v) || !(d >= -max && d <= max))
            return s_fail(detail, len, "field '%s%s' must be a number of degrees from %g to %g", prefix, f->name,
                          -max, max);
        return 0;
    }
    case F_LOCATION:
        return s_object(v, s_location, "location.", detail, len);
    case F_OUTCOME_OBJ:
        return s_object(v, s_outcome, "outcome.", detail, len);
    case F_CITIZEN:
        return s_object(v, s_citizen, "citizen.", detail, len);
    case F_ADDRESS:
        return s_object(v, s_address, "citizen.address.", detail, len);
    case F_EXTRA: {
        size_t nodes = 0;
        if (!json_is_object(v))
            return s_fail(detail, len, "field 'extra' must be an object");
        if (s_extra(v, 0, &nodes) < 0)
            return s_fail(detail, len, "field 'extra' is too large (over %d values or %d levels) "
                          "or holds a NUL character", CV_MODEL_EXTRA_MAX_NODES, CV_MODEL_EXTRA_MAX_DEPTH);
        return 0;
    }
    default:
        return s_string(v, f, prefix, detail, len);
    }
}

static int s_object(const json_t *obj, const field_t *fields, const char *prefix,
                    char *detail, size_t len)
{
    if (!json_is_object(obj))
        return *prefix ? s_fail(detail, len, "field '%.*s' must be an object", (int) strlen(prefix) - 1, prefix)
                       : s_fail(detail, len, "the event must be a JSON object");
    uint32_t seen = 0;
    const char *key;
    json_t *value;
    size_t next = 0;               /* events from the mapping come in table order */
    json_object_foreach((json_t *) obj, key, value) {
        size_t i = fields[next].name && strcmp(fields[next].name, key) == 0 ? next : 0;
        while (fields[i].name && strcmp(fields[i].name, key) != 0)
            i++;
        next = fields[i].name ? i + 1 : 0;
        if (!fields[i].name)
            return s_fail(detail, len, "unknown field '%s%.64s'", prefix, key);
        seen |= 1u << i;
        if (!json_is_null(value) && s_value(value, &fields[i], prefix, detail, len) < 0)
            return -1;
        if (json_is_null(value) && fields[i].required)
            return s_fail(detail, len, "missing required field '%s%s'", prefix, fields[i].name);
    }
    for (size_t i = 0; fields[i].name; i++)
        if (fields[i].required && !(seen & (1u << i)))
            return s_fail(detail, len, "missing required field '%s%s'", prefix, fields[i].name);
    return 0;
}

int cv_model_validate(const json_t *event, char *detail, size_t len)
{
    if (detail && len)
        detail[0] = '\0';
    return s_object(event, s_event, "", detail, len);
}
