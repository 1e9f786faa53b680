/*  cv_store_once — one statement at the hub's start or reload, on a connection of its
    own: the stages that check a configuration file (hub/deadlines,
    hub/routing) hand it to their SQL function this way, once, before the
    writer and the commander connect (and again at each SIGHUP). Errors name the stage and the SQLSTATE;
    the parameter (a city's rules) is never logged. */
#include "cv_store.h"

#include <libpq-fe.h>
#include <stdio.h>

int cv_store_once(const char *conninfo, const char *sql, const char *param, const char *what, char *value,
                  size_t valuelen, char *err, size_t errlen)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "%s: cannot connect to PostgreSQL", what);
        PQfinish(pg);
        return -1;
    }
    const char *v[1] = { param };
    PGresult *r = PQexecParams(pg, sql, 1, NULL, v, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(err, errlen, "%s: PostgreSQL refused it: SQLSTATE %s", what, st ? st : "?");
        rc = -1;
    } else if (value && valuelen) {
        snprintf(value, valuelen, "%s", PQntuples(r) && PQnfields(r) ? PQgetvalue(r, 0, 0) : "");
    }
    PQclear(r);
    PQfinish(pg);
    return rc;
}
