/*  cv_commands_template — the templates of cv_commands (see cv_commands.c):
    `url`, `lookup_url` and header values in the `commands:` section of
    adapter.yaml (docs/commands.md).

    A template is literal text with placeholders: {key} (our reference, the
    idempotency key), {id} (the hub's command id), {kind}, {payload.a.b} (a
    field of the payload: text, number or boolean), {env:NAME} (an
    environment variable, so secrets stay out of the file); "{{" is a
    literal "{". One parser (s_parse_template) walks a template and calls a
    function for each literal run and placeholder: cv_commands_template_check
    uses it when the config is read, to refuse an unknown placeholder or a
    '{' without its '}'; cv_commands__expand uses it for each attempt, to
    fill the template in for one command (payload values URL-encoded in
    URLs). A missing payload field or environment variable fails the
    expansion with the reason. The result goes into a secret buffer
    (cv_buf), since {env:NAME} may put credentials in it. */
#include "cv_commands_int.h"

#include "cv_buf.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- templates ------------------------------------------------------------- */

/* Calls fn for each literal run and placeholder of tpl; stops at the first
   fn failure or syntax error (-1, reason in why). */
typedef int (s_part_fn)(void *arg, bool placeholder, const char *text, size_t len, char *why, size_t wlen);

static int s_parse_template(const char *tpl, s_part_fn *fn, void *arg, char *why, size_t wlen)
{
    const char *p = tpl;
    while (*p) {
        if (p[0] == '{' && p[1] == '{') {
            if (fn(arg, false, "{", 1, why, wlen) < 0)
                return -1;
            p += 2;
            continue;
        }
        if (*p == '{') {
            const char *end = strchr(p, '}');
            if (!end) {
                snprintf(why, wlen, "'{' without its '}' (write '{{' for a literal '{')");
                return -1;
            }
            if (fn(arg, true, p + 1, (size_t) (end - p - 1), why, wlen) < 0)
                return -1;
            p = end + 1;
            continue;
        }
        size_t run = strcspn(p, "{");
        if (fn(arg, false, p, run, why, wlen) < 0)
            return -1;
        p += run;
    }
    return 0;
}

static bool s_is(const char *text, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(text, word, len) == 0;
}

static bool s_starts(const char *text, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len > n && memcmp(text, prefix, n) == 0;
}

static int s_check_part(void *arg, bool placeholder, const char *text, size_t len, char *why, size_t wlen)
{
    if (!placeholder || s_is(text, len, "key") || s_is(text, len, "id") || s_is(text, len, "kind")
        || s_starts(text, len, "payload.") || s_starts(text, len, "env:"))
        return 0;
    snprintf(why, wlen, "unknown placeholder '{%.*s}' (use {key}, {id}, {kind}, {payload.FIELD} or {env:NAME})",
             (int) (len > 60 ? 60 : len), text);
    return -1;
}

int cv_commands_template_check(const char *tpl, char *why, size_t len)
{
    return s_parse_template(tpl, s_check_part, NULL, why, len);
}

typedef struct {
    const cmd_t *c;
    bool url;                          /* URL-encode payload values */
    cv_buf_t out;                      /* secret: {env:NAME} may put credentials in */
} expand_t;

static int s_append(expand_t *x, const char *text, size_t len)
{
    return cv_buf_add(&x->out, text, len);
}

/* A payload value by dot path, as text (strings as they are, numbers and
   booleans printed); NULL when missing or not a scalar. */
char *cv_commands__payload_text(const json_t *payload, const char *path, size_t len)
{
    const json_t *v = payload;
    while (len > 0 && v) {
        size_t seg = 0;
        while (seg < len && path[seg] != '.')
            seg++;
        char key[128];
        if (seg >= sizeof key)
            return NULL;
        memcpy(key, path, seg);
        key[seg] = '\0';
        v = json_object_get(v, key);
        path += seg < len ? seg + 1 : seg;
        len -= seg < len ? seg + 1 : seg;
    }
    char buf[64];
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v))
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return strdup(buf);
}

static int s_expand_part(void *arg, bool placeholder, const char *text, size_t len, char *why, size_t wlen)
{
    expand_t *x = arg;
    if (!placeholder)
        return s_append(x, text, len);
    char num[24], *value = NULL;
    const char *v = NULL;
    if (s_is(text, len, "key"))
        v = x->c->key;
    else if (s_is(text, len, "kind"))
        v = x->c->kind;
    else if (s_is(text, len, "id")) {
        snprintf(num, sizeof num, "%" PRIu64, x->c->id);
        v = num;
    }
    else if (s_starts(text, len, "env:")) {
        char env[128];
        snprintf(env, sizeof env, "%.*s", (int) (len - 4), text + 4);
        v = getenv(env);
        if (!v) {
            snprintf(why, wlen, "environment variable %s is not set", env);
            return -1;
        }
    }
    else if (s_starts(text, len, "payload.")) {
        value = cv_commands__payload_text(x->c->payload, text + 8, len - 8);
        if (!value) {
            snprintf(why, wlen, "payload field '%.*s' is missing or not a text or number",
                     (int) (len - 8 > 60 ? 60 : len - 8), text + 8);
            return -1;
        }
        v = value;
    }
    if (!v) {
        snprintf(why, wlen, "unknown placeholder");
        return -1;
    }
    int rc;
    if (x->url && value) {
        char *escaped = curl_easy_escape(NULL, value, 0);
        rc = escaped ? s_append(x, escaped, strlen(escaped)) : -1;
        curl_free(escaped);
    }
    else
        rc = s_append(x, v, strlen(v));
    free(value);
    if (rc < 0)
        snprintf(why, wlen, "out of memory");
    return rc;
}

/* The template filled in for c (malloc'd), or NULL with the reason. */
char *cv_commands__expand(const char *tpl, const cmd_t *c, bool url, char *why, size_t wlen)
{
    expand_t x = { .c = c, .url = url, .out = { .secret = true } };
    if (s_append(&x, "", 0) < 0 || s_parse_template(tpl, s_expand_part, &x, why, wlen) < 0) {
        cv_buf_free(&x.out);
        return NULL;
    }
    return cv_buf_take(&x.out);
}
