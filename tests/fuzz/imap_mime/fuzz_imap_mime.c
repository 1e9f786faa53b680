/*  fuzz_imap_mime — a raw mail as the imap driver reads it
    (adapters/drivers/imap/cv_imap_mime.c, cv_imap_mime_record, as s_submit
    in cv_imap.c calls it), and the helpers it uses on header and body
    pieces: cv_imap_mime_decode_header (RFC 2047), cv_imap_mime_to_utf8
    (each accepted charset and an unknown one), cv_imap_mime_html_text,
    cv_imap_mime_date.

    Input: the mail's bytes (any: no header block, NULs, broken boundaries,
    nested multiparts, endless encoded words).
    Checked:
      - a record is always produced (an object, never NULL), and it
        serialises (every string valid UTF-8: jansson refuses others);
      - "body" is at most max_body_bytes (here 512) and valid UTF-8;
      - "automatic" is a boolean, and "automatic_reason" is there exactly
        when it is true;
      - every helper's output is valid UTF-8 without NUL; a date that is
        accepted has the form YYYY-MM-DDTHH:MM:SSZ. */
#include "fuzz_util.h"

#include <jansson.h>
#include <string.h>

#include "drivers/imap/cv_imap.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void s_check_utf8(const char *s)
{
    if (!s)
        return;
    json_t *j = json_string(s);        /* NULL when not valid UTF-8 */
    fuzz_check(j != NULL, "imap_mime");
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *) data;
    cv_imap_mime_opts_t opts = { .max_body_bytes = 512 };
    json_t *rec = cv_imap_mime_record(in, size, &opts);
    fuzz_check(rec != NULL && json_is_object(rec), "imap_mime");
    char *text = json_dumps(rec, JSON_COMPACT);
    fuzz_check(text != NULL, "imap_mime");
    free(text);
    const char *body = json_string_value(json_object_get(rec, "body"));
    if (body) {
        fuzz_check(strlen(body) <= 512, "imap_mime");
        s_check_utf8(body);
    }
    json_t *aut = json_object_get(rec, "automatic");
    fuzz_check(json_is_boolean(aut), "imap_mime");
    fuzz_check(json_is_true(aut) == (json_object_get(rec, "automatic_reason") != NULL), "imap_mime");
    json_decref(rec);

    size_t cut = size < 2048 ? size : 2048;
    char *h = cv_imap_mime_decode_header(in, cut);
    fuzz_check(h != NULL, "imap_mime");
    s_check_utf8(h);
    free(h);
    static const char *const charsets[] = { "utf-8", "iso-8859-1", "ISO-8859-15", "windows-1252", "x-unknown" };
    for (size_t i = 0; i < sizeof charsets / sizeof *charsets; i++) {
        char *t = cv_imap_mime_to_utf8(charsets[i], in, cut, NULL);
        fuzz_check(t != NULL, "imap_mime");
        s_check_utf8(t);
        free(t);
    }
    char *plain = cv_imap_mime_html_text(in, size);
    fuzz_check(plain != NULL, "imap_mime");
    free(plain);
    char z[64];
    size_t zl = size < sizeof z - 1 ? size : sizeof z - 1;
    memcpy(z, in, zl);
    z[zl] = '\0';
    char iso[21];
    if (cv_imap_mime_date(z, iso))
        fuzz_check(strlen(iso) == 20 && iso[4] == '-' && iso[10] == 'T' && iso[19] == 'Z', "imap_mime");
    return 0;
}
