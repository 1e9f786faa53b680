/*  cv_template — the mails' texts, in files the city edits.

    A template is a folder's NAME.txt (plain text) and NAME.html: text with
    {{placeholders}}. The .txt file's first line is the subject, written
    "Objet: ..." (its own placeholders allowed), then an empty line, then the
    body. Placeholders are checked at load: an unknown one stops the start
    with "file:line: unknown placeholder {{x}}". At rendering, a value goes
    into HTML escaped (& < > " '), and into the subject with every control
    character (CR, LF, tab...) replaced by a space, so that no value can
    write markup or a header. */
#ifndef CV_TEMPLATE_H
#define CV_TEMPLATE_H

#include "cv_buf.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cv_template cv_template_t;

/* The value of a placeholder, or NULL (rendered empty). */
typedef const char *(*cv_template_value_fn)(void *arg, const char *name);

/* Loads dir/NAME.txt and dir/NAME.html; allowed: the NULL-terminated names
   the placeholders may take. NULL with err "file:line: reason". */
cv_template_t *cv_template_load(const char *dir, const char *name, const char *const *allowed, char *err,
                                size_t errlen);
void cv_template_destroy(cv_template_t **self_p);

/* Renders the subject (one line), the plain body and the HTML body. -1 when
   out of memory. */
int cv_template_render(const cv_template_t *self, cv_template_value_fn fn, void *arg, cv_buf_t *subject,
                       cv_buf_t *text, cv_buf_t *html);

/* Appends s to out HTML-escaped. */
void cv_template_html_escape(cv_buf_t *out, const char *s);

#endif
