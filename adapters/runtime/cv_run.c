/*  cv_run — see cv_run.h. */
#include "cv_run.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_adapter_config.h"
#include "cv_driver.h"
#include "cv_log.h"

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static char *s_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, (size_t) (slash - path)) : strdup(".");
}

/* Runs the driver until a signal or a fatal error; returns the exit code. */
static int s_loop(const cv_driver_t *driver, void *self, cv_client_t *client)
{
    while (!s_stop) {
        int wait = driver->step(self);
        if (wait < 0)
            return 1;
        if (cv_client_poll(client, wait > 200 ? 200 : wait) < 0) {
            if (cv_client_error(client) == CV_CLIENT_ERR_AUTH) {
                fprintf(stderr, "civibus-adapter: the hub refused this adapter's key (%s)\n",
                        cv_client_public_key(client));
                return 3;
            }
            return 1;
        }
    }
    return 0;
}

int cv_run(const char *config_path)
{
    char err[1024];
    cv_adapter_config_t *config = cv_adapter_config_load(config_path, err, sizeof err);
    if (!config) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    int rc = 2;
    cv_client_t *client = NULL;
    void *self = NULL;
    const cv_driver_t *driver = NULL;
    char *dir = s_dirname(config_path);
    cv_client_opts_t opts;
    if (!config->driver) {
        fprintf(stderr, "%s:1: 'run' needs a 'driver' section (kind: %s)\n", config_path, cv_driver_kinds());
        goto done;
    }
    driver = cv_driver_find(config->driver_kind);
    if (!driver) {
        cv_yaml_fail(config->doc, cv_yaml_get(config->driver, "kind"), err, sizeof err,
                     "unknown driver kind '%s' (this build has: %s)", config->driver_kind, cv_driver_kinds());
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    if (cv_adapter_config_client_opts(config, config->driver_source, &opts, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    char description[96];
    snprintf(description, sizeof description, "civibus-adapter/0.1 run %s", driver->kind);
    opts.description = description;
    client = cv_client_new(&opts, err, sizeof err);
    if (!client) {
        fprintf(stderr, "civibus-adapter: %s\n", err);
        rc = 1;
        goto done;
    }
    cv_driver_ctx_t ctx = { config->doc, config->driver, dir, config->driver_source, client };
    self = driver->start(&ctx, err, sizeof err);
    if (!self) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    cv_info("run", "source %s: %s driver started", config->driver_source, driver->kind);
    rc = s_loop(driver, self, client);
    cv_info("run", "source %s: stopping (%llu records not yet settled stay in the spool)",
            config->driver_source, (unsigned long long) cv_client_unsettled(client));
done:
    if (self)
        driver->stop(&self);
    if (client)
        cv_client_flush(client);
    cv_client_destroy(&client);
    free(dir);
    cv_adapter_config_destroy(&config);
    return rc;
}
