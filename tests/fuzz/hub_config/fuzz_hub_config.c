/*  fuzz_hub_config — the hub's configuration file (hub/cv_hub_config.c)
    through cv_hub_config_load, the path it takes, with every source's
    mapping (hub/map/cv_mapping_load.c) and key.

    The input is written as input.yaml in a private folder that also holds
    what a config names (made once): mapping.yaml (the etat-civil mapping),
    urbanisme.yaml, and CURVE certificates keys/etat-civil, keys/urbanisme,
    keys/hub and keys/hub_secret. Relative paths are resolved from the
    config's folder, so the seeds use these names.
    Checked:
      - a failure is "file:line: reason" (the config's or a mapping's);
      - a loaded config's sources each have a name, a loaded mapping of that
        name and one or two 40-character keys, and cv_hub_config_source_by_key
        finds each source by each of its keys; numbers are positive. */
#include "fuzz_util.h"

#include <czmq.h>

#include "cv_hub_config.h"

static void s_cert(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    zcert_t *cert = zcert_new();
    if (!cert || zcert_save(cert, path) != 0) {
        fprintf(stderr, "fuzz_hub_config: cannot write %s\n", path);
        exit(1);
    }
    zcert_destroy(&cert);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    fuzz_copy("mapping.yaml", "adapters/etat-civil/mapping.yaml");
    fuzz_copy("urbanisme.yaml", "adapters/urbanisme/mapping.yaml");
    fuzz_put("keys/.keep", "", 0);
    s_cert("keys/etat-civil");
    s_cert("keys/urbanisme");
    s_cert("keys/hub");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path)
        return 0;
    char err[1024] = "";
    cv_hub_config_t *cfg = cv_hub_config_load(path, err, sizeof err);
    if (!cfg) {
        fuzz_check(fuzz_error_form(err), "error not file:line: reason: %s", err);
        return 0;
    }
    fuzz_check(cfg->nsources <= CV_MAX_SOURCES, "%zu sources", cfg->nsources);
    for (size_t i = 0; i < cfg->nsources; i++) {
        const cv_source_conf_t *s = &cfg->sources[i];
        fuzz_check(s->name && *s->name && s->mapping, "source %zu incomplete", i);
        fuzz_check(strcmp(cv_mapping_source(s->mapping), s->name) == 0, "mapping of '%s' is '%s'", s->name,
                   cv_mapping_source(s->mapping));
        fuzz_check(s->nkeys >= 1 && s->nkeys <= 2, "source '%s' has %d keys", s->name, s->nkeys);
        for (int k = 0; k < s->nkeys; k++) {
            fuzz_check(strlen(s->keys[k]) == CV_KEY_Z85_LEN, "key %d of '%s'", k, s->name);
            fuzz_check(cv_hub_config_source_by_key(cfg, s->keys[k]) == s, "key %d of '%s' finds another", k,
                       s->name);
        }
    }
    fuzz_check(cfg->batch_max_events > 0 && cfg->window > 0 && cfg->heartbeat_ms > 0
               && cfg->max_event_bytes > 0 && cfg->max_message_bytes > 0, "a limit is not positive");
    cv_hub_config_destroy(&cfg);
    return 0;
}
