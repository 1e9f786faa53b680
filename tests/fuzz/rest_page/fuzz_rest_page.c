/*  fuzz_rest_page — a page a REST source answers, read as the REST driver
    reads it (adapters/drivers/rest/cv_rest.c, s_on_page): the body parsed
    by jansson with JSON_ALLOW_NUL, the record list found at records_path
    (cv_rest_config_json_path), each record serialised for the spool, its
    cursor read at cursor_field (cv_rest_cursor_from_json) and compared
    (cv_rest_cursor_cmp), the since value sent back (cv_rest_cursor_since),
    the next page token at next_token_path, and the positions kept in the
    spool (cv_rest_cursor_position_since / _token / _parse). s_on_page
    itself needs a client and a spool; these are the functions it calls,
    in its order, on the same values.

    Input: one byte of options (since or token mode; the overlap: 0, 2 s,
    1 h or the most the config allows, 31 days; which records_path; which
    cursor_field), a path read from the input up to its first newline when
    the options ask for one, then the body.
    Checked:
      - cursor comparison is antisymmetric, and an invalid cursor is below
        every valid one;
      - the since value, read back, is the cursor minus the overlap (for a
        date, the day that holds that instant; for an integer within the
        overlap of the lowest one, the lowest), never later than the
        cursor: no record of the overlap is skipped;
      - a saved position parses back to the same cursor or token. */
#include "fuzz_util.h"

#include <inttypes.h>
#include <jansson.h>

#include "drivers/rest/cv_rest.h"

static const char *const s_lists[] = { "", "demandes", "data.items", NULL };
static const char *const s_fields[] = { "maj", "meta.updated", "0", NULL };
static const int64_t s_overlaps[] = { 0, 2, 3600, 86400 * 31 };   /* the config allows 0 to 31 days */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static int s_sign(int v)
{
    return (v > 0) - (v < 0);
}

static void s_since(const cv_rest_cursor_t *c, int64_t overlap)
{
    char out[128];
    cv_rest_cursor_since(c, overlap, out, sizeof out);
    if (!c->valid) {
        fuzz_check(out[0] == '\0', "since of an invalid cursor: '%s'", out);
        return;
    }
    if (c->is_int) {
        char *end;
        long long v = strtoll(out, &end, 10);
        int64_t want;
        if (__builtin_sub_overflow(c->number, overlap, &want))
            want = INT64_MIN;                   /* the lowest integer, not an overflow */
        fuzz_check(*end == '\0' && v == want, "since '%s' of %" PRId64 " - %" PRId64, out, c->number, overlap);
        return;
    }
    /* years 1 to 9999 only are written back as dates */
    if (c->number - overlap + c->offset < -62135596800 + 86400 || c->number - overlap > 253402300799 - 86400)
        return;
    cv_rest_cursor_t back;
    fuzz_check(cv_rest_cursor_from_text(out, false, &back), "own since value '%s' (from '%s') refused", out,
               c->text);
    int64_t want = c->number - overlap;
    if (c->date_only)
        fuzz_check(back.number <= want && back.number > want - 86400, "since '%s' of '%s'", out, c->text);
    else if (overlap > 0)
        fuzz_check(back.number == want, "since '%s' is %" PRId64 ", not %" PRId64, out, back.number, want);
    fuzz_check(cv_rest_cursor_cmp(&back, c) <= 0, "since '%s' after the cursor '%s'", out, c->text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t opt = fuzz_take_byte(&data, &size);
    bool since = opt & 1;
    int64_t overlap = s_overlaps[(opt >> 1) & 3];
    const char *list_path = s_lists[(opt >> 3) & 3], *field = s_fields[(opt >> 5) & 3];
    char *own = NULL;
    if (!list_path || !field) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t n = nl ? (size_t) (nl - data) : 0;
        own = fuzz_strndup(data, n);
        data += nl ? n + 1 : 0;
        size -= nl ? n + 1 : 0;
        if (!list_path)
            list_path = own;
        if (!field)
            field = own;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *) data, size, JSON_ALLOW_NUL, &jerr);
    json_t *list = root ? cv_rest_config_json_path(root, list_path) : NULL;
    fuzz_check(!root || list_path[0] || list == root, "the empty path is not the body");
    if (json_is_array(list)) {
        cv_rest_cursor_t max = { 0 }, prev = { 0 }, value;
        for (size_t i = 0; i < json_array_size(list); i++) {
            json_t *record = json_array_get(list, i);
            char *text = json_dumps(record, JSON_COMPACT | JSON_ENCODE_ANY);
            fuzz_check(text != NULL, "record %zu cannot be serialised", i);
            free(text);
            if (!since)
                continue;
            bool ok = cv_rest_cursor_from_json(cv_rest_config_json_path(record, field), &value);
            fuzz_check(ok == value.valid, "valid %d returned %d", value.valid, ok);
            if (!ok)
                continue;
            fuzz_check(s_sign(cv_rest_cursor_cmp(&value, &prev)) == -s_sign(cv_rest_cursor_cmp(&prev, &value)),
                       "comparison of '%s' and '%s' not antisymmetric", value.text, prev.text);
            cv_rest_cursor_t none = { 0 };
            fuzz_check(cv_rest_cursor_cmp(&none, &value) < 0, "'%s' not above an invalid cursor", value.text);
            prev = value;
            if (cv_rest_cursor_cmp(&value, &max) > 0)
                max = value;
            s_since(&value, overlap);
        }
        if (since && max.valid) {
            char *pos = cv_rest_cursor_position_since(&max);
            fuzz_check(pos != NULL, "no position for '%s'", max.text);
            cv_rest_cursor_t back;
            char *token = NULL;
            fuzz_check(cv_rest_cursor_position_parse(pos, CV_REST_SINCE, &token, &back) == 0,
                       "own position %s refused", pos);
            fuzz_check(cv_rest_cursor_cmp(&back, &max) == 0, "position %s is another cursor", pos);
            free(pos);
        }
        if (!since) {
            json_t *next = cv_rest_config_json_path(root, "next");
            char num[64];
            const char *token = NULL;
            if (json_is_string(next) && json_string_length(next) > 0)
                token = json_string_value(next);
            else if (json_is_integer(next)) {
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(next));
                token = num;
            }
            if (token) {
                char *pos = cv_rest_cursor_position_token(token), *back = NULL;
                fuzz_check(pos != NULL, "no position for a token");
                fuzz_check(cv_rest_cursor_position_parse(pos, CV_REST_TOKEN, &back, &(cv_rest_cursor_t) { 0 }) == 0
                           && strcmp(back, token) == 0, "own token position %s refused", pos);
                free(back);
                free(pos);
            }
        }
    }
    json_decref(root);
    /* a saved position, as the spool gives it back after a restart */
    char *text = fuzz_strndup(data, size), *token = NULL;
    cv_rest_cursor_t c;
    if (cv_rest_cursor_position_parse(text, CV_REST_SINCE, &token, &c) == 0)
        s_since(&c, overlap);
    if (cv_rest_cursor_position_parse(text, CV_REST_TOKEN, &token, &c) == 0)
        free(token);
    free(text);
    free(own);
    return 0;
}
