/*  cv_mail — see cv_mail.h. */
#include "cv_mail.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void s_base64(cv_buf_t *out, const unsigned char *p, size_t n, bool wrap)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned) p[i] << 16 | (i + 1 < n ? (unsigned) p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = { s_b64[v >> 18 & 63], s_b64[v >> 12 & 63], i + 1 < n ? s_b64[v >> 6 & 63] : '=',
                      i + 2 < n ? s_b64[v & 63] : '=' };
        cv_buf_add(out, q, 4);
        col += 4;
        if (wrap && col >= 76) {
            cv_buf_addstr(out, "\r\n");
            col = 0;
        }
    }
    if (wrap && col)
        cv_buf_addstr(out, "\r\n");
}

bool cv_mail_addr_ok(const char *a)
{
    if (!a)
        return false;
    const char *at = strchr(a, '@');
    if (!at || at == a || !at[1] || strchr(at + 1, '@') || strlen(a) > 254)
        return false;
    for (const char *p = a; *p; p++)
        if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f || strchr("<>()[],;:\"\\", *p))
            return false;
    return true;
}

void cv_mail_message_id(const char *domain, char *out, size_t outlen)
{
    unsigned char r[16];
    char hex[33];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(hex, sizeof hex, r, sizeof r);
    snprintf(out, outlen, "%s@%s", hex, domain);
}

/* Encoded-words of at most 45 bytes each (60 base64 characters), cut on
   UTF-8 character boundaries; every control character becomes a space. */
void cv_mail_encode_word(cv_buf_t *out, const char *s)
{
    unsigned char chunk[48];
    size_t n = strlen(s), i = 0;
    bool first = true;
    if (n == 0)
        return;
    while (i < n) {
        size_t k = 0;
        while (i < n && k < 45) {
            size_t len = 1;
            unsigned char c = (unsigned char) s[i];
            if (c >= 0xF0)
                len = 4;
            else if (c >= 0xE0)
                len = 3;
            else if (c >= 0xC0)
                len = 2;
            if (i + len > n)
                len = n - i;
            if (k + len > 45)
                break;
            for (size_t j = 0; j < len; j++) {
                unsigned char b = (unsigned char) s[i + j];
                chunk[k++] = b < ' ' || b == 0x7f ? ' ' : b;
            }
            i += len;
        }
        if (!first)
            cv_buf_addstr(out, "\r\n ");
        first = false;
        cv_buf_addstr(out, "=?UTF-8?B?");
        s_base64(out, chunk, k, false);
        cv_buf_addstr(out, "?=");
    }
}

static void s_part(cv_buf_t *out, const char *boundary, const char *type, const char *body)
{
    cv_buf_addstr(out, "--");
    cv_buf_addstr(out, boundary);
    cv_buf_addstr(out, "\r\nContent-Type: ");
    cv_buf_addstr(out, type);
    cv_buf_addstr(out, "; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    s_base64(out, (const unsigned char *) body, strlen(body), true);
}

int cv_mail_compose(const cv_mail_t *m, cv_buf_t *out)
{
    if (!cv_mail_addr_ok(m->from) || !cv_mail_addr_ok(m->to) || (m->reply_to && !cv_mail_addr_ok(m->reply_to)))
        return -1;
    for (const char *p = m->message_id; *p; p++)
        if ((unsigned char) *p <= ' ' || *p == '<' || *p == '>')
            return -1;
    char date[64], boundary[64], r[17];
    unsigned char rb[8];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    randombytes_buf(rb, sizeof rb);
    sodium_bin2hex(r, sizeof r, rb, sizeof rb);
    snprintf(boundary, sizeof boundary, "=_civibus_%s", r);

    cv_buf_addstr(out, "From: ");
    if (m->from_name && *m->from_name) {
        cv_mail_encode_word(out, m->from_name);
        cv_buf_addstr(out, " ");
    }
    cv_buf_addstr(out, "<");
    cv_buf_addstr(out, m->from);
    cv_buf_addstr(out, ">\r\nTo: <");
    cv_buf_addstr(out, m->to);
    cv_buf_addstr(out, ">\r\n");
    if (m->reply_to) {
        cv_buf_addstr(out, "Reply-To: <");
        cv_buf_addstr(out, m->reply_to);
        cv_buf_addstr(out, ">\r\n");
    }
    cv_buf_addstr(out, "Subject: ");
    cv_mail_encode_word(out, m->subject);
    cv_buf_addstr(out, "\r\nDate: ");
    cv_buf_addstr(out, date);
    cv_buf_addstr(out, "\r\nMessage-ID: <");
    cv_buf_addstr(out, m->message_id);
    cv_buf_addstr(out, ">\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n"
                       "X-Auto-Response-Suppress: All\r\nContent-Type: multipart/alternative; boundary=\"");
    cv_buf_addstr(out, boundary);
    cv_buf_addstr(out, "\"\r\n\r\n");
    s_part(out, boundary, "text/plain", m->text);
    s_part(out, boundary, "text/html", m->html);
    cv_buf_addstr(out, "--");
    cv_buf_addstr(out, boundary);
    cv_buf_addstr(out, "--\r\n");
    return out->failed ? -1 : 0;
}
