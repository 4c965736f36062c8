/*
 * sendq: sealing into one arena, the queue's and the arena's bounds, one
 * batch per socket on flush with each datagram's result in its place, and
 * the choice of socket per destination. Sends go through test doubles
 * (struct engine_io, as the fuzzer's) so nothing leaves the machine; the
 * wall clock is a double too, so the sealed timestamp is known.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/engine.h"
#include "daemon/sendq.h"
#include "daemon/sysio.h"
#include "wire/envelope.h"
#include "wire/message.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KEY "0793ad72ad74d74fd59403ddbbbcab8a466213935c2b7d8ff9f676b2cc7e3e36"
#define NOW_NS 1800000000000000000ULL
#define ID1 "a1b2c3d4e5f60718293a4b5c"

static struct envelope_key *key;

/* What the send double saw: each call's fd and datagram count, and every datagram. */
static struct {
    int calls, fds[8], counts[8];
    int nsent;
    struct net_dgram sent[16];
    int fail_every; /* the send double fails every fail_every-th datagram (EAGAIN); 0: none */
} seen;

static uint64_t fake_real(void *ctx)
{
    (void)ctx;
    return NOW_NS;
}

static int fake_send(void *ctx, int fd, struct net_dgram *d, int n)
{
    (void)ctx;
    seen.fds[seen.calls] = fd;
    seen.counts[seen.calls++] = n;
    for (int i = 0; i < n; i++) {
        d[i].err = seen.fail_every > 0 && (seen.nsent + 1) % seen.fail_every == 0 ? EAGAIN : 0;
        seen.sent[seen.nsent++] = d[i];
    }
    return n;
}

static const struct engine_io doubles = {NULL, NULL, fake_real, NULL, fake_send};

static int udp_socket(const char *host)
{
    struct net_addr a;
    assert_int_equal(net_addr_parse(host, 1, &a), 0);
    int af = a.u.sa.sa_family;
    int fd = socket(af, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (af == AF_INET6) {
        int off = 0;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        a.u.v6.sin6_port = 0;
        if (bind(fd, &a.u.sa, sizeof a.u.v6) != 0) {
            close(fd);
            return -1; /* no IPv6 here */
        }
    } else {
        a.u.v4.sin_port = 0;
        assert_int_equal(bind(fd, &a.u.sa, sizeof a.u.v4), 0);
    }
    return fd;
}

static struct net_addr addr(const char *host, unsigned port)
{
    struct net_addr a;
    assert_int_equal(net_addr_parse(host, port, &a), 0);
    return a;
}

static int setup(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof seen);
    sysio_use(&doubles);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sysio_use(NULL);
    return 0;
}

/* A sealed datagram opens under the key to the JSON, stamped with the wall clock. */
static void test_seal_opens(void **state)
{
    (void)state;
    struct sendq q;
    const char json[] = "{\"message_id\":\"" ID1 "\"}";
    struct net_addr to = addr("127.0.0.1", 9);
    assert_int_equal(sendq_init(&q, udp_socket("127.0.0.1"), key, 8, 4096), 0);
    struct sendq_msg *m = sendq_seal(&q, SENDQ_MAIN, &to, json, strlen(json), NULL);
    assert_non_null(m);
    assert_int_equal(m->sock, SENDQ_MAIN);
    assert_int_equal(m->kind, 0);
    assert_int_equal(m->rowid, 0);
    assert_int_equal(q.n, 1);
    assert_int_equal(q.used, strlen(json) + ENVELOPE_OVERHEAD);
    assert_int_equal(sendq_room(&q), 4096 - q.used);
    assert_true(net_addr_equal(&q.out[0].addr, &to));

    uint8_t plain[256];
    uint64_t ts;
    const char *got;
    size_t len;
    assert_int_equal(envelope_open(key, q.out[0].buf, q.out[0].len, plain, &ts, &got, &len),
                     ENVELOPE_OK);
    assert_int_equal(len, strlen(json));
    assert_memory_equal(got, json, len);
    assert_true(ts >> ENVELOPE_MARK_BITS == NOW_NS >> ENVELOPE_MARK_BITS);
    assert_true(envelope_is_marked(q.out[0].buf, ts));
    sendq_fini(&q);
}

/* An ACK is the ACK text of its id, and says so in its entry. */
static void test_ack(void **state)
{
    (void)state;
    struct sendq q;
    struct net_addr to = addr("127.0.0.1", 9);
    char text[MESSAGE_ACK_MAX];
    size_t n = message_ack_text(ID1, text);
    assert_int_equal(sendq_init(&q, udp_socket("127.0.0.1"), key, 8, 4096), 0);
    struct sendq_msg *m = sendq_ack(&q, SENDQ_MAIN, &to, ID1, 2, NULL);
    assert_non_null(m);
    assert_int_equal(m->kind, SENDQ_ACK);
    assert_int_equal(m->attempts, 2);
    assert_string_equal(m->id, ID1);
    uint8_t plain[256];
    uint64_t ts;
    const char *got;
    size_t len;
    assert_int_equal(envelope_open(key, q.out[0].buf, q.out[0].len, plain, &ts, &got, &len),
                     ENVELOPE_OK);
    assert_int_equal(len, n);
    assert_memory_equal(got, text, n);
    sendq_fini(&q);
}

/* The queue takes cap datagrams and the arena its bytes; no more, whichever comes first. */
static void test_bounds(void **state)
{
    (void)state;
    struct sendq q;
    struct net_addr to = addr("127.0.0.1", 9);
    const char json[] = "{}";
    size_t one = sizeof json - 1 + ENVELOPE_OVERHEAD;
    assert_int_equal(sendq_init(&q, udp_socket("127.0.0.1"), key, 3, 1 << 16), 0);
    for (int i = 0; i < 3; i++)
        assert_non_null(sendq_seal(&q, SENDQ_MAIN, &to, json, 2, NULL));
    assert_null(sendq_seal(&q, SENDQ_MAIN, &to, json, 2, NULL));
    assert_null(sendq_ack(&q, SENDQ_MAIN, &to, ID1, 0, NULL));
    sendq_reset(&q);
    assert_int_equal(q.n, 0);
    assert_int_equal(sendq_room(&q), 1 << 16);
    sendq_fini(&q);

    assert_int_equal(sendq_init(&q, udp_socket("127.0.0.1"), key, 100, 2 * one + one / 2), 0);
    assert_non_null(sendq_seal(&q, SENDQ_MAIN, &to, json, 2, NULL));
    assert_non_null(sendq_seal(&q, SENDQ_MAIN, &to, json, 2, NULL));
    assert_null(sendq_seal(&q, SENDQ_MAIN, &to, json, 2, NULL)); /* the arena is full */
    assert_int_equal(q.n, 2);
    sendq_fini(&q);
}

/* One batch per socket, in queue order; each datagram's result lands at its own index. */
static void test_flush_per_socket(void **state)
{
    (void)state;
    struct sendq q;
    struct net_addr to = addr("127.0.0.1", 9);
    int main_fd = udp_socket("127.0.0.1"), other = udp_socket("127.0.0.1");
    assert_int_equal(sendq_init(&q, main_fd, key, 8, 4096), 0);
    q.socks[SENDQ_ALT6].fd = other; /* as if opened beside: closed by sendq_fini */
    const int socks[] = {SENDQ_MAIN, SENDQ_ALT6, SENDQ_MAIN, SENDQ_ALT6, SENDQ_MAIN};
    for (int i = 0; i < 5; i++) {
        struct sendq_msg *m = sendq_seal(&q, socks[i], &to, "{}", 2, NULL);
        assert_non_null(m);
        m->rowid = i;
    }
    seen.fail_every = 2; /* the 2nd and 4th datagrams handed over fail */
    sendq_flush(&q);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.fds[0], main_fd);
    assert_int_equal(seen.counts[0], 3);
    assert_int_equal(seen.fds[1], other);
    assert_int_equal(seen.counts[1], 2);
    assert_ptr_equal(seen.sent[0].buf, q.out[0].buf); /* main: 0, 2, 4; then alt: 1, 3 */
    assert_ptr_equal(seen.sent[1].buf, q.out[2].buf);
    assert_ptr_equal(seen.sent[3].buf, q.out[1].buf);
    /* handed over as 0, 2, 4, 1, 3: the 2nd (index 2) and 4th (index 1) failed */
    const int want[] = {0, EAGAIN, EAGAIN, 0, 0};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(q.out[i].err, want[i]);
        assert_int_equal(q.msg[i].rowid, i);
    }
    assert_int_equal(q.n, 5); /* kept for the results until the reset */
    sendq_reset(&q);
    sendq_flush(&q);
    assert_int_equal(seen.calls, 2);
    sendq_fini(&q);
}

/* Destinations of the main socket's family go through it; a dual-stack one takes IPv4 too. */
static void test_route(void **state)
{
    (void)state;
    struct sendq q;
    struct net_addr out, v4 = addr("127.0.0.1", 9), v6 = addr("::1", 9);
    char err[256] = "";
    assert_int_equal(sendq_init(&q, udp_socket("0.0.0.0"), key, 8, 4096), 0);
    assert_int_equal(sendq_route(&q, &v4, &out, err, sizeof err), SENDQ_MAIN);
    assert_true(net_addr_equal(&out, &v4));
    /* a wildcard IPv4 bind opens no second socket: it would listen wider than chosen */
    assert_int_equal(sendq_route(&q, &v6, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot send to IPv6 addresses"));
    assert_int_equal(q.socks[SENDQ_ALT6].fd, -1);
    sendq_fini(&q);

    int fd = udp_socket("::");
    if (fd < 0)
        skip();
    assert_int_equal(sendq_init(&q, fd, key, 8, 4096), 0);
    assert_int_equal(q.socks[SENDQ_MAIN].dual, 1);
    assert_int_equal(sendq_route(&q, &v4, &out, err, sizeof err), SENDQ_MAIN);
    assert_int_equal(out.u.sa.sa_family, AF_INET6); /* IPv4-mapped */
    assert_true(net_addr_same_peer(&out, &v4));
    sendq_fini(&q);
}

/* A loopback bind opens the other family's loopback beside it, once, and keeps it. */
static void test_route_beside_loopback(void **state)
{
    (void)state;
    struct sendq q;
    struct net_addr out, v6 = addr("::1", 9);
    char err[256] = "";
    int probe = udp_socket("::1");
    if (probe < 0)
        skip();
    close(probe);
    assert_int_equal(sendq_init(&q, udp_socket("127.0.0.1"), key, 8, 4096), 0);
    assert_int_equal(sendq_route(&q, &v6, &out, err, sizeof err), SENDQ_ALT6);
    int alt = q.socks[SENDQ_ALT6].fd;
    assert_true(alt >= 0);
    assert_true(net_addr_equal(&out, &v6));
    assert_int_equal(sendq_route(&q, &v6, &out, err, sizeof err), SENDQ_ALT6);
    assert_int_equal(q.socks[SENDQ_ALT6].fd, alt);
    sendq_fini(&q);
    assert_int_equal(q.socks[SENDQ_ALT6].fd, -1);
}

int main(void)
{
    if (envelope_init() != 0 || (key = envelope_key_from_hex(KEY)) == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seal_opens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_per_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_beside_loopback, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    envelope_key_free(key);
    return rc;
}
