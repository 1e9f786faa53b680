/*  api_config — see api_config.h. Every key is optional except
    postgres.conninfo; unknown keys are refused at every level. */
#include "api_config.h"
#include "api_tls.h"

#include "cv_alloc.h"
#include "cv_yaml.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool cv_api_config_net_parse(const char *text, cv_api_net_t *out)
{
    char buf[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t) (slash - text) : strlen(text);
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, text, n);
    buf[n] = 0;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1)
        out->family = AF_INET, out->prefix = 32;
    else if (inet_pton(AF_INET6, buf, out->addr) == 1)
        out->family = AF_INET6, out->prefix = 128;
    else
        return false;
    if (slash) {
        int max = out->prefix, bits = 0;
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return false;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return false;
            bits = bits * 10 + (*p - '0');
        }
        if (bits > max)
            return false;
        out->prefix = bits;
    }
    return true;
}

static bool s_net_match(const cv_api_net_t *net, int family, const unsigned char *a)
{
    if (net->family != family)
        return false;
    int full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, a, (size_t) full) != 0)
        return false;
    unsigned char mask = (unsigned char) (0xFF << (8 - rest));
    return rest == 0 || (net->addr[full] & mask) == (a[full] & mask);
}

static bool s_in(const cv_api_net_t *nets, size_t n, int family, const void *addr)
{
    for (size_t i = 0; i < n; i++)
        if (s_net_match(&nets[i], family, addr))
            return true;
    return false;
}

bool cv_api_config_trusted(const cv_api_config_t *self, int family, const void *addr)
{
    return s_in(self->trusted_proxies, self->ntrusted, family, addr);
}

bool cv_api_config_listed(char *const *list, size_t n, const char *category)
{
    for (size_t i = 0; category && i < n; i++)
        if (strcmp(list[i], category) == 0)
            return true;
    return false;
}

/* A sequence of texts (absent: none), copied into *out. */
static int s_strings(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key,
                     char ***out, size_t *n, char *err, size_t errlen)
{
    const cv_yaml_node_t *seq = cv_yaml_get(map, key);
    *out = NULL;
    *n = 0;
    if (!seq)
        return 0;
    if (cv_yaml_expect(doc, seq, CV_YAML_SEQ, key, err, errlen) < 0)
        return -1;
    *out = cv_zcalloc(seq->count ? seq->count : 1, sizeof **out);
    for (const cv_yaml_node_t *c = seq->child; c; c = c->next) {
        if (c->type != CV_YAML_SCALAR || !c->value || !*c->value || strlen(c->value) > 200)
            return cv_yaml_fail(doc, c, err, errlen, "'%s': each entry is a text of 1 to 200 characters", key);
        (*out)[(*n)++] = cv_zstrdup(c->value);
    }
    return 0;
}

/* A path of the config, relative to the config file's folder. */
char *cv_api_config_relative(const char *file, const char *p)
{
    const char *slash = strrchr(file, '/');
    char *out = NULL;
    if (p[0] == '/' || !slash)
        return cv_zstrdup(p);
    return asprintf(&out, "%.*s/%s", (int) (slash - file), file, p) < 0 ? NULL : out;
}

/* attachments: the folder (relative to this file; default var/attachments
   beside it) and the caps. An existing folder must be a folder only its
   owner may enter (0700: the files are personal data), or its owner and
   its group (2770: the package shares it with the mailbox adapter), never
   others; a missing one is
   made at the first attachment. The body cap of a registration with
   attachments follows from the caps: base64 of max_total_bytes, room for
   the names, and http.max_body_bytes for the rest. */
static int s_attachments(cv_api_config_t *self, const cv_yaml_doc_t *doc, const cv_yaml_node_t *n,
                         const char *const *keys, char *err, size_t errlen)
{
    const char *s;
    int64_t v;
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'attachments'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, keys, "'attachments'", err, errlen) < 0))
        return -1;
    if (cv_yaml_str(doc, n, "dir", false, "var/attachments", &s, err, errlen) < 0)
        return -1;
    if (!*s)
        return cv_yaml_fail(doc, cv_yaml_get(n, "dir"), err, errlen, "'dir': a folder is required");
    self->attach_dir = cv_api_config_relative(doc->file, s);
    struct stat st;
    if (self->attach_dir && stat(self->attach_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return cv_yaml_fail(doc, n ? cv_yaml_get(n, "dir") : NULL, err, errlen,
                                "'dir': %s is not a folder", self->attach_dir);
        if (st.st_mode & 007)
            return cv_yaml_fail(doc, n ? cv_yaml_get(n, "dir") : NULL, err, errlen,
                                "'dir': %s is open to others (mode %03o): chmod o-rwx it (700, or 2770 to "
                                "share it with the adapters' group), attachments are personal data",
                                self->attach_dir, (unsigned) (st.st_mode & 0777));
    }
    if (cv_yaml_int(doc, n, "max_bytes", false, 10 * 1024 * 1024, 1024, CV_API_ATTACH_MAX_BYTES_CEIL,
                    &self->attach_max_bytes, err, errlen) < 0
        || cv_yaml_int(doc, n, "max_files", false, 5, 0, CV_API_ATTACH_FILES_CEIL, &v, err, errlen) < 0)
        return -1;
    self->attach_max_files = (int) v;
    if (cv_yaml_int(doc, n, "max_total_bytes", false, 20 * 1024 * 1024, 1024, CV_API_ATTACH_TOTAL_CEIL,
                    &self->attach_max_total, err, errlen) < 0)
        return -1;
    if (self->attach_max_total < self->attach_max_bytes && self->attach_max_files > 0)
        return cv_yaml_fail(doc, cv_yaml_get(n, "max_total_bytes"), err, errlen,
                            "'max_total_bytes' is less than max_bytes: one file could not be taken");
    self->attach_body_bytes = self->attach_max_files == 0 ? self->max_body_bytes
        : self->max_body_bytes + 4 * ((self->attach_max_total + 2) / 3) + 2048LL * self->attach_max_files;
    return 0;
}

/* A sequence of addresses or networks (absent: none). */
static int s_nets(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key, cv_api_net_t **out,
                  size_t *n, char *err, size_t errlen)
{
    const cv_yaml_node_t *tp = cv_yaml_get(map, key);
    if (!tp)
        return 0;
    if (cv_yaml_expect(doc, tp, CV_YAML_SEQ, key, err, errlen) < 0)
        return -1;
    *out = cv_zcalloc(tp->count ? tp->count : 1, sizeof **out);
    for (const cv_yaml_node_t *c = tp->child; c; c = c->next) {
        if (c->type != CV_YAML_SCALAR || !c->value || !cv_api_config_net_parse(c->value, &(*out)[*n]))
            return cv_yaml_fail(doc, c, err, errlen, "'%s': an IPv4 or IPv6 address,"
                                " or a network such as 10.0.0.0/8", key);
        (*n)++;
    }
    return 0;
}

bool cv_api_config_metrics_allowed(const cv_api_config_t *self, const char *client)
{
    unsigned char a[16];
    if (!client || !*client)
        return false;
    if (inet_pton(AF_INET, client, a) == 1)
        return a[0] == 127 || s_in(self->metrics_from, self->nmetrics_from, AF_INET, a);
    if (inet_pton(AF_INET6, client, a) == 1)
        return memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0
            || s_in(self->metrics_from, self->nmetrics_from, AF_INET6, a);
    return false;
}

static int s_load(cv_api_config_t *self, const cv_yaml_doc_t *doc, char *err, size_t errlen)
{
    const cv_yaml_node_t *root = doc->root;
    if (cv_yaml_expect(doc, root, CV_YAML_MAP, "the configuration", err, errlen) < 0)
        return -1;
    static const char *const top[] = { "postgres", "listen", "http", "tracking", "audit", "links",
                                       "open311", "web", "dashboard", "attachments", "tls", NULL };
    static const char *const dashboard[] = { "costs_file", NULL };
    static const char *const web[] = { "dir", "session_idle_min", "session_max_hours", "cookie_secure", NULL };
    static const char *const attach[] = { "dir", "max_bytes", "max_files", "max_total_bytes", NULL };
    static const char *const links[] = { "secret_file", "max_days", NULL };
    static const char *const pg[] = { "conninfo", "read_dsn", "max_replica_lag_s", "health_timeout_ms", NULL };
    static const char *const listen[] = { "address", "port", "insecure_http", NULL };
    static const char *const http[] = { "threads", "max_body_bytes", "page_max", "max_url_bytes",
                                        "max_header_bytes", "max_params", "header_timeout_s",
                                        "idle_timeout_s", "connections", "per_address_connections",
                                        "trusted_proxies", "metrics_from", NULL };
    static const char *const tracking[] = { "per_minute", "owner_per_minute", NULL };
    static const char *const open311[] = { "public_categories", "public_details", NULL };
    static const char *const audit[] = { "flush_ms", NULL };
    if (cv_yaml_check_keys(doc, root, top, "the configuration", err, errlen) < 0)
        return -1;

    const cv_yaml_node_t *n;
    const char *s;
    int64_t v;
    n = cv_yaml_get(root, "postgres");
    if (!n)
        return cv_yaml_fail(doc, root, err, errlen, "'postgres' is required (postgres.conninfo)");
    if (cv_yaml_expect(doc, n, CV_YAML_MAP, "'postgres'", err, errlen) < 0
        || cv_yaml_check_keys(doc, n, pg, "'postgres'", err, errlen) < 0
        || cv_yaml_str(doc, n, "conninfo", true, NULL, &s, err, errlen) < 0)
        return -1;
    self->conninfo = cv_zstrdup(s);
    if (cv_yaml_str(doc, n, "read_dsn", false, NULL, &s, err, errlen) < 0)
        return -1;
    if (s && !*s)
        return cv_yaml_fail(doc, cv_yaml_get(n, "read_dsn"), err, errlen,
                            "'read_dsn': a libpq connection string of the replica (or no key: no replica)");
    self->read_dsn = s ? cv_zstrdup(s) : NULL;
    if (cv_yaml_int(doc, n, "max_replica_lag_s", false, 30, 1, 600, &v, err, errlen) < 0)
        return -1;
    self->max_replica_lag_s = (int) v;
    if (cv_yaml_int(doc, n, "health_timeout_ms", false, 1000, 100, 10000, &v, err, errlen) < 0)
        return -1;
    self->health_timeout_ms = (int) v;

    n = cv_yaml_get(root, "listen");
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'listen'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, listen, "'listen'", err, errlen) < 0))
        return -1;
    if (cv_yaml_str(doc, n, "address", false, "127.0.0.1", &s, err, errlen) < 0)
        return -1;
    self->address = cv_zstrdup(s);
    if (cv_yaml_int(doc, n, "port", false, 8480, 0, 65535, &v, err, errlen) < 0)
        return -1;
    self->port = (int) v;
    if (cv_yaml_bool(doc, n, "insecure_http", false, false, &self->insecure_http, err, errlen) < 0
        || cv_api_tls_load(self, doc, cv_yaml_get(root, "tls"), err, errlen) < 0)
        return -1;
    if (!self->tls_cert && !self->insecure_http && !cv_api_tls_loopback(self->address))
        return cv_yaml_fail(doc, cv_yaml_get(n, "address"), err, errlen,
                            "'address': plain HTTP only on loopback; give tls: or set"
                            " listen.insecure_http: true behind a TLS proxy");

    n = cv_yaml_get(root, "http");
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'http'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, http, "'http'", err, errlen) < 0))
        return -1;
    if (cv_yaml_int(doc, n, "threads", false, 4, 1, 64, &v, err, errlen) < 0)
        return -1;
    self->threads = (int) v;
    if (cv_yaml_int(doc, n, "max_body_bytes", false, 65536, 1024, 16 * 1024 * 1024,
                    &self->max_body_bytes, err, errlen) < 0)
        return -1;
    if (cv_yaml_int(doc, n, "page_max", false, 200, 1, 10000, &v, err, errlen) < 0)
        return -1;
    self->page_max = (int) v;
    if (cv_yaml_int(doc, n, "max_url_bytes", false, 4096, 256, 65536, &v, err, errlen) < 0)
        return -1;
    self->max_url_bytes = (int) v;
    if (cv_yaml_int(doc, n, "max_header_bytes", false, 8192, 1024, 65536, &v, err, errlen) < 0)
        return -1;
    self->max_header_bytes = (int) v;
    if (cv_yaml_int(doc, n, "max_params", false, 32, 1, 1000, &v, err, errlen) < 0)
        return -1;
    self->max_params = (int) v;
    if (cv_yaml_int(doc, n, "header_timeout_s", false, 10, 0, 3600, &v, err, errlen) < 0)
        return -1;
    self->header_timeout_s = (int) v;
    if (cv_yaml_int(doc, n, "idle_timeout_s", false, 30, 1, 3600, &v, err, errlen) < 0)
        return -1;
    self->idle_timeout_s = (int) v;
    if (cv_yaml_int(doc, n, "connections", false, 1000, 1, 100000, &v, err, errlen) < 0)
        return -1;
    self->max_connections = (int) v;
    if (cv_yaml_int(doc, n, "per_address_connections", false, 16, 1, 100000, &v, err, errlen) < 0)
        return -1;
    self->per_address_connections = (int) v;
    if (s_nets(doc, n, "trusted_proxies", &self->trusted_proxies, &self->ntrusted, err, errlen) < 0
        || s_nets(doc, n, "metrics_from", &self->metrics_from, &self->nmetrics_from, err, errlen) < 0)
        return -1;

    n = cv_yaml_get(root, "tracking");
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'tracking'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, tracking, "'tracking'", err, errlen) < 0))
        return -1;
    if (cv_yaml_int(doc, n, "per_minute", false, 10, 1, 100000, &v, err, errlen) < 0)
        return -1;
    self->track_per_minute = (int) v;
    if (cv_yaml_int(doc, n, "owner_per_minute", false, 30, 1, 100000, &v, err, errlen) < 0)
        return -1;
    self->owner_per_minute = (int) v;

    n = cv_yaml_get(root, "open311");
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'open311'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, open311, "'open311'", err, errlen) < 0
              || s_strings(doc, n, "public_categories", &self->o311_public, &self->no311_public, err, errlen) < 0
              || s_strings(doc, n, "public_details", &self->o311_details, &self->no311_details, err, errlen) < 0))
        return -1;
    for (size_t i = 0; i < self->no311_details; i++)
        if (!cv_api_config_listed(self->o311_public, self->no311_public, self->o311_details[i]))
            return cv_yaml_fail(doc, cv_yaml_get(n, "public_details"), err, errlen,
                                "'public_details': '%s' is not in public_categories", self->o311_details[i]);

    n = cv_yaml_get(root, "audit");
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'audit'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, audit, "'audit'", err, errlen) < 0))
        return -1;
    if (cv_yaml_int(doc, n, "flush_ms", false, 200, 10, 60000, &v, err, errlen) < 0)
        return -1;
    self->audit_flush_ms = (int) v;

    n = cv_yaml_get(root, "links");
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'links'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, links, "'links'", err, errlen) < 0))
        return -1;
    if (cv_yaml_str(doc, n, "secret_file", false, NULL, &s, err, errlen) < 0)
        return -1;
    if (s)
        self->link_key_file = cv_api_config_relative(doc->file, s);
    if (cv_yaml_int(doc, n, "max_days", false, 90, 1, 3650, &v, err, errlen) < 0)
        return -1;
    self->link_max_days = (int) v;

    n = cv_yaml_get(root, "web");
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'web'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, web, "'web'", err, errlen) < 0
              || cv_yaml_str(doc, n, "dir", false, NULL, &s, err, errlen) < 0))
        return -1;
    if (n && s)
        self->web_dir = cv_api_config_relative(doc->file, s);
    if (cv_yaml_int(doc, n, "session_idle_min", false, 30, 1, 1440, &v, err, errlen) < 0)
        return -1;
    self->session_idle_min = (int) v;
    if (cv_yaml_int(doc, n, "session_max_hours", false, 10, 1, 168, &v, err, errlen) < 0)
        return -1;
    self->session_max_hours = (int) v;
    if (cv_yaml_str(doc, n, "cookie_secure", false, "auto", &s, err, errlen) < 0)
        return -1;
    if (strcmp(s, "auto") != 0 && strcmp(s, "always") != 0 && strcmp(s, "never") != 0)
        return cv_yaml_fail(doc, cv_yaml_get(n, "cookie_secure"), err, errlen,
                            "'cookie_secure': auto, always or never");
    /* served over TLS by civibus-api itself: every request came by https */
    self->cookie_secure = cv_zstrdup(self->tls_cert && strcmp(s, "auto") == 0 ? "always" : s);

    n = cv_yaml_get(root, "dashboard");
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'dashboard'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, dashboard, "'dashboard'", err, errlen) < 0
              || cv_yaml_str(doc, n, "costs_file", false, NULL, &s, err, errlen) < 0))
        return -1;
    if (n && s)
        self->costs_file = cv_api_config_relative(doc->file, s);
    return s_attachments(self, doc, cv_yaml_get(root, "attachments"), attach, err, errlen);
}

cv_api_config_t *cv_api_config_load(const char *path, char *err, size_t errlen)
{
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, errlen);
    if (!doc)
        return NULL;
    cv_api_config_t *self = cv_zcalloc(1, sizeof *self);
    if (!self) {
        cv_yaml_destroy(&doc);
        return NULL;
    }
    self->file = cv_zstrdup(path);
    int rc = doc->root ? s_load(self, doc, err, errlen)
                       : cv_yaml_fail(doc, NULL, err, errlen, "empty configuration");
    cv_yaml_destroy(&doc);
    if (rc < 0)
        cv_api_config_destroy(&self);
    return self;
}

void cv_api_config_destroy(cv_api_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_api_config_t *self = *self_p;
    free(self->file);
    free(self->conninfo);
    free(self->read_dsn);
    free(self->tls_cert_file);
    free(self->tls_key_file);
    free(self->tls_cert);
    if (self->tls_key) {            /* the private key: not left in freed memory */
        explicit_bzero(self->tls_key, strlen(self->tls_key));
        free(self->tls_key);
    }
    free(self->address);
    free(self->link_key_file);
    free(self->web_dir);
    free(self->cookie_secure);
    free(self->costs_file);
    free(self->attach_dir);
    free(self->trusted_proxies);
    free(self->metrics_from);
    for (size_t i = 0; i < self->no311_public; i++)
        free(self->o311_public[i]);
    free(self->o311_public);
    for (size_t i = 0; i < self->no311_details; i++)
        free(self->o311_details[i]);
    free(self->o311_details);
    free(self);
    *self_p = NULL;
}
