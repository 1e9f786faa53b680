/*  api_health — the database watcher of civibus-api, GET /healthz and the
    replica's part of GET /metrics.

    One thread checks the primary (SELECT 1 and its WAL position, within
    postgres.health_timeout_ms) and, with postgres.read_dsn, the replica
    (in recovery? how far replayed?) every second, on connections of its
    own. The replica's lag is measured against the primary's positions:
    the watcher keeps the primary's flushed WAL position of each second,
    and the lag is the age of the oldest position the replica has not yet
    replayed (0 when it has replayed all of them; exact to the second, and
    right on an idle system, where pg_last_xact_replay_timestamp() would
    age forever). The replica serves reads (api_db.c) while it answers, is
    in recovery and lags at most postgres.max_replica_lag_s; each change of
    that is logged once.

    GET /healthz answers from the watcher's last findings, never waiting on
    PostgreSQL itself: 200 {"status":"ok"} when the primary answered within
    the last checks (and the replica, when configured, is usable); 503
    {"status":"unavailable","reason":...} otherwise. No personal data. */
#ifndef CV_API_HEALTH_H
#define CV_API_HEALTH_H

#include "api_config.h"
#include "api_route.h"

#include <stddef.h>

/* Starts the watcher after one first check (so /healthz is right from the
   first request); 0, or -1 with the reason in err. */
int cv_api_health_start(const cv_api_config_t *cfg, char *err, size_t errlen);
void cv_api_health_stop(void);

/* GET /healthz, and GET /metrics (api_public.c's, with the database's
   lines after it). */
cv_api_handler_t cv_api_health, cv_api_metrics_all;

#endif
