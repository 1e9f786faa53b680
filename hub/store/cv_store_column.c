/*  cv_store_column — cv_ingest's parameters as PostgreSQL binary arrays.

    Each parameter of cv_ingest is a one-dimensional array in PostgreSQL's
    binary format: a 20-byte header (dimensions, null flag, element type,
    length, lower bound), then per element a big-endian length (-1: NULL)
    and its bytes. Strings go as they are, NUL bytes included: PostgreSQL
    refuses those (a data error, isolated by cv_store.c). The elements of an
    event's own fields are written once per event by cv_store_item.c, on
    the socket thread; the writer only copies them (cv_store__col_fields). */
#include "cv_store_int.h"

#include <arpa/inet.h>
#include <string.h>

#include "cv_json.h"

const char *const cv_store__fields[] = {
    "event_id", "kind", "source_record_id", "request_ref", "service", "category", "channel",
    "status", "source_status", "source_channel", "occurred_at", "due_at",
    "summary", "extra", "requested_at", "location", "outcome"
};

void cv_store__buf_json(cv_buf_t *b, const json_t *value)
{
    size_t len = b->len;
    if (!value || cv_json_to_buf(value, false, b) != 0) {
        b->len = len;
        cv_buf_add(b, "null", 4);
    }
}

static void s_put32(cv_buf_t *b, uint32_t v)
{
    uint32_t be = htonl(v);
    cv_buf_add(b, &be, sizeof be);
}

/* Appends one array element for a JSON value (see s_col_json): 1 when it
   is NULL. A value cv_json cannot write gives the text null when
   null_on_error, else -1 (and b as it was). */
int cv_store__elem_json(cv_buf_t *b, const json_t *value, bool as_json, bool null_on_error)
{
    if (!value || json_is_null(value)) {
        s_put32(b, UINT32_MAX);
        return 1;
    }
    if (json_is_string(value) && !as_json) {
        s_put32(b, (uint32_t) json_string_length(value));
        cv_buf_add(b, json_string_value(value), json_string_length(value));
        return 0;
    }
    size_t at = b->len;
    s_put32(b, 0);
    if (null_on_error)
        cv_store__buf_json(b, value);
    else if (cv_json_to_buf(value, false, b) != 0) {
        b->len = at;
        return -1;
    }
    if (!b->failed) {
        uint32_t be = htonl((uint32_t) (b->len - at - sizeof be));
        memcpy(b->data + at, &be, sizeof be);
    }
    return 0;
}

void cv_store__col_start(cv_store__column_t *c)
{
    static const char header[20];
    c->data.len = 0;
    c->count = 0;
    c->has_null = false;
    cv_buf_add(&c->data, header, sizeof header);
}

void cv_store__col_text(cv_store__column_t *c, const char *text, size_t len)
{
    if (!text) {
        s_put32(&c->data, UINT32_MAX);    /* -1: NULL */
        c->has_null = true;
    } else {
        s_put32(&c->data, (uint32_t) len);
        cv_buf_add(&c->data, text, len);
    }
    c->count++;
}

void cv_store__col_int(cv_store__column_t *c, uint32_t v)
{
    s_put32(&c->data, 4);
    s_put32(&c->data, v);
    c->count++;
}

void cv_store__col_finish(cv_store__column_t *c, uint32_t element_oid)
{
    if (c->data.failed)
        return;
    uint32_t header[5] = { htonl(1), htonl(c->has_null), htonl(element_oid), htonl(c->count), htonl(1) };
    memcpy(c->data.data, header, sizeof header);
}

/* A JSON value as a text element: strings as they are (unless as_json),
   anything else as compact JSON text; null or absent is NULL. */
void cv_store__col_json(cv_store__column_t *c, const json_t *value, bool as_json)
{
    c->has_null |= cv_store__elem_json(&c->data, value, as_json, true) == 1;
    c->count++;
}

/* Copies the prepared elements of an item's fields (cv_store_item_prepare)
   into their columns, P_EVENT_ID .. P_EXTRA. */
void cv_store__col_fields(cv_store__column_t *p, const cv_store_item_t *it)
{
    const char *at = it->fields;
    for (int f = P_EVENT_ID; f < P_CITIZEN; f++) {
        uint32_t len;
        memcpy(&len, at, sizeof len);
        len = ntohl(len);
        size_t size = sizeof len + (len == UINT32_MAX ? 0 : len);
        cv_buf_add(&p[f].data, at, size);
        p[f].has_null |= len == UINT32_MAX;
        p[f].count++;
        at += size;
    }
}
