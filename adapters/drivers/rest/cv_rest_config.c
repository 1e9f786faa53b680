/*  driver_rest_config — the `driver:` section of a REST adapter.

    Every key is optional except `url` and `pagination.mode`; defaults and
    meanings are in docs/drivers/rest.md. Values that may hold secrets
    (url, query values, header values, basic_auth) are expanded here, once:
    ${NAME} is the environment variable NAME (an error when unset) and
    ${file:PATH} the content of a file (relative to the config's folder,
    trailing line breaks removed). Error messages name the key and the line,
    never an expanded value. */
#include "cv_rest.h"

#include "cv_alloc.h"
#include "cv_buf.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_FILE_MAX 4096

typedef struct {
    const cv_yaml_doc_t *doc;
    const char *dir;
    char *err;
    size_t errlen;
} reader_t;

static void s_wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* ------------------------------------------------------------ expansion */

/* Appends the content of a secret file, without its trailing line breaks. */
static int s_add_file(reader_t *r, const cv_yaml_node_t *node, const char *name, cv_buf_t *out)
{
    char path[4096];
    if (name[0] == '/')
        snprintf(path, sizeof path, "%s", name);
    else
        snprintf(path, sizeof path, "%s/%s", r->dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cv_yaml_fail(r->doc, node, r->err, r->errlen, "cannot read secret file '%s': %s",
                            path, strerror(errno));
    char data[SECRET_FILE_MAX + 1];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    if (n > SECRET_FILE_MAX) {
        explicit_bzero(data, sizeof data);
        return cv_yaml_fail(r->doc, node, r->err, r->errlen, "secret file '%s' is larger than %d bytes",
                            path, SECRET_FILE_MAX);
    }
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
        n--;
    int rc = cv_buf_add(out, data, n);
    explicit_bzero(data, sizeof data);
    return rc;
}

/* The scalar's text with ${NAME} and ${file:PATH} replaced, malloc'ed. */
static char *s_expand(reader_t *r, const cv_yaml_node_t *node)
{
    const char *text = node->value;
    cv_buf_t out = { .secret = true };
    if (cv_buf_add(&out, "", 0) < 0)
        return NULL;
    while (*text) {
        const char *start = strstr(text, "${");
        if (!start) {
            if (cv_buf_add(&out, text, strlen(text)) < 0)
                goto fail;
            break;
        }
        if (cv_buf_add(&out, text, (size_t) (start - text)) < 0)
            goto fail;
        const char *end = strchr(start, '}');
        if (!end) {
            cv_yaml_fail(r->doc, node, r->err, r->errlen, "'${' without a closing '}' in '%s'", node->key);
            goto fail;
        }
        char name[1024];
        size_t n = (size_t) (end - start - 2);
        if (n == 0 || n >= sizeof name) {
            cv_yaml_fail(r->doc, node, r->err, r->errlen, "empty or too long '${...}' in '%s'", node->key);
            goto fail;
        }
        memcpy(name, start + 2, n);
        name[n] = '\0';
        if (strncmp(name, "file:", 5) == 0) {
            if (s_add_file(r, node, name + 5, &out) < 0)
                goto fail;
        } else {
            size_t ok = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
            if (ok != n || (name[0] >= '0' && name[0] <= '9')) {
                cv_yaml_fail(r->doc, node, r->err, r->errlen,
                             "'${%s}' in '%s' is neither an environment variable name nor file:PATH",
                             name, node->key);
                goto fail;
            }
            const char *value = getenv(name);
            if (!value) {
                cv_yaml_fail(r->doc, node, r->err, r->errlen, "environment variable %s (used by '%s') is not set",
                             name, node->key);
                goto fail;
            }
            if (cv_buf_add(&out, value, strlen(value)) < 0)
                goto fail;
        }
        text = end + 1;
    }
    return cv_buf_take(&out);
fail:
    cv_buf_free(&out);
    return NULL;
}

/* ---------------------------------------------------------------- keys */

static int s_str(reader_t *r, const cv_yaml_node_t *map, const char *key, const char *dflt, char **out)
{
    const char *value;
    if (cv_yaml_str(r->doc, map, key, false, dflt, &value, r->err, r->errlen) < 0)
        return -1;
    *out = value ? cv_zstrdup(value) : NULL;
    return 0;
}

static int s_int(reader_t *r, const cv_yaml_node_t *map, const char *key, int64_t dflt,
                 int64_t min, int64_t max, int64_t *out)
{
    return cv_yaml_int(r->doc, map, key, false, dflt, min, max, out, r->err, r->errlen);
}

/* A dotted path: non-empty segments ("" alone is allowed when root_ok). */
static int s_path(reader_t *r, const cv_yaml_node_t *map, const char *key, const char *dflt,
                  bool root_ok, char **out)
{
    if (s_str(r, map, key, dflt, out) < 0)
        return -1;
    const char *p = *out;
    if (!p || (root_ok && !*p))
        return 0;
    bool bad = !*p || *p == '.' || p[strlen(p) - 1] == '.' || strstr(p, "..");
    if (bad)
        return cv_yaml_fail(r->doc, cv_yaml_get(map, key), r->err, r->errlen,
                            "'%s' must be a dotted path such as 'data.items'%s", key,
                            root_ok ? " (or \"\" for the body itself)" : "");
    return 0;
}

/* A map of scalar values, expanded: query parameters or headers. */
static int s_pairs(reader_t *r, const cv_yaml_node_t *map, const char *key, bool header,
                   cv_rest_pair_t **out, size_t *count)
{
    const cv_yaml_node_t *node = cv_yaml_get(map, key);
    if (!node)
        return 0;
    if (cv_yaml_expect(r->doc, node, CV_YAML_MAP, key, r->err, r->errlen) < 0)
        return -1;
    *out = cv_zcalloc(node->count ? node->count : 1, sizeof **out);
    if (!*out)
        return cv_yaml_fail(r->doc, node, r->err, r->errlen, "out of memory");
    for (const cv_yaml_node_t *c = node->child; c; c = c->next) {
        if (c->type != CV_YAML_SCALAR)
            return cv_yaml_fail(r->doc, c, r->err, r->errlen, "'%s.%s' must be a text value", key, c->key);
        if (header && (strspn(c->key, "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
                       != strlen(c->key) || !*c->key))
            return cv_yaml_fail(r->doc, c, r->err, r->errlen, "'%s' is not a valid header name", c->key);
        cv_rest_pair_t *pair = &(*out)[(*count)++];
        pair->name = cv_zstrdup(c->key);
        pair->value = s_expand(r, c);
        if (!pair->value)
            return -1;
        if (header && strpbrk(pair->value, "\r\n"))
            return cv_yaml_fail(r->doc, c, r->err, r->errlen, "the value of header '%s' holds a line break",
                                c->key);
    }
    return 0;
}

/* url: http(s), no user:password inside, a log form without the query. */
static int s_url(reader_t *r, const cv_yaml_node_t *conf, cv_rest_config_t *self)
{
    const cv_yaml_node_t *node = cv_yaml_get(conf, "url");
    if (!node)
        return cv_yaml_fail(r->doc, conf, r->err, r->errlen,
                            "the rest driver needs 'url' (the API's list endpoint, http:// or https://)");
    if (cv_yaml_expect(r->doc, node, CV_YAML_SCALAR, "'url'", r->err, r->errlen) < 0)
        return -1;
    self->url = s_expand(r, node);
    if (!self->url)
        return -1;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *user = NULL;
    int rc = -1;
    if (!u || curl_url_set(u, CURLUPART_URL, self->url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        cv_yaml_fail(r->doc, node, r->err, r->errlen, "'url' is not a valid URL");
        goto done;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        cv_yaml_fail(r->doc, node, r->err, r->errlen, "'url' must start with http:// or https://");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        cv_yaml_fail(r->doc, node, r->err, r->errlen,
                     "'url' must not hold a user name or password: use 'basic_auth'");
        goto done;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    size_t len = strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) + (path ? strlen(path) : 0) + 8;
    self->url_for_logs = malloc(len);
    if (!self->url_for_logs)
        goto done;
    snprintf(self->url_for_logs, len, "%s://%s%s%s%s", scheme, host, port ? ":" : "", port ? port : "",
             path ? path : "/");
    rc = 0;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

static int s_basic_auth(reader_t *r, const cv_yaml_node_t *conf, cv_rest_config_t *self)
{
    const cv_yaml_node_t *node = cv_yaml_get(conf, "basic_auth");
    if (!node)
        return 0;
    static const char *const keys[] = { "username", "password", NULL };
    if (cv_yaml_expect(r->doc, node, CV_YAML_MAP, "'basic_auth'", r->err, r->errlen) < 0
        || cv_yaml_check_keys(r->doc, node, keys, "'basic_auth'", r->err, r->errlen) < 0)
        return -1;
    const cv_yaml_node_t *user = cv_yaml_get(node, "username");
    const cv_yaml_node_t *pass = cv_yaml_get(node, "password");
    if (!user || !pass || user->type != CV_YAML_SCALAR || pass->type != CV_YAML_SCALAR)
        return cv_yaml_fail(r->doc, node, r->err, r->errlen,
                            "'basic_auth' needs 'username' and 'password' (text; ${ENV} or ${file:PATH})");
    self->username = s_expand(r, user);
    if (!self->username)
        return -1;
    self->password = s_expand(r, pass);
    return self->password ? 0 : -1;
}

/* Refuses a key of the other pagination mode. */
static int s_not_for(reader_t *r, const cv_yaml_node_t *pag, const char *const *keys, const char *mode)
{
    for (size_t i = 0; keys[i]; i++) {
        const cv_yaml_node_t *n = cv_yaml_get(pag, keys[i]);
        if (n)
            return cv_yaml_fail(r->doc, n, r->err, r->errlen, "'%s' is for 'mode: %s' only", keys[i], mode);
    }
    return 0;
}

static int s_pagination(reader_t *r, const cv_yaml_node_t *conf, cv_rest_config_t *self)
{
    const cv_yaml_node_t *pag = cv_yaml_get(conf, "pagination");
    if (!pag)
        return cv_yaml_fail(r->doc, conf, r->err, r->errlen,
                            "the rest driver needs 'pagination' with 'mode: token' or 'mode: since'");
    static const char *const keys[] = { "mode", "token_param", "next_token_path", "since_param", "cursor_field",
                                        "overlap", "start", "page_size_param", "page_size", NULL };
    static const char *const token_keys[] = { "token_param", "next_token_path", NULL };
    static const char *const since_keys[] = { "since_param", "cursor_field", "overlap", "start", NULL };
    if (cv_yaml_expect(r->doc, pag, CV_YAML_MAP, "'pagination'", r->err, r->errlen) < 0
        || cv_yaml_check_keys(r->doc, pag, keys, "'pagination'", r->err, r->errlen) < 0)
        return -1;
    const char *mode;
    if (cv_yaml_str(r->doc, pag, "mode", true, NULL, &mode, r->err, r->errlen) < 0)
        return -1;
    if (strcmp(mode, "token") == 0) {
        self->mode = CV_REST_TOKEN;
        if (s_not_for(r, pag, since_keys, "since") < 0
            || s_str(r, pag, "token_param", "page_token", &self->token_param) < 0
            || s_path(r, pag, "next_token_path", "next_page_token", false, &self->next_token_path) < 0)
            return -1;
    } else if (strcmp(mode, "since") == 0) {
        self->mode = CV_REST_SINCE;
        if (s_not_for(r, pag, token_keys, "token") < 0
            || s_str(r, pag, "since_param", "updated_since", &self->since_param) < 0
            || s_path(r, pag, "cursor_field", "updated_at", false, &self->cursor_field) < 0
            || s_int(r, pag, "overlap", 0, 0, 86400 * 31, &self->overlap) < 0
            || s_str(r, pag, "start", NULL, &self->since_start) < 0)
            return -1;
    } else {
        return cv_yaml_fail(r->doc, cv_yaml_get(pag, "mode"), r->err, r->errlen,
                            "pagination mode '%s' is not 'token' or 'since'", mode);
    }
    if (s_str(r, pag, "page_size_param", NULL, &self->page_size_param) < 0
        || s_int(r, pag, "page_size", 100, 1, 100000, &self->page_size) < 0)
        return -1;
    if (!self->page_size_param && cv_yaml_get(pag, "page_size"))
        return cv_yaml_fail(r->doc, cv_yaml_get(pag, "page_size"), r->err, r->errlen,
                            "'page_size' needs 'page_size_param' (the query parameter that carries it)");
    return 0;
}

static int s_retry(reader_t *r, const cv_yaml_node_t *conf, cv_rest_config_t *self)
{
    const cv_yaml_node_t *retry = cv_yaml_get(conf, "retry");
    static const char *const keys[] = { "initial_ms", "max_ms", NULL };
    if (retry && (cv_yaml_expect(r->doc, retry, CV_YAML_MAP, "'retry'", r->err, r->errlen) < 0
                  || cv_yaml_check_keys(r->doc, retry, keys, "'retry'", r->err, r->errlen) < 0))
        return -1;
    if (s_int(r, retry, "initial_ms", 500, 10, 600000, &self->retry_initial_ms) < 0
        || s_int(r, retry, "max_ms", 60000, 10, 3600000, &self->retry_max_ms) < 0)
        return -1;
    if (self->retry_max_ms < self->retry_initial_ms)
        return cv_yaml_fail(r->doc, cv_yaml_get(retry, "max_ms"), r->err, r->errlen,
                            "'retry.max_ms' must be at least 'retry.initial_ms'");
    return 0;
}

static int s_rate(reader_t *r, const cv_yaml_node_t *conf, cv_rest_config_t *self)
{
    const char *text;
    if (cv_yaml_str(r->doc, conf, "rate_limit", false, "10", &text, r->err, r->errlen) < 0)
        return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= 0) || v > 1000)
        return cv_yaml_fail(r->doc, cv_yaml_get(conf, "rate_limit"), r->err, r->errlen,
                            "'rate_limit' must be a number of requests per second from 0 (no limit) to 1000");
    self->rate_limit = v;
    return 0;
}

static int s_read(reader_t *r, const cv_yaml_node_t *conf, cv_rest_config_t *self)
{
    static const char *const keys[] = { "kind", "source", "url", "query", "headers", "basic_auth", "ca_file",
                                        "records_path", "pagination", "connect_timeout_ms", "timeout_ms",
                                        "retry", "rate_limit", "poll_interval_ms", "max_response_bytes", NULL };
    if (cv_yaml_check_keys(r->doc, conf, keys, "'driver' (kind: rest)", r->err, r->errlen) < 0
        || s_url(r, conf, self) < 0
        || s_pairs(r, conf, "query", false, &self->query, &self->query_count) < 0
        || s_pairs(r, conf, "headers", true, &self->headers, &self->header_count) < 0
        || s_basic_auth(r, conf, self) < 0
        || s_path(r, conf, "records_path", "items", true, &self->records_path) < 0
        || s_pagination(r, conf, self) < 0
        || s_int(r, conf, "connect_timeout_ms", 5000, 100, 600000, &self->connect_timeout_ms) < 0
        || s_int(r, conf, "timeout_ms", 30000, 100, 3600000, &self->timeout_ms) < 0
        || s_retry(r, conf, self) < 0
        || s_rate(r, conf, self) < 0
        || s_int(r, conf, "poll_interval_ms", 10000, 10, 86400000, &self->poll_interval_ms) < 0
        || s_int(r, conf, "max_response_bytes", 16 << 20, 1024, 1 << 30, &self->max_response_bytes) < 0)
        return -1;
    const char *ca;
    if (cv_yaml_str(r->doc, conf, "ca_file", false, NULL, &ca, r->err, r->errlen) < 0)
        return -1;
    if (ca) {
        size_t len = strlen(r->dir) + strlen(ca) + 2;
        self->ca_file = malloc(len);
        if (!self->ca_file)
            return -1;
        snprintf(self->ca_file, len, "%s%s%s", ca[0] == '/' ? "" : r->dir, ca[0] == '/' ? "" : "/", ca);
    }
    return 0;
}

cv_rest_config_t *cv_rest_config_new(const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    cv_rest_config_t *self = cv_zcalloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    reader_t r = { ctx->doc, ctx->config_dir, err, errlen };
    err[0] = '\0';
    if (s_read(&r, ctx->conf, self) < 0) {
        if (!err[0])
            cv_yaml_fail(ctx->doc, ctx->conf, err, errlen, "out of memory reading the rest driver");
        cv_rest_config_destroy(&self);
    }
    return self;
}

static void s_pairs_free(cv_rest_pair_t *pairs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(pairs[i].name);
        s_wipe_free(pairs[i].value);
    }
    free(pairs);
}

void cv_rest_config_destroy(cv_rest_config_t **self_p)
{
    cv_rest_config_t *self = *self_p;
    if (!self)
        return;
    s_wipe_free(self->url);
    free(self->url_for_logs);
    s_pairs_free(self->query, self->query_count);
    s_pairs_free(self->headers, self->header_count);
    s_wipe_free(self->username);
    s_wipe_free(self->password);
    free(self->ca_file);
    free(self->records_path);
    free(self->token_param);
    free(self->next_token_path);
    free(self->since_param);
    free(self->cursor_field);
    free(self->since_start);
    free(self->page_size_param);
    free(self);
    *self_p = NULL;
}

json_t *cv_rest_config_json_path(json_t *root, const char *path)
{
    json_t *node = root;
    const char *p = path;
    while (node && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t) (dot - p) : strlen(p);
        char seg[256];
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (json_is_object(node)) {
            node = json_object_get(node, seg);
        } else if (json_is_array(node) && n > 0 && strspn(seg, "0123456789") == n) {
            node = json_array_get(node, strtoul(seg, NULL, 10));
        } else {
            return NULL;
        }
        p += n + (dot ? 1 : 0);
    }
    return node;
}
