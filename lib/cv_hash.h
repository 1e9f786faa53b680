/*  cv_hash — SHA-256 digests in lower-case hex, for content hashes.

    A record's content hash is taken over its canonical JSON form (keys
    sorted, compact), so the same record re-read from a source, with its
    keys in another order or other spacing, hashes the same. Uses
    libsodium's SHA-256 (already a dependency of libzmq for CURVE). */
#ifndef CV_HASH_H
#define CV_HASH_H

#include <stddef.h>
#include <jansson.h>

#define CV_HASH_HEX_LEN 64

/* out must hold CV_HASH_HEX_LEN + 1 bytes. */
void cv_hash_bytes(const void *data, size_t len, char out[CV_HASH_HEX_LEN + 1]);

/* Hash of the canonical JSON form of value. Returns 0, or -1 when the
   value cannot be serialised. */
int cv_hash_json(const json_t *value, char out[CV_HASH_HEX_LEN + 1]);

#endif
