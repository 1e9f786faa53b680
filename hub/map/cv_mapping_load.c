/*  cv_mapping_load — loading a mapping: see cv_mapping.c for the design and
    docs/mapping.md for the language. Compiles the YAML file into the plain
    structs of cv_mapping_int.h, once, at start-up; every error is
    `file:line: reason`. */
#include "cv_mapping.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_hash.h"
#include "cv_log.h"
#include "cv_mapping_int.h"
#include "cv_text.h"

const target_t cv_mapping__targets[TG_COUNT] = {
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
    [TG_REQUESTED_AT] = { "requested_at", "requested_at", T_UTC, G_EVENT, false },
    [TG_LOC_ADDRESS] = { "location.address", "address", T_TEXT, G_LOCATION, false },
    [TG_LOC_POSTCODE] = { "location.postcode", "postcode", T_TEXT, G_LOCATION, false },
    [TG_LOC_CITY]    = { "location.city", "city", T_TEXT, G_LOCATION, false },
    [TG_LOC_LAT]     = { "location.lat", "lat", T_LAT, G_LOCATION, false },
    [TG_LOC_LON]     = { "location.lon", "lon", T_LON, G_LOCATION, false },
    [TG_OUTCOME]     = { "outcome.code", "code", T_OUTCOME, G_OUTCOME, false },
    [TG_OUTCOME_REASON] = { "outcome.reason", "reason", T_LABEL, G_OUTCOME, false },
    [TG_OUTCOME_REF] = { "outcome.related_ref", "related_ref", T_ID, G_OUTCOME, false },
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

/* Status, channel and outcome targets only accept canonical values. */
static int s_check_enum(const cv_yaml_doc_t *doc, int t, const cv_yaml_node_t *node,
                        char *err, size_t errlen)
{
    const char *const *list = t == TG_STATUS ? cv_model_statuses : t == TG_CHANNEL ? cv_model_channels
                            : t == TG_OUTCOME ? cv_model_outcomes : NULL;
    if (!list || s_in_list(list, (view_t) { node->value, strlen(node->value) }))
        return 0;
    char all[256];
    return cv_yaml_fail(doc, node, err, errlen, "'%s' is not a canonical %s (%s)", node->value,
                        t == TG_STATUS ? "status" : t == TG_CHANNEL ? "channel" : "outcome",
                        s_join_list(list, all, sizeof all));
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
int cv_mapping__duration(const char *p, size_t n, char dflt_unit, long *count, char *unit)
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
    if (cv_mapping__duration(node->value, strlen(node->value), unit, &count, &u) == 0)
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
        if (cv_mapping__duration(probe, strlen(probe), 0, &one, &u) < 0)
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
    const target_t *tg = &cv_mapping__targets[t];
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
        if (strcmp(cv_mapping__targets[t].name, name) == 0)
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
        if (cv_mapping__targets[t].required && rule->spec[t].src == SRC_NONE)
            return cv_yaml_fail(doc, &at, err, errlen, "rule '%s' has no field '%s' (every rule needs "
                                "source_record_id, service, status, occurred_at)", rule->kind, cv_mapping__targets[t].name);
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
        if (strcmp(kind, "correction") == 0)     /* functions/remap.sql: a correction moves the projection */
            return cv_yaml_fail(doc, cv_yaml_get(r, "kind"), err, errlen, "kind 'correction' is reserved for "
                                "the events of civibusctl remap (docs/schema.md, Corrections)");
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
    if (s_load(self, source, err, errlen) < 0) {
        cv_mapping_destroy(&self);
        return NULL;
    }
    /* the default zone is a guess about the source: say so, once per loaded mapping
       (a mapping that fails to load says its error instead) */
    if (!cv_yaml_get(doc->root, "timezone"))
        cv_warn("mapping", "mapping %s: no 'timezone:'; dates without an offset are read as Europe/Paris",
                doc->file);
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
