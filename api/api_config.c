/*  api_config — see api_config.h. Every key is optional except
    postgres.conninfo; unknown keys are refused at every level. */
#include "api_config.h"

#include "cv_alloc.h"
#include "cv_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_load(cv_api_config_t *self, const cv_yaml_doc_t *doc, char *err, size_t errlen)
{
    const cv_yaml_node_t *root = doc->root;
    if (cv_yaml_expect(doc, root, CV_YAML_MAP, "the configuration", err, errlen) < 0)
        return -1;
    static const char *const top[] = { "postgres", "listen", "http", "tracking", "audit", "links", NULL };
    static const char *const links[] = { "secret_file", "max_days", NULL };
    static const char *const pg[] = { "conninfo", NULL };
    static const char *const listen[] = { "address", "port", NULL };
    static const char *const http[] = { "threads", "max_body_bytes", "page_max", NULL };
    static const char *const tracking[] = { "per_minute", NULL };
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

    n = cv_yaml_get(root, "tracking");
    if (n && (cv_yaml_expect(doc, n, CV_YAML_MAP, "'tracking'", err, errlen) < 0
              || cv_yaml_check_keys(doc, n, tracking, "'tracking'", err, errlen) < 0))
        return -1;
    if (cv_yaml_int(doc, n, "per_minute", false, 10, 1, 100000, &v, err, errlen) < 0)
        return -1;
    self->track_per_minute = (int) v;

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
    if (s) {                    /* relative to the config file's folder */
        const char *slash = strrchr(doc->file, '/');
        if (s[0] == '/' || !slash)
            self->link_key_file = cv_zstrdup(s);
        else if (asprintf(&self->link_key_file, "%.*s/%s", (int) (slash - doc->file), doc->file, s) < 0)
            self->link_key_file = NULL;
    }
    if (cv_yaml_int(doc, n, "max_days", false, 90, 1, 3650, &v, err, errlen) < 0)
        return -1;
    self->link_max_days = (int) v;
    return 0;
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
    free(self->address);
    free(self->link_key_file);
    free(self);
    *self_p = NULL;
}
