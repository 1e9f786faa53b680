/*  fuzz_filedrop_text — the file drop's text layer
    (adapters/drivers/filedrop/cv_filedrop_text.c): encodings, the blanks
    trimmed around values, the values made from them; and the position
    text the driver keeps in the spool (cv_filedrop_position.c), which it
    reads back after a restart.

    Input: any bytes, read by each function in turn. Checked:
      - cv_filedrop_text_utf8_seq and the API's strict UTF-8 check
        (api/api_util.c, cv_api_utf8_valid) agree on whether the bytes are
        UTF-8 without NUL, and cv_filedrop_text_buf_decode in UTF-8 accepts
        exactly those, copying them unchanged;
      - decoding Windows-1252 and ISO-8859-15 fails exactly on NUL and on
        the bytes the encoding leaves undefined (at the first one), and
        otherwise gives valid UTF-8 of one to three bytes per byte;
      - trimming UTF-8 leaves no blank at either end and stays inside the
        text; a value made from it follows the empty rule;
      - a position that decodes encodes to a text that decodes the same. */
#include "fuzz_util.h"

#include <jansson.h>

#include "api_util.h"
#include "cv_text.h"
#include "drivers/filedrop/cv_filedrop.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static bool s_utf8_by_seq(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int len = s[i] ? cv_filedrop_text_utf8_seq(s + i, n - i) : -1;
        if (len <= 0)
            return false;
        fuzz_check((size_t) len <= n - i, "a sequence of %d past the end", len);
        i += (size_t) len;
    }
    return true;
}

static void s_single_byte(cv_filedrop_encoding_t enc, const uint8_t *data, size_t size)
{
    cv_filedrop_buf_t b = { 0 };
    size_t bad;
    int rc = cv_filedrop_text_buf_decode(&b, enc, (const char *) data, size, &bad);
    size_t first = size;
    for (size_t i = 0; i < size && first == size; i++)
        if (data[i] == 0 || cv_filedrop_text_codepoint(enc, data[i]) < 0)
            first = i;
    if (first < size) {
        fuzz_check(rc < 0 && bad == first, "byte %zu is not valid in %s: rc %d, bad %zu", first,
                   cv_filedrop_text_encoding_name(enc), rc, bad);
    } else {
        fuzz_check(rc == 0, "a valid %s text refused", cv_filedrop_text_encoding_name(enc));
        fuzz_check(b.len >= size && b.len <= size * 3, "%zu bytes from %zu", b.len, size);
        fuzz_check(cv_api_utf8_valid(b.data ? b.data : "", b.len, false), "%s gave invalid UTF-8",
                   cv_filedrop_text_encoding_name(enc));
    }
    cv_buf_free(&b);
}

static void s_position(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    cv_filedrop_entry_t *files = NULL, *again = NULL;
    size_t n = 0, m = 0;
    if (cv_filedrop_position_decode(text, &files, &n) == 0) {
        char *enc = cv_filedrop_position_encode(files, n);
        fuzz_check(enc != NULL, "a decoded position cannot be encoded");
        fuzz_check(cv_filedrop_position_decode(enc, &again, &m) == 0, "own position refused: %s", enc);
        fuzz_check(m == n, "%zu files, %zu back", n, m);
        for (size_t i = 0; i < n; i++)
            fuzz_check(strcmp(files[i].name, again[i].name) == 0 && strcmp(files[i].sha, again[i].sha) == 0
                       && files[i].done == again[i].done && files[i].total == again[i].total
                       && files[i].first == again[i].first && files[i].last == again[i].last,
                       "file %zu differs back", i);
        cv_filedrop_position_entries_free(&again, &m);
        free(enc);
        cv_filedrop_position_entries_free(&files, &n);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool utf8 = s_utf8_by_seq(data, size);
    bool api = cv_api_utf8_valid((const char *) data, size, false);
    fuzz_check(utf8 == api, "UTF-8: the file drop says %d, the API %d", utf8, api);

    cv_filedrop_buf_t b = { 0 };
    size_t bad;
    int rc = cv_filedrop_text_buf_decode(&b, CV_FILEDROP_ENC_UTF8, (const char *) data, size, &bad);
    fuzz_check((rc == 0) == utf8, "decode %d, valid %d", rc, utf8);
    if (rc == 0)
        fuzz_check(b.len == size && (size == 0 || memcmp(b.data, data, size) == 0), "UTF-8 changed");
    else
        fuzz_check(bad < size, "bad offset %zu of %zu", bad, size);
    cv_buf_free(&b);

    s_single_byte(CV_FILEDROP_ENC_CP1252, data, size);
    s_single_byte(CV_FILEDROP_ENC_LATIN9, data, size);

    if (utf8) {
        const char *p = (const char *) data;
        size_t n = size;
        cv_filedrop_text_trim(&p, &n);
        fuzz_check(p >= (const char *) data && p + n <= (const char *) data + size, "trim left the text");
        fuzz_check(n == 0 || (cv_text_blank(p, n, true) == 0 && cv_text_blank(p, n, false) == 0),
                   "a blank left after trimming");
        for (int e = CV_FILEDROP_EMPTY_OMIT; e <= CV_FILEDROP_EMPTY_KEEP; e++) {
            cv_filedrop_values_t v = { .trim = true, .empty = (cv_filedrop_empty_t) e };
            json_t *out = NULL;
            fuzz_check(cv_filedrop_text_value_make((const char *) data, size, &v, &out) == 0, "value refused");
            if (n == 0)
                fuzz_check(e == CV_FILEDROP_EMPTY_OMIT ? !out : e == CV_FILEDROP_EMPTY_NULL ? json_is_null(out)
                           : json_is_string(out) && json_string_length(out) == 0, "empty rule %d", e);
            else
                fuzz_check(json_is_string(out) && json_string_length(out) == n
                           && memcmp(json_string_value(out), p, n) == 0, "value differs from the trimmed text");
            json_decref(out);
        }
    }
    s_position(data, size);
    return 0;
}
