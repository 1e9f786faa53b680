/*  cv_yaml — a YAML file loaded into a small tree that remembers line numbers.

    Every configuration civibus reads (hub config, adapter config, per-source
    mappings) goes through this module so that any bad line is reported the
    same way: "file:line: reason", once, by the code that knows the reason.

    The tree is plain: a node is a scalar, a map or a sequence; children form
    a singly linked list in document order; map children carry their key.
    Anchors and aliases are refused (configs stay readable top to bottom).

        char err[512];
        cv_yaml_doc_t *doc = cv_yaml_load("deploy/civibus.yaml", err, sizeof err);
        if (!doc) { fprintf(stderr, "%s\n", err); exit(2); }
        const cv_yaml_node_t *pg = cv_yaml_get(doc->root, "postgres");
        ...
        cv_yaml_destroy(&doc);
*/
#ifndef CV_YAML_H
#define CV_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { CV_YAML_SCALAR, CV_YAML_MAP, CV_YAML_SEQ } cv_yaml_type_t;

typedef struct cv_yaml_node {
    cv_yaml_type_t type;
    int line;                      /* 1-based line of the value */
    int key_line;                  /* 1-based line of the key (map children) */
    char *key;                     /* set when the node is a map value */
    char *value;                   /* set for scalars */
    bool quoted;                   /* scalar was written in quotes */
    size_t count;                  /* number of children */
    struct cv_yaml_node *child;    /* first child (maps, sequences) */
    struct cv_yaml_node *next;     /* next sibling */
} cv_yaml_node_t;

typedef struct {
    char *file;                    /* path as given to cv_yaml_load */
    cv_yaml_node_t *root;          /* NULL for an empty document */
} cv_yaml_doc_t;

/* Loads and parses a file. On failure returns NULL and writes
   "file:line: reason" into err. */
cv_yaml_doc_t *cv_yaml_load(const char *path, char *err, size_t errlen);

/* Parses YAML text (name is used in error messages). */
cv_yaml_doc_t *cv_yaml_parse(const char *name, const char *text, size_t len, char *err, size_t errlen);

void cv_yaml_destroy(cv_yaml_doc_t **self_p);

/* Child of a map by key, or NULL (also NULL when map is NULL or not a map). */
const cv_yaml_node_t *cv_yaml_get(const cv_yaml_node_t *map, const char *key);

/* Writes "file:line: <formatted reason>" into err; returns -1 so callers
   can `return cv_yaml_fail(...)`. node may be NULL (line 1 is used). */
int cv_yaml_fail(const cv_yaml_doc_t *doc, const cv_yaml_node_t *node,
                 char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Refuses keys of map that are not in the NULL-terminated list `allowed`
   ("file:line: unknown key 'x' in <where>"). Returns 0 or -1. */
int cv_yaml_check_keys(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map,
                       const char *const *allowed, const char *where,
                       char *err, size_t errlen);

/* Typed readers. Each looks up `key` in `map`; when the key is absent the
   default is stored and 0 returned, unless `required` is true (then an
   error). A value of the wrong type or out of range is an error that names
   the key, the expected form and the line. */
int cv_yaml_str(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key,
                bool required, const char *dflt, const char **out, char *err, size_t errlen);
int cv_yaml_int(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key,
                bool required, int64_t dflt, int64_t min, int64_t max, int64_t *out,
                char *err, size_t errlen);
int cv_yaml_bool(const cv_yaml_doc_t *doc, const cv_yaml_node_t *map, const char *key,
                 bool required, bool dflt, bool *out, char *err, size_t errlen);

/* Reads a map or sequence node as required type; error otherwise. */
int cv_yaml_expect(const cv_yaml_doc_t *doc, const cv_yaml_node_t *node, cv_yaml_type_t type,
                   const char *what, char *err, size_t errlen);

#endif
