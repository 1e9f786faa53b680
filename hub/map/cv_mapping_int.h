/*  cv_mapping_int — the compiled form of a mapping, shared by its loader
    (cv_mapping_load.c) and its applier (cv_mapping.c). Not a public header:
    the rest of the hub sees cv_mapping.h only. */
#ifndef CV_MAPPING_INT_H
#define CV_MAPPING_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "cv_mapping.h"
#include "cv_model.h"
#include "cv_text.h"
#include "cv_tz.h"
#include "cv_yaml.h"

#define MAP_PATH_MAX 200           /* characters of a path as written */
#define MAP_PATH_SEGS 16
#define MAP_SCRATCH (CV_MODEL_SUMMARY_MAX + 512)
#define MAP_DATE_MAX 64
#define MAP_NUM 40

/* ---- canonical fields a rule can fill ------------------------------------ */

typedef enum {
    T_ID, T_LABEL, T_TEXT, T_SUMMARY, T_STATUS, T_CHANNEL, T_OUTCOME, T_UTC, T_DATE,
    T_LAT, T_LON                   /* decimal degrees, a number or a text ("48,85" too) */
} value_type_t;
typedef enum { G_EVENT, G_LOCATION, G_OUTCOME, G_CITIZEN, G_ADDRESS } group_t;

enum {
    TG_EVENT_ID, TG_RECORD_ID, TG_REQUEST_REF, TG_SERVICE, TG_CATEGORY, TG_CHANNEL,
    TG_STATUS, TG_OCCURRED_AT, TG_DUE_AT, TG_SUMMARY, TG_REQUESTED_AT,
    TG_LOC_ADDRESS, TG_LOC_POSTCODE, TG_LOC_CITY, TG_LOC_LAT, TG_LOC_LON,
    TG_OUTCOME, TG_OUTCOME_REASON, TG_OUTCOME_REF,
    TG_CITIZEN_ID,             /* the citizen's targets come last (cv_mapping.c) */ TG_FAMILY_NAME, TG_BIRTH_NAME, TG_GIVEN_NAMES, TG_BIRTH_DATE,
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

/* The canonical fields, indexed by TG_* (cv_mapping_load.c). */
extern const target_t cv_mapping__targets[TG_COUNT];

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

static inline int s_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static inline bool s_in_list(const char *const *list, view_t v)
{
    for (size_t i = 0; list[i]; i++)
        if (s_cmp(list[i], strlen(list[i]), v.p, v.n) == 0)
            return true;
    return false;
}

static inline const char *s_join_list(const char *const *list, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; list[i] && at < len; i++)
        at += (size_t) snprintf(buf + at, len - at, "%s%s", i ? ", " : "", list[i]);
    return buf;
}

static inline void s_trim(view_t *v)
{
    cv_text_trim(&v->p, &v->n);
}

/* Cuts v to at most max bytes, on a character boundary. */
static inline void s_cut(view_t *v, size_t max)
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
static inline void s_fold(char *p, size_t n, bool upper)
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

/* A duration "<N> <unit>" or "<N>" with the spec's unit: 0 with the count
   and unit (d w m y), or -1 (cv_mapping_load.c). */
int cv_mapping__duration(const char *p, size_t n, char dflt_unit, long *count, char *unit);

#endif
