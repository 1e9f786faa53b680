/*  mapping — see cv_mapping.h; the language is documented in docs/mapping.md.

    Load compiles the YAML file into plain structs, once: each rule holds
    one field spec per canonical field (indexed by the target table
    below), each path is pre-split into segments with numeric ones
    pre-parsed, value maps are sorted for binary search, and `when` values
    are one sorted table pointing at rules. Strings stay in the YAML tree,
    which the mapping keeps.

    Apply then runs, per record: pick the rule (a binary search on the
    kind_from value), evaluate each field spec through the same pipeline
    - read the raw value (path, join, const or record hash), trim it,
    change its case, look it up in the map, fall back to the default,
    convert it to its type (enum check, date to UTC, after adding the
    `add` duration of a computed date-time) - and assemble the
    event in the model's field order. A value is a (pointer, length) view
    into the record, the YAML tree or a per-call scratch buffer, so the only
    allocations are the event's own JSON nodes. The event is validated by
    cv_model_validate last. Details name fields and paths, never values.

    A loaded mapping is never written again: apply keeps its state on the
    caller's stack and may run in several threads at once. */
#include "cv_mapping.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_hash.h"
#include "cv_mapping_int.h"
#include "cv_text.h"

/* ---- applying ------------------------------------------------------------ */

typedef struct {
    const cv_mapping_t *self;
    const json_t *record;
    const rule_t *rule;
    const char *hash;              /* record hash, computed on first use */
    char hash_buf[CV_HASH_HEX_LEN + 1];
    const path_t *missing;         /* the join part found missing */
    char origin[MAP_PATH_MAX + 32];
    char *reason, *detail;
    size_t reason_len, detail_len;
    char num[MAP_NUM];
    char scratch[MAP_SCRATCH];
} ctx_t;

static int s_fail(ctx_t *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(ctx_t *c, const char *reason, const char *fmt, ...)
{
    if (c->reason && c->reason_len)
        snprintf(c->reason, c->reason_len, "%s", reason);
    if (c->detail && c->detail_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->detail, c->detail_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Where a spec reads from, for details ("path 'x'", "const"...); only
   written on the failure path. */
static const char *s_origin(ctx_t *c, const spec_t *sp)
{
    size_t len = sizeof c->origin;
    if (sp->src == SRC_PATH)
        snprintf(c->origin, len, "path '%s'", sp->paths[0].text);
    else if (sp->src == SRC_JOIN && c->missing)
        snprintf(c->origin, len, "join part '%s'", c->missing->text);
    else if (sp->src == SRC_JOIN)
        snprintf(c->origin, len, "join starting at '%s'", sp->paths[0].text);
    else
        snprintf(c->origin, len, "%s", sp->src == SRC_CONST ? "const" : "record hash");
    return c->origin;
}

static const json_t *s_lookup(const json_t *v, const path_t *path)
{
    for (int i = 0; v && i < path->nseg; i++) {
        if (json_is_object(v))
            v = json_object_get(v, path->seg[i]);
        else if (json_is_array(v) && path->index[i] >= 0)
            v = json_array_get(v, (size_t) path->index[i]);
        else
            return NULL;
    }
    return v;
}

/* A JSON value as trimmed text: 1 present, 0 missing (absent, null or
   blank), -1 not a single value. Numbers are written into num. */
static int s_text(const json_t *v, view_t *out, char num[MAP_NUM])
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v))
        *out = (view_t) { json_string_value(v), json_string_length(v) };
    else if (json_is_integer(v))
        *out = (view_t) { num, (size_t) snprintf(num, MAP_NUM, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) };
    else if (json_is_real(v)) {
        double d = json_real_value(v);
        int prec = 15;             /* the shortest text that reads back as d */
        do
            out->n = (size_t) snprintf(num, MAP_NUM, "%.*g", prec, d);
        while (strtod(num, NULL) != d && ++prec <= 17);
        out->p = num;
    } else if (json_is_boolean(v))
        *out = json_is_true(v) ? (view_t) { "true", 4 } : (view_t) { "false", 5 };
    else
        return -1;
    s_trim(out);
    return out->n > 0;
}

static int s_raw(ctx_t *c, const spec_t *sp, const char *name, view_t *out)
{
    if (sp->src == SRC_CONST) {
        *out = (view_t) { sp->constant, strlen(sp->constant) };
        return 1;
    }
    if (sp->src == SRC_HASH) {
        if (!c->hash) {
            if (cv_hash_json(c->record, c->hash_buf) < 0)
                return s_fail(c, "bad_type", "%s: the record cannot be serialised to hash it", name);
            c->hash = c->hash_buf;
        }
        *out = (view_t) { c->hash, CV_HASH_HEX_LEN };
        return 1;
    }
    if (sp->src == SRC_PATH) {
        int rc = s_text(s_lookup(c->record, &sp->paths[0]), out, c->num);
        if (rc < 0)
            return s_fail(c, "bad_type", "%s: path '%s' holds an object or a list, not a value",
                          name, sp->paths[0].text);
        return rc;
    }
    size_t len = 0;                /* join */
    for (size_t i = 0; i < sp->npaths; i++) {
        view_t part;
        char num[MAP_NUM];
        int rc = s_text(s_lookup(c->record, &sp->paths[i]), &part, num);
        if (rc < 0)
            return s_fail(c, "bad_type", "%s: join part '%s' holds an object or a list, not a value",
                          name, sp->paths[i].text);
        if (rc == 0) {
            c->missing = &sp->paths[i];
            return 0;
        }
        if (len + part.n + 1 > sizeof c->scratch)
            return s_fail(c, "invalid_event", "%s: the joined value is longer than %zu bytes",
                          name, sizeof c->scratch - 1);
        if (i > 0)
            c->scratch[len++] = '|';
        memcpy(c->scratch + len, part.p, part.n);
        len += part.n;
    }
    *out = (view_t) { c->scratch, len };
    return 1;
}

static const char *s_map_lookup(const spec_t *sp, view_t v)
{
    size_t lo = 0, hi = sp->nmap;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = s_cmp(sp->map[mid].from, sp->map[mid].from_len, v.p, v.n);
        if (cmp == 0)
            return sp->map[mid].to;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Case, then map (else default, else unmapped_value), on a value read
   for spec sp; name and what say which, for details. */
static int s_case_map(ctx_t *c, const spec_t *sp, const char *name, const char *what, view_t *v)
{
    if (sp->casing) {
        if (v->p != c->scratch) {
            if (v->n > sizeof c->scratch)
                return s_fail(c, "invalid_event", "%s: the value at %s%s is longer than %zu bytes",
                              name, s_origin(c, sp), what, sizeof c->scratch);
            memcpy(c->scratch, v->p, v->n);
            v->p = c->scratch;
        }
        s_fold(c->scratch, v->n, sp->casing == 'U');
    }
    if (sp->nmap) {
        const char *to = s_map_lookup(sp, *v);
        if (!to && !sp->dflt)
            return s_fail(c, "unmapped_value", "%s: the value at %s%s has no entry in 'map' and there is "
                          "no 'default'", name, s_origin(c, sp), what);
        *v = (view_t) { to ? to : sp->dflt, strlen(to ? to : sp->dflt) };
    }
    return 0;
}

/* The duration of a date-time's `add`: 1 with *count and *unit, 0 when it
   is missing (so is the date), -1 on failure. */
static int s_amount(ctx_t *c, const spec_t *add, const char *name, long *count, char *unit)
{
    view_t v;
    c->missing = NULL;
    int rc = s_raw(c, add, name, &v);
    if (rc == 1 && s_case_map(c, add, name, " ('add')", &v) < 0)
        return -1;
    if (rc == 0 && add->dflt)
        v = (view_t) { add->dflt, strlen(add->dflt) }, rc = 1;
    if (rc == 1 && cv_mapping__duration(v.p, v.n, add->unit, count, unit) < 0)
        return s_fail(c, "bad_date", "%s: the value at %s ('add') is not a duration such as '2 months'%s",
                      name, s_origin(c, add), add->unit ? " or a number" : "");
    return rc;
}

static int s_month_days(int year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* Moves a civil date by count units, on the calendar: months and years
   keep the day of the month, or take the month's last day when it has no
   such day (31 January + 1 month = 28 or 29 February), as French legal
   time limits are counted; the time of day and offset stay. */
static void s_shift(cv_tz_civil_t *cv, long count, char unit)
{
    if (unit == 'y' || unit == 'm') {
        long months = (long) cv->year * 12 + (cv->month - 1) + count * (unit == 'y' ? 12 : 1);
        cv->year = (int) (months / 12);
        cv->month = (int) (months % 12) + 1;
        if (cv->day > s_month_days(cv->year, cv->month))
            cv->day = s_month_days(cv->year, cv->month);
        return;
    }
    int64_t days = cv_tz_civil_secs(cv->year, cv->month, cv->day, 0, 0, 0) / 86400
                   + count * (unit == 'w' ? 7 : 1);
    char utc[CV_TZ_UTC_LEN + 1];
    cv_tz_format_utc(days * 86400, utc);
    cv->year = atoi(utc);
    cv->month = atoi(utc + 5);
    cv->day = atoi(utc + 8);
}

static json_t *s_date(ctx_t *c, int t, const spec_t *sp, view_t v, const long *count, char unit)
{
    const char *name = cv_mapping__targets[t].name;
    char text[MAP_DATE_MAX];
    cv_tz_civil_t civil;
    if (v.n >= sizeof text) {
        s_fail(c, "bad_date", "%s: the value at %s is too long to be a date", name, s_origin(c, sp));
        return NULL;
    }
    memcpy(text, v.p, v.n);
    text[v.n] = '\0';
    char why[160];
    int rc = cv_tz_parse_why(text, sp->format, &civil, why, sizeof why);
    if (rc < 0) {                  /* why names the part and position, never the value */
        s_fail(c, "bad_date", "%s: the value at %s %s %s%s%s: %s", name, s_origin(c, sp),
               rc == CV_DATEFMT_NODATE ? "is not a real date in" : "does not match",
               sp->format ? "format '" : "ISO 8601 form", sp->format ? sp->format : "",
               sp->format ? "'" : "", why);
        return NULL;
    }
    if (count && civil.year >= CV_MODEL_YEAR_MIN && civil.year <= CV_MODEL_YEAR_MAX)
        s_shift(&civil, *count, unit);
    if (civil.year < CV_MODEL_YEAR_MIN || civil.year > CV_MODEL_YEAR_MAX) {
        s_fail(c, "bad_date", "%s: the value at %s is outside years %d-%d", name, s_origin(c, sp),
               CV_MODEL_YEAR_MIN, CV_MODEL_YEAR_MAX);
        return NULL;
    }
    char utc[CV_TZ_UTC_LEN + 1];
    if (cv_mapping__targets[t].type == T_DATE) {     /* the day as written: "YYYY-MM-DD" */
        cv_tz_format_utc(cv_tz_civil_secs(civil.year, civil.month, civil.day, 0, 0, 0), utc);
        return json_stringn_nocheck(utc, 10);
    }
    cv_tz_format_utc(cv_tz_civil_to_utc(sp->tz, &civil), utc);
    return json_stringn_nocheck(utc, CV_TZ_UTC_LEN);
}

/* Decimal degrees, as exports write them: "48.8566", "48,8566" (a French
   decimal comma), " -2.35 ", or a JSON number (s_text wrote it as text).
   Anything else, or out of range (latitude 90, longitude 180), fails
   bad_type (not a number), naming the range: a swapped pair of columns
   shows at once. */
static json_t *s_degrees(ctx_t *c, int t, const spec_t *sp, view_t v)
{
    const char *name = cv_mapping__targets[t].name;
    char text[MAP_NUM];
    size_t n = 0;
    while (v.n && (*v.p == ' ' || *v.p == '\t'))
        v.p++, v.n--;
    while (v.n && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t'))
        v.n--;
    bool digit = false, dot = false;
    for (size_t i = 0; i < v.n; i++) {
        char ch = v.p[i];
        if (n + 1 >= sizeof text)
            break;
        if (ch >= '0' && ch <= '9')
            digit = true;
        else if ((ch == '.' || ch == ',') && !dot)
            dot = true, ch = '.';
        else if (!((ch == '-' || ch == '+') && i == 0)) {
            n = 0;
            break;
        }
        text[n++] = ch;
    }
    text[n] = '\0';
    double max = cv_mapping__targets[t].type == T_LAT ? 90 : 180;
    char *end = NULL;
    double d = n && digit && n == v.n ? strtod(text, &end) : 0;
    if (!n || !digit || n != v.n || !end || *end || !(d >= -max && d <= max)) {
        s_fail(c, "bad_type", "%s: the value at %s is not a number of degrees from %g to %g", name,
               s_origin(c, sp), -max, max);
        return NULL;
    }
    return json_real(d);
}

/* A date-time with `add`: the date plus the duration, or missing (null,
   or missing_field when required) when the duration is. */
static int s_field_add(ctx_t *c, int t, const spec_t *sp, view_t v, json_t **out)
{
    char text[MAP_DATE_MAX];       /* v may live in scratch, which the duration may use */
    if (v.n < sizeof text) {
        memcpy(text, v.p, v.n);
        v.p = text;
    }
    long count;
    char unit;
    int rc = s_amount(c, sp->add, cv_mapping__targets[t].name, &count, &unit);
    if (rc < 0)
        return -1;
    if (rc == 0 && sp->required)
        return s_fail(c, "missing_field", "%s: %s ('add') is missing", cv_mapping__targets[t].name, s_origin(c, sp->add));
    if (rc == 0)
        return 0;
    return (*out = s_date(c, t, sp, v, &count, unit)) ? 0 : -1;
}

/* One field: *out gets its JSON value (NULL when it has none); *raw, for
   status and channel, the value as the source wrote it; *read is true
   when the value came from the record (not a const, default or hash). */
static int s_field(ctx_t *c, int t, const spec_t *sp, json_t **out, json_t **raw, bool *read)
{
    const target_t *tg = &cv_mapping__targets[t];
    view_t v;
    c->missing = NULL;
    int rc = s_raw(c, sp, tg->name, &v);
    if (rc < 0)
        return -1;
    *read = rc == 1 && (sp->src == SRC_PATH || sp->src == SRC_JOIN);
    if (*read && raw) {
        view_t r = v;
        s_cut(&r, CV_MODEL_LABEL_MAX);
        *raw = json_stringn_nocheck(r.p, r.n);
    }
    if (rc == 1 && tg->type == T_SUMMARY)
        s_cut(&v, CV_MODEL_SUMMARY_MAX);
    if (rc == 1 && s_case_map(c, sp, tg->name, "", &v) < 0)
        return -1;
    if (rc == 0 && sp->dflt)
        v = (view_t) { sp->dflt, strlen(sp->dflt) }, rc = 1;
    if (rc == 0 && sp->required)
        return s_fail(c, "missing_field", "%s: %s is missing", tg->name, s_origin(c, sp));
    if (rc == 0)
        return 0;
    if ((tg->type == T_STATUS && !s_in_list(cv_model_statuses, v))
        || (tg->type == T_CHANNEL && !s_in_list(cv_model_channels, v))
        || (tg->type == T_OUTCOME && !s_in_list(cv_model_outcomes, v)))
        return s_fail(c, "unmapped_value", "%s: the value at %s is not a canonical %s; give 'map' an "
                      "entry for it", tg->name, s_origin(c, sp), tg->name);
    if (tg->type == T_UTC && sp->add)
        return s_field_add(c, t, sp, v, out);
    if (tg->type == T_UTC || tg->type == T_DATE)
        return (*out = s_date(c, t, sp, v, NULL, 0)) ? 0 : -1;
    if (tg->type == T_LAT || tg->type == T_LON)
        return (*out = s_degrees(c, t, sp, v)) ? 0 : -1;
    /* no second UTF-8 check: the text comes from jansson or libyaml strings
       (both validated), cut and trimmed on character boundaries */
    *out = json_stringn_nocheck(v.p, v.n);
    return 0;
}

static const rule_t *s_select(ctx_t *c)
{
    const cv_mapping_t *self = c->self;
    if (!self->has_kind_from)
        return &self->rules[0];
    view_t v;
    int rc = s_text(s_lookup(c->record, &self->kind_from), &v, c->num);
    if (rc < 0) {
        s_fail(c, "bad_type", "kind_from: path '%s' holds an object or a list, not a value", self->kind_from.text);
        return NULL;
    }
    size_t lo = 0, hi = rc ? self->nwhen : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = s_cmp(self->when[mid].value, self->when[mid].len, v.p, v.n);
        if (cmp == 0)
            return &self->rules[self->when[mid].rule];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (self->fallback >= 0)
        return &self->rules[self->fallback];
    s_fail(c, "no_rule", rc ? "kind_from: the value at path '%s' selects no rule and there is no fallback rule"
                            : "kind_from: path '%s' is missing and there is no fallback rule",
           self->kind_from.text);
    return NULL;
}

static bool s_is_read(const rule_t *rule, const char *key)
{
    size_t lo = 0, hi = rule->nread;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(rule->read[mid], key);
        if (cmp == 0)
            return true;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static json_t *s_extra(const ctx_t *c)
{
    json_t *extra = json_object();
    const rule_t *rule = c->rule;
    if (rule->extra == EXTRA_REST) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *) c->record, key, value)
            if (!s_is_read(rule, key))
                json_object_set_new(extra, key, json_deep_copy(value));
    } else if (rule->extra == EXTRA_LIST)
        for (size_t i = 0; i < rule->nextra; i++) {
            const json_t *v = s_lookup(c->record, &rule->extra_paths[i]);
            if (v && !json_is_null(v))
                json_object_set_new(extra, rule->extra_paths[i].text, json_deep_copy(v));
        }
    return extra;
}

static void s_put(json_t *obj, const char *key, json_t *value)
{
    json_object_set_new(obj, key, value ? value : json_null());
}

/* Builds the event in the model's field order; takes the values. The
   citizen block (and its address) is null unless the record itself gives
   one of its values: a block of constants alone would look like a person
   to the store. */
static json_t *s_assemble(const ctx_t *c, json_t **val, const bool *read,
                          json_t *source_status, json_t *source_channel)
{
    json_t *event = json_object(), *citizen = NULL, *address = NULL;
    json_t *location = NULL, *outcome = NULL;     /* when one of their values is set */
    for (int t = TG_RECORD_ID; t < TG_CITIZEN_ID; t++) {
        if (val[t] && !location && cv_mapping__targets[t].group == G_LOCATION)
            location = json_object();
        if (val[t] && !outcome && cv_mapping__targets[t].group == G_OUTCOME)
            outcome = json_object();
    }
    for (int t = TG_CITIZEN_ID; t < TG_COUNT; t++)
        if (read[t]) {
            if (!citizen)
                citizen = json_object();
            if (!address && cv_mapping__targets[t].group == G_ADDRESS)
                address = json_object();
        }
    s_put(event, "schema_version", json_integer(CV_MODEL_SCHEMA_VERSION));
    s_put(event, "source", json_string(c->self->source));
    s_put(event, "event_id", val[TG_EVENT_ID]);
    s_put(event, "kind", json_string(c->rule->kind));
    for (int t = TG_RECORD_ID; t < TG_COUNT; t++) {
        group_t g = cv_mapping__targets[t].group;
        json_t *obj = g == G_EVENT ? event : g == G_LOCATION ? location : g == G_OUTCOME ? outcome
                    : g == G_CITIZEN ? citizen : address;
        if (obj)
            s_put(obj, cv_mapping__targets[t].key, val[t]);
        else
            json_decref(val[t]);
        if (t == TG_STATUS) {
            s_put(event, "source_status", source_status);
            s_put(event, "source_channel", source_channel);
        }
    }
    s_put(event, "location", location);
    s_put(event, "outcome", outcome);
    if (citizen)
        s_put(citizen, "address", address);
    s_put(event, "citizen", citizen);
    s_put(event, "extra", s_extra(c));
    return event;
}

int cv_mapping_apply_hashed(const cv_mapping_t *self, const json_t *record, const char *record_hash,
                            json_t **event_out, char *reason, size_t reason_len,
                            char *detail, size_t detail_len)
{
    ctx_t c;
    c.self = self;
    c.record = record;
    c.hash = record_hash;
    c.reason = reason;
    c.reason_len = reason_len;
    c.detail = detail;
    c.detail_len = detail_len;
    c.missing = NULL;
    *event_out = NULL;
    if (reason && reason_len)
        reason[0] = '\0';
    if (detail && detail_len)
        detail[0] = '\0';
    if (!json_is_object(record))
        return s_fail(&c, "bad_type", "the record is not a JSON object");
    if (!(c.rule = s_select(&c)))
        return -1;

    json_t *val[TG_COUNT] = { NULL }, *source_status = NULL, *source_channel = NULL;
    bool read[TG_COUNT] = { false };
    int t = 0;
    for (; t < TG_COUNT; t++) {
        const spec_t *sp = &c.rule->spec[t];
        json_t **raw = t == TG_STATUS ? &source_status : t == TG_CHANNEL ? &source_channel : NULL;
        if (sp->src != SRC_NONE && s_field(&c, t, sp, &val[t], raw, &read[t]) < 0)
            break;
    }
    if (t < TG_COUNT) {
        for (int i = 0; i < TG_COUNT; i++)
            json_decref(val[i]);
        json_decref(source_status);
        json_decref(source_channel);
        return -1;
    }
    if (!val[TG_CHANNEL])
        val[TG_CHANNEL] = json_string("inconnu");
    if (!val[TG_CATEGORY])
        val[TG_CATEGORY] = json_string("autre");
    if (!val[TG_EVENT_ID]) {       /* record id + content hash */
        if (!c.hash) {
            if (cv_hash_json(record, c.hash_buf) < 0) {
                for (int i = 0; i < TG_COUNT; i++)
                    json_decref(val[i]);
                json_decref(source_status);
                json_decref(source_channel);
                return s_fail(&c, "bad_type", "event_id: the record cannot be serialised to hash it");
            }
            c.hash = c.hash_buf;
        }
        val[TG_EVENT_ID] = json_sprintf("%s|%s", json_string_value(val[TG_RECORD_ID]), c.hash);
    }

    json_t *event = s_assemble(&c, val, read, source_status, source_channel);
    char why[256];
    if (cv_model_validate(event, why, sizeof why) < 0) {
        json_decref(event);
        return s_fail(&c, "invalid_event", "rule '%s': %s", c.rule->kind, why);
    }
    *event_out = event;
    return 0;
}

int cv_mapping_apply(const cv_mapping_t *self, const json_t *record, json_t **event_out,
                     char *reason, size_t reason_len, char *detail, size_t detail_len)
{
    return cv_mapping_apply_hashed(self, record, NULL, event_out, reason, reason_len, detail, detail_len);
}
