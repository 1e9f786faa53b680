-- deploy/sql/roles.sql — the PostgreSQL roles of civibus, created once per
-- cluster by the city's DBA, as a superuser:
--
--     psql -X -v ON_ERROR_STOP=1 -d postgres -f deploy/sql/roles.sql
--
-- then the database, owned by the schema's owner:
--
--     CREATE DATABASE civibus OWNER civibus_owner;
--
-- then a password for each role that logs in over the network (never in this
-- file, nor in the configurations: a ~/.pgpass or a PGPASSFILE of the service's
-- user), e.g. in psql:  \password civibus_hub
--
-- Each program connects as its own role (docs/operations.md, "Database roles"):
--
--   civibus_owner   owns the schema; only `civibus-hub --migrate` connects as it
--   civibus_hub     the hub: writes the timeline (cv_ingest), commands, dead letters
--   civibus_api     the API: reads what the access table shows, writes its audit and
--                   sessions, and everything else through a few functions
--   civibus_admin   civibusctl: tokens, dead letters, erasure, retention, fixes
--   civibus_notify  civibus-notify: the notifications' queue and mail threads
--
-- What each role may do is in schemas/sql/functions/zz_grants.sql, which the
-- migrations apply (as civibus_owner) whenever these roles exist. Running this
-- file again changes nothing: a role that exists is left as it is.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['civibus_owner', 'civibus_hub', 'civibus_api',
                             'civibus_admin', 'civibus_notify'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
                           ' NOREPLICATION NOBYPASSRLS', r);
        END IF;
    END LOOP;
END
$$;

