/* replay: exact replays are recognised inside the keep time, and only there. */
#include "replay.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void nonce_of(unsigned i, uint8_t n[REPLAY_NONCE_BYTES])
{
    memset(n, 0, REPLAY_NONCE_BYTES);
    for (int k = 0; k < REPLAY_NONCE_BYTES; k++)
        n[k] = (uint8_t)((i * 2654435761u) >> (k % 4 * 8)) ^ (uint8_t)k;
    memcpy(n + 8, &i, sizeof i);
}

static void test_second_sight_is_a_replay(void **state)
{
    (void)state;
    struct replay *r = replay_new(16);
    uint8_t a[12], b[12];
    nonce_of(1, a);
    nonce_of(2, b);
    assert_int_equal(replay_check(r, a, 1000, 20000), 0);
    assert_int_equal(replay_check(r, a, 1001, 20000), 1);
    assert_int_equal(replay_check(r, b, 1002, 20000), 0);
    assert_int_equal(replay_check(r, a, 20999, 20000), 1);
    /* past the keep time the nonce is forgotten (the timestamp window refuses it anyway) */
    assert_int_equal(replay_check(r, a, 21000, 20000), 0);
    assert_int_equal(replay_early_evictions(r), 0);
    replay_free(r);
}

static void test_capacity_evicts_oldest_and_counts(void **state)
{
    (void)state;
    struct replay *r = replay_new(100);
    uint8_t n[12];
    for (unsigned i = 0; i < 150; i++) {
        nonce_of(i, n);
        assert_int_equal(replay_check(r, n, 5000, 60000), 0);
    }
    assert_int_equal(replay_early_evictions(r), 50);
    nonce_of(149, n);
    assert_int_equal(replay_check(r, n, 5000, 60000), 1); /* recent: remembered */
    nonce_of(10, n);
    assert_int_equal(replay_check(r, n, 5000, 60000), 0); /* evicted early */
    replay_free(r);
}

/* Many nonces over time: every one is a replay while kept, none is confused with another. */
static void test_many(void **state)
{
    (void)state;
    struct replay *r = replay_new(4096);
    uint8_t n[12];
    for (unsigned i = 0; i < 20000; i++) {
        nonce_of(i, n);
        int64_t t = (int64_t)i; /* one per ms, keep 2000 ms: at most 2000 alive */
        assert_int_equal(replay_check(r, n, t, 2000), 0);
        assert_int_equal(replay_check(r, n, t, 2000), 1);
        if (i >= 1000) {
            nonce_of(i - 1000, n);
            assert_int_equal(replay_check(r, n, t, 2000), 1);
        }
    }
    assert_int_equal(replay_early_evictions(r), 0);
    replay_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_sight_is_a_replay),
        cmocka_unit_test(test_capacity_evicts_oldest_and_counts),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
