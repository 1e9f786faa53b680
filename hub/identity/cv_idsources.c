/*  cv_idsources — what civibus.yaml says of each source's records, written
    into PostgreSQL at the hub's start, before any event is read.

    `identity:` — a self-declared identity (a web form, a mail's sender) must
    never attach to a stored citizen by itself; which sources are
    self-declared lives in identity_sources (019_identity_certainty.sql),
    which a city could so far only fill by SQL. A source may now say it:

        - name: courriel
          identity: declared

    and the rule holds from the source's first mail. The config wins over
    SQL for the sources it names; the others are left alone.

    `attachments: true` — the sources whose records may name files of the
    attachments folder (the city's mailbox): attachment_sources, the list
    replaced whole (functions/attachments.sql).

    Each is one statement through cv_store_once. */
#include "cv_idsources.h"

#include "store/cv_store.h"

#include <stdio.h>
#include <stdlib.h>

/* {"name": level, ...} of the sources that say their identity level: names are
   [a-z0-9_-] (cv_hub_config.c), so they need no escaping in the JSON */
#define IDSOURCES_SQL \
    "WITH c AS (SELECT key AS source, value::smallint AS level FROM jsonb_each_text($1::jsonb)), " \
    "del AS (DELETE FROM identity_sources s USING c WHERE s.source = c.source AND c.level = 2 RETURNING 1), " \
    "ins AS (INSERT INTO identity_sources (source, channel, certainty) " \
    "        SELECT source, 'civibus.yaml', level FROM c WHERE level <> 2 " \
    "        ON CONFLICT (source) DO UPDATE SET certainty = EXCLUDED.certainty " \
    "        WHERE identity_sources.certainty IS DISTINCT FROM EXCLUDED.certainty RETURNING 1) " \
    "SELECT (SELECT count(*) FROM del) + (SELECT count(*) FROM ins)"

int cv_idsources_apply(const char *conninfo, const cv_hub_config_t *config, size_t *changed, char *err,
                       size_t errlen)
{
    *changed = 0;
    char list[CV_MAX_SOURCES * 70 + 3];
    size_t n = 0;
    list[n++] = '{';
    for (size_t i = 0; i < config->nsources; i++)
        if (config->sources[i].certainty)
            n += (size_t) snprintf(list + n, sizeof list - n, "%s\"%s\": %d", n > 1 ? ", " : "",
                                   config->sources[i].name, config->sources[i].certainty);
    if (n == 1)
        return 0;
    snprintf(list + n, sizeof list - n, "}");
    char count[32];
    if (cv_store_once(conninfo, IDSOURCES_SQL, list, "identity sources", count, sizeof count, err, errlen) < 0)
        return -1;
    *changed = (size_t) strtoul(count, NULL, 10);
    return 0;
}

int cv_idsources_apply_files(const char *conninfo, const cv_hub_config_t *config, char *err, size_t errlen)
{
    /* a text[] literal of the same checked names */
    char list[CV_MAX_SOURCES * 66 + 3];
    size_t n = 0;
    list[n++] = '{';
    for (size_t i = 0; i < config->nsources; i++)
        if (config->sources[i].files)
            n += (size_t) snprintf(list + n, sizeof list - n, "%s%s", n > 1 ? "," : "", config->sources[i].name);
    snprintf(list + n, sizeof list - n, "}");
    return cv_store_once(conninfo, "SELECT cv_attachment_sources_set($1::text[])", list, "attachments", NULL, 0,
                         err, errlen);
}
