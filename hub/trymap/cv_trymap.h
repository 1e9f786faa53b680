/*  trymap — `civibus-hub --try-mapping SOURCE FILE`: maps a sample export
    with the source's mapping and prints what the hub would make of it,
    storing nothing (docs/mapping.md, "Trying a mapping").

    For a city's IT engineer writing a mapping for their software's export:
    the file is read as the adapter would read it (CSV and XML by the
    file-drop driver's own parsers and settings, from --adapter-config;
    JSON lines as `civibus-adapter replay` sends them), every record goes
    through cv_mapping_apply as in the hub's ingest, and the report gives
    counts by category, channel, status and outcome, how many events have
    requested_at and a location, the first 3 events, and each distinct
    dead-letter reason with its count and one example. No PostgreSQL
    connection, no socket, no file written, nothing logged.

    The events printed hold the file's values (personal data): they go to
    `out` only, never through cv_log. Reasons and details never hold a
    value (cv_mapping.h). */
#ifndef CV_TRYMAP_H
#define CV_TRYMAP_H

#include <stdio.h>

#include "cv_hub_config.h"

/* Exit codes of --try-mapping. */
enum { CV_TRYMAP_ALL_MAPPED = 0, CV_TRYMAP_SOME_DEAD = 1, CV_TRYMAP_USAGE = 2 };

/* Maps `file` with source `source` of config; adapter_config (NULL: none)
   is the adapter's YAML whose `driver:` section (kind: filedrop) says how
   to read a CSV or XML file. The report goes to out, a usage or config
   problem ("file:line: reason") to err. Returns one of the codes above:
   0 every record maps, 1 some do not (or the file cannot be read), 2 a
   usage or configuration error. */
int cv_trymap_run(const cv_hub_config_t *config, const char *source, const char *file,
                  const char *adapter_config, FILE *out, FILE *err);

#endif
