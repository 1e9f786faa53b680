/*  hub_config — see cv_hub_config.h and deploy/civibus.yaml. */
#include "cv_hub_config.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_yaml.h"

#ifndef CV_SCHEMA_DIR
#define CV_SCHEMA_DIR "schemas/sql"
#endif

/* A path from the config, resolved against the config file's directory. */
static char *s_path(const char *cfgfile, const char *p)
{
    if (p[0] == '/')
        return cv_zstrdup(p);
    const char *slash = strrchr(cfgfile, '/');
    if (!slash)
        return cv_zstrdup(p);
    size_t dlen = (size_t) (slash - cfgfile);
    size_t len = dlen + 1 + strlen(p) + 1;
    char *out = cv_zmalloc(len);
    snprintf(out, len, "%.*s/%s", (int) dlen, cfgfile, p);
    return out;
}

static bool s_is_z85_key(const char *s)
{
    if (strlen(s) != CV_KEY_Z85_LEN)
        return false;
    uint8_t bin[32];
    return zmq_z85_decode(bin, s) != NULL;
}

static bool s_loopback(const char *ep)
{
    return strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0
        || strncmp(ep, "tcp://127.", 10) == 0 || strncmp(ep, "tcp://localhost:", 16) == 0
        || strncmp(ep, "tcp://[::1]:", 12) == 0;
}

/* listen.metrics: "IPv4:port" or "[IPv6]:port", port 0 meaning any free
   port. Fills the config's metrics_address and metrics_port. */
static int s_metrics_listen(cv_hub_config_t *self, const cv_yaml_doc_t *doc, const cv_yaml_node_t *node,
                            const char *text, char *err, size_t errlen)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    size_t hlen = colon ? (size_t) (colon - text) : 0;
    if (hlen >= 2 && text[0] == '[' && text[hlen - 1] == ']') {
        text++;
        hlen -= 2;
    }
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    unsigned char ip[16];
    if (!colon || hlen == 0 || hlen >= sizeof host || !end || end == colon + 1 || *end || port < 0 || port > 65535)
        return cv_yaml_fail(doc, node, err, errlen,
                            "'listen.metrics' must be ADDRESS:PORT, e.g. 127.0.0.1:9560 or [::1]:9560");
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, ip) != 1 && inet_pton(AF_INET6, host, ip) != 1)
        return cv_yaml_fail(doc, node, err, errlen,
                            "'listen.metrics': '%s' is not an IPv4 or IPv6 address", host);
    self->metrics_address = cv_zstrdup(host);
    self->metrics_port = (int) port;
    return 0;
}

static bool s_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* Reads a list of keys (Z85 strings, or paths of zcert public files). */
static int s_keys(const cv_yaml_doc_t *doc, const cv_yaml_node_t *list, const char *what,
                  char out[][CV_KEY_Z85_LEN + 1], int max, int *n, char *err, size_t errlen)
{
    if (cv_yaml_expect(doc, list, CV_YAML_SEQ, what, err, errlen) < 0)
        return -1;
    *n = 0;
    for (const cv_yaml_node_t *k = list->child; k; k = k->next) {
        if (k->type != CV_YAML_SCALAR)
            return cv_yaml_fail(doc, k, err, errlen, "%s: each key must be a single value", what);
        if (*n == max)
            return cv_yaml_fail(doc, k, err, errlen, "%s: at most %d keys", what, max);
        const char *key = k->value;
        /* an existing file is a certificate, even when its path happens to
           be 40 characters of the Z85 alphabet */
        char *path = s_path(doc->file, key);
        bool is_file = access(path, F_OK) == 0;
        free(path);
        if (is_file || !s_is_z85_key(key)) {
            /* a zcert public certificate file */
            path = s_path(doc->file, key);
            zcert_t *cert = zcert_load(path);
            free(path);
            if (!cert)
                return cv_yaml_fail(doc, k, err, errlen,
                                    "%s: not a 40-character Z85 public key nor a readable certificate file", what);
            snprintf(out[*n], CV_KEY_Z85_LEN + 1, "%s", zcert_public_txt(cert));
            zcert_destroy(&cert);
        }
        else
            snprintf(out[*n], CV_KEY_Z85_LEN + 1, "%s", key);
        (*n)++;
    }
    if (*n == 0)
        return cv_yaml_fail(doc, list, err, errlen, "%s: at least one key is needed", what);
    return 0;
}

static int s_load_sources(cv_hub_config_t *self, const cv_yaml_doc_t *doc,
                          const cv_yaml_node_t *list, char *err, size_t errlen)
{
    if (cv_yaml_expect(doc, list, CV_YAML_SEQ, "'sources'", err, errlen) < 0)
        return -1;
    if (list->count > CV_MAX_SOURCES)
        return cv_yaml_fail(doc, list, err, errlen, "at most %d sources", CV_MAX_SOURCES);
    self->sources = cv_zcalloc(CV_MAX_SOURCES, sizeof *self->sources);   /* a reload may append */
    static const char *const keys[] = { "name", "mapping", "keys", "identity", "attachments", NULL };
    for (const cv_yaml_node_t *s = list->child; s; s = s->next) {
        if (cv_yaml_expect(doc, s, CV_YAML_MAP, "a source", err, errlen) < 0
            || cv_yaml_check_keys(doc, s, keys, "a source", err, errlen) < 0)
            return -1;
        cv_source_conf_t *src = &self->sources[self->nsources];
        const char *name, *mapping;
        if (cv_yaml_str(doc, s, "name", true, NULL, &name, err, errlen) < 0
            || cv_yaml_str(doc, s, "mapping", true, NULL, &mapping, err, errlen) < 0)
            return -1;
        if (!s_valid_name(name))
            return cv_yaml_fail(doc, cv_yaml_get(s, "name"), err, errlen,
                                "source name '%s' must be 1-63 characters a-z 0-9 _ -", name);
        for (size_t i = 0; i < self->nsources; i++)
            if (strcmp(self->sources[i].name, name) == 0)
                return cv_yaml_fail(doc, cv_yaml_get(s, "name"), err, errlen, "source '%s' is listed twice", name);
        const cv_yaml_node_t *keylist = cv_yaml_get(s, "keys");
        if (!keylist)
            return cv_yaml_fail(doc, s, err, errlen, "source '%s' needs 'keys' (its adapter's CURVE public keys)", name);
        /* how far its identity blocks are to be believed (docs/identity.md,
           "Certainty"): a mailbox's or a web form's sender is only declared */
        const char *level;
        if (cv_yaml_str(doc, s, "identity", false, "", &level, err, errlen) < 0)
            return -1;
        src->certainty = !*level ? 0 : !strcmp(level, "declared") ? 1 : !strcmp(level, "software") ? 2
                       : !strcmp(level, "certified") ? 4 : -1;
        if (src->certainty < 0)
            return cv_yaml_fail(doc, cv_yaml_get(s, "identity"), err, errlen,
                                "'identity' of source '%s': declared, software or certified", name);
        if (cv_yaml_bool(doc, s, "attachments", false, false, &src->files, err, errlen) < 0)
            return -1;
        src->name = cv_zstrdup(name);
        src->mapping_path = s_path(doc->file, mapping);
        self->nsources++;
        char what[96];
        snprintf(what, sizeof what, "keys of source '%s'", name);
        if (s_keys(doc, keylist, what, src->keys, 2, &src->nkeys, err, errlen) < 0)
            return -1;
        for (int k = 0; k < src->nkeys; k++)
            if (cv_hub_config_source_by_key(self, src->keys[k]) != src)
                return cv_yaml_fail(doc, keylist, err, errlen, "a key of source '%s' is already used by another source", name);
        if (access(src->mapping_path, R_OK) != 0)
            return cv_yaml_fail(doc, cv_yaml_get(s, "mapping"), err, errlen,
                                "mapping of source '%s': cannot read %s: %s", name, src->mapping_path, strerror(errno));
        /* the mapping reports its own errors as mapping-file:line */
        src->mapping = cv_mapping_load(src->mapping_path, name, err, errlen);
        if (!src->mapping)
            return -1;
    }
    return 0;
}

static int s_load(cv_hub_config_t *self, const cv_yaml_doc_t *doc, char *err, size_t errlen)
{
    const cv_yaml_node_t *root = doc->root;
    if (cv_yaml_expect(doc, root, CV_YAML_MAP, "the configuration", err, errlen) < 0)
        return -1;
    static const char *const top[] = { "postgres", "listen", "curve", "store", "limits", "protocol",
                                       "runtime_dir", "sources", "commands", "identity", "deadlines",
                                       "routing", NULL };
    static const char *const pg[] = { "conninfo", "migrations", NULL };
    static const char *const listen[] = { "adapters", "publish", "subscriber_keys", "metrics", NULL };
    static const char *const curve[] = { "server_cert", NULL };
    static const char *const store[] = { "batch_max_events", "batch_max_delay_ms", "pending_max_bytes",
                                         "stuck_after_s", NULL };
    static const char *const limits[] = { "max_message_bytes", "max_event_bytes", NULL };
    static const char *const proto[] = { "window", "heartbeat_ms", NULL };
    static const char *const commands[] = { "result_timeout_ms", NULL };
    static const char *const identity[] = { "propose_interval_ms", "cache_pairs", "max_shared", "max_absorb", NULL };
    const cv_yaml_node_t *n_pg = cv_yaml_get(root, "postgres"), *n_listen = cv_yaml_get(root, "listen"),
                         *n_curve = cv_yaml_get(root, "curve"), *n_store = cv_yaml_get(root, "store"),
                         *n_limits = cv_yaml_get(root, "limits"), *n_proto = cv_yaml_get(root, "protocol"),
                         *n_commands = cv_yaml_get(root, "commands"), *n_identity = cv_yaml_get(root, "identity");
    if (cv_yaml_check_keys(doc, root, top, "the configuration", err, errlen) < 0
        || cv_yaml_check_keys(doc, n_pg, pg, "'postgres'", err, errlen) < 0
        || cv_yaml_check_keys(doc, n_listen, listen, "'listen'", err, errlen) < 0
        || cv_yaml_check_keys(doc, n_curve, curve, "'curve'", err, errlen) < 0
        || cv_yaml_check_keys(doc, n_store, store, "'store'", err, errlen) < 0
        || cv_yaml_check_keys(doc, n_limits, limits, "'limits'", err, errlen) < 0
        || cv_yaml_check_keys(doc, n_proto, proto, "'protocol'", err, errlen) < 0
        || cv_yaml_check_keys(doc, n_commands, commands, "'commands'", err, errlen) < 0
        || cv_yaml_check_keys(doc, n_identity, identity, "'identity'", err, errlen) < 0)
        return -1;

    const char *conninfo, *migrations, *adapters, *publish, *metrics, *server_cert, *runtime_dir;
    int64_t bme, bmd, pmb, sas, mmb, meb, win, hb, crt, ipi, icp, ims, ima;
    if (cv_yaml_str(doc, n_pg, "conninfo", false, "", &conninfo, err, errlen) < 0
        || cv_yaml_str(doc, n_pg, "migrations", false, NULL, &migrations, err, errlen) < 0
        || cv_yaml_str(doc, n_listen, "adapters", true, NULL, &adapters, err, errlen) < 0
        || cv_yaml_str(doc, n_listen, "publish", false, NULL, &publish, err, errlen) < 0
        || cv_yaml_str(doc, n_listen, "metrics", false, NULL, &metrics, err, errlen) < 0
        || cv_yaml_str(doc, n_curve, "server_cert", true, NULL, &server_cert, err, errlen) < 0
        || cv_yaml_str(doc, root, "runtime_dir", true, NULL, &runtime_dir, err, errlen) < 0
        || cv_yaml_int(doc, n_store, "batch_max_events", false, 1000, 1, 100000, &bme, err, errlen) < 0
        || cv_yaml_int(doc, n_store, "batch_max_delay_ms", false, 2, 0, 60000, &bmd, err, errlen) < 0
        || cv_yaml_int(doc, n_store, "pending_max_bytes", false, 64LL << 20, 1 << 16, 16LL << 30, &pmb, err, errlen) < 0
        || cv_yaml_int(doc, n_store, "stuck_after_s", false, 60, 1, 86400, &sas, err, errlen) < 0
        || cv_yaml_int(doc, n_limits, "max_message_bytes", false, 1 << 20, 1024, 256 << 20, &mmb, err, errlen) < 0
        || cv_yaml_int(doc, n_limits, "max_event_bytes", false, 256 << 10, 256, 256 << 20, &meb, err, errlen) < 0
        || cv_yaml_int(doc, n_proto, "window", false, 1000, 1, 1000000, &win, err, errlen) < 0
        || cv_yaml_int(doc, n_proto, "heartbeat_ms", false, 2000, 100, 600000, &hb, err, errlen) < 0
        || cv_yaml_int(doc, n_commands, "result_timeout_ms", false, 300000, 1000, 86400000, &crt,
                       err, errlen) < 0
        || cv_yaml_int(doc, n_identity, "propose_interval_ms", false, 60000, 0, 86400000, &ipi,
                       err, errlen) < 0
        || cv_yaml_int(doc, n_identity, "cache_pairs", false, 262144, 0, 1LL << 28, &icp, err, errlen) < 0
        || cv_yaml_int(doc, n_identity, "max_shared", false, 3, 1, 1000, &ims, err, errlen) < 0
        || cv_yaml_int(doc, n_identity, "max_absorb", false, 20, 2, 100000, &ima, err, errlen) < 0)
        return -1;
    if (meb >= mmb)
        return cv_yaml_fail(doc, cv_yaml_get(n_limits, "max_event_bytes"), err, errlen,
                            "max_event_bytes (%lld) must be lower than max_message_bytes (%lld)",
                            (long long) meb, (long long) mmb);
    self->conninfo = cv_zstrdup(conninfo);
    self->migrations_dir = migrations ? s_path(doc->file, migrations) : cv_zstrdup(CV_SCHEMA_DIR);
    self->adapters_endpoint = cv_zstrdup(adapters);
    self->publish_endpoint = publish ? cv_zstrdup(publish) : NULL;
    self->publish_curve = publish && !s_loopback(publish);
    if (metrics && s_metrics_listen(self, doc, cv_yaml_get(n_listen, "metrics"), metrics, err, errlen) < 0)
        return -1;
    self->server_cert = s_path(doc->file, server_cert);
    self->runtime_dir = s_path(doc->file, runtime_dir);
    self->batch_max_events = (int) bme;
    self->batch_max_delay_ms = (int) bmd;
    self->pending_max_bytes = pmb;
    self->stuck_after_s = (int) sas;
    self->max_message_bytes = mmb;
    self->max_event_bytes = meb;
    self->window = (int) win;
    self->heartbeat_ms = (int) hb;
    self->command_result_timeout_ms = crt;
    self->identity_propose_interval_ms = ipi;
    self->identity_cache_pairs = (size_t) icp;
    self->identity_max_shared = (int) ims;
    self->identity_max_absorb = (int) ima;

    const cv_yaml_node_t *subs = cv_yaml_get(n_listen, "subscriber_keys");
    if (subs && s_keys(doc, subs, "'listen.subscriber_keys'", self->subscriber_keys, 8,
                       &self->nsubscriber_keys, err, errlen) < 0)
        return -1;
    if (self->publish_curve && self->nsubscriber_keys == 0)
        return cv_yaml_fail(doc, cv_yaml_get(n_listen, "publish"), err, errlen,
                            "a publish endpoint that is not loopback needs CURVE: list the "
                            "subscribers' public keys in listen.subscriber_keys");

    zcert_t *cert = zcert_load(self->server_cert);
    if (!cert)
        return cv_yaml_fail(doc, cv_yaml_get(n_curve, "server_cert"), err, errlen,
                            "cannot load the hub's certificate '%s' (make one with: civibus-adapter keygen --out PATH)",
                            self->server_cert);
    bool has_secret = strcmp(zcert_secret_txt(cert), "0000000000000000000000000000000000000000") != 0;
    zcert_destroy(&cert);
    if (!has_secret)
        return cv_yaml_fail(doc, cv_yaml_get(n_curve, "server_cert"), err, errlen,
                            "'%s' holds no secret key: give the hub's secret certificate file", self->server_cert);

    const char *deadlines;
    if (cv_yaml_str(doc, root, "deadlines", false, NULL, &deadlines, err, errlen) < 0)
        return -1;
    if (deadlines)              /* deploy/deadlines.yaml: read by main.c (hub/deadlines/) */
        self->deadlines_path = s_path(doc->file, deadlines);
    const char *routing;
    if (cv_yaml_str(doc, root, "routing", false, NULL, &routing, err, errlen) < 0)
        return -1;
    if (routing)                /* deploy/routing.yaml: read by main.c (hub/routing/) */
        self->routing_path = s_path(doc->file, routing);

    const cv_yaml_node_t *sources = cv_yaml_get(root, "sources");
    if (!sources)
        return cv_yaml_fail(doc, root, err, errlen, "missing required key 'sources'");
    return s_load_sources(self, doc, sources, err, errlen);
}

cv_hub_config_t *cv_hub_config_load(const char *path, char *err, size_t errlen)
{
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, errlen);
    if (!doc)
        return NULL;
    cv_hub_config_t *self = cv_zcalloc(1, sizeof *self);
    self->file = cv_zstrdup(path);
    int rc = s_load(self, doc, err, errlen);
    cv_yaml_destroy(&doc);
    if (rc < 0)
        cv_hub_config_destroy(&self);
    return self;
}

void cv_hub_config_destroy(cv_hub_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_hub_config_t *self = *self_p;
    for (size_t i = 0; i < self->nsources; i++) {
        free(self->sources[i].name);
        free(self->sources[i].mapping_path);
        cv_mapping_destroy(&self->sources[i].mapping);
    }
    free(self->sources);
    free(self->file);
    free(self->conninfo);
    free(self->migrations_dir);
    free(self->adapters_endpoint);
    free(self->publish_endpoint);
    free(self->metrics_address);
    free(self->server_cert);
    free(self->runtime_dir);
    free(self->deadlines_path);
    free(self->routing_path);
    free(self);
    *self_p = NULL;
}

static bool s_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int cv_hub_config_restart_diff(const cv_hub_config_t *a, const cv_hub_config_t *b, char *out, size_t len)
{
    bool subscribers = a->nsubscriber_keys == b->nsubscriber_keys;
    for (int k = 0; subscribers && k < a->nsubscriber_keys; k++)
        subscribers = strcmp(a->subscriber_keys[k], b->subscriber_keys[k]) == 0;
    const struct { const char *name; bool same; } items[] = {
        { "postgres.conninfo", s_same(a->conninfo, b->conninfo) },
        { "postgres.migrations", s_same(a->migrations_dir, b->migrations_dir) },
        { "listen.adapters", s_same(a->adapters_endpoint, b->adapters_endpoint) },
        { "listen.publish", s_same(a->publish_endpoint, b->publish_endpoint) },
        { "listen.subscriber_keys", subscribers },
        { "listen.metrics", s_same(a->metrics_address, b->metrics_address) && a->metrics_port == b->metrics_port },
        { "curve.server_cert", s_same(a->server_cert, b->server_cert) },
        { "runtime_dir", s_same(a->runtime_dir, b->runtime_dir) },
        { "store", a->batch_max_events == b->batch_max_events && a->batch_max_delay_ms == b->batch_max_delay_ms
                   && a->pending_max_bytes == b->pending_max_bytes && a->stuck_after_s == b->stuck_after_s },
        { "limits", a->max_message_bytes == b->max_message_bytes && a->max_event_bytes == b->max_event_bytes },
        { "protocol", a->window == b->window && a->heartbeat_ms == b->heartbeat_ms },
        { "commands", a->command_result_timeout_ms == b->command_result_timeout_ms },
        { "identity", a->identity_propose_interval_ms == b->identity_propose_interval_ms
                      && a->identity_cache_pairs == b->identity_cache_pairs
                      && a->identity_max_shared == b->identity_max_shared
                      && a->identity_max_absorb == b->identity_max_absorb },
    };
    int n = 0;
    size_t used = 0;
    if (len)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        if (!items[i].same) {
            if (used < len)
                used += (size_t) snprintf(out + used, len - used, "%s%s", n ? ", " : "", items[i].name);
            n++;
        }
    return n;
}

const cv_source_conf_t *cv_hub_config_source_by_key(const cv_hub_config_t *self, const char *z85)
{
    for (size_t i = 0; i < self->nsources; i++)
        for (int k = 0; k < self->sources[i].nkeys; k++)
            if (strcmp(self->sources[i].keys[k], z85) == 0)
                return &self->sources[i];
    return NULL;
}
