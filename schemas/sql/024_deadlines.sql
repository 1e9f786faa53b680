-- 024_deadlines.sql — due dates by rule (deploy/deadlines.yaml, docs/deadlines.md).
--
-- A request whose source gives no due date gets one from the city's rules
-- (category, channel → a delay in calendar or working days, French public
-- holidays computed by functions/deadlines.sql); the time a request spends
-- waiting for the citizen moves that date. A source's own due date always
-- wins and is kept as the source sent it (the legal urbanisme delays).
--
-- The rules: the hub loads deploy/deadlines.yaml at start-up and writes it
-- here (cv_deadlines_set), one row per (category, channel); '' = any.
CREATE TABLE deadline_rules (
    category text NOT NULL DEFAULT '',          -- '' = every category
    channel  text NOT NULL DEFAULT '',          -- '' = every channel
    days     integer NOT NULL CHECK (days BETWEEN 0 AND 3650),
    calendar text NOT NULL CHECK (calendar IN ('calendar', 'working')),
    PRIMARY KEY (category, channel)
);

-- The file as loaded (one row): its region for the holidays and its text.
CREATE TABLE deadline_config (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    region    text NOT NULL DEFAULT 'france' CHECK (region IN ('france', 'alsace-moselle')),
    rules     jsonb NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);

-- requests.due_at keeps its meaning for the API (the date the request is due
-- by); these say where it came from and how long its clock stood still.
ALTER TABLE requests
    ADD COLUMN due_kind text CHECK (due_kind IN ('source', 'rule')),   -- NULL: no due date
    ADD COLUMN paused_seconds bigint NOT NULL DEFAULT 0;    -- closed waiting_citizen spans

-- A service's queue: its open requests by due date.
CREATE INDEX requests_service_due ON requests (service, due_at, id) WHERE due_at IS NOT NULL;
