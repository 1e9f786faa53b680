/*  fuzz_template — a city-edited mail template (notify/cv_template.c), as
    civibus-notify loads and renders it.

    Input: one option byte (which values to render with), then NAME.txt,
    then optionally "\n====\n" and NAME.html; both are written as files and
    loaded with cv_template_load, as at start-up.

    Checked: a refused template says "file:line: reason"; a loaded one
    renders, with values full of markup and CR/LF, (1) a subject whose
    control characters are only the template's own, (2) HTML whose < " '
    are only the template's own (every value escaped), (3) a text that is
    exactly the literal parts and the values (no value expanded again), and
    the same bytes twice.

    The Makefile's fuzz build compiles the hub's, adapters' and API's
    sources, not notify/'s: the one file fuzzed is compiled in here. */
#include "fuzz_util.h"

#include <string.h>

#include "../../../notify/cv_template.c"

static const char *const ALLOWED[] = { "code", "statut", "lien", "categorie", "service", "ville", "date",
                                       "liste", "nombre_retard", "nombre_bientot", "nombre", NULL };
static const char *s_value_text;

static const char *s_value(void *arg, const char *name)
{
    return s_value_text;
}

static size_t s_count(const doc_t *d, bool literals, int c)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nparts; i++)
        if (!d->parts[i].name[0] && literals)
            for (size_t k = 0; k < d->parts[i].n; k++)
                n += c < 0 ? ((unsigned char) d->parts[i].p[k] < ' ' || d->parts[i].p[k] == 0x7f)
                           : d->parts[i].p[k] == c;
    return n;
}

static bool s_known(const doc_t *d)
{
    for (size_t i = 0; i < d->nparts; i++) {
        bool ok = !d->parts[i].name[0];
        for (const char *const *a = ALLOWED; !ok && *a; a++)
            ok = strcmp(*a, d->parts[i].name) == 0;
        if (!ok)
            return false;
    }
    return true;
}

static size_t s_count_buf(const cv_buf_t *b, int c)
{
    size_t n = 0;
    for (size_t k = 0; b->data && k < b->len; k++)
        n += c < 0 ? ((unsigned char) b->data[k] < ' ' || b->data[k] == 0x7f) : b->data[k] == c;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        fuzz_quiet();
        once = true;
    }
    if (size < 1 || size > (256 << 10))
        return 0;
    static const char *const values[] = { "<b>\"x\" & 'y'</b>\r\nBcc: a@b\t{{code}}", "", NULL, "é\x7f\x01" };
    s_value_text = values[data[0] % 4];
    const char *in = (const char *) data + 1;
    size_t n = size - 1;
    const char *sep = memmem(in, n, "\n====\n", 6);
    size_t tn = sep ? (size_t) (sep - in) : n;
    if (!fuzz_put("t.txt", in, tn) || !fuzz_put("t.html", sep ? sep + 6 : "", sep ? n - tn - 6 : 0))
        return 0;
    char err[1024] = "";
    cv_template_t *t = cv_template_load(fuzz_dir(), "t", ALLOWED, err, sizeof err);
    if (!t) {
        fuzz_check(fuzz_error_form(err), "error \"%s\"", err);
        return 0;
    }
    cv_buf_t s = { 0 }, x = { 0 }, h = { 0 }, s2 = { 0 }, x2 = { 0 }, h2 = { 0 };
    fuzz_check(cv_template_render(t, s_value, NULL, &s, &x, &h) == 0, "render failed");
    cv_template_render(t, s_value, NULL, &s2, &x2, &h2);
    fuzz_check(s.len == s2.len && x.len == x2.len && h.len == h2.len &&
               (!s.len || !memcmp(s.data, s2.data, s.len)) && (!x.len || !memcmp(x.data, x2.data, x.len)) &&
               (!h.len || !memcmp(h.data, h2.data, h.len)), "two renderings differ");
    /* (1) the subject: no control character but the template's own */
    fuzz_check(s_count_buf(&s, -1) == s_count(&t->subject, true, -1), "a value wrote a control character in the subject");
    /* (2) HTML: no < " ' but the template's own */
    fuzz_check(s_count_buf(&h, '<') == s_count(&t->html, true, '<') && s_count_buf(&h, '"') == s_count(&t->html, true, '"') &&
               s_count_buf(&h, '\'') == s_count(&t->html, true, '\''), "a value wrote markup");
    /* (3) the text: the literals and the values, nothing else */
    size_t lit = 0, holes = 0, vlen = s_value_text ? strlen(s_value_text) : 0;
    for (size_t i = 0; i < t->text.nparts; i++)
        t->text.parts[i].name[0] ? holes++ : (lit += t->text.parts[i].n);
    fuzz_check(x.len == lit + holes * vlen, "text of %zu bytes, not %zu + %zu x %zu", x.len, lit, holes, vlen);
    /* every placeholder kept is one of the allowed names */
    fuzz_check(s_known(&t->subject) && s_known(&t->text) && s_known(&t->html), "an unknown placeholder loaded");
    cv_buf_free(&s), cv_buf_free(&x), cv_buf_free(&h), cv_buf_free(&s2), cv_buf_free(&x2), cv_buf_free(&h2);
    cv_template_destroy(&t);
    return 0;
}
