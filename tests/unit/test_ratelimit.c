/* ratelimit: a token bucket per sender address. */
#include "daemon/ratelimit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

static struct net_addr addr(const char *host, unsigned port)
{
    struct net_addr a;
    assert_int_equal(net_addr_parse(host, port, &a), 0);
    return a;
}

static void test_off_allows_everything(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(4);
    struct net_addr a = addr("127.0.0.1", 1);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(ratelimit_allow(rl, &a, 0, 0, 0), 1);
    ratelimit_free(rl);
}

/* A burst passes, then one message per 1/rate seconds; the port does not matter. */
static void test_burst_then_rate(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(4);
    struct net_addr a = addr("10.0.0.1", 1), a2 = addr("10.0.0.1", 2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ratelimit_allow(rl, i % 2 ? &a : &a2, 10, 5, 1000), 1);
    assert_int_equal(ratelimit_allow(rl, &a, 10, 5, 1000), 0);
    assert_int_equal(ratelimit_allow(rl, &a2, 10, 5, 1050), 0); /* half a token */
    assert_int_equal(ratelimit_allow(rl, &a2, 10, 5, 1100), 1); /* one token after 100 ms */
    assert_int_equal(ratelimit_allow(rl, &a, 10, 5, 1100), 0);
    /* a long silence refills only up to the burst */
    int passed = 0;
    for (int i = 0; i < 20; i++)
        passed += ratelimit_allow(rl, &a, 10, 5, 100000);
    assert_int_equal(passed, 5);
    ratelimit_free(rl);
}

static void test_senders_independent(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(4);
    struct net_addr a = addr("10.0.0.1", 1), b = addr("10.0.0.2", 1), c = addr("::1", 1);
    while (ratelimit_allow(rl, &a, 1, 3, 0))
        ;
    assert_int_equal(ratelimit_allow(rl, &b, 1, 3, 0), 1);
    assert_int_equal(ratelimit_allow(rl, &c, 1, 3, 0), 1);
    ratelimit_free(rl);
}

/* With every slot busy a new sender waits; once a sender is idle (full bucket) it is replaced. */
static void test_table_full(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(2);
    struct net_addr a = addr("10.0.0.1", 1), b = addr("10.0.0.2", 1), c = addr("10.0.0.3", 1);
    assert_int_equal(ratelimit_allow(rl, &a, 1, 2, 0), 1);
    assert_int_equal(ratelimit_allow(rl, &b, 1, 2, 0), 1);
    assert_int_equal(ratelimit_allow(rl, &c, 1, 2, 0), 0);
    assert_int_equal(ratelimit_allow(rl, &c, 1, 2, 5000), 1); /* a and b idle by now */
    ratelimit_free(rl);
}

/* One bucket per host: an IPv4 sender heard on an IPv6 socket (IPv4-mapped) shares it. */
static void test_v4_mapped_same_sender(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(4);
    struct net_addr v4 = addr("10.0.0.9", 1), mapped = addr("::ffff:10.0.0.9", 2);
    struct net_addr six = addr("::a00:9", 1); /* IPv4-compatible, not mapped: another host */
    assert_int_equal(ratelimit_allow(rl, &v4, 1, 2, 0), 1);
    assert_int_equal(ratelimit_allow(rl, &mapped, 1, 2, 0), 1);
    assert_int_equal(ratelimit_allow(rl, &v4, 1, 2, 0), 0);
    assert_int_equal(ratelimit_allow(rl, &mapped, 1, 2, 0), 0);
    assert_int_equal(ratelimit_allow(rl, &six, 1, 2, 0), 1);
    ratelimit_free(rl);
}

/* With many senders coming and going, idle ones keep being replaced all round the table. */
static void test_eviction_goes_round(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(8);
    char host[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(host, sizeof host, "10.0.%d.%d", i / 250, i % 250 + 1);
        struct net_addr a = addr(host, 1);
        /* each sender is idle again 1 s later (burst 1 at 1/s): room is always made */
        assert_int_equal(ratelimit_allow(rl, &a, 1, 1, (int64_t)i * 1000), 1);
        assert_int_equal(ratelimit_allow(rl, &a, 1, 1, (int64_t)i * 1000), 0);
    }
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_allows_everything), cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_senders_independent),   cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_v4_mapped_same_sender), cmocka_unit_test(test_eviction_goes_round),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
