/*  cv_deadlines — see cv_deadlines.h and docs/deadlines.md. */
#include "cv_deadlines.h"
#include "store/cv_store.h"

#include "cv_yaml.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_channels[] = { "courrier", "telephone", "guichet", "email", "web", "api",
                                          "interne", "autre", "inconnu", NULL };

static bool s_known_channel(const char *c)
{
    for (const char *const *k = s_channels; *k; k++)
        if (strcmp(*k, c) == 0)
            return true;
    return false;
}

/* One delay {days, calendar} (and, in a category, its channels) as a rule. */
static int s_rule(const cv_yaml_doc_t *doc, const cv_yaml_node_t *n, const char *category,
                  const char *channel, bool nested, json_t *rules, char *err, size_t errlen)
{
    static const char *const keys[] = { "days", "calendar", NULL };
    static const char *const keys_nested[] = { "days", "calendar", "channels", NULL };
    if (cv_yaml_expect(doc, n, CV_YAML_MAP, "a delay ({days: N, calendar: working})", err, errlen) < 0
        || cv_yaml_check_keys(doc, n, nested ? keys_nested : keys, "a delay", err, errlen) < 0)
        return -1;
    int64_t days;
    const char *calendar;
    if (cv_yaml_int(doc, n, "days", true, 0, 0, 3650, &days, err, errlen) < 0
        || cv_yaml_str(doc, n, "calendar", false, "calendar", &calendar, err, errlen) < 0)
        return -1;
    if (strcmp(calendar, "calendar") != 0 && strcmp(calendar, "working") != 0)
        return cv_yaml_fail(doc, cv_yaml_get(n, "calendar"), err, errlen,
                            "calendar: 'calendar' (every day counts) or 'working' (Monday to Friday, "
                            "public holidays excluded), not '%s'", calendar);
    json_array_append_new(rules, json_pack("{s:s, s:s, s:I, s:s}", "category", category, "channel", channel,
                                           "days", (json_int_t) days, "calendar", calendar));
    const cv_yaml_node_t *chans = nested ? cv_yaml_get(n, "channels") : NULL;
    if (!chans)
        return 0;
    if (cv_yaml_expect(doc, chans, CV_YAML_MAP, "'channels'", err, errlen) < 0)
        return -1;
    for (const cv_yaml_node_t *c = chans->child; c; c = c->next) {
        if (!s_known_channel(c->key))
            return cv_yaml_fail(doc, c, err, errlen, "unknown channel '%s' (courrier, telephone, guichet, "
                                "email, web, api, interne, autre, inconnu)", c->key);
        if (s_rule(doc, c, category, c->key, false, rules, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int s_load(const cv_yaml_doc_t *doc, json_t *out, char *err, size_t errlen)
{
    const cv_yaml_node_t *root = doc->root;
    static const char *const top[] = { "region", "default", "categories", "channels", NULL };
    if (cv_yaml_expect(doc, root, CV_YAML_MAP, "the deadlines", err, errlen) < 0
        || cv_yaml_check_keys(doc, root, top, "the deadlines", err, errlen) < 0)
        return -1;
    const char *region;
    if (cv_yaml_str(doc, root, "region", false, "france", &region, err, errlen) < 0)
        return -1;
    if (strcmp(region, "france") != 0 && strcmp(region, "alsace-moselle") != 0)
        return cv_yaml_fail(doc, cv_yaml_get(root, "region"), err, errlen,
                            "region: 'france' or 'alsace-moselle' (Vendredi saint and 26 December too), not '%s'",
                            region);
    json_t *rules = json_array();
    json_object_set_new(out, "region", json_string(region));
    json_object_set_new(out, "rules", rules);
    const cv_yaml_node_t *dflt = cv_yaml_get(root, "default");
    if (dflt && s_rule(doc, dflt, "", "", false, rules, err, errlen) < 0)
        return -1;
    const cv_yaml_node_t *cats = cv_yaml_get(root, "categories");
    if (cats) {
        if (cv_yaml_expect(doc, cats, CV_YAML_MAP, "'categories'", err, errlen) < 0)
            return -1;
        for (const cv_yaml_node_t *c = cats->child; c; c = c->next) {
            if (!*c->key || strlen(c->key) > 200)
                return cv_yaml_fail(doc, c, err, errlen, "a category is 1 to 200 characters");
            if (s_rule(doc, c, c->key, "", true, rules, err, errlen) < 0)
                return -1;
        }
    }
    const cv_yaml_node_t *chans = cv_yaml_get(root, "channels");
    if (chans) {
        if (cv_yaml_expect(doc, chans, CV_YAML_MAP, "'channels'", err, errlen) < 0)
            return -1;
        for (const cv_yaml_node_t *c = chans->child; c; c = c->next) {
            if (!s_known_channel(c->key))
                return cv_yaml_fail(doc, c, err, errlen, "unknown channel '%s' (courrier, telephone, guichet, "
                                    "email, web, api, interne, autre, inconnu)", c->key);
            if (s_rule(doc, c, "", c->key, false, rules, err, errlen) < 0)
                return -1;
        }
    }
    if (json_array_size(rules) == 0)
        return cv_yaml_fail(doc, root, err, errlen, "no rule: give 'default', 'categories' or 'channels'");
    return 0;
}

char *cv_deadlines_load(const char *path, size_t *nrules, char *err, size_t errlen)
{
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, errlen);
    if (!doc)
        return NULL;
    json_t *out = json_object();
    char *text = NULL;
    if (!doc->root)
        cv_yaml_fail(doc, NULL, err, errlen, "empty file: give 'default', 'categories' or 'channels'");
    else if (s_load(doc, out, err, errlen) == 0) {
        *nrules = json_array_size(json_object_get(out, "rules"));
        text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    }
    json_decref(out);
    cv_yaml_destroy(&doc);
    return text;
}

int cv_deadlines_apply(const char *conninfo, const char *rules, long *changed, char *err, size_t errlen)
{
    char n[32];
    if (cv_store_once(conninfo, "SELECT cv_deadlines_set($1::jsonb)", rules, "deadlines", n, sizeof n, err,
                      errlen) < 0)
        return -1;
    *changed = strtol(n, NULL, 10);
    return 0;
}
