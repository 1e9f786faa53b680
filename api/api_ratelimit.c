/*  api_ratelimit — see api_ratelimit.h. Slot = FNV-1a(address) mod 4096. */
#include "api_ratelimit.h"

#include <pthread.h>
#include <stdlib.h>

#define SLOTS 4096

typedef struct {
    int64_t window;             /* now / window_s of the current count */
    int count;
} slot_t;

struct cv_api_ratelimit {
    pthread_mutex_t lock;
    int per_window;
    int window_s;
    slot_t slots[SLOTS];
};

cv_api_ratelimit_t *cv_api_ratelimit_new(int per_window, int window_s)
{
    cv_api_ratelimit_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    self->per_window = per_window;
    self->window_s = window_s > 0 ? window_s : 60;
    return self;
}

void cv_api_ratelimit_destroy(cv_api_ratelimit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pthread_mutex_destroy(&(*self_p)->lock);
    free(*self_p);
    *self_p = NULL;
}

bool cv_api_ratelimit_hit(cv_api_ratelimit_t *self, const void *key, size_t len, int64_t now)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const unsigned char *) key)[i]) * 16777619u;
    int64_t window = now / self->window_s;
    pthread_mutex_lock(&self->lock);
    slot_t *s = &self->slots[h % SLOTS];
    if (s->window != window) {
        s->window = window;
        s->count = 0;
    }
    bool ok = s->count < self->per_window;
    if (ok)
        s->count++;
    pthread_mutex_unlock(&self->lock);
    return ok;
}
