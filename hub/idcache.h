/*  idcache — a bounded set of (source, source citizen id) pairs the hub
    knows are linked to a citizen, so identity resolution skips them.

    Identity resolution (schemas/sql/004_identity.sql) only has work to do
    for pairs not yet in citizen_sources. Most events of a busy source are
    about people already linked; the store asks this cache first and tells
    cv_ingest which pairs it may skip (schemas/sql/007_identity_cache.sql).

    A pair is remembered by a 64-bit keyed SipHash (libsodium's
    crypto_shorthash, a random key per process) of "source NUL id", in a
    4-way set-associative table of a fixed number of slots: memory is
    8 bytes a slot, allocated once; a full set evicts round-robin. Two pairs
    sharing a fingerprint (odds about N / 2^64) would make the second skip
    resolution and become a citizen of its own; a forgotten pair is merely
    resolved again (an index probe). Links are never removed from
    citizen_sources (merges, splits and detaches move them), so an entry
    never goes stale. Not thread-safe: the store thread owns it. */
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

bool cv_idcache_has(const cv_idcache_t *self, uint64_t key);
void cv_idcache_add(cv_idcache_t *self, uint64_t key);

/* Slots, and the number of adds that evicted another pair. */
size_t cv_idcache_capacity(const cv_idcache_t *self);
uint64_t cv_idcache_evictions(const cv_idcache_t *self);

#endif
