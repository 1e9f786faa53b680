/*  Unit tests of notify/cv_template: the subject line "Objet: ...", the
    placeholders checked at load with file:line, and the rendering — a value
    escaped in HTML, made one line in the subject, as is in the text; a value
    that is NULL renders empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_template.h"

static const char *const ALLOWED[] = { "code", "statut", "lien", "categorie", "ville", NULL };
static char t_dir[64];

static void t_write(const char *name, const char *text, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", t_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}
#define WRITE(name, text) t_write((name), (text), strlen(text))

static int setup(void **state)
{
    snprintf(t_dir, sizeof t_dir, "/tmp/cv-test-tpl.XXXXXX");
    return mkdtemp(t_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    const char *names[] = { "t.txt", "t.html" };
    for (size_t i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", t_dir, names[i]);
        unlink(path);
    }
    return rmdir(t_dir);
}

typedef struct {
    const char *code, *statut, *categorie;
} vals_t;

static const char *t_val(void *arg, const char *name)
{
    vals_t *v = arg;
    if (!strcmp(name, "code")) return v->code;
    if (!strcmp(name, "statut")) return v->statut;
    if (!strcmp(name, "categorie")) return v->categorie;
    return NULL;                       /* lien, ville: not given */
}

typedef struct {
    cv_buf_t subj, text, html;
} out_t;

static void t_render(const cv_template_t *t, vals_t *v, out_t *o)
{
    memset(o, 0, sizeof *o);
    assert_int_equal(cv_template_render(t, t_val, v, &o->subj, &o->text, &o->html), 0);
}

static void t_free(out_t *o)
{
    cv_buf_free(&o->subj), cv_buf_free(&o->text), cv_buf_free(&o->html);
}

static void test_render(void **state)
{
    WRITE("t.txt", "Objet:   Demande {{code}} : {{ statut }}  \r\n\r\nBonjour,\n{{categorie}} [{{lien}}]\n");
    WRITE("t.html", "<p>{{categorie}}</p><a href=\"{{lien}}\">{{code}}</a>");
    char err[512] = "";
    cv_template_t *t = cv_template_load(t_dir, "t", ALLOWED, err, sizeof err);
    assert_non_null(t);
    vals_t v = { "ABC123", "en\r\ncours\tBcc: x@y", "<b>\"a\" & 'b'</b>" };
    out_t o;
    t_render(t, &v, &o);
    /* the subject: trimmed, a value's controls made spaces, nothing can end the line */
    assert_string_equal(o.subj.data, "Demande ABC123 : en  cours Bcc: x@y");
    /* the text as is (an empty line after the subject dropped; CRLF of the subject line too) */
    assert_string_equal(o.text.data, "Bonjour,\n<b>\"a\" & 'b'</b> []\n");
    /* HTML: every markup character of a value escaped; the template's own markup kept */
    assert_string_equal(o.html.data, "<p>&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;</p><a href=\"\">ABC123</a>");
    t_free(&o);

    /* a template without placeholders renders its text; the subject may be empty */
    cv_template_destroy(&t);
    assert_null(t);
    WRITE("t.txt", "Objet:\nsans valeur\n");
    WRITE("t.html", "");
    assert_non_null(t = cv_template_load(t_dir, "t", ALLOWED, err, sizeof err));
    t_render(t, &v, &o);
    assert_string_equal(o.subj.data, "");
    assert_string_equal(o.text.data, "sans valeur\n");
    assert_null(o.html.data);
    t_free(&o);
    cv_template_destroy(&t);
    cv_template_destroy(&t);            /* twice: harmless */
}

static void t_refused(const char *txt, const char *html, const char *want)
{
    WRITE("t.txt", txt);
    WRITE("t.html", html);
    char err[512] = "";
    cv_template_t *t = cv_template_load(t_dir, "t", ALLOWED, err, sizeof err);
    if (t || !strstr(err, want))
        fail_msg("wanted \"%s\", got %s \"%s\"", want, t ? "a template" : "the error", err);
}

static void test_refused(void **state)
{
    char want[256];
    t_refused("Sujet: x\n\nbody\n", "", "t.txt:1: the first line is the subject, \"Objet: ...\"");
    t_refused("Objet: x", "", "t.txt:1: the first line is the subject");   /* no line end */
    /* an unknown placeholder: named, with its line (the body starts at line 3) */
    t_refused("Objet: {{code}}\n\nun\ndeux {{nom}}\n", "", "t.txt:4: unknown placeholder {{nom}}");
    t_refused("Objet: {{nom}}\n\n", "", "t.txt:1: unknown placeholder {{nom}}");
    /* without the empty line, the body starts at line 2 */
    t_refused("Objet: x\n{{x}}\n", "", "t.txt:2: unknown placeholder {{x}}");
    snprintf(want, sizeof want, "%s/t.html:3: unknown placeholder {{prenom}}", t_dir);
    t_refused("Objet: x\n\n", "<p>\n\n{{prenom}}</p>", want);
    /* not closed, empty, across lines, too long */
    t_refused("Objet: x\n\n{{code\n", "", "t.txt:3: unknown placeholder {{}}");
    t_refused("Objet: x\n\n{{}}\n", "", "unknown placeholder {{}}");
    t_refused("Objet: x\n\n{{co\nde}}\n", "", "unknown placeholder");
    t_refused("Objet: x\n\n{{codecodecodecodecodecodecodecodecodecodecodecode}}\n", "", "unknown placeholder");
    /* a prefix of a known name is not that name */
    t_refused("Objet: x\n\n{{cod}}\n", "", "t.txt:3: unknown placeholder {{cod}}");
    /* a NUL byte */
    WRITE("t.html", "");
    t_write("t.txt", "Objet: x\n\na\0b", 13);
    char err[512] = "";
    assert_null(cv_template_load(t_dir, "t", ALLOWED, err, sizeof err));
    assert_non_null(strstr(err, "t.txt:1: a NUL byte"));
    WRITE("t.txt", "Objet: x\n\n");
    t_write("t.html", "<p>\0</p>", 8);
    assert_null(cv_template_load(t_dir, "t", ALLOWED, err, sizeof err));
    assert_non_null(strstr(err, "t.html:1: a NUL byte"));
    /* a missing file: its path */
    char path[128];
    snprintf(path, sizeof path, "%s/t.html", t_dir);
    unlink(path);
    assert_null(cv_template_load(t_dir, "t", ALLOWED, err, sizeof err));
    assert_non_null(strstr(err, path));
    WRITE("t.html", "");
    assert_null(cv_template_load(t_dir, "absent", ALLOWED, err, sizeof err));
    assert_non_null(strstr(err, "absent.txt"));
}

static void test_html_escape(void **state)
{
    cv_buf_t b = { 0 };
    cv_template_html_escape(&b, "a<b>&\"'c é");
    assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;&#39;c é");
    cv_buf_free(&b);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_html_escape),
    };
    return cv_test_end(cv_test_group(tests, setup, teardown));
}
