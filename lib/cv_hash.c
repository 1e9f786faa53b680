/*  cv_hash — see cv_hash.h. */
#include "cv_hash.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void cv_hash_bytes(const void *data, size_t len, char out[CV_HASH_HEX_LEN + 1])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data, len);
    sodium_bin2hex(out, CV_HASH_HEX_LEN + 1, digest, sizeof digest);
}

int cv_hash_json(const json_t *value, char out[CV_HASH_HEX_LEN + 1])
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return -1;
    cv_hash_bytes(text, strlen(text), out);
    free(text);
    return 0;
}
