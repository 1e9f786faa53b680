/*  cv_idsources — what civibus.yaml says of each source's records (its
    `identity:` level, docs/identity.md "Certainty"; `attachments: true`,
    docs/attachments.md), written to PostgreSQL at the hub's start. */
#ifndef CV_IDSOURCES_H
#define CV_IDSOURCES_H

#include "cv_hub_config.h"

#include <stddef.h>

/* One statement on a short connection of its own: each source whose
   `identity:` is declared or certified gets (or keeps) its row at that level;
   `software` removes its row (level 2 is the default). Sources that say
   nothing keep what the city set by SQL. 0, or -1 with err. */
int cv_idsources_apply(const char *conninfo, const cv_hub_config_t *config, size_t *changed, char *err,
                       size_t errlen);

/* The sources with `attachments: true` (their records may name files of
   the attachments folder, docs/attachments.md) into attachment_sources, and
   the trigger that reads their records' "files". 0, or -1 with err. */
int cv_idsources_apply_files(const char *conninfo, const cv_hub_config_t *config, char *err, size_t errlen);

#endif
