/*
 * replay: exact replays are refused for as long as their timestamps could be
 * accepted, at any load and across clock steps; the cache never forgets a
 * nonce it still needs (it refuses new datagrams instead).
 */
#include "wire/replay.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define S 1000000000ULL /* one second in ns */
#define T0 (1800000000ULL * S)

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
    assert_int_equal(replay_check(r, a, T0, 10), REPLAY_NEW);
    assert_int_equal(replay_check(r, a, T0, 10), REPLAY_SEEN);
    assert_int_equal(replay_check(r, b, T0 + 1, 10), REPLAY_NEW);
    assert_int_equal(replay_count(r), 2);
    replay_free(r);
}

/* A nonce is kept while its own timestamp is at or above the floor (highest seen - 2 x window). */
static void test_kept_by_timestamp_not_arrival(void **state)
{
    (void)state;
    struct replay *r = replay_new(64);
    uint8_t a[12], n[12];
    nonce_of(1, a);
    assert_int_equal(replay_check(r, a, T0, 10), REPLAY_NEW);
    /* traffic 19 s later: a (20 s older than the floor's edge) is still needed */
    nonce_of(2, n);
    assert_int_equal(replay_check(r, n, T0 + 20 * S, 10), REPLAY_NEW);
    assert_int_equal(replay_check(r, a, T0, 10), REPLAY_SEEN);
    /* once the floor passes a's timestamp, a is refused as stale (and may be forgotten) */
    nonce_of(3, n);
    assert_int_equal(replay_check(r, n, T0 + 20 * S + 1, 10), REPLAY_NEW);
    assert_int_equal(replay_check(r, a, T0, 10), REPLAY_STALE);
    nonce_of(4, n);
    assert_int_equal(replay_check(r, n, T0 + 21 * S, 10), REPLAY_NEW);
    assert_true(replay_count(r) <= 3);
    replay_free(r);
}

/*
 * The audit's case: the wall clock steps back after the nonce aged out. The
 * caller's freshness check passes again (it uses the stepped-back clock), but
 * the floor has not moved back: the replay is still refused.
 */
static void test_clock_step_back(void **state)
{
    (void)state;
    struct replay *r = replay_new(64);
    uint8_t d[12], n[12];
    nonce_of(7, d);
    assert_int_equal(replay_check(r, d, T0, 10), REPLAY_NEW);
    for (unsigned i = 0; i < 30; i++) { /* 30 s of traffic */
        nonce_of(100 + i, n);
        assert_int_equal(replay_check(r, n, T0 + (uint64_t)(i + 1) * S, 10), REPLAY_NEW);
    }
    /* now the clock is set back 25 s: D's timestamp looks fresh to the window check */
    assert_int_equal(replay_check(r, d, T0, 10), REPLAY_STALE);
    /* and a datagram sealed on the stepped-back clock inside the floor is still accepted */
    nonce_of(999, n);
    assert_int_equal(replay_check(r, n, T0 + 11 * S, 10), REPLAY_NEW);
    replay_free(r);
}

/* Full of nonces still needed: new datagrams are refused, old nonces are never forgotten. */
static void test_full_refuses_rather_than_forgets(void **state)
{
    (void)state;
    struct replay *r = replay_new(100);
    uint8_t n[12];
    for (unsigned i = 0; i < 100; i++) {
        nonce_of(i, n);
        assert_int_equal(replay_check(r, n, T0 + i, 10), REPLAY_NEW);
    }
    nonce_of(100, n);
    assert_int_equal(replay_check(r, n, T0 + 100, 10), REPLAY_FULL);
    assert_int_equal(replay_full_refusals(r), 1);
    for (unsigned i = 0; i < 100; i++) { /* every one is still a replay */
        nonce_of(i, n);
        assert_int_equal(replay_check(r, n, T0 + i, 10), REPLAY_SEEN);
    }
    /* the refused one was not recorded, so it is not a "replay" when its sender retransmits */
    nonce_of(100, n);
    assert_int_equal(replay_check(r, n, T0 + 100, 10), REPLAY_FULL);
    replay_free(r);
}

/* A full cache still tells a replay (SEEN) from a new datagram it has no room for (FULL). */
static void test_full_still_knows_replays(void **state)
{
    (void)state;
    struct replay *r = replay_new(3);
    uint8_t n[12];
    for (unsigned i = 0; i < 3; i++) {
        nonce_of(i, n);
        assert_int_equal(replay_check(r, n, T0, 10), REPLAY_NEW);
    }
    nonce_of(1, n);
    assert_int_equal(replay_check(r, n, T0, 10), REPLAY_SEEN);
    nonce_of(3, n);
    assert_int_equal(replay_check(r, n, T0, 10), REPLAY_FULL);
    assert_int_equal(replay_full_refusals(r), 1);
    assert_int_equal(replay_count(r), 3);
    replay_free(r);
}

/* Once the floor passes the oldest, room comes back. */
static void test_room_comes_back(void **state)
{
    (void)state;
    struct replay *r = replay_new(10);
    uint8_t n[12];
    for (unsigned i = 0; i < 10; i++) {
        nonce_of(i, n);
        assert_int_equal(replay_check(r, n, T0, 1), REPLAY_NEW);
    }
    nonce_of(10, n);
    assert_int_equal(replay_check(r, n, T0 + 1 * S, 1), REPLAY_FULL);
    /* 2 s + 1 ns later the floor has passed the old ones: they go, and room is made */
    assert_int_equal(replay_check(r, n, T0 + 2 * S + 1, 1), REPLAY_NEW);
    assert_int_equal(replay_count(r), 1);
    replay_free(r);
}

/* A larger window on reload never lowers the floor (nonces below it may be gone). */
static void test_floor_never_moves_back(void **state)
{
    (void)state;
    struct replay *r = replay_new(64);
    uint8_t a[12], n[12];
    nonce_of(1, a);
    assert_int_equal(replay_check(r, a, T0, 1), REPLAY_NEW);
    nonce_of(2, n);
    assert_int_equal(replay_check(r, n, T0 + 5 * S, 1), REPLAY_NEW); /* floor T0 + 3 s */
    nonce_of(3, n);
    assert_int_equal(replay_check(r, n, T0 + 5 * S + 1, 1), REPLAY_NEW); /* a expires */
    assert_int_equal(replay_check(r, a, T0, 60), REPLAY_STALE);
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
        uint64_t t = T0 + (uint64_t)i * 1000000; /* one per ms, window 1 s: 2000 kept */
        assert_int_equal(replay_check(r, n, t, 1), REPLAY_NEW);
        assert_int_equal(replay_check(r, n, t, 1), REPLAY_SEEN);
        if (i >= 1000) {
            nonce_of(i - 1000, n);
            assert_int_equal(replay_check(r, n, t - 1000000000ULL, 1), REPLAY_SEEN);
        }
    }
    assert_int_equal(replay_full_refusals(r), 0);
    assert_true(replay_count(r) <= 2002);
    replay_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_sight_is_a_replay),
        cmocka_unit_test(test_kept_by_timestamp_not_arrival),
        cmocka_unit_test(test_clock_step_back),
        cmocka_unit_test(test_full_refuses_rather_than_forgets),
        cmocka_unit_test(test_full_still_knows_replays),
        cmocka_unit_test(test_room_comes_back),
        cmocka_unit_test(test_floor_never_moves_back),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
