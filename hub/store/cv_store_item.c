/*  cv_store_item — an event made ready for the writer, on the socket thread.

    cv_store_item_prepare encodes the event's fields as cv_ingest's array
    elements and serialises its citizen block once, here rather than on the
    writer thread, which only copies them into the batch's arrays
    (cv_store_column.c). The citizen key is the block's source_citizen_id,
    else "sha256:" + the hash of its canonical JSON. */
#include "cv_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_hash.h"
#include "cv_json.h"

/* The citizen key of an event: its source_citizen_id, else "sha256:" +
   the hash of the block's canonical JSON (written into hashkey). NULL when
   the event has no citizen block. */
const char *cv_store__citizen_key(const json_t *event, char hashkey[80], size_t *len)
{
    const json_t *citizen = json_object_get(event, "citizen");
    if (!json_is_object(citizen))
        return NULL;
    const json_t *id = json_object_get(citizen, "source_citizen_id");
    if (json_is_string(id) && json_string_length(id) > 0) {
        *len = json_string_length(id);
        return json_string_value(id);
    }
    char hash[CV_HASH_HEX_LEN + 1];
    if (cv_hash_json(citizen, hash) < 0)
        return NULL;
    *len = (size_t) snprintf(hashkey, 80, "sha256:%s", hash);
    return hashkey;
}

static char *s_dump_value(const json_t *value, size_t *len)
{
    *len = 0;
    if (!value || json_is_null(value))
        return NULL;
    cv_buf_t b = { 0 };
    if (cv_json_to_buf(value, false, &b) != 0) {
        cv_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

int cv_store_item_prepare(cv_store_item_t *it)
{
    cv_store_item_release(it);
    if (it->kind != CV_ITEM_EVENT || !json_is_object(it->event))
        return 0;
    char hashkey[80];
    size_t key_len = 0;
    const char *key = cv_store__citizen_key(it->event, hashkey, &key_len);
    if (key && key_len >= sizeof it->citizen_key)
        return 0;                          /* longer than the model allows: the store decides */
    const json_t *citizen = json_object_get(it->event, "citizen");
    it->citizen_json = s_dump_value(citizen, &it->citizen_json_len);
    cv_buf_t fields = { 0 };
    bool failed = citizen && !json_is_null(citizen) && !it->citizen_json;
    for (int f = P_EVENT_ID; f < P_CITIZEN && !failed; f++)
        failed = cv_store__elem_json(&fields, json_object_get(it->event, cv_store__fields[f - P_EVENT_ID]),
                             f == P_EXTRA, false) < 0;
    it->fields = fields.data;
    if (failed || fields.failed) {
        cv_store_item_release(it);
        return -1;
    }
    memcpy(it->citizen_key, key ? key : "", key ? key_len : 0);
    it->citizen_key[key ? key_len : 0] = '\0';
    it->prepared = true;
    return 0;
}

void cv_store_item_release(cv_store_item_t *it)
{
    free(it->citizen_json);
    free(it->fields);
    it->citizen_json = it->fields = NULL;
    it->citizen_json_len = 0;
    it->citizen_key[0] = '\0';
    it->prepared = false;
}
