/*  driver_imap_config — the `driver:` section of an IMAP adapter
    (docs/drivers/imap.md).

    url (imaps://HOST[:PORT], or imap:// to a loopback address only, unless
    allow_plain: true), user, password_file (relative to the config's
    folder; trailing line breaks removed), mailbox (INBOX), one of flag
    (default \Seen, or an IMAP keyword) or done_folder, poll_ms, timeout_ms,
    batch, max_mail_bytes, max_body_bytes, ca_file, reply_secret_file (the key of the signed reply
    addresses, lib/cv_replyaddr.h). Error messages name the
    key and the line, never the password. */
#include "cv_imap.h"

#include "cv_alloc.h"
#include "cv_replyaddr.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECRET_FILE_MAX 4096

typedef struct {
    const cv_yaml_doc_t *doc;
    const char *dir;
    char *err;
    size_t errlen;
} reader_t;

bool cv_imap_config_loopback(const char *host)
{
    if (!host)
        return false;
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0)
        return true;
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static int s_str(reader_t *r, const cv_yaml_node_t *map, const char *key, bool required, const char *dflt, char **out)
{
    const char *value;
    if (cv_yaml_str(r->doc, map, key, required, dflt, &value, r->err, r->errlen) < 0)
        return -1;
    *out = value ? cv_zstrdup(value) : NULL;
    if (value && !*out)
        return cv_yaml_fail(r->doc, map, r->err, r->errlen, "out of memory");
    return 0;
}

/* an IMAP atom for a mailbox or a keyword: no blanks, quotes, controls or
   list wildcards, so that it can be sent as it is */
static int s_atom(reader_t *r, const cv_yaml_node_t *map, const char *key, const char *value, bool flag)
{
    if (!value)
        return 0;
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (c <= 0x20 || c >= 0x7F || c == '"' || c == '(' || c == ')' || c == '{' || c == '%' || c == '*'
            || (c == '\\' && !(flag && p == value)) || (c == ']' && flag))
            return cv_yaml_fail(r->doc, cv_yaml_get(map, key), r->err, r->errlen,
                                "'%s' must be a plain IMAP name (no blanks, quotes, brackets or wildcards)", key);
    }
    if (!*value)
        return cv_yaml_fail(r->doc, cv_yaml_get(map, key), r->err, r->errlen, "'%s' must not be empty", key);
    return 0;
}

static int s_password(reader_t *r, const cv_yaml_node_t *conf, cv_imap_config_t *self)
{
    const cv_yaml_node_t *node = cv_yaml_get(conf, "password_file");
    if (!node || node->type != CV_YAML_SCALAR)
        return cv_yaml_fail(r->doc, node ? node : conf, r->err, r->errlen,
                            "the imap driver needs 'password_file' (a file holding the mailbox's password)");
    char path[4096];
    if (node->value[0] == '/')
        snprintf(path, sizeof path, "%s", node->value);
    else
        snprintf(path, sizeof path, "%s/%s", r->dir, node->value);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cv_yaml_fail(r->doc, node, r->err, r->errlen, "cannot read 'password_file' '%s': %s", path,
                            strerror(errno));
    char data[SECRET_FILE_MAX + 1];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    if (n > SECRET_FILE_MAX) {
        explicit_bzero(data, sizeof data);
        return cv_yaml_fail(r->doc, node, r->err, r->errlen, "'password_file' is larger than %d bytes",
                            SECRET_FILE_MAX);
    }
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
        n--;
    self->password = cv_zstrndup(data, n);
    explicit_bzero(data, sizeof data);
    if (!self->password)
        return cv_yaml_fail(r->doc, node, r->err, r->errlen, "out of memory");
    if (!n || memchr(self->password, '\n', n) || strlen(self->password) != n)
        return cv_yaml_fail(r->doc, node, r->err, r->errlen, "'password_file' must hold one line, not empty");
    return 0;
}

static int s_url(reader_t *r, const cv_yaml_node_t *conf, cv_imap_config_t *self, bool allow_plain)
{
    const cv_yaml_node_t *node = cv_yaml_get(conf, "url");
    if (!node || node->type != CV_YAML_SCALAR)
        return cv_yaml_fail(r->doc, node ? node : conf, r->err, r->errlen,
                            "the imap driver needs 'url' (imaps://HOST[:PORT])");
    self->url = cv_zstrdup(node->value);
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *user = NULL;
    int rc = -1;
    if (!self->url || !u || curl_url_set(u, CURLUPART_URL, self->url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        cv_yaml_fail(r->doc, node, r->err, r->errlen, "'url' is not a valid URL");
        goto done;
    }
    if (strcmp(scheme, "imaps") != 0 && strcmp(scheme, "imap") != 0) {
        cv_yaml_fail(r->doc, node, r->err, r->errlen, "'url' must start with imaps:// (or imap:// on loopback)");
        goto done;
    }
    if (strcmp(scheme, "imap") == 0 && !cv_imap_config_loopback(host) && !allow_plain) {
        cv_yaml_fail(r->doc, node, r->err, r->errlen,
                     "'url' is plain imap:// to '%s', which is not a loopback address: the password and the "
                     "mails would cross the network in clear; use imaps:// (or allow_plain: true)", host);
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        cv_yaml_fail(r->doc, node, r->err, r->errlen, "'url' must not hold a user name: use 'user'");
        goto done;
    }
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    if (path && strcmp(path, "/") != 0 && *path) {
        cv_yaml_fail(r->doc, node, r->err, r->errlen, "'url' must name the server only: the folder is 'mailbox'");
        goto done;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    size_t len = strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) + 8;
    self->url_for_logs = malloc(len);
    if (!self->url_for_logs)
        goto done;
    snprintf(self->url_for_logs, len, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
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

static int s_read(reader_t *r, const cv_yaml_node_t *conf, cv_imap_config_t *self)
{
    static const char *const keys[] = { "kind", "source", "url", "user", "password_file", "mailbox", "flag",
                                        "done_folder", "poll_ms", "timeout_ms", "batch", "max_mail_bytes",
                                        "max_body_bytes", "ca_file", "allow_plain", "reply_secret_file",
                                        "attachments_dir", "max_attachment_bytes", NULL };
    if (cv_yaml_check_keys(r->doc, conf, keys, "the imap driver", r->err, r->errlen) < 0)
        return -1;
    bool allow_plain = false;
    if (cv_yaml_bool(r->doc, conf, "allow_plain", false, false, &allow_plain, r->err, r->errlen) < 0
        || s_url(r, conf, self, allow_plain) < 0
        || s_str(r, conf, "user", true, NULL, &self->user) < 0
        || s_password(r, conf, self) < 0
        || s_str(r, conf, "mailbox", false, "INBOX", &self->mailbox) < 0
        || s_atom(r, conf, "mailbox", self->mailbox, false) < 0
        || s_str(r, conf, "done_folder", false, NULL, &self->done_folder) < 0
        || s_atom(r, conf, "done_folder", self->done_folder, false) < 0
        || s_str(r, conf, "flag", false, NULL, &self->flag) < 0
        || s_atom(r, conf, "flag", self->flag, true) < 0)
        return -1;
    if (self->flag && self->done_folder)
        return cv_yaml_fail(r->doc, cv_yaml_get(conf, "flag"), r->err, r->errlen,
                            "give 'flag' or 'done_folder', not both");
    if (self->flag && self->flag[0] == '\\' && strcasecmp(self->flag, "\\Seen") != 0
        && strcasecmp(self->flag, "\\Flagged") != 0)
        return cv_yaml_fail(r->doc, cv_yaml_get(conf, "flag"), r->err, r->errlen,
                            "'flag' must be \\Seen, \\Flagged or a keyword such as $Civibus");
    if (!self->flag && !self->done_folder && !(self->flag = cv_zstrdup("\\Seen")))
        return cv_yaml_fail(r->doc, conf, r->err, r->errlen, "out of memory");
    if (self->done_folder && strcasecmp(self->done_folder, self->mailbox) == 0)
        return cv_yaml_fail(r->doc, cv_yaml_get(conf, "done_folder"), r->err, r->errlen,
                            "'done_folder' must differ from 'mailbox'");
    const char *ca = NULL, *key = NULL, *files = NULL;
    if (cv_yaml_str(r->doc, conf, "attachments_dir", false, NULL, &files, r->err, r->errlen) < 0)
        return -1;
    if (files) {                 /* the folder civibus-api serves the files from (docs/attachments.md) */
        char path[4096];
        snprintf(path, sizeof path, "%s%s%s", files[0] == '/' ? "" : r->dir, files[0] == '/' ? "" : "/", files);
        self->attachments_dir = cv_zstrdup(path);
    }
    if (cv_yaml_str(r->doc, conf, "ca_file", false, NULL, &ca, r->err, r->errlen) < 0
        || cv_yaml_str(r->doc, conf, "reply_secret_file", false, NULL, &key, r->err, r->errlen) < 0)
        return -1;
    if (key) {                   /* the notifier's key: replies to its mails thread */
        char path[4096], why[512];
        snprintf(path, sizeof path, "%s%s%s", key[0] == '/' ? "" : r->dir, key[0] == '/' ? "" : "/", key);
        if (cv_replyaddr_key_load(path, self->reply_key, sizeof self->reply_key, &self->reply_keylen, why,
                                  sizeof why) < 0)
            return cv_yaml_fail(r->doc, cv_yaml_get(conf, "reply_secret_file"), r->err, r->errlen,
                                "'reply_secret_file': %s", why);
    }
    if (ca) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s%s", ca[0] == '/' ? "" : r->dir, ca[0] == '/' ? "" : "/", ca);
        self->ca_file = cv_zstrdup(path);
    }
    return cv_yaml_int(r->doc, conf, "poll_ms", false, 5000, 100, 3600000, &self->poll_ms, r->err, r->errlen) < 0
        || cv_yaml_int(r->doc, conf, "timeout_ms", false, 30000, 100, 600000, &self->timeout_ms, r->err, r->errlen) < 0
        || cv_yaml_int(r->doc, conf, "batch", false, 50, 1, 1000, &self->batch, r->err, r->errlen) < 0
        || cv_yaml_int(r->doc, conf, "max_mail_bytes", false, 40 << 20, 1024, 1 << 30, &self->max_mail_bytes,
                       r->err, r->errlen) < 0
        || cv_yaml_int(r->doc, conf, "max_body_bytes", false, 8192, 256, 1 << 20, &self->max_body_bytes, r->err,
                       r->errlen) < 0
        || cv_yaml_int(r->doc, conf, "max_attachment_bytes", false, 10 << 20, 1024, 32 << 20,
                       &self->max_attachment_bytes, r->err, r->errlen) < 0
        ? -1 : 0;
}

cv_imap_config_t *cv_imap_config_new(const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    cv_imap_config_t *self = cv_zcalloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    reader_t r = { ctx->doc, ctx->config_dir, err, errlen };
    err[0] = '\0';
    if (s_read(&r, ctx->conf, self) < 0) {
        if (!err[0])
            cv_yaml_fail(ctx->doc, ctx->conf, err, errlen, "out of memory reading the imap driver");
        cv_imap_config_destroy(&self);
    }
    return self;
}

void cv_imap_config_destroy(cv_imap_config_t **self_p)
{
    cv_imap_config_t *self = *self_p;
    if (!self)
        return;
    if (self->password) {
        explicit_bzero(self->password, strlen(self->password));
        free(self->password);
    }
    free(self->url);
    free(self->url_for_logs);
    free(self->user);
    free(self->mailbox);
    free(self->flag);
    free(self->done_folder);
    free(self->ca_file);
    free(self->attachments_dir);
    explicit_bzero(self->reply_key, sizeof self->reply_key);
    free(self);
    *self_p = NULL;
}
