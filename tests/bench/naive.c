/*  naive — the connector a city would write without civibus (make bench).

    naive --from CONNINFO --to CONNINFO --count N

    Reads the first N events civibus stored in the --from database (with
    the request, citizen and source record rows each one implies) into
    memory, then writes them into the --to database (same schema, same
    indexes) the straightforward way: for each event, on one connection,
    one transaction with one parameterised INSERT per table it touches
    (citizens, citizen_sources, requests, request_sources, events,
    source_records; upserts where a row may exist already) and a COMMIT.
    Prepared statements, no batching, no pipelining: the usual "sync one
    record" loop. Only the write loop is timed.

    It does less than civibus per event (no mapping, no dedupe lookup, no
    lifecycle check, the projection is "last arrival wins"), so it is an
    optimistic naive connector; what it pays is one round trip per row
    and one WAL flush per event.

    Prints one JSON line {"events": N, "seconds": S, "eps": E}. Exit 0, or
    1 with the failing statement's SQLSTATE (never a value). */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The rows of one event, as text, in this column order. */
static const char *s_fetch_sql =
    "SELECT e.id, e.source, e.event_id, e.content_hash, e.kind, e.request_id, "
    "       e.source_record_id, e.service, e.category, e.channel, e.status, e.source_status, "
    "       e.source_channel, e.occurred_at, e.due_at, e.transition_flagged, e.citizen_id, "
    "       r.tracking_code, r.request_ref, cs.source_citizen_id, cs.identity, "
    "       sr.raw, sr.summary, sr.extra "
    "FROM events e "
    "JOIN requests r ON r.id = e.request_id "
    "JOIN source_records sr ON sr.source = e.source AND sr.source_record_id = e.source_record_id "
    "LEFT JOIN LATERAL (SELECT c.source_citizen_id, c.identity FROM citizen_sources c "
    "                   WHERE c.citizen_id = e.citizen_id "
    "                   ORDER BY c.source = e.source DESC LIMIT 1) cs ON true "
    "ORDER BY e.id LIMIT $1";

enum {
    F_ID, F_SOURCE, F_EVENT_ID, F_HASH, F_KIND, F_REQUEST_ID, F_RECORD_ID, F_SERVICE,
    F_CATEGORY, F_CHANNEL, F_STATUS, F_SOURCE_STATUS, F_SOURCE_CHANNEL, F_OCCURRED_AT,
    F_DUE_AT, F_FLAGGED, F_CITIZEN_ID, F_TRACKING, F_REQUEST_REF, F_CITIZEN_KEY, F_IDENTITY,
    F_RAW, F_SUMMARY, F_EXTRA
};

typedef struct {
    const char *name, *sql;
    int nparams;
    int fields[17];              /* result columns bound to $1..$n */
} stmt_t;

static const stmt_t s_stmts[] = {
    { "citizen", "INSERT INTO citizens (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
      1, { F_CITIZEN_ID } },
    { "citizen_source",
      "INSERT INTO citizen_sources (source, source_citizen_id, citizen_id, identity, identity_at) "
      "VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (source, source_citizen_id) DO UPDATE "
      "SET identity = EXCLUDED.identity, identity_at = EXCLUDED.identity_at, updated_at = now()",
      5, { F_SOURCE, F_CITIZEN_KEY, F_CITIZEN_ID, F_IDENTITY, F_OCCURRED_AT } },
    { "request",
      "INSERT INTO requests (id, tracking_code, service, category, channel, status, "
      "  status_occurred_at, status_event_id, due_at, citizen_id, request_ref) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE "
      "SET service = EXCLUDED.service, category = EXCLUDED.category, channel = EXCLUDED.channel, "
      "  status = EXCLUDED.status, status_occurred_at = EXCLUDED.status_occurred_at, "
      "  status_event_id = EXCLUDED.status_event_id, due_at = EXCLUDED.due_at, "
      "  citizen_id = EXCLUDED.citizen_id, updated_at = now()",
      11, { F_REQUEST_ID, F_TRACKING, F_SERVICE, F_CATEGORY, F_CHANNEL, F_STATUS, F_OCCURRED_AT,
            F_ID, F_DUE_AT, F_CITIZEN_ID, F_REQUEST_REF } },
    { "request_source",
      "INSERT INTO request_sources (source, source_record_id, request_id) VALUES ($1, $2, $3) "
      "ON CONFLICT DO NOTHING",
      3, { F_SOURCE, F_RECORD_ID, F_REQUEST_ID } },
    { "event",
      "INSERT INTO events (id, source, event_id, content_hash, kind, request_id, source_record_id, "
      "  service, category, channel, status, source_status, source_channel, occurred_at, due_at, "
      "  transition_flagged, citizen_id) OVERRIDING SYSTEM VALUE "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
      17, { F_ID, F_SOURCE, F_EVENT_ID, F_HASH, F_KIND, F_REQUEST_ID, F_RECORD_ID, F_SERVICE,
            F_CATEGORY, F_CHANNEL, F_STATUS, F_SOURCE_STATUS, F_SOURCE_CHANNEL, F_OCCURRED_AT,
            F_DUE_AT, F_FLAGGED, F_CITIZEN_ID } },
    { "source_record",
      "INSERT INTO source_records (source, source_record_id, request_id, raw, summary, extra, record_at) "
      "VALUES ($1, $2, $3, $4::json, $5, $6::jsonb, $7) ON CONFLICT (source, source_record_id) "
      "DO UPDATE SET raw = EXCLUDED.raw, summary = EXCLUDED.summary, extra = EXCLUDED.extra, "
      "  record_at = EXCLUDED.record_at, updated_at = now()",
      7, { F_SOURCE, F_RECORD_ID, F_REQUEST_ID, F_RAW, F_SUMMARY, F_EXTRA, F_OCCURRED_AT } },
};
#define N_STMTS (sizeof s_stmts / sizeof s_stmts[0])

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Reports a failed result by statement name and SQLSTATE; returns -1. */
static int s_failed(PGconn *conn, PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    fprintf(stderr, "naive: %s failed: %s\n", what,
            state ? state : PQerrorMessage(conn));
    PQclear(res);
    return -1;
}

static int s_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return s_failed(conn, res, sql);
    PQclear(res);
    return 0;
}

static int s_prepare(PGconn *conn)
{
    for (size_t i = 0; i < N_STMTS; i++) {
        PGresult *res = PQprepare(conn, s_stmts[i].name, s_stmts[i].sql, s_stmts[i].nparams, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return s_failed(conn, res, s_stmts[i].name);
        PQclear(res);
    }
    return 0;
}

/* One event: BEGIN, its rows, COMMIT. */
static int s_write_event(PGconn *conn, PGresult *rows, int row)
{
    if (s_exec(conn, "BEGIN") < 0)
        return -1;
    bool has_citizen = !PQgetisnull(rows, row, F_CITIZEN_ID) && !PQgetisnull(rows, row, F_CITIZEN_KEY);
    for (size_t i = 0; i < N_STMTS; i++) {
        if (i < 2 && !has_citizen)
            continue;
        const char *values[17];
        for (int p = 0; p < s_stmts[i].nparams; p++) {
            int f = s_stmts[i].fields[p];
            values[p] = PQgetisnull(rows, row, f) ? NULL : PQgetvalue(rows, row, f);
        }
        PGresult *res = PQexecPrepared(conn, s_stmts[i].name, s_stmts[i].nparams, values, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return s_failed(conn, res, s_stmts[i].name);
        PQclear(res);
    }
    return s_exec(conn, "COMMIT");
}

static PGconn *s_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "naive: cannot connect (%s): %s", conninfo, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

int main(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    long count = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--from") == 0)
            from = argv[i + 1];
        else if (strcmp(argv[i], "--to") == 0)
            to = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            count = strtol(argv[i + 1], NULL, 10);
    }
    if (!from || !to || count <= 0 || argc != 7) {
        fprintf(stderr, "usage: naive --from CONNINFO --to CONNINFO --count N\n");
        return 2;
    }
    PGconn *src = s_connect(from), *dst = src ? s_connect(to) : NULL;
    PGresult *rows = NULL;
    int rc = 1;
    if (!src || !dst)
        goto done;
    char limit[24];
    snprintf(limit, sizeof limit, "%ld", count);
    const char *params[1] = { limit };
    rows = PQexecParams(src, s_fetch_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
        s_failed(src, rows, "reading the events");
        rows = NULL;
        goto done;
    }
    if (PQntuples(rows) != count) {
        fprintf(stderr, "naive: %d events in the source database, %ld wanted\n", PQntuples(rows), count);
        goto done;
    }
    if (s_prepare(dst) < 0)
        goto done;
    double t0 = s_now();
    for (int row = 0; row < PQntuples(rows); row++)
        if (s_write_event(dst, rows, row) < 0)
            goto done;
    double seconds = s_now() - t0;
    printf("{\"events\": %ld, \"seconds\": %.3f, \"eps\": %.1f}\n", count, seconds, (double) count / seconds);
    rc = 0;
done:
    PQclear(rows);
    PQfinish(dst);
    PQfinish(src);
    return rc;
}
