/*  civibus-api — the read side of civibus over HTTP (docs/api.md).

        civibus-api --config deploy/api.yaml
        civibus-api --routes          prints the route table (api_route_table.c)

    Start-up: load the config (file:line errors, exit 2), check that the
    database holds migration 005 (the hub applies migrations; exit 1
    otherwise), start the audit writer, the rate limiters, the connection
    watcher (api_conn.c) and the HTTP thread pool, log the port, then wait for SIGINT/SIGTERM;
    SIGHUP reads the pages and the costs again (s_reload). Shutdown stops
    HTTP first (workers close their connections), then flushes the audit. */
#include "api_config.h"
#include "api_dashboard.h"
#include "api_db.h"
#include "api_health.h"
#include "api_link.h"
#include "api_route.h"
#include "api_server.h"
#include "api_web.h"
#include "cv_log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* SIGHUP: what the API can take again without a restart — web.dir's files
   (a text of the catalogue corrected) and dashboard.costs_file. The rest of
   api.yaml, the TLS certificate included, is read at start only: restart
   (docs/operations.md, "Reloading"). A file that does not load is logged
   and the running one stays. */
static void s_reload(cv_api_ctx_t *ctx)
{
    char err[1024];
    size_t n = 0;
    if (ctx->web) {
        if (cv_api_web_reload(ctx->web, &n, err, sizeof err) < 0)
            cv_error("reload", "%s: the pages served stay as they were", err);
        else
            cv_info("reload", "SIGHUP: %zu files of %s read again", n, ctx->config->web_dir);
    }
    if (cv_api_costs_reload(ctx, err, sizeof err) < 0)
        cv_error("reload", "%s: the dashboard's costs stay as they were", err);
    else
        cv_info("reload", "SIGHUP: costs per contact read again%s", ctx->config->costs_file ? "" : " (defaults)");
    cv_info("reload", "the rest of the configuration (and the TLS certificate) is read at start: restart for it");
}

int main(int argc, char **argv)
{
    cv_log_init("api", CV_LOG_INFO);
    const char *path = NULL;
    bool routes = false, usage = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--routes") == 0)
            routes = true;
        else
            usage = true;
    }
    char err[1024];
    if (cv_api_routes_check(err, sizeof err) < 0) {     /* a bug of the build: say so at once */
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (routes && !usage) {
        cv_api_routes_print(stdout);
        return 0;
    }
    if (!path || usage) {
        fprintf(stderr, "usage: civibus-api --config FILE | --routes\n");
        return 2;
    }
    cv_api_config_t *cfg = cv_api_config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (cv_api_db_check_schema(cfg->conninfo, err, sizeof err) < 0) {
        cv_error("main", "%s", err);
        cv_api_config_destroy(&cfg);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);                    /* reloads the pages and the costs (s_reload) */
    pthread_sigmask(SIG_BLOCK, &set, NULL);     /* every thread inherits it */
    signal(SIGPIPE, SIG_IGN);

    cv_api_ctx_t ctx = { .config = cfg };
    if (cfg->link_key_file) {
        if (cv_api_link_key_load(cfg->link_key_file, ctx.link_key, err, sizeof err) < 0) {
            cv_error("main", "%s", err);
            cv_api_config_destroy(&cfg);
            return 2;
        }
        ctx.links = true;
    }
    if (cfg->web_dir && !(ctx.web = cv_api_web_new(cfg->web_dir, err, sizeof err))) {
        cv_error("main", "%s", err);
        cv_api_config_destroy(&cfg);
        return 2;
    }
    if (!(ctx.costs = cv_api_costs_load(cfg->costs_file, err, sizeof err))) {
        cv_error("main", "%s", err);
        cv_api_web_destroy(&ctx.web);
        cv_api_config_destroy(&cfg);
        return 2;
    }
    cv_api_db_init(cfg->conninfo);
    if (cv_api_health_start(cfg, err, sizeof err) < 0) {     /* the database watcher, /healthz, replica */
        cv_error("main", "%s", err);
        return 1;
    }
    ctx.audit = cv_api_audit_new(cfg->conninfo, cfg->audit_flush_ms);
    ctx.track_limit = cv_api_ratelimit_new(cfg->track_per_minute, 60);
    ctx.owner_limit = cv_api_ratelimit_new(cfg->owner_per_minute, 60);
    ctx.conns = cv_api_conn_new(cfg);
    snprintf(err, sizeof err, "cannot start the audit writer or the connection watcher");
    cv_api_server_t *server = ctx.audit && ctx.track_limit && ctx.owner_limit && ctx.conns
                            ? cv_api_server_new(&ctx, err, sizeof err) : NULL;
    int rc = 0;
    if (!server) {
        cv_error("main", "%s", err);
        rc = 1;
    } else {
        cv_info("main", "listening on %s://%s:%d", cfg->tls_cert ? "https" : "http", cfg->address, cv_api_server_port(server));
        int sig;
        while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
            s_reload(&ctx);
        cv_info("main", "signal %d: stopping", sig);
    }
    cv_api_server_destroy(&server);
    cv_api_health_stop();
    cv_api_audit_destroy(&ctx.audit);
    cv_api_ratelimit_destroy(&ctx.track_limit);
    cv_api_ratelimit_destroy(&ctx.owner_limit);
    cv_api_conn_destroy(&ctx.conns);
    cv_api_web_destroy(&ctx.web);
    free(ctx.costs);
    cv_api_db_term();
    cv_api_config_destroy(&cfg);
    return rc;
}
