/*  model — the canonical citizen-request event, schema version 2.

    Every source's records become events of this one shape
    (schemas/v2/event.schema.json; example: schemas/v2/example-event.json):

        schema_version, source, event_id, kind, source_record_id,
        request_ref, service, category, channel, status, source_status,
        source_channel, occurred_at, due_at, summary, requested_at,
        location { address, postcode, city, lat, lon },
        outcome { code, reason, related_ref },
        citizen { source_citizen_id, family_name, birth_name, given_names,
                  birth_date, email, phone,
                  address { line1, line2, postcode, city, country } },
        extra { the source's remaining fields }

    `channel` is how the request reached the city, `status` where the
    request stands in its lifecycle, `outcome.code` how a closed one
    ended; all three are closed lists, kept here and in the schema (a unit
    test checks they agree). Version 1 events (without requested_at,
    location and outcome) are accepted as they are. Which status may follow
    which is the store's business, not this module's.

    cv_model_validate is the last gate before an event is stored. Its
    detail names the offending field, never its value. Bounds are in bytes
    (the schema's maxLength, in characters, is never stricter). */
#ifndef CV_MODEL_H
#define CV_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CV_MODEL_SCHEMA_VERSION 2
#define CV_MODEL_SOURCE_MAX 63     /* [a-z0-9_-]{1,63}, as the hub config */
#define CV_MODEL_ID_MAX 200        /* event_id, source_record_id, request_ref, source_citizen_id */
#define CV_MODEL_LABEL_MAX 200     /* kind, service, category, source_*, citizen fields */
#define CV_MODEL_SUMMARY_MAX 4000
#define CV_MODEL_YEAR_MIN 1800     /* dates outside these years are typing errors */
#define CV_MODEL_YEAR_MAX 2999
#define CV_MODEL_EXTRA_MAX_NODES 10000
#define CV_MODEL_EXTRA_MAX_DEPTH 16

/* NULL-terminated lists, in the schema's order. */
extern const char *const cv_model_statuses[];
extern const char *const cv_model_channels[];
extern const char *const cv_model_outcomes[];
extern const char *const cv_model_required[];  /* required top-level fields */

bool cv_model_status_valid(const char *status);
bool cv_model_channel_valid(const char *channel);
bool cv_model_outcome_valid(const char *outcome);

/* "YYYY-MM-DDTHH:MM:SSZ" naming a real instant within the year bounds. */
bool cv_model_utc_valid(const char *text);
/* "YYYY-MM-DD" naming a real day within the year bounds. */
bool cv_model_date_valid(const char *text);

/* 0 if event is a valid canonical event, else -1 with a sentence naming
   the field in detail. Unknown fields are refused. */
int cv_model_validate(const json_t *event, char *detail, size_t len);

#endif
