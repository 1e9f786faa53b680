/*  fuzz_yaml — lib/cv_yaml.c, which every configuration goes through (hub
    config, adapter config, mappings): the text parsed with cv_yaml_parse,
    then every node read with the typed readers the loaders use. (The
    loaders' path, cv_yaml_load, is fuzzed by fuzz_hub_config,
    fuzz_adapter_config and fuzz_mapping_load; it costs a 4 MiB buffer per
    file, which would slow this one tenfold.)

    Checked:
      - an error is "file:line: reason" with a line number;
      - the tree keeps its promises: a node's count is its number of
        children, map children have a key and no key repeats (cv_yaml_get
        finds each child by its key), sequence children have none, scalars
        have a value, lines are 1-based, nesting stays within 32 levels;
      - cv_yaml_int's value lies within the bounds it was given, and a
        reader's error names the file. */
#include "fuzz_util.h"

#include "cv_yaml.h"

static void s_error_form(const char *err, const char *file)
{
    size_t n = strlen(file);
    fuzz_check(strncmp(err, file, n) == 0 && err[n] == ':', "error without the file: %s", err);
    const char *p = err + n + 1;
    fuzz_check(*p >= '0' && *p <= '9', "error without a line: %s", err);
    while (*p >= '0' && *p <= '9')
        p++;
    fuzz_check(p[0] == ':' && p[1] == ' ', "error not file:line: reason: %s", err);
}

static void s_walk(const cv_yaml_doc_t *doc, const cv_yaml_node_t *node, int depth)
{
    fuzz_check(depth <= 33, "nesting %d", depth);
    fuzz_check(node->line >= 1, "line %d", node->line);
    if (node->type == CV_YAML_SCALAR) {
        fuzz_check(node->value && !node->child && node->count == 0, "a scalar with children");
        return;
    }
    size_t count = 0;
    char err[512];
    for (const cv_yaml_node_t *c = node->child; c; c = c->next) {
        count++;
        if (node->type == CV_YAML_MAP) {
            fuzz_check(c->key != NULL && c->key_line >= 1, "a map child without a key");
            fuzz_check(cv_yaml_get(node, c->key) == c, "key '%s' repeated or not found", c->key);
            const char *s;
            int64_t v;
            bool b;
            if (cv_yaml_str(doc, node, c->key, true, NULL, &s, err, sizeof err) < 0)
                s_error_form(err, doc->file);
            if (cv_yaml_int(doc, node, c->key, false, 7, -1000, 1000000, &v, err, sizeof err) == 0)
                fuzz_check(v >= -1000 && v <= 1000000, "int %lld out of bounds", (long long) v);
            else
                s_error_form(err, doc->file);
            if (cv_yaml_bool(doc, node, c->key, false, false, &b, err, sizeof err) < 0)
                s_error_form(err, doc->file);
        } else {
            fuzz_check(c->key == NULL, "a sequence child with a key");
        }
        s_walk(doc, c, depth + 1);
    }
    fuzz_check(count == node->count, "count %zu, %zu children", node->count, count);
    static const char *const allowed[] = { "source", "rules", "listen", "postgres", NULL };
    if (node->type == CV_YAML_MAP && cv_yaml_check_keys(doc, node, allowed, "the fuzz map", err, sizeof err) < 0)
        s_error_form(err, doc->file);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char name[] = "fuzz.yaml";
    char err[512] = "";
    cv_yaml_doc_t *doc = cv_yaml_parse(name, (const char *) data, size, err, sizeof err);
    if (!doc)
        s_error_form(err, name);
    else if (doc->root)
        s_walk(doc, doc->root, 1);
    cv_yaml_destroy(&doc);
    return 0;
}
