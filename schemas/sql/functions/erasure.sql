-- functions/erasure.sql — erase a citizen's personal data in one call (RGPD,
-- docs/schema.md "Erasure").
--
-- A repeatable file (docs/schema.md, "Functions"): hub/migrate.c runs it again, after
-- the numbered migrations, whenever its text changes. It holds the current definition
-- of each of its functions and triggers, and nothing else: edit them here.

-- Personal data lives in citizen_sources (identity blocks and their folded
-- search texts), citizen_identifiers (normalised e-mails, phones, names and
-- addresses), source_records (raw records, summaries, extras), the
-- notifier's ledger (the addresses its requests' mails went to), its
-- notification preferences and suppressed addresses, and
-- attachments (the files of its requests: the rows go here, the files
-- with `civibusctl attachments gc` once no row names them,
-- docs/attachments.md). The
-- timeline keeps its events, which no longer lead to a person. A citizen
-- merged into another has no rows of its own left: erase the one it was
-- merged into. It notifies civibus_identity: the hub's commander thread
-- hears it and the store forgets the identity blocks it had cached
-- (hub/idcache.c). The citizen is marked erased (citizens.erased_at, 018):
-- cv_citizen_export refuses it, retention skips it. Returns the number of
-- rows deleted.
CREATE OR REPLACE FUNCTION cv_citizen_erase(p_citizen bigint) RETURNS bigint
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE plpgsql AS $fn$
DECLARE
    v_rows bigint;
    v_n bigint;
    v_into bigint;
BEGIN
    SELECT c.merged_into INTO v_into FROM citizens c WHERE c.id = p_citizen;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown citizen' USING ERRCODE = '22023';
    ELSIF v_into IS NOT NULL THEN
        RAISE EXCEPTION 'citizen merged into %: erase that one', v_into USING ERRCODE = '22023';
    END IF;
    -- the records of its requests (a merge moved the absorbed citizen's
    -- requests here) and of any event stored under its id
    DELETE FROM source_records sr
    USING (SELECT rs.source, rs.source_record_id
           FROM requests r JOIN request_sources rs ON rs.request_id = r.id
           WHERE r.citizen_id = p_citizen
           UNION
           SELECT e.source, e.source_record_id FROM events e WHERE e.citizen_id = p_citizen) x
    WHERE sr.source = x.source AND sr.source_record_id = x.source_record_id;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    DELETE FROM attachments a USING requests r WHERE a.request_id = r.id AND r.citizen_id = p_citizen;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_rows := v_rows + v_n;
    -- what was sent about its requests keeps its ledger row (a mail is never
    -- sent twice: docs/notifications.md) without the address; what was still
    -- to be sent is not sent; its choices and its bounced addresses go
    UPDATE notifications n
       SET address = NULL,
           state = CASE WHEN n.state = 'planned' THEN 'skipped' ELSE n.state END,
           last_error = CASE WHEN n.state = 'planned' THEN 'erased' ELSE n.last_error END,
           done_at = CASE WHEN n.state = 'planned' THEN now() ELSE n.done_at END,
           updated_at = now()
      FROM requests r
     WHERE n.request_id = r.id AND r.citizen_id = p_citizen AND (n.address IS NOT NULL OR n.state = 'planned');
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_rows := v_rows + v_n;
    DELETE FROM notification_preferences WHERE citizen_id = p_citizen;
    DELETE FROM email_suppressions s USING citizen_identifiers ci
     WHERE ci.citizen_id = p_citizen AND ci.kind = 'email' AND s.address = ci.value;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_rows := v_rows + v_n;
    DELETE FROM citizen_identifiers WHERE citizen_id = p_citizen;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_rows := v_rows + v_n;
    DELETE FROM citizen_checks ch USING citizen_sources cs
     WHERE cs.citizen_id = p_citizen AND ch.source = cs.source AND ch.source_citizen_id = cs.source_citizen_id;
    DELETE FROM citizen_sources WHERE citizen_id = p_citizen;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    UPDATE citizens SET erased_at = COALESCE(erased_at, now()) WHERE id = p_citizen;
    PERFORM pg_notify('civibus_identity', 'erased');
    RETURN v_rows + v_n;
END $fn$;
