/*  fuzz_filedrop_csv — the file drop's CSV parser
    (adapters/drivers/filedrop/cv_filedrop_csv.c), as the driver runs it:
    cv_filedrop_csv_new with the options of a `driver:` section, the file
    fed with cv_filedrop_csv_feed, then cv_filedrop_csv_end.

    Input: two bytes of options (separator ; , tab |, quote " or none,
    header or three fixed column names, encoding UTF-8, Windows-1252 or
    ISO-8859-15, trim, the empty-value rule, a small or the default
    max_record_bytes), one byte for a chunk size, then the file.
    Checked:
      - the parser is push: the file fed at once and fed in chunks of 1 to
        32 bytes gives the same records (same lines, same indexes, equal
        JSON), the same verdict and the same error;
      - records come with indexes 1, 2, 3... and lines that do not go back;
        each is an object whose values are strings (or null, by the empty
        rule), valid UTF-8 whatever the file's encoding;
      - an error reads "line N: reason" and quotes no value: only errors
        the header lists, naming lines and columns. */
#include "fuzz_util.h"

#include <jansson.h>

#include "drivers/filedrop/cv_filedrop_csv.h"

typedef struct {
    json_t *records;          /* [[line, index, record], ...] */
    long last_line, last_index;
} out_t;

static int s_emit(void *arg, json_t *record, long line, long index)
{
    out_t *o = arg;
    fuzz_check(json_is_object(record), "a record that is not an object");
    fuzz_check(index == o->last_index + 1, "record %ld after %ld", index, o->last_index);
    fuzz_check(line >= 1 && line >= o->last_line, "record at line %ld after line %ld", line, o->last_line);
    const char *k;
    json_t *v;
    json_object_foreach(record, k, v)
        fuzz_check(json_is_string(v) || json_is_null(v), "column '%s' is not a string", k);
    o->last_line = line;
    o->last_index = index;
    json_array_append_new(o->records, json_pack("[I, I, o]", (json_int_t) line, (json_int_t) index, record));
    return 0;
}

typedef struct {
    int rc;
    char error[512];
    long count;
    json_t *records;
} run_t;

static const char *const s_columns[] = { "a", "b", "c" };

static run_t s_run(const cv_filedrop_csv_opts_t *opts, const uint8_t *data, size_t size, size_t chunk)
{
    out_t o = { .records = json_array() };
    run_t r = { .records = o.records };
    cv_filedrop_csv_t *p = cv_filedrop_csv_new(opts, s_emit, &o);
    if (!p)
        abort();
    r.rc = 0;
    for (size_t at = 0; at < size && r.rc == 0; at += chunk)
        r.rc = cv_filedrop_csv_feed(p, (const char *) data + at, size - at < chunk ? size - at : chunk);
    if (r.rc == 0)
        r.rc = cv_filedrop_csv_end(p);
    snprintf(r.error, sizeof r.error, "%s", cv_filedrop_csv_error(p) ? cv_filedrop_csv_error(p) : "");
    r.count = cv_filedrop_csv_records(p);
    cv_filedrop_csv_destroy(&p);
    return r;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t a = fuzz_take_byte(&data, &size), b = fuzz_take_byte(&data, &size);
    size_t chunk = fuzz_take_byte(&data, &size) % 32 + 1;
    static const char seps[] = { ';', ',', '\t', '|' };
    static const cv_filedrop_encoding_t encs[] = { CV_FILEDROP_ENC_UTF8, CV_FILEDROP_ENC_CP1252,
                                                   CV_FILEDROP_ENC_LATIN9, CV_FILEDROP_ENC_UTF8 };
    bool header = !(a & 8);
    cv_filedrop_csv_opts_t opts = {
        .separator = seps[a & 3],
        .quote = a & 4 ? 0 : '"',
        .header = header,
        .columns = header ? NULL : s_columns,
        .ncolumns = header ? 0 : 3,
        .encoding = encs[(a >> 4) & 3],
        .values = { .trim = a & 64, .empty = (cv_filedrop_empty_t) (b % 3) },
        .max_record_bytes = b & 4 ? 48 : 0,
    };
    run_t whole = s_run(&opts, data, size, size ? size : 1);
    run_t parts = s_run(&opts, data, size, chunk);
    fuzz_check(whole.rc == parts.rc, "at once %d, in chunks of %zu %d", whole.rc, chunk, parts.rc);
    fuzz_check(strcmp(whole.error, parts.error) == 0, "errors '%s' and, in chunks of %zu, '%s'", whole.error,
               chunk, parts.error);
    fuzz_check(whole.count == parts.count, "%ld records at once, %ld in chunks", whole.count, parts.count);
    fuzz_check(json_equal(whole.records, parts.records), "other records in chunks of %zu", chunk);
    fuzz_check(whole.count == (long) json_array_size(whole.records), "%ld records counted, %zu emitted",
               whole.count, json_array_size(whole.records));
    if (whole.rc < 0) {
        fuzz_check(strncmp(whole.error, "line ", 5) == 0, "error '%s'", whole.error);
        /* no value: the error's text after "line N: " holds no byte of the file's non-ASCII text */
        for (const char *p = whole.error; *p; p++)
            fuzz_check((unsigned char) *p < 0x80, "error '%s' quotes the file", whole.error);
    }
    json_decref(whole.records);
    json_decref(parts.records);
    return 0;
}
