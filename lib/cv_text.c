/*  cv_text — see cv_text.h. */
#include "cv_text.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

size_t cv_text_blank(const char *p, size_t n, bool front)
{
    const unsigned char *s = (const unsigned char *) p;
    if (n == 0)
        return 0;
    unsigned char c = front ? s[0] : s[n - 1];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
        return 1;
    if (n >= 2 && memcmp(front ? s : s + n - 2, "\xC2\xA0", 2) == 0)
        return 2;
    if (n >= 3 && memcmp(front ? s : s + n - 3, "\xE2\x80\xAF", 3) == 0)
        return 3;
    return 0;
}

void cv_text_trim(const char **p, size_t *n)
{
    size_t k;
    while ((k = cv_text_blank(*p, *n, true))) {
        *p += k;
        *n -= k;
    }
    while ((k = cv_text_blank(*p, *n, false)))
        *n -= k;
}

char *cv_text_one_line(const char *msg, char *out, size_t len)
{
    if (!len)
        return out;
    size_t o = 0;
    for (const char *p = msg ? msg : ""; *p && o + 1 < len; p++) {
        if (*p == '\n' || *p == '\r') {
            while (p[1] == '\n' || p[1] == '\r')
                p++;
            if (!p[1])
                break;
            if (o + 3 >= len)               /* no room for "; " and a byte: stop whole */
                break;
            out[o++] = ';';
            out[o++] = ' ';
            continue;
        }
        out[o++] = *p;
    }
    out[o] = '\0';
    return out;
}

void cv_text_duration(char *out, size_t len, double s)
{
    uint64_t t = s > 0 && s < 1e9 ? (uint64_t) (s + 0.5) : 0;
    if (t >= 3600)
        snprintf(out, len, "%" PRIu64 "h%02" PRIu64 "m", t / 3600, t / 60 % 60);
    else
        snprintf(out, len, "%" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
}
