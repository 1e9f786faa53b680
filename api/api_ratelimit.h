/*  api_ratelimit — a fixed-window counter per client address, for public
    lookups (tracking codes): at most `per_window` hits per `window_s`.

    Memory is bounded: addresses hash into a fixed table of slots; two
    addresses in one slot share a budget (they can only be limited sooner,
    never later). Thread-safe (one mutex; the critical section is a few
    instructions). */
#ifndef CV_API_RATELIMIT_H
#define CV_API_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cv_api_ratelimit cv_api_ratelimit_t;

cv_api_ratelimit_t *cv_api_ratelimit_new(int per_window, int window_s);
void cv_api_ratelimit_destroy(cv_api_ratelimit_t **self_p);

/* Counts one hit of `key` (address bytes) at time `now` (seconds); true when
   it is within the budget. */
bool cv_api_ratelimit_hit(cv_api_ratelimit_t *self, const void *key, size_t len, int64_t now);

#endif
