/*  driver_filedrop_xml — a push XML reader for the file-drop driver.

    Fed the bytes of a file in chunks of any size, it calls emit with one
    JSON object per record element (say every <dossier>, at any depth, that
    is not inside another record):
      - the record's attributes and child elements become fields, by local
        name (namespace prefixes are dropped);
      - a child with only text becomes a string (trimmed, the empty rule
        applied); a child with attributes or children becomes an object,
        its own text (if not blank) under text_key;
      - a child element that repeats becomes a list, in document order.
        <dossier numero="PC-1"><etat date="2024-03-01">Dépôt</etat>
          <tel>01</tel><tel>02</tel></dossier>
        → {"numero":"PC-1","etat":{"date":"2024-03-01","_text":"Dépôt"},"tel":["01","02"]}
    Text outside records is ignored. The encoding is the document's (its
    XML declaration; UTF-8 without one): UTF-8, UTF-16, ISO-8859-1 and
    US-ASCII through expat, Windows-1252 and ISO-8859-15 through the
    driver's own tables; the `encoding` option overrides the declaration.

    Why expat: a small, streaming (SAX) parser that reports line numbers,
    keeps no global state (nothing to clean up, valgrind-clean), loads no
    external entity or DTD, protects itself against entity expansion
    attacks, and lets the driver plug in its own Windows-1252 table. The
    reader refuses any entity declaration outright: export files have no
    use for them.

    The first problem stops the reader and is kept as "line N: reason":
    malformed XML (expat's message: not well-formed, unclosed token...),
    an entity declaration, elements nested deeper than 32 in a record, a
    record larger than max_record_bytes. No value is ever quoted. */
#ifndef DRIVER_FILEDROP_XML_H
#define DRIVER_FILEDROP_XML_H

#include "cv_filedrop.h"

typedef struct {
    const char *record;           /* local name of the record element */
    const char *encoding;         /* NULL: the document's declaration */
    const char *attribute_prefix; /* put before attribute names ("" or NULL: none) */
    const char *text_key;         /* key of an element's text beside attributes ("_text") */
    cv_filedrop_values_t values;
    size_t max_record_bytes;      /* 0: 1 MiB */
} cv_filedrop_xml_opts_t;

typedef struct cv_filedrop_xml cv_filedrop_xml_t;

cv_filedrop_xml_t *cv_filedrop_xml_new(const cv_filedrop_xml_opts_t *opts, cv_filedrop_emit_fn emit, void *arg);
void cv_filedrop_xml_destroy(cv_filedrop_xml_t **self_p);

/* Parses len more bytes. Returns 0, or -1 when the file is not valid
   (cv_filedrop_xml_error says why) or emit asked to stop (error is then ""). */
int cv_filedrop_xml_feed(cv_filedrop_xml_t *self, const char *data, size_t len);
/* The end of the file: checks the document is complete. 0 or -1. */
int cv_filedrop_xml_end(cv_filedrop_xml_t *self);

const char *cv_filedrop_xml_error(const cv_filedrop_xml_t *self);
long cv_filedrop_xml_records(const cv_filedrop_xml_t *self);

#endif
