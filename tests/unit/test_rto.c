/*
 * Unit tests for rto.[ch]: RFC 6298's estimator, its bounds, backoff and
 * jitter, at loopback and at absurd round-trip times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/rto.h"

static const struct rto_limits defaults = {1000, 100, 60000};

/* Before any sample: initial_ms, and no SRTT to report. */
static void test_initial(void **state)
{
    (void)state;
    struct rto r;
    rto_init(&r);
    assert_int_equal(rto_current(&r, &defaults), 1000);
    assert_int_equal(rto_srtt_ms(&r), -1);
    assert_int_equal(rto_srtt_us(&r), -1);
}

/* §2.2: the first sample R gives SRTT = R, RTTVAR = R/2, so RTO = 3R. */
static void test_first_sample(void **state)
{
    (void)state;
    struct rto r;
    rto_init(&r);
    rto_sample(&r, 100000);
    assert_int_equal(rto_srtt_us(&r), 100000);
    assert_int_equal(r.rttvar_us, 50000);
    assert_int_equal(rto_current(&r, &defaults), 300);
    assert_int_equal(rto_srtt_ms(&r), 100);
}

/* A steady RTT: SRTT converges to it, RTTVAR to (almost) nothing, RTO to RTT + G. */
static void test_convergence(void **state)
{
    (void)state;
    struct rto r;
    rto_init(&r);
    rto_sample(&r, 10000); /* start far off */
    for (int i = 0; i < 300; i++)
        rto_sample(&r, 200000);
    assert_true(rto_srtt_us(&r) > 200000 - 8 && rto_srtt_us(&r) <= 200000);
    assert_true(r.rttvar_us < 250); /* so 4 * RTTVAR < G */
    assert_int_equal(rto_current(&r, &defaults), 201);
    assert_int_equal(rto_srtt_ms(&r), 200);
    assert_int_equal(r.samples, 301);

    /* Under the floor: 20 ms steady gives 21 ms, raised to min_ms. */
    for (int i = 0; i < 300; i++)
        rto_sample(&r, 20000);
    assert_int_equal(rto_current(&r, &defaults), 100);
    struct rto_limits low = {1000, 1, 60000};
    assert_int_equal(rto_current(&r, &low), 21);
}

/* A variable RTT: SRTT stays between the extremes, RTTVAR reflects the spread. */
static void test_variation(void **state)
{
    (void)state;
    struct rto r;
    rto_init(&r);
    for (int i = 0; i < 400; i++)
        rto_sample(&r, i % 2 ? 300000 : 100000);
    assert_true(rto_srtt_us(&r) > 150000 && rto_srtt_us(&r) < 250000);
    assert_true(r.rttvar_us > 50000);
    assert_true(rto_current(&r, &defaults) > 400);
}

/* Whatever the samples and backoffs, the RTO stays within [min, max]. */
static void test_bounds(void **state)
{
    (void)state;
    struct rto r;
    rto_init(&r);
    uint64_t seed = 12345;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint32_t v = (uint32_t)(seed >> 33);
        if (v % 5 == 0)
            rto_backoff(&r);
        else
            rto_sample(&r, (int64_t)(v % 5000000u) * (v % 3 == 0 ? 100 : 1));
        int64_t t = rto_current(&r, &defaults);
        assert_true(t >= defaults.min_ms && t <= defaults.max_ms);
    }
}

/* Each timer doubles the RTO until max_ms; the next sample resets it (§5.5, §5.7). */
static void test_backoff(void **state)
{
    (void)state;
    struct rto r;
    rto_init(&r);
    /* Before any sample, initial_ms doubles too. */
    int64_t expect[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        assert_int_equal(rto_current(&r, &defaults), expect[i]);
        rto_backoff(&r);
    }
    rto_sample(&r, 300000); /* RTO 900 */
    assert_int_equal(r.backoff, 0);
    assert_int_equal(rto_current(&r, &defaults), 900);
    rto_backoff(&r);
    assert_int_equal(rto_current(&r, &defaults), 1800);
    rto_backoff(&r);
    assert_int_equal(rto_current(&r, &defaults), 3600);
    /* The backoff is kept until a new sample, however many timers fire. */
    for (int i = 0; i < 1000; i++)
        rto_backoff(&r);
    assert_int_equal(r.backoff, RTO_BACKOFF_MAX);
    assert_int_equal(rto_current(&r, &defaults), 60000);
    rto_sample(&r, 300000);
    assert_int_equal(r.backoff, 0);
    assert_true(rto_current(&r, &defaults) < 1000);
}

/* Jitter: [value, value * 1.25), at both ends of random, without overflow. */
static void test_jitter(void **state)
{
    (void)state;
    assert_int_equal(rto_with_jitter(1000, 0), 1000);
    assert_int_equal(rto_with_jitter(1000, UINT32_MAX), 1249);
    assert_int_equal(rto_with_jitter(1000, 1u << 31), 1125);
    assert_int_equal(rto_with_jitter(60000, UINT32_MAX), 74999);
    assert_int_equal(rto_with_jitter(0, UINT32_MAX), 0);
    assert_int_equal(rto_with_jitter(-5, UINT32_MAX), -5);
    assert_int_equal(rto_with_jitter(3, UINT32_MAX), 3);
    assert_int_equal(rto_with_jitter(INT64_MAX, 0), INT64_MAX);
    assert_int_equal(rto_with_jitter(INT64_MAX, UINT32_MAX), INT64_MAX);
    int64_t big = INT64_MAX / 2;
    int64_t j = rto_with_jitter(big, UINT32_MAX);
    assert_true(j >= big && j < big + big / 4);
    for (int64_t v = 4; v < 100000; v = v * 3 + 1)
        for (uint64_t rnd = 0; rnd <= UINT32_MAX; rnd += 0x1234567u) {
            int64_t w = rto_with_jitter(v, (uint32_t)rnd);
            assert_true(w >= v && w * 4 < v * 5);
        }
}

/* Loopback: samples of well under a millisecond never give an RTO of 0. */
static void test_sub_millisecond(void **state)
{
    (void)state;
    struct rto_limits none = {1000, 0, 60000};
    struct rto r;
    rto_init(&r);
    rto_sample(&r, 0);
    assert_int_equal(rto_current(&r, &none), 1); /* G */
    for (int i = 0; i < 100; i++)
        rto_sample(&r, 50);
    assert_true(rto_srtt_us(&r) > 40 && rto_srtt_us(&r) <= 50); /* kept in us */
    assert_int_equal(rto_srtt_ms(&r), 0);
    assert_int_equal(rto_current(&r, &none), 2); /* 50 us + G, rounded up */
    assert_int_equal(rto_current(&r, &defaults), 100);
}

/* A huge or negative sample neither overflows nor corrupts the estimate. */
static void test_extreme_samples(void **state)
{
    (void)state;
    struct rto r;
    rto_init(&r);
    rto_sample(&r, -1);
    assert_int_equal(r.samples, 0); /* ignored */
    rto_sample(&r, INT64_MAX);
    assert_int_equal(rto_srtt_us(&r), RTO_SAMPLE_MAX_US);
    assert_int_equal(rto_current(&r, &defaults), 60000);
    struct rto_limits open = {INT64_MAX, 0, INT64_MAX};
    assert_int_equal(rto_current(&r, &open), 3 * RTO_SAMPLE_MAX_US / 1000); /* 3R */
    for (int i = 0; i < 50; i++)
        rto_sample(&r, INT64_MAX);
    int64_t base = rto_current(&r, &open); /* RTTVAR has all but vanished */
    assert_true(base >= RTO_SAMPLE_MAX_US / 1000 && base < RTO_SAMPLE_MAX_US / 1000 + 100);
    for (int i = 0; i < 100; i++)
        rto_backoff(&r);
    assert_int_equal(rto_current(&r, &open), base << RTO_BACKOFF_MAX);
    assert_int_equal(rto_current(&r, &defaults), 60000);

    struct rto fresh;
    rto_init(&fresh);
    for (int i = 0; i < 100; i++)
        rto_backoff(&fresh);
    assert_int_equal(rto_current(&fresh, &open), INT64_MAX); /* initial INT64_MAX, backed off */
}

/* Limits that cross: max_ms wins. */
static void test_crossed_limits(void **state)
{
    (void)state;
    struct rto_limits crossed = {1000, 5000, 2000};
    struct rto r;
    rto_init(&r);
    assert_int_equal(rto_current(&r, &crossed), 2000);
    rto_sample(&r, 1000);
    assert_int_equal(rto_current(&r, &crossed), 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial),         cmocka_unit_test(test_first_sample),
        cmocka_unit_test(test_convergence),     cmocka_unit_test(test_variation),
        cmocka_unit_test(test_bounds),          cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_jitter),          cmocka_unit_test(test_sub_millisecond),
        cmocka_unit_test(test_extreme_samples), cmocka_unit_test(test_crossed_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
