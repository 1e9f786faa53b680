/*  trymap_read — the sample file of --try-mapping into raw records, read
    exactly as the adapter would read it (cv_trymap_int.h).

    Design: nothing here parses CSV or XML itself. The file-drop driver's
    own pieces do: cv_adapter_config_load reads adapter.yaml (every key
    checked, "file:line: reason"), cv_filedrop_conf_load its `driver:`
    section (separator, quote, encoding, columns, XML record element, the
    origin object), cv_filedrop_csv / cv_filedrop_xml parse the bytes,
    cv_filedrop_report_header_hint spots a header read with the wrong
    separator and cv_filedrop_origin_add adds the origin object. So what
    this command shows is what the driver would send.

    Two differences, both because the engineer runs it on their own
    machine with one file: the section's folder keys (inbox, done_dir,
    error_dir, metrics_file) are replaced by one temporary empty folder,
    removed at once (the driver's loader insists on an inbox and creates
    done/ and error/; the real inbox need not exist here, and nothing is
    created in it); and the file is read whole into memory (a sample, not
    a year of exports), which makes `encoding: auto` one pass.

    JSON lines (.jsonl, .ndjson, .json) are read as `civibus-adapter
    replay` sends them: one record per non-blank line, checked as the
    hub's ingest checks a record (UTF-8, JSON, an object, its size). */
#include "cv_trymap_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cv_text.h"
#include "drivers/filedrop/cv_filedrop_csv.h"
#include "drivers/filedrop/cv_filedrop_xml.h"
#include "runtime/cv_adapter_config.h"

typedef enum { FMT_NONE, FMT_CSV, FMT_XML, FMT_JSONL } fmt_t;

typedef struct {
    const cv_trymap_input_t *in;
    cv_trymap_record_fn fn;
    void *arg;
    cv_trymap_read_t *out;
    cv_filedrop_conf_t *conf;
    cv_filedrop_format_t format;
    const char *name;              /* the file's base name (the origin's "file") */
    cv_filedrop_csv_t *csv;
    int64_t max_bytes;             /* the smaller of the hub's and the adapter's limits */
    bool stopped;                  /* the header hint stopped the file */
} reader_t;

static const char *s_base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static bool s_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

static fmt_t s_format_by_name(const char *name)
{
    if (s_ext(name, ".jsonl") || s_ext(name, ".ndjson") || s_ext(name, ".json"))
        return FMT_JSONL;
    if (s_ext(name, ".csv"))
        return FMT_CSV;
    if (s_ext(name, ".xml"))
        return FMT_XML;
    return FMT_NONE;
}

/* The whole file, NUL-terminated; NULL with errno. */
static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    cv_buf_t b = { 0 };
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cv_buf_add(&b, chunk, n) < 0)
            break;
    bool bad = ferror(f) || b.failed;
    int saved = errno;
    fclose(f);
    if (bad) {
        cv_buf_free(&b);
        errno = saved ? saved : ENOMEM;
        return NULL;
    }
    *len = b.len;
    char *data = cv_buf_take(&b);
    if (!data)
        errno = ENOMEM;
    return data;
}

/* ---- the driver's settings ----------------------------------------------- */

/* Loads conf from the driver section, its folder keys replaced by a
   temporary empty folder (see the top of the file). */
static int s_conf_load(cv_filedrop_conf_t *conf, const cv_yaml_doc_t *doc, const cv_yaml_node_t *section,
                       const char *dir, char *err, size_t errlen)
{
    static const char *const folders[] = { "inbox", "done_dir", "error_dir", "metrics_file", NULL };
    char tmp[] = "/tmp/civibus-try-mapping.XXXXXX";
    if (!mkdtemp(tmp)) {
        snprintf(err, errlen, "cannot create a temporary folder: %s", strerror(errno));
        return -1;
    }
    cv_yaml_node_t *kids = calloc(section->count + 3, sizeof *kids);
    if (!kids) {
        rmdir(tmp);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = 0;
    for (const cv_yaml_node_t *c = section->child; c; c = c->next) {
        size_t k = 0;
        while (folders[k] && strcmp(folders[k], c->key) != 0)
            k++;
        if (!folders[k])
            kids[n++] = *c;
    }
    for (int k = 0; k < 3; k++)
        kids[n++] = (cv_yaml_node_t) { .type = CV_YAML_SCALAR, .line = section->line, .key_line = section->key_line,
                                       .key = (char *) folders[k], .value = tmp };
    for (size_t i = 0; i + 1 < n; i++)
        kids[i].next = &kids[i + 1];
    kids[n - 1].next = NULL;
    cv_yaml_node_t copy = *section;
    copy.child = kids;
    copy.count = n;
    int rc = cv_filedrop_conf_load(conf, doc, &copy, dir, err, errlen);
    free(kids);
    rmdir(tmp);
    return rc;
}

/* The driver's settings from adapter.yaml, or its defaults (CSV only)
   when there is none. 0, or -1 with "file:line: reason". */
static int s_settings(const cv_trymap_input_t *in, cv_filedrop_conf_t *conf, int64_t *max_bytes, char *err,
                      size_t errlen)
{
    if (!in->adapter_config) {
        static const char defaults[] = "csv: {}\n";
        cv_yaml_doc_t *doc = cv_yaml_parse("(the file-drop driver's defaults)", defaults, strlen(defaults), err, errlen);
        int rc = doc ? s_conf_load(conf, doc, doc->root, NULL, err, errlen) : -1;
        cv_yaml_destroy(&doc);
        return rc;
    }
    cv_adapter_config_t *ac = cv_adapter_config_load(in->adapter_config, err, errlen);
    if (!ac)
        return -1;
    int rc = -1;
    const cv_yaml_doc_t *doc = ac->doc;
    char *dir = strdup(in->adapter_config);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    if (!ac->driver)
        cv_yaml_fail(doc, doc->root, err, errlen, "no 'driver' section: --try-mapping reads a CSV or XML file "
                     "with the file-drop driver's settings (kind: filedrop)");
    else if (strcmp(ac->driver_kind, "filedrop") != 0)
        cv_yaml_fail(doc, cv_yaml_get(ac->driver, "kind"), err, errlen, "the driver is '%s', not filedrop: it "
                     "reads no CSV or XML file", ac->driver_kind);
    else if (strcmp(ac->driver_source, in->source) != 0)
        cv_yaml_fail(doc, cv_yaml_get(ac->driver, "source") ? cv_yaml_get(ac->driver, "source") : ac->driver, err,
                     errlen, "the driver serves source '%s', not '%s'", ac->driver_source, in->source);
    else
        rc = s_conf_load(conf, doc, ac->driver, slash ? dir : NULL, err, errlen);
    if (rc == 0 && ac->max_event_bytes > 0 && (int64_t) ac->max_event_bytes < *max_bytes)
        *max_bytes = ac->max_event_bytes;
    free(dir);
    cv_adapter_config_destroy(&ac);
    return rc;
}

static void s_describe(const reader_t *r, cv_filedrop_encoding_t enc)
{
    const cv_filedrop_conf_t *c = r->conf;
    char sep[8] = "tab", quote[8] = "none";
    if (r->format == CV_FILEDROP_FMT_XML) {
        snprintf(r->out->settings, sizeof r->out->settings, "xml: record element <%s>, encoding %s", c->xml_record,
                 c->xml_encoding ? c->xml_encoding : "from the XML declaration");
        return;
    }
    if (c->csv_separator != '\t')
        snprintf(sep, sizeof sep, "'%c'", c->csv_separator);
    if (c->csv_quote)
        snprintf(quote, sizeof quote, "'%c'", c->csv_quote);
    snprintf(r->out->settings, sizeof r->out->settings, "csv: separator %s, quote %s, encoding %s%s, %s", sep, quote,
             cv_filedrop_text_encoding_name(enc), c->csv_encoding == CV_FILEDROP_ENC_AUTO ? " (auto)" : "",
             c->csv_columns.n ? "columns from csv.columns" : "columns from the header");
}

/* ---- CSV and XML: the driver's parsers ----------------------------------- */

/* The driver's header hint, with the separator it suggests. */
static bool s_hint(reader_t *r)
{
    size_t n = 0;
    const char *const *names = r->csv ? cv_filedrop_csv_header(r->csv, &n) : NULL;
    cv_trymap_read_t *o = r->out;
    if (!cv_filedrop_report_header_hint(names, n, r->conf->csv_separator, o->hint, sizeof o->hint))
        return false;
    const char *s = strstr(o->hint, "`separator: ");
    if (s)
        snprintf(o->separator, sizeof o->separator, "%.*s", (int) strcspn(s + 12, "`"), s + 12);
    return true;
}

static int s_emit(void *arg, json_t *rec, long line, long index)
{
    reader_t *r = arg;
    if (index == 1 && s_hint(r)) {
        json_decref(rec);
        r->stopped = true;
        return -1;
    }
    if (cv_filedrop_origin_add(r->conf, r->name, r->format, rec, line, index) < 0) {
        json_decref(rec);
        return -1;
    }
    size_t size = json_dumpb(rec, NULL, 0, JSON_COMPACT);
    char detail[160];
    if ((int64_t) size > r->max_bytes) {
        json_decref(rec);
        snprintf(detail, sizeof detail, "record of %zu bytes once in JSON exceeds max_event_bytes %lld (the driver "
                 "moves the whole file to error/)", size, (long long) r->max_bytes);
        r->fn(r->arg, NULL, line, index, "too_large", detail);
        return 0;
    }
    r->fn(r->arg, rec, line, index, NULL, NULL);
    return 0;
}

/* `encoding: auto`: UTF-8 when the whole file is. */
static cv_filedrop_encoding_t s_auto(const char *data, size_t len)
{
    for (size_t i = 0; i < len; ) {
        int n = data[i] ? cv_filedrop_text_utf8_seq((const unsigned char *) data + i, len - i) : -1;
        if (n <= 0)
            return CV_FILEDROP_ENC_CP1252;
        i += (size_t) n;
    }
    return CV_FILEDROP_ENC_UTF8;
}

static void s_parse_file(reader_t *r, const char *data, size_t len)
{
    const cv_filedrop_conf_t *c = r->conf;
    cv_filedrop_xml_t *xml = NULL;
    cv_filedrop_encoding_t enc = c->csv_encoding == CV_FILEDROP_ENC_AUTO ? s_auto(data, len) : c->csv_encoding;
    s_describe(r, enc);
    if (r->format == CV_FILEDROP_FMT_CSV) {
        cv_filedrop_csv_opts_t o = { c->csv_separator, c->csv_quote, c->csv_header,
                                     (const char *const *) c->csv_columns.v, c->csv_columns.n, enc, c->values,
                                     c->max_record_bytes };
        r->csv = cv_filedrop_csv_new(&o, s_emit, r);
    } else {
        cv_filedrop_xml_opts_t o = { c->xml_record, c->xml_encoding, c->xml_attribute_prefix, c->xml_text_key,
                                     c->values, c->max_record_bytes };
        xml = cv_filedrop_xml_new(&o, s_emit, r);
    }
    char *problem = r->out->problem;
    size_t plen = sizeof r->out->problem;
    if (!r->csv && !xml)
        snprintf(problem, plen, "out of memory");
    else if (r->csv ? cv_filedrop_csv_feed(r->csv, data, len) < 0 || cv_filedrop_csv_end(r->csv) < 0
                    : cv_filedrop_xml_feed(xml, data, len) < 0 || cv_filedrop_xml_end(xml) < 0) {
        const char *why = r->csv ? cv_filedrop_csv_error(r->csv) : cv_filedrop_xml_error(xml);
        if (why[0] && !r->stopped)
            snprintf(problem, plen, "%s", why);
        if (!r->stopped && !r->out->hint[0])
            s_hint(r);             /* a later row failing because of the wrong separator */
    } else if (r->csv && cv_filedrop_csv_records(r->csv) == 0)
        s_hint(r);                 /* a header alone */
    cv_filedrop_csv_destroy(&r->csv);
    cv_filedrop_xml_destroy(&xml);
}

/* ---- JSON lines: as `civibus-adapter replay` sends them ------------------ */

static void s_jsonl(reader_t *r, const char *data, size_t len)
{
    long line = 0, index = 0;
    snprintf(r->out->settings, sizeof r->out->settings, "json lines: one record per line");
    for (size_t at = 0; at < len; ) {
        const char *p = data + at, *nl = memchr(p, '\n', len - at);
        size_t n = nl ? (size_t) (nl - p) : len - at;
        at += n + (nl ? 1 : 0);
        line++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        const char *t = p;
        size_t tn = n;
        cv_text_trim(&t, &tn);
        if (tn == 0)
            continue;
        index++;
        char detail[160];
        json_error_t jerr;
        json_t *rec = (int64_t) n > r->max_bytes ? NULL : json_loadb(p, n, 0, &jerr);
        if ((int64_t) n > r->max_bytes) {
            snprintf(detail, sizeof detail, "record of %zu bytes exceeds max_event_bytes %lld", n,
                     (long long) r->max_bytes);
            r->fn(r->arg, NULL, line, index, "too_large", detail);
        } else if (!rec && json_error_code(&jerr) == json_error_invalid_utf8) {
            snprintf(detail, sizeof detail, "record is not valid UTF-8 (byte %d)", jerr.position);
            r->fn(r->arg, NULL, line, index, "invalid_utf8", detail);
        } else if (!rec) {
            snprintf(detail, sizeof detail, "record is not valid JSON (column %d)", jerr.column);
            r->fn(r->arg, NULL, line, index, "invalid_json", detail);
        } else if (!json_is_object(rec)) {
            json_decref(rec);
            r->fn(r->arg, NULL, line, index, "invalid_json", "record is JSON but not an object");
        } else
            r->fn(r->arg, rec, line, index, NULL, NULL);
    }
}

int cv_trymap__read(const cv_trymap_input_t *in, cv_trymap_record_fn fn, void *arg, cv_trymap_read_t *out,
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *name = s_base(in->path);
    fmt_t fmt = s_format_by_name(name);
    cv_filedrop_conf_t conf;
    memset(&conf, 0, sizeof conf);
    reader_t r = { .in = in, .fn = fn, .arg = arg, .out = out, .conf = &conf, .name = name,
                   .max_bytes = in->max_event_bytes };
    if (fmt != FMT_JSONL && s_settings(in, &conf, &r.max_bytes, err, errlen) < 0)
        return -1;
    if (fmt != FMT_JSONL) {
        cv_filedrop_format_t by_match = cv_filedrop_inbox_format(&conf, name);
        r.format = by_match != CV_FILEDROP_FMT_NONE ? by_match
                 : fmt == FMT_CSV ? CV_FILEDROP_FMT_CSV : fmt == FMT_XML ? CV_FILEDROP_FMT_XML : CV_FILEDROP_FMT_NONE;
        const char *missing = r.format == CV_FILEDROP_FMT_CSV && !conf.csv_on ? "csv"
                            : r.format == CV_FILEDROP_FMT_XML && !conf.xml_on ? "xml" : NULL;
        if (r.format == CV_FILEDROP_FMT_NONE || missing) {
            if (missing && !in->adapter_config)
                snprintf(err, errlen, "%s: an XML file needs --adapter-config (its driver's xml.record names the "
                         "record element)", in->path);
            else if (missing)
                snprintf(err, errlen, "%s: a%s %s file, and the driver of %s has no '%s' section", in->path,
                         missing[0] == 'x' ? "n" : "", missing, in->adapter_config, missing);
            else
                snprintf(err, errlen, "%s: cannot tell its format: name it .csv, .xml or .jsonl (or match the "
                         "driver's csv.match or xml.match)", in->path);
            cv_filedrop_conf_free(&conf);
            return -1;
        }
    }
    size_t len = 0;
    char *data = s_slurp(in->path, &len);
    if (!data) {
        snprintf(err, errlen, "%s: %s", in->path, strerror(errno));
        cv_filedrop_conf_free(&conf);
        return -1;
    }
    if (fmt == FMT_JSONL)
        s_jsonl(&r, data, len);
    else
        s_parse_file(&r, data, len);
    free(data);
    cv_filedrop_conf_free(&conf);
    return 0;
}
