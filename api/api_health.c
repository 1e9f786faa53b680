/*  api_health — see api_health.h. The watcher's findings are atomics the
    handlers read; the watcher owns its two connections. */
#include "api_health.h"

#include "api_db.h"
#include "api_handler.h"
#include "cv_log.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 1000
#define RING 1024                /* seconds of the primary's positions kept: more than the
                                    largest max_replica_lag_s (600), so a replica further
                                    behind than the whole ring is still seen lagging */

typedef enum { RS_NONE = 0, RS_OK, RS_DOWN, RS_LAGGING, RS_NOT_STANDBY } replica_state_t;
static const char *const s_state_name[] = { "none", "ok", "down", "lagging", "not_standby" };

static struct {
    const cv_api_config_t *cfg;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    PGconn *primary, *replica;
    struct { int64_t at_ms; uint64_t lsn; } ring[RING];
    size_t nring, head;          /* head: the next slot written */
    atomic_bool primary_up;      /* the last check's answer */
    atomic_llong primary_ok_ms;  /* when the primary last answered (monotonic), 0 never */
    atomic_int rstate;          /* replica_state_t */
    atomic_llong lag_ms;         /* -1 unknown */
    atomic_llong lag_bytes;
    atomic_ulong checks_failed;
} W = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until pg's socket is readable (or writable) or the deadline passes. */
static bool s_wait(PGconn *pg, bool write, int64_t deadline)
{
    int64_t left = deadline - s_now_ms();
    if (left <= 0 || PQsocket(pg) < 0)
        return false;
    struct pollfd p = { .fd = PQsocket(pg), .events = write ? POLLOUT : POLLIN };
    return poll(&p, 1, (int) left) > 0;
}

/* A connection of the watcher's, opened if needed, within the check's
   deadline (libpq's own connect_timeout is 2 s at least). */
static PGconn *s_connect(PGconn **pg, const char *conninfo, const char *which, bool *logged, int64_t deadline)
{
    if (*pg && PQstatus(*pg) == CONNECTION_OK)
        return *pg;
    PQfinish(*pg);
    const char *keys[] = { "dbname", "application_name", NULL };
    const char *vals[] = { conninfo ? conninfo : "", "civibus-api-health", NULL };
    *pg = PQconnectStartParams(keys, vals, 1);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (*pg && PQstatus(*pg) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        if (!s_wait(*pg, st == PGRES_POLLING_WRITING, deadline))
            break;
        st = PQconnectPoll(*pg);
    }
    if (!*pg || st != PGRES_POLLING_OK) {
        if (!*logged) {          /* the first line of libpq's reason: hosts and causes, never a password */
            char why[256];
            snprintf(why, sizeof why, "%s", *pg && PQerrorMessage(*pg)[0] ? PQerrorMessage(*pg)
                                                                          : "no answer in time");
            why[strcspn(why, "\n")] = 0;
            cv_warn("health", "cannot connect to the %s: %s", which, why);
            *logged = true;
        }
        PQfinish(*pg);
        *pg = NULL;
        return NULL;
    }
    *logged = false;
    return *pg;
}

/* The one row of sql, within the deadline; false when it failed or took
   too long (then the connection is dropped: a server that does not answer
   may not answer a cancel either). */
static bool s_row(PGconn **pg, const char *sql, int64_t deadline, PGresult **out)
{
    *out = NULL;
    if (!PQsendQuery(*pg, sql))
        goto drop;
    for (;;) {
        if (!PQconsumeInput(*pg))
            goto drop;
        if (!PQisBusy(*pg)) {
            PGresult *r;
            while ((r = PQgetResult(*pg)) != NULL) {
                if (!*out && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
                    *out = r;
                else
                    PQclear(r);
            }
            return *out != NULL;
        }
        if (!s_wait(*pg, false, deadline))
            goto drop;
    }
drop:
    PQclear(*out);
    *out = NULL;
    PQfinish(*pg);
    *pg = NULL;
    return false;
}

static void s_check_primary(int64_t now)
{
    static bool logged;
    int64_t deadline = now + W.cfg->health_timeout_ms;
    PGresult *r;
    if (!s_connect(&W.primary, W.cfg->conninfo, "primary", &logged, deadline)
        || !s_row(&W.primary, "SELECT 1, CASE WHEN pg_is_in_recovery() THEN NULL"
                              " ELSE pg_current_wal_flush_lsn() - '0/0'::pg_lsn END", deadline, &r)) {
        atomic_fetch_add(&W.checks_failed, 1);
        if (atomic_exchange(&W.primary_up, false))
            cv_warn("health", "the primary did not answer SELECT 1 within %d ms", W.cfg->health_timeout_ms);
        return;
    }
    if (!atomic_exchange(&W.primary_up, true))
        cv_info("health", "the primary answers");
    atomic_store(&W.primary_ok_ms, now);
    if (!PQgetisnull(r, 0, 1)) {
        W.ring[W.head].at_ms = now;
        W.ring[W.head].lsn = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
        W.head = (W.head + 1) % RING;
        if (W.nring < RING)
            W.nring++;
    }
    PQclear(r);
}

/* The age of the oldest position of the primary the replica has not
   replayed (`replayed`), 0 when none; -1 when nothing is known yet. */
static int64_t s_lag_ms(uint64_t replayed, int64_t now, int64_t *bytes)
{
    if (W.nring == 0)
        return -1;
    uint64_t latest = W.ring[(W.head + RING - 1) % RING].lsn;
    *bytes = latest > replayed ? (int64_t) (latest - replayed) : 0;
    int64_t oldest = -1;
    for (size_t i = 0; i < W.nring; i++) {       /* newest to oldest: stop at one replayed */
        size_t k = (W.head + RING - 1 - i) % RING;
        if (W.ring[k].lsn <= replayed)
            break;
        oldest = W.ring[k].at_ms;
    }
    return oldest < 0 ? 0 : now - oldest;
}

static void s_set_replica(replica_state_t st, int64_t lag)
{
    replica_state_t was = (replica_state_t) atomic_exchange(&W.rstate, (int) st);
    cv_api_db_replica_usable(st == RS_OK);
    if (was == st)
        return;
    if (st == RS_OK)
        cv_info("health", "replica usable (lag %.1f s): reads go to it", lag / 1000.0);
    else if (st == RS_DOWN)
        cv_warn("health", "replica unreachable: reads go to the primary");
    else if (st == RS_LAGGING)
        cv_warn("health", "replica lags %.1f s, over postgres.max_replica_lag_s (%d): reads go to the primary",
                lag / 1000.0, W.cfg->max_replica_lag_s);
    else if (st == RS_NOT_STANDBY)
        cv_warn("health", "postgres.read_dsn is not a standby (not in recovery): reads go to the primary");
}

static void s_check_replica(int64_t now)
{
    static bool logged;
    int64_t deadline = now + W.cfg->health_timeout_ms;
    PGresult *r;
    if (!s_connect(&W.replica, W.cfg->read_dsn, "replica", &logged, deadline)
        || !s_row(&W.replica, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn",
                  deadline, &r)) {
        atomic_store(&W.lag_ms, -1);
        s_set_replica(RS_DOWN, -1);
        return;
    }
    bool standby = strcmp(PQgetvalue(r, 0, 0), "t") == 0 && !PQgetisnull(r, 0, 1);
    uint64_t replayed = standby ? strtoull(PQgetvalue(r, 0, 1), NULL, 10) : 0;
    PQclear(r);
    if (!standby) {
        atomic_store(&W.lag_ms, -1);
        s_set_replica(RS_NOT_STANDBY, -1);
        return;
    }
    int64_t bytes = 0, lag = s_lag_ms(replayed, now, &bytes);
    atomic_store(&W.lag_ms, lag);
    atomic_store(&W.lag_bytes, bytes);
    s_set_replica(lag >= 0 && lag <= 1000LL * W.cfg->max_replica_lag_s ? RS_OK
                  : lag < 0 ? RS_DOWN : RS_LAGGING, lag);
}

static void s_check(void)
{
    int64_t now = s_now_ms();
    s_check_primary(now);
    if (W.cfg->read_dsn)
        s_check_replica(now);
}

static void *s_run(void *arg)
{
    (void) arg;
    pthread_mutex_lock(&W.lock);
    while (!W.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long) TICK_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&W.wake, &W.lock, &until);
        if (W.stop)
            break;
        pthread_mutex_unlock(&W.lock);
        s_check();
        pthread_mutex_lock(&W.lock);
    }
    pthread_mutex_unlock(&W.lock);
    return NULL;
}

int cv_api_health_start(const cv_api_config_t *cfg, char *err, size_t errlen)
{
    W.cfg = cfg;
    W.stop = false;
    atomic_store(&W.lag_ms, -1);
    atomic_store(&W.rstate, cfg->read_dsn ? RS_DOWN : RS_NONE);
    cv_api_db_set_replica(cfg->read_dsn);
    s_check();
    if (pthread_create(&W.thread, NULL, s_run, NULL) != 0) {
        snprintf(err, errlen, "cannot start the database watcher");
        return -1;
    }
    W.running = true;
    return 0;
}

void cv_api_health_stop(void)
{
    if (W.running) {
        pthread_mutex_lock(&W.lock);
        W.stop = true;
        pthread_cond_signal(&W.wake);
        pthread_mutex_unlock(&W.lock);
        pthread_join(W.thread, NULL);
        W.running = false;
    }
    PQfinish(W.primary);
    PQfinish(W.replica);
    W.primary = W.replica = NULL;
}

/* Whether the primary answered the last check, recently enough (a
   watcher that stopped checking counts as down). */
static bool s_primary_fresh(int64_t now)
{
    int64_t ok = atomic_load(&W.primary_ok_ms);
    return atomic_load(&W.primary_up) && ok > 0 && now - ok <= 2 * TICK_MS + W.cfg->health_timeout_ms + 500;
}

void cv_api_health(cv_api_req_t *req, const cv_api_principal_t *who)
{
    (void) who;
    int64_t now = s_now_ms();
    bool primary = W.cfg && s_primary_fresh(now);
    replica_state_t rs = W.cfg ? (replica_state_t) atomic_load(&W.rstate) : RS_NONE;
    const char *reason = !W.cfg ? "not_started" : !primary ? "primary_down"
                       : rs == RS_NONE || rs == RS_OK ? NULL : rs == RS_LAGGING ? "replica_lagging"
                       : rs == RS_NOT_STANDBY ? "replica_not_standby" : "replica_down";
    json_t *o = json_pack("{s:s, s:s}", "status", reason ? "unavailable" : "ok",
                          "primary", primary ? "ok" : "down");
    if (reason)
        json_object_set_new(o, "reason", json_string(reason));
    if (rs != RS_NONE) {
        int64_t lag = atomic_load(&W.lag_ms);
        json_t *rj = json_pack("{s:s, s:i}", "state", s_state_name[rs], "max_lag_seconds",
                               W.cfg->max_replica_lag_s);
        json_object_set_new(rj, "lag_seconds", lag < 0 ? json_null() : json_real(lag / 1000.0));
        json_object_set_new(o, "replica", rj);
    }
    cv_api_reply(req, reason ? 503 : 200, o);
}

void cv_api_metrics_all(cv_api_req_t *req, const cv_api_principal_t *who)
{
    /* the counters are no one's data, but nothing for the Internet either
       once the API listens on a public address: loopback and http.metrics_from */
    if (!cv_api_config_metrics_allowed(req->ctx->config, req->client_text)) {
        cv_api_error(req, 404, "not_found", "no such endpoint");
        return;
    }
    cv_api_metrics(req, who);
    if (!req->text || !W.cfg)
        return;
    char *more = NULL;
    int64_t now = s_now_ms();
    int n;
    if (W.cfg->read_dsn) {
        unsigned long reads, falls;
        cv_api_db_counts(&reads, &falls);
        int64_t lag = atomic_load(&W.lag_ms);
        replica_state_t rs = (replica_state_t) atomic_load(&W.rstate);
        char lagtxt[32] = "NaN";
        if (lag >= 0)
            snprintf(lagtxt, sizeof lagtxt, "%.3f", lag / 1000.0);
        n = asprintf(&more,
            "%s# HELP civibus_api_primary_up 1 when the primary answered the last health check.\n"
            "# TYPE civibus_api_primary_up gauge\ncivibus_api_primary_up %d\n"
            "# HELP civibus_api_replica_up 1 while the replica serves reads (reachable, in recovery, not lagging over the maximum).\n"
            "# TYPE civibus_api_replica_up gauge\ncivibus_api_replica_up %d\n"
            "# HELP civibus_api_replica_lag_seconds Age of the oldest primary WAL position the replica has not replayed (NaN: unknown).\n"
            "# TYPE civibus_api_replica_lag_seconds gauge\ncivibus_api_replica_lag_seconds %s\n"
            "# HELP civibus_api_replica_lag_bytes WAL bytes of the primary the replica has not replayed.\n"
            "# TYPE civibus_api_replica_lag_bytes gauge\ncivibus_api_replica_lag_bytes %lld\n"
            "# HELP civibus_api_replica_reads_total Statements served by the replica.\n"
            "# TYPE civibus_api_replica_reads_total counter\ncivibus_api_replica_reads_total %lu\n"
            "# HELP civibus_api_replica_fallbacks_total Reads meant for the replica served by the primary (replica down or lagging).\n"
            "# TYPE civibus_api_replica_fallbacks_total counter\ncivibus_api_replica_fallbacks_total %lu\n",
            req->text, s_primary_fresh(now) ? 1 : 0, rs == RS_OK ? 1 : 0, lagtxt, (long long) atomic_load(&W.lag_bytes), reads, falls);
    } else
        n = asprintf(&more,
            "%s# HELP civibus_api_primary_up 1 when the primary answered the last health check.\n"
            "# TYPE civibus_api_primary_up gauge\ncivibus_api_primary_up %d\n",
            req->text, s_primary_fresh(now) ? 1 : 0);
    if (n < 0)
        return;
    free(req->text);
    req->text = more;
}
