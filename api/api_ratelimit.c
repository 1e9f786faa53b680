/*  api_ratelimit — see api_ratelimit.h. Slot = FNV-1a(key) mod 4096. A
    bucket holds its level in thousandths of a token (integer arithmetic:
    a refill of per_window tokens per window_s x 1000 ms is per_window
    thousandths a window_s milliseconds), and the time it was last filled. */
#include "api_ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define SLOTS 4096

typedef struct {
    int64_t at_ms;              /* when `milli` was computed; 0 = never used (full) */
    int64_t milli;              /* tokens x 1000 */
} slot_t;

struct cv_api_ratelimit {
    pthread_mutex_t lock;
    int64_t capacity;           /* per_window x 1000 */
    int64_t per_window;
    int64_t window_ms;
    slot_t slots[SLOTS];
};

cv_api_ratelimit_t *cv_api_ratelimit_new(int per_window, int window_s)
{
    cv_api_ratelimit_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    self->per_window = per_window > 0 ? per_window : 1;
    self->capacity = self->per_window * 1000;
    self->window_ms = (window_s > 0 ? window_s : 60) * (int64_t) 1000;
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

int64_t cv_api_ratelimit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;   /* never 0 */
}

static slot_t *s_slot(cv_api_ratelimit_t *self, const void *key, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const unsigned char *) key)[i]) * 16777619u;
    return &self->slots[h % SLOTS];
}

void cv_api_ratelimit_refund(cv_api_ratelimit_t *self, const void *key, size_t len, int64_t now_ms)
{
    (void) now_ms;
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    slot_t *s = s_slot(self, key, len);
    s->milli = s->milli + 1000 > self->capacity ? self->capacity : s->milli + 1000;
    pthread_mutex_unlock(&self->lock);
}

bool cv_api_ratelimit_hit(cv_api_ratelimit_t *self, const void *key, size_t len, int64_t now_ms)
{
    pthread_mutex_lock(&self->lock);
    slot_t *s = s_slot(self, key, len);
    if (s->at_ms == 0 || now_ms - s->at_ms >= self->window_ms) {
        s->milli = self->capacity;              /* unused for a whole window: full */
        s->at_ms = now_ms;
    } else if (now_ms > s->at_ms) {
        /* per_window tokens a window; the clock moves on only with what it added
           (a thousandth at least), so frequent hits do not lose their refill */
        int64_t add = (now_ms - s->at_ms) * self->capacity / self->window_ms;
        if (add > 0) {
            s->milli = s->milli + add > self->capacity ? self->capacity : s->milli + add;
            s->at_ms = now_ms;
        }
    }
    bool ok = s->milli >= 1000;
    if (ok)
        s->milli -= 1000;
    pthread_mutex_unlock(&self->lock);
    return ok;
}
