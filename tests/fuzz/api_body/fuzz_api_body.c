/*  fuzz_api_body — the bodies civibus-api reads: an Open311 POST's fields
    (api_open311.c, cv_api_o311_post_fields: an application/x-www-form-
    urlencoded form or a JSON object, after the Content-Type), after the
    server's own check that a body is UTF-8 (cv_api_utf8_valid); and the
    compaction of JSON text (api_util.c, cv_api_json_compact) the timeline
    applies to what PostgreSQL builds from stored records.

    Input: one byte picks the Content-Type (JSON, a form, a form with a
    charset, none, text/plain), the rest is the body. Checked:
      - the fields are a JSON object, or NULL with a reason; from a form,
        every key is non-empty and every key and value valid UTF-8 text;
        from JSON, every value a string or a number;
      - compacting JSON text gives at most as many bytes, and the same JSON
        value. */
#include "fuzz_util.h"

#include <jansson.h>

#include "api_handler.h"
#include "api_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = { "application/json", "application/x-www-form-urlencoded",
                                         "application/x-www-form-urlencoded; charset=UTF-8", NULL, "text/plain",
                                         "application/json; charset=utf-8", NULL, NULL };
    const char *ct = types[fuzz_take_byte(&data, &size) & 7];
    const char *body = (const char *) data;
    if (cv_api_utf8_valid(body, size, false)) {        /* the server refuses any other body */
        const char *why = NULL;
        json_t *f = cv_api_o311_post_fields(ct, size ? body : NULL, size, &why);
        if (!f) {
            fuzz_check(why && *why, "no fields and no reason");
        } else {
            fuzz_check(json_is_object(f), "fields that are not an object");
            bool form = ct && strncmp(ct, "application/x-www-form-urlencoded", 33) == 0;
            const char *k;
            json_t *v;
            json_object_foreach(f, k, v) {
                if (form) {
                    fuzz_check(*k && cv_api_utf8_valid(k, strlen(k), true), "a form key that is not text");
                    fuzz_check(json_is_string(v) && cv_api_utf8_valid(json_string_value(v), json_string_length(v),
                                                                      true), "a form value that is not text");
                } else {
                    fuzz_check(json_is_string(v) || json_is_number(v), "field '%s' is neither text nor number", k);
                }
            }
            json_decref(f);
        }
    }
    json_t *want = json_loadb(body, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (want) {
        char *dst = malloc(size + 1);
        if (!dst)
            abort();
        size_t n = cv_api_json_compact(dst, body, size);
        fuzz_check(n <= size && dst[n] == '\0', "compact: %zu bytes from %zu", n, size);
        json_t *got = json_loadb(dst, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        fuzz_check(got && json_equal(got, want), "compacted JSON is another value");
        json_decref(got);
        free(dst);
        json_decref(want);
    }
    return 0;
}
