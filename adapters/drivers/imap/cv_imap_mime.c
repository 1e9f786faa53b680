/*  driver_imap_mime — one raw mail (outside input, any size, any damage)
    into the record's fields.

    Headers: unfolded, the first occurrence of a field counts, RFC 2047
    encoded words (B and Q) decoded and converted to UTF-8. Body: the MIME
    tree is walked (depth <= 8, <= 200 parts); the first text/plain part that
    is not an attachment is the body, else the first text/html reduced to
    text; quoted-printable and base64 decoded; charsets UTF-8, US-ASCII,
    ISO-8859-1, ISO-8859-15 and Windows-1252 converted by iconv (an unknown
    charset is read as Windows-1252 when the bytes are not UTF-8, and named in
    "problems"); invalid UTF-8 becomes U+FFFD. Automatic mails (auto-replies,
    lists, loops, delivery reports) are marked with the reason. In a
    multipart/report; report-type=delivery-status, the first
    message/delivery-status part and the first returned headers
    (text/rfc822-headers or message/rfc822) among its own parts are kept
    aside and read by cv_imap_dsn.c into "dsn". */
#include "cv_imap.h"
#include "cv_imap_dsn.h"

#include "cv_alloc.h"
#include "cv_attach.h"
#include "cv_buf.h"
#include "cv_log.h"

#include <ctype.h>
#include <iconv.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_DEPTH 8
#define MAX_PARTS 200
#define MAX_HEADER 8192          /* a header value kept for decoding */

/* ------------------------------------------------------ transfer codings */

static int s_hex(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Quoted-printable; `header` is RFC 2047's Q (underscore is a space). */
static void s_qp(cv_buf_t *out, const char *in, size_t len, bool header)
{
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '=' && i + 2 < len && s_hex(in[i + 1]) >= 0 && s_hex(in[i + 2]) >= 0) {
            char b = (char) (s_hex(in[i + 1]) * 16 + s_hex(in[i + 2]));
            cv_buf_add(out, &b, 1);
            i += 2;
        } else if (c == '=' && !header) {
            /* soft line break: "=" then optional blanks then CRLF or LF */
            size_t j = i + 1;
            while (j < len && (in[j] == ' ' || in[j] == '\t'))
                j++;
            if (j < len && in[j] == '\r')
                j++;
            if (j < len && in[j] == '\n') {
                i = j;
            } else if (j >= len) {
                i = len;
            } else {
                cv_buf_add(out, &c, 1);
            }
        } else if (c == '_' && header) {
            cv_buf_add(out, " ", 1);
        } else {
            cv_buf_add(out, &c, 1);
        }
    }
}

static void s_base64(cv_buf_t *out, const char *in, size_t len)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char) in[i], v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') break;
        else continue;              /* line breaks, blanks, garbage */
        acc = (acc << 6) | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char b = (char) ((acc >> bits) & 0xFF);
            cv_buf_add(out, &b, 1);
        }
    }
}

/* --------------------------------------------------------------- headers */

typedef struct {
    const char *start;           /* the header block */
    size_t len;
} headers_t;

/* The raw (folded) value of the nth (0: first) field `name`, into out
   (unfolded, blanks trimmed); false when absent. */
static bool s_header_nth(const headers_t *h, const char *name, int nth, cv_buf_t *out)
{
    size_t nlen = strlen(name);
    const char *p = h->start, *end = h->start + h->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t) (end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t) (line_end - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':' && nth-- == 0) {
            const char *v = p + nlen + 1;
            cv_buf_reset(out);
            for (;;) {
                const char *e = line_end;
                if (e > v && e[-1] == '\r')
                    e--;
                if (out->len < MAX_HEADER)
                    cv_buf_add(out, v, (size_t) (e - v));
                if (!eol || eol + 1 >= end || (eol[1] != ' ' && eol[1] != '\t'))
                    break;
                v = eol + 1;
                eol = memchr(v, '\n', (size_t) (end - v));
                line_end = eol ? eol : end;
            }
            cv_buf_add(out, "", 0);          /* data is never NULL below */
            /* trim */
            size_t a = 0, b = out->len;
            while (a < b && isspace((unsigned char) out->data[a])) a++;
            while (b > a && isspace((unsigned char) out->data[b - 1])) b--;
            memmove(out->data, out->data + a, b - a);
            out->len = b - a;
            out->data[out->len] = '\0';
            return !out->failed;
        }
        p = eol ? eol + 1 : end;
    }
    return false;
}

/* A header's decoded text on one line: each run of CR, LF and TAB becomes
   one blank (an encoded "=0D=0A" cannot start a line of its own). */
static void s_one_line(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '\r' || *r == '\n' || *r == '\t') {
            if (w == s || w[-1] != ' ')
                *w++ = ' ';
            while (r[1] == '\r' || r[1] == '\n' || r[1] == '\t')
                r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static bool s_header(const headers_t *h, const char *name, cv_buf_t *out)
{
    return s_header_nth(h, name, 0, out);
}

char *cv_imap_mime_decode_header(const char *value, size_t len)
{
    cv_buf_t raw = { 0 };          /* bytes of the plain runs, as UTF-8 */
    const char *p = value, *end = value + len;
    bool last_encoded = false;
    while (p < end) {
        const char *q = NULL;
        for (const char *s = p; s + 1 < end; s++)
            if (s[0] == '=' && s[1] == '?') { q = s; break; }
        const char *c1 = NULL, *c2 = NULL, *c3 = NULL;
        if (q) {
            c1 = memchr(q + 2, '?', (size_t) (end - q - 2));
            if (c1 && c1 + 2 < end && c1[2] == '?')
                c2 = c1 + 2;
            if (c2)
                for (const char *s = c2 + 1; s + 1 < end; s++)
                    if (s[0] == '?' && s[1] == '=') { c3 = s; break; }
        }
        if (!q || !c3 || c1 - (q + 2) > 40 || (toupper((unsigned char) c1[1]) != 'B' && toupper((unsigned char) c1[1]) != 'Q')) {
            char *t = cv_imap_mime_to_utf8("utf-8", p, (size_t) (end - p), NULL);
            if (t) { cv_buf_addstr(&raw, t); free(t); }
            break;
        }
        /* the run before it: blanks between two encoded words are dropped */
        bool blank = true;
        for (const char *s = p; s < q; s++)
            if (!isspace((unsigned char) *s)) blank = false;
        if (!(blank && last_encoded) && q > p) {
            char *t = cv_imap_mime_to_utf8("utf-8", p, (size_t) (q - p), NULL);
            if (t) { cv_buf_addstr(&raw, t); free(t); }
        }
        char charset[48];
        size_t cl = (size_t) (c1 - (q + 2));
        memcpy(charset, q + 2, cl);
        charset[cl] = '\0';
        char *star = strchr(charset, '*');        /* RFC 2231 language */
        if (star) *star = '\0';
        cv_buf_t bytes = { 0 };
        if (toupper((unsigned char) c1[1]) == 'B')
            s_base64(&bytes, c2 + 1, (size_t) (c3 - c2 - 1));
        else
            s_qp(&bytes, c2 + 1, (size_t) (c3 - c2 - 1), true);
        char *t = cv_imap_mime_to_utf8(charset, bytes.data ? bytes.data : "", bytes.len, NULL);
        if (t) { cv_buf_addstr(&raw, t); free(t); }
        cv_buf_free(&bytes);
        last_encoded = true;
        p = c3 + 2;
    }
    /* line breaks inside a header are blanks: a run of them, one blank */
    cv_buf_add(&raw, "", 0);
    if (raw.failed) { cv_buf_free(&raw); return NULL; }
    char *text = cv_buf_take(&raw);
    if (text)
        s_one_line(text);
    return text;
}

/* Content-Type-like value: "type/sub; a=b; c="d"" -> lower-case type, and a
   parameter by name (unquoted). */
static void s_ctype(const char *v, char *type, size_t tlen)
{
    size_t i = 0;
    while (*v && isspace((unsigned char) *v)) v++;
    while (*v && *v != ';' && !isspace((unsigned char) *v) && i + 1 < tlen)
        type[i++] = (char) tolower((unsigned char) *v++);
    type[i] = '\0';
}

static bool s_param(const char *v, const char *name, char *out, size_t olen)
{
    size_t nlen = strlen(name);
    const char *p = strchr(v, ';');
    while (p) {
        p++;
        while (*p && isspace((unsigned char) *p)) p++;
        if (strncasecmp(p, name, nlen) == 0) {
            const char *s = p + nlen;
            while (*s == ' ') s++;
            if (*s == '=') {
                s++;
                while (*s == ' ') s++;
                size_t i = 0;
                if (*s == '"') {
                    s++;
                    while (*s && *s != '"' && i + 1 < olen) {
                        if (*s == '\\' && s[1]) s++;
                        out[i++] = *s++;
                    }
                } else {
                    while (*s && *s != ';' && !isspace((unsigned char) *s) && i + 1 < olen)
                        out[i++] = *s++;
                }
                out[i] = '\0';
                return i > 0;
            }
        }
        p = strchr(p, ';');
    }
    return false;
}

/* ------------------------------------------------------------------ date */

bool cv_imap_mime_date(const char *v, char out[21])
{
    static const char *months = "janfebmaraprmayjunjulaugsepoctnovdec";
    const char *p = strchr(v, ',');
    p = p ? p + 1 : v;
    int day, year, hh, mm, ss = 0, n = 0;
    char mon[4] = { 0 }, zone[8] = { 0 };
    if (sscanf(p, " %2d %3s %4d %2d:%2d%n", &day, mon, &year, &hh, &mm, &n) != 5)
        return false;
    p += n;
    if (*p == ':') {
        int k = 0;
        if (sscanf(p, ":%2d%n", &ss, &k) != 1) return false;
        p += k;
    }
    sscanf(p, " %7s", zone);
    char ml[4] = { (char) tolower((unsigned char) mon[0]), (char) tolower((unsigned char) mon[1]),
                   (char) tolower((unsigned char) mon[2]), 0 };
    const char *m = strstr(months, ml);
    if (!m || (m - months) % 3 || strlen(ml) != 3) return false;
    if (year < 100) year += year < 50 ? 2000 : 1900;
    if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970 || year > 9999 || hh < 0 || mm < 0 || ss < 0)
        return false;
    long off = 0;
    if ((zone[0] == '+' || zone[0] == '-') && isdigit((unsigned char) zone[1]) && strlen(zone) >= 5) {
        int z = atoi(zone + 1);
        off = (z / 100) * 3600L + (z % 100) * 60L;
        if (zone[0] == '-') off = -off;
    } else if (strcasecmp(zone, "EST") == 0) off = -5 * 3600; else if (strcasecmp(zone, "EDT") == 0) off = -4 * 3600;
    else if (strcasecmp(zone, "CST") == 0) off = -6 * 3600; else if (strcasecmp(zone, "CDT") == 0) off = -5 * 3600;
    else if (strcasecmp(zone, "MST") == 0) off = -7 * 3600; else if (strcasecmp(zone, "MDT") == 0) off = -6 * 3600;
    else if (strcasecmp(zone, "PST") == 0) off = -8 * 3600; else if (strcasecmp(zone, "PDT") == 0) off = -7 * 3600;
    struct tm tm = { .tm_year = year - 1900, .tm_mon = (int) ((m - months) / 3), .tm_mday = day,
                     .tm_hour = hh, .tm_min = mm, .tm_sec = ss > 59 ? 59 : ss };
    time_t t = timegm(&tm) - off;
    struct tm u;
    if (!gmtime_r(&t, &u)) return false;
    return strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &u) == 20;
}

/* ------------------------------------------------------------- MIME tree */

typedef struct {
    char *plain;                 /* first text/plain body, UTF-8 */
    char *html;                  /* first text/html body, as text */
    int parts;
    int attachments;
    bool report;                 /* a multipart/report (DSN, MDN) */
    int dsn_depth;               /* depth of a delivery-status report's own parts; 0: none */
    const char *dsn_body, *ret_body;  /* its delivery-status part, its returned headers; NULL: none */
    size_t dsn_len, ret_len;
    char dsn_cte[32], ret_cte[32];
    bool unknown_charset;
    bool truncated_tree;
    const cv_imap_mime_opts_t *opts;
    json_t *files;               /* kept: [{sha256, mime, size, name}] */
    json_t *problems;
} walk_t;

static void s_split(const char *raw, size_t len, headers_t *h, const char **body, size_t *blen)
{
    const char *p = raw, *end = raw + len;
    h->start = raw;
    /* an empty header block: the mail starts with a blank line */
    if (len >= 1 && raw[0] == '\n') { h->len = 0; *body = raw + 1; *blen = len - 1; return; }
    if (len >= 2 && raw[0] == '\r' && raw[1] == '\n') { h->len = 0; *body = raw + 2; *blen = len - 2; return; }
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t) (end - p));
        if (!eol) break;
        const char *next = eol + 1;
        if (next < end && next[0] == '\n') { h->len = (size_t) (next - raw); *body = next + 1; *blen = (size_t) (end - *body); return; }
        if (next + 1 < end && next[0] == '\r' && next[1] == '\n') { h->len = (size_t) (next - raw); *body = next + 2; *blen = (size_t) (end - *body); return; }
        p = next;
    }
    h->len = len;
    *body = end;
    *blen = 0;
}

/* A part's bytes, transfer-decoded (quoted-printable, base64, or as they are). */
static void s_decode_part(cv_buf_t *out, const char *cte, const char *body, size_t len)
{
    if (strcmp(cte, "quoted-printable") == 0)
        s_qp(out, body, len, false);
    else if (strcmp(cte, "base64") == 0)
        s_base64(out, body, len);
    else
        cv_buf_add(out, body, len);
}

/* A part that is a file: decoded and kept in the attachments folder when
   the options give one (PDF, JPEG, PNG by their first bytes, size-capped:
   lib/cv_attach.h), named in "files"; one refused is a problem naming its
   rank, never its name. At most MAX_FILES files a mail. */
#define MAX_FILES 10
static void s_keep_file(walk_t *w, const char *body, size_t blen, const char *cte, const char *filename)
{
    if (!w->opts || !w->opts->attach_dir || !w->files)
        return;
    char why[160];
    if (json_array_size(w->files) >= MAX_FILES) {
        snprintf(why, sizeof why, "file %d not kept: at most %d files a mail", w->attachments, MAX_FILES);
        json_array_append_new(w->problems, json_string(why));
        return;
    }
    cv_buf_t dec = { 0 };
    s_decode_part(&dec, cte, body, blen);
    size_t max = w->opts->attach_max_bytes ? w->opts->attach_max_bytes : (size_t) 10 << 20;
    /* what the person could fix is said by its rank (never the file's name, nor a path) */
    const char *refused = dec.failed ? "out of memory" : dec.len == 0 ? "empty"
                        : dec.len > max ? "larger than max_attachment_bytes"
                        : !cv_attach_sniff(dec.data, dec.len) ? "not a PDF, JPEG or PNG file" : NULL;
    cv_attach_info_t info;
    char err[256];
    if (!refused && cv_attach_put(w->opts->attach_dir, dec.data, dec.len, max, &info, err, sizeof err) < 0) {
        refused = "could not be written";
        cv_warn("imap", "an attachment could not be written: %s", err);
    }
    cv_buf_free(&dec);
    if (refused) {
        snprintf(why, sizeof why, "file %d not kept: %s", w->attachments, refused);
        json_array_append_new(w->problems, json_string(why));
        return;
    }
    /* the sender's name for it, one line, no folder, 200 bytes at most */
    char name[201];
    size_t n = 0;
    const char *base = filename;
    for (const char *q = filename; *q; q++)
        if (*q == '/' || *q == '\\')
            base = q + 1;
    for (const char *q = base; *q && n + 1 < sizeof name; q++)
        name[n++] = ((unsigned char) *q < 0x20 || *q == 0x7f) ? ' ' : *q;
    name[n] = '\0';
    while (n > 0 && ((unsigned char) name[n] & 0xC0) == 0x80) /* never half a UTF-8 character */
        name[--n] = '\0';
    json_t *f = json_pack("{s:s, s:s, s:I}", "sha256", info.sha256, "mime", info.mime, "size", (json_int_t) info.size);
    if (f && name[0])
        json_object_set_new(f, "name", json_string(name));
    if (f)
        json_array_append_new(w->files, f);
}

static void s_walk(walk_t *w, const char *raw, size_t len, int depth, const char *default_type)
{
    if (++w->parts > MAX_PARTS || depth > MAX_DEPTH) { w->truncated_tree = true; return; }
    headers_t h;
    const char *body;
    size_t blen;
    s_split(raw, len, &h, &body, &blen);
    cv_buf_t v = { 0 };
    char type[64] = "", charset[48] = "", boundary[80] = "", cte[32] = "", rtype[40] = "";
    if (s_header(&h, "Content-Type", &v)) {
        s_ctype(v.data, type, sizeof type);
        s_param(v.data, "charset", charset, sizeof charset);
        s_param(v.data, "boundary", boundary, sizeof boundary);
        s_param(v.data, "report-type", rtype, sizeof rtype);
    }
    if (!type[0] || !strchr(type, '/'))
        snprintf(type, sizeof type, "%s", default_type);
    if (s_header(&h, "Content-Transfer-Encoding", &v))
        s_ctype(v.data, cte, sizeof cte);
    bool attachment = false;
    char filename[256] = "";
    if (s_header(&h, "Content-Disposition", &v)) {
        char disp[32];
        s_ctype(v.data, disp, sizeof disp);
        attachment = strcmp(disp, "attachment") == 0;
        s_param(v.data, "filename", filename, sizeof filename);
    }
    if (!filename[0] && s_header(&h, "Content-Type", &v))
        s_param(v.data, "name", filename, sizeof filename);
    cv_buf_free(&v);

    if (strncmp(type, "multipart/", 10) == 0) {
        if (strcmp(type, "multipart/report") == 0) w->report = true;
        if (!boundary[0]) return;
        const char *child_default = strcmp(type, "multipart/digest") == 0 ? "message/rfc822" : "text/plain";
        int saved_dsn = w->dsn_depth;    /* the report's own parts only, not deeper ones */
        w->dsn_depth = strcmp(type, "multipart/report") == 0 && strcasecmp(rtype, "delivery-status") == 0 ? depth + 1 : 0;
        size_t bl = strlen(boundary);
        const char *p = body, *end = body + blen, *part = NULL;
        bool closed = false;
        while (p < end && !closed) {
            const char *eol = memchr(p, '\n', (size_t) (end - p));
            const char *le = eol ? eol : end;
            if (le - p >= (long) bl + 2 && p[0] == '-' && p[1] == '-' && memcmp(p + 2, boundary, bl) == 0) {
                bool last = le - p >= (long) bl + 4 && p[bl + 2] == '-' && p[bl + 3] == '-';
                if (part) {
                    const char *pe = p;
                    if (pe > part && pe[-1] == '\n') pe--;
                    if (pe > part && pe[-1] == '\r') pe--;
                    s_walk(w, part, (size_t) (pe - part), depth + 1, child_default);
                }
                closed = last;
                part = eol ? eol + 1 : end;
            }
            p = eol ? eol + 1 : end;
        }
        if (!closed && part && part < end)        /* no closing boundary */
            s_walk(w, part, (size_t) (end - part), depth + 1, child_default);
        w->dsn_depth = saved_dsn;
        return;
    }
    if (w->dsn_depth != 0 && w->dsn_depth == depth) {
        if (!w->dsn_body && strcmp(type, "message/delivery-status") == 0) {
            w->dsn_body = body;
            w->dsn_len = blen;
            snprintf(w->dsn_cte, sizeof w->dsn_cte, "%s", cte);
        } else if (!w->ret_body && (strcmp(type, "text/rfc822-headers") == 0 || strcmp(type, "message/rfc822") == 0)) {
            w->ret_body = body;
            w->ret_len = blen;
            snprintf(w->ret_cte, sizeof w->ret_cte, "%s", cte);
        }
    }
    if (strcmp(type, "message/rfc822") == 0 || strcmp(type, "message/delivery-status") == 0) {
        w->attachments++;
        return;
    }
    bool plain = strcmp(type, "text/plain") == 0, html = strcmp(type, "text/html") == 0;
    if (attachment || (!plain && !html) || (plain && w->plain) || (html && (w->html || w->plain))) {
        if (attachment || (!plain && !html)) {
            w->attachments++;
            s_keep_file(w, body, blen, cte, filename);
        }
        return;
    }
    cv_buf_t dec = { 0 };
    s_decode_part(&dec, cte, body, blen);
    bool unknown = false;
    char *text = cv_imap_mime_to_utf8(charset, dec.data ? dec.data : "", dec.len, &unknown);
    cv_buf_free(&dec);
    if (unknown) w->unknown_charset = true;
    if (!text) return;
    if (plain) {
        w->plain = text;
    } else {
        w->html = cv_imap_mime_html_text(text, strlen(text));
        free(text);
    }
}

/* ------------------------------------------------------------- addresses */

/* "Name <a@b>" or "a@b (Name)" or "a@b": the address (lower-cased domain),
   and the display name decoded. */
static void s_address(const char *v, json_t *rec, const char *addr_key, const char *name_key)
{
    char addr[320] = "";
    const char *lt = strrchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt && gt - lt - 1 < (long) sizeof addr) {
        memcpy(addr, lt + 1, (size_t) (gt - lt - 1));
        addr[gt - lt - 1] = '\0';
        size_t nl = (size_t) (lt - v);
        while (nl > 0 && isspace((unsigned char) v[nl - 1])) nl--;
        const char *ns = v;
        if (nl >= 2 && ns[0] == '"' && ns[nl - 1] == '"') { ns++; nl -= 2; }
        if (name_key && nl > 0) {
            char *name = cv_imap_mime_decode_header(ns, nl);
            if (name) { json_object_set_new(rec, name_key, json_string(name)); free(name); }
        }
    } else {
        size_t i = 0;
        while (*v && isspace((unsigned char) *v)) v++;
        while (v[i] && !isspace((unsigned char) v[i]) && v[i] != ',' && i + 1 < sizeof addr) { addr[i] = v[i]; i++; }
        addr[i] = '\0';
    }
    char *at = strrchr(addr, '@');
    if (!at || at == addr || !at[1]) return;
    for (char *s = at; *s; s++) *s = (char) tolower((unsigned char) *s);
    char *clean = cv_imap_mime_to_utf8("utf-8", addr, strlen(addr), NULL);
    if (clean) { json_object_set_new(rec, addr_key, json_string(clean)); free(clean); }
}

/* ------------------------------------------------------------- automatic */

static const char *s_automatic(const headers_t *h, const walk_t *w, const char *subject, const char *from)
{
    cv_buf_t v = { 0 };
    const char *why = NULL;
    if (s_header(h, "Auto-Submitted", &v) && strncasecmp(v.data, "no", 2) != 0)
        why = "auto-submitted";
    else if (s_header(h, "Precedence", &v) && (strncasecmp(v.data, "bulk", 4) == 0 ||
             strncasecmp(v.data, "list", 4) == 0 || strncasecmp(v.data, "junk", 4) == 0))
        why = "precedence";
    else if (s_header(h, "X-Loop", &v))
        why = "x-loop";
    else if (s_header(h, "X-Autoreply", &v) || s_header(h, "X-Autorespond", &v))
        why = "x-autoreply";
    else if (w->report)
        why = "delivery-report";
    else if (s_header(h, "List-Id", &v) || s_header(h, "List-Unsubscribe", &v))
        why = "list";
    else if (s_header(h, "X-Auto-Response-Suppress", &v) && (strcasestr(v.data, "all") || strcasestr(v.data, "oof")))
        why = "x-auto-response-suppress";
    else if (s_header(h, "Return-Path", &v) && strcmp(v.data, "<>") == 0)
        why = "null-sender";
    else if (from && (strncasecmp(from, "mailer-daemon@", 14) == 0 || strncasecmp(from, "postmaster@", 11) == 0))
        why = "mailer-daemon";
    if (!why && subject) {
        static const char *prefixes[] = { "réponse automatique", "reponse automatique", "absence",
                                          "out of office", "automatic reply", "auto:", "autoreply",
                                          "undelivered mail", "delivery status notification",
                                          "mail delivery failed", "non remis", "undeliverable" };
        for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes && !why; i++)
            if (strncasecmp(subject, prefixes[i], strlen(prefixes[i])) == 0)
                why = "subject";
    }
    cv_buf_free(&v);
    return why;
}

/* ---------------------------------------------------------------- record */

static void s_set_header_text(json_t *rec, const headers_t *h, const char *field, const char *key, char **keep)
{
    cv_buf_t v = { 0 };
    if (s_header(h, field, &v)) {
        char *t = cv_imap_mime_decode_header(v.data, v.len);
        if (t) {
            json_object_set_new(rec, key, json_string(t));
            if (keep) *keep = t; else free(t);
        }
    }
    cv_buf_free(&v);
}

/* "thread": {"code", "by", "message_ids"} when the mail names a request
   (cv_imap_thread.c has the rule); nothing when it names none. */
static void s_thread(json_t *rec, const headers_t *h, const char *subject, const cv_imap_mime_opts_t *opts)
{
    static const char *const rcpt[] = { "To", "Cc", "Delivered-To", "X-Original-To" };
    cv_buf_t v = { 0 };
    char code[16] = "";
    const char *by = NULL;
    if (opts && opts->reply_key)
        for (size_t i = 0; i < sizeof rcpt / sizeof *rcpt && !by; i++)
            for (int n = 0; n < 8 && !by && s_header_nth(h, rcpt[i], n, &v); n++)
                if (cv_imap_recipient_code(opts->reply_key, opts->reply_keylen, v.data, v.len, code))
                    by = "reply_address";
    if (!by && cv_imap_subject_code(subject, code))
        by = "subject";
    json_t *ids = json_array();
    if (ids && s_header(h, "In-Reply-To", &v))
        cv_imap_msgid_hashes(v.data, v.len, ids, CV_IMAP_THREAD_IDS_MAX);
    if (ids && s_header(h, "References", &v))       /* the nearest last */
        cv_imap_msgid_hashes(v.data, v.len, ids, CV_IMAP_THREAD_IDS_MAX);
    cv_buf_free(&v);
    if (!by && !json_array_size(ids)) {
        json_decref(ids);
        return;
    }
    json_t *t = json_object();
    if (!t) {
        json_decref(ids);
        return;
    }
    if (by) {
        json_object_set_new(t, "code", json_string(code));
        json_object_set_new(t, "by", json_string(by));
    }
    if (json_array_size(ids))
        json_object_set_new(t, "message_ids", ids);
    else
        json_decref(ids);
    json_object_set_new(rec, "thread", t);
}

static void s_one_line_field(json_t *rec, const char *key)
{
    const char *v = json_string_value(json_object_get(rec, key));
    if (!v || !strpbrk(v, "\r\n\t"))
        return;
    char *copy = cv_zstrdup(v);
    if (!copy)
        return;
    s_one_line(copy);
    json_object_set_new(rec, key, json_string(copy));
    free(copy);
}

/* "dsn" (cv_imap_dsn.h): the delivery-status part's recipients, and the
   Message-ID hash of the mail it returns (its headers' Message-ID). */
static void s_dsn(json_t *rec, const walk_t *w)
{
    char hex[65];
    bool have = false;
    cv_buf_t part = { 0 }, v = { 0 };
    if (w->ret_body) {
        s_decode_part(&part, w->ret_cte, w->ret_body, w->ret_len < CV_IMAP_DSN_MAX_BYTES ? w->ret_len
                                                                                         : CV_IMAP_DSN_MAX_BYTES);
        if (!part.failed && part.len > 0) {
            headers_t rh;
            const char *rb;
            size_t rl;
            s_split(part.data, part.len, &rh, &rb, &rl);
            have = s_header(&rh, "Message-ID", &v) && cv_imap_msgid_hash(v.data, v.len, hex);
        }
        cv_buf_reset(&part);
    }
    s_decode_part(&part, w->dsn_cte, w->dsn_body, w->dsn_len < CV_IMAP_DSN_MAX_BYTES ? w->dsn_len
                                                                                     : CV_IMAP_DSN_MAX_BYTES);
    json_t *d = part.failed ? NULL : cv_imap_dsn_parse(part.data ? part.data : "", part.len, have ? hex : NULL);
    if (d)
        json_object_set_new(rec, "dsn", d);
    cv_buf_free(&part);
    cv_buf_free(&v);
}

/* Cuts s to at most max bytes at a UTF-8 character boundary. */
static bool s_cut(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) return false;
    while (max > 0 && ((unsigned char) s[max] & 0xC0) == 0x80) max--;
    s[max] = '\0';
    return true;
}

json_t *cv_imap_mime_record(const char *raw, size_t len, const cv_imap_mime_opts_t *opts)
{
    size_t max_body = opts && opts->max_body_bytes ? opts->max_body_bytes : 8192;
    json_t *rec = json_object(), *problems = json_array();
    if (!rec || !problems) { json_decref(rec); json_decref(problems); return NULL; }
    headers_t h;
    const char *body;
    size_t blen;
    s_split(raw, len, &h, &body, &blen);

    cv_buf_t v = { 0 };
    char hex[65];
    if (s_header(&h, "Message-ID", &v) && cv_imap_msgid_hash(v.data, v.len, hex)) {
        json_object_set_new(rec, "message_id_hash", json_string(hex));
    } else {
        json_array_append_new(problems, json_string("no Message-ID"));
    }
    if (s_header(&h, "From", &v)) {
        s_address(v.data, rec, "from", "from_name");
        if (!json_object_get(rec, "from"))
            json_array_append_new(problems, json_string("From without an address"));
    } else {
        json_array_append_new(problems, json_string("no From"));
    }
    if (s_header(&h, "To", &v))
        s_address(v.data, rec, "to", NULL);
    if (s_header(&h, "Reply-To", &v))
        s_address(v.data, rec, "reply_to", NULL);
    if (s_header(&h, "Date", &v)) {
        char iso[21];
        if (cv_imap_mime_date(v.data, iso))
            json_object_set_new(rec, "date", json_string(iso));
        else
            json_array_append_new(problems, json_string("unreadable Date"));
    } else {
        json_array_append_new(problems, json_string("no Date"));
    }
    char *subject = NULL;
    s_set_header_text(rec, &h, "Subject", "subject", &subject);
    s_set_header_text(rec, &h, "In-Reply-To", "in_reply_to", NULL);
    if (subject) {               /* one line: decoded CR, LF and TAB become blanks */
        s_one_line(subject);
        json_object_set_new(rec, "subject", json_string(subject));
    }
    s_one_line_field(rec, "from_name");
    s_thread(rec, &h, subject, opts);

    walk_t w = { .opts = opts, .files = json_array(), .problems = problems };
    s_walk(&w, raw, len, 0, "text/plain");
    if (json_array_size(w.files))
        json_object_set_new(rec, "files", w.files);
    else
        json_decref(w.files);
    char *text = w.plain ? w.plain : w.html;
    if (text) {
        size_t tl = strlen(text);
        while (tl > 0 && isspace((unsigned char) text[tl - 1]))
            text[--tl] = '\0';
        if (s_cut(text, max_body))
            json_object_set_new(rec, "body_truncated", json_true());
        json_object_set_new(rec, "body", json_string(text));
    } else {
        json_array_append_new(problems, json_string("no text part"));
    }
    json_object_set_new(rec, "html_only", json_boolean(!w.plain && w.html));
    json_object_set_new(rec, "attachments", json_integer(w.attachments));
    if (w.unknown_charset) json_array_append_new(problems, json_string("unknown charset"));
    if (w.truncated_tree) json_array_append_new(problems, json_string("MIME tree too deep or too wide"));
    if (w.dsn_body) s_dsn(rec, &w);

    const char *from = json_string_value(json_object_get(rec, "from"));
    const char *why = s_automatic(&h, &w, subject, from);
    json_object_set_new(rec, "automatic", json_boolean(why != NULL));
    if (why) json_object_set_new(rec, "automatic_reason", json_string(why));
    if (json_array_size(problems)) json_object_set_new(rec, "problems", problems);
    else json_decref(problems);
    free(subject);
    free(w.plain);
    free(w.html);
    cv_buf_free(&v);
    return rec;
}
