/*  api_retention — the retention rules (deploy/retention.yaml, docs/rgpd.md)
    read into the JSON that cv_retention_run (schemas/sql/functions/rgpd.sql)
    takes:

        default_days: 1825              # required: every request not named below
        audit_days: 365                 # api_audit rows (default 365)
        dead_letters_days: 90           # dead_letters rows (default 90)
        services:
          dechets:
            days: 730                   # the service's requests
            categories:
              encombrants: 365          # one category of the service

    {"default_days": 1825, "audit_days": 365, "dead_letters_days": 90,
     "services": {"dechets": {"days": 730, "categories": {"encombrants": 365}}}}.
    Days count from the request's last event (an audit row's time, a dead
    letter's reception); 1 to 36500. audit_days and dead_letters_days are
    always in the JSON (the defaults below when the file omits them). Unknown
    keys are refused with their line. */
#ifndef CV_API_RETENTION_H
#define CV_API_RETENTION_H

#include <jansson.h>
#include <stddef.h>

#define CV_RETENTION_AUDIT_DAYS 365         /* CNIL: access logs 6 months to 1 year */
#define CV_RETENTION_DEAD_LETTERS_DAYS 90   /* time to look at and replay a refused record */

/* The rules of the YAML text `text` (name: for the messages), or NULL with
   "name:line: reason" in err. */
json_t *cv_api_retention_parse(const char *name, const char *text, size_t len, char *err, size_t errlen);

/* The same from a file. */
json_t *cv_api_retention_load(const char *path, char *err, size_t errlen);

#endif
