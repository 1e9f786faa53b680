/*  api_retention — the retention rules (deploy/retention.yaml, docs/rgpd.md)
    read into the JSON that cv_retention_run (schemas/sql/functions/rgpd.sql)
    takes:

        default_days: 1825              # required: every request not named below
        services:
          dechets:
            days: 730                   # the service's requests
            categories:
              encombrants: 365          # one category of the service

    {"default_days": 1825, "services": {"dechets": {"days": 730,
     "categories": {"encombrants": 365}}}}. Days count from the request's last
    event; 1 to 36500. Unknown keys are refused with their line. */
#ifndef CV_API_RETENTION_H
#define CV_API_RETENTION_H

#include <jansson.h>
#include <stddef.h>

/* The rules of the YAML text `text` (name: for the messages), or NULL with
   "name:line: reason" in err. */
json_t *cv_api_retention_parse(const char *name, const char *text, size_t len, char *err, size_t errlen);

/* The same from a file. */
json_t *cv_api_retention_load(const char *path, char *err, size_t errlen);

#endif
