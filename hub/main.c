/*  civibus-hub — receives adapters' events, maps them, stores them once.

    civibus-hub --config FILE [--check-config]

    Start-up reads the whole configuration and every source's mapping
    (exit 2 with "file:line: reason" on the first bad line), connects to
    PostgreSQL and applies migrations (refusing a server without fsync and
    synchronous_commit), starts CURVE authentication, binds, then runs the
    ingest loop until SIGINT/SIGTERM. */
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "cv_hub_config.h"
#include "cv_log.h"
#include "receive/cv_ingest.h"
#include "store/cv_store.h"

static void s_usage(FILE *out)
{
    fprintf(out, "usage: civibus-hub --config FILE [--check-config]\n"
                 "  --config FILE     the hub configuration (see deploy/civibus.yaml)\n"
                 "  --check-config    check the configuration and mappings, then exit\n");
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strcmp(argv[i], "--check-config") == 0)
            check = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        }
        else {
            s_usage(stderr);
            return 2;
        }
    }
    if (!config_path) {
        s_usage(stderr);
        return 2;
    }
    cv_log_init("civibus-hub", CV_LOG_INFO);
    zsys_init();
    zsys_set_logident("civibus-hub");

    char err[1024] = "";
    cv_hub_config_t *config = cv_hub_config_load(config_path, err, sizeof err);
    if (!config) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (check) {
        printf("%s: configuration OK (%zu sources)\n", config_path, config->nsources);
        cv_hub_config_destroy(&config);
        return 0;
    }
    cv_store_t *store = cv_store_new(config->conninfo, config->migrations_dir, err, sizeof err);
    if (!store) {
        cv_error("hub", "PostgreSQL: %s", err);
        cv_hub_config_destroy(&config);
        return 1;
    }
    if (cv_store_set_identity_cache(store, config->identity_cache_pairs) < 0
        || cv_store_set_identity_limits(store, config->identity_max_shared, config->identity_max_absorb) < 0) {
        cv_error("hub", "%s", cv_store_error(store));
        cv_store_destroy(&store);
        cv_hub_config_destroy(&config);
        return 1;
    }
    cv_ingest_t *ingest = cv_ingest_new(config, store, err, sizeof err);
    if (!ingest) {
        cv_error("hub", "%s", err);
        cv_hub_config_destroy(&config);
        return 1;
    }
    int rc = cv_ingest_run(ingest);
    cv_ingest_destroy(&ingest);
    cv_hub_config_destroy(&config);
    cv_info("hub", "stopped");
    return rc;
}
