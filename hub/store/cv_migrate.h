/*  migrate — applies schemas/sql/NNN_name.sql files to a PostgreSQL database.

    Files are applied in version order (the NNN prefix, compared as a number),
    each in its own transaction that first takes an advisory lock, so two hubs
    starting together do not race: the second waits, then sees the version
    recorded and skips it. Each applied file is recorded in
    schema_migrations(version, name, checksum, applied_at); the runner creates
    that table itself. A file whose content changed after it was applied
    (checksum differs) stops start-up: migrations are immutable, add a new one.

    A migration file holds plain SQL statements, without BEGIN/COMMIT and
    without statements that cannot run in a transaction (CREATE INDEX
    CONCURRENTLY). An error is reported as "file:line: SQLSTATE reason". */
#ifndef CV_MIGRATE_H
#define CV_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

/* Applies pending migrations from dir over conn (idle, not in a
   transaction). Returns the number applied (0 when up to date), or -1 with
   a reason in err. */
int cv_migrate(PGconn *conn, const char *dir, char *err, size_t errlen);

#endif
