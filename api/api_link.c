/*  api_link — see api_link.h. */
#include "api_link.h"

#include "api_util.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define DOMAIN "civibus-link-v1:"

int cv_api_link_key_load(const char *path, unsigned char key[CV_API_LINK_KEY], char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read the link key: %s", path, strerror(errno));
        return -1;
    }
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && isspace((unsigned char) buf[n - 1]))
        buf[--n] = 0;
    size_t bin = 0;
    if (n != 2 * CV_API_LINK_KEY
        || sodium_hex2bin(key, CV_API_LINK_KEY, buf, n, NULL, &bin, NULL) != 0 || bin != CV_API_LINK_KEY) {
        sodium_memzero(buf, sizeof buf);
        snprintf(err, errlen, "%s: the link key must be 64 hex digits (civibusctl link keygen)", path);
        return -1;
    }
    sodium_memzero(buf, sizeof buf);
    return 0;
}

static void s_mac(const unsigned char key[CV_API_LINK_KEY], const char *body, size_t len,
                  unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, CV_API_LINK_KEY);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) DOMAIN, strlen(DOMAIN));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) body, len);
    crypto_auth_hmacsha256_final(&st, mac);
}

void cv_api_link_make(const unsigned char key[CV_API_LINK_KEY], int64_t citizen_id, int64_t expires,
                      char out[CV_API_LINK_MAX], char link_id[33])
{
    unsigned char rnd[16], mac[crypto_auth_hmacsha256_BYTES];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(link_id, 33, rnd, sizeof rnd);
    int n = snprintf(out, CV_API_LINK_MAX, "%lld.%lld.%s.", (long long) citizen_id,
                     (long long) expires, link_id);
    s_mac(key, out, (size_t) n - 1, mac);
    sodium_bin2hex(out + n, CV_API_LINK_MAX - (size_t) n, mac, sizeof mac);
}

int cv_api_link_check(const unsigned char key[CV_API_LINK_KEY], const char *link, int64_t now,
                      int64_t *citizen_id, char link_id[33])
{
    if (!link || strlen(link) >= CV_API_LINK_MAX)
        return -1;
    char copy[CV_API_LINK_MAX];
    snprintf(copy, sizeof copy, "%s", link);
    char *parts[4], *save = NULL, *p = copy;
    int n = 0;
    for (char *t = strtok_r(p, ".", &save); t && n < 5; t = strtok_r(NULL, ".", &save))
        if (n < 4)
            parts[n++] = t;
        else
            return -1;
    int64_t cid, exp;
    unsigned char mac[crypto_auth_hmacsha256_BYTES], given[crypto_auth_hmacsha256_BYTES];
    size_t bin = 0;
    if (n != 4 || !cv_api_parse_int(parts[0], 1, INT64_MAX, &cid)
        || !cv_api_parse_int(parts[1], 0, INT64_MAX, &exp) || strlen(parts[2]) != 32
        || strlen(parts[3]) != 64
        || sodium_hex2bin(given, sizeof given, parts[3], 64, NULL, &bin, NULL) != 0 || bin != sizeof given)
        return -1;
    for (const char *h = parts[2]; *h; h++)
        if (!isxdigit((unsigned char) *h) || isupper((unsigned char) *h))
            return -1;
    size_t body = (size_t) (parts[3] - copy) - 1;      /* "cid.exp.id" as signed */
    s_mac(key, link, body, mac);
    if (sodium_memcmp(mac, given, sizeof mac) != 0)
        return -1;
    if (exp <= now)
        return -2;
    *citizen_id = cid;
    memcpy(link_id, parts[2], 33);
    return 0;
}
