/*
 * dests: a destination with a full window is blocked (and in the list
 * claims leave out) until an ACK opens it; one silent for as long as its
 * retries would take is offered for its backlog to fail, once a retry
 * interval.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/dests.h"
#include "daemon/flow.h"

#include <string.h>

static struct net_addr addr(const char *host, unsigned port)
{
    struct net_addr a;
    assert_int_equal(net_addr_parse(host, port, &a), 0);
    return a;
}

static struct config cfg = {.max_retries = 2, .retry_interval = 1}; /* deadline: 3 s */

static struct store_outbound_row row_to(const char *host, int64_t port, int64_t age_ms)
{
    struct store_outbound_row r;
    memset(&r, 0, sizeof r);
    r.dst_addr = host;
    r.dst_port = port;
    r.age_ms = age_ms;
    return r;
}

static void test_block_and_release(void **state)
{
    (void)state;
    struct dests d = {.cfg = &cfg};
    struct net_addr a = addr("127.0.0.1", 9000), b = addr("127.0.0.1", 9001);
    struct store_outbound_row ra = row_to("127.0.0.1", 9000, 0);
    int n = -1;
    assert_int_equal(dests_init(&d, 1000), 0);
    assert_int_equal(dests_deadline_ms(&d), 3000);
    assert_null(dests_exclusions(&d, &n));
    for (int i = 0; i < FLOW_WINDOW_START; i++)
        assert_int_equal(dests_admit(&d, &ra, &a, 0), DESTS_GO);
    assert_int_equal(dests_admit(&d, &ra, &a, 0), DESTS_WAIT);
    assert_int_equal(dests_admit(&d, &ra, &a, 0), DESTS_WAIT); /* remembered once */
    assert_int_equal(d.nblocked, 1);
    const struct store_dest *list = dests_exclusions(&d, &n);
    assert_non_null(list);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].addr, "127.0.0.1");
    assert_int_equal(list[0].port, 9000);
    dests_excluded(&d);
    assert_null(dests_exclusions(&d, &n));

    assert_int_equal(dests_release(&d, &b, 1), 0); /* another destination */
    assert_int_equal(dests_release(&d, &a, 1), 1); /* room again: claim */
    assert_int_equal(d.nblocked, 0);
    assert_non_null(dests_exclusions(&d, &n));
    assert_int_equal(n, 0);
    assert_int_equal(dests_release(&d, &a, 1), 0);
    dests_fini(&d);
}

/*
 * Parts leave flight through the flow table itself, not dests_release: a
 * destination whose window they opened is unblocked by dests_unblock (a
 * message that found it full waited for ever before, its rows left out of
 * every claim).
 */
static void test_unblock_by_parts(void **state)
{
    (void)state;
    struct dests d = {.cfg = &cfg};
    struct net_addr a = addr("127.0.0.1", 9000);
    struct store_outbound_row ra = row_to("127.0.0.1", 9000, 0);
    assert_int_equal(dests_init(&d, 1000), 0);
    for (int i = 0; i < FLOW_WINDOW_START; i++)
        assert_int_equal(dests_admit(&d, &ra, &a, 0), DESTS_GO);
    assert_int_equal(dests_admit(&d, &ra, &a, 0), DESTS_WAIT);
    assert_int_equal(dests_unblock(&d, &a), 0); /* still full */
    flow_done(d.flows, &a, 1);                  /* a part delivered */
    flow_done(d.flows, &a, 1);
    assert_int_equal(dests_unblock(&d, &a), 1);
    assert_int_equal(d.nblocked, 0);
    /* the message's own place then leaves as before, with nothing left to unblock */
    assert_int_equal(dests_release(&d, &a, 1), 0);
    dests_fini(&d);
}

static void test_silent_destination(void **state)
{
    (void)state;
    struct dests d = {.cfg = &cfg};
    struct net_addr a = addr("::1", 7);
    struct store_outbound_row young = row_to("::1", 7, 0), old = row_to("::1", 7, 5000);
    int i = 0;
    assert_int_equal(dests_init(&d, 1000), 0);
    while (dests_admit(&d, &young, &a, 1000) == DESTS_GO)
        flow_note_send(d.flows, &a, 1000);
    assert_null(dests_next_silent(&d, &i, 3999)); /* not yet */
    i = 0;
    const struct store_dest *s = dests_next_silent(&d, &i, 4000);
    assert_non_null(s);
    assert_string_equal(s->addr, "::1");
    assert_int_equal(s->port, 7);
    assert_null(dests_next_silent(&d, &i, 4000));
    i = 0;
    assert_null(dests_next_silent(&d, &i, 4999)); /* checked again a retry interval later */
    i = 0;
    assert_non_null(dests_next_silent(&d, &i, 5000));
    /* a row as old as the deadline, to a destination silent as long, fails at once */
    assert_int_equal(dests_admit(&d, &old, &a, 5000), DESTS_SILENT);
    assert_int_equal(dests_admit(&d, &young, &a, 5000), DESTS_WAIT);
    dests_fini(&d);
}

/*
 * Rows that name a peer say nothing in dst_addr: a full window leaves them out
 * by the peer's name, and a silent peer's backlog is offered by its name.
 */
static void test_peer_rows(void **state)
{
    (void)state;
    struct dests d = {.cfg = &cfg};
    struct net_addr ep = addr("192.0.2.7", 61773);
    struct store_outbound_row rp = row_to("", 0, 0), rq = row_to("", 0, 0);
    rp.peer = "berlin";
    rq.peer = "paris";
    int n = -1, np = -1, i = 0;
    assert_int_equal(dests_init(&d, 1000), 0);
    while (dests_admit(&d, &rp, &ep, 1000) == DESTS_GO)
        flow_note_send(d.flows, &ep, 1000);
    const struct store_dest *list = dests_exclusions(&d, &n);
    assert_non_null(list);
    assert_int_equal(n, 0); /* no address is left out */
    const char *const *peers = dests_peer_exclusions(&d, &np);
    assert_int_equal(np, 1);
    assert_string_equal(peers[0], "berlin");
    /* another peer at the same endpoint is blocked under its own name */
    assert_int_equal(dests_admit(&d, &rq, &ep, 1000), DESTS_WAIT);
    assert_non_null(dests_exclusions(&d, &n));
    peers = dests_peer_exclusions(&d, &np);
    assert_int_equal(np, 2);
    assert_non_null(dests_next_silent(&d, &i, 4000));
    assert_string_equal(d.silent_peer, "berlin");
    dests_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_rows),
        cmocka_unit_test(test_block_and_release),
        cmocka_unit_test(test_unblock_by_parts),
        cmocka_unit_test(test_silent_destination),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
