/*  cv_deadlines — the city's due-date rules (deploy/deadlines.yaml,
    docs/deadlines.md): read and checked with the hub's configuration
    ("file:line: reason", civibus-hub --check-config), then handed to
    PostgreSQL at start-up (cv_deadlines_set, schemas/sql/functions/
    deadlines.sql), where the store applies them to every batch. */
#ifndef CV_DEADLINES_H
#define CV_DEADLINES_H

#include <stddef.h>

/* The rules of the file as compact JSON text for cv_deadlines_set
   ({"region", "rules": [{category, channel, days, calendar}]}, malloc'd),
   or NULL with "file:line: reason" in err. *nrules: how many rules. */
char *cv_deadlines_load(const char *path, size_t *nrules, char *err, size_t errlen);

/* Loads the rules into the database (rules NULL: none, the store keeps the
   sources' due dates only); 0, or -1 with the reason in err. *changed: the
   requests whose due date moved. */
int cv_deadlines_apply(const char *conninfo, const char *rules, long *changed, char *err, size_t errlen);

#endif
