/*  cv_text — see cv_text.h. */
#include "cv_text.h"

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
