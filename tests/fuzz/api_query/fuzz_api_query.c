/*  fuzz_api_query — a query string and the Authorization header of a
    request to civibus-api: each key=value pair decoded by the server's
    %HH decoding (cv_api_server__unescape: libmicrohttpd's, with %00 made
    the invalid byte FF so that no NUL cuts a value short) and checked as
    the server checks every query value before routing
    (cv_api_server__arg_ok: UTF-8 text, values of at most 1024 bytes), then
    read by the parsers the handlers apply: limit/offset and ids
    (cv_api_parse_int), tracking codes (cv_api_tracking_code), and a bearer
    token (cv_api_token_hash). The split on '&' and '=' is
    libmicrohttpd's own and is done here the same simple way.

    Checked:
      - decoding never shortens a value with a NUL (the length it returns is
        the string's), and an accepted key or value is valid UTF-8 text, a
        value at most 1024 bytes;
      - a number parsed is the text's decimal value, within its bounds;
      - a tracking code read is 10 or 11 characters of its alphabet, the text
        upper-cased;
      - a token hashes only when it is 64 lower-case hex digits (as tokens
        are shown), to 64 lower-case hex digits. */
#include "fuzz_util.h"

#include <ctype.h>
#include <inttypes.h>
#include <strings.h>

#include "api_server.h"
#include "api_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void s_value(const char *v)
{
    int64_t n;
    if (cv_api_parse_int(v, 1, 1000, &n))
        fuzz_check(n >= 1 && n <= 1000, "limit %" PRId64, n);
    if (cv_api_parse_int(v, INT64_MIN, INT64_MAX, &n)) {
        /* the whole text is the number: written back, it is the text (but a '+' or leading zeros) */
        char back[32];
        snprintf(back, sizeof back, "%" PRId64, n);
        const char *t = v + (*v == '+' || *v == '-');
        while (*t == '0' && t[1])
            t++;
        const char *b = back + (*back == '-');
        fuzz_check(strcmp(t, b) == 0 || (n == 0 && strcmp(b, "0") == 0), "'%s' read as %" PRId64, v, n);
    }
    char code[CV_API_CODE_MAX];
    if (cv_api_tracking_code(v, code)) {
        fuzz_check((strlen(code) == 10 || strlen(code) == 11) && strspn(code, "ACDEFHJKLMNPRTUVWXY34679") == strlen(code), "code '%s'", code);
        fuzz_check(fuzz_code_from(code, v), "code '%s' from another text", code);
    }
    char hash[CV_API_TOKEN_HEX + 1];
    bool hex = strlen(v) == CV_API_TOKEN_HEX && strspn(v, "0123456789abcdef") == CV_API_TOKEN_HEX;
    bool ok = cv_api_token_hash(v, hash);
    fuzz_check(ok == hex, "token hashed %d, 64 hex digits %d", ok, hex);
    if (ok)
        fuzz_check(strlen(hash) == CV_API_TOKEN_HEX && strspn(hash, "0123456789abcdef") == CV_API_TOKEN_HEX,
                   "token hash '%s'", hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = fuzz_strndup(data, size), *save = NULL;
    if (strlen(q) != size) {         /* a NUL never reaches the server in a URL */
        free(q);
        return 0;
    }
    for (char *pair = strtok_r(q, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (eq)
            *eq = '\0';
        char *key = pair, *value = eq ? eq + 1 : NULL;
        size_t klen = cv_api_server__unescape(key);
        fuzz_check(klen == strlen(key), "key decoded to %zu bytes, a NUL after %zu", klen, strlen(key));
        if (value) {
            size_t vlen = cv_api_server__unescape(value);
            fuzz_check(vlen == strlen(value), "value decoded to %zu bytes, a NUL after %zu", vlen, strlen(value));
        }
        if (!cv_api_server__arg_ok(key, value))
            continue;
        fuzz_check(cv_api_utf8_valid(key, strlen(key), true), "a key accepted that is not UTF-8 text");
        if (value) {
            fuzz_check(strlen(value) <= 1024 && cv_api_utf8_valid(value, strlen(value), true),
                       "a value accepted that is not UTF-8 text of at most 1024 bytes");
            s_value(value);
        }
    }
    free(q);
    return 0;
}
