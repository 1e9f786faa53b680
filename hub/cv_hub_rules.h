/*  hub_rules — what the hub's configuration names besides its sources and
    writes into PostgreSQL: the deadlines (deploy/deadlines.yaml,
    hub/deadlines/), the routing rules (deploy/routing.yaml, hub/routing/)
    and each source's identity level and attachments flag
    (hub/identity/cv_idsources.c).

    Read in two steps, at start-up and at every reload (SIGHUP): _load
    checks the files against the configuration ("file:line: reason", the
    database not touched), _apply writes them, each in its own transaction,
    after the migrations. A reload whose files do not load keeps what the
    database holds. */
#ifndef CV_HUB_RULES_H
#define CV_HUB_RULES_H

#include <stddef.h>

#include "cv_hub_config.h"

typedef struct cv_hub_rules cv_hub_rules_t;

/* The deadline and routing files the config names (either may be absent),
   checked. NULL with "file:line: reason" in err. */
cv_hub_rules_t *cv_hub_rules_load(const cv_hub_config_t *config, char *err, size_t errlen);
void cv_hub_rules_destroy(cv_hub_rules_t **self_p);

/* Writes them and the sources' levels over config->conninfo, logging what
   changed. 0, or -1 with the reason in err. */
int cv_hub_rules_apply(const cv_hub_rules_t *self, const cv_hub_config_t *config, char *err, size_t errlen);

#endif
