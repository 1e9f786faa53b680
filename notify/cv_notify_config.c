/*  cv_notify_config — see cv_notify_config.h. One reader per block; each
    value is checked where it is read, so the error names its line. */
#include "cv_notify_config.h"

#include "cv_alloc.h"
#include "cv_replyaddr.h"
#include "cv_yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const cv_yaml_doc_t *doc;
    char *dir;                   /* the config file's folder, with '/' */
    char *err;
    size_t errlen;
} ctx_t;

static char *s_dup(const char *s) { return s ? cv_zstrdup(s) : NULL; }

static char *s_path(const ctx_t *c, const char *p)
{
    if (p[0] == '/')
        return cv_zstrdup(p);
    size_t n = strlen(c->dir) + strlen(p) + 1;
    char *out = cv_zmalloc(n);
    snprintf(out, n, "%s%s", c->dir, p);
    return out;
}

static int s_str(ctx_t *c, const cv_yaml_node_t *map, const char *key, bool req, const char *dflt, char **out)
{
    const char *v = NULL;
    if (cv_yaml_str(c->doc, map, key, req, dflt, &v, c->err, c->errlen) < 0)
        return -1;
    *out = s_dup(v);
    return 0;
}

static int s_int(ctx_t *c, const cv_yaml_node_t *map, const char *key, int dflt, int min, int max, int *out)
{
    int64_t v;
    if (cv_yaml_int(c->doc, map, key, false, dflt, min, max, &v, c->err, c->errlen) < 0)
        return -1;
    *out = (int) v;
    return 0;
}

/* "HH:MM" */
static int s_hhmm(ctx_t *c, const cv_yaml_node_t *map, const char *key, const char *dflt, char **out)
{
    if (s_str(c, map, key, false, dflt, out) < 0)
        return -1;
    const char *v = *out;
    if (!v)
        return 0;
    if (strlen(v) != 5 || v[2] != ':' || v[0] < '0' || v[0] > '2' || v[1] < '0' || v[1] > '9' || v[3] < '0' ||
        v[3] > '5' || v[4] < '0' || v[4] > '9' || (v[0] - '0') * 10 + (v[1] - '0') > 23)
        return cv_yaml_fail(c->doc, cv_yaml_get(map, key), c->err, c->errlen, "%s is a time of day HH:MM", key);
    return 0;
}

/* An e-mail address we write into a header: no space, control, bracket, comma, quote. */
static bool s_addr_ok(const char *a)
{
    const char *at = strchr(a, '@');
    if (!at || at == a || !at[1] || strchr(at + 1, '@') || strlen(a) > 254)
        return false;
    for (const char *p = a; *p; p++)
        if ((unsigned char) *p <= ' ' || strchr("<>()[],;:\"\\", *p) || (unsigned char) *p >= 0x7f)
            return false;
    return true;
}

static int s_addr(ctx_t *c, const cv_yaml_node_t *map, const char *key, bool req, char **out)
{
    if (s_str(c, map, key, req, NULL, out) < 0)
        return -1;
    if (*out && !s_addr_ok(*out))
        return cv_yaml_fail(c->doc, cv_yaml_get(map, key), c->err, c->errlen, "%s is an e-mail address (local@domain)",
                            key);
    return 0;
}

static int s_secret(ctx_t *c, const cv_yaml_node_t *map, const char *key, unsigned char *out, size_t cap,
                    size_t *len)
{
    const char *v = NULL;
    if (cv_yaml_str(c->doc, map, key, true, NULL, &v, c->err, c->errlen) < 0)
        return -1;
    char *p = s_path(c, v), why[600];
    int rc = cv_replyaddr_key_load(p, out, cap, len, why, sizeof why);
    free(p);
    if (rc < 0)
        return cv_yaml_fail(c->doc, cv_yaml_get(map, key), c->err, c->errlen, "%s", why);
    return 0;
}

/* A small secret file (a gateway token): mode 0600 or stricter, trailing whitespace dropped. */
static int s_token(ctx_t *c, const cv_yaml_node_t *map, const char *key, char **out)
{
    const char *v = NULL;
    if (cv_yaml_str(c->doc, map, key, false, NULL, &v, c->err, c->errlen) < 0)
        return -1;
    if (!v)
        return 0;
    char *p = s_path(c, v), buf[512];
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    struct stat st;
    ssize_t n = -1;
    const char *why = NULL;
    if (fd < 0)
        why = strerror(errno);
    else if (fstat(fd, &st) < 0 || (st.st_mode & 077))
        why = "readable by others than its owner (chmod 600)";
    else if ((n = read(fd, buf, sizeof buf - 1)) <= 0)
        why = "empty or unreadable";
    if (fd >= 0)
        close(fd);
    if (why) {
        int rc = cv_yaml_fail(c->doc, cv_yaml_get(map, key), c->err, c->errlen, "%s: %s", p, why);
        free(p);
        return rc;
    }
    free(p);
    while (n > 0 && (unsigned char) buf[n - 1] <= ' ')
        n--;
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++)
        if ((unsigned char) buf[i] < ' ')
            return cv_yaml_fail(c->doc, cv_yaml_get(map, key), c->err, c->errlen, "%s: control characters", key);
    *out = cv_zstrdup(buf);
    return 0;
}

static int s_mail(ctx_t *c, cv_notify_config_t *cfg, const cv_yaml_node_t *m)
{
    static const char *const keys[] = { "smtp_url", "tls", "username", "password_file", "from", "from_name",
                                        "intake", "reply_secret_file", "message_id_domain", "subject_prefix",
                                        "templates", "timeout_s", NULL };
    if (cv_yaml_expect(c->doc, m, CV_YAML_MAP, "mail", c->err, c->errlen) < 0 ||
        cv_yaml_check_keys(c->doc, m, keys, "mail", c->err, c->errlen) < 0)
        return -1;
    char *tls = NULL, *tpl = NULL;
    if (s_str(c, m, "smtp_url", true, NULL, &cfg->smtp_url) < 0 || s_str(c, m, "tls", false, "required", &tls) < 0)
        return -1;
    if (strncmp(cfg->smtp_url, "smtp://", 7) != 0 && strncmp(cfg->smtp_url, "smtps://", 8) != 0) {
        free(tls);
        return cv_yaml_fail(c->doc, cv_yaml_get(m, "smtp_url"), c->err, c->errlen,
                            "smtp_url is smtp://HOST:PORT (STARTTLS per tls:) or smtps://HOST:PORT");
    }
    if (strcmp(tls, "required") == 0)
        cfg->tls = CV_TLS_REQUIRED;
    else if (strcmp(tls, "optional") == 0)
        cfg->tls = CV_TLS_OPTIONAL;
    else if (strcmp(tls, "none") == 0)
        cfg->tls = CV_TLS_NONE;
    else {
        free(tls);
        return cv_yaml_fail(c->doc, cv_yaml_get(m, "tls"), c->err, c->errlen, "tls is required, optional or none");
    }
    free(tls);
    if (s_str(c, m, "username", false, NULL, &cfg->smtp_user) < 0 ||
        s_token(c, m, "password_file", &cfg->smtp_password) < 0)
        return -1;
    if ((cfg->smtp_user == NULL) != (cfg->smtp_password == NULL))
        return cv_yaml_fail(c->doc, m, c->err, c->errlen, "username and password_file go together");
    if (s_addr(c, m, "from", true, &cfg->from) < 0 || s_str(c, m, "from_name", false, NULL, &cfg->from_name) < 0 ||
        s_addr(c, m, "intake", true, &cfg->intake) < 0 ||
        s_str(c, m, "subject_prefix", false, "[Mairie]", &cfg->subject_prefix) < 0 ||
        s_int(c, m, "timeout_s", 30, 1, 600, &cfg->timeout_s) < 0)
        return -1;
    if (strchr(cfg->intake, '+'))
        return cv_yaml_fail(c->doc, cv_yaml_get(m, "intake"), c->err, c->errlen,
                            "intake has no '+' (the reply addresses add +CODE-SIG)");
    for (const char *p = cfg->from_name ? cfg->from_name : ""; *p; p++)
        if ((unsigned char) *p < ' ')
            return cv_yaml_fail(c->doc, cv_yaml_get(m, "from_name"), c->err, c->errlen, "from_name: control characters");
    for (const char *p = cfg->subject_prefix; *p; p++)
        if ((unsigned char) *p < ' ')
            return cv_yaml_fail(c->doc, cv_yaml_get(m, "subject_prefix"), c->err, c->errlen,
                                "subject_prefix: control characters");
    const char *dom = strchr(cfg->from, '@') + 1;
    if (s_str(c, m, "message_id_domain", false, dom, &cfg->msgid_domain) < 0)
        return -1;
    for (const char *p = cfg->msgid_domain; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
            return cv_yaml_fail(c->doc, cv_yaml_get(m, "message_id_domain"), c->err, c->errlen,
                                "message_id_domain is a domain name");
    if (s_secret(c, m, "reply_secret_file", cfg->reply_key, sizeof cfg->reply_key, &cfg->reply_keylen) < 0)
        return -1;
    if (s_str(c, m, "templates", true, NULL, &tpl) < 0)
        return -1;
    cfg->templates = s_path(c, tpl);
    free(tpl);
    return 0;
}

static int s_webhooks(ctx_t *c, cv_notify_config_t *cfg, const cv_yaml_node_t *seq)
{
    static const char *const keys[] = { "name", "url", "secret_file", "citizen_id", NULL };
    if (cv_yaml_expect(c->doc, seq, CV_YAML_SEQ, "webhooks", c->err, c->errlen) < 0)
        return -1;
    cfg->webhooks = cv_zcalloc(seq->count ? seq->count : 1, sizeof *cfg->webhooks);
    for (const cv_yaml_node_t *w = seq->child; w; w = w->next) {
        cv_notify_webhook_t *h = &cfg->webhooks[cfg->nwebhooks++];
        if (cv_yaml_expect(c->doc, w, CV_YAML_MAP, "a webhook", c->err, c->errlen) < 0 ||
            cv_yaml_check_keys(c->doc, w, keys, "a webhook", c->err, c->errlen) < 0 ||
            s_str(c, w, "name", true, NULL, &h->name) < 0 || s_str(c, w, "url", true, NULL, &h->url) < 0 ||
            s_secret(c, w, "secret_file", h->secret, sizeof h->secret, &h->secretlen) < 0 ||
            cv_yaml_bool(c->doc, w, "citizen_id", false, false, &h->personal, c->err, c->errlen) < 0)
            return -1;
        for (const char *p = h->name; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-') || p - h->name > 40)
                return cv_yaml_fail(c->doc, cv_yaml_get(w, "name"), c->err, c->errlen,
                                    "name is up to 40 of a-z 0-9 _ -");
        if (strncmp(h->url, "http://", 7) != 0 && strncmp(h->url, "https://", 8) != 0)
            return cv_yaml_fail(c->doc, cv_yaml_get(w, "url"), c->err, c->errlen, "url is http:// or https://");
        for (size_t i = 0; i + 1 < cfg->nwebhooks; i++)
            if (strcmp(cfg->webhooks[i].name, h->name) == 0)
                return cv_yaml_fail(c->doc, cv_yaml_get(w, "name"), c->err, c->errlen, "webhook %s named twice",
                                    h->name);
    }
    return 0;
}

static int s_sms(ctx_t *c, cv_notify_config_t *cfg, const cv_yaml_node_t *m)
{
    static const char *const keys[] = { "url", "token_file", "default", NULL };
    if (cv_yaml_expect(c->doc, m, CV_YAML_MAP, "sms", c->err, c->errlen) < 0 ||
        cv_yaml_check_keys(c->doc, m, keys, "sms", c->err, c->errlen) < 0 ||
        s_str(c, m, "url", true, NULL, &cfg->sms_url) < 0 || s_token(c, m, "token_file", &cfg->sms_token) < 0 ||
        s_str(c, m, "default", false, "off", &cfg->sms_default) < 0)
        return -1;
    if (strncmp(cfg->sms_url, "http://", 7) != 0 && strncmp(cfg->sms_url, "https://", 8) != 0)
        return cv_yaml_fail(c->doc, cv_yaml_get(m, "url"), c->err, c->errlen, "url is http:// or https://");
    if (strcmp(cfg->sms_default, "off") && strcmp(cfg->sms_default, "immediate") && strcmp(cfg->sms_default, "digest"))
        return cv_yaml_fail(c->doc, cv_yaml_get(m, "default"), c->err, c->errlen, "default is off, immediate or digest");
    return 0;
}

static int s_digest(ctx_t *c, cv_notify_config_t *cfg, const cv_yaml_node_t *m)
{
    static const char *const keys[] = { "at", "soon_days", "services", NULL };
    if (cv_yaml_expect(c->doc, m, CV_YAML_MAP, "digest", c->err, c->errlen) < 0 ||
        cv_yaml_check_keys(c->doc, m, keys, "digest", c->err, c->errlen) < 0 ||
        s_hhmm(c, m, "at", "07:30", &cfg->supervisor_at) < 0 || s_int(c, m, "soon_days", 2, 0, 60, &cfg->soon_days) < 0)
        return -1;
    const cv_yaml_node_t *s = cv_yaml_get(m, "services");
    if (!s)
        return cv_yaml_fail(c->doc, m, c->err, c->errlen, "digest needs services: {SERVICE: supervisor address}");
    if (cv_yaml_expect(c->doc, s, CV_YAML_MAP, "digest.services", c->err, c->errlen) < 0)
        return -1;
    cfg->supervisors = cv_zcalloc(s->count ? s->count : 1, sizeof *cfg->supervisors);
    for (const cv_yaml_node_t *e = s->child; e; e = e->next) {
        cv_notify_supervisor_t *sv = &cfg->supervisors[cfg->nsupervisors++];
        sv->service = cv_zstrdup(e->key);
        if (e->type != CV_YAML_SCALAR || !s_addr_ok(e->value))
            return cv_yaml_fail(c->doc, e, c->err, c->errlen, "%s: the supervisor's e-mail address", e->key);
        sv->address = cv_zstrdup(e->value);
    }
    return 0;
}

cv_notify_config_t *cv_notify_config_load(const char *path, char *err, size_t errlen)
{
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, errlen);
    if (!doc)
        return NULL;
    cv_notify_config_t *cfg = cv_zcalloc(1, sizeof *cfg);
    ctx_t c = { .doc = doc, .err = err, .errlen = errlen };
    const char *slash = strrchr(path, '/');
    c.dir = slash ? cv_zstrndup(path, (size_t) (slash - path + 1)) : cv_zstrdup("./");
    static const char *const keys[] = { "postgres", "public_url", "city", "start_from", "poll_ms", "batch",
                                        "coalesce_s", "timezone", "quiet_hours", "digest_at", "retry", "mail",
                                        "webhooks", "sms", "digest", NULL };
    const cv_yaml_node_t *root = doc->root, *n;
    char *start = NULL;
    int rc = -1;
    if (!root || root->type != CV_YAML_MAP) {
        cv_yaml_fail(doc, root, err, errlen, "the file is a map of settings");
        goto done;
    }
    if (cv_yaml_check_keys(doc, root, keys, "the notifier's config", err, errlen) < 0)
        goto done;
    n = cv_yaml_get(root, "postgres");
    if (!n || n->type != CV_YAML_MAP) {
        cv_yaml_fail(doc, n, err, errlen, "postgres: {conninfo: ...} is required");
        goto done;
    }
    static const char *const pgkeys[] = { "conninfo", NULL };
    if (cv_yaml_check_keys(doc, n, pgkeys, "postgres", err, errlen) < 0 ||
        s_str(&c, n, "conninfo", true, NULL, &cfg->conninfo) < 0 ||
        s_str(&c, root, "public_url", true, NULL, &cfg->public_url) < 0 ||
        s_str(&c, root, "city", false, "la mairie", &cfg->city) < 0 ||
        s_str(&c, root, "start_from", false, "end", &start) < 0 ||
        s_int(&c, root, "poll_ms", 500, 10, 60000, &cfg->poll_ms) < 0 ||
        s_int(&c, root, "batch", 200, 1, 10000, &cfg->batch) < 0 ||
        s_int(&c, root, "coalesce_s", 60, 0, 86400, &cfg->coalesce_s) < 0 ||
        s_str(&c, root, "timezone", false, "Europe/Paris", &cfg->timezone) < 0 ||
        s_hhmm(&c, root, "digest_at", "18:00", &cfg->digest_at) < 0)
        goto done;
    if (strncmp(cfg->public_url, "https://", 8) != 0 && strncmp(cfg->public_url, "http://", 7) != 0) {
        cv_yaml_fail(doc, cv_yaml_get(root, "public_url"), err, errlen, "public_url is http:// or https://");
        goto done;
    }
    size_t ul = strlen(cfg->public_url);
    while (ul > 0 && cfg->public_url[ul - 1] == '/')
        cfg->public_url[--ul] = 0;
    for (const char *p = cfg->public_url; *p; p++)
        if ((unsigned char) *p <= ' ' || strchr("<>\"'", *p)) {
            cv_yaml_fail(doc, cv_yaml_get(root, "public_url"), err, errlen, "public_url: a character a URL has not");
            goto done;
        }
    if (strcmp(start, "end") && strcmp(start, "beginning")) {
        cv_yaml_fail(doc, cv_yaml_get(root, "start_from"), err, errlen, "start_from is end or beginning");
        goto done;
    }
    cfg->start_from_end = strcmp(start, "end") == 0;
    if ((n = cv_yaml_get(root, "quiet_hours"))) {
        static const char *const qk[] = { "start", "end", NULL };
        if (cv_yaml_expect(doc, n, CV_YAML_MAP, "quiet_hours", err, errlen) < 0 ||
            cv_yaml_check_keys(doc, n, qk, "quiet_hours", err, errlen) < 0 ||
            s_hhmm(&c, n, "start", NULL, &cfg->quiet_start) < 0 || s_hhmm(&c, n, "end", NULL, &cfg->quiet_end) < 0)
            goto done;
        if (!cfg->quiet_start || !cfg->quiet_end) {
            cv_yaml_fail(doc, n, err, errlen, "quiet_hours needs start and end (HH:MM)");
            goto done;
        }
    }
    n = cv_yaml_get(root, "retry");
    static const char *const rk[] = { "base_s", "max_s", "max_attempts", NULL };
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "retry", err, errlen) < 0 ||
              cv_yaml_check_keys(doc, n, rk, "retry", err, errlen) < 0))
        goto done;
    if (s_int(&c, n, "base_s", 30, 1, 86400, &cfg->retry_base_s) < 0 ||
        s_int(&c, n, "max_s", 3600, 1, 7 * 86400, &cfg->retry_max_s) < 0 ||
        s_int(&c, n, "max_attempts", 10, 1, 100, &cfg->max_attempts) < 0)
        goto done;
    if (!(n = cv_yaml_get(root, "mail"))) {
        cv_yaml_fail(doc, root, err, errlen, "mail: is required (smtp_url, from, intake, reply_secret_file, templates)");
        goto done;
    }
    if (s_mail(&c, cfg, n) < 0)
        goto done;
    if ((n = cv_yaml_get(root, "webhooks")) && s_webhooks(&c, cfg, n) < 0)
        goto done;
    if ((n = cv_yaml_get(root, "sms")) && s_sms(&c, cfg, n) < 0)
        goto done;
    if ((n = cv_yaml_get(root, "digest")) && s_digest(&c, cfg, n) < 0)
        goto done;
    rc = 0;
done:
    free(start);
    free(c.dir);
    cv_yaml_destroy(&doc);
    if (rc < 0)
        cv_notify_config_destroy(&cfg);
    return cfg;
}

void cv_notify_config_destroy(cv_notify_config_t **self_p)
{
    cv_notify_config_t *c = *self_p;
    if (!c)
        return;
    char **strs[] = { &c->conninfo, &c->public_url, &c->city, &c->timezone, &c->quiet_start, &c->quiet_end,
                      &c->digest_at, &c->smtp_url, &c->smtp_user, &c->smtp_password, &c->from, &c->from_name,
                      &c->intake, &c->msgid_domain, &c->subject_prefix, &c->templates, &c->sms_url,
                      &c->sms_token, &c->sms_default, &c->supervisor_at };
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        free(*strs[i]);
    for (size_t i = 0; i < c->nwebhooks; i++)
        free(c->webhooks[i].name), free(c->webhooks[i].url);
    free(c->webhooks);
    for (size_t i = 0; i < c->nsupervisors; i++)
        free(c->supervisors[i].service), free(c->supervisors[i].address);
    free(c->supervisors);
    memset(c->reply_key, 0, sizeof c->reply_key);
    free(c);
    *self_p = NULL;
}
