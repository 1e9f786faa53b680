/*  cv_rangeset — see cv_rangeset.h. */
#include "cv_rangeset.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_proto.h"

void cv_rangeset_init(cv_rangeset_t *self)
{
    memset(self, 0, sizeof *self);
}

void cv_rangeset_clear(cv_rangeset_t *self)
{
    self->n = 0;
}

void cv_rangeset_free(cv_rangeset_t *self)
{
    free(self->v);
    memset(self, 0, sizeof *self);
}

int cv_rangeset_add(cv_rangeset_t *self, uint64_t seq)
{
    /* fast path: extends or follows the last range */
    if (self->n > 0) {
        cv_range_t *last = &self->v[self->n - 1];
        if (seq >= last->lo && seq <= last->hi)
            return 0;
        if (seq == last->hi + 1) {
            last->hi = seq;
            return 0;
        }
    }
    /* find insertion point (ranges sorted by lo) */
    size_t lo = 0, hi = self->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (self->v[mid].hi < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < self->n && seq >= self->v[lo].lo && seq <= self->v[lo].hi)
        return 0;
    bool join_prev = lo > 0 && self->v[lo - 1].hi + 1 == seq;
    bool join_next = lo < self->n && self->v[lo].lo == seq + 1;
    if (join_prev && join_next) {
        self->v[lo - 1].hi = self->v[lo].hi;
        memmove(&self->v[lo], &self->v[lo + 1], (self->n - lo - 1) * sizeof(cv_range_t));
        self->n--;
        return 0;
    }
    if (join_prev) {
        self->v[lo - 1].hi = seq;
        return 0;
    }
    if (join_next) {
        self->v[lo].lo = seq;
        return 0;
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        cv_range_t *v = realloc(self->v, cap * sizeof *v);
        if (!v)
            return -1;
        self->v = v;
        self->cap = cap;
    }
    memmove(&self->v[lo + 1], &self->v[lo], (self->n - lo) * sizeof(cv_range_t));
    self->v[lo].lo = self->v[lo].hi = seq;
    self->n++;
    return 0;
}

size_t cv_rangeset_format(const cv_rangeset_t *set, size_t from, char *buf, size_t len)
{
    size_t used = 0, written = 0;
    if (len == 0)
        return 0;
    buf[0] = '\0';
    for (size_t i = from; i < set->n; i++) {
        char one[48];
        int k = set->v[i].lo == set->v[i].hi
              ? snprintf(one, sizeof one, "%s%" PRIu64, written ? "," : "", set->v[i].lo)
              : snprintf(one, sizeof one, "%s%" PRIu64 "-%" PRIu64, written ? "," : "",
                         set->v[i].lo, set->v[i].hi);
        if (used + (size_t) k + 1 > len)
            break;
        memcpy(buf + used, one, (size_t) k + 1);
        used += (size_t) k;
        written++;
    }
    return written;
}

int cv_rangeset_parse(const char *text, size_t len,
                    void (*fn)(uint64_t lo, uint64_t hi, void *arg), void *arg)
{
    if (len == 0)
        return -1;
    size_t i = 0;
    uint64_t prev_hi = 0;
    bool first = true;
    while (i < len) {
        size_t start = i;
        while (i < len && text[i] != ',')
            i++;
        const char *item = text + start;
        size_t ilen = i - start;
        const char *dash = memchr(item, '-', ilen);
        uint64_t lo, hi;
        if (dash) {
            if (cv_proto_parse_u64(item, (size_t) (dash - item), &lo) < 0
                || cv_proto_parse_u64(dash + 1, ilen - (size_t) (dash - item) - 1, &hi) < 0)
                return -1;
        }
        else {
            if (cv_proto_parse_u64(item, ilen, &lo) < 0)
                return -1;
            hi = lo;
        }
        if (hi < lo || (!first && lo <= prev_hi))
            return -1;
        fn(lo, hi, arg);
        prev_hi = hi;
        first = false;
        if (i < len)
            i++;                     /* skip ',' */
        if (i == len && text[len - 1] == ',')
            return -1;
    }
    return 0;
}
