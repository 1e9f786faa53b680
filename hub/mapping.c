/*  mapping — see mapping.h; the language is documented in docs/mapping.md.

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
#include "mapping.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_hash.h"
#include "cv_text.h"
#include "cv_yaml.h"
#include "model.h"
#include "tz.h"

#define MAP_PATH_MAX 200           /* characters of a path as written */
#define MAP_PATH_SEGS 16
#define MAP_SCRATCH (CV_MODEL_SUMMARY_MAX + 512)
#define MAP_DATE_MAX 64
#define MAP_NUM 40

/* ---- canonical fields a rule can fill ------------------------------------ */

typedef enum { T_ID, T_LABEL, T_TEXT, T_SUMMARY, T_STATUS, T_CHANNEL, T_UTC, T_DATE } value_type_t;
typedef enum { G_EVENT, G_CITIZEN, G_ADDRESS } group_t;

enum {
    TG_EVENT_ID, TG_RECORD_ID, TG_REQUEST_REF, TG_SERVICE, TG_CATEGORY, TG_CHANNEL,
    TG_STATUS, TG_OCCURRED_AT, TG_DUE_AT, TG_SUMMARY,
    TG_CITIZEN_ID, TG_FAMILY_NAME, TG_BIRTH_NAME, TG_GIVEN_NAMES, TG_BIRTH_DATE,
    TG_EMAIL, TG_PHONE,
    TG_LINE1, TG_LINE2, TG_POSTCODE, TG_CITY, TG_COUNTRY,
    TG_COUNT
};

typedef struct {
    const char *name;              /* as written in `fields:` */
    const char *key;               /* key in its object of the event */
    value_type_t type;
    group_t group;
    bool required;                 /* every rule must define it; a missing value fails */
} target_t;

static const target_t s_targets[TG_COUNT] = {
    [TG_EVENT_ID]    = { "event_id", "event_id", T_ID, G_EVENT, false },
    [TG_RECORD_ID]   = { "source_record_id", "source_record_id", T_ID, G_EVENT, true },
    [TG_REQUEST_REF] = { "request_ref", "request_ref", T_ID, G_EVENT, false },
    [TG_SERVICE]     = { "service", "service", T_LABEL, G_EVENT, true },
    [TG_CATEGORY]    = { "category", "category", T_LABEL, G_EVENT, false },
    [TG_CHANNEL]     = { "channel", "channel", T_CHANNEL, G_EVENT, false },
    [TG_STATUS]      = { "status", "status", T_STATUS, G_EVENT, true },
    [TG_OCCURRED_AT] = { "occurred_at", "occurred_at", T_UTC, G_EVENT, true },
    [TG_DUE_AT]      = { "due_at", "due_at", T_UTC, G_EVENT, false },
    [TG_SUMMARY]     = { "summary", "summary", T_SUMMARY, G_EVENT, false },
    [TG_CITIZEN_ID]  = { "citizen.source_citizen_id", "source_citizen_id", T_ID, G_CITIZEN, false },
    [TG_FAMILY_NAME] = { "citizen.family_name", "family_name", T_TEXT, G_CITIZEN, false },
    [TG_BIRTH_NAME]  = { "citizen.birth_name", "birth_name", T_TEXT, G_CITIZEN, false },
    [TG_GIVEN_NAMES] = { "citizen.given_names", "given_names", T_TEXT, G_CITIZEN, false },
    [TG_BIRTH_DATE]  = { "citizen.birth_date", "birth_date", T_DATE, G_CITIZEN, false },
    [TG_EMAIL]       = { "citizen.email", "email", T_TEXT, G_CITIZEN, false },
    [TG_PHONE]       = { "citizen.phone", "phone", T_TEXT, G_CITIZEN, false },
    [TG_LINE1]       = { "citizen.address.line1", "line1", T_TEXT, G_ADDRESS, false },
    [TG_LINE2]       = { "citizen.address.line2", "line2", T_TEXT, G_ADDRESS, false },
    [TG_POSTCODE]    = { "citizen.address.postcode", "postcode", T_TEXT, G_ADDRESS, false },
    [TG_CITY]        = { "citizen.address.city", "city", T_TEXT, G_ADDRESS, false },
    [TG_COUNTRY]     = { "citizen.address.country", "country", T_TEXT, G_ADDRESS, false },
};

/* ---- compiled form ------------------------------------------------------- */

typedef struct {
    const char *text;              /* as written, for details */
    char *buf;                     /* copy of text cut at the dots */
    const char *seg[MAP_PATH_SEGS];
    int index[MAP_PATH_SEGS];      /* segment as an array index, or -1 */
    int nseg;
} path_t;

typedef enum { SRC_NONE = 0, SRC_PATH, SRC_CONST, SRC_JOIN, SRC_HASH } source_kind_t;

typedef struct {
    const char *from;
    size_t from_len;
    const char *to;
} map_entry_t;

typedef struct spec spec_t;

struct spec {
    source_kind_t src;
    path_t *paths;                 /* 1 for path, n for join */
    size_t npaths;
    const char *constant;
    map_entry_t *map;              /* sorted by from */
    size_t nmap;
    const char *dflt;
    bool required;
    char casing;                   /* 0, 'U' or 'L' */
    const char *format;            /* dates: strptime format, NULL = ISO 8601 */
    const cv_tz_t *tz;             /* date-times without an offset */
    spec_t *add;                   /* date-times: a duration added to the date, or NULL */
    char unit;                     /* in an `add` spec: unit of bare numbers (d w m y), or 0 */
};

typedef enum { EXTRA_REST, EXTRA_NONE, EXTRA_LIST } extra_mode_t;

typedef struct {
    const char *kind;
    spec_t spec[TG_COUNT];         /* src == SRC_NONE: not mapped */
    extra_mode_t extra;
    path_t *extra_paths;
    size_t nextra;
    const char **read;             /* top-level keys read (sorted), left out of extra: rest */
    size_t nread;
} rule_t;

typedef struct {
    const char *value;
    size_t len;
    size_t rule;
    int line;
} when_t;

struct cv_mapping {
    cv_yaml_doc_t *doc;
    char *source;
    const cv_tz_t *tz;             /* the file's timezone */
    cv_tz_t **zones;               /* every zone loaded, once each */
    size_t nzones;
    bool has_kind_from;
    path_t kind_from;
    rule_t *rules;
    size_t nrules;
    when_t *when;                  /* sorted by value */
    size_t nwhen;
    long fallback;                 /* rule without `when`, or -1 */
};

typedef struct {
    const char *p;
    size_t n;
} view_t;

/* ---- small helpers ------------------------------------------------------- */

static int s_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static bool s_in_list(const char *const *list, view_t v)
{
    for (size_t i = 0; list[i]; i++)
        if (s_cmp(list[i], strlen(list[i]), v.p, v.n) == 0)
            return true;
    return false;
}

static const char *s_join_list(const char *const *list, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; list[i] && at < len; i++)
        at += (size_t) snprintf(buf + at, len - at, "%s%s", i ? ", " : "", list[i]);
    return buf;
}

static void s_trim(view_t *v)
{
    cv_text_trim(&v->p, &v->n);
}

/* Cuts v to at most max bytes, on a character boundary. */
static void s_cut(view_t *v, size_t max)
{
    if (v->n <= max)
        return;
    size_t n = max;
    while (n > 0 && ((unsigned char) v->p[n] & 0xC0) == 0x80)
        n--;
    v->n = n;
}

/* Changes case in place: ASCII, the Latin-1 letters (é/É, ç/Ç...), œ/Œ and
   ÿ/Ÿ, which covers French; other characters are left as they are. Each
   pair has the same length in UTF-8. */
static void s_fold(char *p, size_t n, bool upper)
{
    unsigned char *s = (unsigned char *) p;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (upper && c >= 'a' && c <= 'z')
                s[i] = (unsigned char) (c - 32);
            else if (!upper && c >= 'A' && c <= 'Z')
                s[i] = (unsigned char) (c + 32);
        } else if ((c == 0xC3 || c == 0xC5) && i + 1 < n) {
            unsigned char d = s[++i];
            if (c == 0xC3 && upper && d >= 0xA0 && d <= 0xBE && d != 0xB7)
                s[i] = (unsigned char) (d - 0x20);
            else if (c == 0xC3 && !upper && d >= 0x80 && d <= 0x9E && d != 0x97)
                s[i] = (unsigned char) (d + 0x20);
            else if (c == 0xC3 && upper && d == 0xBF)
                s[i - 1] = 0xC5, s[i] = 0xB8;
            else if (c == 0xC5 && !upper && d == 0xB8)
                s[i - 1] = 0xC3, s[i] = 0xBF;
            else if (c == 0xC5 && d == (upper ? 0x93 : 0x92))
                s[i] = upper ? 0x92 : 0x93;
        }
    }
}

/* ---- loading ------------------------------------------------------------- */

static int s_path(const cv_yaml_doc_t *doc, const cv_yaml_node_t *node, path_t *out,
                  char *err, size_t errlen)
{
    if (cv_yaml_expect(doc, node, CV_YAML_SCALAR, "a path", err, errlen) < 0)
        return -1;
    const char *text = node->value;
    if (strlen(text) == 0 || strlen(text) > MAP_PATH_MAX)
        return cv_yaml_fail(doc, node, err, errlen, "a path must be 1 to %d characters", MAP_PATH_MAX);
    out->text = text;
    if (!(out->buf = strdup(text)))
        return cv_yaml_fail(doc, node, err, errlen, "out of memory");
    for (char *p = out->buf; p; ) {
        char *dot = strchr(p, '.');
        if (dot)
            *dot = '\0';
        if (*p == '\0')
            return cv_yaml_fail(doc, node, err, errlen, "path '%s' has an empty segment", text);
        if (out->nseg == MAP_PATH_SEGS)
            return cv_yaml_fail(doc, node, err, errlen, "path '%s' has more than %d segments", text, MAP_PATH_SEGS);
        size_t digits = strspn(p, "0123456789");
        out->seg[out->nseg] = p;
        out->index[out->nseg] = digits == strlen(p) && digits <= 9 ? atoi(p) : -1;
        out->nseg++;
        p = dot ? dot + 1 : NULL;
    }
    return 0;
}

static const cv_tz_t *s_zone(cv_mapping_t *self, const cv_yaml_node_t *node, const char *name,
                             char *err, size_t errlen)
{
    for (size_t i = 0; i < self->nzones; i++)
        if (strcmp(cv_tz_name(self->zones[i]), name) == 0)
            return self->zones[i];
    char why[256];
    cv_tz_t *tz = cv_tz_new(name, why, sizeof why);
    if (!tz) {
        cv_yaml_fail(self->doc, node, err, errlen, "%s", why);
        return NULL;
    }
    cv_tz_t **zones = realloc(self->zones, (self->nzones + 1) * sizeof *zones);
    if (!zones) {
        cv_tz_destroy(&tz);
        cv_yaml_fail(self->doc, node, err, errlen, "out of memory");
        return NULL;
    }
    self->zones = zones;
    self->zones[self->nzones++] = tz;
    return tz;
}

/* A non-empty scalar under key, or NULL (with *rc = -1 if it is there but wrong). */
static const cv_yaml_node_t *s_scalar_key(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map,
                                          const char *key, const char *where, int *rc,
                                          char *err, size_t errlen)
{
    const cv_yaml_node_t *n = cv_yaml_get(map, key);
    *rc = 0;
    if (!n)
        return NULL;
    if (n->type != CV_YAML_SCALAR || n->value[0] == '\0') {
        *rc = cv_yaml_fail(doc, n, err, errlen, "'%s' of %s must be a single, non-empty value", key, where);
        return NULL;
    }
    return n;
}

/* Status and channel targets only accept canonical values. */
static int s_check_enum(const cv_yaml_doc_t *doc, int t, const cv_yaml_node_t *node,
                        char *err, size_t errlen)
{
    const char *const *list = t == TG_STATUS ? cv_model_statuses : t == TG_CHANNEL ? cv_model_channels : NULL;
    if (!list || s_in_list(list, (view_t) { node->value, strlen(node->value) }))
        return 0;
    char all[256];
    return cv_yaml_fail(doc, node, err, errlen, "'%s' is not a canonical %s (%s)", node->value,
                        t == TG_STATUS ? "status" : "channel", s_join_list(list, all, sizeof all));
}

static int s_map_entry_cmp(const void *a, const void *b)
{
    const map_entry_t *x = a, *y = b;
    return s_cmp(x->from, x->from_len, y->from, y->from_len);
}

static int s_load_map(const cv_yaml_doc_t *doc, int t, spec_t *sp, const cv_yaml_node_t *map,
                      const char *where, char *err, size_t errlen)
{
    char what[96];
    snprintf(what, sizeof what, "'map' of %s", where);
    if (cv_yaml_expect(doc, map, CV_YAML_MAP, what, err, errlen) < 0)
        return -1;
    if (map->count == 0)
        return cv_yaml_fail(doc, map, err, errlen, "%s is empty", what);
    if (!(sp->map = calloc(map->count, sizeof *sp->map)))
        return cv_yaml_fail(doc, map, err, errlen, "out of memory");
    for (const cv_yaml_node_t *e = map->child; e; e = e->next) {
        if (e->type != CV_YAML_SCALAR || e->value[0] == '\0')
            return cv_yaml_fail(doc, e, err, errlen, "%s: the value for '%s' must be a single, non-empty value",
                                what, e->key);
        if (s_check_enum(doc, t, e, err, errlen) < 0)
            return -1;
        sp->map[sp->nmap++] = (map_entry_t) { e->key, strlen(e->key), e->value };
    }
    qsort(sp->map, sp->nmap, sizeof *sp->map, s_map_entry_cmp);
    return 0;
}

static int s_load_source(cv_mapping_t *self, spec_t *sp, const cv_yaml_node_t *node,
                         const char *where, char *err, size_t errlen)
{
    const cv_yaml_doc_t *doc = self->doc;
    const cv_yaml_node_t *path = cv_yaml_get(node, "path"), *cst = cv_yaml_get(node, "const"),
                         *join = cv_yaml_get(node, "join"), *hash = cv_yaml_get(node, "hash");
    if (!!path + !!cst + !!join + !!hash != 1)
        return cv_yaml_fail(doc, node, err, errlen, "%s needs exactly one of path, const, join, hash", where);
    int rc;
    if (path || join) {
        sp->src = path ? SRC_PATH : SRC_JOIN;
        const cv_yaml_node_t *first = path;
        if (join) {
            char what[96];
            snprintf(what, sizeof what, "'join' of %s", where);
            if (cv_yaml_expect(doc, join, CV_YAML_SEQ, what, err, errlen) < 0)
                return -1;
            if (join->count == 0)
                return cv_yaml_fail(doc, join, err, errlen, "%s is empty", what);
            first = join->child;
        }
        size_t n = join ? join->count : 1;
        if (!(sp->paths = calloc(n, sizeof *sp->paths)))
            return cv_yaml_fail(doc, node, err, errlen, "out of memory");
        for (const cv_yaml_node_t *p = first; p && sp->npaths < n; p = p->next)
            if (s_path(doc, p, &sp->paths[sp->npaths++], err, errlen) < 0)
                return -1;
    } else if (cst) {
        sp->src = SRC_CONST;
        if (!(cst = s_scalar_key(doc, node, "const", where, &rc, err, errlen)))
            return -1;
        sp->constant = cst->value;
    } else {
        sp->src = SRC_HASH;
        if (hash->type != CV_YAML_SCALAR || strcmp(hash->value, "record") != 0)
            return cv_yaml_fail(doc, hash, err, errlen, "'hash' of %s must be 'record'", where);
    }
    return 0;
}

/* A duration: "<N> <unit>" (days, weeks, months, years, in English or
   French, singular or plural), or "<N>" when the spec gives a unit.
   Returns 0 with the count and unit (d w m y), or -1. */
static int s_duration(const char *p, size_t n, char dflt_unit, long *count, char *unit)
{
    static const struct { const char *word; char unit; } words[] = {
        { "day", 'd' }, { "days", 'd' }, { "jour", 'd' }, { "jours", 'd' },
        { "week", 'w' }, { "weeks", 'w' }, { "semaine", 'w' }, { "semaines", 'w' },
        { "month", 'm' }, { "months", 'm' }, { "mois", 'm' },
        { "year", 'y' }, { "years", 'y' }, { "an", 'y' }, { "ans", 'y' },
    };
    view_t v = { p, n };
    s_trim(&v);
    size_t digits = 0;
    long value = 0;
    while (digits < v.n && digits < 6 && v.p[digits] >= '0' && v.p[digits] <= '9')
        value = value * 10 + (v.p[digits++] - '0');
    if (digits == 0 || (digits < v.n && v.p[digits] >= '0' && v.p[digits] <= '9'))
        return -1;
    view_t word = { v.p + digits, v.n - digits };
    s_trim(&word);
    *count = value;
    if (word.n == 0) {
        *unit = dflt_unit;
        return dflt_unit ? 0 : -1;
    }
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (s_cmp(words[i].word, strlen(words[i].word), word.p, word.n) == 0) {
            *unit = words[i].unit;
            return 0;
        }
    return -1;
}

static int s_check_duration(const cv_yaml_doc_t *doc, const cv_yaml_node_t *node, char unit,
                            const char *where, char *err, size_t errlen)
{
    long count;
    char u;
    if (s_duration(node->value, strlen(node->value), unit, &count, &u) == 0)
        return 0;
    return cv_yaml_fail(doc, node, err, errlen, "%s: '%s' is not a duration (such as '2 months', '15 days'%s)",
                        where, node->value, unit ? " or a number" : "");
}

/* `add:` of a date-time field: a duration, or a spec that reads one (path,
   join or const, with case, map, default and a unit for bare numbers). */
static int s_load_add(cv_mapping_t *self, spec_t *sp, const cv_yaml_node_t *node, const char *field,
                      char *err, size_t errlen)
{
    static const char *const keys[] = { "path", "const", "join", "map", "default", "case", "unit", NULL };
    const cv_yaml_doc_t *doc = self->doc;
    char where[96];
    snprintf(where, sizeof where, "'add' of field '%s'", field);
    spec_t *add = sp->add = calloc(1, sizeof *add);
    if (!add)
        return cv_yaml_fail(doc, node, err, errlen, "out of memory");
    if (node->type == CV_YAML_SCALAR) {           /* add: 2 months */
        add->src = SRC_CONST;
        add->constant = node->value;
        return s_check_duration(doc, node, 0, where, err, errlen);
    }
    int rc;
    const cv_yaml_node_t *n;
    if (cv_yaml_expect(doc, node, CV_YAML_MAP, where, err, errlen) < 0
        || cv_yaml_check_keys(doc, node, keys, where, err, errlen) < 0
        || s_load_source(self, add, node, where, err, errlen) < 0)
        return -1;
    if ((n = s_scalar_key(doc, node, "unit", where, &rc, err, errlen))) {
        long one;
        char u;
        char probe[48];
        snprintf(probe, sizeof probe, "1 %s", n->value);
        if (s_duration(probe, strlen(probe), 0, &one, &u) < 0)
            return cv_yaml_fail(doc, n, err, errlen, "%s: 'unit' must be days, weeks, months or years", where);
        add->unit = u;
    }
    if (rc < 0)
        return -1;
    if (add->src == SRC_CONST && s_check_duration(doc, cv_yaml_get(node, "const"), add->unit, where, err, errlen) < 0)
        return -1;
    if ((n = cv_yaml_get(node, "map"))) {
        if (s_load_map(doc, -1, add, n, where, err, errlen) < 0)
            return -1;
        for (const cv_yaml_node_t *e = n->child; e; e = e->next)
            if (s_check_duration(doc, e, add->unit, where, err, errlen) < 0)
                return -1;
    }
    if ((n = s_scalar_key(doc, node, "default", where, &rc, err, errlen))) {
        if (s_check_duration(doc, n, add->unit, where, err, errlen) < 0)
            return -1;
        add->dflt = n->value;
    }
    if (rc < 0)
        return -1;
    if ((n = s_scalar_key(doc, node, "case", where, &rc, err, errlen))) {
        if (strcmp(n->value, "upper") != 0 && strcmp(n->value, "lower") != 0)
            return cv_yaml_fail(doc, n, err, errlen, "'case' of %s must be upper or lower", where);
        add->casing = n->value[0] == 'u' ? 'U' : 'L';
    }
    return rc;
}

static int s_load_spec(cv_mapping_t *self, int t, spec_t *sp, const cv_yaml_node_t *node,
                       char *err, size_t errlen)
{
    static const char *const keys[] = { "path", "const", "join", "hash", "map", "default", "required",
                                        "format", "timezone", "case", "add", NULL };
    const cv_yaml_doc_t *doc = self->doc;
    const target_t *tg = &s_targets[t];
    bool date = tg->type == T_UTC || tg->type == T_DATE;
    char where[64];
    snprintf(where, sizeof where, "field '%s'", tg->name);
    if (cv_yaml_expect(doc, node, CV_YAML_MAP, where, err, errlen) < 0
        || cv_yaml_check_keys(doc, node, keys, where, err, errlen) < 0
        || s_load_source(self, sp, node, where, err, errlen) < 0)
        return -1;
    static const char *const not_for_dates[] = { "const", "hash", "map", "default", "case", NULL };
    for (size_t i = 0; date && not_for_dates[i]; i++)
        if (cv_yaml_get(node, not_for_dates[i]))
            return cv_yaml_fail(doc, cv_yaml_get(node, not_for_dates[i]), err, errlen,
                                "'%s' does not apply to the date %s", not_for_dates[i], where);
    int rc;
    const cv_yaml_node_t *n;
    if (sp->src == SRC_CONST && !cv_yaml_get(node, "map")
        && s_check_enum(doc, t, cv_yaml_get(node, "const"), err, errlen) < 0)
        return -1;
    if ((n = cv_yaml_get(node, "map")) && s_load_map(doc, t, sp, n, where, err, errlen) < 0)
        return -1;
    if ((n = s_scalar_key(doc, node, "default", where, &rc, err, errlen))) {
        if (s_check_enum(doc, t, n, err, errlen) < 0)
            return -1;
        sp->dflt = n->value;
    }
    if (rc < 0 || cv_yaml_bool(doc, node, "required", false, false, &sp->required, err, errlen) < 0)
        return -1;
    sp->required |= tg->required || t == TG_EVENT_ID;
    if ((n = s_scalar_key(doc, node, "case", where, &rc, err, errlen))) {
        if (strcmp(n->value, "upper") != 0 && strcmp(n->value, "lower") != 0)
            return cv_yaml_fail(doc, n, err, errlen, "'case' of %s must be upper or lower", where);
        sp->casing = n->value[0] == 'u' ? 'U' : 'L';
    }
    if (rc < 0)
        return -1;
    if ((n = s_scalar_key(doc, node, "format", where, &rc, err, errlen))) {
        char why[160];
        if (!date)
            return cv_yaml_fail(doc, n, err, errlen, "'format' only applies to date fields, not %s", where);
        if (cv_tz_check_format(n->value, why, sizeof why) < 0)
            return cv_yaml_fail(doc, n, err, errlen, "%s: %s", where, why);
        sp->format = n->value;
    }
    if (rc < 0)
        return -1;
    sp->tz = self->tz;
    if ((n = s_scalar_key(doc, node, "timezone", where, &rc, err, errlen))) {
        if (tg->type != T_UTC)
            return cv_yaml_fail(doc, n, err, errlen, "'timezone' only applies to date-times, not %s", where);
        if (!(sp->tz = s_zone(self, n, n->value, err, errlen)))
            return -1;
    }
    if (rc < 0)
        return -1;
    if ((n = cv_yaml_get(node, "add"))) {
        if (tg->type != T_UTC)
            return cv_yaml_fail(doc, n, err, errlen, "'add' only applies to date-times (occurred_at, due_at), "
                                "not %s", where);
        return s_load_add(self, sp, n, tg->name, err, errlen);
    }
    return 0;
}

static int s_target(const char *name)
{
    for (int t = 0; t < TG_COUNT; t++)
        if (strcmp(s_targets[t].name, name) == 0)
            return t;
    return -1;
}

static int s_load_fields(cv_mapping_t *self, rule_t *rule, const cv_yaml_node_t *rnode,
                         char *err, size_t errlen)
{
    const cv_yaml_doc_t *doc = self->doc;
    const cv_yaml_node_t *fields = cv_yaml_get(rnode, "fields");
    if (!fields)
        return cv_yaml_fail(doc, rnode, err, errlen, "rule '%s' needs 'fields'", rule->kind);
    if (cv_yaml_expect(doc, fields, CV_YAML_MAP, "'fields'", err, errlen) < 0)
        return -1;
    for (const cv_yaml_node_t *f = fields->child; f; f = f->next) {
        int t = s_target(f->key);
        cv_yaml_node_t at = { .line = f->key_line };
        if (t < 0 && (strcmp(f->key, "source_status") == 0 || strcmp(f->key, "source_channel") == 0))
            return cv_yaml_fail(doc, &at, err, errlen, "'%s' is filled from status/channel; it cannot be mapped", f->key);
        if (t < 0)
            return cv_yaml_fail(doc, &at, err, errlen, "unknown field '%s' in rule '%s' (docs/mapping.md lists them)",
                                f->key, rule->kind);
        if (s_load_spec(self, t, &rule->spec[t], f, err, errlen) < 0)
            return -1;
    }
    cv_yaml_node_t at = { .line = fields->key_line };
    for (int t = 0; t < TG_COUNT; t++)
        if (s_targets[t].required && rule->spec[t].src == SRC_NONE)
            return cv_yaml_fail(doc, &at, err, errlen, "rule '%s' has no field '%s' (every rule needs "
                                "source_record_id, service, status, occurred_at)", rule->kind, s_targets[t].name);
    return 0;
}

static int s_load_extra(cv_mapping_t *self, rule_t *rule, const cv_yaml_node_t *rnode,
                        char *err, size_t errlen)
{
    const cv_yaml_doc_t *doc = self->doc;
    const cv_yaml_node_t *extra = cv_yaml_get(rnode, "extra");
    if (!extra || (extra->type == CV_YAML_SCALAR && strcmp(extra->value, "rest") == 0))
        rule->extra = EXTRA_REST;
    else if (extra->type == CV_YAML_SCALAR && strcmp(extra->value, "none") == 0)
        rule->extra = EXTRA_NONE;
    else if (extra->type == CV_YAML_SEQ) {
        rule->extra = EXTRA_LIST;
        if (!(rule->extra_paths = calloc(extra->count ? extra->count : 1, sizeof *rule->extra_paths)))
            return cv_yaml_fail(doc, extra, err, errlen, "out of memory");
        for (const cv_yaml_node_t *p = extra->child; p; p = p->next)
            if (s_path(doc, p, &rule->extra_paths[rule->nextra++], err, errlen) < 0)
                return -1;
    } else
        return cv_yaml_fail(doc, extra, err, errlen, "'extra' must be rest, none or a list of paths");
    return 0;
}

static int s_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The top-level keys a rule reads: they stay out of `extra: rest`. */
static int s_collect_read(cv_mapping_t *self, rule_t *rule)
{
    size_t max = self->has_kind_from;
    for (int t = 0; t < TG_COUNT; t++)
        max += rule->spec[t].npaths + (rule->spec[t].add ? rule->spec[t].add->npaths : 0);
    if (!(rule->read = calloc(max ? max : 1, sizeof *rule->read)))
        return -1;
    if (self->has_kind_from)
        rule->read[rule->nread++] = self->kind_from.seg[0];
    for (int t = 0; t < TG_COUNT; t++) {
        for (size_t i = 0; i < rule->spec[t].npaths; i++)
            rule->read[rule->nread++] = rule->spec[t].paths[i].seg[0];
        for (size_t i = 0; rule->spec[t].add && i < rule->spec[t].add->npaths; i++)
            rule->read[rule->nread++] = rule->spec[t].add->paths[i].seg[0];
    }
    qsort(rule->read, rule->nread, sizeof *rule->read, s_str_cmp);
    size_t out = 0;
    for (size_t i = 0; i < rule->nread; i++)
        if (out == 0 || strcmp(rule->read[out - 1], rule->read[i]) != 0)
            rule->read[out++] = rule->read[i];
    rule->nread = out;
    return 0;
}

static int s_load_when(cv_mapping_t *self, size_t r, const cv_yaml_node_t *rnode, char *err, size_t errlen)
{
    const cv_yaml_doc_t *doc = self->doc;
    const cv_yaml_node_t *when = cv_yaml_get(rnode, "when");
    rule_t *rule = &self->rules[r];
    if (!when) {
        if (self->fallback >= 0)
            return cv_yaml_fail(doc, rnode, err, errlen, "rules '%s' and '%s' both lack 'when': "
                                "only one fallback rule is allowed", self->rules[self->fallback].kind, rule->kind);
        self->fallback = (long) r;
        return 0;
    }
    if (!self->has_kind_from)
        return cv_yaml_fail(doc, when, err, errlen, "'when' needs 'kind_from' at the top of the file");
    const cv_yaml_node_t *first = when->type == CV_YAML_SEQ ? when->child : when;
    size_t n = when->type == CV_YAML_SEQ ? when->count : 1;
    if (when->type == CV_YAML_MAP || n == 0)
        return cv_yaml_fail(doc, when, err, errlen, "'when' must be a value or a non-empty list of values");
    when_t *all = realloc(self->when, (self->nwhen + n) * sizeof *all);
    if (!all)
        return cv_yaml_fail(doc, when, err, errlen, "out of memory");
    self->when = all;
    for (const cv_yaml_node_t *v = first; v && n--; v = v->next) {
        if (v->type != CV_YAML_SCALAR || v->value[0] == '\0')
            return cv_yaml_fail(doc, v, err, errlen, "a 'when' value must be a single, non-empty value");
        self->when[self->nwhen++] = (when_t) { v->value, strlen(v->value), r, v->line };
    }
    return 0;
}

static int s_when_cmp(const void *a, const void *b)
{
    const when_t *x = a, *y = b;
    int c = s_cmp(x->value, x->len, y->value, y->len);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int s_load_rules(cv_mapping_t *self, const cv_yaml_node_t *list, char *err, size_t errlen)
{
    static const char *const keys[] = { "kind", "when", "fields", "extra", NULL };
    const cv_yaml_doc_t *doc = self->doc;
    if (!list)
        return cv_yaml_fail(doc, doc->root, err, errlen, "missing required key 'rules'");
    if (cv_yaml_expect(doc, list, CV_YAML_SEQ, "'rules'", err, errlen) < 0)
        return -1;
    if (list->count == 0)
        return cv_yaml_fail(doc, list, err, errlen, "'rules' is empty");
    if (!self->has_kind_from && list->count > 1)
        return cv_yaml_fail(doc, list, err, errlen, "several rules need 'kind_from' to choose between them");
    if (!(self->rules = calloc(list->count, sizeof *self->rules)))
        return cv_yaml_fail(doc, list, err, errlen, "out of memory");
    for (const cv_yaml_node_t *r = list->child; r; r = r->next) {
        rule_t *rule = &self->rules[self->nrules++];
        const char *kind;
        if (cv_yaml_expect(doc, r, CV_YAML_MAP, "a rule", err, errlen) < 0
            || cv_yaml_check_keys(doc, r, keys, "a rule", err, errlen) < 0
            || cv_yaml_str(doc, r, "kind", true, NULL, &kind, err, errlen) < 0)
            return -1;
        if (strlen(kind) > CV_MODEL_LABEL_MAX || strpbrk(kind, "\t\r\n"))
            return cv_yaml_fail(doc, cv_yaml_get(r, "kind"), err, errlen, "a rule's kind must be one line "
                                "of at most %d bytes", CV_MODEL_LABEL_MAX);
        rule->kind = kind;
        if (s_load_when(self, self->nrules - 1, r, err, errlen) < 0
            || s_load_fields(self, rule, r, err, errlen) < 0
            || s_load_extra(self, rule, r, err, errlen) < 0)
            return -1;
        if (s_collect_read(self, rule) < 0)
            return cv_yaml_fail(doc, r, err, errlen, "out of memory");
    }
    if (self->nwhen)
        qsort(self->when, self->nwhen, sizeof *self->when, s_when_cmp);
    for (size_t i = 1; i < self->nwhen; i++)
        if (s_cmp(self->when[i].value, self->when[i].len, self->when[i - 1].value, self->when[i - 1].len) == 0) {
            cv_yaml_node_t at = { .line = self->when[i].line };
            return cv_yaml_fail(doc, &at, err, errlen, "'when' value '%s' already selects rule '%s' (line %d)",
                                self->when[i].value, self->rules[self->when[i - 1].rule].kind,
                                self->when[i - 1].line);
        }
    return 0;
}

static bool s_source_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= CV_MODEL_SOURCE_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int s_load(cv_mapping_t *self, const char *source, char *err, size_t errlen)
{
    static const char *const keys[] = { "mapping_version", "source", "timezone", "kind_from", "rules", NULL };
    const cv_yaml_doc_t *doc = self->doc;
    const cv_yaml_node_t *root = doc->root;
    if (!root || root->type != CV_YAML_MAP)
        return cv_yaml_fail(doc, root, err, errlen, "a mapping file must be a map of key: value lines");
    int64_t version;
    const char *own, *zone, *kind_from;
    if (cv_yaml_check_keys(doc, root, keys, "the mapping file", err, errlen) < 0
        || cv_yaml_int(doc, root, "mapping_version", true, 0, 0, INT32_MAX, &version, err, errlen) < 0
        || cv_yaml_str(doc, root, "source", false, NULL, &own, err, errlen) < 0
        || cv_yaml_str(doc, root, "timezone", false, "Europe/Paris", &zone, err, errlen) < 0
        || cv_yaml_str(doc, root, "kind_from", false, NULL, &kind_from, err, errlen) < 0)
        return -1;
    if (version != 1)
        return cv_yaml_fail(doc, cv_yaml_get(root, "mapping_version"), err, errlen,
                            "mapping_version %lld is not supported (this hub reads 1)", (long long) version);
    if (source && own && strcmp(source, own) != 0)
        return cv_yaml_fail(doc, cv_yaml_get(root, "source"), err, errlen, "source '%s' does not match "
                            "the name the hub config gives this mapping ('%s')", own, source);
    if (!source && !own)
        return cv_yaml_fail(doc, root, err, errlen, "missing 'source' (the source's name)");
    if (!s_source_name_ok(source ? source : own))
        return cv_yaml_fail(doc, cv_yaml_get(root, "source"), err, errlen,
                            "source name must be 1-63 characters a-z 0-9 _ -");
    if (!(self->source = strdup(source ? source : own)))
        return cv_yaml_fail(doc, root, err, errlen, "out of memory");
    if (!(self->tz = s_zone(self, cv_yaml_get(root, "timezone") ? cv_yaml_get(root, "timezone") : root,
                            zone, err, errlen)))
        return -1;
    if (kind_from) {
        self->has_kind_from = true;
        if (s_path(doc, cv_yaml_get(root, "kind_from"), &self->kind_from, err, errlen) < 0)
            return -1;
    }
    return s_load_rules(self, cv_yaml_get(root, "rules"), err, errlen);
}

cv_mapping_t *cv_mapping_load(const char *path, const char *source, char *err, size_t errlen)
{
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, errlen);
    if (!doc)
        return NULL;
    cv_mapping_t *self = calloc(1, sizeof *self);
    if (!self) {
        cv_yaml_fail(doc, NULL, err, errlen, "out of memory");
        cv_yaml_destroy(&doc);
        return NULL;
    }
    self->doc = doc;
    self->fallback = -1;
    if (s_load(self, source, err, errlen) < 0)
        cv_mapping_destroy(&self);
    return self;
}

static void s_spec_free(spec_t *sp)
{
    for (size_t i = 0; i < sp->npaths; i++)
        free(sp->paths[i].buf);
    free(sp->paths);
    free(sp->map);
    if (sp->add) {
        s_spec_free(sp->add);
        free(sp->add);
    }
}

static void s_rule_free(rule_t *rule)
{
    for (int t = 0; t < TG_COUNT; t++)
        s_spec_free(&rule->spec[t]);
    for (size_t i = 0; i < rule->nextra; i++)
        free(rule->extra_paths[i].buf);
    free(rule->extra_paths);
    free(rule->read);
}

void cv_mapping_destroy(cv_mapping_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_mapping_t *self = *self_p;
    for (size_t i = 0; i < self->nrules; i++)
        s_rule_free(&self->rules[i]);
    free(self->rules);
    free(self->when);
    for (size_t i = 0; i < self->nzones; i++)
        cv_tz_destroy(&self->zones[i]);
    free(self->zones);
    free(self->kind_from.buf);
    free(self->source);
    cv_yaml_destroy(&self->doc);
    free(self);
    *self_p = NULL;
}

const char *cv_mapping_source(const cv_mapping_t *self)
{
    return self->source;
}

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
    if (rc == 1 && s_duration(v.p, v.n, add->unit, count, unit) < 0)
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
    const char *name = s_targets[t].name;
    char text[MAP_DATE_MAX];
    cv_tz_civil_t civil;
    if (v.n >= sizeof text) {
        s_fail(c, "bad_date", "%s: the value at %s is too long to be a date", name, s_origin(c, sp));
        return NULL;
    }
    memcpy(text, v.p, v.n);
    text[v.n] = '\0';
    if (cv_tz_parse(text, sp->format, &civil) < 0) {
        s_fail(c, "bad_date", "%s: the value at %s is not a real date %s%s%s", name, s_origin(c, sp),
               sp->format ? "in format '" : "in ISO 8601 form", sp->format ? sp->format : "",
               sp->format ? "'" : "");
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
    if (s_targets[t].type == T_DATE) {     /* the day as written: "YYYY-MM-DD" */
        cv_tz_format_utc(cv_tz_civil_secs(civil.year, civil.month, civil.day, 0, 0, 0), utc);
        return json_stringn_nocheck(utc, 10);
    }
    cv_tz_format_utc(cv_tz_civil_to_utc(sp->tz, &civil), utc);
    return json_stringn_nocheck(utc, CV_TZ_UTC_LEN);
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
    int rc = s_amount(c, sp->add, s_targets[t].name, &count, &unit);
    if (rc < 0)
        return -1;
    if (rc == 0 && sp->required)
        return s_fail(c, "missing_field", "%s: %s ('add') is missing", s_targets[t].name, s_origin(c, sp->add));
    if (rc == 0)
        return 0;
    return (*out = s_date(c, t, sp, v, &count, unit)) ? 0 : -1;
}

/* One field: *out gets its JSON value (NULL when it has none); *raw, for
   status and channel, the value as the source wrote it; *read is true
   when the value came from the record (not a const, default or hash). */
static int s_field(ctx_t *c, int t, const spec_t *sp, json_t **out, json_t **raw, bool *read)
{
    const target_t *tg = &s_targets[t];
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
        || (tg->type == T_CHANNEL && !s_in_list(cv_model_channels, v)))
        return s_fail(c, "unmapped_value", "%s: the value at %s is not a canonical %s; give 'map' an "
                      "entry for it", tg->name, s_origin(c, sp), tg->name);
    if (tg->type == T_UTC && sp->add)
        return s_field_add(c, t, sp, v, out);
    if (tg->type == T_UTC || tg->type == T_DATE)
        return (*out = s_date(c, t, sp, v, NULL, 0)) ? 0 : -1;
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
    for (int t = TG_CITIZEN_ID; t < TG_COUNT; t++)
        if (read[t]) {
            if (!citizen)
                citizen = json_object();
            if (!address && s_targets[t].group == G_ADDRESS)
                address = json_object();
        }
    s_put(event, "schema_version", json_integer(CV_MODEL_SCHEMA_VERSION));
    s_put(event, "source", json_string(c->self->source));
    s_put(event, "event_id", val[TG_EVENT_ID]);
    s_put(event, "kind", json_string(c->rule->kind));
    for (int t = TG_RECORD_ID; t < TG_COUNT; t++) {
        json_t *obj = s_targets[t].group == G_EVENT ? event : s_targets[t].group == G_CITIZEN ? citizen : address;
        if (obj)
            s_put(obj, s_targets[t].key, val[t]);
        else
            json_decref(val[t]);
        if (t == TG_STATUS) {
            s_put(event, "source_status", source_status);
            s_put(event, "source_channel", source_channel);
        }
    }
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
