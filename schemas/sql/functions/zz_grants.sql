-- zz_grants.sql — the access policy of the database: what each civibus role
-- may do (docs/operations.md, "Database roles"; the roles come from
-- deploy/sql/roles.sql). Read it as the policy: one line per table and per
-- function; nothing is granted by default and ALTER DEFAULT PRIVILEGES is not
-- used, so a new table or function is reachable by nobody but its owner until
-- a line here names it.
--
-- Run by the migrations runner (hub/store/cv_migrate.c) after every other
-- file (its name sorts last), and again, unchanged, when a cv_ function was
-- created since it ran (dropped and created again, a function loses its
-- grants; CREATE OR REPLACE keeps them). Each role's block runs only when that
-- role exists, so a database without the roles (every test that connects as a
-- superuser, a city that did not create them) migrates as before.
--
-- Writes that touch the timeline, the identities or the merges go through
-- functions owned by the schema's owner and marked SECURITY DEFINER here
-- (search_path pinned to public, pg_temp): the API and civibusctl call them
-- and hold no UPDATE or DELETE on events, citizens or the audit tables. Each
-- of these functions checks its arguments itself (the API's role checks stay
-- in the API: who may merge, rectify, reroute).

-- 1. Nobody but the owner, by default -------------------------------------
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DO $$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT c.oid::regclass AS rel FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', o.rel);
    END LOOP;
    -- civibus's own functions (cv_*): not callable by PUBLIC; the extensions'
    -- (pg_trgm, unaccent) stay callable, cv_fold and the search need them
    FOR o IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'cv\_%'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', o.fn);
    END LOOP;
END
$$;

-- 2. The functions that write for their callers (run as the schema's owner).
--    Each says so in its own definition too, which CREATE OR REPLACE keeps; these
--    lines are the list, and make sure of it.
ALTER FUNCTION cv_ingest             SECURITY DEFINER SET search_path = public, pg_temp;  -- hub (and civibusctl remap, replay), API (Open311 POST)
ALTER FUNCTION cv_intake_register    SECURITY DEFINER SET search_path = public, pg_temp;  -- API: POST /v1/requests (the front office)
ALTER FUNCTION cv_citizen_merge      SECURITY DEFINER SET search_path = public, pg_temp;  -- API: merges
ALTER FUNCTION cv_citizen_split      SECURITY DEFINER SET search_path = public, pg_temp;  -- API: undo a merge
ALTER FUNCTION cv_citizen_detach     SECURITY DEFINER SET search_path = public, pg_temp;  -- API: detach a pair
ALTER FUNCTION cv_proposal_reject    SECURITY DEFINER SET search_path = public, pg_temp;  -- API: reject a proposal
ALTER FUNCTION cv_identity_check     SECURITY DEFINER SET search_path = public, pg_temp;  -- API: record a document check
ALTER FUNCTION cv_citizen_rectify    SECURITY DEFINER SET search_path = public, pg_temp;  -- API, civibusctl: RGPD rectification
ALTER FUNCTION cv_citizen_export     SECURITY DEFINER SET search_path = public, pg_temp;  -- API, civibusctl: RGPD export (reads all)
ALTER FUNCTION cv_citizen_erase      SECURITY DEFINER SET search_path = public, pg_temp;  -- civibusctl: RGPD erasure
ALTER FUNCTION cv_retention_run      SECURITY DEFINER SET search_path = public, pg_temp;  -- civibusctl: retention
ALTER FUNCTION cv_routing_reroute    SECURITY DEFINER SET search_path = public, pg_temp;  -- API: send a request elsewhere
ALTER FUNCTION cv_dashboard          SECURITY DEFINER SET search_path = public, pg_temp;  -- API: the dashboard's figures
ALTER FUNCTION cv_api_token          SECURITY DEFINER SET search_path = public, pg_temp;  -- API: a token by its hash
ALTER FUNCTION cv_notify_plan        SECURITY DEFINER SET search_path = public, pg_temp;  -- notifier: plans from events and addresses
ALTER FUNCTION cv_command_results    SECURITY DEFINER SET search_path = public, pg_temp;  -- hub: adapters' command results
ALTER FUNCTION cv_identity_propose   SECURITY DEFINER SET search_path = public, pg_temp;  -- hub: merge proposals
ALTER FUNCTION cv_attachment_sources_set SECURITY DEFINER SET search_path = public, pg_temp;  -- hub: its configuration
ALTER FUNCTION cv_deadlines_set      SECURITY DEFINER SET search_path = public, pg_temp;  -- hub: deploy/deadlines.yaml
ALTER FUNCTION cv_routing_set        SECURITY DEFINER SET search_path = public, pg_temp;  -- hub: deploy/routing.yaml
-- triggers fired by a role's own writes (commands' status by the hub)
ALTER FUNCTION cv_routing_on_result  SECURITY DEFINER SET search_path = public, pg_temp;

-- 3. Read-only helpers (IMMUTABLE or STABLE, they change nothing): every civibus role
--    may call them, in its own statements and inside the functions it calls
DO $$
DECLARE
    f text;
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['civibus_hub', 'civibus_api', 'civibus_admin', 'civibus_notify'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        FOREACH f IN ARRAY ARRAY[
            'cv_add_working_days',
            'cv_certainty_code',
            'cv_check_document_fits',
            'cv_code_finish',
            'cv_easter',
            'cv_holidays',
            'cv_identifier_fields',
            'cv_identifier_hash',
            'cv_identity_born',
            'cv_identity_clash',
            'cv_identity_confidence',
            'cv_intake_text',
            'cv_is_holiday',
            'cv_is_working_day',
            'cv_location',
            'cv_norm_email',
            'cv_norm_phone',
            'cv_notify_email_ok',
            'cv_retention_days',
            'cv_routing_norm',
            'cv_routing_put',
            'cv_address_key',
            'cv_birth_dates_differ',
            'cv_deadline_due',
            'cv_family_keys',
            'cv_fold',
            'cv_given_key',
            'cv_identifiers',
            'cv_identity_denied',
            'cv_identity_families',
            'cv_identity_field_value',
            'cv_identity_given',
            'cv_identity_holder',
            'cv_identity_initial',
            'cv_identity_levels',
            'cv_identity_setting',
            'cv_identity_view',
            'cv_intake_field',
            'cv_norm_name',
            'cv_notify_address',
            'cv_notify_next_at',
            'cv_notify_quiet_end',
            'cv_routing_fields',
            'cv_source_certainty'
        ] LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %I TO %I', f, r);
        END LOOP;
    END LOOP;
END
$$;

-- 4. civibus_hub: the hub (ingest, commands, dead letters, its configuration tables)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'civibus_hub') THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO civibus_hub', current_database());
    GRANT USAGE ON SCHEMA public TO civibus_hub;
    GRANT SELECT ON schema_migrations, schema_repeatables TO civibus_hub;   -- the version check
    -- the timeline: written by cv_ingest; read for the publisher and the commands
    GRANT SELECT ON events TO civibus_hub;
    GRANT SELECT ON requests TO civibus_hub;
    GRANT SELECT ON notifications TO civibus_hub;
    GRANT SELECT, INSERT ON dead_letters TO civibus_hub;
    GRANT USAGE ON SEQUENCE dead_letters_id_seq TO civibus_hub;
    GRANT SELECT, UPDATE ON commands TO civibus_hub;                        -- delivery state
    -- civibusctl remap and dead-letters replay read the hub's configuration and connect
    -- as its role: the records to map again, the letters replayed, the run's audit
    GRANT SELECT ON source_records TO civibus_hub;
    GRANT UPDATE (replayed_at, replayed_event, replay_reason, replay_detail, replay_tried_at) ON dead_letters TO civibus_hub;
    GRANT SELECT, INSERT ON fix_runs TO civibus_hub;
    -- configuration the hub writes at start-up (deploy/*.yaml)
    GRANT SELECT, INSERT, UPDATE, DELETE ON identity_sources TO civibus_hub;
    GRANT SELECT ON attachment_sources TO civibus_hub;                      -- written by cv_attachment_sources_set
    GRANT SELECT ON attachments TO civibus_hub;
    GRANT SELECT ON deadline_rules TO civibus_hub;                          -- written by cv_deadlines_set
    GRANT SELECT ON routing_rules TO civibus_hub;                           -- written by cv_routing_set
    GRANT SELECT ON routing_services TO civibus_hub;
    GRANT EXECUTE ON FUNCTION cv_ingest TO civibus_hub;
    GRANT EXECUTE ON FUNCTION cv_command_results TO civibus_hub;
    GRANT EXECUTE ON FUNCTION cv_identity_propose TO civibus_hub;
    GRANT EXECUTE ON FUNCTION cv_attachment_sources_set TO civibus_hub;
    GRANT EXECUTE ON FUNCTION cv_deadlines_set TO civibus_hub;
    GRANT EXECUTE ON FUNCTION cv_routing_set TO civibus_hub;
END
$$;

-- 5. civibus_api: the API (docs/access.md says which fields each agent sees;
--    the database gives the API the tables those fields come from)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'civibus_api') THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO civibus_api', current_database());
    GRANT USAGE ON SCHEMA public TO civibus_api;
    GRANT SELECT ON schema_migrations TO civibus_api;                       -- its start-up check
    -- reads
    GRANT SELECT ON citizens TO civibus_api;
    GRANT SELECT ON citizen_identifiers TO civibus_api;
    GRANT SELECT ON citizen_sources TO civibus_api;
    GRANT SELECT ON citizen_merges TO civibus_api;
    GRANT SELECT ON citizen_detaches TO civibus_api;
    GRANT SELECT ON citizen_checks TO civibus_api;
    GRANT SELECT ON identity_sources TO civibus_api;
    GRANT SELECT ON identity_certainty_levels TO civibus_api;
    GRANT SELECT ON merge_proposals TO civibus_api;
    GRANT SELECT ON requests TO civibus_api;
    GRANT SELECT ON request_sources TO civibus_api;
    GRANT SELECT ON request_routes TO civibus_api;
    GRANT SELECT ON source_records TO civibus_api;
    GRANT SELECT ON events TO civibus_api;
    GRANT SELECT ON status_transitions TO civibus_api;
    GRANT SELECT ON notifications TO civibus_api;
    GRANT SELECT ON attachments TO civibus_api;
    GRANT SELECT ON service_categories TO civibus_api;
    GRANT SELECT ON routing_services TO civibus_api;
    GRANT SELECT ON dashboard_overdue TO civibus_api;
    GRANT SELECT ON dashboard_response_times TO civibus_api;
    GRANT SELECT ON dashboard_volumes TO civibus_api;
    GRANT SELECT ON api_revoked_links TO civibus_api;
    -- the tokens: never their hash (cv_api_token looks a token up by it)
    GRANT SELECT (id, role, service, label, created_at, expires_at, revoked_at) ON api_tokens TO civibus_api;
    -- its own writes: the audit (append only) and the web sessions
    GRANT INSERT ON api_audit TO civibus_api;
    GRANT SELECT, INSERT, DELETE ON api_sessions TO civibus_api;
    GRANT UPDATE (last_seen_at) ON api_sessions TO civibus_api;
    -- everything else it writes, through these
    GRANT EXECUTE ON FUNCTION cv_api_token TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_ingest TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_tracking_code TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_intake_register TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_citizen_merge TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_citizen_split TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_citizen_detach TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_proposal_reject TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_identity_check TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_citizen_rectify TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_citizen_export TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_routing_reroute TO civibus_api;
    GRANT EXECUTE ON FUNCTION cv_dashboard TO civibus_api;
END
$$;

-- 6. civibus_admin: civibusctl (tokens, links, RGPD, retention, attachments; its remap and
--    dead-letters commands connect with the hub's configuration, as civibus_hub)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'civibus_admin') THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO civibus_admin', current_database());
    GRANT USAGE ON SCHEMA public TO civibus_admin;
    GRANT SELECT ON schema_migrations TO civibus_admin;
    GRANT SELECT (id, role, service, label, created_at, expires_at, revoked_at) ON api_tokens TO civibus_admin;  -- token list
    GRANT INSERT ON api_tokens TO civibus_admin;                            -- token create (its hash: write-only)
    GRANT UPDATE (revoked_at) ON api_tokens TO civibus_admin;               -- token revoke
    GRANT SELECT, INSERT ON api_revoked_links TO civibus_admin;             -- link revoke
    GRANT SELECT ON api_audit TO civibus_admin;                             -- read, never change
    GRANT SELECT ON dead_letters TO civibus_admin;
    GRANT SELECT ON fix_runs TO civibus_admin;
    GRANT SELECT ON requests TO civibus_admin;
    GRANT SELECT ON citizens TO civibus_admin;
    GRANT SELECT ON attachments TO civibus_admin;
    GRANT SELECT ON service_categories TO civibus_admin;
    GRANT EXECUTE ON FUNCTION cv_citizen_erase TO civibus_admin;
    GRANT EXECUTE ON FUNCTION cv_citizen_export TO civibus_admin;
    GRANT EXECUTE ON FUNCTION cv_citizen_rectify TO civibus_admin;
    GRANT EXECUTE ON FUNCTION cv_retention_run TO civibus_admin;
END
$$;

-- 7. civibus_notify: civibus-notify (the notifications' queue, the mail threads)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'civibus_notify') THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO civibus_notify', current_database());
    GRANT USAGE ON SCHEMA public TO civibus_notify;
    GRANT SELECT ON schema_migrations TO civibus_notify;
    GRANT SELECT ON events TO civibus_notify;
    GRANT SELECT ON requests TO civibus_notify;
    GRANT SELECT ON email_suppressions TO civibus_notify;
    GRANT SELECT, INSERT, UPDATE ON notifications TO civibus_notify;
    GRANT USAGE ON SEQUENCE notifications_id_seq TO civibus_notify;
    GRANT SELECT, INSERT, UPDATE ON notify_cursor TO civibus_notify;
    GRANT SELECT, INSERT ON mail_threads TO civibus_notify;
    GRANT EXECUTE ON FUNCTION cv_notify_plan TO civibus_notify;             -- reads the citizens' addresses
END
$$;

-- 8. The owner's alone, reached only through the functions above (SECURITY DEFINER):
--    ON citizen_rectifications   (cv_citizen_rectify, cv_citizen_export)
--    ON courrier_numbers         (cv_ingest, cv_intake_register)
--    ON deadline_config          (cv_deadlines_set)
--    ON routing_config           (cv_routing_set)
--    ON identifier_denylist      (cv_ingest's identity resolution)
--    ON shared_identifiers       (cv_ingest, cv_notify_plan)
--    ON notification_preferences (cv_notify_plan)
--    ON identity_declared_sources (a view the city's DBA writes as the owner: 019)
-- tests/it/pg_roles.sh fails when a table or view of the schema is named nowhere in
-- this file: a new one gets its line, here or above.
