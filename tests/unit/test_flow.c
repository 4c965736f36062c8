/* flow: per-destination windows. */
#include "daemon/flow.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static struct net_addr addr(const char *host, unsigned port)
{
    struct net_addr a;
    assert_int_equal(net_addr_parse(host, port, &a), 0);
    return a;
}

/* A new destination may have FLOW_WINDOW_START messages in flight, no more. */
static void test_window_limits_in_flight(void **state)
{
    (void)state;
    struct flow_table *ft = flow_new(16, 1000);
    struct net_addr a = addr("127.0.0.1", 1000);
    for (int i = 0; i < FLOW_WINDOW_START; i++)
        assert_int_equal(flow_admit(ft, &a, 0), 1);
    assert_int_equal(flow_admit(ft, &a, 0), 0);
    assert_true(flow_blocked(ft, &a));
    assert_int_equal(flow_admit(ft, &a, 1), 1); /* forced: counted anyway */
    uint32_t w, n;
    flow_get(ft, &a, &w, &n);
    assert_int_equal(n, FLOW_WINDOW_START + 1);
    flow_free(ft);
}

/* Destinations are independent: a full window for one never blocks another. */
static void test_destinations_independent(void **state)
{
    (void)state;
    struct flow_table *ft = flow_new(16, 1000);
    struct net_addr dead = addr("127.0.0.1", 1), live = addr("127.0.0.1", 2), six = addr("::1", 1);
    while (flow_admit(ft, &dead, 0))
        ;
    assert_int_equal(flow_admit(ft, &live, 0), 1);
    assert_int_equal(flow_admit(ft, &six, 0), 1);
    assert_false(flow_blocked(ft, &live));
    flow_free(ft);
}

/* ACKs grow the window (slow start: one per ACK), a loss halves it, once per hold time. */
static void test_growth_and_loss(void **state)
{
    (void)state;
    struct flow_table *ft = flow_new(16, 1000);
    struct net_addr a = addr("10.0.0.1", 7);
    uint32_t w, n;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(flow_admit(ft, &a, 0), 1);
        flow_done(ft, &a, 1);
    }
    flow_get(ft, &a, &w, &n);
    assert_int_equal(w, FLOW_WINDOW_START + 10);
    assert_int_equal(n, 0);
    flow_lost(ft, &a, 10000, 5000);
    flow_get(ft, &a, &w, &n);
    assert_int_equal(w, (FLOW_WINDOW_START + 10) / 2);
    flow_lost(ft, &a, 12000, 5000); /* same loss event */
    flow_get(ft, &a, &w, &n);
    assert_int_equal(w, (FLOW_WINDOW_START + 10) / 2);
    for (int i = 0; i < 20; i++)
        flow_lost(ft, &a, 20000 + i * 6000, 5000);
    flow_get(ft, &a, &w, &n);
    assert_int_equal(w, FLOW_WINDOW_MIN);
    /* past the threshold growth is one per window's worth of ACKs */
    for (uint32_t i = 0; i < FLOW_WINDOW_MIN; i++) {
        assert_int_equal(flow_admit(ft, &a, 0), 1);
        flow_done(ft, &a, 1);
    }
    flow_get(ft, &a, &w, &n);
    assert_int_equal(w, FLOW_WINDOW_MIN + 1);
    flow_free(ft);
}

/* A window never passes the maximum; a give-up (not ACKed) frees a slot without growth. */
static void test_max_and_giveup(void **state)
{
    (void)state;
    struct flow_table *ft = flow_new(4, 70);
    struct net_addr a = addr("10.0.0.2", 7);
    uint32_t w, n;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(flow_admit(ft, &a, 0), 1);
        flow_done(ft, &a, 1);
    }
    flow_get(ft, &a, &w, &n);
    assert_int_equal(w, 70);
    assert_int_equal(flow_admit(ft, &a, 0), 1);
    flow_done(ft, &a, 0);
    flow_get(ft, &a, &w, &n);
    assert_int_equal(w, 70);
    assert_int_equal(n, 0);
    flow_free(ft);
}

/* A full table evicts idle destinations, and admits untracked when none is idle. */
static void test_table_full(void **state)
{
    (void)state;
    struct flow_table *ft = flow_new(2, 1000);
    struct net_addr a = addr("10.0.0.1", 1), b = addr("10.0.0.1", 2), c = addr("10.0.0.1", 3);
    assert_int_equal(flow_admit(ft, &a, 0), 1);
    assert_int_equal(flow_admit(ft, &b, 0), 1);
    for (int i = 0; i < 100; i++)
        assert_int_equal(flow_admit(ft, &c, 0), 1); /* untracked: never blocked */
    flow_done(ft, &a, 1);                           /* a idle now: evictable */
    assert_int_equal(flow_admit(ft, &c, 0), 1);
    uint32_t w, n;
    flow_get(ft, &c, &w, &n);
    assert_int_equal(n, 1);
    flow_free(ft);
}

/* Silence: how long since the first datagram to dst that no ACK followed. */
static void test_silence(void **state)
{
    (void)state;
    struct flow_table *ft = flow_new(16, 1000);
    struct net_addr a = addr("127.0.0.1", 9);
    assert_int_equal(flow_silent_ms(ft, &a, 5000), 0); /* untracked */
    assert_int_equal(flow_admit(ft, &a, 0), 1);
    assert_int_equal(flow_silent_ms(ft, &a, 5000), 0); /* admitted, not sent yet */
    flow_note_send(ft, &a, 1000);
    flow_note_send(ft, &a, 2000); /* the first unanswered send counts */
    assert_int_equal(flow_silent_ms(ft, &a, 4000), 3000);
    flow_done(ft, &a, 0); /* given up: still silent */
    assert_int_equal(flow_silent_ms(ft, &a, 4500), 3500);
    assert_int_equal(flow_admit(ft, &a, 0), 1);
    flow_done(ft, &a, 1); /* an ACK: it answers */
    assert_int_equal(flow_silent_ms(ft, &a, 9000), 0);
    flow_note_send(ft, &a, 9000);
    assert_int_equal(flow_silent_ms(ft, &a, 9500), 500);
    flow_free(ft);
}

/* An IPv4 peer is one destination whether an IPv4 or an IPv6 socket names it. */
static void test_v4_mapped_same_destination(void **state)
{
    (void)state;
    struct flow_table *ft = flow_new(16, 1000);
    struct net_addr v4 = addr("10.1.2.3", 7), mapped = addr("::ffff:10.1.2.3", 7);
    struct net_addr other_port = addr("::ffff:10.1.2.3", 8);
    assert_int_equal(flow_admit(ft, &v4, 0), 1);
    assert_int_equal(flow_admit(ft, &mapped, 0), 1);
    uint32_t w, n;
    flow_get(ft, &v4, &w, &n);
    assert_int_equal(n, 2);
    flow_get(ft, &other_port, &w, &n);
    assert_int_equal(n, 0);
    flow_free(ft);
}

/* Delivers n datagrams to a: admitted, then acknowledged. */
static void deliver(struct flow_table *ft, const struct net_addr *a, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(flow_admit(ft, a, 1), 1);
        flow_done(ft, a, 1);
    }
}

/*
 * flow_loss: scattered losses (under one in FLOW_LOSS_SHARE) leave the window
 * alone, however many there are over time; a burst of them cuts it by 30%,
 * and only once per hold.
 */
static void test_loss_share(void **state)
{
    (void)state;
    struct flow_table *ft = flow_new(16, 100000);
    struct net_addr a = addr("127.0.0.1", 1000);
    uint32_t w0, w, n;
    deliver(ft, &a, 1);
    flow_get(ft, &a, &w0, &n);
    int64_t now = 0;
    for (int round = 0; round < 50; round++) { /* 1 lost in 100: a noisy link */
        deliver(ft, &a, 99);
        flow_get(ft, &a, &w0, &n);
        flow_loss(ft, &a, now += 100, 50, 1);
        flow_get(ft, &a, &w, &n);
        assert_int_equal(w, w0);
    }
    flow_loss(ft, &a, now += 100, 50, 400); /* a full queue: most of a round lost */
    flow_get(ft, &a, &w, &n);
    assert_int_equal(w, w0 * 7 / 10);
    flow_loss(ft, &a, now + 10, 50, 400); /* within the hold: one loss event */
    uint32_t w2;
    flow_get(ft, &a, &w2, &n);
    assert_int_equal(w2, w);
    flow_loss(ft, &a, now + 60, 50, 400);
    flow_get(ft, &a, &w2, &n);
    assert_int_equal(w2, w * 7 / 10);
    /* the estimator lives with the destination */
    struct rto *r = flow_rto(ft, &a);
    assert_non_null(r);
    rto_sample(r, 50000);
    assert_ptr_equal(flow_rto(ft, &a), r);
    assert_int_equal(rto_srtt_ms(flow_rto(ft, &a)), 50);
    /* a long quiet spell does not hide a burst: what came long ago weighs little */
    deliver(ft, &a, 100000);
    flow_get(ft, &a, &w, &n);
    flow_loss(ft, &a, now += 2000, 50, 20);
    flow_get(ft, &a, &w2, &n);
    assert_int_equal(w2, w * 7 / 10);
    /* never below the minimum */
    for (int i = 0; i < 40; i++)
        flow_loss(ft, &a, now += 1000, 50, 1000);
    flow_get(ft, &a, &w, &n);
    assert_int_equal(w, FLOW_WINDOW_MIN);
    flow_free(ft);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_limits_in_flight),
        cmocka_unit_test(test_destinations_independent),
        cmocka_unit_test(test_growth_and_loss),
        cmocka_unit_test(test_max_and_giveup),
        cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_silence),
        cmocka_unit_test(test_v4_mapped_same_destination),
        cmocka_unit_test(test_loss_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
