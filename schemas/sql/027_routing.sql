-- 027_routing.sql — routing rules and dispatch of front-office requests
-- (deploy/routing.yaml, docs/routing.md).
--
-- A new request of a front-office source (accueil, courriel, open311: the
-- sources named in routing.yaml) whose service is unset or the triage queue
-- gets its service from the city's rules (first match wins), and one command
-- goes to that service's software through its adapter (the commands outbox,
-- 003_commands.sql), in the transaction that created the request. The
-- software's answer (command_result, result.reference) links its record to
-- the request in request_sources, so its later status events land in the
-- same request. An agent may re-route a request (POST /v1/requests/{code}/route):
-- same request, same timeline, a new command. Functions: functions/routing.sql.
--
-- The rules: the hub loads routing.yaml at start-up and writes it here
-- (cv_routing_set). No file: no rows, no trigger, nothing routed.

CREATE TABLE routing_config (
    one             boolean PRIMARY KEY DEFAULT true CHECK (one),
    default_service text NOT NULL,              -- the triage queue
    sources         text[] NOT NULL,            -- whose new requests are routed
    config          jsonb NOT NULL,             -- the file as loaded (for a reload's comparison)
    loaded_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per rule, in the file's order (first match wins). NULL = any.
CREATE TABLE routing_rules (
    position   integer PRIMARY KEY,
    name       text,
    categories text[],
    channels   text[],
    keywords   text[],          -- normalised (cv_routing_norm): a-z 0-9 space ' -
    pattern    text,            -- the keywords as one whole-word regex, built by cv_routing_set
    service    text NOT NULL
);

-- The services the file knows; source NULL: no software to dispatch to
-- (the request waits in the service's queue).
CREATE TABLE routing_services (
    service text PRIMARY KEY,
    source  text,               -- the adapter's source that performs the command
    kind    text CHECK (kind ~ '^[A-Za-z0-9_.-]{1,64}$'),
    payload jsonb NOT NULL DEFAULT '[]',   -- [{path: [..], field | const}]
    CHECK ((source IS NULL) = (kind IS NULL))
);

-- Every routing decision about a request: seq 1 the automatic one, then one
-- per agent re-route. A request has at most one seq 1: dispatched once.
CREATE TABLE request_routes (
    request_id   bigint NOT NULL,
    seq          integer NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    service_from text,
    service_to   text NOT NULL,
    reason       text NOT NULL CHECK (reason IN ('rule', 'default', 'kept', 'agent')),
    rule_position integer,      -- routing_rules.position of the rule that matched
    rule_name    text,
    actor        text,          -- 'token:<id>' for an agent's re-route
    command_id   bigint,        -- commands.id dispatched, NULL: the service has no software
    event_id     bigint,        -- events.id of the 'routed' event, NULL when the service stayed
    reference    text,          -- the software's id for its record (from the command's result)
    link         text CHECK (link IN ('linked', 'conflict', 'no_reference', 'failed')),
    PRIMARY KEY (request_id, seq)
);
CREATE INDEX request_routes_command ON request_routes (command_id) WHERE command_id IS NOT NULL;
