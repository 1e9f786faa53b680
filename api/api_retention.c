/*  api_retention — see api_retention.h. The YAML goes through cv_yaml (the
    line of every mistake); the checked values are copied into a jansson
    object, which civibusctl passes to cv_retention_run as one jsonb
    parameter: the SQL reads the same rules the file says, nothing else. */
#include "api_retention.h"

#include "cv_yaml.h"

#include <stdio.h>

#define DAYS_MAX 36500

/* A map of name -> days (a service's categories) into obj. */
static int s_categories(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, json_t *obj, char *err,
                        size_t errlen)
{
    if (cv_yaml_expect(doc, map, CV_YAML_MAP, "'categories'", err, errlen) < 0)
        return -1;
    for (const cv_yaml_node_t *c = map->child; c; c = c->next) {
        int64_t days;
        if (cv_yaml_int(doc, map, c->key, true, 0, 1, DAYS_MAX, &days, err, errlen) < 0)
            return -1;
        json_object_set_new(obj, c->key, json_integer(days));
    }
    return 0;
}

static json_t *s_rules(const cv_yaml_doc_t *doc, char *err, size_t errlen)
{
    static const char *const top[] = { "default_days", "services", "audit_days", "dead_letters_days", NULL };
    static const char *const service_keys[] = { "days", "categories", NULL };
    const cv_yaml_node_t *root = doc->root;
    int64_t days;
    if (cv_yaml_expect(doc, root, CV_YAML_MAP, "the retention rules", err, errlen) < 0
        || cv_yaml_check_keys(doc, root, top, "the retention rules", err, errlen) < 0
        || cv_yaml_int(doc, root, "default_days", true, 0, 1, DAYS_MAX, &days, err, errlen) < 0)
        return NULL;
    json_t *rules = json_pack("{s:I, s:{}}", "default_days", (json_int_t) days, "services");
    /* the audit trail and the dead letters: their own periods, defaults when absent */
    static const struct { const char *key; int64_t days; } logs[] = {
        { "audit_days", CV_RETENTION_AUDIT_DAYS }, { "dead_letters_days", CV_RETENTION_DEAD_LETTERS_DAYS },
    };
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
        int64_t n = logs[i].days;
        if (cv_yaml_get(root, logs[i].key)
            && cv_yaml_int(doc, root, logs[i].key, true, 0, 1, DAYS_MAX, &n, err, errlen) < 0)
            goto fail;
        json_object_set_new(rules, logs[i].key, json_integer(n));
    }
    json_t *services = json_object_get(rules, "services");
    const cv_yaml_node_t *svc = cv_yaml_get(root, "services");
    if (svc && cv_yaml_expect(doc, svc, CV_YAML_MAP, "'services'", err, errlen) < 0)
        goto fail;
    for (const cv_yaml_node_t *s = svc ? svc->child : NULL; s; s = s->next) {
        if (cv_yaml_expect(doc, s, CV_YAML_MAP, s->key, err, errlen) < 0
            || cv_yaml_check_keys(doc, s, service_keys, s->key, err, errlen) < 0)
            goto fail;
        json_t *one = json_object();
        json_object_set_new(services, s->key, one);
        if (cv_yaml_get(s, "days")) {
            if (cv_yaml_int(doc, s, "days", true, 0, 1, DAYS_MAX, &days, err, errlen) < 0)
                goto fail;
            json_object_set_new(one, "days", json_integer(days));
        }
        const cv_yaml_node_t *cats = cv_yaml_get(s, "categories");
        if (cats) {
            json_t *c = json_object();
            json_object_set_new(one, "categories", c);
            if (s_categories(doc, cats, c, err, errlen) < 0)
                goto fail;
        }
        if (!json_object_size(one)) {
            cv_yaml_fail(doc, s, err, errlen, "service '%s': give days or categories", s->key);
            goto fail;
        }
    }
    return rules;
fail:
    json_decref(rules);
    return NULL;
}

json_t *cv_api_retention_parse(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    cv_yaml_doc_t *doc = cv_yaml_parse(name, text, len, err, errlen);
    if (!doc)
        return NULL;
    json_t *rules = s_rules(doc, err, errlen);
    cv_yaml_destroy(&doc);
    return rules;
}

json_t *cv_api_retention_load(const char *path, char *err, size_t errlen)
{
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, errlen);
    if (!doc)
        return NULL;
    json_t *rules = s_rules(doc, err, errlen);
    cv_yaml_destroy(&doc);
    return rules;
}
