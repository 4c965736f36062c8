/* route: where a row goes (a named peer, the peer of its address, the shared secret) and why not.
 */
#include "daemon/route.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#define K1 "1111111111111111111111111111111111111111111111111111111111111111"
#define K2 "2222222222222222222222222222222222222222222222222222222222222222"

static struct peertab *pt;
static struct envelope_key *shared;

static int setup(void **state)
{
    (void)state;
    const char *text =
        "[peer berlin]\nendpoint = 192.0.2.7:61773\nallowed = 192.0.2.0/24\n"
        "key = " K1 "\n"
        "[peer laptop]\nallowed = 0.0.0.0/0\nkey = " K2 "\nwire = 1\nroaming = yes\n";
    struct peers_conf pc;
    char err[256];
    assert_int_equal(peers_parse(text, strlen(text), "peers", &pc, err, sizeof err), 0);
    pt = peertab_new(16);
    assert_non_null(pt);
    assert_int_equal(peertab_apply(pt, &pc, "paris", NULL, err, sizeof err), 0);
    peers_free(&pc);
    shared = envelope_key_from_hex(K2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    peertab_free(pt);
    envelope_key_free(shared);
    return 0;
}

static struct store_outbound_row row(const char *peer, const char *addr, int64_t port)
{
    struct store_outbound_row r = {0};
    r.rowid = 1;
    r.peer = peer;
    r.dst_addr = addr;
    r.dst_port = port;
    r.dst_port_text = "?";
    return r;
}

static void test_named_peer(void **state)
{
    (void)state;
    struct net_addr dst;
    struct peer *p = NULL;
    char err[256];
    struct store_outbound_row r = row("berlin", "", 0); /* its dst_addr and dst_port are ignored */
    assert_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    assert_ptr_equal(p, peertab_find(pt, "berlin"));
    assert_true(net_addr_same_peer(&dst, &p->endpoint));
    struct sendq_as as;
    route_seal_as(pt, p, shared, &as);
    assert_ptr_equal(as.key, p->send);
    assert_ptr_equal(as.v2_id, p->send_id);
    assert_int_equal(as.peer_slot, peertab_slot(pt, p));
    r = row("nobody", "", 0);
    assert_non_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    assert_non_null(strstr(err, "no peer named 'nobody'"));
    r = row("laptop", "", 0); /* no endpoint until it roams (test_by_address roams it) */
    assert_non_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    assert_non_null(strstr(err, "peer laptop has no endpoint"));
}

static void test_by_address(void **state)
{
    (void)state;
    struct net_addr dst;
    struct peer *p = NULL;
    char err[256];
    struct store_outbound_row r = row(NULL, "192.0.2.7", 61773); /* berlin's endpoint */
    assert_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    assert_string_equal(p->name, "berlin");
    r = row(NULL, "192.0.2.9", 61773); /* inside berlin's allowed, but another host */
    assert_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    assert_null(p);
    r = row(NULL, "198.51.100.1", 5000); /* laptop's allowed is everywhere: it takes no rows */
    assert_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    assert_null(p);
    struct net_addr roamed;
    assert_int_equal(net_addr_parse("198.51.100.1", 5000, &roamed), 0);
    peertab_roam(pt, peertab_find(pt, "laptop"), &roamed); /* until it is heard from there */
    assert_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    assert_string_equal(p->name, "laptop");
    struct sendq_as as;
    route_seal_as(pt, p, shared, &as);
    assert_null(as.v2_id); /* wire 1: version 1 under its pair key */
    assert_ptr_equal(as.key, p->send);
    r = row(NULL, "2001:db8::1", 5000); /* no peer's: the shared secret */
    assert_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    assert_null(p);
    route_seal_as(pt, NULL, shared, &as);
    assert_ptr_equal(as.key, shared);
    assert_int_equal(as.peer_slot, -1);
    assert_non_null(route_row(pt, NULL, &r, &dst, &p, err, sizeof err)); /* and none */
    assert_non_null(strstr(err, "no key for dst_addr '2001:db8::1' port 5000"));
    r = row(NULL, "not an address", 5000);
    assert_non_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    r = row(NULL, "192.0.2.9", 0);
    assert_non_null(route_row(pt, shared, &r, &dst, &p, err, sizeof err));
    assert_non_null(strstr(err, "dst_port"));
}

static void test_too_large(void **state)
{
    (void)state;
    char err[128];
    struct peer *v2 = peertab_find(pt, "berlin"), *v1 = peertab_find(pt, "laptop");
    const size_t max = 1 << 20; /* SECUREDGRAM_MAX_MESSAGE: a version 2 peer takes it in parts */
    assert_null(route_too_large(v2, max, max, err, sizeof err));
    assert_non_null(route_too_large(v2, max + 1, max, err, sizeof err));
    assert_non_null(strstr(err, "SECUREDGRAM_MAX_MESSAGE is 1048576"));
    /* version 1 keeps its one-datagram limit, which message_prepare and the claim check */
    assert_null(route_too_large(v1, max + 1, max, err, sizeof err));
    assert_null(route_too_large(NULL, max + 1, max, err, sizeof err));
}

int main(void)
{
    assert_int_equal(envelope_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_peer),
        cmocka_unit_test(test_by_address),
        cmocka_unit_test(test_too_large),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
