/*  fuzz_mapping — a record through a mapping, as the hub's socket thread
    takes it (hub/receive/handle_event.c): the EVENT payload parsed by
    jansson without flags, refused unless an object, hashed (cv_hash_json,
    lib/cv_json.c's canonical form), mapped (cv_mapping_apply_hashed with
    the mappings of the city's adapters and of the unit tests, which use
    every kind of spec: paths, constants, value maps, dates in formats and
    zones, durations, joins, event-id construction), then prepared for the
    store (cv_store_item_prepare).

    Input: the first byte picks the mapping, the rest is the record.
    Checked, beyond the sanitizers:
      - a mapped event passes cv_model_validate (the hub's last gate);
      - mapping without the precomputed hash gives the same event or the
        same reason (cv_mapping_apply computes it itself);
      - a failure's reason is one of the documented codes, and neither
        reason nor detail quotes a value of the record (privacy: they go to
        logs and dead letters). Only values holding a control character are
        looked for: no field path of a mapping file holds one, so such a
        value in a detail can only have been copied from the record. */
#include "fuzz_util.h"

#include <jansson.h>

#include "cv_hash.h"
#include "map/cv_mapping.h"
#include "map/cv_model.h"
#include "store/cv_store.h"

static const char *const s_files[] = {
    "adapters/etat-civil/mapping.yaml", "adapters/urbanisme/mapping.yaml",
    "adapters/dechets/mapping.yaml", "adapters/bibliotheque/mapping.yaml",
    "tests/unit/data/mapping_specs.yaml", "tests/unit/data/mapping_urbanisme.yaml",
};
#define NFILES (sizeof s_files / sizeof *s_files)
static cv_mapping_t *s_maps[NFILES];

static const char *const s_reasons[] = {
    "missing_field", "bad_type", "bad_date", "unmapped_value", "no_rule", "invalid_event", NULL
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    for (size_t i = 0; i < NFILES; i++) {
        char path[4096], err[512];
        snprintf(path, sizeof path, "%s/%s", FUZZ_ROOT, s_files[i]);
        s_maps[i] = cv_mapping_load(path, NULL, err, sizeof err);
        if (!s_maps[i]) {
            fprintf(stderr, "fuzz_mapping: %s\n", err);
            exit(1);
        }
    }
    return 0;
}

/* A string value of the record (at any depth) found in text, when it holds
   a control character; NULL otherwise. */
static const char *s_leaked(const json_t *v, const char *text)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        bool control = false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char) s[i] < 0x20 && s[i] != 0)
                control = true;
        return control && n >= 4 && strlen(s) == n && strstr(text, s) ? s : NULL;
    }
    const char *key;
    size_t i;
    json_t *child;
    const char *found = NULL;
    if (json_is_object(v))
        json_object_foreach((json_t *) v, key, child)
            if (!found)
                found = s_leaked(child, text);
    if (json_is_array(v))
        json_array_foreach(v, i, child)
            if (!found)
                found = s_leaked(child, text);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const cv_mapping_t *map = s_maps[fuzz_take_byte(&data, &size) % NFILES];
    json_error_t jerr;
    json_t *record = json_loadb((const char *) data, size, 0, &jerr);
    if (!json_is_object(record)) {
        json_decref(record);
        return 0;
    }
    char hash[CV_HASH_HEX_LEN + 1];
    cv_hash_json(record, hash);
    char reason[48] = "", detail[256] = "", reason2[48] = "", detail2[256] = "", why[256];
    json_t *event = NULL, *event2 = NULL;
    int rc = cv_mapping_apply_hashed(map, record, hash, &event, reason, sizeof reason, detail, sizeof detail);
    int rc2 = cv_mapping_apply(map, record, &event2, reason2, sizeof reason2, detail2, sizeof detail2);
    fuzz_check(rc == rc2, "with the hash %d, without %d", rc, rc2);
    if (rc == 0) {
        fuzz_check(event && cv_model_validate(event, why, sizeof why) == 0, "invalid event: %s", why);
        fuzz_check(json_equal(event, event2), "the event depends on who hashed the record");
        cv_store_item_t it = { .kind = CV_ITEM_EVENT, .event = event, .record = record,
                               .raw = (const char *) data, .raw_len = size };
        snprintf(it.source, sizeof it.source, "%s", cv_mapping_source(map));
        memcpy(it.content_hash, hash, sizeof it.content_hash);
        if (cv_store_item_prepare(&it) == 0 && it.prepared)
            fuzz_check(it.fields != NULL, "prepared without fields");
        cv_store_item_release(&it);
    } else {
        fuzz_check(!event, "an event with a failure");
        fuzz_check(strcmp(reason, reason2) == 0 && strcmp(detail, detail2) == 0, "two reasons: %s, %s",
                   reason, reason2);
        bool known = false;
        for (const char *const *r = s_reasons; *r; r++)
            known = known || strcmp(*r, reason) == 0;
        fuzz_check(known, "reason '%s' is not a documented code", reason);
        const char *leak = s_leaked(record, detail);
        fuzz_check(!leak, "detail quotes a record value: %s", detail);
    }
    json_decref(event);
    json_decref(event2);
    json_decref(record);
    return 0;
}
