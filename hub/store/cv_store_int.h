/*  cv_store_int — what the files of the store share (not a public header):
    cv_ingest's parameter layout and the array encoder (cv_store_column.c). */
#ifndef CV_STORE_INT_H
#define CV_STORE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cv_buf.h"
#include "cv_store.h"

/* One cv_ingest parameter: a one-dimensional array in PostgreSQL's binary
   format: a 20-byte header, then per element a length (-1: NULL) and bytes. */
typedef struct {
    cv_buf_t data;
    uint32_t count;
    bool has_null;
} cv_store__column_t;

/* cv_ingest's parameters, in order (schemas/sql/functions/ingest.sql). */
enum {
    P_IDX, P_SOURCE, P_HASH, P_CITIZEN_KEY, P_CODES,
    P_EVENT_ID, P_KIND, P_RECORD_ID, P_REQUEST_REF, P_SERVICE, P_CATEGORY, P_CHANNEL,
    P_STATUS, P_SOURCE_STATUS, P_SOURCE_CHANNEL, P_OCCURRED_AT, P_DUE_AT,
    P_SUMMARY, P_EXTRA, P_REQUESTED_AT, P_LOCATION, P_OUTCOME, P_CITIZEN, P_RAW, N_PARAMS
};

/* The event's own fields, for P_EVENT_ID .. P_CITIZEN. The SQL text puts
   P_CITIZEN and P_RAW where cv_ingest takes them, before the three fields
   of schema version 2 (cv_store.c, s_ingest_sql). */
extern const char *const cv_store__fields[];

/* A JSON value as compact JSON text; null when it has none. */
void cv_store__buf_json(cv_buf_t *b, const json_t *value);
/* One array element for a JSON value: strings as they are (unless as_json),
   anything else as compact JSON text; 1 when NULL. A value cv_json cannot
   write gives the text null when null_on_error, else -1 (b as it was). */
int cv_store__elem_json(cv_buf_t *b, const json_t *value, bool as_json, bool null_on_error);
void cv_store__col_start(cv_store__column_t *c);
void cv_store__col_text(cv_store__column_t *c, const char *text, size_t len);   /* text NULL: NULL */
void cv_store__col_int(cv_store__column_t *c, uint32_t v);
void cv_store__col_finish(cv_store__column_t *c, uint32_t element_oid);
void cv_store__col_json(cv_store__column_t *c, const json_t *value, bool as_json);
/* Copies an item's prepared field elements into params[P_EVENT_ID .. P_EXTRA]. */
void cv_store__col_fields(cv_store__column_t *params, const cv_store_item_t *it);

/* cv_store_item.c: the citizen key of an event, its source_citizen_id else
   "sha256:" + the block's hash (written into hashkey); NULL without a block. */
const char *cv_store__citizen_key(const json_t *event, char hashkey[80], size_t *len);

#endif
