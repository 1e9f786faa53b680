/*  cv_rangeset — sets of sequence numbers, as the protocol's ACK ranges.

    The hub ACKs what a batch committed as ranges ("1-3,5,7-9", docs/protocol.md);
    the client parses them to settle its spool. Sorted, non-overlapping, inclusive
    ranges in a growing array: adding numbers in increasing order (the common
    case) is O(1). */
#ifndef CV_RANGESET_H
#define CV_RANGESET_H

#include <stddef.h>
#include <stdint.h>

/* A set of sequence numbers as sorted, non-overlapping inclusive ranges.
   Adding numbers in increasing order (the common case) is O(1). */
typedef struct { uint64_t lo, hi; } cv_range_t;
typedef struct {
    cv_range_t *v;
    size_t n, cap;
} cv_rangeset_t;

void cv_rangeset_init(cv_rangeset_t *self);
void cv_rangeset_clear(cv_rangeset_t *self);    /* empties, keeps memory */
void cv_rangeset_free(cv_rangeset_t *self);
int  cv_rangeset_add(cv_rangeset_t *self, uint64_t seq);

/* Formats ranges [from, from+count) of the set as "1-3,5,7-9". Returns the
   number of ranges written (stops before overflowing buf, always
   NUL-terminates); the caller sends several messages when the set does not
   fit in one. */
size_t cv_rangeset_format(const cv_rangeset_t *set, size_t from, char *buf, size_t len);

/* Parses "1-3,5" calling fn(lo, hi, arg) per range; -1 if malformed
   (empty, descending, overlapping, not numbers). */
int cv_rangeset_parse(const char *text, size_t len,
                    void (*fn)(uint64_t lo, uint64_t hi, void *arg), void *arg);

#endif
