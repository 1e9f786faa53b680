/*  driver_filedrop — the parts of the file-drop driver (`kind: filedrop`,
    docs/drivers/filedrop.md) and what they share.

    A back-office software drops export files (CSV or XML) into a folder;
    the driver takes each complete file in turn, checks that the whole file
    parses, then submits one raw record (a JSON object of strings) per CSV
    row or XML record element, and moves the file to done/ once the hub has
    settled every record of it, or to error/ with a <name>.reason file when
    it cannot be read. The parts:

      cv_filedrop.c           the driver: phases of a file, position, settlement
      cv_filedrop_conf.c      the `driver:` section of adapter.yaml
      cv_filedrop_inbox.c     the folder: which file next, moves to done/ and error/
      cv_filedrop_position.c  the position text kept in the spool
      cv_filedrop_report.c    what became of a file's records: counts and
                                  reasons, the settle line, the sidecar,
                                  the header hint, the metrics file
      cv_filedrop_csv.c       a push CSV parser (cv_filedrop_csv.h)
      cv_filedrop_xml.c       a push XML reader on expat (cv_filedrop_xml.h)
      cv_filedrop_text.c      encodings (UTF-8, Windows-1252, ISO-8859-15),
                                  a growable buffer, record values

    Both parsers are fed chunks of the file and call an cv_filedrop_emit_fn for each
    record, so a file of any size is read with bounded memory, twice: once
    to check it, once to submit it. Nothing here logs or reports a value
    read from a file: errors name a line, a column or an element. */
#ifndef DRIVER_FILEDROP_H
#define DRIVER_FILEDROP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_buf.h"
#include "cv_yaml.h"

/* ---- text: encodings ----------------------------------------------------- */

typedef enum { CV_FILEDROP_ENC_UTF8, CV_FILEDROP_ENC_CP1252, CV_FILEDROP_ENC_LATIN9, CV_FILEDROP_ENC_AUTO } cv_filedrop_encoding_t;

/* "utf-8", "windows-1252" (also cp1252, iso-8859-1, latin1: files labelled
   Latin-1 are Windows-1252 in practice), "iso-8859-15" (latin9), "auto"
   (UTF-8 when the whole file is valid UTF-8, else Windows-1252); case does
   not matter. Returns 0 or -1. */
int cv_filedrop_text_encoding_parse(const char *name, cv_filedrop_encoding_t *out);
const char *cv_filedrop_text_encoding_name(cv_filedrop_encoding_t enc);

/* The Unicode code point of byte b in a single-byte encoding, or -1 when
   the encoding leaves the byte undefined (Windows-1252: 81 8D 8F 90 9D). */
int cv_filedrop_text_codepoint(cv_filedrop_encoding_t enc, unsigned char b);

/* Length of the UTF-8 sequence at s (1 to 4) when it is valid, 0 when the
   n bytes are a valid but incomplete start, -1 when invalid (overlong
   forms, surrogates and code points past U+10FFFF are invalid). */
int cv_filedrop_text_utf8_seq(const unsigned char *s, size_t n);

/* ---- text: a growable byte buffer with a limit (lib/cv_buf.h) ------------- */

typedef cv_buf_t cv_filedrop_buf_t;

/* Appends the UTF-8 form of n bytes in enc (not AUTO); -1 with *bad the
   offset of the first byte that is not valid in enc, or (size_t) -1 when
   the limit or memory is the problem. A NUL byte is invalid. */
int cv_filedrop_text_buf_decode(cv_filedrop_buf_t *b, cv_filedrop_encoding_t enc, const char *p, size_t n, size_t *bad);

/* ---- records ------------------------------------------------------------- */

typedef enum { CV_FILEDROP_EMPTY_OMIT, CV_FILEDROP_EMPTY_NULL, CV_FILEDROP_EMPTY_KEEP } cv_filedrop_empty_t;

typedef struct {
    bool trim;                    /* cut surrounding blanks (ASCII, U+00A0) */
    cv_filedrop_empty_t empty;             /* what an empty value becomes */
} cv_filedrop_values_t;

/* Moves *p and *n past the blanks around the text (ASCII white space,
   U+00A0 and U+202F, the no-break spaces French texts are full of). */
void cv_filedrop_text_trim(const char **p, size_t *n);

/* The value of the UTF-8 text p[0..n), trimmed and with the empty rule
   applied: *out is a new string, null, or NULL when the value is left
   out. Returns 0, -1 when out of memory. */
int cv_filedrop_text_value_make(const char *p, size_t n, const cv_filedrop_values_t *v, json_t **out);
/* Sets obj[key] to that value (or sets nothing). 0, or -1 (memory). */
int cv_filedrop_text_value_put(json_t *obj, const char *key, const char *p, size_t n, const cv_filedrop_values_t *v);

/* A parser hands over each record it completes (the callee owns it):
   line is where the record starts (1-based), index its rank in the file
   (1-based). Returns 0 to go on, -1 to stop the parser. */
typedef int (*cv_filedrop_emit_fn)(void *arg, json_t *record, long line, long index);

/* ---- conf: the `driver:` section (cv_filedrop_conf.c) ------------------ */

typedef enum { CV_FILEDROP_FMT_NONE, CV_FILEDROP_FMT_CSV, CV_FILEDROP_FMT_XML } cv_filedrop_format_t;

enum { CV_FILEDROP_ORIGIN_FILE = 1, CV_FILEDROP_ORIGIN_FORMAT = 2, CV_FILEDROP_ORIGIN_LINE = 4, CV_FILEDROP_ORIGIN_RECORD = 8 };

typedef struct {
    char **v;
    size_t n;
} cv_filedrop_strs_t;

typedef struct {
    char *inbox, *done_dir, *error_dir;   /* resolved paths */
    int poll_ms;
    bool order_mtime;                     /* else by name */
    int64_t min_age_ms;
    cv_filedrop_strs_t ignore;                     /* fnmatch patterns of names never read */
    cv_filedrop_values_t values;
    char *origin_key;                     /* NULL: no origin field */
    unsigned origin_fields;               /* CV_FILEDROP_ORIGIN_* */
    size_t max_record_bytes;
    int batch;                            /* records submitted per step at most */
    bool csv_on, xml_on;
    cv_filedrop_strs_t csv_match, xml_match;       /* fnmatch patterns, case-insensitive */
    char csv_separator, csv_quote;
    bool csv_header;
    cv_filedrop_strs_t csv_columns;
    cv_filedrop_encoding_t csv_encoding;
    char *xml_record, *xml_encoding, *xml_attribute_prefix, *xml_text_key;
    char *metrics_file;                   /* resolved path, or NULL: none */
} cv_filedrop_conf_t;

/* Reads the section (unknown keys and bad values: "file:line: reason");
   relative paths are taken from dir. Creates done_dir and error_dir. */
int cv_filedrop_conf_load(cv_filedrop_conf_t *conf, const cv_yaml_doc_t *doc, const cv_yaml_node_t *section, const char *dir,
                 char *err, size_t errlen);
void cv_filedrop_conf_free(cv_filedrop_conf_t *conf);

/* Adds the origin object under conf->origin_key (when set) to a record of
   `file` (its name in the inbox): the configured origin_fields of
   {"file", "format", "line", "record"}. 0, or -1 (memory). The driver and
   the hub's --try-mapping (hub/trymap) both use it (cv_filedrop_text.c). */
int cv_filedrop_origin_add(const cv_filedrop_conf_t *conf, const char *file, cv_filedrop_format_t format, json_t *rec,
                           long line, long index);

/* ---- inbox: the folder (cv_filedrop_inbox.c) ---------------------------- */

/* The format a file name has under the conf (csv first), or CV_FILEDROP_FMT_NONE. */
cv_filedrop_format_t cv_filedrop_inbox_format(const cv_filedrop_conf_t *conf, const char *name);
/* The next complete file to read, in the configured order, leaving out
   ignored names, files younger than min_age_ms and those skip() refuses.
   Returns 1 with a malloc'd name, 0 when there is none, -1 when the
   folder cannot be read (errno set). */
int cv_filedrop_inbox_next(const cv_filedrop_conf_t *conf, bool (*skip)(void *arg, const char *name), void *arg,
                  char **name_out);
/* Moves inbox/name to done_dir (ok) or error_dir, under a free name
   (name, then name-2.ext, name-3.ext ...); writes <that name>.reason
   beside it when reason is not NULL. The final name goes to moved (may be
   NULL). Returns 0, or -1 with a reason in err. */
int cv_filedrop_inbox_move(const cv_filedrop_conf_t *conf, const char *name, bool ok, const char *reason,
                  char *moved, size_t movedlen, char *err, size_t errlen);

/* ---- report: what became of a file's records (cv_filedrop_report.c) --- */

#define CV_FILEDROP_REASON_LEN 32          /* a hub reason code, NUL included */
#define CV_FILEDROP_FILE_REASONS 8         /* distinct codes kept per file; more count as "other" */
#define CV_FILEDROP_SOURCE_REASONS 32      /* distinct codes kept for the metrics */

typedef struct {
    char code[CV_FILEDROP_REASON_LEN];
    long n;
} cv_filedrop_reason_t;

/* Settlements the hub sent in this run for one file's records. */
typedef struct {
    long acked;                           /* ACKed: stored or already stored */
    long duplicates;                      /* of them, the hub said "already stored" */
    long untold;                          /* of them, the hub did not say which (CIVIBUS/1) */
    long dead;                            /* NACKed, or ACKed id_reused: dead-lettered */
    cv_filedrop_reason_t reasons[CV_FILEDROP_FILE_REASONS];
    size_t nreasons;
} cv_filedrop_tally_t;

/* Counts one settlement (cv_client_on_settle): for an ACK, reason says
   what the hub did ("stored", "duplicate", "id_reused" — a dead letter —,
   anything else: not told); for a NACK it is the code (anything but
   [A-Za-z0-9_.-] is replaced, so it is safe in a log, a file and a metrics
   label). Codes past the table's room count as "other". */
void cv_filedrop_tally_add(cv_filedrop_reason_t *reasons, size_t *n, size_t max, const char *reason, long count);
void cv_filedrop_tally_settle(cv_filedrop_tally_t *t, bool acked, const char *reason);
/* Up to max reasons, most frequent first (then by code), into out. */
size_t cv_filedrop_tally_top(const cv_filedrop_reason_t *reasons, size_t n, cv_filedrop_reason_t *out, size_t max);

/* A settled file: DONE every record went in (or the file had none),
   PARTLY some are dead, refused or unknown (settled before a restart),
   DEAD none went in: every record dead-lettered or refused (it goes to
   error/); UNREADABLE (not from this function) the file could not be read. */
typedef enum { CV_FILEDROP_OUT_DONE, CV_FILEDROP_OUT_PARTLY, CV_FILEDROP_OUT_DEAD, CV_FILEDROP_OUT_UNREADABLE } cv_filedrop_outcome_t;

typedef struct {
    long total;                           /* records in the file */
    long refused;                         /* refused by the adapter (too large) */
    bool copy;                            /* the same content as a file settled before: untold ACKs are duplicates */
    const cv_filedrop_tally_t *tally;
} cv_filedrop_settled_t;

long cv_filedrop_report_stored(const cv_filedrop_settled_t *f);
long cv_filedrop_report_duplicates(const cv_filedrop_settled_t *f);
/* Records settled before a restart: the hub answered them to an earlier run. */
long cv_filedrop_report_unknown(const cv_filedrop_settled_t *f);
cv_filedrop_outcome_t cv_filedrop_report_outcome(const cv_filedrop_settled_t *f);
/* "10 records: 7 stored, 0 duplicates, 3 dead-lettered (bad_date 2, missing_field 1)"
   plus ", 1 refused (larger than max_event_bytes)" and ", 4 settled before
   a restart (not counted)" when there are any; top 3 reasons. */
void cv_filedrop_report_line(const cv_filedrop_settled_t *f, char *out, size_t len);
/* The sidecar <name>.reason of a file with dead records (docs/drivers/filedrop.md):
   "summary: ...\nrecords: N\nstored: N\nduplicates: N\ndead: N\nrefused: N\n
   unknown: N\nreason <code>: N\n..." (every reason, most frequent first). */
void cv_filedrop_report_sidecar(const cv_filedrop_settled_t *f, const char *summary, char *out, size_t len);

/* The header hint: a header read as one column whose name holds another
   common separator (, ; tab |) than sep. Writes the hint and returns
   true, else false. */
bool cv_filedrop_report_header_hint(const char *const *names, size_t n, char sep, char *out, size_t len);

/* The source's counters since the adapter started, for the metrics file. */
typedef struct {
    long files[4];                        /* by cv_filedrop_outcome_t */
    long stored, duplicates, dead, refused, unknown;
    cv_filedrop_reason_t reasons[CV_FILEDROP_SOURCE_REASONS];
    size_t nreasons;
} cv_filedrop_metrics_t;

void cv_filedrop_metrics_add(cv_filedrop_metrics_t *m, const cv_filedrop_settled_t *f, cv_filedrop_outcome_t out);
/* The counters in the Prometheus text format (labels: source, outcome,
   reason); a malloc'd text, NULL when out of memory. */
char *cv_filedrop_metrics_text(const cv_filedrop_metrics_t *m, const char *source);
/* Writes the text to path atomically (path.tmp, then rename). 0 or -1. */
int cv_filedrop_metrics_write(const char *path, const char *text);

/* Writes the counters to conf->metrics_file, when there is one (a
   warning when it cannot). */
void cv_filedrop_metrics_save(const cv_filedrop_conf_t *conf, const cv_filedrop_metrics_t *m, const char *source);

/* The last CV_FILEDROP_HISTORY files settled, by content hash and name. */
#define CV_FILEDROP_HISTORY 64
typedef struct {
    struct { char sha[17]; char *name; } files[CV_FILEDROP_HISTORY];
    size_t n;                             /* added so far; the newest at (n - 1) % CV_FILEDROP_HISTORY */
} cv_filedrop_history_t;

void cv_filedrop_history_add(cv_filedrop_history_t *h, const char *sha, const char *name);
/* The name of a remembered file with that hash (and that name, unless
   name is NULL), or NULL. */
const char *cv_filedrop_history_find(const cv_filedrop_history_t *h, const char *sha, const char *name);
void cv_filedrop_history_free(cv_filedrop_history_t *h);

/* ---- position: the text kept in the spool (cv_filedrop_position.c) ---- */

#define CV_FILEDROP_SHA_HEX 16                     /* hex digits of the file's SHA-256 kept */

typedef struct {
    char *name;                           /* file name in the inbox */
    char sha[CV_FILEDROP_SHA_HEX + 1];             /* its content's SHA-256, first digits */
    long done;                            /* records submitted (or skipped) */
    long total;                           /* records in the file (-1: not yet known) */
    uint64_t first, last;                 /* spool ids of its first and last submitted record (0: none) */
    uint64_t checked;                     /* not kept: ids below it are known settled */
    long refused;                         /* not kept: records the client refused (too large) */
    long refused_line;                    /* not kept: line of the first of them */
    cv_filedrop_tally_t tally;            /* not kept: its settlements in this run */
    bool copy;                            /* not kept: a copy of a file settled in this run */
} cv_filedrop_entry_t;

/* {"filedrop":1,"files":[{"name":..,"sha":..,"done":..,"total":..,"first":..,"last":..}]}
   Returns a malloc'd text, NULL when out of memory. */
char *cv_filedrop_position_encode(const cv_filedrop_entry_t *files, size_t n);
/* Parses a position text into a malloc'd array (names malloc'd too).
   Returns 0, or -1 when the text is not a file-drop position. */
int cv_filedrop_position_decode(const char *text, cv_filedrop_entry_t **files, size_t *n);
void cv_filedrop_position_entries_free(cv_filedrop_entry_t **files, size_t *n);

/* A file whose records are all settled (still in the inbox): moves it to
   done/, or to error/ when none went in, with <name>.reason when some did
   not; logs one line (INFO when all went in, else WARN) and counts it in
   m, then saves the metrics (cv_filedrop_report.c). copy_of: the settled
   file it is a copy of, or NULL. 0, or -1 when it cannot be moved (logged). */
int cv_filedrop_report_settle(const cv_filedrop_conf_t *conf, const char *source, const cv_filedrop_entry_t *e,
                              const char *copy_of, cv_filedrop_metrics_t *m);

#endif
