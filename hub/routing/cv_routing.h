/*  cv_routing — the city's routing rules (deploy/routing.yaml,
    docs/routing.md): which service a new front-office request goes to
    (category, keywords, channel; first match wins; a default triage queue)
    and how each service's software is reached (the adapter's source, the
    command kind, the payload made from the request). Read and checked with
    the hub's configuration ("file:line: reason", civibus-hub --check-config),
    then handed to PostgreSQL at start-up (cv_routing_set, schemas/sql/
    functions/routing.sql), where the requests are routed and dispatched in
    the transaction that creates them. */
#ifndef CV_ROUTING_H
#define CV_ROUTING_H

#include <stddef.h>

/* The file as compact JSON text for cv_routing_set (malloc'd), or NULL with
   "file:line: reason" in err. sources: the hub's configured source names
   (a dispatch must name one of them). *nrules: how many rules. */
char *cv_routing_load(const char *path, const char *const *sources, size_t nsources, size_t *nrules,
                      char *err, size_t errlen);

/* Loads the rules into the database (rules NULL: none, nothing routed);
   0, or -1 with the reason in err. */
int cv_routing_apply(const char *conninfo, const char *rules, char *err, size_t errlen);

#endif
