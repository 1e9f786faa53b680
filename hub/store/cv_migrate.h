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
    CONCURRENTLY). An error is reported as "file:line: SQLSTATE reason".

    A repeatable file whose name begins with zz_ (functions/zz_grants.sql,
    the roles' privileges, docs/operations.md "Database roles") also runs
    again, unchanged, when something else was applied in the same pass and a
    function cv_* has its default privileges: created since (or dropped and
    created again), it has lost its grants. CREATE OR REPLACE keeps them.

    Who migrates: the role owning the schema (civibus_owner) or a superuser.
    Any other role (civibus_hub in production) only checks that the database
    is at this civibus's version, and is refused otherwise ("run civibus-hub
    --migrate as civibus_owner"). Both refuse a database holding a numbered
    migration newer than the highest file of dir: it was migrated by a newer
    civibus. */
#ifndef CV_MIGRATE_H
#define CV_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

/* Applies pending migrations, then changed repeatable files, from dir over
   conn (idle, not in a transaction) when the connected role may change the
   schema, else only checks it (cv_migrate_check). Returns the number of
   files applied (0 when up to date or checked), or -1 with a reason in err. */
int cv_migrate(PGconn *conn, const char *dir, char *err, size_t errlen);

/* cv_migrate's applying half, whoever the role is (civibus-hub --migrate):
   a role lacking the rights fails with the server's SQLSTATE 42501. */
int cv_migrate_apply(PGconn *conn, const char *dir, char *err, size_t errlen);

/* 0 when the database holds every numbered migration of dir, none newer,
   and every repeatable file as it is now; else -1 and why in err. Changes
   nothing. */
int cv_migrate_check(PGconn *conn, const char *dir, char *err, size_t errlen);

/* The highest NNN of dir's numbered files, or -1 with a reason in err. */
int cv_migrate_highest(const char *dir, char *err, size_t errlen);

#endif
