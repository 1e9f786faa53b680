/*  api_ratelimit — a token bucket per key (a client address, a token id):
    at most `per_window` hits at once, refilled continuously at
    per_window / window_s hits a second. A client that waited long enough
    has a full bucket; one that spends it waits for each new token. Unlike
    a counter reset on the minute, no boundary lets 2 x per_window through
    in a moment: over any span of t seconds at most
    per_window x (1 + t / window_s) hits pass.

    Memory is bounded: keys hash into a fixed table of slots; two keys in
    one slot share a bucket (they can only be limited sooner, never later).
    Thread-safe (one mutex; the critical section is a few instructions). */
#ifndef CV_API_RATELIMIT_H
#define CV_API_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cv_api_ratelimit cv_api_ratelimit_t;

cv_api_ratelimit_t *cv_api_ratelimit_new(int per_window, int window_s);
void cv_api_ratelimit_destroy(cv_api_ratelimit_t **self_p);

/* Counts one hit of `key` (bytes) at time `now_ms` (milliseconds, any
   monotonic origin); true when a token was left. */
bool cv_api_ratelimit_hit(cv_api_ratelimit_t *self, const void *key, size_t len, int64_t now_ms);

/* Gives back the token of a hit that turned out to cost nothing (a
   mistyped tracking code, caught before any lookup), up to a full bucket. */
void cv_api_ratelimit_refund(cv_api_ratelimit_t *self, const void *key, size_t len, int64_t now_ms);

/* Milliseconds of a monotonic clock, for the callers. */
int64_t cv_api_ratelimit_now_ms(void);

#endif
