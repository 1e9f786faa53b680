/*  Unit tests of the hub's cache of stored identity blocks (hub/identity/cv_idcache.c):
    lookups, updates, the fixed bound, eviction of the oldest of a full set,
    clearing, and fingerprints that keep (source, id) pairs apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <stdio.h>
#include <string.h>

#include "identity/cv_idcache.h"

static uint64_t s_key(cv_idcache_t *c, const char *source, const char *id)
{
    return cv_idcache_key(c, source, id, strlen(id));
}

static void test_membership(void **state)
{
    cv_idcache_t *c = cv_idcache_new(1000);
    assert_non_null(c);
    assert_int_equal(cv_idcache_capacity(c), 1024);
    uint64_t a = s_key(c, "etat_civil", "CIT-1"), b = s_key(c, "urbanisme", "CIT-1");
    assert_true(a != 0 && b != 0 && a != b);
    assert_true(s_key(c, "ab", "c") != s_key(c, "a", "bc"));
    assert_int_equal(a, s_key(c, "etat_civil", "CIT-1"));
    uint64_t b1 = cv_idcache_block(c, "{\"email\":\"a@x.fr\"}", 20), b2 = cv_idcache_block(c, "{}", 2);
    assert_true(b1 != 0 && b2 != 0 && b1 != b2);
    assert_int_equal(cv_idcache_get(c, a), 0);
    cv_idcache_put(c, a, b1);
    assert_int_equal(cv_idcache_get(c, a), b1);
    cv_idcache_put(c, a, b2);                      /* the stored block changed */
    assert_int_equal(cv_idcache_get(c, a), b2);
    assert_int_equal(cv_idcache_get(c, b), 0);
    assert_int_equal(cv_idcache_evictions(c), 0);
    cv_idcache_clear(c);                           /* an erasure */
    assert_int_equal(cv_idcache_get(c, a), 0);
    cv_idcache_destroy(&c);
    assert_null(c);
}

static void test_bounded(void **state)
{
    cv_idcache_t *c = cv_idcache_new(64);
    assert_non_null(c);
    size_t cap = cv_idcache_capacity(c);
    char id[32];
    uint64_t keys[10000];
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof id, "P%05d", i);
        keys[i] = s_key(c, "dechets", id);
        cv_idcache_put(c, keys[i], (uint64_t) i + 1);
    }
    size_t present = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t v = cv_idcache_get(c, keys[i]);
        assert_true(v == 0 || v == (uint64_t) i + 1);
        present += v != 0;
    }
    assert_true(present <= cap);
    assert_true(present >= cap * 9 / 10);          /* sets fill evenly */
    assert_int_equal(cv_idcache_evictions(c), 10000 - present);
    /* the most recent adds are kept: the last key is always there */
    assert_int_equal(cv_idcache_get(c, keys[9999]), 10000);
    /* a key longer than the model allows is never cached */
    char big[600];
    memset(big, 'x', sizeof big);
    uint64_t k = cv_idcache_key(c, "dechets", big, sizeof big);
    assert_int_equal(k, 0);
    cv_idcache_put(c, k, 7);
    assert_int_equal(cv_idcache_get(c, k), 0);
    cv_idcache_destroy(&c);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_membership),
        cmocka_unit_test(test_bounded),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
