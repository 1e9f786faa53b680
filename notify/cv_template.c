/*  cv_template — see cv_template.h. A template is kept as its text and a
    list of parts (literal spans and placeholder names) found at load; the
    rendering walks the parts. */
#include "cv_template.h"

#include "cv_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;               /* into the file's text */
    size_t n;
    char name[40];               /* a placeholder when name[0] */
} part_t;

typedef struct {
    char *text;
    part_t *parts;
    size_t nparts;
} doc_t;

struct cv_template {
    doc_t subject, text, html;
};

typedef enum { ESC_NONE, ESC_HTML, ESC_LINE } esc_t;

static char *s_read(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    cv_buf_t b = { .limit = 1 << 20 };
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cv_buf_add(&b, chunk, n) < 0)
            break;
    fclose(f);
    if (b.failed) {
        cv_buf_free(&b);
        snprintf(err, errlen, "%s: longer than 1 MiB", path);
        return NULL;
    }
    *len = b.len;
    return b.data ? cv_buf_take(&b) : cv_zstrdup("");
}

/* Splits text (of the file path, starting at line `line`) into parts. */
static int s_parse(doc_t *d, const char *text, const char *path, int line, const char *const *allowed, char *err,
                   size_t errlen)
{
    size_t cap = 8;
    d->parts = cv_zcalloc(cap, sizeof *d->parts);
    const char *p = text;
    while (*p) {
        if (d->nparts + 2 > cap) {
            cap *= 2;
            d->parts = cv_zrealloc(d->parts, cap * sizeof *d->parts);
        }
        const char *o = strstr(p, "{{");
        size_t lit = o ? (size_t) (o - p) : strlen(p);
        for (size_t i = 0; i < lit; i++)
            line += p[i] == '\n';
        if (lit) {
            d->parts[d->nparts++] = (part_t) { .p = p, .n = lit };
        }
        if (!o)
            break;
        const char *c = strstr(o + 2, "}}");
        const char *s = o + 2, *e = c;
        while (c && s < e && *s == ' ')
            s++;
        while (c && e > s && e[-1] == ' ')
            e--;
        size_t n = c ? (size_t) (e - s) : 0;
        bool known = false;
        if (c && n > 0 && n < sizeof d->parts[0].name && !memchr(s, '\n', n))
            for (const char *const *a = allowed; *a; a++)
                if (strlen(*a) == n && memcmp(*a, s, n) == 0)
                    known = true;
        if (!known) {
            snprintf(err, errlen, "%s:%d: unknown placeholder {{%.*s}} (known: see docs/notifications.md)", path, line,
                     c ? (int) (n > 40 ? 40 : n) : 0, s);
            return -1;
        }
        part_t *pt = &d->parts[d->nparts++];
        memset(pt, 0, sizeof *pt);
        memcpy(pt->name, s, n);
        p = c + 2;
    }
    return 0;
}

static void s_doc_free(doc_t *d)
{
    free(d->text);
    free(d->parts);
    memset(d, 0, sizeof *d);
}

cv_template_t *cv_template_load(const char *dir, const char *name, const char *const *allowed, char *err,
                                size_t errlen)
{
    cv_template_t *t = cv_zcalloc(1, sizeof *t);
    char path[4096];
    size_t len;
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    char *txt = s_read(path, &len, err, errlen);
    if (!txt)
        goto fail;
    if (memchr(txt, 0, len)) {
        snprintf(err, errlen, "%s:1: a NUL byte", path);
        free(txt);
        goto fail;
    }
    const char *nl = strchr(txt, '\n');
    if (strncmp(txt, "Objet:", 6) != 0 || !nl) {
        snprintf(err, errlen, "%s:1: the first line is the subject, \"Objet: ...\"", path);
        free(txt);
        goto fail;
    }
    const char *s = txt + 6;
    while (*s == ' ')
        s++;
    size_t sn = (size_t) (nl - s);
    while (sn > 0 && (s[sn - 1] == '\r' || s[sn - 1] == ' '))
        sn--;
    t->subject.text = cv_zstrndup(s, sn);
    const char *body = nl + 1;
    int bodyline = 2;
    if (*body == '\n' || (*body == '\r' && body[1] == '\n')) {
        body += *body == '\r' ? 2 : 1;
        bodyline = 3;
    }
    t->text.text = cv_zstrdup(body);
    free(txt);
    if (s_parse(&t->subject, t->subject.text, path, 1, allowed, err, errlen) < 0 ||
        s_parse(&t->text, t->text.text, path, bodyline, allowed, err, errlen) < 0)
        goto fail;
    snprintf(path, sizeof path, "%s/%s.html", dir, name);
    if (!(t->html.text = s_read(path, &len, err, errlen)))
        goto fail;
    if (strlen(t->html.text) != len) {
        snprintf(err, errlen, "%s:1: a NUL byte", path);
        goto fail;
    }
    if (s_parse(&t->html, t->html.text, path, 1, allowed, err, errlen) < 0)
        goto fail;
    return t;
fail:
    cv_template_destroy(&t);
    return NULL;
}

void cv_template_destroy(cv_template_t **self_p)
{
    cv_template_t *t = *self_p;
    if (!t)
        return;
    s_doc_free(&t->subject);
    s_doc_free(&t->text);
    s_doc_free(&t->html);
    free(t);
    *self_p = NULL;
}

void cv_template_html_escape(cv_buf_t *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': cv_buf_addstr(out, "&amp;"); break;
        case '<': cv_buf_addstr(out, "&lt;"); break;
        case '>': cv_buf_addstr(out, "&gt;"); break;
        case '"': cv_buf_addstr(out, "&quot;"); break;
        case '\'': cv_buf_addstr(out, "&#39;"); break;
        default: cv_buf_add(out, s, 1);
        }
    }
}

static void s_render(const doc_t *d, esc_t esc, cv_template_value_fn fn, void *arg, cv_buf_t *out)
{
    for (size_t i = 0; i < d->nparts; i++) {
        const part_t *pt = &d->parts[i];
        if (!pt->name[0]) {
            cv_buf_add(out, pt->p, pt->n);
            continue;
        }
        const char *v = fn(arg, pt->name);
        if (!v)
            continue;
        if (esc == ESC_HTML)
            cv_template_html_escape(out, v);
        else if (esc == ESC_LINE)
            for (; *v; v++)
                cv_buf_add(out, (unsigned char) *v < ' ' || *v == 0x7f ? " " : v, 1);
        else
            cv_buf_addstr(out, v);
    }
}

int cv_template_render(const cv_template_t *self, cv_template_value_fn fn, void *arg, cv_buf_t *subject,
                       cv_buf_t *text, cv_buf_t *html)
{
    s_render(&self->subject, ESC_LINE, fn, arg, subject);
    s_render(&self->text, ESC_NONE, fn, arg, text);
    s_render(&self->html, ESC_HTML, fn, arg, html);
    if (!subject->data)
        cv_buf_addstr(subject, "");
    return subject->failed || text->failed || html->failed ? -1 : 0;
}
