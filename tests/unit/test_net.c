/* net: the canonical address key (net_addr_key). */
#include "util/net.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

static void key_of(const char *host, unsigned port, uint8_t key[NET_ADDR_KEY_BYTES])
{
    struct net_addr a;
    memset(&a, 0x5a, sizeof a); /* padding left dirty: the key must not depend on it */
    assert_int_equal(net_addr_parse(host, port, &a), 0);
    net_addr_key(&a, key);
}

static void test_known_keys(void **state)
{
    (void)state;
    uint8_t k[NET_ADDR_KEY_BYTES];
    const uint8_t v4[NET_ADDR_KEY_BYTES] = {0,    0,    0,  0, 0, 0, 0,    0,   0, 0,
                                            0xff, 0xff, 10, 1, 2, 3, 0xf1, 0x4d}; /* port 61773 */
    key_of("10.1.2.3", 61773, k);
    assert_memory_equal(k, v4, sizeof v4);
    key_of("::ffff:10.1.2.3", 61773, k); /* the same peer through an IPv6 socket */
    assert_memory_equal(k, v4, sizeof v4);
    const uint8_t six[NET_ADDR_KEY_BYTES] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0,
                                             0,    0,    0,    0,    0, 0, 1, 0, 80};
    key_of("2001:db8::1", 80, k);
    assert_memory_equal(k, six, sizeof six);
    /* the host alone is the first NET_ADDR_KEY_HOST_BYTES: the port is last */
    uint8_t k2[NET_ADDR_KEY_BYTES];
    key_of("2001:db8::1", 81, k2);
    assert_memory_equal(k, k2, NET_ADDR_KEY_HOST_BYTES);
    assert_memory_not_equal(k, k2, NET_ADDR_KEY_BYTES);
    /* an unknown family: all zero */
    struct net_addr none;
    memset(&none, 0, sizeof none);
    memset(k, 0xee, sizeof k);
    net_addr_key(&none, k);
    const uint8_t zero[NET_ADDR_KEY_BYTES] = {0};
    assert_memory_equal(k, zero, sizeof zero);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
