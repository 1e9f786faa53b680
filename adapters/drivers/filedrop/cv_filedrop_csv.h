/*  driver_filedrop_csv — a push CSV parser for the file-drop driver.

    Fed the bytes of a file in chunks of any size, it calls emit with one
    JSON object per row: {column name: value as a string}. It reads what
    French back-office exports write: `;` or `,` separators, fields quoted
    with `"` (a doubled quote inside is one quote) that may hold the
    separator and line breaks, CRLF, LF or CR line ends, a UTF-8 byte order
    mark (which means UTF-8 whatever the configured encoding), UTF-8,
    Windows-1252 or ISO-8859-15 text, a trailing separator, no line end at
    the end of the file.

    The column names come from the first row (header) or the options. Rows
    whose fields are all blank are skipped. The first problem stops the
    parser and is kept as "line N: reason" (line of the problem, 1-based),
    naming columns by number, never quoting a value:
      - an unterminated quoted field at the end of the file (truncated file)
      - a row with more or fewer fields than there are columns
      - text after a closing quote, a NUL byte, a UTF-16 file
      - a byte that is not valid in the encoding
      - a header with an empty or repeated column name
      - a row longer than max_record_bytes */
#ifndef DRIVER_FILEDROP_CSV_H
#define DRIVER_FILEDROP_CSV_H

#include "cv_filedrop.h"

typedef struct {
    char separator;               /* ';' ',' '\t' '|' ... */
    char quote;                   /* '"', or 0: no quoting */
    bool header;                  /* the first row names the columns */
    const char *const *columns;   /* names (replacing the header's, if any) */
    size_t ncolumns;              /* 0: names from the header */
    cv_filedrop_encoding_t encoding;       /* not CV_FILEDROP_ENC_AUTO: the caller decides */
    cv_filedrop_values_t values;
    size_t max_record_bytes;      /* 0: 1 MiB */
} cv_filedrop_csv_opts_t;

typedef struct cv_filedrop_csv cv_filedrop_csv_t;

/* NULL when out of memory (or header false and no columns). */
cv_filedrop_csv_t *cv_filedrop_csv_new(const cv_filedrop_csv_opts_t *opts, cv_filedrop_emit_fn emit, void *arg);
void cv_filedrop_csv_destroy(cv_filedrop_csv_t **self_p);

/* Parses len more bytes. Returns 0, or -1 when the file is not valid CSV
   (cv_filedrop_csv_error says why) or emit asked to stop (error is then ""). */
int cv_filedrop_csv_feed(cv_filedrop_csv_t *self, const char *data, size_t len);
/* The end of the file: completes the last row. 0 or -1 as feed. */
int cv_filedrop_csv_end(cv_filedrop_csv_t *self);

const char *cv_filedrop_csv_error(const cv_filedrop_csv_t *self);
/* Rows emitted so far. */
long cv_filedrop_csv_records(const cv_filedrop_csv_t *self);
/* The column names read from the header, once it is read (n of them);
   NULL before, or when the names come from `columns`. */
const char *const *cv_filedrop_csv_header(const cv_filedrop_csv_t *self, size_t *n);

#endif
