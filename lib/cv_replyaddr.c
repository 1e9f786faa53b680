/*  cv_replyaddr — signed reply addresses (cv_replyaddr.h has the format).

    make: split the intake address at its '@', sign the code, write
    local+code-sig@domain. read: find the addr-spec (inside <...> when
    there is one), take the part between the first '+' and the '@', split it
    at its last '-', check the code's characters and length, recompute the
    signature and compare in constant time. Nothing read is logged. */
#include "cv_replyaddr.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX "civibus-reply:"

static const char B32[] = "abcdefghijklmnopqrstuvwxyz234567";

/* sig: CV_REPLYADDR_SIG_LEN characters of base32(HMAC(key, PREFIX code)). */
static void s_sign(const unsigned char *key, size_t keylen, const char *code, char sig[CV_REPLYADDR_SIG_LEN + 1])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) PREFIX, strlen(PREFIX));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) code, strlen(code));
    crypto_auth_hmacsha256_final(&st, mac);
    unsigned bits = 0, acc = 0;
    size_t o = 0, i = 0;
    while (o < CV_REPLYADDR_SIG_LEN) {
        if (bits < 5) {
            acc = (acc << 8) | mac[i++];
            bits += 8;
        }
        sig[o++] = B32[(acc >> (bits - 5)) & 31];
        bits -= 5;
    }
    sig[o] = '\0';
    sodium_memzero(mac, sizeof mac);
}

/* A tracking code: 6 to 15 characters of [A-Z0-9]. */
static bool s_code_ok(const char *code, size_t len)
{
    if (len < 6 || len >= CV_REPLYADDR_CODE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= '0' && code[i] <= '9')))
            return false;
    return true;
}

int cv_replyaddr_make(const unsigned char *key, size_t keylen, const char *intake, const char *code,
                      char *out, size_t outlen)
{
    if (!key || keylen < CV_REPLYADDR_KEY_MIN || !intake || !code || !s_code_ok(code, strlen(code)))
        return -1;
    const char *at = strchr(intake, '@');
    if (!at || at == intake || !at[1] || strchr(at + 1, '@') || memchr(intake, '+', (size_t) (at - intake)))
        return -1;
    for (const char *p = intake; *p; p++)
        if ((unsigned char) *p <= ' ' || *p == '<' || *p == '>' || *p == '"' || (unsigned char) *p >= 0x7f)
            return -1;
    char sig[CV_REPLYADDR_SIG_LEN + 1];
    s_sign(key, keylen, code, sig);
    int n = snprintf(out, outlen, "%.*s+%s-%s%s", (int) (at - intake), intake, code, sig, at);
    return n < 0 || (size_t) n >= outlen ? -1 : 0;
}

int cv_replyaddr_read(const unsigned char *key, size_t keylen, const char *addr, size_t len,
                      char code[CV_REPLYADDR_CODE_MAX])
{
    if (!key || keylen < CV_REPLYADDR_KEY_MIN || !addr)
        return -1;
    if (len > 512)
        len = 512;
    const char *end = addr + len;
    const char *lt = memchr(addr, '<', len);
    const char *from = addr;
    if (lt) {
        const char *gt = memchr(lt, '>', (size_t) (end - lt));
        if (!gt)
            return -1;
        from = lt + 1;
        end = gt;
    }
    while (from < end && isspace((unsigned char) *from))
        from++;
    while (end > from && isspace((unsigned char) end[-1]))
        end--;
    const char *at = memchr(from, '@', (size_t) (end - from));
    if (!at)
        return -1;
    const char *plus = memchr(from, '+', (size_t) (at - from));
    if (!plus)
        return -1;
    const char *dash = NULL;
    for (const char *p = plus + 1; p < at; p++)
        if (*p == '-')
            dash = p;
    if (!dash || (size_t) (at - dash - 1) != CV_REPLYADDR_SIG_LEN)
        return -1;
    size_t clen = (size_t) (dash - plus - 1);
    char up[CV_REPLYADDR_CODE_MAX];
    if (clen >= sizeof up)
        return -1;
    for (size_t i = 0; i < clen; i++)
        up[i] = (char) toupper((unsigned char) plus[1 + i]);
    up[clen] = '\0';
    if (!s_code_ok(up, clen))
        return -1;
    char sig[CV_REPLYADDR_SIG_LEN + 1], got[CV_REPLYADDR_SIG_LEN];
    for (size_t i = 0; i < CV_REPLYADDR_SIG_LEN; i++)
        got[i] = (char) tolower((unsigned char) dash[1 + i]);
    s_sign(key, keylen, up, sig);
    if (sodium_memcmp(sig, got, CV_REPLYADDR_SIG_LEN) != 0)
        return -1;
    memcpy(code, up, clen + 1);
    return 0;
}

int cv_replyaddr_key_load(const char *path, unsigned char *key, size_t cap, size_t *keylen, char *err,
                          size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot read the reply key: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || (st.st_mode & 077)) {
        close(fd);
        snprintf(err, errlen, "%s: the reply key must be readable by its owner only (chmod 600)", path);
        return -1;
    }
    ssize_t n = read(fd, key, cap);
    close(fd);
    while (n > 0 && isspace(key[n - 1]))
        n--;
    if (n < CV_REPLYADDR_KEY_MIN) {
        snprintf(err, errlen, "%s: the reply key must hold at least %d bytes", path, CV_REPLYADDR_KEY_MIN);
        return -1;
    }
    *keylen = (size_t) n;
    return 0;
}
