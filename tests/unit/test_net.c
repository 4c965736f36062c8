/* net: the canonical address key (net_addr_key); batches of datagrams over real UDP. */
#include "util/net.h"

#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static unsigned bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Every datagram waiting on fd, each one's first byte its destination tag checked. */
static int drain(int fd, uint8_t tag, size_t *lens, uint8_t *seq, int max)
{
    int got = 0;
    uint8_t buf[65536];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 500) != 1)
            return got; /* all arrived (loopback delivers within the send call) */
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        assert_true(r >= 2);
        assert_int_equal(buf[0], tag);
        for (ssize_t i = 2; i < r; i++)
            assert_int_equal(buf[i],
                             (uint8_t)(buf[1] + i)); /* bytes intact, none from a neighbour */
        assert_true(got < max);
        lens[got] = (size_t)r;
        seq[got++] = buf[1];
    }
}

/*
 * A batch mixing trains of equal datagrams (longer than one train can be),
 * odd sizes, a shorter one ending a train and two destinations: each
 * datagram arrives once, whole, in order, at its own address.
 */
static void test_send_batch_trains(void **state)
{
    (void)state;
    char err[256];
    int tx = net_bind("127.0.0.1", 0, 1 << 20, err, sizeof err);
    int r1 = net_bind("127.0.0.1", 0, 4 << 20, err, sizeof err);
    int r2 = net_bind("127.0.0.1", 0, 4 << 20, err, sizeof err);
    assert_true(tx >= 0 && r1 >= 0 && r2 >= 0);
    struct net_addr a1, a2;
    assert_int_equal(net_addr_parse("127.0.0.1", bound_port(r1), &a1), 0);
    assert_int_equal(net_addr_parse("127.0.0.1", bound_port(r2), &a2), 0);
    enum { N = 200 };
    static uint8_t bufs[N][1400];
    struct net_dgram d[N];
    size_t want1[N], want2[N];
    int n1 = 0, n2 = 0;
    for (int i = 0; i < N; i++) {
        /* 0-69: 70 of 90 bytes to r1 (more than one train); 70-72: 91, 50, 1400; 73-99: 27
         * of 90 to r2, then a shorter one; the rest alternate destinations and sizes */
        size_t len = i < 70     ? 90
                     : i == 70  ? 91
                     : i == 71  ? 50
                     : i == 72  ? 1400
                     : i < 100  ? 90
                     : i == 100 ? 40
                                : 60 + (size_t)(i % 3);
        int to2 = (i >= 73 && i <= 100) || (i > 100 && i % 2);
        memset(&d[i], 0, sizeof d[i]);
        d[i].buf = bufs[i];
        d[i].len = len;
        d[i].addr = to2 ? a2 : a1;
        d[i].err = -1;
        bufs[i][0] = to2 ? 2 : 1;
        bufs[i][1] = (uint8_t)i;
        for (size_t b = 2; b < len; b++)
            bufs[i][b] = (uint8_t)(i + (int)b);
        if (to2)
            want2[n2++] = len;
        else
            want1[n1++] = len;
    }
    assert_int_equal(net_send_batch(tx, d, N), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(d[i].err, 0);
    size_t got_len[N];
    uint8_t seq[N];
    assert_int_equal(drain(r1, 1, got_len, seq, N), n1);
    for (int i = 0; i < n1; i++)
        assert_int_equal(got_len[i], want1[i]);
    for (int i = 1; i < n1; i++)
        assert_true(seq[i] > seq[i - 1]);
    assert_int_equal(drain(r2, 2, got_len, seq, N), n2);
    for (int i = 0; i < n2; i++)
        assert_int_equal(got_len[i], want2[i]);
    for (int i = 1; i < n2; i++)
        assert_true(seq[i] > seq[i - 1]);
    close(tx);
    close(r1);
    close(r2);
}

/* A datagram the kernel refuses (too large) fails alone; the train after it still goes. */
static void test_send_batch_errors(void **state)
{
    (void)state;
    char err[256];
    int tx = net_bind("127.0.0.1", 0, 1 << 20, err, sizeof err);
    int rx = net_bind("127.0.0.1", 0, 4 << 20, err, sizeof err);
    assert_true(tx >= 0 && rx >= 0);
    struct net_addr a;
    assert_int_equal(net_addr_parse("127.0.0.1", bound_port(rx), &a), 0);
    static uint8_t big[70000], small[5][100];
    struct net_dgram d[6];
    memset(d, 0, sizeof d);
    d[0].buf = big;
    d[0].len = sizeof big; /* over UDP's 65,507 */
    d[0].addr = a;
    for (int i = 1; i < 6; i++) {
        d[i].buf = small[i - 1];
        d[i].len = 100;
        d[i].addr = a;
        small[i - 1][0] = 1;
        small[i - 1][1] = (uint8_t)i;
        for (int b = 2; b < 100; b++)
            small[i - 1][b] = (uint8_t)(i + b);
    }
    assert_int_equal(net_send_batch(tx, d, 6), 5);
    assert_int_equal(d[0].err, EMSGSIZE);
    for (int i = 1; i < 6; i++)
        assert_int_equal(d[i].err, 0);
    size_t lens[8];
    uint8_t seq[8];
    assert_int_equal(drain(rx, 1, lens, seq, 8), 5);
    close(tx);
    close(rx);
}

/* Endpoints format as net_endpoint_parse reads them: v6 in brackets, a v4-mapped one as v4. */
static void test_endpoint_format_round_trip(void **state)
{
    (void)state;
    const char *texts[] = {"127.0.0.1:9477", "[::1]:65535", "[2001:db8::7]:1"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct net_addr a;
        char out[NET_ENDPOINT_MAX];
        assert_int_equal(net_endpoint_parse(texts[i], &a), 0);
        net_endpoint_format(&a, out);
        assert_string_equal(out, texts[i]);
    }
    struct net_addr m;
    char out[NET_ENDPOINT_MAX];
    assert_int_equal(net_endpoint_parse("[::ffff:192.0.2.1]:53", &m), 0);
    net_endpoint_format(&m, out);
    assert_string_equal(out, "192.0.2.1:53");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_keys),
        cmocka_unit_test(test_send_batch_trains),
        cmocka_unit_test(test_send_batch_errors),
        cmocka_unit_test(test_endpoint_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
