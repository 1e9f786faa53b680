/*  idcache — see cv_idcache.h.

    The table is an array of sets of WAYS slots; a key's set is chosen by
    its low bits, and it may sit in any slot of that set (key 0 marks a
    free slot). Lookup reads one set: one cache line. Each set has a cursor
    that names the slot the next eviction takes, so a set keeps its WAYS
    most recently added keys. */
#include "cv_idcache.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4
#define KEY_INPUT_MAX 512       /* source (< 64) NUL id (<= 200 by the model) */

typedef struct {
    uint64_t key, block;
} slot_t;

struct cv_idcache {
    slot_t *slots;              /* sets * WAYS */
    uint8_t *cursor;            /* per set: next slot to evict */
    size_t sets;                /* power of two */
    uint64_t evictions;
    unsigned char key[crypto_shorthash_KEYBYTES];
};

cv_idcache_t *cv_idcache_new(size_t pairs)
{
    if (sodium_init() < 0)
        return NULL;
    size_t sets = 16;
    while (sets * WAYS < pairs && sets < ((size_t) 1 << 40))
        sets <<= 1;
    cv_idcache_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->slots = calloc(sets * WAYS, sizeof *self->slots);
    self->cursor = calloc(sets, 1);
    if (!self->slots || !self->cursor) {
        cv_idcache_destroy(&self);
        return NULL;
    }
    self->sets = sets;
    crypto_shorthash_keygen(self->key);
    return self;
}

void cv_idcache_destroy(cv_idcache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_idcache_t *self = *self_p;
    free(self->slots);
    free(self->cursor);
    sodium_memzero(self->key, sizeof self->key);
    free(self);
    *self_p = NULL;
}

static uint64_t s_hash(const cv_idcache_t *self, const void *data, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, data, len, self->key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h ? h : 1;                   /* 0 marks a free slot */
}

uint64_t cv_idcache_key(const cv_idcache_t *self, const char *source, const char *id, size_t id_len)
{
    unsigned char in[KEY_INPUT_MAX];
    size_t slen = strlen(source);
    if (slen + 1 + id_len > sizeof in)
        return 0;
    memcpy(in, source, slen);
    in[slen] = '\0';                    /* keeps ("ab", "c") apart from ("a", "bc") */
    memcpy(in + slen + 1, id, id_len);
    return s_hash(self, in, slen + 1 + id_len);
}

uint64_t cv_idcache_block(const cv_idcache_t *self, const char *text, size_t len)
{
    return s_hash(self, text, len);
}

static slot_t *s_set(const cv_idcache_t *self, uint64_t key)
{
    return self->slots + (key & (self->sets - 1)) * WAYS;
}

uint64_t cv_idcache_get(const cv_idcache_t *self, uint64_t key)
{
    if (key == 0)
        return 0;
    const slot_t *set = s_set(self, key);
    for (int w = 0; w < WAYS; w++)
        if (set[w].key == key)
            return set[w].block;
    return 0;
}

void cv_idcache_put(cv_idcache_t *self, uint64_t key, uint64_t block)
{
    if (key == 0)
        return;
    slot_t *set = s_set(self, key);
    for (int w = 0; w < WAYS; w++)
        if (set[w].key == key || set[w].key == 0) {
            set[w] = (slot_t) { key, block };
            return;
        }
    size_t s = (size_t) (key & (self->sets - 1));
    set[self->cursor[s]] = (slot_t) { key, block };
    self->cursor[s] = (uint8_t) ((self->cursor[s] + 1) % WAYS);
    self->evictions++;
}

void cv_idcache_clear(cv_idcache_t *self)
{
    memset(self->slots, 0, self->sets * WAYS * sizeof *self->slots);
    memset(self->cursor, 0, self->sets);
}

size_t cv_idcache_capacity(const cv_idcache_t *self)
{
    return self->sets * WAYS;
}

uint64_t cv_idcache_evictions(const cv_idcache_t *self)
{
    return self->evictions;
}
