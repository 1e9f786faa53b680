/*  cv_routing — see cv_routing.h and docs/routing.md.

    The file is checked whole here, so that a careless edit stops the hub at
    start-up with the line to fix, never in the middle of a day's intake:
    unknown keys, a rule with no condition (the default service catches the
    rest), a rule the same as an earlier one, an unknown channel, a keyword
    PostgreSQL's normaliser would not reduce to a-z 0-9 space ' - (so that
    the regex built from it in functions/routing.sql holds only literals),
    a service no `services:` entry declares, a dispatch to a source the
    hub's configuration does not know, a payload field that does not exist. */
#include "cv_routing.h"
#include "store/cv_store.h"

#include "cv_yaml.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 1000
#define MAX_KEYWORDS 200
#define MAX_DEPTH 4

static const char *const s_channels[] = { "courrier", "telephone", "guichet", "email", "web", "api",
                                          "interne", "autre", "inconnu", NULL };

/* The payload's fields (cv_routing_fields, functions/routing.sql). */
static const char *const s_fields[] = {
    "tracking_code", "request_id", "category", "channel", "service", "summary", "description",
    "requested_at", "registration_number", "location.address", "location.postcode", "location.city",
    "location.lat", "location.lon", "citizen.last_name", "citizen.first_name", "citizen.email",
    "citizen.phone", "citizen.address.line1", "citizen.address.line2", "citizen.address.postcode",
    "citizen.address.city", NULL };

/* The only non-ASCII letters of a keyword: those cv_routing_norm folds. */
static const char *const s_letters[] = {
    "À", "Â", "Ä", "Á", "Ã", "Å", "à", "â", "ä", "á", "ã", "å", "Ç", "ç", "É", "È", "Ê", "Ë", "é", "è",
    "ê", "ë", "Î", "Ï", "Í", "Ì", "î", "ï", "í", "ì", "Ô", "Ö", "Ó", "Ò", "Õ", "ô", "ö", "ó", "ò", "õ",
    "Ù", "Û", "Ü", "Ú", "ù", "û", "ü", "ú", "Ÿ", "Ý", "ÿ", "ý", "Ñ", "ñ", "œ", "Œ", "æ", "Æ", NULL };

static bool s_in(const char *const *list, const char *s)
{
    for (const char *const *k = list; *k; k++)
        if (strcmp(*k, s) == 0)
            return true;
    return false;
}

static bool s_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* NULL when the keyword is fine, else why not. */
static const char *s_keyword_bad(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 100)
        return "a keyword is 1 to 100 bytes";
    bool letter_last = false;
    for (const char *p = k; *p;) {
        unsigned char c = (unsigned char) *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            letter_last = true;
            p++;
            continue;
        }
        if (c == ' ' || c == '-' || c == '\'') {
            if (!letter_last)
                return "a keyword starts and ends with a letter or a digit, one space or - or ' between words";
            letter_last = false;
            p++;
            continue;
        }
        if (strncmp(p, "’", strlen("’")) == 0) {
            if (!letter_last)
                return "a keyword starts and ends with a letter or a digit, one space or - or ' between words";
            letter_last = false;
            p += strlen("’");
            continue;
        }
        const char *const *l;
        for (l = s_letters; *l; l++)
            if (strncmp(p, *l, strlen(*l)) == 0)
                break;
        if (!*l)
            return "a keyword holds letters (French accents allowed), digits, spaces, - and ' only "
                   "(no regular expression: the words are matched whole)";
        letter_last = true;
        p += strlen(*l);
    }
    if (!letter_last)
        return "a keyword starts and ends with a letter or a digit, one space or - or ' between words";
    return NULL;
}

/* A scalar or a sequence of scalars as a JSON array of texts; check(v) NULL = fine. */
static int s_list(const cv_yaml_doc_t *doc, const cv_yaml_node_t *n, const char *what, size_t max,
                  const char *(*check)(const char *), json_t **out, char *err, size_t errlen)
{
    json_t *a = json_array();
    *out = a;
    const cv_yaml_node_t *first = n->type == CV_YAML_SCALAR ? n : n->child;
    if (n->type == CV_YAML_MAP)
        return cv_yaml_fail(doc, n, err, errlen, "'%s': a text or a list of texts", what);
    if (!first)
        return cv_yaml_fail(doc, n, err, errlen, "'%s': an empty list (leave the key out)", what);
    for (const cv_yaml_node_t *c = first; c; c = n->type == CV_YAML_SCALAR ? NULL : c->next) {
        if (c->type != CV_YAML_SCALAR || !c->value)
            return cv_yaml_fail(doc, c, err, errlen, "'%s': a text or a list of texts", what);
        const char *why = check ? check(c->value) : NULL;
        if (why)
            return cv_yaml_fail(doc, c, err, errlen, "'%s': %s", what, why);
        for (size_t i = 0; i < json_array_size(a); i++)
            if (strcmp(json_string_value(json_array_get(a, i)), c->value) == 0)
                return cv_yaml_fail(doc, c, err, errlen, "'%s': '%s' given twice", what, c->value);
        if (json_array_size(a) >= max)
            return cv_yaml_fail(doc, c, err, errlen, "'%s': at most %zu", what, max);
        json_array_append_new(a, json_string(c->value));
    }
    return 0;
}

static const char *s_channel_bad(const char *c)
{
    return s_in(s_channels, c) ? NULL
        : "unknown channel (courrier, telephone, guichet, email, web, api, interne, autre, inconnu)";
}

static const char *s_category_bad(const char *c)
{
    size_t n = strlen(c);
    return n >= 1 && n <= 200 ? NULL : "a category is 1 to 200 characters";
}

/* The payload map as [{path, field | const}] (nested maps are objects). */
static int s_payload(const cv_yaml_doc_t *doc, const cv_yaml_node_t *n, json_t *path, int depth,
                     json_t *out, char *err, size_t errlen)
{
    if (cv_yaml_expect(doc, n, CV_YAML_MAP, "'payload' (key: a field of the request)", err, errlen) < 0)
        return -1;
    if (depth > MAX_DEPTH)
        return cv_yaml_fail(doc, n, err, errlen, "'payload': at most %d levels", MAX_DEPTH);
    for (const cv_yaml_node_t *c = n->child; c; c = c->next) {
        if (!s_name_ok(c->key, 64) || strchr(c->key, '.'))
            return cv_yaml_fail(doc, c, err, errlen, "payload key '%s': 1 to 64 of A-Z a-z 0-9 _ -", c->key);
        json_t *p = json_deep_copy(path);
        json_array_append_new(p, json_string(c->key));
        const cv_yaml_node_t *k = c->type == CV_YAML_MAP ? cv_yaml_get(c, "const") : NULL;
        if (c->type == CV_YAML_SCALAR) {
            if (!c->value || !s_in(s_fields, c->value)) {
                json_decref(p);
                return cv_yaml_fail(doc, c, err, errlen, "payload '%s': unknown field '%s' (fields: tracking_code, "
                                    "request_id, category, channel, service, summary, description, requested_at, "
                                    "registration_number, location.*, citizen.*; a constant is {const: TEXT})",
                                    c->key, c->value ? c->value : "");
            }
            json_array_append_new(out, json_pack("{s:o, s:s}", "path", p, "field", c->value));
        } else if (k && c->count == 1) {
            if (k->type != CV_YAML_SCALAR || !k->value) {
                json_decref(p);
                return cv_yaml_fail(doc, k, err, errlen, "payload '%s': const is a text", c->key);
            }
            json_array_append_new(out, json_pack("{s:o, s:s}", "path", p, "const", k->value));
        } else {
            int rc = s_payload(doc, c, p, depth + 1, out, err, errlen);
            json_decref(p);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static int s_services(const cv_yaml_doc_t *doc, const cv_yaml_node_t *n, const char *const *sources,
                      size_t nsources, json_t *out, char *err, size_t errlen)
{
    if (cv_yaml_expect(doc, n, CV_YAML_MAP, "'services' (name: {dispatch: ...})", err, errlen) < 0)
        return -1;
    if (!n->child)
        return cv_yaml_fail(doc, n, err, errlen, "'services': declare the default service at least");
    static const char *const keys[] = { "dispatch", NULL };
    static const char *const dkeys[] = { "source", "kind", "payload", NULL };
    for (const cv_yaml_node_t *s = n->child; s; s = s->next) {
        if (!s_name_ok(s->key, 200))
            return cv_yaml_fail(doc, s, err, errlen, "service '%s': 1 to 200 of A-Z a-z 0-9 _ - .", s->key);
        json_t *o = json_pack("{s:s}", "service", s->key);
        json_array_append_new(out, o);
        if (s->type == CV_YAML_SCALAR && (!s->value || !*s->value))
            continue;                               /* "voirie:" — a queue, no software */
        if (cv_yaml_expect(doc, s, CV_YAML_MAP, "a service ({} or {dispatch: ...})", err, errlen) < 0
            || cv_yaml_check_keys(doc, s, keys, "a service", err, errlen) < 0)
            return -1;
        const cv_yaml_node_t *d = cv_yaml_get(s, "dispatch");
        if (!d)
            continue;
        if (cv_yaml_expect(doc, d, CV_YAML_MAP, "'dispatch' ({source, kind, payload})", err, errlen) < 0
            || cv_yaml_check_keys(doc, d, dkeys, "'dispatch'", err, errlen) < 0)
            return -1;
        const char *source, *kind;
        if (cv_yaml_str(doc, d, "source", true, NULL, &source, err, errlen) < 0
            || cv_yaml_str(doc, d, "kind", true, NULL, &kind, err, errlen) < 0)
            return -1;
        size_t i;
        for (i = 0; i < nsources; i++)
            if (strcmp(sources[i], source) == 0)
                break;
        if (i == nsources)
            return cv_yaml_fail(doc, cv_yaml_get(d, "source"), err, errlen,
                                "dispatch source '%s' is not a source of the hub's configuration (its adapter "
                                "performs the command)", source);
        if (!s_name_ok(kind, 64))
            return cv_yaml_fail(doc, cv_yaml_get(d, "kind"), err, errlen,
                                "dispatch kind '%s': 1 to 64 of A-Z a-z 0-9 _ . - (a kind of the adapter's "
                                "commands.kinds)", kind);
        json_t *payload = json_array();
        json_object_set_new(o, "source", json_string(source));
        json_object_set_new(o, "kind", json_string(kind));
        json_object_set_new(o, "payload", payload);
        const cv_yaml_node_t *p = cv_yaml_get(d, "payload");
        json_t *root = json_array();
        int rc = p ? s_payload(doc, p, root, 1, payload, err, errlen) : 0;
        json_decref(root);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static bool s_service_known(const json_t *services, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(services, i, s)
        if (strcmp(json_string_value(json_object_get(s, "service")), name) == 0)
            return true;
    return false;
}

static int s_rules(const cv_yaml_doc_t *doc, const cv_yaml_node_t *n, const json_t *services, json_t *out,
                   char *err, size_t errlen)
{
    if (cv_yaml_expect(doc, n, CV_YAML_SEQ, "'rules' (a list)", err, errlen) < 0)
        return -1;
    static const char *const keys[] = { "name", "category", "channel", "keywords", "service", NULL };
    json_t *seen = json_object();                /* canonical conditions -> line */
    int rc = 0;
    for (const cv_yaml_node_t *r = n->child; r && rc == 0; r = r->next) {
        if (json_array_size(out) >= MAX_RULES) {
            rc = cv_yaml_fail(doc, r, err, errlen, "at most %d rules", MAX_RULES);
            break;
        }
        const char *name, *service;
        if (cv_yaml_expect(doc, r, CV_YAML_MAP, "a rule ({category, keywords, channel, service})", err, errlen) < 0
            || cv_yaml_check_keys(doc, r, keys, "a rule", err, errlen) < 0
            || cv_yaml_str(doc, r, "name", false, NULL, &name, err, errlen) < 0
            || cv_yaml_str(doc, r, "service", true, NULL, &service, err, errlen) < 0) {
            rc = -1;
            break;
        }
        if (!s_service_known(services, service)) {
            rc = cv_yaml_fail(doc, cv_yaml_get(r, "service"), err, errlen,
                              "unknown service '%s' (declare it under 'services')", service);
            break;
        }
        json_t *o = json_pack("{s:s}", "service", service);
        json_array_append_new(out, o);
        if (name) {
            size_t i;
            json_t *x;
            json_array_foreach(out, i, x)
                if (x != o && json_string_value(json_object_get(x, "name"))
                    && strcmp(json_string_value(json_object_get(x, "name")), name) == 0) {
                    rc = cv_yaml_fail(doc, cv_yaml_get(r, "name"), err, errlen, "rule name '%s' given twice", name);
                    break;
                }
            if (rc < 0)
                break;
            json_object_set_new(o, "name", json_string(name));
        }
        static const struct { const char *key, *out; size_t max; const char *(*check)(const char *); } conds[] = {
            { "category", "categories", 200, s_category_bad },
            { "channel", "channels", 9, s_channel_bad },
            { "keywords", "keywords", MAX_KEYWORDS, s_keyword_bad } };
        json_t *canon = json_object();
        for (size_t c = 0; c < 3 && rc == 0; c++) {
            const cv_yaml_node_t *v = cv_yaml_get(r, conds[c].key);
            if (!v)
                continue;
            json_t *a = NULL;
            rc = s_list(doc, v, conds[c].key, conds[c].max, conds[c].check, &a, err, errlen);
            if (rc == 0) {
                json_object_set(o, conds[c].out, a);
                json_object_set_new(canon, conds[c].out, a);
            } else
                json_decref(a);
        }
        if (rc == 0 && json_object_size(canon) == 0)
            rc = cv_yaml_fail(doc, r, err, errlen, "a rule needs a category, a channel or keywords "
                              "(requests no rule matches go to default_service)");
        if (rc == 0) {
            char *key = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
            json_t *line = json_object_get(seen, key);
            if (line)
                rc = cv_yaml_fail(doc, r, err, errlen, "the same conditions as the rule at line %lld: it "
                                  "would never match (first match wins)", (long long) json_integer_value(line));
            else
                json_object_set_new(seen, key, json_integer(r->line));
            free(key);
        }
        json_decref(canon);
    }
    json_decref(seen);
    return rc;
}

static int s_load(const cv_yaml_doc_t *doc, const char *const *sources, size_t nsources, json_t *out,
                  char *err, size_t errlen)
{
    const cv_yaml_node_t *root = doc->root;
    static const char *const top[] = { "default_service", "sources", "rules", "services", NULL };
    if (cv_yaml_expect(doc, root, CV_YAML_MAP, "the routing rules", err, errlen) < 0
        || cv_yaml_check_keys(doc, root, top, "the routing rules", err, errlen) < 0)
        return -1;
    const cv_yaml_node_t *svc = cv_yaml_get(root, "services");
    if (!svc)
        return cv_yaml_fail(doc, root, err, errlen, "missing required key 'services'");
    json_t *services = json_array();
    json_object_set_new(out, "services", services);
    if (s_services(doc, svc, sources, nsources, services, err, errlen) < 0)
        return -1;
    const char *dflt;
    if (cv_yaml_str(doc, root, "default_service", true, NULL, &dflt, err, errlen) < 0)
        return -1;
    if (!s_service_known(services, dflt))
        return cv_yaml_fail(doc, cv_yaml_get(root, "default_service"), err, errlen,
                            "unknown service '%s' (declare it under 'services')", dflt);
    json_object_set_new(out, "default_service", json_string(dflt));

    json_t *from = NULL;
    const cv_yaml_node_t *src = cv_yaml_get(root, "sources");
    if (src) {
        if (s_list(doc, src, "sources", 64, NULL, &from, err, errlen) < 0) {
            json_decref(from);
            return -1;
        }
        size_t i;
        json_t *x;
        const cv_yaml_node_t *c = src->type == CV_YAML_SEQ ? src->child : src;
        json_array_foreach(from, i, x) {
            const char *s = json_string_value(x);
            bool known = strcmp(s, "accueil") == 0 || strcmp(s, "open311") == 0;
            for (size_t k = 0; k < nsources && !known; k++)
                known = strcmp(sources[k], s) == 0;
            if (!known) {       /* the message first: s is the list's until it is freed */
                cv_yaml_fail(doc, c, err, errlen, "source '%s' is neither the API's (accueil, open311) "
                             "nor a source of the hub's configuration", s);
                json_decref(from);
                return -1;
            }
            c = c ? c->next : NULL;
        }
    } else {                    /* the API's two, and the city's mailbox when the hub has it */
        from = json_pack("[s, s]", "accueil", "open311");
        for (size_t k = 0; k < nsources; k++)
            if (strcmp(sources[k], "courriel") == 0)
                json_array_append_new(from, json_string("courriel"));
    }
    json_object_set_new(out, "sources", from);

    json_t *rules = json_array();
    json_object_set_new(out, "rules", rules);
    const cv_yaml_node_t *r = cv_yaml_get(root, "rules");
    return r ? s_rules(doc, r, services, rules, err, errlen) : 0;
}

char *cv_routing_load(const char *path, const char *const *sources, size_t nsources, size_t *nrules,
                      char *err, size_t errlen)
{
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, errlen);
    if (!doc)
        return NULL;
    json_t *out = json_object();
    char *text = NULL;
    if (!doc->root)
        cv_yaml_fail(doc, NULL, err, errlen, "empty file: give 'default_service' and 'services'");
    else if (s_load(doc, sources, nsources, out, err, errlen) == 0) {
        *nrules = json_array_size(json_object_get(out, "rules"));
        text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    }
    json_decref(out);
    cv_yaml_destroy(&doc);
    return text;
}

int cv_routing_apply(const char *conninfo, const char *rules, char *err, size_t errlen)
{
    return cv_store_once(conninfo, "SELECT cv_routing_set($1::jsonb)", rules, "routing", NULL, 0, err, errlen);
}
