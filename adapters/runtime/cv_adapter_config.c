/*  adapter_config — see cv_adapter_config.h. The loader reads the YAML tree
    section by section, top to bottom; each reader checks its own keys and
    values and reports the first problem with its line. */
#include "cv_adapter_config.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_yaml.h"

#define MiB (1024LL * 1024LL)

/* path as written in the config, relative to the config file's directory */
static char *s_resolve(const char *config_file, const char *path)
{
    const char *slash = strrchr(config_file, '/');
    if (path[0] == '/' || !slash)
        return cv_zstrdup(path);
    size_t dirlen = (size_t) (slash - config_file);
    size_t len = dirlen + 1 + strlen(path) + 1;
    char *out = cv_zmalloc(len);
    if (out)
        snprintf(out, len, "%.*s/%s", (int) dirlen, config_file, path);
    return out;
}

static bool s_is_zero_key(const byte *key)
{
    static const byte zero[32];
    return memcmp(key, zero, sizeof zero) == 0;
}

static int s_read_hub(cv_adapter_config_t *self, const cv_yaml_doc_t *doc, char *err, size_t errlen)
{
    static const char *const keys[] = { "endpoint", "public_key_file", "public_key", NULL };
    const cv_yaml_node_t *hub = cv_yaml_get(doc->root, "hub");
    if (!hub)
        return cv_yaml_fail(doc, doc->root, err, errlen, "missing required section 'hub'");
    if (cv_yaml_expect(doc, hub, CV_YAML_MAP, "'hub'", err, errlen) < 0
        || cv_yaml_check_keys(doc, hub, keys, "'hub'", err, errlen) < 0)
        return -1;
    const char *endpoint, *key_file, *key;
    if (cv_yaml_str(doc, hub, "endpoint", true, NULL, &endpoint, err, errlen) < 0
        || cv_yaml_str(doc, hub, "public_key_file", false, NULL, &key_file, err, errlen) < 0
        || cv_yaml_str(doc, hub, "public_key", false, NULL, &key, err, errlen) < 0)
        return -1;
    if (!strstr(endpoint, "://"))
        return cv_yaml_fail(doc, cv_yaml_get(hub, "endpoint"), err, errlen,
                            "'endpoint' must look like tcp://host:port, not '%s'", endpoint);
    if (!(self->endpoint = cv_zstrdup(endpoint)))
        return cv_yaml_fail(doc, hub, err, errlen, "out of memory");
    if ((key_file != NULL) == (key != NULL)) {
        cv_yaml_node_t at = { .line = hub->key_line };
        return cv_yaml_fail(doc, &at, err, errlen, "'hub' needs exactly one of 'public_key_file' or 'public_key'");
    }
    if (key) {
        byte raw[32];
        if (strlen(key) != 40 || !zmq_z85_decode(raw, key) || s_is_zero_key(raw))
            return cv_yaml_fail(doc, cv_yaml_get(hub, "public_key"), err, errlen,
                                "'public_key' must be a CURVE public key in Z85 (40 characters)");
        memcpy(self->hub_public_key, key, 41);
        return 0;
    }
    char *path = s_resolve(doc->file, key_file);
    zcert_t *cert = path ? zcert_load(path) : NULL;
    int rc = 0;
    if (!cert || s_is_zero_key(zcert_public_key(cert)))
        rc = cv_yaml_fail(doc, cv_yaml_get(hub, "public_key_file"), err, errlen,
                          "cannot read a CURVE certificate from '%s'", path ? path : key_file);
    else
        memcpy(self->hub_public_key, zcert_public_txt(cert), 41);
    zcert_destroy(&cert);
    free(path);
    return rc;
}

static bool s_valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", name[i]))
            return false;
    return true;
}

static int s_read_source(cv_adapter_source_t *src, const cv_yaml_doc_t *doc, const cv_yaml_node_t *node,
                         char *err, size_t errlen)
{
    static const char *const keys[] = { "secret_key_file", "spool_dir", NULL };
    char where[96];
    snprintf(where, sizeof where, "source '%s'", node->key);
    src->line = node->key_line;
    if (!s_valid_name(node->key)) {
        cv_yaml_node_t at = { .line = node->key_line };
        return cv_yaml_fail(doc, &at, err, errlen,
                            "source name '%s' must be 1 to 64 letters, digits, '_', '.' or '-'", node->key);
    }
    if (cv_yaml_expect(doc, node, CV_YAML_MAP, where, err, errlen) < 0
        || cv_yaml_check_keys(doc, node, keys, where, err, errlen) < 0)
        return -1;
    const char *secret, *spool;
    if (cv_yaml_str(doc, node, "secret_key_file", true, NULL, &secret, err, errlen) < 0
        || cv_yaml_str(doc, node, "spool_dir", true, NULL, &spool, err, errlen) < 0)
        return -1;
    src->secret_line = cv_yaml_get(node, "secret_key_file")->line;
    src->name = cv_zstrdup(node->key);
    src->secret_key_file = s_resolve(doc->file, secret);
    src->spool_dir = s_resolve(doc->file, spool);
    if (!src->name || !src->secret_key_file || !src->spool_dir)
        return cv_yaml_fail(doc, node, err, errlen, "out of memory");
    return 0;
}

static int s_read_sources(cv_adapter_config_t *self, const cv_yaml_doc_t *doc, char *err, size_t errlen)
{
    const cv_yaml_node_t *sources = cv_yaml_get(doc->root, "sources");
    if (!sources)
        return cv_yaml_fail(doc, doc->root, err, errlen, "missing required section 'sources'");
    if (cv_yaml_expect(doc, sources, CV_YAML_MAP, "'sources'", err, errlen) < 0)
        return -1;
    if (sources->count == 0)
        return cv_yaml_fail(doc, sources, err, errlen, "'sources' must list at least one source");
    self->sources_line = sources->key_line;
    self->sources = cv_zcalloc(sources->count, sizeof *self->sources);
    if (!self->sources)
        return cv_yaml_fail(doc, sources, err, errlen, "out of memory");
    for (const cv_yaml_node_t *n = sources->child; n; n = n->next) {
        if (s_read_source(&self->sources[self->source_count++], doc, n, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int s_read_limits(cv_adapter_config_t *self, const cv_yaml_doc_t *doc, char *err, size_t errlen)
{
    static const char *const spool_keys[] = { "max_bytes", "segment_bytes", "retention_days", NULL };
    static const char *const limit_keys[] = { "max_event_bytes", NULL };
    const cv_yaml_node_t *spool = cv_yaml_get(doc->root, "spool");
    const cv_yaml_node_t *limits = cv_yaml_get(doc->root, "limits");
    int64_t max_bytes, segment_bytes, retention, event_bytes;
    if ((spool && cv_yaml_expect(doc, spool, CV_YAML_MAP, "'spool'", err, errlen) < 0)
        || cv_yaml_check_keys(doc, spool, spool_keys, "'spool'", err, errlen) < 0
        || cv_yaml_int(doc, spool, "max_bytes", false, 1024 * MiB, MiB, INT64_MAX, &max_bytes, err, errlen) < 0
        || cv_yaml_int(doc, spool, "segment_bytes", false, 64 * MiB, 64 * 1024, 4096 * MiB,
                       &segment_bytes, err, errlen) < 0
        || cv_yaml_int(doc, spool, "retention_days", false, 7, 0, 3650, &retention, err, errlen) < 0)
        return -1;
    if ((limits && cv_yaml_expect(doc, limits, CV_YAML_MAP, "'limits'", err, errlen) < 0)
        || cv_yaml_check_keys(doc, limits, limit_keys, "'limits'", err, errlen) < 0
        || cv_yaml_int(doc, limits, "max_event_bytes", false, 262144, 1, 64 * MiB,
                       &event_bytes, err, errlen) < 0)
        return -1;
    self->spool.max_bytes = (uint64_t) max_bytes;
    self->spool.segment_bytes = (uint64_t) segment_bytes;
    self->spool.retention_days = (int) retention;
    self->spool.max_record_bytes = (uint32_t) event_bytes;
    self->max_event_bytes = (uint32_t) event_bytes;
    return 0;
}

/* The optional `driver:` section of `civibus-adapter run`: its kind and
   the source it serves; the rest of the section belongs to the driver. */
static int s_read_driver(cv_adapter_config_t *self, const cv_yaml_doc_t *doc, char *err, size_t errlen)
{
    const cv_yaml_node_t *driver = cv_yaml_get(doc->root, "driver");
    if (!driver)
        return 0;
    if (cv_yaml_expect(doc, driver, CV_YAML_MAP, "'driver'", err, errlen) < 0)
        return -1;
    const char *kind, *source;
    if (cv_yaml_str(doc, driver, "kind", true, NULL, &kind, err, errlen) < 0
        || cv_yaml_str(doc, driver, "source", false, NULL, &source, err, errlen) < 0)
        return -1;
    if (!source) {
        if (self->source_count != 1)
            return cv_yaml_fail(doc, driver, err, errlen,
                                "'driver' needs 'source' (one of the sources listed under 'sources')");
        source = self->sources[0].name;
    }
    if (!cv_adapter_config_source(self, source))
        return cv_yaml_fail(doc, cv_yaml_get(driver, "source"), err, errlen,
                            "driver source '%s' is not listed under 'sources'", source);
    self->driver = driver;
    self->driver_kind = cv_zstrdup(kind);
    self->driver_source = cv_zstrdup(source);
    return 0;
}

/* ---- commands (docs/commands.md) ---- */

static bool s_token(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *s))
            return false;
    return true;
}

/* A template key: present (when required), checked placeholders, copied. */
static int s_template(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key, bool required,
                      bool url, char **out, char *err, size_t errlen)
{
    const char *value;
    if (cv_yaml_str(doc, map, key, required, NULL, &value, err, errlen) < 0)
        return -1;
    if (!value)
        return 0;
    char why[200];
    if (cv_commands_template_check(value, why, sizeof why) < 0)
        return cv_yaml_fail(doc, cv_yaml_get(map, key), err, errlen, "'%s': %s", key, why);
    if (url && strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
        return cv_yaml_fail(doc, cv_yaml_get(map, key), err, errlen, "'%s' must start with http:// or https://", key);
    *out = cv_zstrdup(value);
    return *out ? 0 : cv_yaml_fail(doc, map, err, errlen, "out of memory");
}

static int s_opt_str(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key, char **out,
                     char *err, size_t errlen)
{
    const char *value;
    if (cv_yaml_str(doc, map, key, false, NULL, &value, err, errlen) < 0)
        return -1;
    if (value && !(*out = cv_zstrdup(value)))
        return cv_yaml_fail(doc, map, err, errlen, "out of memory");
    return 0;
}

static int s_read_kind(cv_command_kind_t *k, const cv_yaml_doc_t *doc, const cv_yaml_node_t *node,
                       char *err, size_t errlen)
{
    static const char *const keys[] = { "method", "url", "headers", "body", "reference_field",
                                        "idempotency_header", "lookup_url", "reference",
                                        "lookup_reference", NULL };
    static const char *const methods[] = { "POST", "PUT", "PATCH", "DELETE", "GET", NULL };
    char where[96];
    snprintf(where, sizeof where, "command kind '%s'", node->key);
    if (!s_token(node->key)) {
        cv_yaml_node_t at = { .line = node->key_line };
        return cv_yaml_fail(doc, &at, err, errlen,
                            "command kind '%s' must be 1 to 64 letters, digits, '_', '.' or '-'", node->key);
    }
    if (cv_yaml_expect(doc, node, CV_YAML_MAP, where, err, errlen) < 0
        || cv_yaml_check_keys(doc, node, keys, where, err, errlen) < 0)
        return -1;
    if (!(k->name = cv_zstrdup(node->key)))
        return cv_yaml_fail(doc, node, err, errlen, "out of memory");
    const char *method;
    if (cv_yaml_str(doc, node, "method", false, "POST", &method, err, errlen) < 0)
        return -1;
    size_t m = 0;
    while (methods[m] && strcmp(methods[m], method) != 0)
        m++;
    if (!methods[m])
        return cv_yaml_fail(doc, cv_yaml_get(node, "method"), err, errlen,
                            "'method' must be POST, PUT, PATCH, DELETE or GET, not '%s'", method);
    k->method = cv_zstrdup(methods[m]);
    bool body_default = strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0;
    if (cv_yaml_bool(doc, node, "body", false, body_default, &k->body, err, errlen) < 0
        || s_template(doc, node, "url", true, true, &k->url, err, errlen) < 0
        || s_template(doc, node, "lookup_url", false, true, &k->lookup_url, err, errlen) < 0
        || s_opt_str(doc, node, "reference_field", &k->reference_field, err, errlen) < 0
        || s_opt_str(doc, node, "idempotency_header", &k->idempotency_header, err, errlen) < 0
        || s_opt_str(doc, node, "reference", &k->reference, err, errlen) < 0
        || s_opt_str(doc, node, "lookup_reference", &k->lookup_reference, err, errlen) < 0)
        return -1;
    if (k->body && strcmp(method, "GET") == 0)
        return cv_yaml_fail(doc, cv_yaml_get(node, "body"), err, errlen, "a GET command cannot have a body");
    if (k->reference_field && !k->body)
        return cv_yaml_fail(doc, cv_yaml_get(node, "reference_field"), err, errlen,
                            "'reference_field' goes into the body, and this kind sends none");
    if (k->idempotency_header && !s_token(k->idempotency_header))
        return cv_yaml_fail(doc, cv_yaml_get(node, "idempotency_header"), err, errlen,
                            "'idempotency_header' must be a header name, e.g. Idempotency-Key");
    if (k->lookup_url && !strstr(k->lookup_url, "{key}"))
        return cv_yaml_fail(doc, cv_yaml_get(node, "lookup_url"), err, errlen,
                            "'lookup_url' must contain {key}: the lookup finds the object by our reference");
    const cv_yaml_node_t *headers = cv_yaml_get(node, "headers");
    if (!headers)
        return 0;
    if (cv_yaml_expect(doc, headers, CV_YAML_MAP, "'headers'", err, errlen) < 0)
        return -1;
    k->header_names = cv_zcalloc(headers->count + 1, sizeof *k->header_names);
    k->header_values = cv_zcalloc(headers->count + 1, sizeof *k->header_values);
    if (!k->header_names || !k->header_values)
        return cv_yaml_fail(doc, headers, err, errlen, "out of memory");
    for (const cv_yaml_node_t *h = headers->child; h; h = h->next) {
        cv_yaml_node_t at = { .line = h->key_line };
        if (!s_token(h->key))
            return cv_yaml_fail(doc, &at, err, errlen, "'%s' is not a header name", h->key);
        if (h->type != CV_YAML_SCALAR)
            return cv_yaml_fail(doc, h, err, errlen, "header '%s' must be a single value", h->key);
        char why[200];
        if (cv_commands_template_check(h->value, why, sizeof why) < 0)
            return cv_yaml_fail(doc, h, err, errlen, "header '%s': %s", h->key, why);
        k->header_names[k->nheaders] = cv_zstrdup(h->key);
        k->header_values[k->nheaders] = cv_zstrdup(h->value);
        if (!k->header_names[k->nheaders++] || !k->header_values[k->nheaders - 1])
            return cv_yaml_fail(doc, h, err, errlen, "out of memory");
    }
    return 0;
}

static int s_read_commands(cv_adapter_config_t *self, const cv_yaml_doc_t *doc, char *err, size_t errlen)
{
    static const char *const keys[] = { "timeout_ms", "max_attempts", "backoff_ms", "backoff_max_ms",
                                        "concurrency", "keep_days", "kinds", NULL };
    const cv_yaml_node_t *node = cv_yaml_get(doc->root, "commands");
    if (!node)
        return 0;
    if (cv_yaml_expect(doc, node, CV_YAML_MAP, "'commands'", err, errlen) < 0
        || cv_yaml_check_keys(doc, node, keys, "'commands'", err, errlen) < 0)
        return -1;
    cv_commands_conf_t *conf = self->commands = cv_zcalloc(1, sizeof *conf);
    if (!conf)
        return cv_yaml_fail(doc, node, err, errlen, "out of memory");
    int64_t timeout, attempts, backoff, backoff_max, concurrency, keep;
    if (cv_yaml_int(doc, node, "timeout_ms", false, 10000, 100, 600000, &timeout, err, errlen) < 0
        || cv_yaml_int(doc, node, "max_attempts", false, 8, 1, 1000, &attempts, err, errlen) < 0
        || cv_yaml_int(doc, node, "backoff_ms", false, 500, 10, 3600000, &backoff, err, errlen) < 0
        || cv_yaml_int(doc, node, "backoff_max_ms", false, 30000, 10, 86400000, &backoff_max, err, errlen) < 0
        || cv_yaml_int(doc, node, "concurrency", false, 4, 1, 64, &concurrency, err, errlen) < 0
        || cv_yaml_int(doc, node, "keep_days", false, 7, 0, 3650, &keep, err, errlen) < 0)
        return -1;
    if (backoff_max < backoff)
        return cv_yaml_fail(doc, cv_yaml_get(node, "backoff_max_ms"), err, errlen,
                            "'backoff_max_ms' must not be lower than 'backoff_ms'");
    conf->timeout_ms = (int) timeout;
    conf->max_attempts = (int) attempts;
    conf->backoff_ms = (int) backoff;
    conf->backoff_max_ms = (int) backoff_max;
    conf->concurrency = (int) concurrency;
    conf->keep_days = (int) keep;
    const cv_yaml_node_t *kinds = cv_yaml_get(node, "kinds");
    if (!kinds)
        return cv_yaml_fail(doc, node, err, errlen, "'commands' needs 'kinds' (one entry per kind of command)");
    if (cv_yaml_expect(doc, kinds, CV_YAML_MAP, "'kinds'", err, errlen) < 0)
        return -1;
    if (kinds->count == 0)
        return cv_yaml_fail(doc, kinds, err, errlen, "'kinds' must list at least one kind of command");
    if (!(conf->kinds = cv_zcalloc(kinds->count, sizeof *conf->kinds)))
        return cv_yaml_fail(doc, kinds, err, errlen, "out of memory");
    for (const cv_yaml_node_t *k = kinds->child; k; k = k->next)
        if (s_read_kind(&conf->kinds[conf->nkinds++], doc, k, err, errlen) < 0)
            return -1;
    return 0;
}

static void s_free_commands(cv_commands_conf_t **conf_p)
{
    cv_commands_conf_t *conf = *conf_p;
    if (!conf)
        return;
    for (size_t i = 0; i < conf->nkinds; i++) {
        cv_command_kind_t *k = &conf->kinds[i];
        for (size_t h = 0; h < k->nheaders; h++) {
            free(k->header_names[h]);
            free(k->header_values[h]);
        }
        free(k->header_names);
        free(k->header_values);
        free(k->name);
        free(k->method);
        free(k->url);
        free(k->reference_field);
        free(k->idempotency_header);
        free(k->lookup_url);
        free(k->reference);
        free(k->lookup_reference);
    }
    free(conf->kinds);
    free(conf);
    *conf_p = NULL;
}

cv_adapter_config_t *cv_adapter_config_load(const char *path, char *err, size_t errlen)
{
    static const char *const keys[] = { "hub", "sources", "spool", "limits", "driver", "commands", NULL };
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, errlen);
    if (!doc)
        return NULL;
    cv_adapter_config_t *self = cv_zcalloc(1, sizeof *self);
    int rc = self && (self->file = cv_zstrdup(path)) ? 0 : cv_yaml_fail(doc, NULL, err, errlen, "out of memory");
    if (rc == 0 && !doc->root)
        rc = cv_yaml_fail(doc, NULL, err, errlen, "the file is empty");
    if (rc == 0)
        rc = cv_yaml_expect(doc, doc->root, CV_YAML_MAP, "the adapter config", err, errlen);
    if (rc == 0)
        rc = cv_yaml_check_keys(doc, doc->root, keys, "the adapter config", err, errlen);
    if (rc == 0)
        rc = s_read_hub(self, doc, err, errlen);
    if (rc == 0)
        rc = s_read_sources(self, doc, err, errlen);
    if (rc == 0)
        rc = s_read_limits(self, doc, err, errlen);
    if (rc == 0)
        rc = s_read_driver(self, doc, err, errlen);
    if (rc == 0)
        rc = s_read_commands(self, doc, err, errlen);
    if (rc < 0) {
        cv_yaml_destroy(&doc);
        cv_adapter_config_destroy(&self);
        return NULL;
    }
    self->doc = doc;                 /* drivers read their section later, with lines */
    return self;
}

void cv_adapter_config_destroy(cv_adapter_config_t **self_p)
{
    cv_adapter_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->source_count; i++) {
        free(self->sources[i].name);
        free(self->sources[i].secret_key_file);
        free(self->sources[i].spool_dir);
    }
    free(self->sources);
    free(self->endpoint);
    free(self->file);
    free(self->driver_kind);
    free(self->driver_source);
    s_free_commands(&self->commands);
    cv_yaml_destroy(&self->doc);
    free(self);
    *self_p = NULL;
}

const cv_adapter_source_t *cv_adapter_config_source(const cv_adapter_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->source_count; i++)
        if (self->sources[i].name && strcmp(self->sources[i].name, name) == 0)
            return &self->sources[i];
    return NULL;
}

int cv_adapter_config_client_opts(const cv_adapter_config_t *self, const char *name,
                                  cv_client_opts_t *opts, char *err, size_t errlen)
{
    const cv_adapter_source_t *src = cv_adapter_config_source(self, name);
    if (!src) {
        snprintf(err, errlen, "%s:%d: no source '%s' under 'sources'", self->file, self->sources_line, name);
        return -1;
    }
    zcert_t *cert = zcert_load(src->secret_key_file);
    bool ok = cert && !s_is_zero_key(zcert_secret_key(cert));
    zcert_destroy(&cert);
    if (!ok) {
        snprintf(err, errlen, "%s:%d: cannot read a CURVE secret key from '%s' (secret_key_file of source '%s')",
                 self->file, src->secret_line, src->secret_key_file, name);
        return -1;
    }
    memset(opts, 0, sizeof *opts);
    opts->endpoint = self->endpoint;
    opts->hub_public_key = self->hub_public_key;
    opts->secret_key_file = src->secret_key_file;
    opts->spool_dir = src->spool_dir;
    opts->spool = self->spool;
    opts->max_event_bytes = self->max_event_bytes;
    opts->name = src->name;
    opts->commands = self->commands;
    return 0;
}
