-- 018_rgpd.sql — what the citizen's rights need (docs/rgpd.md): an erased
-- citizen is marked as such, and rectifications are recorded (without the
-- values) for the DPO and the timeline.
--
-- citizens.erased_at: set by cv_citizen_erase (functions/erasure.sql) and by
-- retention (functions/rgpd.sql). An erased citizen has nothing left to
-- export and retention never counts it twice. Before this migration an
-- erased citizen was one with no identity block left and not merged away:
-- those are marked now.
ALTER TABLE citizens ADD COLUMN erased_at timestamptz;
UPDATE citizens c SET erased_at = now()
 WHERE c.merged_into IS NULL
   AND NOT EXISTS (SELECT 1 FROM citizen_sources cs WHERE cs.citizen_id = c.id);

-- One row per rectification (cv_citizen_rectify): which pair, which field,
-- who, when. Never the old or the new value. The timeline's citizen_rectify
-- events point here (source_record_id 'citizen_rectify:<id>').
CREATE TABLE citizen_rectifications (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    citizen_id        bigint NOT NULL,     -- citizens.id
    source            text NOT NULL,       -- the pair rectified (citizen_sources)
    source_citizen_id text NOT NULL,
    field             text NOT NULL,       -- family_name, given_names, birth_date, email, ...
    actor             text NOT NULL,       -- 'token:<id>' (API) or 'civibusctl'
    at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX citizen_rectifications_citizen ON citizen_rectifications (citizen_id);
