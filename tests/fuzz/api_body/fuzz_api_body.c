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
        value;
      - a JSON object's "attachments" (api_attachments.c, POST /v1/requests):
        taken out of the body; accepted files are within the caps, of a type
        kept, their names cleaned (no '/', '\\', control characters, at most
        255 bytes of UTF-8 text); a refusal has a reason and keeps nothing;
      - the body as a sender's file name: its cleaned form as above, and the
        Content-Disposition of it printable ASCII (a header: no CR, LF). */
#include "fuzz_util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api_attachments.h"
#include "cv_attach.h"
#include "api_handler.h"
#include "api_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

/* A cleaned name: NULL, or 1 to 255 bytes of UTF-8 text without a folder. */
static void s_check_name(const char *name)
{
    if (!name)
        return;
    size_t n = strlen(name);
    fuzz_check(n > 0 && n <= 255, "a cleaned name of %zu bytes", n);
    fuzz_check(cv_api_utf8_valid(name, n, true), "a cleaned name that is not text");
    fuzz_check(!strchr(name, '/') && !strchr(name, '\\') && !strchr(name, '\t'), "a cleaned name with a folder");
    fuzz_check(name[0] != '.' && name[0] != ' ' && name[n - 1] != ' ', "a cleaned name with leading dots");
    fuzz_check(!strstr(name, "\xe2\x80\xae") && !strstr(name, "\xc2\x85"), "a bidi or C1 control left in a name");
}

static void s_attachments(const char *body, size_t size)
{
    static const cv_api_config_t cfg = { .max_body_bytes = 65536, .attach_max_bytes = 64, .attach_max_files = 3,
                                         .attach_max_total = 100, .attach_body_bytes = 100000 };
    json_t *obj = json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(obj)) {
        cv_api_attachments_t a;
        char why[256] = "";
        int rc = cv_api_attachments_read(obj, &cfg, &a, why, sizeof why);
        fuzz_check(!json_object_get(obj, "attachments"), "attachments left in the body");
        if (rc != 0) {
            fuzz_check(*why && a.n == 0, "a refusal without a reason, or keeping files");
        } else {
            size_t total = 0;
            fuzz_check(a.n <= 3, "%zu files", a.n);
            for (size_t i = 0; i < a.n; i++) {
                fuzz_check(a.items[i].len > 0 && a.items[i].len <= 64, "a file of %zu bytes", a.items[i].len);
                fuzz_check(a.items[i].mime && a.items[i].mime == cv_attach_sniff(a.items[i].data, a.items[i].len),
                           "a file of a type not kept");
                s_check_name(a.items[i].name);
                total += a.items[i].len;
            }
            fuzz_check(total <= 100, "%zu bytes in all", total);
        }
        cv_api_attachments_free(&a);
    }
    json_decref(obj);
    if (size < 1024 && cv_api_utf8_valid(body, size, false)) {
        char *name = strndup(body, size);
        char *clean = cv_api_attachment_name_clean(name);
        s_check_name(clean);
        char *d = cv_api_attachment_disposition(clean,
                                                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                                                "application/pdf");
        fuzz_check(d != NULL, "no disposition");
        for (const char *p = d; *p; p++)
            fuzz_check(*p >= 0x20 && *p < 0x7f, "a disposition byte 0x%02x", (unsigned char) *p);
        free(d);
        free(clean);
        free(name);
    }
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
    s_attachments(body, size);
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
