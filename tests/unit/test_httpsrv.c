/*
 * httpsrv: a real listener on 127.0.0.1 (and ::1) port 0 and real TCP
 * clients, the server driven as the daemon drives it (httpsrv_pollfds,
 * poll, service), with a fake clock for the rules that wait.
 */
#include "daemon/httpsrv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define T0 1000000 /* the fake clock's start (ms) */
#define BODY "# HELP sg_up Up.\n# TYPE sg_up gauge\nsg_up 1\n"

struct fx {
    struct httpsrv *h;
    int family;  /* of the listener: AF_INET or AF_INET6 */
    int64_t now; /* the fake clock passed to httpsrv_service */
    int calls;   /* of body() */
    int fail;    /* body() returns NULL */
    size_t big;  /* body() returns this many bytes ('m') rather than BODY */
};

/* A parsed response: raw holds it all (NUL-terminated); body points into it. */
struct resp {
    int code;
    char *raw;
    size_t len;
    const char *body;
    size_t blen;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *body(void *ctx, size_t *len)
{
    struct fx *f = ctx;
    f->calls++;
    if (f->fail)
        return NULL;
    size_t n = f->big != 0 ? f->big : strlen(BODY);
    char *b = malloc(n);
    assert_non_null(b);
    if (f->big != 0)
        memset(b, 'm', n);
    else
        memcpy(b, BODY, n);
    *len = n;
    return b;
}

/* One turn of the daemon's loop. */
static void turn(struct fx *f, int timeout_ms)
{
    struct pollfd pfd[HTTPSRV_POLLFDS];
    int n = httpsrv_pollfds(f->h, pfd);
    assert_true(n >= 1 && n <= HTTPSRV_POLLFDS);
    assert_true(poll(pfd, (nfds_t)n, timeout_ms) >= 0);
    httpsrv_service(f->h, pfd, n, f->now, body, f);
}

static struct httpsrv_stats stats(struct fx *f)
{
    struct httpsrv_stats st;
    httpsrv_get_stats(f->h, &st);
    return st;
}

/* Turns until the server holds want clients (5 s at most). */
static void until_clients(struct fx *f, int want)
{
    int64_t end = wall_ms() + 5000;
    while (httpsrv_clients(f->h) != want) {
        assert_true(wall_ms() < end);
        turn(f, 10);
    }
}

/* Turns until accepted + refused reach want. */
static void until_taken(struct fx *f, uint64_t want)
{
    int64_t end = wall_ms() + 5000;
    while (stats(f).accepted + stats(f).refused < want) {
        assert_true(wall_ms() < end);
        turn(f, 10);
    }
}

/* A connected client (non-blocking); rcvbuf > 0 sets its receive buffer first. */
static int dial_buf(struct fx *f, int rcvbuf)
{
    int s = socket(f->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (f->family == AF_INET) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)httpsrv_port(f->h));
        v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *v4;
    } else {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)httpsrv_port(f->h));
        v6->sin6_addr = in6addr_loopback;
        len = sizeof *v6;
    }
    if (connect(s, (const struct sockaddr *)&ss, len) != 0)
        assert_int_equal(errno, EINPROGRESS);
    int64_t end = wall_ms() + 5000;
    struct pollfd p = {.fd = s, .events = POLLOUT};
    while (poll(&p, 1, 0) == 0) {
        assert_true(wall_ms() < end);
        turn(f, 1);
    }
    int e = -1;
    socklen_t elen = sizeof e;
    assert_int_equal(getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &elen), 0);
    assert_int_equal(e, 0);
    return s;
}

static int dial(struct fx *f)
{
    return dial_buf(f, 0);
}

static void put(struct fx *f, int fd, const char *text, size_t len)
{
    int64_t end = wall_ms() + 5000;
    while (len > 0) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            assert_true(wall_ms() < end);
            turn(f, 1);
            continue;
        }
        text += n;
        len -= (size_t)n;
    }
}

static void put_str(struct fx *f, int fd, const char *text)
{
    put(f, fd, text, strlen(text));
}

/* Turns until fd reads EOF; parses what came (the status line and the blank line must be there). */
static struct resp get(struct fx *f, int fd)
{
    struct resp r = {0};
    size_t cap = 65536;
    r.raw = malloc(cap + 1);
    assert_non_null(r.raw);
    int64_t end = wall_ms() + 5000;
    for (;;) {
        assert_true(wall_ms() < end);
        turn(f, 10);
        ssize_t n;
        while ((n = recv(fd, r.raw + r.len, cap - r.len, MSG_DONTWAIT)) > 0) {
            r.len += (size_t)n;
            if (r.len == cap) {
                cap *= 2;
                r.raw = realloc(r.raw, cap + 1);
                assert_non_null(r.raw);
            }
        }
        if (n == 0)
            break;
        assert_int_equal(errno, EAGAIN); /* no reset: the server lingers */
    }
    r.raw[r.len] = '\0';
    assert_int_equal(sscanf(r.raw, "HTTP/1.1 %d ", &r.code), 1);
    char *e = strstr(r.raw, "\r\n\r\n");
    assert_non_null(e);
    r.body = e + 4;
    r.blen = r.len - (size_t)(r.body - r.raw);
    return r;
}

/* A header's value (up to its CRLF) copied to out, or NULL if the head has none. */
static const char *header(const struct resp *r, const char *name, char *out, size_t outlen)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strstr(r->raw, key);
    if (p == NULL || p > r->body)
        return NULL;
    p += strlen(key);
    size_t n = strcspn(p, "\r");
    assert_true(n < outlen);
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* A whole exchange: dial, send req, read to EOF, close. */
static struct resp exchange(struct fx *f, const char *req)
{
    int c = dial(f);
    put_str(f, c, req);
    struct resp r = get(f, c);
    close(c);
    return r;
}

/* Connection: close, a Date, and Content-Length want_len (SIZE_MAX: the body's); HEAD: no body. */
static void check_framing(const struct resp *r, size_t want_len, int head)
{
    char v[64];
    assert_non_null(header(r, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    assert_non_null(header(r, "Date", v, sizeof v));
    assert_non_null(header(r, "Content-Length", v, sizeof v));
    unsigned long long n = strtoull(v, NULL, 10);
    if (want_len != SIZE_MAX)
        assert_int_equal(n, want_len);
    assert_true(n > 0);
    assert_int_equal(r->blen, head ? 0 : n);
}

static int setup_family(void **state, int family, const char *endpoint)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    char err[256];
    f->h = httpsrv_open(endpoint, err, sizeof err);
    if (f->h == NULL) {
        fprintf(stderr, "%s\n", err);
        free(f);
        return -1;
    }
    f->family = family;
    f->now = T0;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_family(state, AF_INET, "127.0.0.1:0");
}

static int teardown(void **state)
{
    struct fx *f = *state;
    httpsrv_close(f->h);
    free(f);
    return 0;
}

/* GET /metrics: 200, the exact body, its length, the Prometheus type; a query is ignored. */
static void test_get_metrics(void **state)
{
    struct fx *f = *state;
    assert_true(httpsrv_port(f->h) > 0);
    assert_int_equal(httpsrv_deadline(f->h), INT64_MAX);
    struct resp r = exchange(f, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
    assert_int_equal(r.code, 200);
    assert_true(strncmp(r.raw, "HTTP/1.1 200 OK\r\n", 17) == 0);
    check_framing(&r, strlen(BODY), 0);
    assert_memory_equal(r.body, BODY, strlen(BODY));
    char v[128];
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), HTTPSRV_CONTENT_TYPE);
    assert_int_equal(f->calls, 1);
    free(r.raw);
    r = exchange(f, "GET /metrics?name[]=sg_up HTTP/1.0\r\n\r\n");
    assert_int_equal(r.code, 200);
    assert_memory_equal(r.body, BODY, strlen(BODY));
    free(r.raw);
    until_clients(f, 0); /* the lingering ones close on the clients' EOF */
    assert_int_equal(httpsrv_deadline(f->h), INT64_MAX);
    struct httpsrv_stats st = stats(f);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.served, 2);
    assert_int_equal(st.refused + st.bad + st.failed + st.dropped_timeout + st.dropped_slow, 0);
}

/*
 * One request a connection: what follows the head is not answered. A client
 * that reads its response (EOF) but does not close holds its slot for
 * HTTPSRV_LINGER_MS; what it sends meanwhile is discarded.
 */
static void test_one_request_and_linger(void **state)
{
    struct fx *f = *state;
    int c = dial(f);
    put_str(f, c, "GET /metrics HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    struct resp r = get(f, c);
    assert_int_equal(r.code, 200);
    assert_int_equal(r.blen, strlen(BODY)); /* one response alone, then EOF */
    free(r.raw);
    assert_int_equal(httpsrv_clients(f->h), 1);
    assert_int_equal(httpsrv_deadline(f->h), T0 + HTTPSRV_LINGER_MS);
    put_str(f, c, "more bytes after the response");
    for (int k = 0; k < 5; k++)
        turn(f, 2);
    f->now = T0 + HTTPSRV_LINGER_MS - 1;
    turn(f, 0);
    assert_int_equal(httpsrv_clients(f->h), 1);
    f->now++;
    turn(f, 0);
    assert_int_equal(httpsrv_clients(f->h), 0);
    close(c);
    struct httpsrv_stats st = stats(f);
    assert_int_equal(st.served, 1);
    assert_int_equal(st.dropped_timeout + st.dropped_slow, 0);
    assert_int_equal(f->calls, 1);
}

/* HEAD: the same headers (Content-Length of the body), no body; GET / for humans. */
static void test_head_and_index(void **state)
{
    struct fx *f = *state;
    struct resp r = exchange(f, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(r.code, 200);
    check_framing(&r, strlen(BODY), 1);
    char v[128];
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), HTTPSRV_CONTENT_TYPE);
    assert_int_equal(f->calls, 1);
    free(r.raw);
    r = exchange(f, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(r.code, 200);
    check_framing(&r, SIZE_MAX, 0);
    assert_non_null(strstr(r.body, "href=\"/metrics\""));
    assert_non_null(strstr(header(&r, "Content-Type", v, sizeof v), "text/html"));
    free(r.raw);
    assert_int_equal(f->calls, 1); /* / does not need the body */
    assert_int_equal(stats(f).served, 2);
}

/* 404, 405 with Allow, 400 for what is not HTTP/1.x; the body is never made for them. */
static void test_errors(void **state)
{
    struct fx *f = *state;
#define NUL_REQ "GET /metrics\0 HTTP/1.1\r\n\r\n"
    static const struct {
        const char *req;
        int code;
        int head;
        size_t len; /* 0: strlen */
    } cases[] = {
        {"GET /nope HTTP/1.1\r\n\r\n", 404, 0, 0},
        {"GET /metricsx HTTP/1.1\r\n\r\n", 404, 0, 0},
        {"GET /metrics/ HTTP/1.1\r\n\r\n", 404, 0, 0},
        {"HEAD /nope HTTP/1.1\r\n\r\n", 404, 1, 0},
        {"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 405, 0, 0},
        {"get /metrics HTTP/1.1\r\n\r\n", 405, 0, 0},
        {"garbage\r\n\r\n", 400, 0, 0},
        {"\r\n\r\n", 400, 0, 0},
        {"GET /metrics\r\n\r\n", 400, 0, 0},
        {"GET /metrics HTTP/2.0\r\n\r\n", 400, 0, 0},
        {"GET /metrics HTTP/1.1 x\r\n\r\n", 400, 0, 0},
        {"GET  /metrics HTTP/1.1\r\n\r\n", 400, 0, 0},
        {" /metrics HTTP/1.1\r\n\r\n", 400, 0, 0},
        {NUL_REQ, 400, 0, sizeof NUL_REQ - 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int c = dial(f);
        put(f, c, cases[i].req, cases[i].len != 0 ? cases[i].len : strlen(cases[i].req));
        struct resp r = get(f, c);
        close(c);
        if (r.code != cases[i].code)
            fail_msg("case %zu: %d, not %d", i, r.code, cases[i].code);
        char v[64];
        check_framing(&r, SIZE_MAX, cases[i].head);
        if (cases[i].code == 405)
            assert_string_equal(header(&r, "Allow", v, sizeof v), "GET, HEAD");
        else
            assert_null(header(&r, "Allow", v, sizeof v));
        free(r.raw);
    }
    assert_int_equal(f->calls, 0);
    assert_int_equal(stats(f).bad, sizeof cases / sizeof cases[0]);
    assert_int_equal(stats(f).served, 0);
}

/* A head of exactly HTTPSRV_HEAD_MAX is served; one byte more without the blank line is 431. */
static void test_head_limit(void **state)
{
    struct fx *f = *state;
    char *req = malloc(65536);
    assert_non_null(req);
    const char *line = "GET /metrics HTTP/1.1\r\nX: ";
    size_t l = strlen(line);
    memcpy(req, line, l);
    memset(req + l, 'x', HTTPSRV_HEAD_MAX - l - 4);
    memcpy(req + HTTPSRV_HEAD_MAX - 4, "\r\n\r\n", 4);
    int c = dial(f);
    put(f, c, req, HTTPSRV_HEAD_MAX);
    struct resp r = get(f, c);
    close(c);
    assert_int_equal(r.code, 200);
    free(r.raw);
    /* one x more: the blank line would end at HTTPSRV_HEAD_MAX + 1 */
    memset(req + l, 'x', 65536 - l);
    memcpy(req + HTTPSRV_HEAD_MAX - 3, "\r\n\r\n", 4);
    c = dial(f);
    put(f, c, req, HTTPSRV_HEAD_MAX + 1);
    r = get(f, c);
    close(c);
    assert_int_equal(r.code, 431);
    check_framing(&r, SIZE_MAX, 0);
    free(r.raw);
    /* a client still sending long after: the 431 reaches it whole, no reset */
    memset(req + l, 'x', 65536 - l);
    c = dial(f);
    put(f, c, req, 65536);
    r = get(f, c);
    close(c);
    assert_int_equal(r.code, 431);
    free(r.raw);
    free(req);
    assert_int_equal(f->calls, 1);
    assert_int_equal(stats(f).bad, 2);
}

/* A request in 1-byte writes, the server turned between each; LF LF ends a head too. */
static void test_split_and_lf(void **state)
{
    struct fx *f = *state;
    const char *req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    int c = dial(f);
    for (size_t i = 0; req[i] != '\0'; i++) {
        put(f, c, req + i, 1);
        for (int k = 0; k < 3; k++)
            turn(f, 1);
        if (req[i + 1] != '\0')
            assert_int_equal(f->calls, 0);
    }
    struct resp r = get(f, c);
    close(c);
    assert_int_equal(r.code, 200);
    assert_memory_equal(r.body, BODY, strlen(BODY));
    free(r.raw);
    r = exchange(f, "GET /metrics HTTP/1.0\nHost: x\n\n");
    assert_int_equal(r.code, 200);
    check_framing(&r, strlen(BODY), 0);
    free(r.raw);
    r = exchange(f, "GET /metrics HTTP/1.0\n\n");
    assert_int_equal(r.code, 200);
    free(r.raw);
    /* LF LF split over two writes: the end is looked for from before the new bytes */
    c = dial(f);
    put_str(f, c, "GET /metrics HTTP/1.0\r\n\r");
    until_clients(f, 1);
    for (int k = 0; k < 5; k++)
        turn(f, 2);
    assert_int_equal(f->calls, 3);
    put_str(f, c, "\n");
    r = get(f, c);
    close(c);
    assert_int_equal(r.code, 200);
    free(r.raw);
    assert_int_equal(f->calls, 4);
}

/* A connection that sends nothing (or half a head) costs no body and goes at its timeout. */
static void test_timeout(void **state)
{
    struct fx *f = *state;
    int idle = dial(f), half = dial(f);
    put_str(f, half, "GET /metrics HTTP/1.1\r\n");
    until_clients(f, 2);
    for (int k = 0; k < 5; k++)
        turn(f, 2);
    assert_int_equal(f->calls, 0);
    assert_int_equal(httpsrv_deadline(f->h), T0 + HTTPSRV_TIMEOUT_MS);
    f->now = T0 + HTTPSRV_TIMEOUT_MS - 1;
    turn(f, 0);
    assert_int_equal(httpsrv_clients(f->h), 2);
    f->now++;
    turn(f, 0);
    assert_int_equal(httpsrv_clients(f->h), 0);
    assert_int_equal(stats(f).dropped_timeout, 2);
    assert_int_equal(httpsrv_deadline(f->h), INT64_MAX);
    char ch;
    assert_int_equal(recv(idle, &ch, 1, 0), 0); /* closed without a word */
    assert_int_equal(recv(half, &ch, 1, 0), 0);
    close(idle);
    close(half);
    assert_int_equal(f->calls, 0);
}

/* HTTPSRV_CLIENTS_MAX + 3 idle connects: 3 refused; the rest go at their timeout; then a GET. */
static void test_clients_max(void **state)
{
    struct fx *f = *state;
    int fds[HTTPSRV_CLIENTS_MAX + 3];
    for (int i = 0; i < HTTPSRV_CLIENTS_MAX + 3; i++)
        fds[i] = dial(f);
    until_taken(f, HTTPSRV_CLIENTS_MAX + 3);
    assert_int_equal(httpsrv_clients(f->h), HTTPSRV_CLIENTS_MAX);
    assert_int_equal(stats(f).refused, 3);
    assert_int_equal(stats(f).accepted, HTTPSRV_CLIENTS_MAX);
    f->now += HTTPSRV_TIMEOUT_MS;
    turn(f, 0);
    assert_int_equal(httpsrv_clients(f->h), 0);
    assert_int_equal(stats(f).dropped_timeout, HTTPSRV_CLIENTS_MAX);
    for (int i = 0; i < HTTPSRV_CLIENTS_MAX + 3; i++) {
        char ch;
        assert_int_equal(recv(fds[i], &ch, 1, 0), 0); /* every one closed */
        close(fds[i]);
    }
    struct resp r = exchange(f, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(r.code, 200);
    free(r.raw);
    assert_int_equal(f->calls, 1);
}

/*
 * A client that asks for 8 MiB and never reads (a small receive buffer: the
 * kernel holds little of it) is dropped HTTPSRV_STALL_MS after the last byte
 * went, not before; others are served meanwhile.
 */
static void test_slow_reader(void **state)
{
    struct fx *f = *state;
    f->big = 8u << 20;
    int slow = dial_buf(f, 4096);
    put_str(f, slow, "GET /metrics HTTP/1.1\r\n\r\n");
    int64_t end = wall_ms() + 5000;
    while (f->calls == 0) {
        assert_true(wall_ms() < end);
        turn(f, 10);
    }
    f->big = 0;
    struct resp r = exchange(f, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(r.code, 200);
    assert_memory_equal(r.body, BODY, strlen(BODY));
    free(r.raw);
    until_clients(f, 1);
    /* each try at the deadline may find a little room the kernel made: a new wait */
    for (int rounds = 0; httpsrv_clients(f->h) == 1; rounds++) {
        assert_true(rounds < 20);
        int64_t d = httpsrv_deadline(f->h);
        assert_true(d > f->now && d <= f->now + HTTPSRV_STALL_MS);
        f->now = d - 1;
        turn(f, 0);
        assert_int_equal(httpsrv_clients(f->h), 1);
        f->now = httpsrv_deadline(f->h);
        turn(f, 0);
    }
    assert_int_equal(stats(f).dropped_slow, 1);
    assert_int_equal(stats(f).served, 1);
    close(slow);
    r = exchange(f, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(r.code, 200);
    free(r.raw);
}

/* No body from the function, or one over HTTPSRV_BODY_MAX: 500 (HEAD too, without a body). */
static void test_body_failed(void **state)
{
    struct fx *f = *state;
    f->fail = 1;
    struct resp r = exchange(f, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(r.code, 500);
    check_framing(&r, SIZE_MAX, 0);
    free(r.raw);
    r = exchange(f, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(r.code, 500);
    assert_int_equal(r.blen, 0);
    free(r.raw);
    f->fail = 0;
    f->big = HTTPSRV_BODY_MAX + 1;
    r = exchange(f, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(r.code, 500);
    free(r.raw);
    f->big = 0;
    r = exchange(f, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(r.code, 200);
    free(r.raw);
    assert_int_equal(f->calls, 4);
    assert_int_equal(stats(f).failed, 3);
    assert_int_equal(stats(f).served, 1);
}

/* Out of descriptors, accept rests 1 s rather than spin, then goes on. */
static void test_accept_out_of_fds(void **state)
{
    struct fx *f = *state;
    struct rlimit rl, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    int next = open("/dev/null", O_RDONLY | O_CLOEXEC); /* the lowest free descriptor */
    assert_true(next >= 0);
    close(next);
    low = rl;
    low.rlim_cur = (rlim_t)next + 1; /* room for the client, none for accept */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int c = dial(f);
    turn(f, 100);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    struct pollfd pfd[HTTPSRV_POLLFDS];
    assert_int_equal(httpsrv_pollfds(f->h, pfd), 1);
    assert_int_equal(pfd[0].events, 0);
    assert_int_equal(httpsrv_deadline(f->h), T0 + 1000);
    f->now = T0 + 1000;
    turn(f, 0);
    until_clients(f, 1);
    put_str(f, c, "GET /metrics HTTP/1.1\r\n\r\n");
    struct resp r = get(f, c);
    close(c);
    assert_int_equal(r.code, 200);
    free(r.raw);
}

/* Endpoints that do not parse, and a port in use: NULL and one line naming the endpoint. */
static void test_open_errors(void **state)
{
    struct fx *f = *state;
    char err[256];
    static const char *const bad[] = {
        "nonsense",       "127.0.0.1",       ":80",          "::1:80",      "[127.0.0.1]:80",
        "example.com:80", "127.0.0.1:65536", "127.0.0.1:00", "127.0.0.1:x", "",
        "[::1]:",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_null(httpsrv_open(bad[i], err, sizeof err));
        char want[64];
        snprintf(want, sizeof want, "cannot listen on %s: ", bad[i]);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("%s: %s", bad[i], err);
    }
    char ep[64], want[128];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", httpsrv_port(f->h));
    assert_null(httpsrv_open(ep, err, sizeof err));
    snprintf(want, sizeof want, "cannot listen on %s: %s", ep, strerror(EADDRINUSE));
    assert_string_equal(err, want);
    httpsrv_close(NULL);
    /* localhost is 127.0.0.1 (net_addr_parse) */
    struct httpsrv *h = httpsrv_open("localhost:0", err, sizeof err);
    assert_non_null(h);
    assert_true(httpsrv_port(h) > 0 && httpsrv_port(h) != httpsrv_port(f->h));
    httpsrv_close(h);
}

/* The same over ::1; skipped only if ::1 cannot be bound here. */
static void test_ipv6(void **state)
{
    (void)state;
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int ok = s >= 0 && bind(s, (const struct sockaddr *)&sa, sizeof sa) == 0;
    if (s >= 0)
        close(s);
    if (!ok) {
        skip();
        return;
    }
    void *st = NULL;
    assert_int_equal(setup_family(&st, AF_INET6, "[::1]:0"), 0);
    struct fx *f = st;
    struct resp r = exchange(f, "GET /metrics HTTP/1.1\r\nHost: [::1]\r\n\r\n");
    assert_int_equal(r.code, 200);
    check_framing(&r, strlen(BODY), 0);
    assert_memory_equal(r.body, BODY, strlen(BODY));
    free(r.raw);
    teardown(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_request_and_linger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_and_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_and_lf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_out_of_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test(test_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
