/*  cv_idsources — civibus.yaml's `identity:` of each source into
    identity_sources.

    A self-declared identity (a web form, a mail's sender) must never attach
    to a stored citizen by itself; which sources are self-declared lives in
    the table identity_sources (019_identity_certainty.sql), which a city
    could so far only fill by SQL. A source of civibus.yaml may now say it:

        - name: courriel
          identity: declared

    and the hub writes it at every start, before any event is read, so the
    rule holds from the source's first mail. The config wins over SQL for
    the sources it names; the others are left alone. */
#include "cv_idsources.h"

#include "store/cv_store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

static int s_exec(PGconn *pg, const char *sql, int n, const char *const *v, size_t *changed, char *err,
                  size_t errlen)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(err, errlen, "identity sources: %s failed: SQLSTATE %s", n ? "an update" : sql, st ? st : "?");
    } else if (changed && n) {
        *changed += (size_t) atol(PQcmdTuples(r));
    }
    PQclear(r);
    return ok ? 0 : -1;
}

int cv_idsources_apply(const char *conninfo, const cv_hub_config_t *config, size_t *changed, char *err,
                       size_t errlen)
{
    *changed = 0;
    size_t said = 0;
    for (size_t i = 0; i < config->nsources; i++)
        said += config->sources[i].certainty != 0;
    if (!said)
        return 0;
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "identity sources: cannot connect to PostgreSQL");
        PQfinish(pg);
        return -1;
    }
    int rc = s_exec(pg, "BEGIN", 0, NULL, NULL, err, errlen);
    for (size_t i = 0; rc == 0 && i < config->nsources; i++) {
        const cv_source_conf_t *s = &config->sources[i];
        if (!s->certainty)
            continue;
        char level[8];
        snprintf(level, sizeof level, "%d", s->certainty);
        const char *v[2] = { s->name, level };
        if (s->certainty == 2)
            rc = s_exec(pg, "DELETE FROM identity_sources WHERE source = $1", 1, v, changed, err, errlen);
        else
            rc = s_exec(pg, "INSERT INTO identity_sources (source, channel, certainty) "
                            "VALUES ($1, 'civibus.yaml', $2::smallint) "
                            "ON CONFLICT (source) DO UPDATE SET certainty = EXCLUDED.certainty "
                            "WHERE identity_sources.certainty IS DISTINCT FROM EXCLUDED.certainty",
                        2, v, changed, err, errlen);
    }
    rc = rc == 0 ? s_exec(pg, "COMMIT", 0, NULL, NULL, err, errlen) : rc;
    PQfinish(pg);
    return rc;
}

int cv_idsources_apply_files(const char *conninfo, const cv_hub_config_t *config, char *err, size_t errlen)
{
    /* a text[] literal of names already checked to be [a-z0-9_-] (cv_hub_config.c) */
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
