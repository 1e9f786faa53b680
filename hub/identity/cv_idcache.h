/*  idcache — a bounded map from (source, source citizen id) pairs to the
    fingerprint of the identity block PostgreSQL holds for them, so the
    store sends an unchanged block as NULL and identity resolution skips it.

    Most events of a busy source are about people already linked, carrying
    the same identity block again. The store asks this cache first: when
    the pair's stored block is known and equal, cv_ingest gets NULL for it
    (schemas/sql/010_identity_cache.sql) — no resolution, no
    identifier work, no jsonb comparison. A pair and its block are
    remembered only once PostgreSQL confirmed, in a committed batch, that
    the block is the one stored.

    Pairs and blocks are remembered by 64-bit keyed SipHash (libsodium's
    crypto_shorthash, a random key per process): "source NUL id" and the
    block's JSON text. The table is 4-way set-associative with a fixed
    number of slots (16 bytes each, allocated once); a full set evicts
    round-robin. A forgotten pair is merely sent whole again. Two pairs or
    blocks sharing a fingerprint (odds about N / 2^64) would keep one
    changed block from being stored. An erasure deletes stored blocks: the
    store then empties the cache (cv_idcache_clear). Not thread-safe: the
    store thread owns it. */
#ifndef CV_IDCACHE_H
#define CV_IDCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cv_idcache cv_idcache_t;

/* A cache of at most `pairs` entries (rounded up to a power of two, at
   least 64). NULL when out of memory. */
cv_idcache_t *cv_idcache_new(size_t pairs);
void cv_idcache_destroy(cv_idcache_t **self_p);

/* The fingerprint of a pair; 0 (never cached) for a pair longer than the
   model allows. */
uint64_t cv_idcache_key(const cv_idcache_t *self, const char *source, const char *id, size_t id_len);
/* The fingerprint of a block's text (never 0). */
uint64_t cv_idcache_block(const cv_idcache_t *self, const char *text, size_t len);

/* The block remembered for a pair, or 0. */
uint64_t cv_idcache_get(const cv_idcache_t *self, uint64_t key);
void cv_idcache_put(cv_idcache_t *self, uint64_t key, uint64_t block);
void cv_idcache_clear(cv_idcache_t *self);

/* Slots, and the number of puts that evicted another pair. */
size_t cv_idcache_capacity(const cv_idcache_t *self);
uint64_t cv_idcache_evictions(const cv_idcache_t *self);

#endif
