/*  api_db — one PostgreSQL connection per HTTP worker thread, with every
    statement of the API prepared on it once (api_sql.c lists them), and a
    second one to the read replica when postgres.read_dsn is set.

    A worker connects on its first request (session time zone UTC, a
    statement timeout), prepares everything (api_sql.c), and keeps the
    connection until
    the thread ends (a pthread key destructor closes it). A broken
    connection is dropped and reopened on the next request. Nothing reaches
    SQL but through parameters of these prepared statements. */
#ifndef CV_API_DB_H
#define CV_API_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Statement names (indexes into the table of api_sql.c). */
typedef enum {
    CV_SQL_TOKEN = 0, CV_SQL_REQUEST, CV_SQL_REQUEST_EVENTS, CV_SQL_REQUEST_NOTIFICATIONS, CV_SQL_SERVICE_OPEN, CV_SQL_OVERDUE,
    CV_SQL_TIMELINE, CV_SQL_TIMELINE_AGENT,
    CV_SQL_CITIZEN_SEARCH, CV_SQL_TRACK,
    CV_SQL_HAS_PROPOSALS, CV_SQL_O311_SERVICES, CV_SQL_O311_SERVICE_OF, CV_SQL_O311_REQUESTS,
    CV_SQL_O311_REQUEST, CV_SQL_O311_INGEST, CV_SQL_LINK_REVOKED, CV_SQL_LINK_REQUESTS,
    CV_SQL_IDENTITY_INSTALLED, CV_SQL_REQUEST_COUNT, CV_SQL_O311_REQUEST_ID,
    CV_SQL_QUEUE, CV_SQL_COUNT
} cv_sql_t;

/* The SQL text of a statement (api_sql.c); `identity`: identity resolution
   (004_identity.sql) is installed, so the citizen search can use it. */
const char *cv_api_sql_text(cv_sql_t stmt, bool identity);

/* How a column's text (PostgreSQL's text output) is written as JSON: a
   string, a number or a boolean as it is, a timestamp in the form
   PostgreSQL's JSON gives it, JSON text (compacted). */
typedef enum { CV_API_COL_STR, CV_API_COL_NUM, CV_API_COL_BOOL, CV_API_COL_TIME, CV_API_COL_JSON }
    cv_api_col_kind_t;

/* One column of an object: its field name (the access table's) and kind. */
typedef struct {
    const char *field;
    cv_api_col_kind_t kind;
} cv_api_column_t;

/* The columns of "request", "event" or "citizen", in the order the
   statements give them; NULL (and *n 0) for another object. */
const cv_api_column_t *cv_api_sql_columns(const char *object, size_t *n);

/* The timeline's rows (api_sql.c, CV_SQL_TIMELINE*): part, rank, the
   object's columns from CV_TIMELINE_VALUES on, CV_TIMELINE_NCOLS in all. */
#define CV_TIMELINE_PART 0
#define CV_TIMELINE_RANK 1
#define CV_TIMELINE_VALUES 2
#define CV_TIMELINE_NCOLS 24

int cv_api_db_init(const char *conninfo);
void cv_api_db_term(void);

/* The read replica (postgres.read_dsn; NULL = none): see api_db.c for
   which reads it serves. Off until the watcher (api_health.c) finds it
   usable: connected, in recovery, lagging at most max_replica_lag_s. */
void cv_api_db_set_replica(const char *read_dsn);
void cv_api_db_replica_usable(bool usable);
/* Statements served by the replica, and reads meant for it that the
   primary served because the replica was down, lagging or failed the
   statement (a caller's own write not replayed yet is not counted). */
void cv_api_db_counts(unsigned long *replica_reads, unsigned long *fallbacks);

/* Around each request (api_server.c): `read_only` a GET or HEAD, `caller`
   a hash of who asks (token, session or address); `wrote` at the end: a
   write answered 2xx, whose WAL position the caller's next reads wait for. */
void cv_api_db_request_begin(bool read_only, uint64_t caller);
void cv_api_db_request_end(bool wrote);

/* Runs a prepared statement on this thread's connection (text parameters,
   NULL = SQL null; text results). NULL when PostgreSQL is unreachable. The
   caller PQclear()s the result. */
PGresult *cv_api_db_exec(cv_sql_t stmt, int nparams, const char *const *values);

/* Runs a parameterised statement that cannot be prepared in advance (its
   table may not exist yet), on this thread's connection. */
PGresult *cv_api_db_exec_params(const char *sql, int nparams, const char *const *values);

/* Start-up check: the database answers and schema_migrations holds
   migrations 5 (005_api.sql) and 16 (016_api_audit_reads.sql: the audit
   rows' client and citizen_ids), applied by the hub. */
int cv_api_db_check_schema(const char *conninfo, char *err, size_t errlen);

#endif
