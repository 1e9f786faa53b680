/*  adapter_config — the adapter's YAML configuration (docs/adapters.md).

    One file describes how to reach the hub and, per source, this adapter's
    key and spool; the spool and size limits are shared:

        hub:     {endpoint, public_key_file | public_key}
        sources: {<name>: {secret_key_file, spool_dir}}
        spool:   {max_bytes, segment_bytes, retention_days}
        limits:  {max_event_bytes}
        driver:  {kind, source, <the driver's own keys>}   (`run` only)
        commands: {timeout_ms, max_attempts, backoff_ms, backoff_max_ms,
                   concurrency, keep_days, kinds: {<kind>: {method, url,
                   headers, body, reference_field, idempotency_header,
                   lookup_url, reference, lookup_reference}}}
                 outbound commands this adapter performs (docs/commands.md)

    Relative paths are taken from the config file's directory. Every
    problem is reported as "file:line: reason" (lib/cv_yaml.h): unknown
    keys, bad values, a hub key that cannot be read. A source's own secret
    key file is checked only when that source is selected
    (cv_adapter_config_client_opts), so one file can serve several
    adapters that each hold only their own key. */
#ifndef CV_ADAPTER_CONFIG_H
#define CV_ADAPTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cv_client.h"
#include "cv_yaml.h"
#include "commands/cv_commands.h"
#include "spool/cv_spool.h"

typedef struct {
    char *name;
    char *secret_key_file;     /* resolved path */
    char *spool_dir;           /* resolved path */
    int line;                  /* line of the source's name */
    int secret_line;           /* line of secret_key_file */
} cv_adapter_source_t;

typedef struct {
    char *file;                /* the config file, as given */
    char *endpoint;
    char hub_public_key[41];   /* Z85 */
    cv_adapter_source_t *sources;
    size_t source_count;
    int sources_line;
    cv_spool_opts_t spool;
    uint32_t max_event_bytes;
    /* `civibus-adapter run`: the driver section, kept with its document so
       the driver reports its own errors as file:line */
    cv_yaml_doc_t *doc;
    const cv_yaml_node_t *driver;   /* NULL when the file has no 'driver' */
    char *driver_kind;              /* rest | webhook | filedrop */
    char *driver_source;            /* the source this process serves */
    /* outbound commands: NULL when the file has no 'commands' section */
    cv_commands_conf_t *commands;
} cv_adapter_config_t;

/* Loads and checks the file; NULL with "file:line: reason" in err. */
cv_adapter_config_t *cv_adapter_config_load(const char *path, char *err, size_t errlen);
void cv_adapter_config_destroy(cv_adapter_config_t **self_p);

/* The source called name, or NULL. */
const cv_adapter_source_t *cv_adapter_config_source(const cv_adapter_config_t *self, const char *name);

/* Fills client options for source `name` (pointers into self, the
   commands section included: self must outlive the client; description
   is left to the caller) after checking that its secret key file holds a
   secret key. Returns 0, or -1 with "file:line: reason" in err. */
int cv_adapter_config_client_opts(const cv_adapter_config_t *self, const char *name,
                                  cv_client_opts_t *opts, char *err, size_t errlen);

#endif
