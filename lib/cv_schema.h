/*  schema — the highest numbered migration (schemas/sql/NNN_*.sql) this
    civibus knows. The API, which has no migrations folder, refuses to start
    on a database holding a newer one (api/api_db.c); the hub reads its
    folder instead (hub/store/cv_migrate.c). Bump it with every new
    migration: tests/unit/hub/test_migrate.c fails when it differs from the
    highest file number of schemas/sql. */
#ifndef CV_SCHEMA_H
#define CV_SCHEMA_H

#define CV_SCHEMA_VERSION 31

#endif
