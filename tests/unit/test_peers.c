/* peers: the peers file's grammar, its refusals (one line each), and the networks it names. */
#include "conf/peers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define K1 "0000000000000000000000000000000000000000000000000000000000000001"
#define K2 "00000000000000000000000000000000000000000000000000000000000000a2"

static int parse(const char *text, struct peers_conf *pc, char *err, size_t errlen)
{
    return peers_parse(text, strlen(text), "peers.conf", pc, err, errlen);
}

/* text must be refused, with an error that starts "peers.conf line LINE: " and holds want. */
static void refused(const char *text, int line, const char *want)
{
    struct peers_conf pc;
    char err[512], head[64];
    if (parse(text, &pc, err, sizeof err) == 0)
        fail_msg("accepted: %s", text);
    assert_int_equal(pc.n, 0);
    assert_null(pc.peer);
    snprintf(head, sizeof head, "peers.conf line %d: ", line);
    if (strncmp(err, head, strlen(head)) != 0 || strstr(err, want) == NULL)
        fail_msg("for\n%s\ngot: %s\nwant line %d and: %s", text, err, line, want);
    assert_null(strchr(err, '\n'));
}

static void test_full_example(void **state)
{
    (void)state;
    const char *text = "# the fleet\n"
                       "\n"
                       "[peer berlin]\n"
                       "endpoint = 203.0.113.7:61773        # where to send\n"
                       "allowed = 203.0.113.0/24, 2001:db8::/32\n"
                       "key = " K1 "\n"
                       "previous-key = " K2 "\n"
                       "previous-key-until = 2027-01-31T00:00:00Z\n"
                       "wire = 1\r\n"
                       "roaming = yes\n"
                       "[peer paris]\n"
                       "  endpoint=[2001:db8::7]:5000\n"
                       "key = derive\n"
                       "[ Peer tokyo-2.a_b ]\n"
                       "allowed = 198.51.100.9\n"
                       "allowed = 10.0.0.0/8\n"
                       "key-file = /etc/securedgram/tokyo.key";
    struct peers_conf pc;
    char err[512];
    assert_int_equal(parse(text, &pc, err, sizeof err), 0);
    assert_int_equal(pc.n, 3);
    const struct peer_conf *b = peers_find(&pc, "berlin");
    assert_non_null(b);
    assert_int_equal(b->line, 3);
    assert_true(b->has_endpoint);
    assert_int_equal(ntohs(b->endpoint.u.v4.sin_port), 61773);
    assert_int_equal(b->nallowed, 2);
    assert_int_equal(b->allowed[0].bits, 24);
    assert_int_equal(b->allowed[1].family, AF_INET6);
    assert_int_equal(b->key_kind, PEER_KEY_HEX);
    assert_int_equal(b->key[31], 1);
    assert_true(b->has_previous);
    assert_int_equal(b->previous[31], 0xa2);
    assert_true(b->previous_until == 1801353600);
    assert_int_equal(b->wire, 1);
    assert_true(b->roaming);
    const struct peer_conf *p = peers_find(&pc, "paris");
    assert_int_equal(p->key_kind, PEER_KEY_DERIVE);
    assert_int_equal(p->wire, 2);
    assert_false(p->roaming);
    /* no allowed: the endpoint's own address */
    assert_int_equal(p->nallowed, 1);
    assert_int_equal(p->allowed[0].bits, 128);
    assert_true(net_prefix_contains(&p->allowed[0], &p->endpoint));
    const struct peer_conf *t = peers_find(&pc, "tokyo-2.a_b");
    assert_non_null(t);
    assert_false(t->has_endpoint);
    assert_int_equal(t->nallowed, 2);
    assert_int_equal(t->key_kind, PEER_KEY_FILE);
    assert_string_equal(t->key_file, "/etc/securedgram/tokyo.key");
    assert_null(peers_find(&pc, "Berlin"));
    peers_free(&pc);
    assert_int_equal(pc.n, 0);
    /* empty and comment-only files: no peers */
    assert_int_equal(parse("", &pc, err, sizeof err), 0);
    assert_int_equal(pc.n, 0);
    assert_int_equal(parse("# nothing\n\n   \n", &pc, err, sizeof err), 0);
    assert_int_equal(pc.n, 0);
    peers_free(&pc);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("endpoint = 1.2.3.4:5\n", 1, "outside any [peer NAME] section");
    refused("[peer a]\nkey = " K1 "\nendpoint = 1.2.3.4:5\n[group b]\n", 4, "unknown section");
    refused("[peer a\n", 1, "must end with ']'");
    refused("[peer]\n", 1, "unknown section");
    refused("[peer .a]\n", 1, "is not 1-64");
    refused("[peer a b]\n", 1, "is not 1-64");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\n[peer a]\n", 4,
            "defined twice (first on line 1)");
    refused("[peer a]\nkey = " K1 "\nallowed = 10.0.0.1\nkey = " K2 "\n", 4, "key is given twice");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = abc\n", 3, "64 hex digits");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "0\n", 3, "64 hex digits");
    refused("[peer a]\nallowed = 10.0.0.1\n", 1, "has no key");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\nkey-file = /k\n", 1,
            "both key and key-file");
    refused("[peer a]\nkey = " K1 "\n", 1, "neither allowed nor endpoint");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\nprevious-key = " K2 "\n", 1,
            "go together");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\nprevious-key = " K1
            "\nprevious-key-until = 2027-01-01T00:00:00Z\n",
            1, "same as key");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\nprevious-key = " K2
            "\nprevious-key-until = 2027-01-01 00:00:00\n",
            5, "YYYY-MM-DDTHH:MM:SSZ");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\nprevious-key = " K2
            "\nprevious-key-until = 2027-02-30T00:00:00Z\n",
            5, "YYYY-MM-DDTHH:MM:SSZ");
    refused("[peer a]\nendpoint = example.com:5000\nkey = " K1 "\n", 2, "not ADDRESS:PORT");
    refused("[peer a]\nendpoint = ::1:5000\nkey = " K1 "\n", 2, "not ADDRESS:PORT");
    refused("[peer a]\nendpoint = 10.0.0.1:0\nkey = " K1 "\n", 2, "not ADDRESS:PORT");
    refused("[peer a]\nendpoint = 10.0.0.1:65536\nkey = " K1 "\n", 2, "not ADDRESS:PORT");
    refused("[peer a]\nallowed = 10.1.2.3/8\nkey = " K1 "\n", 2, "not a network");
    refused("[peer a]\nallowed = 10.0.0.0/33\nkey = " K1 "\n", 2, "not a network");
    refused("[peer a]\nallowed = 10.0.0.0/8,\nkey = " K1 "\n", 2, "empty entry");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\nwire = 3\n", 4, "wire must be 1");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\nroaming = maybe\n", 4, "yes or no");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\nkeepalive = 25\n", 4,
            "unknown setting 'keepalive'");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\njust words\n", 4, "expected NAME = VALUE");
    refused("[peer a]\nallowed = 10.0.0.1\nkey =\n", 3, "has no value");
    refused("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\n[peer b]\nallowed = 10.0.0.2\nkey = " K1
            "\n",
            4, "peers a and b have the same key");
    /* a NUL byte, a line too long, a file too large */
    struct peers_conf pc;
    char err[512];
    assert_int_equal(peers_parse("[peer a]\0x", 10, "peers.conf", &pc, err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL byte"));
    static char big[PEERS_TEXT_MAX + 2];
    memset(big, '#', sizeof big);
    assert_int_equal(peers_parse(big, 5000, "peers.conf", &pc, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 1: a line over"));
    assert_int_equal(peers_parse(big, sizeof big, "peers.conf", &pc, err, sizeof err), -1);
    assert_non_null(strstr(err, "over 1048576 bytes"));
}

/* An error never quotes a key. */
static void test_errors_keep_keys_out(void **state)
{
    (void)state;
    struct peers_conf pc;
    char err[512];
    const char *text = "[peer a]\nallowed = 10.0.0.1\nkey = " K1 "\n[peer b]\nallowed = 10.0.0.2\n"
                       "key = " K1 "\n";
    assert_int_equal(parse(text, &pc, err, sizeof err), -1);
    assert_null(strstr(err, K1));
    assert_int_equal(parse("[peer a]\nallowed = 10.0.0.1\nkey = " K1 "zz\n", &pc, err, sizeof err),
                     -1);
    assert_null(strstr(err, K1));
}

static void test_key_text(void **state)
{
    (void)state;
    uint8_t key[PEER_KEY_BYTES];
    char err[128];
    assert_int_equal(peers_key_text(K2 "\n", strlen(K2) + 1, key, err, sizeof err), 0);
    assert_int_equal(key[31], 0xa2);
    assert_int_equal(peers_key_text(K2, strlen(K2), key, err, sizeof err), 0);
    assert_int_equal(peers_key_text(K2 " \r\n", strlen(K2) + 3, key, err, sizeof err), 0);
    assert_int_equal(peers_key_text("x" K2, strlen(K2) + 1, key, err, sizeof err), -1);
    assert_int_equal(peers_key_text(K2 "\nmore", strlen(K2) + 5, key, err, sizeof err), -1);
    assert_int_equal(peers_key_text("", 0, key, err, sizeof err), -1);
    assert_non_null(strstr(err, "64 hex digits"));
}

static void test_names(void **state)
{
    (void)state;
    assert_true(peers_name_valid("a"));
    assert_true(peers_name_valid("berlin-1.dc_2"));
    char n64[65], n65[66];
    memset(n64, 'x', 64);
    n64[64] = '\0';
    memset(n65, 'x', 65);
    n65[65] = '\0';
    assert_true(peers_name_valid(n64));
    assert_false(peers_name_valid(n65));
    assert_false(peers_name_valid(""));
    assert_false(peers_name_valid("-a"));
    assert_false(peers_name_valid(".a"));
    assert_false(peers_name_valid("a/b"));
    assert_false(peers_name_valid("a b"));
    assert_false(peers_name_valid("caf\xc3\xa9"));
}

static void addr(const char *host, struct net_addr *a)
{
    assert_int_equal(net_addr_parse(host, 1, a), 0);
}

static void test_prefixes(void **state)
{
    (void)state;
    struct net_prefix p;
    struct net_addr a;
    char text[96];
    assert_int_equal(net_prefix_parse("192.0.2.0/24", &p), 0);
    addr("192.0.2.200", &a);
    assert_true(net_prefix_contains(&p, &a));
    addr("192.0.3.1", &a);
    assert_false(net_prefix_contains(&p, &a));
    addr("::ffff:192.0.2.9", &a); /* as an IPv6 socket hears an IPv4 sender */
    assert_true(net_prefix_contains(&p, &a));
    addr("2001:db8::1", &a);
    assert_false(net_prefix_contains(&p, &a));
    net_prefix_format(&p, text, sizeof text);
    assert_string_equal(text, "192.0.2.0/24");

    assert_int_equal(net_prefix_parse("10.0.0.0/9", &p), 0);
    addr("10.127.255.255", &a);
    assert_true(net_prefix_contains(&p, &a));
    addr("10.128.0.0", &a);
    assert_false(net_prefix_contains(&p, &a));

    assert_int_equal(net_prefix_parse("0.0.0.0/0", &p), 0);
    addr("203.0.113.1", &a);
    assert_true(net_prefix_contains(&p, &a));
    assert_int_equal(net_prefix_parse("2001:db8::/32", &p), 0);
    addr("2001:db8:ffff::1", &a);
    assert_true(net_prefix_contains(&p, &a));
    addr("2001:db9::1", &a);
    assert_false(net_prefix_contains(&p, &a));
    assert_int_equal(net_prefix_parse("::1", &p), 0);
    assert_int_equal(p.bits, 128);
    addr("::1", &a);
    assert_true(net_prefix_contains(&p, &a));

    const char *bad[] = {
        "",       "/8",           "10.0.0.0/",   "10.0.0.0/08", "10.0.0.0/33", "10.0.0.1/24",
        "::/129", "10.0.0.0/8/8", "10.0.0.0/-1", "host/8",      "10.0.0.0 /8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (net_prefix_parse(bad[i], &p) == 0)
            fail_msg("accepted '%s'", bad[i]);
}

static void test_endpoints(void **state)
{
    (void)state;
    struct net_addr a;
    char host[NET_HOST_MAX];
    unsigned port;
    assert_int_equal(net_endpoint_parse("203.0.113.7:61773", &a), 0);
    net_addr_format(&a, host, &port);
    assert_string_equal(host, "203.0.113.7");
    assert_int_equal(port, 61773);
    assert_int_equal(net_endpoint_parse("[2001:db8::7]:1", &a), 0);
    net_addr_format(&a, host, &port);
    assert_string_equal(host, "2001:db8::7");
    assert_int_equal(port, 1);
    assert_int_equal(net_endpoint_parse("localhost:5000", &a), 0);
    const char *bad[] = {"",
                         ":5000",
                         "1.2.3.4",
                         "1.2.3.4:",
                         "1.2.3.4:0",
                         "1.2.3.4:65536",
                         "1.2.3.4:050",
                         "1.2.3.4:5x",
                         "::1:5000",
                         "[1.2.3.4]:5",
                         "[::1]5000",
                         "[::1]:",
                         "example.org:80",
                         "1.2.3.4:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (net_endpoint_parse(bad[i], &a) == 0)
            fail_msg("accepted '%s'", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_errors_keep_keys_out),
        cmocka_unit_test(test_key_text),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
