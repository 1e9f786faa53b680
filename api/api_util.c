/*  api_util — see api_util.h. */
#include "api_util.h"

#include "cv_hash.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

bool cv_api_utf8_valid(const char *str, size_t len, bool text)
{
    const unsigned char *s = (const unsigned char *) str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c == 0 || (text && c < 0x20 && c != '\t' && c != '\n' && c != '\r') || (text && c == 0x7f))
                return false;
            i++;
            continue;
        }
        size_t n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
        else return false;
        if (len - i < n + 1)           /* truncated sequence */
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))
            || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

/* The check of an 11-character code (023_tracking_check.sql, cv_code_finish):
   sum((i + 1) * v_i) = 0 modulo 29 over its 11 characters. */
static bool s_code_checks(const char *code)
{
    static const char alphabet[] = "ACDEFHJKLMNPRTUVWXY34679";
    int sum = 0;
    for (int i = 0; i < 11; i++)
        sum += (i + 1) * (int) (strchr(alphabet, code[i]) - alphabet);
    return sum % 29 == 0;
}

cv_api_code_t cv_api_tracking_code_read(const char *in, char out[CV_API_CODE_MAX])
{
    static const char alphabet[] = "ACDEFHJKLMNPRTUVWXY34679";
    size_t n = 0;
    out[0] = '\0';
    if (!in || strlen(in) > 16)
        return CV_API_CODE_BAD;
    for (const char *p = in; *p; p++) {
        if ((*p == '-' || *p == ' ') && n > 0 && p[1])       /* "KXD7-M4RT-9C", as written on a receipt */
            continue;
        char c = (char) toupper((unsigned char) *p);
        if (n == 11 || !c || !strchr(alphabet, c))
            return CV_API_CODE_BAD;
        out[n++] = c;
    }
    out[n] = '\0';
    if (n == 10)
        return CV_API_CODE_OK;                  /* issued before the check character */
    if (n != 11)
        return CV_API_CODE_BAD;
    return s_code_checks(out) ? CV_API_CODE_OK : CV_API_CODE_MISTYPED;
}

bool cv_api_tracking_code(const char *in, char out[CV_API_CODE_MAX])
{
    return cv_api_tracking_code_read(in, out) == CV_API_CODE_OK;
}

bool cv_api_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s || strlen(s) > 19)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char) *p) && !(p == s && *p == '-'))
            return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

void cv_api_token_new(char out[CV_API_TOKEN_HEX + 1])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, CV_API_TOKEN_HEX + 1, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
}

bool cv_api_token_hash(const char *token, char out[CV_API_TOKEN_HEX + 1])
{
    if (!token || strlen(token) != CV_API_TOKEN_HEX)
        return false;
    for (const char *p = token; *p; p++)
        if (!isxdigit((unsigned char) *p) || isupper((unsigned char) *p))
            return false;
    cv_hash_bytes(token, CV_API_TOKEN_HEX, out);
    return true;
}

size_t cv_api_json_compact(char *dst, const char *src, size_t len)
{
    size_t n = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (in_string) {
            dst[n++] = c;
            if (c == '\\' && i + 1 < len)
                dst[n++] = src[++i];            /* the escaped character, whatever it is */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            dst[n++] = c;
            in_string = true;
        } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            dst[n++] = c;
        }
    }
    dst[n] = 0;
    return n;
}
