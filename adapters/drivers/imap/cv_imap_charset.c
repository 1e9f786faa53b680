/*  cv_imap_charset — a mail part's bytes in its declared charset to UTF-8
    (UTF-8, ISO-8859-1/15, Windows-1252 and whatever iconv knows), invalid
    bytes as U+FFFD; an unknown charset read as UTF-8 when the bytes are, else as
    Windows-1252, and said so.
    Split from cv_imap_mime.c, which calls it for every text part and header. */
#include "cv_imap.h"

#include "cv_buf.h"

#include <iconv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- UTF-8 */

/* Appends in[0..len) to out, valid UTF-8 kept, anything else as U+FFFD;
   NUL and other C0 controls but TAB, LF and CR are dropped. */
static void s_utf8_clean(cv_buf_t *out, const unsigned char *in, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = in[i];
        if (c < 0x80) {
            if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')
                cv_buf_add(out, &in[i], 1);
            i++;
            continue;
        }
        size_t n = 0;
        uint32_t cp = 0;
        if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
        bool ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++) {
            if ((in[i + k] & 0xC0) != 0x80)
                ok = false;
            else
                cp = (cp << 6) | (in[i + k] & 0x3F);
        }
        if (ok && ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
            ok = false;
        if (ok) {
            cv_buf_add(out, &in[i], n);
            i += n;
        } else {
            cv_buf_add(out, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
}

static bool s_is_utf8(const unsigned char *in, size_t len)
{
    cv_buf_t b = { 0 };
    s_utf8_clean(&b, in, len);
    bool same = !b.failed && b.len == len && (len == 0 || memcmp(b.data, in, len) == 0);
    cv_buf_free(&b);
    return same;
}

static const char *s_iconv_name(const char *charset, bool *known)
{
    static const struct { const char *alias, *name; } names[] = {
        { "utf-8", "UTF-8" }, { "utf8", "UTF-8" }, { "us-ascii", "UTF-8" }, { "ascii", "UTF-8" },
        { "iso-8859-1", "ISO-8859-1" }, { "iso8859-1", "ISO-8859-1" }, { "latin1", "ISO-8859-1" },
        { "iso_8859-1", "ISO-8859-1" }, { "l1", "ISO-8859-1" },
        { "iso-8859-15", "ISO-8859-15" }, { "iso8859-15", "ISO-8859-15" }, { "latin-9", "ISO-8859-15" },
        { "latin9", "ISO-8859-15" }, { "iso_8859-15", "ISO-8859-15" },
        { "windows-1252", "WINDOWS-1252" }, { "cp1252", "WINDOWS-1252" }, { "x-cp1252", "WINDOWS-1252" },
    };
    *known = true;
    if (!charset || !*charset)
        return "UTF-8";
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp(charset, names[i].alias) == 0)
            return names[i].name;
    *known = false;
    return NULL;
}

char *cv_imap_mime_to_utf8(const char *charset, const char *in, size_t len, bool *unknown)
{
    bool known;
    const char *name = s_iconv_name(charset, &known);
    if (unknown)
        *unknown = !known;
    if (!name)
        name = s_is_utf8((const unsigned char *) in, len) ? "UTF-8" : "WINDOWS-1252";
    cv_buf_t out = { 0 };
    if (strcmp(name, "UTF-8") == 0) {
        s_utf8_clean(&out, (const unsigned char *) in, len);
    } else {
        iconv_t cd = iconv_open("UTF-8", name);
        if (cd == (iconv_t) -1) {
            s_utf8_clean(&out, (const unsigned char *) in, len);
        } else {
            char tmp[4096];
            char *ip = (char *) in;
            size_t il = len;
            while (il > 0) {
                char *op = tmp;
                size_t ol = sizeof tmp;
                size_t r = iconv(cd, &ip, &il, &op, &ol);
                s_utf8_clean(&out, (unsigned char *) tmp, (size_t) (op - tmp));
                if (r == (size_t) -1 && ol == sizeof tmp && il > 0) {
                    cv_buf_add(&out, "\xEF\xBF\xBD", 3);   /* a byte the charset lacks */
                    ip++;
                    il--;
                }
            }
            iconv_close(cd);
        }
    }
    cv_buf_add(&out, "", 0);
    if (out.failed) {
        cv_buf_free(&out);
        return NULL;
    }
    return cv_buf_take(&out);
}
