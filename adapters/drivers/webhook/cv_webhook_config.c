/*  driver_webhook_config — see cv_webhook_config.h. Each reader checks
    its keys and values and reports the first problem with its line. */
#include "cv_webhook_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_log.h"

#define MiB (1024LL * 1024LL)

static char *s_resolve(const char *dir, const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char *out = NULL;
    return asprintf(&out, "%s/%s", dir, path) < 0 ? NULL : out;
}

static bool s_all_in(const char *text, const char *allowed)
{
    for (const char *c = text; *c; c++)
        if (!strchr(allowed, *c))
            return false;
    return true;
}

static bool s_printable(const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f)
            return false;
    return true;
}

/* The secret into self (wiped later): at least CV_WEBHOOK_SECRET_MIN bytes;
   a file's trailing line end and spaces are not part of it. */
static int s_keep_secret(cv_webhook_config_t *self, const char *text, size_t len, const cv_yaml_doc_t *doc,
                         const cv_yaml_node_t *at, const char *what, char *err, size_t errlen)
{
    while (len && strchr(" \t\r\n", text[len - 1]))
        len--;
    if (len < CV_WEBHOOK_SECRET_MIN)
        return cv_yaml_fail(doc, at, err, errlen, "the webhook secret in %s is shorter than %d bytes",
                            what, CV_WEBHOOK_SECRET_MIN);
    if (!(self->secret = malloc(len)))
        return cv_yaml_fail(doc, at, err, errlen, "out of memory");
    memcpy(self->secret, text, len);
    self->secret_len = len;
    return 0;
}

static int s_secret_from_file(cv_webhook_config_t *self, const cv_driver_ctx_t *ctx, const char *file,
                              char *err, size_t errlen)
{
    const cv_yaml_node_t *at = cv_yaml_get(cv_yaml_get(ctx->conf, "signature"), "secret_file");
    char *path = s_resolve(ctx->config_dir, file);
    if (!path)
        return cv_yaml_fail(ctx->doc, at, err, errlen, "out of memory");
    char buf[CV_WEBHOOK_SECRET_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, buf, sizeof buf);
    int rc = 0;
    struct stat st;
    if (got < 0)
        rc = cv_yaml_fail(ctx->doc, at, err, errlen, "cannot read the webhook secret file '%s' (%s)",
                          path, strerror(errno));
    else if ((size_t) got > CV_WEBHOOK_SECRET_MAX)
        rc = cv_yaml_fail(ctx->doc, at, err, errlen, "the webhook secret file '%s' is longer than %d bytes",
                          path, CV_WEBHOOK_SECRET_MAX);
    else {
        char what[600];
        snprintf(what, sizeof what, "file '%.500s'", path);
        rc = s_keep_secret(self, buf, (size_t) got, ctx->doc, at, what, err, errlen);
        if (rc == 0 && fstat(fd, &st) == 0 && (st.st_mode & 077))
            cv_warn("webhook", "the webhook secret file '%s' can be read by other users (chmod 600 it)", path);
    }
    sodium_memzero(buf, sizeof buf);
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

static int s_read_signature(cv_webhook_config_t *self, const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    static const char *const keys[] = { "header", "prefix", "secret_env", "secret_file", NULL };
    const cv_yaml_doc_t *doc = ctx->doc;
    const cv_yaml_node_t *sig = cv_yaml_get(ctx->conf, "signature");
    if (!sig)
        return cv_yaml_fail(doc, ctx->conf, err, errlen,
                            "the webhook driver needs a 'signature' section (unsigned webhooks are refused)");
    const char *header, *prefix, *env, *file;
    if (cv_yaml_expect(doc, sig, CV_YAML_MAP, "'signature'", err, errlen) < 0
        || cv_yaml_check_keys(doc, sig, keys, "'signature'", err, errlen) < 0
        || cv_yaml_str(doc, sig, "header", false, "X-Signature", &header, err, errlen) < 0
        || cv_yaml_str(doc, sig, "prefix", false, "sha256=", &prefix, err, errlen) < 0
        || cv_yaml_str(doc, sig, "secret_env", false, NULL, &env, err, errlen) < 0
        || cv_yaml_str(doc, sig, "secret_file", false, NULL, &file, err, errlen) < 0)
        return -1;
    if (!*header || strlen(header) > 64
        || !s_all_in(header, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
        return cv_yaml_fail(doc, cv_yaml_get(sig, "header"), err, errlen,
                            "'header' must be an HTTP header name (letters, digits, '-', '_'; at most 64)");
    if (strlen(prefix) > 32 || !s_printable(prefix))
        return cv_yaml_fail(doc, cv_yaml_get(sig, "prefix"), err, errlen,
                            "'prefix' must be at most 32 printable characters without spaces");
    if ((env != NULL) == (file != NULL)) {
        cv_yaml_node_t at = { .line = sig->key_line };
        return cv_yaml_fail(doc, &at, err, errlen, "'signature' needs exactly one of 'secret_env' or 'secret_file'");
    }
    self->http.sig_header = header;
    self->http.sig_prefix = prefix;
    if (file)
        return s_secret_from_file(self, ctx, file, err, errlen);
    const char *value = getenv(env);
    char what[128];
    snprintf(what, sizeof what, "environment variable '%.64s'", env);
    if (!value || !*value)
        return cv_yaml_fail(doc, cv_yaml_get(sig, "secret_env"), err, errlen,
                            "the environment variable '%s' (the webhook secret) is not set or empty", env);
    return s_keep_secret(self, value, strlen(value), doc, cv_yaml_get(sig, "secret_env"), what, err, errlen);
}

static int s_read_listen(cv_webhook_config_t *self, const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    const cv_yaml_doc_t *doc = ctx->doc;
    const cv_yaml_node_t *conf = ctx->conf;
    const char *address, *port_file, *path, *body;
    int64_t port;
    if (cv_yaml_str(doc, conf, "address", false, "127.0.0.1", &address, err, errlen) < 0
        || cv_yaml_int(doc, conf, "port", true, 0, 0, 65535, &port, err, errlen) < 0
        || cv_yaml_str(doc, conf, "port_file", false, NULL, &port_file, err, errlen) < 0
        || cv_yaml_str(doc, conf, "path", false, "/", &path, err, errlen) < 0
        || cv_yaml_str(doc, conf, "body", false, "object", &body, err, errlen) < 0)
        return -1;
    unsigned char ip[16];
    if (inet_pton(AF_INET, address, ip) != 1 && inet_pton(AF_INET6, address, ip) != 1)
        return cv_yaml_fail(doc, cv_yaml_get(conf, "address"), err, errlen,
                            "'address' must be an IPv4 or IPv6 address (such as 127.0.0.1 or ::1), not '%s'",
                            address);
    if (path[0] != '/' || strlen(path) > 256 || !s_printable(path))
        return cv_yaml_fail(doc, cv_yaml_get(conf, "path"), err, errlen,
                            "'path' must start with '/' and hold at most 256 printable characters without spaces");
    if (strcmp(body, "object") != 0 && strcmp(body, "array") != 0)
        return cv_yaml_fail(doc, cv_yaml_get(conf, "body"), err, errlen,
                            "'body' must be 'object' (one record per POST) or 'array' (a JSON array of records), not '%s'",
                            body);
    if (port == 0 && !port_file)
        return cv_yaml_fail(doc, cv_yaml_get(conf, "port"), err, errlen,
                            "'port: 0' takes any free port: name a 'port_file' to write it to");
    if (port_file && !(self->port_file = s_resolve(ctx->config_dir, port_file)))
        return cv_yaml_fail(doc, conf, err, errlen, "out of memory");
    self->http.address = address;
    self->http.port = (uint16_t) port;
    self->http.path = path;
    self->http.array = strcmp(body, "array") == 0;
    return 0;
}

static int s_read_limits(cv_webhook_config_t *self, const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    const cv_yaml_doc_t *doc = ctx->doc;
    const cv_yaml_node_t *conf = ctx->conf;
    int64_t dflt_body = self->http.array ? 4 * MiB : (int64_t) cv_client_max_event_bytes(ctx->client);
    int64_t body_bytes, connections, timeout, retry_after;
    if (cv_yaml_int(doc, conf, "max_body_bytes", false, dflt_body, 1, 64 * MiB, &body_bytes, err, errlen) < 0
        || cv_yaml_int(doc, conf, "max_connections", false, 64, 1, 1024, &connections, err, errlen) < 0
        || cv_yaml_int(doc, conf, "timeout_s", false, 30, 1, 3600, &timeout, err, errlen) < 0
        || cv_yaml_int(doc, conf, "retry_after_s", false, 5, 1, 3600, &retry_after, err, errlen) < 0)
        return -1;
    self->http.max_body_bytes = (size_t) body_bytes;
    self->http.max_connections = (unsigned) connections;
    self->http.timeout_s = (unsigned) timeout;
    self->http.retry_after_s = (unsigned) retry_after;
    return 0;
}

int cv_webhook_config_read(const cv_driver_ctx_t *ctx, cv_webhook_config_t *out, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "kind", "source", "address", "port", "port_file", "path", "body", "max_body_bytes",
        "max_connections", "timeout_s", "retry_after_s", "signature", NULL
    };
    memset(out, 0, sizeof *out);
    if (cv_yaml_check_keys(ctx->doc, ctx->conf, keys, "'driver' (webhook)", err, errlen) < 0
        || s_read_listen(out, ctx, err, errlen) < 0
        || s_read_limits(out, ctx, err, errlen) < 0
        || s_read_signature(out, ctx, err, errlen) < 0) {
        cv_webhook_config_clear(out);
        return -1;
    }
    out->http.secret = out->secret;
    out->http.secret_len = out->secret_len;
    return 0;
}

void cv_webhook_config_clear(cv_webhook_config_t *self)
{
    if (self->secret)
        sodium_memzero(self->secret, self->secret_len);
    free(self->secret);
    free(self->port_file);
    memset(self, 0, sizeof *self);
}
