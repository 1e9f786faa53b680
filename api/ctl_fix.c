/*  ctl_fix — see ctl_fix.h: the shared part of `dead-letters` and `remap`. */
#include "ctl_fix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX_BATCH 500

int cv_ctl_fix_main(const char *conninfo, int argc, char **argv)
{
    if (strcmp(argv[0], "remap") == 0)
        return cv_ctl_remap(argc - 1, argv + 1);
    return cv_ctl_deadletters(conninfo, argc - 1, argv + 1);
}

int cv_ctl_fix_open(cv_ctl_fix_t *f, const char *hub_config, const char *source, bool store)
{
    memset(f, 0, sizeof *f);
    char err[1024];
    if (!hub_config || !source) {
        fprintf(stderr, "civibusctl: --hub-config FILE and --source S are required\n");
        return 2;
    }
    f->config = cv_hub_config_load(hub_config, err, sizeof err);
    if (!f->config) {
        fprintf(stderr, "civibusctl: %s\n", err);
        return 2;
    }
    for (size_t i = 0; i < f->config->nsources; i++)
        if (strcmp(f->config->sources[i].name, source) == 0)
            f->source = &f->config->sources[i];
    if (!f->source) {
        fprintf(stderr, "civibusctl: no source '%s' in %s\n", source, hub_config);
        return 2;
    }
    if (store) {
        f->store = cv_store_new(f->config->conninfo, f->config->migrations_dir, err, sizeof err);
        if (!f->store) {
            fprintf(stderr, "civibusctl: store: %s\n", err);
            return 1;
        }
        /* the hub's identity limits (hub/main.c); no identity cache: one run */
        if (cv_store_set_identity_limits(f->store, f->config->identity_max_shared,
                                         f->config->identity_max_absorb) < 0) {
            fprintf(stderr, "civibusctl: store: %s\n", cv_store_error(f->store));
            return 1;
        }
    }
    f->pg = PQconnectdb(f->config->conninfo);
    if (PQstatus(f->pg) != CONNECTION_OK) {
        fprintf(stderr, "civibusctl: connection failed: %s", PQerrorMessage(f->pg));
        return 1;
    }
    return 0;
}

void cv_ctl_fix_close(cv_ctl_fix_t *f)
{
    if (f->pg)
        PQfinish(f->pg);
    cv_store_destroy(&f->store);
    cv_hub_config_destroy(&f->config);
    memset(f, 0, sizeof *f);
}

void cv_ctl_fix_item(cv_store_item_t *it, const char *source, json_t *event, json_t *record,
                     const char *raw, size_t raw_len, const char *hash)
{
    memset(it, 0, sizeof *it);
    it->kind = CV_ITEM_EVENT;
    snprintf(it->source, sizeof it->source, "%s", source);
    it->event = event;
    it->record = record;
    it->raw = raw;
    it->raw_len = raw_len;
    snprintf(it->content_hash, sizeof it->content_hash, "%s", hash);
    cv_store_item_prepare(it);
}

int cv_ctl_fix_write(cv_ctl_fix_t *f, cv_store_item_t *items, size_t n)
{
    for (size_t at = 0; at < n; at += FIX_BATCH) {
        size_t k = n - at < FIX_BATCH ? n - at : FIX_BATCH;
        int tries = 0;
        while (cv_store_write_batch(f->store, items + at, k) != 0) {
            fprintf(stderr, "civibusctl: store: %s\n", cv_store_error(f->store));
            if (++tries > 3 || cv_store_reconnect(f->store) != 0)
                return -1;
        }
    }
    return 0;
}

int cv_ctl_fix_audit(cv_ctl_fix_t *f, const char *command, const char *option, const char *value,
                     json_t *counts, bool notify)
{
    json_t *options = json_pack("{s:s?}", option, value);
    char *o = json_dumps(options, JSON_COMPACT), *c = json_dumps(counts, JSON_COMPACT);
    json_decref(options);
    const char *v[4] = { command, f->source->name, o, c };
    PGresult *r = PQexecParams(f->pg, "INSERT INTO fix_runs (command, source, options, counts)"
                                      " VALUES ($1, $2, $3::jsonb, $4::jsonb)",
                               4, NULL, v, NULL, NULL, 0);
    free(o);
    free(c);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : 1;
    if (rc)
        fprintf(stderr, "civibusctl: audit failed: %s", PQresultErrorMessage(r));
    PQclear(r);
    if (notify) {
        r = PQexec(f->pg, "SELECT pg_notify('civibus_identity', 'replayed')");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "civibusctl: notify failed: %s", PQresultErrorMessage(r));
            rc = 1;
        }
        PQclear(r);
    }
    return rc;
}

PGresult *cv_ctl_fix_select(PGconn *pg, const char *what, const char *sql, int nparams,
                            const char *const *values, int binary)
{
    PGresult *r = PQexecParams(pg, sql, nparams, NULL, values, NULL, NULL, binary);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    fprintf(stderr, "civibusctl: %s failed: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return NULL;
}

void cv_ctl_fix_count(json_t *counts, const char *key)
{
    json_t *n = json_object_get(counts, key);
    json_object_set_new(counts, key, json_integer(n ? json_integer_value(n) + 1 : 1));
}

void cv_ctl_fix_print_counts(const char *title, const json_t *counts)
{
    const char *key;
    json_t *n;
    if (json_object_size(counts) == 0)
        return;
    printf("%s\n", title);
    json_object_foreach((json_t *) counts, key, n)
        printf("  %s: %lld\n", key, (long long) json_integer_value(n));
}
