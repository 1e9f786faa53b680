/*  fuzz_adapter_config — the adapter's configuration file
    (adapters/runtime/cv_adapter_config.c: hub endpoint and key, sources,
    spool limits, the outbound commands section with its URL and header
    templates) through cv_adapter_config_load, the path it takes, then
    cv_adapter_config_client_opts for each source, as `civibus-adapter run`
    does before it connects.

    The input is written as input.yaml in a private folder that also holds
    CURVE certificates keys/hub (public) and keys/etat-civil_secret (made
    once); the seeds name them. Nothing is created from the config: spool
    folders are only opened by the client, which is not started here.
    Checked:
      - a failure is "file:line: reason";
      - a loaded config has an endpoint, a 40-character hub key, and each of
        its sources is found by its name; client options, when they are
        given, carry that source's spool folder. */
#include "fuzz_util.h"

#include <czmq.h>

#include "runtime/cv_adapter_config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    fuzz_put("keys/.keep", "", 0);
    char path[256];
    snprintf(path, sizeof path, "%s/keys/hub", fuzz_dir());
    zcert_t *hub = zcert_new(), *src = zcert_new();
    if (!hub || !src || zcert_save_public(hub, path) != 0) {
        fprintf(stderr, "fuzz_adapter_config: cannot write %s\n", path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/keys/etat-civil", fuzz_dir());
    if (zcert_save(src, path) != 0) {
        fprintf(stderr, "fuzz_adapter_config: cannot write %s\n", path);
        exit(1);
    }
    zcert_destroy(&hub);
    zcert_destroy(&src);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path)
        return 0;
    char err[1024] = "";
    cv_adapter_config_t *cfg = cv_adapter_config_load(path, err, sizeof err);
    if (!cfg) {
        fuzz_check(fuzz_error_form(err), "error not file:line: reason: %s", err);
        return 0;
    }
    fuzz_check(cfg->endpoint && *cfg->endpoint, "no endpoint");
    fuzz_check(strlen(cfg->hub_public_key) == 40, "hub key of %zu characters", strlen(cfg->hub_public_key));
    for (size_t i = 0; i < cfg->source_count; i++) {
        const cv_adapter_source_t *s = &cfg->sources[i];
        fuzz_check(cv_adapter_config_source(cfg, s->name) == s, "source '%s' not found by name", s->name);
        cv_client_opts_t opts;
        memset(&opts, 0, sizeof opts);
        if (cv_adapter_config_client_opts(cfg, s->name, &opts, err, sizeof err) == 0)
            fuzz_check(opts.spool_dir && strcmp(opts.spool_dir, s->spool_dir) == 0, "options of '%s'", s->name);
        else
            fuzz_check(fuzz_error_form(err), "error not file:line: reason: %s", err);
    }
    cv_adapter_config_destroy(&cfg);
    return 0;
}
