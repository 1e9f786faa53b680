/*  driver_filedrop_csv — see cv_filedrop_csv.h.

    A byte-at-a-time state machine over the raw bytes: the separator, the
    quote and the line ends are ASCII, and neither UTF-8 nor the
    single-byte encodings use ASCII bytes inside a character, so the row
    is split before it is decoded. The current row's raw fields are kept
    end to end in one buffer (field i starts at start[i]); when the row
    ends each field is decoded to UTF-8, trimmed and put in the record.

    States, for the field being read:
      START      nothing but blanks yet (a quote here opens a quoted field)
      UNQUOTED   plain text up to the separator or the line end; a quote
                 inside is kept as text (as spreadsheets write it)
      QUOTED     inside quotes: separators and line breaks are text
      QUOTE      a quote inside quotes: a second quote is a literal one,
                 else the field is closed
      CLOSED     after the closing quote: only blanks until the separator */
#include "cv_filedrop_csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_DEFAULT_MAX (1024 * 1024)
#define CSV_MAX_FIELDS 4096

typedef enum { ST_START, ST_UNQUOTED, ST_QUOTED, ST_QUOTE, ST_CLOSED } state_t;

struct cv_filedrop_csv {
    cv_filedrop_csv_opts_t opts;
    cv_filedrop_encoding_t enc;            /* opts.encoding, or UTF-8 after a BOM */
    cv_filedrop_emit_fn emit;
    void *arg;
    state_t st;
    bool after_cr;                /* a CR ended a row: a LF right after belongs to it */
    bool failed;
    int bom_seen;                 /* bytes of the file start kept to look for a BOM; -1: done */
    unsigned char bom[3];
    cv_filedrop_buf_t raw;                 /* the current row's raw fields, end to end */
    size_t *start;                /* start[i]: offset of field i in raw */
    size_t nfields, capfields;
    long line;                    /* line of the byte being read */
    long row_line;                /* line where the current row started */
    long quote_line;              /* line of the opening quote of the current field */
    long records;                 /* rows emitted */
    char **names;                 /* column names */
    size_t nnames;
    bool have_names;
    cv_filedrop_buf_t val;                 /* scratch: one decoded value */
    char err[256];
};

static int s_fail(cv_filedrop_csv_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int s_fail(cv_filedrop_csv_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->err, sizeof self->err, fmt, ap);
    va_end(ap);
    self->failed = true;
    return -1;
}

cv_filedrop_csv_t *cv_filedrop_csv_new(const cv_filedrop_csv_opts_t *opts, cv_filedrop_emit_fn emit, void *arg)
{
    if (!opts->header && opts->ncolumns == 0)
        return NULL;
    cv_filedrop_csv_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    if (!self->opts.max_record_bytes)
        self->opts.max_record_bytes = CSV_DEFAULT_MAX;
    self->enc = opts->encoding == CV_FILEDROP_ENC_AUTO ? CV_FILEDROP_ENC_UTF8 : opts->encoding;
    self->emit = emit;
    self->arg = arg;
    self->line = self->row_line = 1;
    self->raw.limit = self->opts.max_record_bytes;
    self->val.limit = self->opts.max_record_bytes * 3;   /* one byte may become three */
    if (opts->ncolumns) {
        if (!(self->names = calloc(opts->ncolumns, sizeof *self->names))) {
            cv_filedrop_csv_destroy(&self);
            return NULL;
        }
        for (size_t i = 0; i < opts->ncolumns; i++)
            if (!(self->names[self->nnames++] = strdup(opts->columns[i]))) {
                cv_filedrop_csv_destroy(&self);
                return NULL;
            }
        self->have_names = !opts->header;   /* with a header, its row is skipped first */
    }
    return self;
}

void cv_filedrop_csv_destroy(cv_filedrop_csv_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_filedrop_csv_t *self = *self_p;
    for (size_t i = 0; i < self->nnames; i++)
        free(self->names[i]);
    free(self->names);
    free(self->start);
    cv_buf_free(&self->raw);
    cv_buf_free(&self->val);
    free(self);
    *self_p = NULL;
}

const char *cv_filedrop_csv_error(const cv_filedrop_csv_t *self)
{
    return self->err;
}

long cv_filedrop_csv_records(const cv_filedrop_csv_t *self)
{
    return self->records;
}

const char *const *cv_filedrop_csv_header(const cv_filedrop_csv_t *self, size_t *n)
{
    *n = 0;
    if (self->opts.ncolumns > 0 || !self->opts.header || !self->have_names)
        return NULL;
    *n = self->nnames;
    return (const char *const *) self->names;
}

/* ---- fields -------------------------------------------------------------- */

static int s_field_begin(cv_filedrop_csv_t *self)
{
    if (self->nfields == CSV_MAX_FIELDS)
        return s_fail(self, "line %ld: more than %d fields in a row", self->line, CSV_MAX_FIELDS);
    if (self->nfields == self->capfields) {
        size_t cap = self->capfields ? self->capfields * 2 : 32;
        size_t *p = realloc(self->start, cap * sizeof *p);
        if (!p)
            return s_fail(self, "line %ld: out of memory", self->line);
        self->start = p;
        self->capfields = cap;
    }
    self->start[self->nfields++] = self->raw.len;
    self->st = ST_START;
    return 0;
}

static int s_add(cv_filedrop_csv_t *self, char c)
{
    if (cv_buf_add(&self->raw, &c, 1) == 0)
        return 0;
    if (self->st == ST_QUOTED || self->st == ST_QUOTE)
        return s_fail(self, "line %ld: a row longer than %zu bytes (is the quote opened at line %ld "
                      "ever closed?)", self->line, self->opts.max_record_bytes, self->quote_line);
    return s_fail(self, "line %ld: a row longer than %zu bytes", self->row_line, self->opts.max_record_bytes);
}

static size_t s_field_len(const cv_filedrop_csv_t *self, size_t i)
{
    return (i + 1 < self->nfields ? self->start[i + 1] : self->raw.len) - self->start[i];
}

static bool s_blank_bytes(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", p[i]))
            return false;
    return true;
}

/* Field i decoded to UTF-8 in self->val, CRLF inside it made LF. */
static int s_decode(cv_filedrop_csv_t *self, size_t i)
{
    const char *p = self->raw.data + self->start[i];
    size_t n = s_field_len(self, i), bad;
    self->val.len = 0;
    if (cv_filedrop_text_buf_decode(&self->val, self->enc, p, n, &bad) < 0) {
        if (bad == (size_t) -1)
            return s_fail(self, "line %ld: out of memory", self->row_line);
        long line = self->row_line;
        for (size_t k = 0; k < self->start[i] + bad; k++)
            line += self->raw.data[k] == '\n';
        return s_fail(self, "line %ld, column %zu: byte 0x%02X is not valid %s", line, i + 1,
                      (unsigned char) p[bad], cv_filedrop_text_encoding_name(self->enc));
    }
    size_t out = 0;
    for (size_t k = 0; k < self->val.len; k++)
        if (!(self->val.data[k] == '\r' && k + 1 < self->val.len && self->val.data[k + 1] == '\n'))
            self->val.data[out++] = self->val.data[k];
    self->val.len = out;
    return 0;
}

/* ---- rows ---------------------------------------------------------------- */

/* The header row gives the column names; empty names at the end (a
   trailing separator) are dropped. */
static int s_header(cv_filedrop_csv_t *self)
{
    size_t n = self->nfields;
    while (n > 0 && s_blank_bytes(self->raw.data + self->start[n - 1], s_field_len(self, n - 1)))
        n--;
    if (self->nnames) {            /* configured names replace the header's */
        self->have_names = true;
        return 0;
    }
    if (!(self->names = calloc(n, sizeof *self->names)))
        return s_fail(self, "line %ld: out of memory", self->row_line);
    for (size_t i = 0; i < n; i++) {
        if (s_decode(self, i) < 0)
            return -1;
        const char *p = self->val.data;
        size_t len = self->val.len;
        cv_filedrop_text_trim(&p, &len);
        if (len == 0)
            return s_fail(self, "line %ld: column %zu of the header has no name", self->row_line, i + 1);
        if (!(self->names[i] = strndup(p, len)))
            return s_fail(self, "line %ld: out of memory", self->row_line);
        self->nnames++;
        for (size_t j = 0; j < i; j++)
            if (strcmp(self->names[j], self->names[i]) == 0)
                return s_fail(self, "line %ld: column %zu of the header has the same name as column %zu",
                              self->row_line, i + 1, j + 1);
    }
    if (self->nnames == 0)
        return s_fail(self, "line %ld: the header names no column", self->row_line);
    self->have_names = true;
    return 0;
}

static int s_record(cv_filedrop_csv_t *self)
{
    if (self->nfields < self->nnames)
        return s_fail(self, "line %ld: %zu fields where there are %zu columns (a truncated row?)",
                      self->row_line, self->nfields, self->nnames);
    for (size_t i = self->nnames; i < self->nfields; i++)
        if (!s_blank_bytes(self->raw.data + self->start[i], s_field_len(self, i)))
            return s_fail(self, "line %ld: %zu fields where there are %zu columns", self->row_line,
                          self->nfields, self->nnames);
    json_t *rec = json_object();
    if (!rec)
        return s_fail(self, "line %ld: out of memory", self->row_line);
    for (size_t i = 0; i < self->nnames; i++) {
        if (s_decode(self, i) < 0) {
            json_decref(rec);
            return -1;
        }
        if (cv_filedrop_text_value_put(rec, self->names[i], self->val.data, self->val.len, &self->opts.values) < 0) {
            json_decref(rec);
            return s_fail(self, "line %ld: out of memory", self->row_line);
        }
    }
    self->records++;
    if (self->emit(self->arg, rec, self->row_line, self->records) < 0) {
        self->err[0] = '\0';
        self->failed = true;
        return -1;
    }
    return 0;
}

/* The row is complete: skip it when blank, else header or record. */
static int s_row_end(cv_filedrop_csv_t *self)
{
    int rc = 0;
    bool blank = s_blank_bytes(self->raw.data, self->raw.len);
    if (!blank && !self->have_names)
        rc = s_header(self);
    else if (!blank)
        rc = s_record(self);
    self->raw.len = 0;
    self->nfields = 0;
    return rc < 0 ? -1 : s_field_begin(self);
}

/* ---- the state machine --------------------------------------------------- */

static int s_newline(cv_filedrop_csv_t *self, char c)
{
    self->after_cr = c == '\r';
    int rc = s_row_end(self);
    self->line++;
    self->row_line = self->line;
    return rc;
}

static int s_byte(cv_filedrop_csv_t *self, char c)
{
    if (self->after_cr) {
        self->after_cr = false;
        if (c == '\n')
            return 0;
    }
    if (c == '\0')
        return s_fail(self, "line %ld: a NUL byte (not a text file?)", self->line);
    const char sep = self->opts.separator, quote = self->opts.quote;
    switch (self->st) {
    case ST_START:
        if (quote && c == quote) {
            self->raw.len = self->start[self->nfields - 1];   /* blanks before the quote */
            self->st = ST_QUOTED;
            self->quote_line = self->line;
            return 0;
        }
        if (c != ' ' && c != '\t' && c != sep && c != '\n' && c != '\r')
            self->st = ST_UNQUOTED;
        /* fall through */
    case ST_UNQUOTED:
        if (c == sep)
            return s_field_begin(self);
        if (c == '\n' || c == '\r')
            return s_newline(self, c);
        return s_add(self, c);
    case ST_QUOTED:
        if (c == quote) {
            self->st = ST_QUOTE;
            return 0;
        }
        if (c == '\n')
            self->line++;
        return s_add(self, c);
    case ST_QUOTE:
        if (c == quote) {
            self->st = ST_QUOTED;
            return s_add(self, c);
        }
        self->st = ST_CLOSED;
        /* fall through */
    case ST_CLOSED:
        if (c == sep)
            return s_field_begin(self);
        if (c == '\n' || c == '\r')
            return s_newline(self, c);
        if (c == ' ' || c == '\t')
            return 0;
        return s_fail(self, "line %ld: text after the closing quote of column %zu", self->line, self->nfields);
    }
    return 0;
}

/* The first bytes of the file: a UTF-8 byte order mark is dropped (and
   means UTF-8); a UTF-16 one is refused. Returns bytes consumed, or -1. */
static long s_bom(cv_filedrop_csv_t *self, const unsigned char *s, size_t len, bool end)
{
    static const unsigned char utf8[3] = { 0xEF, 0xBB, 0xBF };
    size_t used = 0;
    if (len == 0 && !end)
        return 0;
    while (self->bom_seen >= 0 && self->bom_seen < 3 && used < len)
        self->bom[self->bom_seen++] = s[used++];
    if (self->bom_seen >= 2 && ((self->bom[0] == 0xFF && self->bom[1] == 0xFE)
                                || (self->bom[0] == 0xFE && self->bom[1] == 0xFF)))
        return s_fail(self, "line 1: a UTF-16 file (export it as UTF-8 or Windows-1252)");
    bool prefix = self->bom_seen > 0 && memcmp(self->bom, utf8, (size_t) self->bom_seen) == 0;
    if (self->bom_seen == 1 && (self->bom[0] == 0xFF || self->bom[0] == 0xFE) && !end)
        return (long) used;        /* maybe UTF-16: wait for the second byte */
    if (prefix && self->bom_seen == 3) {
        self->enc = CV_FILEDROP_ENC_UTF8;
        self->bom_seen = -1;
    } else if (!prefix || end || self->bom_seen == 3) {
        int kept = self->bom_seen;
        self->bom_seen = -1;
        for (int i = 0; i < kept; i++)
            if (s_byte(self, (char) self->bom[i]) < 0)
                return -1;
    }
    return (long) used;
}

static int s_begin(cv_filedrop_csv_t *self)
{
    if (self->nfields == 0 && self->capfields == 0)
        return s_field_begin(self);
    return 0;
}

int cv_filedrop_csv_feed(cv_filedrop_csv_t *self, const char *data, size_t len)
{
    if (self->failed)
        return -1;
    if (s_begin(self) < 0)
        return -1;
    size_t i = 0;
    if (self->bom_seen >= 0) {
        long used = s_bom(self, (const unsigned char *) data, len, false);
        if (used < 0)
            return -1;
        i = (size_t) used;
    }
    for (; i < len; i++)
        if (s_byte(self, data[i]) < 0)
            return -1;
    return 0;
}

int cv_filedrop_csv_end(cv_filedrop_csv_t *self)
{
    if (self->failed)
        return -1;
    if (s_begin(self) < 0)
        return -1;
    if (self->bom_seen >= 0 && s_bom(self, NULL, 0, true) < 0)
        return -1;
    if (self->st == ST_QUOTED)
        return s_fail(self, "line %ld: the file ends inside the quoted field opened at line %ld "
                      "(a truncated file?)", self->line, self->quote_line);
    return s_row_end(self);        /* a last row without a line end (blank: skipped) */
}
