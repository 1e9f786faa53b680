/*  fuzz_proto — the frames an adapter or the hub receives: frame 0 (the
    command name, cv_proto_cmd), the decimal numbers of frames
    (cv_proto_parse_u64) and the ACK range lists the client settles its
    spool with (cv_rangeset_parse), all of lib/.

    The input is one frame's bytes, read by each parser in turn. Checked:
      - a known command's name is exactly the frame;
      - a number parses only when it is 1-20 digits and prints back as the
        same digits (no leading zeros are lost: compared as numbers);
      - a range list that parses calls back with lo <= hi, strictly
        ascending and non-overlapping; fed into a cv_rangeset_t and
        formatted again, it parses to the same ranges (coalesced). */
#include "fuzz_util.h"

#include <inttypes.h>

#include "cv_proto.h"
#include "cv_rangeset.h"

typedef struct {
    cv_rangeset_t set;
    uint64_t prev_hi;
    size_t n;
    bool bad;
} seen_t;

static void s_range(uint64_t lo, uint64_t hi, void *arg)
{
    seen_t *s = arg;
    fuzz_check(lo <= hi, "range %" PRIu64 "-%" PRIu64, lo, hi);
    fuzz_check(s->n == 0 || lo > s->prev_hi, "range %" PRIu64 " after %" PRIu64, lo, s->prev_hi);
    s->prev_hi = hi;
    s->n++;
    /* a range too wide to add number by number is kept apart */
    if (hi - lo > 64) {
        s->bad = true;
        return;
    }
    for (uint64_t v = lo;; v++) {
        if (cv_rangeset_add(&s->set, v) < 0)
            abort();
        if (v == hi)
            break;
    }
}

static void s_collect(uint64_t lo, uint64_t hi, void *arg)
{
    cv_rangeset_t *set = arg;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        cv_range_t *v = realloc(set->v, cap * sizeof *v);
        if (!v)
            abort();
        set->v = v;
        set->cap = cap;
    }
    set->v[set->n++] = (cv_range_t) { lo, hi };
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_cmd_t cmd = cv_proto_cmd(data, size);
    if (cmd != CV_CMD_INVALID) {
        const char *name = cv_proto_cmd_name(cmd);
        fuzz_check(strlen(name) == size && memcmp(name, data, size) == 0, "command %s", name);
    }

    uint64_t v;
    if (cv_proto_parse_u64(data, size, &v) == 0) {
        fuzz_check(size >= 1 && size <= 20, "a number of %zu bytes", size);
        uint64_t again = 0;
        for (size_t i = 0; i < size; i++) {
            fuzz_check(data[i] >= '0' && data[i] <= '9', "byte %zu is not a digit", i);
            again = again * 10 + (uint64_t) (data[i] - '0');
        }
        fuzz_check(again == v, "%" PRIu64 " read as %" PRIu64, again, v);
    }

    seen_t seen = { .n = 0 };
    cv_rangeset_init(&seen.set);
    if (cv_rangeset_parse((const char *) data, size, s_range, &seen) == 0 && !seen.bad) {
        fuzz_check(seen.n > 0, "an accepted list without ranges");
        /* format the set and parse it back: the same numbers, coalesced */
        char buf[1024];
        size_t from = 0;
        cv_rangeset_t back;
        cv_rangeset_init(&back);
        while (from < seen.set.n) {
            size_t k = cv_rangeset_format(&seen.set, from, buf, sizeof buf);
            fuzz_check(k > 0, "format wrote no range at %zu", from);
            fuzz_check(cv_rangeset_parse(buf, strlen(buf), s_collect, &back) == 0, "own format refused");
            from += k;
        }
        fuzz_check(back.n == seen.set.n, "%zu ranges back, %zu added", back.n, seen.set.n);
        for (size_t i = 0; i < back.n; i++)
            fuzz_check(back.v[i].lo == seen.set.v[i].lo && back.v[i].hi == seen.set.v[i].hi, "range %zu", i);
        for (size_t i = 1; i < back.n; i++)
            fuzz_check(back.v[i].lo > back.v[i - 1].hi + 1, "ranges %zu and %zu not coalesced", i - 1, i);
        cv_rangeset_free(&back);
    }
    cv_rangeset_free(&seen.set);
    return 0;
}
