-- functions/dashboard.sql — every figure of the city's dashboard (/tableau-de-bord/,
-- docs/web.md "Where each figure comes from"), one view each, so that any of them can be
-- checked with psql. Counts and durations only: no personal data. Times are read in the
-- city's time zone (Europe/Paris) for months and years.
--
-- A request is counted in the month (and year) the citizen asked: requested_at, or the day
-- civibus stored it when no source says (created_at). The city mailbox's automatic mails
-- (out-of-office replies, delivery reports: category courriel_automatique, closed at once,
-- docs/intake.md) are kept in the timeline but are nobody's request: no figure counts them.

CREATE OR REPLACE VIEW dashboard_volumes AS
SELECT date_trunc('month', coalesce(r.requested_at, r.created_at) AT TIME ZONE 'Europe/Paris')::date AS month,
       coalesce(r.channel::text, 'inconnu') AS channel,
       coalesce(r.service, '') AS service,
       count(*)::bigint AS requests
FROM requests r
WHERE r.category IS DISTINCT FROM 'courriel_automatique'
GROUP BY 1, 2, 3;

-- Response time: from requested_at (when the citizen asked) to the time the request
-- reached its current status, for requests now resolved or closed; those without a
-- requested_at are counted apart (no start, no duration). Median and 90th percentile by
-- service and year of the request.
CREATE OR REPLACE VIEW dashboard_response_times AS
SELECT extract(year FROM coalesce(r.requested_at, r.created_at) AT TIME ZONE 'Europe/Paris')::int AS year,
       coalesce(r.service, '') AS service,
       count(*) FILTER (WHERE r.requested_at IS NOT NULL)::bigint AS answered,
       count(*) FILTER (WHERE r.requested_at IS NULL)::bigint AS without_start,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.status_occurred_at - r.requested_at))
           FILTER (WHERE r.requested_at IS NOT NULL) AS median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM r.status_occurred_at - r.requested_at))
           FILTER (WHERE r.requested_at IS NOT NULL) AS p90_s
FROM requests r
WHERE r.status IN ('resolved', 'closed') AND r.category IS DISTINCT FROM 'courriel_automatique'
GROUP BY 1, 2;

-- Past due now: open requests (not waiting for the citizen: their clock is stopped) whose
-- due date has passed, by service.
CREATE OR REPLACE VIEW dashboard_overdue AS
SELECT coalesce(r.service, '') AS service, count(*)::bigint AS overdue
FROM requests r
WHERE r.due_at < now() AND r.status IN ('received', 'acknowledged', 'in_progress')
GROUP BY 1;

-- The dashboard of one year as one JSON object; p_costs is the cost per contact by
-- channel ({"guichet": 12, "web": 3, "telephone": null, ...}, deploy/costs.yaml): the
-- year's requests by channel times their cost; a channel without a cost has a null total.
CREATE OR REPLACE FUNCTION cv_dashboard(p_year int, p_costs jsonb) RETURNS jsonb
SECURITY DEFINER SET search_path = public, pg_temp   -- zz_grants.sql: runs as the schema's owner
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'year', p_year,
        'volumes', coalesce((SELECT jsonb_agg(jsonb_build_object('month', to_char(v.month, 'YYYY-MM'),
                                 'channel', v.channel, 'service', v.service, 'requests', v.requests)
                             ORDER BY v.month, v.channel, v.service)
                             FROM dashboard_volumes v WHERE extract(year FROM v.month) = p_year), '[]'),
        'response_times', coalesce((SELECT jsonb_agg(jsonb_build_object('service', t.service,
                                 'answered', t.answered, 'without_start', t.without_start,
                                 'median_s', round(t.median_s), 'p90_s', round(t.p90_s))
                             ORDER BY t.service)
                             FROM dashboard_response_times t WHERE t.year = p_year), '[]'),
        'overdue', coalesce((SELECT jsonb_agg(jsonb_build_object('service', o.service, 'overdue', o.overdue)
                             ORDER BY o.overdue DESC, o.service) FROM dashboard_overdue o), '[]'),
        'costs', coalesce((SELECT jsonb_agg(jsonb_build_object('channel', c.channel, 'requests', c.requests,
                                 'unit_cost', p_costs -> c.channel,
                                 'total', CASE WHEN jsonb_typeof(p_costs -> c.channel) = 'number'
                                               THEN c.requests * (p_costs ->> c.channel)::numeric END)
                             ORDER BY c.requests DESC, c.channel)
                           FROM (SELECT v.channel, sum(v.requests)::bigint AS requests FROM dashboard_volumes v
                                 WHERE extract(year FROM v.month) = p_year GROUP BY 1
                                 UNION ALL
                                 SELECT k, 0 FROM jsonb_object_keys(p_costs) k
                                 WHERE NOT EXISTS (SELECT 1 FROM dashboard_volumes v
                                                   WHERE v.channel = k AND extract(year FROM v.month) = p_year)) c),
                          '[]'));
$$;
