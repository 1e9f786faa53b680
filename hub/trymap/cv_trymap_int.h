/*  trymap_int — between the two halves of --try-mapping: cv_trymap_read.c
    turns the sample file into raw records, as an adapter would send them;
    cv_trymap.c maps them and writes the report. */
#ifndef CV_TRYMAP_INT_H
#define CV_TRYMAP_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* One record of the file: record (the callee owns it) is the raw record,
   or NULL when the record cannot reach the mapping at all, then reason
   and detail say why, as the hub's dead letter would (invalid_json,
   invalid_utf8, too_large). line: where it starts; index: its rank. */
typedef void (*cv_trymap_record_fn)(void *arg, json_t *record, long line, long index, const char *reason,
                                    const char *detail);

typedef struct {
    const char *path;              /* the sample file */
    const char *adapter_config;    /* NULL: none (CSV with the driver's defaults, JSON lines) */
    const char *source;            /* the adapter's driver must serve it */
    int64_t max_event_bytes;       /* the hub's limit */
} cv_trymap_input_t;

typedef struct {
    char settings[300];            /* "csv: separator ';', ..." */
    char problem[700];             /* why the file cannot be read ("" when it can) */
    char hint[300];                /* the driver's header hint ("" when none) */
    char separator[8];             /* the separator the hint suggests ("','", "tab") */
} cv_trymap_read_t;

/* Reads the whole file, calling fn for each record. 0 when read (maybe
   with out->problem: the driver would move the file to error/), -1 for a
   usage or configuration problem ("file:line: reason" in err). */
int cv_trymap__read(const cv_trymap_input_t *in, cv_trymap_record_fn fn, void *arg, cv_trymap_read_t *out,
                    char *err, size_t errlen);

#endif
