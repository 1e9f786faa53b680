/*  cv_hash — see cv_hash.h. The canonical form (cv_json, sorted keys) is
    written straight into the SHA-256 state through a 4 KiB buffer, never
    into a string: the hub hashes every record it receives. It is
    byte-identical to jansson's json_dumps(COMPACT | SORT_KEYS |
    ENCODE_ANY), over which the stored content hashes were taken
    (tests/unit/lib/test_json.c). */
#include "cv_hash.h"

#include <sodium.h>
#include <string.h>

#include "cv_json.h"

typedef struct {
    crypto_hash_sha256_state state;
    size_t len;
    unsigned char buf[4096];
} sink_t;

void cv_hash_bytes(const void *data, size_t len, char out[CV_HASH_HEX_LEN + 1])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data, len);
    sodium_bin2hex(out, CV_HASH_HEX_LEN + 1, digest, sizeof digest);
}

static void s_put(void *ctx, const void *data, size_t len)
{
    sink_t *s = ctx;
    if (s->len + len > sizeof s->buf) {
        crypto_hash_sha256_update(&s->state, s->buf, s->len);
        s->len = 0;
        if (len > sizeof s->buf) {
            crypto_hash_sha256_update(&s->state, data, len);
            return;
        }
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
}

int cv_hash_json(const json_t *value, char out[CV_HASH_HEX_LEN + 1])
{
    sink_t s;
    crypto_hash_sha256_init(&s.state);
    s.len = 0;
    if (cv_json_write(value, true, s_put, &s) != 0)
        return -1;
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_update(&s.state, s.buf, s.len);
    crypto_hash_sha256_final(&s.state, digest);
    sodium_bin2hex(out, CV_HASH_HEX_LEN + 1, digest, sizeof digest);
    return 0;
}
