/*  migrate — applies schemas/sql to a PostgreSQL database: the numbered
    migrations, then the repeatable files that define the functions.

    Numbered migrations, NNN_name.sql (tables, columns, indexes, types,
    sequences, data): applied in version order (the NNN prefix, compared as a
    number), once each, recorded in schema_migrations(version, name,
    checksum, applied_at). A file whose content changed after it was applied
    (checksum differs) stops start-up: migrations are immutable, add a new
    one. The one exception is the manifest dir/rewritten ("version checksum
    [file]" lines): a recorded checksum listed there for its version is a
    former content of a file that was rewritten on purpose; it is replaced by
    the file's current checksum (logged once) and nothing runs. A database
    that still holds such a former checksum while a listed version is pending
    was started part-way with the former files: refused, nothing changes.

    Repeatable files, dir/functions/NAME.sql (every function, trigger
    function and trigger, CREATE OR REPLACE): after the numbered migrations,
    in file-name order, each one whose checksum differs from the one recorded
    in schema_repeatables(name, checksum, applied_at) is run again and its
    checksum recorded; an unchanged one is skipped. A missing functions
    folder means none.

    Each file runs in its own transaction that first takes an advisory lock,
    so two hubs starting together do not race: the second waits, then sees
    the file recorded and skips it. The runner creates both tables itself. A
    file holds plain SQL statements (or only comments), without BEGIN/COMMIT
    and without statements that cannot run in a transaction (CREATE INDEX
    CONCURRENTLY). An error is reported as "file:line: SQLSTATE reason". */
#ifndef CV_MIGRATE_H
#define CV_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

/* Applies pending migrations, then changed repeatable files, from dir over
   conn (idle, not in a transaction). Returns the number of files applied
   (0 when up to date), or -1 with a reason in err. */
int cv_migrate(PGconn *conn, const char *dir, char *err, size_t errlen);

#endif
