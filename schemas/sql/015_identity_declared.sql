-- 015_identity_declared.sql — a self-declared identity never attaches to an
-- existing citizen by itself (docs/identity.md, "Self-declared identities").
--
-- Anyone can type somebody else's e-mail address into a web form. Until
-- now an Open311 POST carrying a victim's e-mail (and no first name, so no
-- veto) was linked automatically to the victim's citizen record, and the
-- agents of the service the sender chose saw the victim's identity and
-- history. From this migration on:
--
--   * identity_declared_sources lists the sources whose identity blocks are
--     self-declared on an unauthenticated channel ('open311': the API's web
--     form). A city adds its own (a web-form software, a mailbox) by SQL;
--   * a new pair of such a source is never linked to a stored citizen nor
--     joined to another pair of its batch: it gets a citizen of its own
--     (rule 'new') and every stored citizen its identifiers point at gets an
--     open merge proposal at once (rule 'declared_email', 'declared_phone',
--     'declared_name_birth'), which an agent confirms or rejects; a rejected
--     proposal is never made again (merge_proposals is unique per pair);
--   * its identifiers are stored with declared = true and are never a link
--     target: a back-office record arriving later with the same e-mail does
--     not attach to the self-declared citizen either (cv_identity_propose
--     proposes the two, rule 'declared_<kind>').
--
-- Pairs already linked before this migration keep their links: an agent
-- reviews them with the query in docs/identity.md.
--
-- The functions that apply it (cv_identity_link_new, cv_identity_add_known,
-- cv_identity_propose, cv_identity_confidence) are in functions/identity_*.sql.

CREATE TABLE identity_declared_sources (
    source     text PRIMARY KEY,             -- events.source of a self-declared channel
    channel    text NOT NULL,                -- what it is, for the agents and the DPO
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO identity_declared_sources (source, channel)
VALUES ('open311', 'Open311 GeoReport v2 POST (anonymous web form)');

ALTER TABLE citizen_sources ADD COLUMN declared boolean NOT NULL DEFAULT false;
ALTER TABLE citizen_identifiers ADD COLUMN declared boolean NOT NULL DEFAULT false;
UPDATE citizen_sources SET declared = true WHERE source = 'open311';
UPDATE citizen_identifiers SET declared = true WHERE source = 'open311';

-- The link lookups read (kind, value, NOT declared, citizen_id) from the
-- index alone, as before.
DROP INDEX citizen_identifiers_value;
CREATE INDEX citizen_identifiers_value ON citizen_identifiers (kind, value, declared, citizen_id);
