/*  Unit tests of lib/cv_yaml: the config tree and its "file:line: reason" errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"
#include <string.h>
#include <unistd.h>
#include <stdlib.h>

#include "cv_yaml.h"

static cv_yaml_doc_t *s_parse(const char *text, char *err, size_t len)
{
    return cv_yaml_parse("t.yaml", text, strlen(text), err, len);
}

static void test_tree(void **state)
{
    char err[256] = "";
    cv_yaml_doc_t *doc = s_parse("a: 1\nb:\n  c: \"x y\"\n  d: [1, 2, 3]\ne: ~\n", err, sizeof err);
    assert_non_null(doc);
    assert_int_equal(doc->root->type, CV_YAML_MAP);
    assert_int_equal(doc->root->count, 3);
    const cv_yaml_node_t *b = cv_yaml_get(doc->root, "b");
    assert_non_null(b);
    assert_int_equal(b->line, 3);
    const cv_yaml_node_t *c = cv_yaml_get(b, "c");
    assert_string_equal(c->value, "x y");
    assert_true(c->quoted);
    assert_int_equal(c->line, 3);
    const cv_yaml_node_t *d = cv_yaml_get(b, "d");
    assert_int_equal(d->type, CV_YAML_SEQ);
    assert_int_equal(d->count, 3);
    assert_string_equal(d->child->next->next->value, "3");
    assert_null(cv_yaml_get(doc->root, "zz"));
    assert_null(cv_yaml_get(c, "x"));            /* not a map */
    cv_yaml_destroy(&doc);
    assert_null(doc);
}

static void test_errors(void **state)
{
    char err[256];
    assert_null(s_parse("a: 1\nb: [1, 2\nc: 3\n", err, sizeof err));
    assert_non_null(strstr(err, "t.yaml:"));
    assert_non_null(strstr(err, "YAML syntax"));
    assert_null(s_parse("a: 1\nb: 2\na: 3\n", err, sizeof err));
    assert_string_equal(err, "t.yaml:3: duplicate key 'a' (first at line 1)");
    assert_null(s_parse("a: &x 1\nb: *x\n", err, sizeof err));
    assert_non_null(strstr(err, "not supported"));
    assert_null(s_parse("a: 1\n---\nb: 2\n", err, sizeof err));
    assert_non_null(strstr(err, "only one YAML document"));
}

static void test_typed(void **state)
{
    char err[256];
    cv_yaml_doc_t *doc = s_parse("n: 42\nbad: 4x\nbig: 99999\nflag: yes\nnotbool: maybe\ns: hello\nm: {x: 1}\nnull: ~\n",
                                 err, sizeof err);
    assert_non_null(doc);
    int64_t v;
    assert_int_equal(cv_yaml_int(doc, doc->root, "n", true, 0, 0, 100, &v, err, sizeof err), 0);
    assert_int_equal(v, 42);
    assert_int_equal(cv_yaml_int(doc, doc->root, "absent", false, 7, 0, 100, &v, err, sizeof err), 0);
    assert_int_equal(v, 7);
    assert_int_equal(cv_yaml_int(doc, doc->root, "absent", true, 7, 0, 100, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing required key 'absent'"));
    assert_int_equal(cv_yaml_int(doc, doc->root, "bad", true, 0, 0, 100, &v, err, sizeof err), -1);
    assert_string_equal(err, "t.yaml:2: 'bad' must be a whole number, not '4x'");
    assert_int_equal(cv_yaml_int(doc, doc->root, "big", true, 0, 0, 100, &v, err, sizeof err), -1);
    assert_string_equal(err, "t.yaml:3: 'big' must be between 0 and 100, not 99999");
    bool b;
    assert_int_equal(cv_yaml_bool(doc, doc->root, "flag", true, false, &b, err, sizeof err), 0);
    assert_true(b);
    assert_int_equal(cv_yaml_bool(doc, doc->root, "notbool", true, false, &b, err, sizeof err), -1);
    assert_string_equal(err, "t.yaml:5: 'notbool' must be true or false, not 'maybe'");
    const char *s;
    assert_int_equal(cv_yaml_str(doc, doc->root, "s", true, NULL, &s, err, sizeof err), 0);
    assert_string_equal(s, "hello");
    assert_int_equal(cv_yaml_str(doc, doc->root, "m", true, NULL, &s, err, sizeof err), -1);
    assert_string_equal(err, "t.yaml:7: 'm' must be a single value");
    assert_int_equal(cv_yaml_str(doc, doc->root, "null", false, "dflt", &s, err, sizeof err), 0);
    assert_string_equal(s, "dflt");
    static const char *const allowed[] = { "n", "bad", "big", "flag", "notbool", "s", "m", NULL };
    assert_int_equal(cv_yaml_check_keys(doc, doc->root, allowed, "the test", err, sizeof err), -1);
    assert_string_equal(err, "t.yaml:8: unknown key 'null' in the test");
    cv_yaml_destroy(&doc);
}

static void test_load_file(void **state)
{
    char err[256];
    assert_null(cv_yaml_load("/nonexistent/x.yaml", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.yaml:0: cannot open"));
    char path[] = "/tmp/cv_yaml_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\nsources:\n  - name: demo\n    keys: [a, b]\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    cv_yaml_doc_t *doc = cv_yaml_load(path, err, sizeof err);
    assert_non_null(doc);
    const cv_yaml_node_t *src = cv_yaml_get(doc->root, "sources");
    assert_int_equal(src->type, CV_YAML_SEQ);
    assert_int_equal(src->child->line, 3);
    assert_string_equal(cv_yaml_get(src->child, "name")->value, "demo");
    cv_yaml_destroy(&doc);
    unlink(path);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_typed),
        cmocka_unit_test(test_load_file),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
