/*  mapping — turns a source's raw record into a canonical event.

    One YAML file per source (docs/mapping.md) says, for each record kind,
    where each canonical field comes from: a field path, a constant, a
    value map, a date format and time zone, whether it is required, and how
    the event id is built. The hub loads every source's mapping at start-up;
    a bad line stops start-up with "file:line: reason".

    cv_mapping_apply never puts a field's value in reason or detail (they
    end up in logs and dead letters): it names the field path only. */
#ifndef CV_MAPPING_H
#define CV_MAPPING_H

#include <jansson.h>
#include <stddef.h>

typedef struct cv_mapping cv_mapping_t;

/* Loads path; `source` is the source name the hub config gives it (the
   file's own `source:` key, if any, must agree). */
cv_mapping_t *cv_mapping_load(const char *path, const char *source, char *err, size_t errlen);
void cv_mapping_destroy(cv_mapping_t **self_p);

/* Maps one raw record (a JSON object). On success returns 0 and a new
   canonical event in *event_out (caller owns it). On failure returns -1,
   reason gets a short code (missing_field, bad_type, bad_date,
   unmapped_value, no_rule, invalid_event) and detail a sentence naming the
   field path. */
int cv_mapping_apply(const cv_mapping_t *self, const json_t *record, json_t **event_out,
                     char *reason, size_t reason_len, char *detail, size_t detail_len);

/* Same, for a caller that already hashed the record: record_hash is
   cv_hash_json(record) (used by `hash: record` and the default event id),
   or NULL to have it computed when needed. Saves hashing a record twice. */
int cv_mapping_apply_hashed(const cv_mapping_t *self, const json_t *record, const char *record_hash,
                            json_t **event_out, char *reason, size_t reason_len,
                            char *detail, size_t detail_len);

const char *cv_mapping_source(const cv_mapping_t *self);

#endif
