/*  cv_yaml — see cv_yaml.h.

    The loader walks libyaml's event stream with an explicit stack of open
    collections: a scalar or a new collection is attached to the collection
    on top of the stack; inside a map, scalars alternate between key and
    value, so a pending key is kept on the stack entry. */

#include "cv_yaml.h"
#include "cv_alloc.h"


#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define CV_YAML_MAX_DEPTH 32
#define CV_YAML_MAX_FILE (4 * 1024 * 1024)

typedef struct {
    cv_yaml_node_t *node;
    cv_yaml_node_t *last;          /* last child, for O(1) append */
    char *pending_key;             /* maps: key waiting for its value */
    int pending_key_line;
} frame_t;

static void s_node_free(cv_yaml_node_t *n)
{
    while (n) {
        cv_yaml_node_t *next = n->next;
        s_node_free(n->child);
        free(n->key);
        free(n->value);
        free(n);
        n = next;
    }
}

static int s_vfail(char *err, size_t errlen, const char *file, int line, const char *fmt, va_list ap)
{
    if (!err || errlen == 0)
        return -1;
    int n = snprintf(err, errlen, "%s:%d: ", file, line);
    if (n >= 0 && (size_t) n < errlen)
        vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    return -1;
}

static int s_fail_at(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int s_fail_at(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vfail(err, errlen, file, line, fmt, ap);
    va_end(ap);
    return -1;
}

/* Attaches node to the collection on top of the stack (or makes it root). */
static int s_attach(cv_yaml_doc_t *doc, frame_t *stack, int depth, cv_yaml_node_t *node,
                    char *err, size_t errlen)
{
    if (depth == 0) {
        doc->root = node;
        return 0;
    }
    frame_t *top = &stack[depth - 1];
    if (top->node->type == CV_YAML_MAP) {
        if (!top->pending_key) {
            /* the node is a key: only scalars can be keys */
            if (node->type != CV_YAML_SCALAR) {
                s_fail_at(err, errlen, doc->file, node->line, "a map key must be a plain value");
                s_node_free(node);
                return -1;
            }
            for (cv_yaml_node_t *c = top->node->child; c; c = c->next)
                if (strcmp(c->key, node->value) == 0) {
                    s_fail_at(err, errlen, doc->file, node->line,
                              "duplicate key '%s' (first at line %d)", node->value, c->key_line);
                    s_node_free(node);
                    return -1;
                }
            top->pending_key = node->value;
            top->pending_key_line = node->line;
            node->value = NULL;
            s_node_free(node);
            return 1;              /* consumed as key */
        }
        node->key = top->pending_key;
        node->key_line = top->pending_key_line;
        top->pending_key = NULL;
    }
    if (top->last)
        top->last->next = node;
    else
        top->node->child = node;
    top->last = node;
    top->node->count++;
    return 0;
}

cv_yaml_doc_t *cv_yaml_parse(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    cv_yaml_doc_t *doc = cv_zcalloc(1, sizeof *doc);
    if (!doc)
        return NULL;
    doc->file = cv_zstrdup(name);
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);

    frame_t stack[CV_YAML_MAX_DEPTH];
    memset(stack, 0, sizeof stack);
    int depth = 0;
    int docs = 0;
    bool ok = true, done = false;

    while (ok && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            s_fail_at(err, errlen, doc->file, (int) parser.problem_mark.line + 1, "YAML syntax: %s%s%s",
                      parser.problem ? parser.problem : "error",
                      parser.context ? " " : "", parser.context ? parser.context : "");
            ok = false;
            break;
        }
        int line = (int) ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                s_fail_at(err, errlen, doc->file, line, "only one YAML document per file");
                ok = false;
            }
            break;
        case YAML_ALIAS_EVENT:
            s_fail_at(err, errlen, doc->file, line, "aliases (*name) are not supported; write the value out");
            ok = false;
            break;
        case YAML_SCALAR_EVENT: {
            cv_yaml_node_t *n = cv_zcalloc(1, sizeof *n);
            n->type = CV_YAML_SCALAR;
            n->line = line;
            n->value = cv_zstrndup((const char *) ev.data.scalar.value, ev.data.scalar.length);
            n->quoted = ev.data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE
                     || ev.data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
            if (ev.data.scalar.anchor) {
                s_fail_at(err, errlen, doc->file, line, "anchors (&name) are not supported");
                s_node_free(n);
                ok = false;
                break;
            }
            if (s_attach(doc, stack, depth, n, err, errlen) < 0)
                ok = false;
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (depth == CV_YAML_MAX_DEPTH) {
                s_fail_at(err, errlen, doc->file, line, "nesting deeper than %d levels", CV_YAML_MAX_DEPTH);
                ok = false;
                break;
            }
            cv_yaml_node_t *n = cv_zcalloc(1, sizeof *n);
            n->type = ev.type == YAML_MAPPING_START_EVENT ? CV_YAML_MAP : CV_YAML_SEQ;
            n->line = line;
            int rc = s_attach(doc, stack, depth, n, err, errlen);
            if (rc < 0) {
                ok = false;
                break;
            }
            stack[depth].node = n;
            stack[depth].last = NULL;
            stack[depth].pending_key = NULL;
            depth++;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    for (int i = 0; i < depth; i++)
        free(stack[i].pending_key);
    if (!ok) {
        cv_yaml_destroy(&doc);
        return NULL;
    }
    return doc;
}

cv_yaml_doc_t *cv_yaml_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        s_fail_at(err, errlen, path, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    /* the buffer is the file's size (plus one byte, to see it grow), not
       the 4 MiB bound: config files are a few kB, and a fuzzer loads
       millions of them */
    struct stat st;
    size_t cap = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= CV_YAML_MAX_FILE
               ? (size_t) st.st_size + 1 : CV_YAML_MAX_FILE + 1;
    char *buf = malloc(cap + 1);
    size_t len = buf ? fread(buf, 1, cap, f) : 0;
    if (buf && len == cap && cap <= CV_YAML_MAX_FILE) {     /* it grew while we read: the bound */
        char *more = realloc(buf, CV_YAML_MAX_FILE + 2);
        if (!more)
            free(buf);
        else
            len += fread(more + len, 1, CV_YAML_MAX_FILE + 1 - len, f);
        buf = more;
    }
    int rerr = ferror(f);
    fclose(f);
    if (!buf || rerr) {
        free(buf);
        s_fail_at(err, errlen, path, 0, "cannot read file");
        return NULL;
    }
    if (len > CV_YAML_MAX_FILE) {
        free(buf);
        s_fail_at(err, errlen, path, 0, "file larger than %d bytes", CV_YAML_MAX_FILE);
        return NULL;
    }
    cv_yaml_doc_t *doc = cv_yaml_parse(path, buf, len, err, errlen);
    free(buf);
    return doc;
}

void cv_yaml_destroy(cv_yaml_doc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_yaml_doc_t *self = *self_p;
    s_node_free(self->root);
    free(self->file);
    free(self);
    *self_p = NULL;
}

const cv_yaml_node_t *cv_yaml_get(const cv_yaml_node_t *map, const char *key)
{
    if (!map || map->type != CV_YAML_MAP)
        return NULL;
    for (const cv_yaml_node_t *c = map->child; c; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

int cv_yaml_fail(const cv_yaml_doc_t *doc, const cv_yaml_node_t *node,
                 char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vfail(err, errlen, doc ? doc->file : "?", node ? node->line : 1, fmt, ap);
    va_end(ap);
    return -1;
}

int cv_yaml_check_keys(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map,
                       const char *const *allowed, const char *where,
                       char *err, size_t errlen)
{
    if (!map)
        return 0;
    if (map->type != CV_YAML_MAP)
        return cv_yaml_fail(doc, map, err, errlen, "%s must be a map of key: value", where);
    for (const cv_yaml_node_t *c = map->child; c; c = c->next) {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], c->key) == 0)
                known = true;
        if (!known) {
            cv_yaml_node_t at = { .line = c->key_line };
            return cv_yaml_fail(doc, &at, err, errlen, "unknown key '%s' in %s", c->key, where);
        }
    }
    return 0;
}

int cv_yaml_expect(const cv_yaml_doc_t *doc, const cv_yaml_node_t *node, cv_yaml_type_t type,
                   const char *what, char *err, size_t errlen)
{
    static const char *names[] = { "a single value", "a map (key: value lines)", "a list" };
    if (node && node->type == type)
        return 0;
    return cv_yaml_fail(doc, node, err, errlen, "%s must be %s", what, names[type]);
}

static const cv_yaml_node_t *s_scalar(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map,
                                      const char *key, bool required, int *rc,
                                      char *err, size_t errlen)
{
    *rc = 0;
    const cv_yaml_node_t *n = cv_yaml_get(map, key);
    if (!n || (n->type == CV_YAML_SCALAR && !n->quoted
               && (strcmp(n->value, "") == 0 || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0))) {
        if (required)
            *rc = cv_yaml_fail(doc, n ? n : map, err, errlen, "missing required key '%s'", key);
        return NULL;
    }
    if (n->type != CV_YAML_SCALAR) {
        *rc = cv_yaml_fail(doc, n, err, errlen, "'%s' must be a single value", key);
        return NULL;
    }
    return n;
}

int cv_yaml_str(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key,
                bool required, const char *dflt, const char **out, char *err, size_t errlen)
{
    int rc;
    const cv_yaml_node_t *n = s_scalar(doc, map, key, required, &rc, err, errlen);
    *out = n ? n->value : dflt;
    return rc;
}

int cv_yaml_int(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key,
                bool required, int64_t dflt, int64_t min, int64_t max, int64_t *out,
                char *err, size_t errlen)
{
    int rc;
    const cv_yaml_node_t *n = s_scalar(doc, map, key, required, &rc, err, errlen);
    *out = dflt;
    if (!n)
        return rc;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(n->value, &end, 10);
    if (errno || end == n->value || *end != '\0')
        return cv_yaml_fail(doc, n, err, errlen, "'%s' must be a whole number, not '%s'", key, n->value);
    if (v < min || v > max)
        return cv_yaml_fail(doc, n, err, errlen, "'%s' must be between %lld and %lld, not %lld",
                            key, (long long) min, (long long) max, v);
    *out = v;
    return 0;
}

int cv_yaml_bool(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key,
                 bool required, bool dflt, bool *out, char *err, size_t errlen)
{
    int rc;
    const cv_yaml_node_t *n = s_scalar(doc, map, key, required, &rc, err, errlen);
    *out = dflt;
    if (!n)
        return rc;
    if (strcmp(n->value, "true") == 0 || strcmp(n->value, "yes") == 0 || strcmp(n->value, "on") == 0)
        *out = true;
    else if (strcmp(n->value, "false") == 0 || strcmp(n->value, "no") == 0 || strcmp(n->value, "off") == 0)
        *out = false;
    else
        return cv_yaml_fail(doc, n, err, errlen, "'%s' must be true or false, not '%s'", key, n->value);
    return 0;
}
