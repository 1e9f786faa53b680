/*  fuzz_filedrop_xml — the file drop's XML reader
    (adapters/drivers/filedrop/cv_filedrop_xml.c, expat underneath), as the
    driver runs it: cv_filedrop_xml_new with the options of a `driver:`
    section, the file fed with cv_filedrop_xml_feed, then
    cv_filedrop_xml_end.

    Input: two bytes of options (record element dossier, record or r; the
    encoding: the document's, UTF-8, windows-1252, ISO-8859-15,
    ISO-8859-1; an attribute prefix or none; the text key; trim and the
    empty-value rule; a small or the default max_record_bytes), one byte
    for a chunk size, then the file.
    Checked:
      - the reader is push: the file fed at once and in chunks of 1 to 32
        bytes gives the same records (same lines, indexes, equal JSON), the
        same verdict (expat's message may differ: see below);
      - records come with indexes 1, 2, 3... and lines that do not go back,
        each an object;
      - an error reads "line N: reason" and quotes nothing of the file
        (ASCII only). */
#include "fuzz_util.h"

#include <jansson.h>

#include "drivers/filedrop/cv_filedrop_xml.h"

typedef struct {
    json_t *records;
    long last_line, last_index;
} out_t;

static int s_emit(void *arg, json_t *record, long line, long index)
{
    out_t *o = arg;
    fuzz_check(json_is_object(record), "a record that is not an object");
    fuzz_check(index == o->last_index + 1, "record %ld after %ld", index, o->last_index);
    fuzz_check(line >= 1 && line >= o->last_line, "record at line %ld after line %ld", line, o->last_line);
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

static run_t s_run(const cv_filedrop_xml_opts_t *opts, const uint8_t *data, size_t size, size_t chunk)
{
    out_t o = { .records = json_array() };
    run_t r = { .records = o.records };
    cv_filedrop_xml_t *p = cv_filedrop_xml_new(opts, s_emit, &o);
    if (!p)
        abort();
    for (size_t at = 0; at < size && r.rc == 0; at += chunk)
        r.rc = cv_filedrop_xml_feed(p, (const char *) data + at, size - at < chunk ? size - at : chunk);
    if (r.rc == 0)
        r.rc = cv_filedrop_xml_end(p);
    snprintf(r.error, sizeof r.error, "%s", cv_filedrop_xml_error(p) ? cv_filedrop_xml_error(p) : "");
    r.count = cv_filedrop_xml_records(p);
    cv_filedrop_xml_destroy(&p);
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
    static const char *const records[] = { "dossier", "record", "r", "dossier" };
    static const char *const encodings[] = { NULL, "UTF-8", "windows-1252", "ISO-8859-15", "ISO-8859-1",
                                             NULL, NULL, NULL };
    cv_filedrop_xml_opts_t opts = {
        .record = records[a & 3],
        .encoding = encodings[(a >> 2) & 7],
        .attribute_prefix = a & 32 ? "@" : "",
        .text_key = a & 64 ? "#text" : "_text",
        .values = { .trim = !(a & 128), .empty = (cv_filedrop_empty_t) (b % 3) },
        .max_record_bytes = b & 4 ? 64 : 0,
    };
    run_t whole = s_run(&opts, data, size, size ? size : 1);
    run_t parts = s_run(&opts, data, size, chunk);
    fuzz_check(whole.rc == parts.rc, "at once %d, in chunks of %zu %d", whole.rc, chunk, parts.rc);
    /* not the message: expat names a broken document's fault by what it
       sees at the cut (trailing text is "junk after document element" or
       "not well-formed" depending on whether a chunk ends inside it) */
    fuzz_check(!whole.error[0] == !parts.error[0], "errors '%s' and, in chunks of %zu, '%s'", whole.error,
               chunk, parts.error);
    fuzz_check(whole.count == parts.count, "%ld records at once, %ld in chunks", whole.count, parts.count);
    fuzz_check(json_equal(whole.records, parts.records), "other records in chunks of %zu", chunk);
    if (whole.rc < 0) {
        fuzz_check(strncmp(whole.error, "line ", 5) == 0, "error '%s'", whole.error);
        for (const char *p = whole.error; *p; p++)
            fuzz_check((unsigned char) *p < 0x80, "error '%s' quotes the file", whole.error);
    }
    json_decref(whole.records);
    json_decref(parts.records);
    return 0;
}
