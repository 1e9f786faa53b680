/*  cv_imap_html — an HTML part reduced to plain text for the record's body:
    tags dropped (script and style with their content), block ends as line
    breaks, entities decoded. Split from cv_imap_mime.c. */
#include "cv_imap.h"

#include "cv_buf.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ HTML -> text */

static const struct { const char *name; const char *utf8; } s_entities[] = {
    { "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" }, { "apos", "'" }, { "nbsp", " " },
    { "eacute", "é" }, { "egrave", "è" }, { "ecirc", "ê" }, { "euml", "ë" }, { "agrave", "à" },
    { "acirc", "â" }, { "ccedil", "ç" }, { "ocirc", "ô" }, { "ucirc", "û" }, { "ugrave", "ù" },
    { "icirc", "î" }, { "iuml", "ï" }, { "Eacute", "É" }, { "Egrave", "È" }, { "Agrave", "À" },
    { "Ccedil", "Ç" }, { "euro", "€" }, { "laquo", "«" }, { "raquo", "»" }, { "rsquo", "’" },
    { "oelig", "œ" }, { "hellip", "…" }, { "copy", "©" },
};

static void s_codepoint(cv_buf_t *out, unsigned long cp)
{
    unsigned char b[4];
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) { cv_buf_add(out, "\xEF\xBF\xBD", 3); return; }
    if (cp < 0x80) { b[0] = (unsigned char) cp; cv_buf_add(out, b, 1); }
    else if (cp < 0x800) { b[0] = (unsigned char) (0xC0 | (cp >> 6)); b[1] = (unsigned char) (0x80 | (cp & 0x3F)); cv_buf_add(out, b, 2); }
    else if (cp < 0x10000) { b[0] = (unsigned char) (0xE0 | (cp >> 12)); b[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F)); b[2] = (unsigned char) (0x80 | (cp & 0x3F)); cv_buf_add(out, b, 3); }
    else { b[0] = (unsigned char) (0xF0 | (cp >> 18)); b[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F)); b[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F)); b[3] = (unsigned char) (0x80 | (cp & 0x3F)); cv_buf_add(out, b, 4); }
}

static bool s_tag_is(const char *tag, size_t n, const char *name)
{
    size_t l = strlen(name);
    return n >= l && strncasecmp(tag, name, l) == 0 && (n == l || !isalnum((unsigned char) tag[l]));
}

char *cv_imap_mime_html_text(const char *html, size_t len)
{
    cv_buf_t out = { 0 };
    size_t i = 0;
    bool space = false;          /* a blank is pending */
    while (i < len) {
        char c = html[i];
        if (c == '<') {
            const char *gt = memchr(html + i, '>', len - i);
            size_t end = gt ? (size_t) (gt - html) : len;
            const char *tag = html + i + 1;
            size_t tn = end - i - 1;
            bool closing = tn > 0 && tag[0] == '/';
            const char *name = closing ? tag + 1 : tag;
            size_t nn = closing ? tn - 1 : tn;
            if (tn >= 3 && strncmp(tag, "!--", 3) == 0) {           /* comment */
                const char *e = NULL;
                for (size_t k = i + 4; k + 2 < len; k++)
                    if (html[k] == '-' && html[k + 1] == '-' && html[k + 2] == '>') { e = html + k + 3; break; }
                i = e ? (size_t) (e - html) : len;
                continue;
            }
            if (!closing && (s_tag_is(name, nn, "script") || s_tag_is(name, nn, "style") || s_tag_is(name, nn, "head"))) {
                const char *which = s_tag_is(name, nn, "script") ? "</script" : s_tag_is(name, nn, "style") ? "</style" : "</head";
                size_t wl = strlen(which), k = end;
                while (k + wl <= len && strncasecmp(html + k, which, wl) != 0) k++;
                const char *e = k + wl <= len ? memchr(html + k, '>', len - k) : NULL;
                i = e ? (size_t) (e - html) + 1 : len;
                continue;
            }
            if (s_tag_is(name, nn, "br") || s_tag_is(name, nn, "p") || s_tag_is(name, nn, "div") ||
                s_tag_is(name, nn, "li") || s_tag_is(name, nn, "tr") || s_tag_is(name, nn, "h1") ||
                s_tag_is(name, nn, "h2") || s_tag_is(name, nn, "h3") || s_tag_is(name, nn, "blockquote")) {
                if (out.len && out.data[out.len - 1] != '\n')
                    cv_buf_add(&out, "\n", 1);
                space = false;
            } else {
                space = space || out.len > 0;
            }
            i = end < len ? end + 1 : len;
            continue;
        }
        if (isspace((unsigned char) c)) {
            space = out.len > 0;
            i++;
            continue;
        }
        if (space && out.len && out.data[out.len - 1] != '\n')
            cv_buf_add(&out, " ", 1);
        space = false;
        if (c == '&') {
            const char *semi = memchr(html + i, ';', len - i < 12 ? len - i : 12);
            if (semi) {
                const char *ent = html + i + 1;
                size_t el = (size_t) (semi - ent);
                bool done = false;
                if (el >= 2 && ent[0] == '#') {
                    char num[12] = { 0 };
                    memcpy(num, ent + 1, el - 1 < 11 ? el - 1 : 11);
                    char *e;
                    unsigned long cp = (num[0] == 'x' || num[0] == 'X') ? strtoul(num + 1, &e, 16) : strtoul(num, &e, 10);
                    if (*e == '\0') { s_codepoint(&out, cp); done = true; }
                } else {
                    for (size_t k = 0; k < sizeof s_entities / sizeof *s_entities; k++)
                        if (strlen(s_entities[k].name) == el && strncmp(s_entities[k].name, ent, el) == 0) {
                            cv_buf_addstr(&out, s_entities[k].utf8);
                            done = true;
                            break;
                        }
                }
                if (done) { i = (size_t) (semi - html) + 1; continue; }
            }
        }
        cv_buf_add(&out, &c, 1);
        i++;
    }
    while (out.len && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == ' '))
        out.len--;
    cv_buf_add(&out, "", 0);
    if (out.failed) { cv_buf_free(&out); return NULL; }
    return cv_buf_take(&out);
}
