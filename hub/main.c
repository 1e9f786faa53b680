/*  civibus-hub — receives adapters' events, maps them, stores them once.

    civibus-hub --config FILE [--check-config]
    civibus-hub --config FILE --try-mapping SOURCE FILE [--adapter-config FILE]
    civibus-hub --config FILE --migrate

    Start-up reads the whole configuration and every source's mapping
    (exit 2 with "file:line: reason" on the first bad line), connects to
    PostgreSQL and applies migrations (refusing a server without fsync and
    synchronous_commit), starts CURVE authentication, binds, then runs the
    ingest loop until SIGINT/SIGTERM. SIGHUP reloads the sources, their keys
    and mappings, routing and deadlines (docs/operations.md, "Reloading"). --try-mapping maps a sample export
    and prints the result instead, before any of that (hub/trymap).
    --migrate applies the migrations with the configuration's conninfo (in
    production the schema's owner, civibus_owner) and exits; a hub started
    as another role (civibus_hub) only checks the schema's version
    (hub/store/cv_migrate.h). */
#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_hub_config.h"
#include "cv_log.h"
#include "cv_text.h"
#include "cv_hub_rules.h"
#include "receive/cv_ingest.h"
#include "store/cv_migrate.h"
#include "store/cv_store.h"
#include "trymap/cv_trymap.h"

static void s_usage(FILE *out)
{
    fprintf(out, "usage: civibus-hub --config FILE [--check-config]\n"
                 "       civibus-hub --config FILE --migrate\n"
                 "       civibus-hub --config FILE --try-mapping SOURCE FILE [--adapter-config FILE]\n"
                 "  --config FILE     the hub configuration (see deploy/civibus.yaml)\n"
                 "  --check-config    check the configuration and mappings, then exit\n"
                 "  --migrate         apply the migrations of postgres.migrations as the conninfo's role\n"
                 "                    (the schema's owner, civibus_owner), then exit 0 (1 on an error)\n"
                 "  --try-mapping SOURCE FILE\n"
                 "                    map a sample export (CSV, XML or JSON lines) with SOURCE's mapping and print\n"
                 "                    counts, the first 3 events and each dead-letter reason with an example;\n"
                 "                    stores nothing, connects to nothing. The events printed hold the file's\n"
                 "                    values (personal data): run it on your own machine, keep the output there.\n"
                 "                    Exit 0: every record maps, 1: some do not, 2: usage or configuration error\n"
                 "  --adapter-config FILE\n"
                 "                    the adapter config whose file-drop driver settings (separator, encoding,\n"
                 "                    columns, XML record element) read a CSV or XML FILE (docs/mapping.md)\n");
}

static void s_quiet(void *arg, const char *message)
{
    (void) arg;
    (void) message;             /* the runner's "already exists, skipping" notices */
}

/* --migrate: the migrations alone, as the configuration's role. */
static int s_migrate(const cv_hub_config_t *config)
{
    const char *keys[] = { "fallback_application_name", "dbname", "client_encoding", NULL };
    const char *values[] = { "civibus-hub", config->conninfo ? config->conninfo : "", "UTF8", NULL };
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        char line[512];
        cv_error("hub", "PostgreSQL: cannot connect: %s",
                 cv_text_one_line(conn ? PQerrorMessage(conn) : "out of memory", line, sizeof line));
        PQfinish(conn);
        return 1;
    }
    PQsetNoticeProcessor(conn, s_quiet, NULL);
    char err[1024];
    int applied = cv_migrate_apply(conn, config->migrations_dir, err, sizeof err);
    PQfinish(conn);
    if (applied < 0) {
        cv_error("hub", "migrate: %s", err);
        return 1;
    }
    cv_info("hub", "migrate: %d files applied, the schema is up to date", applied);
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    bool check = false, migrate = false;
    const char *try_source = NULL, *try_file = NULL, *adapter_config = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strcmp(argv[i], "--check-config") == 0)
            check = true;
        else if (strcmp(argv[i], "--migrate") == 0)
            migrate = true;
        else if (strcmp(argv[i], "--try-mapping") == 0 && i + 2 < argc) {
            try_source = argv[++i];
            try_file = argv[++i];
        }
        else if (strcmp(argv[i], "--adapter-config") == 0 && i + 1 < argc)
            adapter_config = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        }
        else {
            s_usage(stderr);
            return 2;
        }
    }
    if (!config_path || (adapter_config && !try_source) || (try_source && check)
        || (migrate && (check || try_source))) {
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
    if (migrate) {
        int rc = s_migrate(config);
        cv_hub_config_destroy(&config);
        return rc;
    }
    if (try_source) {
        int rc = cv_trymap_run(config, try_source, try_file, adapter_config, stdout, stderr);
        cv_hub_config_destroy(&config);
        return rc;
    }
    /* deploy/deadlines.yaml and deploy/routing.yaml, checked with the configuration */
    cv_hub_rules_t *rules = cv_hub_rules_load(config, err, sizeof err);
    if (!rules) {
        fprintf(stderr, "%s\n", err);
        cv_hub_config_destroy(&config);
        return 2;
    }
    if (check) {
        printf("%s: configuration OK (%zu sources)\n", config_path, config->nsources);
        cv_hub_rules_destroy(&rules);
        cv_hub_config_destroy(&config);
        return 0;
    }
    cv_store_t *store = cv_store_new(config->conninfo, config->migrations_dir, err, sizeof err);
    if (!store) {
        cv_error("hub", "PostgreSQL: %s", err);
        cv_hub_rules_destroy(&rules);
        cv_hub_config_destroy(&config);
        return 1;
    }
    int arc = cv_hub_rules_apply(rules, config, err, sizeof err);
    cv_hub_rules_destroy(&rules);
    if (arc < 0) {
        cv_error("hub", "%s", err);
        cv_store_destroy(&store);
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
    /* SIGHUP: the ingest loop reloads what can change while it runs
       (hub/receive/cv_reload.c); no SA_RESTART, so its poll wakes */
    struct sigaction hup = { .sa_handler = cv_ingest_request_reload };
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, NULL);
    int rc = cv_ingest_run(ingest);
    cv_ingest_destroy(&ingest);
    cv_hub_config_destroy(&config);
    cv_info("hub", "stopped");
    return rc;
}
