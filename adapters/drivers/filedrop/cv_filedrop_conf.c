/*  driver_filedrop_conf — the `driver:` section of a file-drop adapter
    (every key is in docs/drivers/filedrop.md).

    Everything is checked here, before the driver touches a file: unknown
    keys, values out of range, a CSV separator that is also the quote, an
    inbox that is not a folder, done/ or error/ on another file system (a
    file is moved with rename, which cannot cross file systems). Each
    problem is "file:line: reason". What is kept is copied out of the YAML
    tree. */
#include "cv_filedrop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const s_keys[] = {
    "kind", "source", "inbox", "done_dir", "error_dir", "poll_ms", "order", "min_age_ms", "ignore",
    "trim", "empty", "origin_key", "origin_fields", "max_record_bytes", "batch", "csv", "xml",
    "metrics_file", NULL
};
static const char *const s_csv_keys[] = { "match", "separator", "quote", "header", "columns", "encoding", NULL };
static const char *const s_xml_keys[] = { "match", "record", "encoding", "attribute_prefix", "text_key", NULL };
static const char *const s_ignore_default[] = { ".*", "*.tmp", "*.part", "*~", NULL };

static char *s_resolve(const char *dir, const char *path)
{
    char *out;
    if (path[0] == '/' || !dir)
        return strdup(path);
    return asprintf(&out, "%s/%s", dir, path) < 0 ? NULL : out;
}

/* mkdir -p, mode 0750. */
static int s_mkdirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0750) < 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(p);
    return 0;
}

/* A list of strings: a sequence of values, or one value. */
static int s_strs(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key,
                  const char *const *dflt, cv_filedrop_strs_t *out, char *err, size_t errlen)
{
    const cv_yaml_node_t *node = cv_yaml_get(map, key);
    size_t n = 0;
    if (!node)
        while (dflt && dflt[n])
            n++;
    else if (node->type == CV_YAML_MAP)
        return cv_yaml_fail(doc, node, err, errlen, "'%s' must be a list of values", key);
    else
        n = node->type == CV_YAML_SEQ ? node->count : 1;
    if (!(out->v = calloc(n ? n : 1, sizeof *out->v)))
        return cv_yaml_fail(doc, node, err, errlen, "out of memory");
    const cv_yaml_node_t *item = node && node->type == CV_YAML_SEQ ? node->child : node;
    for (size_t i = 0; i < n; i++) {
        const char *text = node ? NULL : dflt[i];
        if (node) {
            if (item->type != CV_YAML_SCALAR || item->value[0] == '\0')
                return cv_yaml_fail(doc, item, err, errlen, "'%s' must be a list of non-empty values", key);
            text = item->value;
            item = item->next;
        }
        if (!(out->v[out->n++] = strdup(text)))
            return cv_yaml_fail(doc, node, err, errlen, "out of memory");
    }
    return 0;
}

static void s_strs_free(cv_filedrop_strs_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* A string key copied out (NULL stays NULL when absent without default). */
static int s_str(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key, bool required,
                 const char *dflt, char **out, char *err, size_t errlen)
{
    const char *v;
    if (cv_yaml_str(doc, map, key, required, dflt, &v, err, errlen) < 0)
        return -1;
    if (v && !(*out = strdup(v)))
        return cv_yaml_fail(doc, map, err, errlen, "out of memory");
    return 0;
}

/* One ASCII character; "" gives 0 when allow_none. "tab" is a tab. */
static int s_char(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key, char dflt,
                  bool allow_none, char *out, char *err, size_t errlen)
{
    const cv_yaml_node_t *node = cv_yaml_get(map, key);
    *out = dflt;
    if (!node)
        return 0;
    const char *v = node->type == CV_YAML_SCALAR ? node->value : NULL;
    if (v && strcmp(v, "tab") == 0)
        v = "\t";
    if (v && v[0] == '\0' && allow_none) {
        *out = 0;
        return 0;
    }
    if (!v || strlen(v) != 1 || (unsigned char) v[0] >= 0x80 || v[0] == '\n' || v[0] == '\r')
        return cv_yaml_fail(doc, node, err, errlen, "'%s' must be one ASCII character%s", key,
                            allow_none ? " or \"\" (none)" : "");
    *out = v[0];
    return 0;
}

static int s_csv(cv_filedrop_conf_t *c, const cv_yaml_doc_t *doc, const cv_yaml_node_t *csv, char *err, size_t errlen)
{
    static const char *const match[] = { "*.csv", NULL };
    const char *enc;
    if (cv_yaml_expect(doc, csv, CV_YAML_MAP, "'csv'", err, errlen) < 0
        || cv_yaml_check_keys(doc, csv, s_csv_keys, "the csv section", err, errlen) < 0
        || s_strs(doc, csv, "match", match, &c->csv_match, err, errlen) < 0
        || s_char(doc, csv, "separator", ';', false, &c->csv_separator, err, errlen) < 0
        || s_char(doc, csv, "quote", '"', true, &c->csv_quote, err, errlen) < 0
        || cv_yaml_bool(doc, csv, "header", false, true, &c->csv_header, err, errlen) < 0
        || s_strs(doc, csv, "columns", NULL, &c->csv_columns, err, errlen) < 0
        || cv_yaml_str(doc, csv, "encoding", false, "utf-8", &enc, err, errlen) < 0)
        return -1;
    if (c->csv_separator == c->csv_quote)
        return cv_yaml_fail(doc, cv_yaml_get(csv, "quote"), err, errlen, "the quote cannot be the separator");
    if (c->csv_separator == ' ')
        return cv_yaml_fail(doc, cv_yaml_get(csv, "separator"), err, errlen, "a space cannot be the separator "
                            "(values are trimmed)");
    if (!c->csv_header && c->csv_columns.n == 0)
        return cv_yaml_fail(doc, cv_yaml_get(csv, "header"), err, errlen, "without a header line ('header: false'), 'columns' must "
                            "name the columns");
    for (size_t i = 0; i < c->csv_columns.n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->csv_columns.v[i], c->csv_columns.v[j]) == 0)
                return cv_yaml_fail(doc, cv_yaml_get(csv, "columns"), err, errlen, "column '%s' is named twice",
                                    c->csv_columns.v[i]);
    if (cv_filedrop_text_encoding_parse(enc, &c->csv_encoding) < 0)
        return cv_yaml_fail(doc, cv_yaml_get(csv, "encoding"), err, errlen, "unknown encoding '%s' (utf-8, "
                            "windows-1252, iso-8859-15 or auto)", enc);
    c->csv_on = true;
    return 0;
}

static int s_xml(cv_filedrop_conf_t *c, const cv_yaml_doc_t *doc, const cv_yaml_node_t *xml, char *err, size_t errlen)
{
    static const char *const match[] = { "*.xml", NULL };
    if (cv_yaml_expect(doc, xml, CV_YAML_MAP, "'xml'", err, errlen) < 0
        || cv_yaml_check_keys(doc, xml, s_xml_keys, "the xml section", err, errlen) < 0
        || s_strs(doc, xml, "match", match, &c->xml_match, err, errlen) < 0
        || s_str(doc, xml, "record", true, NULL, &c->xml_record, err, errlen) < 0
        || s_str(doc, xml, "encoding", false, NULL, &c->xml_encoding, err, errlen) < 0
        || s_str(doc, xml, "attribute_prefix", false, "", &c->xml_attribute_prefix, err, errlen) < 0
        || s_str(doc, xml, "text_key", false, "_text", &c->xml_text_key, err, errlen) < 0)
        return -1;
    cv_filedrop_encoding_t enc;
    if (c->xml_encoding && strcasecmp(c->xml_encoding, "utf-8") != 0 && strcasecmp(c->xml_encoding, "utf-16") != 0
        && strcasecmp(c->xml_encoding, "us-ascii") != 0
        && (cv_filedrop_text_encoding_parse(c->xml_encoding, &enc) < 0 || enc == CV_FILEDROP_ENC_AUTO))
        return cv_yaml_fail(doc, cv_yaml_get(xml, "encoding"), err, errlen, "unknown encoding '%s' (utf-8, "
                            "utf-16, us-ascii, iso-8859-1, windows-1252, iso-8859-15)", c->xml_encoding);
    if (c->xml_text_key[0] == '\0')
        return cv_yaml_fail(doc, cv_yaml_get(xml, "text_key"), err, errlen, "'text_key' cannot be empty");
    c->xml_on = true;
    return 0;
}

static int s_origin(cv_filedrop_conf_t *c, const cv_yaml_doc_t *doc, const cv_yaml_node_t *section,
                    char *err, size_t errlen)
{
    static const char *const all[] = { "file", "format", "line", "record", NULL };
    cv_filedrop_strs_t fields = { 0 };
    if (s_str(doc, section, "origin_key", false, NULL, &c->origin_key, err, errlen) < 0
        || s_strs(doc, section, "origin_fields", all, &fields, err, errlen) < 0) {
        s_strs_free(&fields);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < fields.n && rc == 0; i++) {
        size_t k = 0;
        while (all[k] && strcmp(all[k], fields.v[i]) != 0)
            k++;
        if (!all[k])
            rc = cv_yaml_fail(doc, cv_yaml_get(section, "origin_fields"), err, errlen,
                              "unknown origin field '%s' (file, format, line, record)", fields.v[i]);
        else
            c->origin_fields |= 1u << k;
    }
    s_strs_free(&fields);
    if (rc == 0 && !c->origin_key && cv_yaml_get(section, "origin_fields"))
        rc = cv_yaml_fail(doc, cv_yaml_get(section, "origin_fields"), err, errlen,
                          "'origin_fields' needs 'origin_key' (the key the origin goes under)");
    if (rc == 0 && c->origin_key && c->origin_key[0] == '\0')
        rc = cv_yaml_fail(doc, cv_yaml_get(section, "origin_key"), err, errlen, "'origin_key' cannot be empty");
    return rc;
}

static int s_dirs(cv_filedrop_conf_t *c, const cv_yaml_doc_t *doc, const cv_yaml_node_t *section, const char *dir,
                  char *err, size_t errlen)
{
    const char *inbox, *done, *error, *metrics;
    if (cv_yaml_str(doc, section, "inbox", true, NULL, &inbox, err, errlen) < 0
        || cv_yaml_str(doc, section, "done_dir", false, NULL, &done, err, errlen) < 0
        || cv_yaml_str(doc, section, "error_dir", false, NULL, &error, err, errlen) < 0
        || cv_yaml_str(doc, section, "metrics_file", false, NULL, &metrics, err, errlen) < 0)
        return -1;
    if (metrics && (metrics[0] == '\0' || !(c->metrics_file = s_resolve(dir, metrics))))
        return cv_yaml_fail(doc, cv_yaml_get(section, "metrics_file"), err, errlen,
                            metrics[0] ? "out of memory" : "'metrics_file' cannot be empty");
    c->inbox = s_resolve(dir, inbox);
    c->done_dir = done ? s_resolve(dir, done) : s_resolve(c->inbox, "done");
    c->error_dir = error ? s_resolve(dir, error) : s_resolve(c->inbox, "error");
    if (!c->inbox || !c->done_dir || !c->error_dir)
        return cv_yaml_fail(doc, section, err, errlen, "out of memory");
    struct stat in, st;
    if (stat(c->inbox, &in) < 0)
        return cv_yaml_fail(doc, cv_yaml_get(section, "inbox"), err, errlen, "inbox '%s': %s", c->inbox,
                            strerror(errno));
    if (!S_ISDIR(in.st_mode))
        return cv_yaml_fail(doc, cv_yaml_get(section, "inbox"), err, errlen, "inbox '%s' is not a folder", c->inbox);
    const char *keys[2] = { "done_dir", "error_dir" };
    const char *paths[2] = { c->done_dir, c->error_dir };
    for (int i = 0; i < 2; i++) {
        const cv_yaml_node_t *at = cv_yaml_get(section, keys[i]) ? cv_yaml_get(section, keys[i])
                                                                   : cv_yaml_get(section, "inbox");
        if (s_mkdirs(paths[i]) < 0 || stat(paths[i], &st) < 0)
            return cv_yaml_fail(doc, at, err, errlen, "cannot create %s '%s': %s", keys[i], paths[i], strerror(errno));
        if (st.st_dev != in.st_dev)
            return cv_yaml_fail(doc, at, err, errlen, "%s '%s' must be on the same file system as the inbox "
                                "(files are moved with rename)", keys[i], paths[i]);
    }
    return 0;
}

int cv_filedrop_conf_load(cv_filedrop_conf_t *c, const cv_yaml_doc_t *doc, const cv_yaml_node_t *section, const char *dir,
                 char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    int64_t poll, age, maxrec, batch;
    const char *order, *empty;
    if (cv_yaml_check_keys(doc, section, s_keys, "the filedrop driver", err, errlen) < 0
        || cv_yaml_int(doc, section, "poll_ms", false, 1000, 10, 3600000, &poll, err, errlen) < 0
        || cv_yaml_str(doc, section, "order", false, "name", &order, err, errlen) < 0
        || cv_yaml_int(doc, section, "min_age_ms", false, 0, 0, 86400000, &age, err, errlen) < 0
        || s_strs(doc, section, "ignore", s_ignore_default, &c->ignore, err, errlen) < 0
        || cv_yaml_bool(doc, section, "trim", false, true, &c->values.trim, err, errlen) < 0
        || cv_yaml_str(doc, section, "empty", false, "omit", &empty, err, errlen) < 0
        || cv_yaml_int(doc, section, "max_record_bytes", false, 1 << 20, 256, 64 << 20, &maxrec, err, errlen) < 0
        || cv_yaml_int(doc, section, "batch", false, 1000, 1, 100000, &batch, err, errlen) < 0
        || s_origin(c, doc, section, err, errlen) < 0)
        return -1;
    c->poll_ms = (int) poll;
    c->min_age_ms = age;
    c->max_record_bytes = (size_t) maxrec;
    c->batch = (int) batch;
    if (strcmp(order, "name") != 0 && strcmp(order, "mtime") != 0)
        return cv_yaml_fail(doc, cv_yaml_get(section, "order"), err, errlen, "'order' must be name or mtime");
    c->order_mtime = order[0] == 'm';
    if (strcmp(empty, "omit") == 0)
        c->values.empty = CV_FILEDROP_EMPTY_OMIT;
    else if (strcmp(empty, "null") == 0)
        c->values.empty = CV_FILEDROP_EMPTY_NULL;
    else if (strcmp(empty, "keep") == 0)
        c->values.empty = CV_FILEDROP_EMPTY_KEEP;
    else
        return cv_yaml_fail(doc, cv_yaml_get(section, "empty"), err, errlen, "'empty' must be omit, null or keep");
    const cv_yaml_node_t *csv = cv_yaml_get(section, "csv"), *xml = cv_yaml_get(section, "xml");
    cv_yaml_node_t at = { .line = section->key_line ? section->key_line : section->line };
    if (!csv && !xml)
        return cv_yaml_fail(doc, &at, err, errlen, "the filedrop driver needs a 'csv' or an 'xml' section "
                            "(or both)");
    if ((csv && s_csv(c, doc, csv, err, errlen) < 0) || (xml && s_xml(c, doc, xml, err, errlen) < 0))
        return -1;
    return s_dirs(c, doc, section, dir, err, errlen);
}

void cv_filedrop_conf_free(cv_filedrop_conf_t *c)
{
    free(c->inbox);
    free(c->done_dir);
    free(c->error_dir);
    s_strs_free(&c->ignore);
    free(c->origin_key);
    s_strs_free(&c->csv_match);
    s_strs_free(&c->xml_match);
    s_strs_free(&c->csv_columns);
    free(c->xml_record);
    free(c->xml_encoding);
    free(c->xml_attribute_prefix);
    free(c->xml_text_key);
    free(c->metrics_file);
    memset(c, 0, sizeof *c);
}
