/*
 * ctlsock: a real socket in a temporary directory and real clients, the
 * server driven as the daemon drives it (ctlsock_pollfds, poll, service),
 * with a fake clock for the rules that wait.
 */
#include "daemon/ctlsock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define T0 1000000 /* the fake clock's start (ms) */

struct fx {
    char dir[64];
    char path[96];
    struct ctlsock *cs;
    int64_t now;    /* the fake clock passed to ctlsock_service */
    int last;       /* the client of the latest request */
    int last_rc;    /* what its ctlsock_reply returned */
    char seen[512]; /* the requests handed over, each followed by '|' */
    size_t seen_len;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The caller's side: "close" answers "bye" and closes; "sub" tags the client;
 * "big N" answers N bytes (newline last), "bigclose N" too and closes;
 * anything else is echoed as "re:<line>".
 */
static void on_request(void *ctx, struct ctlsock *cs, int client, const char *line, size_t len)
{
    struct fx *f = ctx;
    assert_int_equal(line[len], '\0');
    f->last = client;
    if (f->seen_len + len + 1 < sizeof f->seen) {
        memcpy(f->seen + f->seen_len, line, len);
        f->seen_len += len;
        f->seen[f->seen_len++] = '|';
    }
    unsigned long n = 0;
    if (strcmp(line, "close") == 0) {
        f->last_rc = ctlsock_reply(cs, client, "bye\n", 4, CTLSOCK_CLOSE);
    } else if (strcmp(line, "sub") == 0) {
        ctlsock_set_tag(cs, client, ctlsock_tag(cs, client) | 1u);
        f->last_rc = ctlsock_reply(cs, client, "ok\n", 3, 0);
    } else if (sscanf(line, "big %lu", &n) == 1 || sscanf(line, "bigclose %lu", &n) == 1) {
        char *b = malloc(n);
        assert_non_null(b);
        memset(b, 'b', n);
        b[n - 1] = '\n';
        f->last_rc = ctlsock_reply(cs, client, b, n, line[3] == 'c' ? CTLSOCK_CLOSE : 0);
        free(b);
    } else {
        char out[CTLSOCK_LINE_MAX + 8];
        memcpy(out, "re:", 3);
        memcpy(out + 3, line, len);
        out[3 + len] = '\n';
        f->last_rc = ctlsock_reply(cs, client, out, len + 4, 0);
    }
}

/* One turn of the daemon's loop, as engine.c makes it. */
static void turn(struct fx *f, int timeout_ms)
{
    struct pollfd pfd[CTLSOCK_POLLFDS];
    int n = ctlsock_pollfds(f->cs, pfd);
    assert_true(n >= 1 && n <= CTLSOCK_POLLFDS);
    assert_true(poll(pfd, (nfds_t)n, timeout_ms) >= 0);
    ctlsock_service(f->cs, pfd, n, f->now, on_request, f);
}

/* Turns until the server holds want clients (5 s at most). */
static void until_clients(struct fx *f, int want)
{
    int64_t end = wall_ms() + 5000;
    while (ctlsock_clients(f->cs) != want) {
        assert_true(wall_ms() < end);
        turn(f, 10);
    }
}

/* A connected client (non-blocking); while the backlog is full the server is turned. */
static int dial(struct fx *f)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    int64_t end = wall_ms() + 5000;
    while (connect(s, (const struct sockaddr *)&sa, sizeof sa) != 0) {
        assert_int_equal(errno, EAGAIN);
        assert_true(wall_ms() < end);
        turn(f, 0);
    }
    return s;
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

/* Turns until fd got len bytes back, which must be want. */
static void expect(struct fx *f, int fd, const char *want, size_t len)
{
    char *got = malloc(len + 1);
    assert_non_null(got);
    size_t have = 0;
    int64_t end = wall_ms() + 5000;
    while (have < len) {
        assert_true(wall_ms() < end);
        turn(f, 10);
        ssize_t n;
        while (have < len && (n = recv(fd, got + have, len - have, MSG_DONTWAIT)) > 0)
            have += (size_t)n;
        if (have < len && n == 0)
            fail_msg("closed after %zu of %zu bytes", have, len);
    }
    assert_memory_equal(got, want, len);
    free(got);
}

static void expect_str(struct fx *f, int fd, const char *want)
{
    expect(f, fd, want, strlen(want));
}

/* Turns until the server has closed fd's connection; what it sent first is discarded. */
static int ended(struct fx *f, int fd)
{
    char buf[65536];
    int64_t end = wall_ms() + 5000;
    while (wall_ms() < end) {
        turn(f, 10);
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            ;
        if (n == 0 || errno != EAGAIN)
            return 1;
    }
    return 0;
}

/* A few turns, then: nothing came for fd. */
static void quiet(struct fx *f, int fd)
{
    char c;
    for (int i = 0; i < 5; i++)
        turn(f, 2);
    assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
}

static struct ctlsock_stats stats(struct fx *f)
{
    struct ctlsock_stats st;
    ctlsock_get_stats(f->cs, &st);
    return st;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/sg-test-ctlsock.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/ctl", f->dir);
    char err[256];
    f->cs = ctlsock_open(f->path, (uid_t)-1, (gid_t)-1, err, sizeof err);
    if (f->cs == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    f->now = T0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ctlsock_close(f->cs);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A request and its reply; a NUL inside a line is the caller's; EOF after a last line. */
static void test_round_trip(void **state)
{
    struct fx *f = *state;
    int c = dial(f);
    put(f, c, "hello\n", 6);
    expect_str(f, c, "re:hello\n");
    put(f, c, "a\0b\n", 4);
    expect(f, c, "re:a\0b\n", 7);
    /* a client that shuts down its side still gets the replies to what it sent */
    put(f, c, "big 1048576\nlast\n", 17); /* more than the kernel holds: replies wait */
    assert_int_equal(shutdown(c, SHUT_WR), 0);
    char *big = malloc(1048576);
    assert_non_null(big);
    memset(big, 'b', 1048575);
    big[1048575] = '\n';
    expect(f, c, big, 1048576);
    free(big);
    expect_str(f, c, "re:last\n");
    assert_true(ended(f, c));
    close(c);
    until_clients(f, 0);
    struct ctlsock_stats st = stats(f);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.refused + st.dropped_long + st.dropped_idle + st.dropped_slow, 0);
}

/* Several lines in one write are handled in order; a line split over two writes is one. */
static void test_lines_batched_and_split(void **state)
{
    struct fx *f = *state;
    int c = dial(f);
    put(f, c, "one\ntwo\nthree\n", 14);
    expect_str(f, c, "re:one\nre:two\nre:three\n");
    put(f, c, "fo", 2);
    until_clients(f, 1);
    for (int i = 0; i < 5; i++)
        turn(f, 2);
    assert_int_equal(ctlsock_deadline(f->cs), T0 + CTLSOCK_IDLE_MS); /* a line is begun */
    f->now = T0 + 5000;
    put(f, c, "ur\nfi", 5);
    expect_str(f, c, "re:four\n");
    assert_int_equal(ctlsock_deadline(f->cs), T0 + 5000 + CTLSOCK_IDLE_MS); /* "fi" begun now */
    put(f, c, "ve\n", 3);
    expect_str(f, c, "re:five\n");
    assert_int_equal(ctlsock_deadline(f->cs), INT64_MAX);
    f->seen[f->seen_len] = '\0';
    assert_string_equal(f->seen, "one|two|three|four|five|");
    close(c);
}

/* A line over CTLSOCK_LINE_MAX drops its client; one of exactly that is fine; others go on. */
static void test_long_line(void **state)
{
    struct fx *f = *state;
    int good = dial(f), bad = dial(f);
    char *line = malloc(CTLSOCK_LINE_MAX + 1);
    assert_non_null(line);
    memset(line, 'x', CTLSOCK_LINE_MAX + 1);
    line[CTLSOCK_LINE_MAX - 1] = '\n';
    put(f, good, line, CTLSOCK_LINE_MAX); /* CTLSOCK_LINE_MAX with its newline */
    expect_str(f, good, "re:");
    char *rest = malloc(CTLSOCK_LINE_MAX);
    assert_non_null(rest);
    memset(rest, 'x', CTLSOCK_LINE_MAX - 1);
    rest[CTLSOCK_LINE_MAX - 1] = '\n';
    expect(f, good, rest, CTLSOCK_LINE_MAX);
    put(f, bad, line + CTLSOCK_LINE_MAX, 1); /* then one more: no newline in the first 4096 */
    put(f, bad, line, CTLSOCK_LINE_MAX - 1);
    assert_true(ended(f, bad));
    assert_int_equal(stats(f).dropped_long, 1);
    put(f, good, "still\n", 6);
    expect_str(f, good, "re:still\n");
    free(line);
    free(rest);
    close(good);
    close(bad);
}

/* A line begun and not ended is dropped CTLSOCK_IDLE_MS later, not before. */
static void test_idle(void **state)
{
    struct fx *f = *state;
    int c = dial(f);
    put(f, c, "half", 4);
    int64_t end = wall_ms() + 5000;
    while (ctlsock_deadline(f->cs) == INT64_MAX) {
        assert_true(wall_ms() < end);
        turn(f, 10);
    }
    assert_int_equal(ctlsock_deadline(f->cs), T0 + CTLSOCK_IDLE_MS);
    f->now = T0 + CTLSOCK_IDLE_MS - 1;
    turn(f, 0);
    assert_int_equal(ctlsock_clients(f->cs), 1);
    f->now = T0 + CTLSOCK_IDLE_MS;
    turn(f, 0);
    assert_int_equal(ctlsock_clients(f->cs), 0);
    assert_int_equal(stats(f).dropped_idle, 1);
    assert_int_equal(ctlsock_deadline(f->cs), INT64_MAX);
    assert_true(ended(f, c));
    close(c);
}

/* A client that sends requests and never reads is dropped at CTLSOCK_OUT_MAX waiting. */
static void test_slow_out_max(void **state)
{
    struct fx *f = *state;
    int c = dial(f), other = dial(f);
    int64_t end = wall_ms() + 10000;
    int sent = 0;
    until_clients(f, 2);
    while (ctlsock_clients(f->cs) == 2) {
        assert_true(wall_ms() < end);
        if (send(c, "big 65536\n", 10, MSG_NOSIGNAL) == 10)
            sent++;
        turn(f, 0);
    }
    assert_true(sent > (int)(CTLSOCK_OUT_MAX / 65536)); /* the kernel holds some too */
    assert_int_equal(stats(f).dropped_slow, 1);
    assert_int_equal(f->last_rc, -1);
    put(f, other, "hi\n", 3);
    expect_str(f, other, "re:hi\n");
    close(c);
    close(other);
}

/* Replies not read for CTLSOCK_STALL_MS drop the client; a byte read restarts the wait. */
static void test_slow_stall(void **state)
{
    struct fx *f = *state;
    int c = dial(f);
    put(f, c, "big 1048576\n", 12);
    int64_t end = wall_ms() + 5000;
    while (ctlsock_deadline(f->cs) == INT64_MAX) {
        assert_true(wall_ms() < end);
        turn(f, 10);
    }
    assert_int_equal(ctlsock_deadline(f->cs), T0 + CTLSOCK_STALL_MS);
    f->now = T0 + CTLSOCK_STALL_MS / 2;
    char buf[65536];
    size_t got = 0;
    ssize_t n;
    while ((n = recv(c, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        got += (size_t)n; /* all the kernel holds: a unix socket is writable again at 3/4 free */
    assert_true(got > 0 && got < 1048576);
    for (int i = 0; i < 5; i++)
        turn(f, 2);
    assert_int_equal(ctlsock_deadline(f->cs), f->now + CTLSOCK_STALL_MS);
    f->now += CTLSOCK_STALL_MS - 1;
    turn(f, 0);
    assert_int_equal(ctlsock_clients(f->cs), 1);
    f->now++;
    turn(f, 0);
    assert_int_equal(ctlsock_clients(f->cs), 0);
    assert_int_equal(stats(f).dropped_slow, 1);
    close(c);
}

/* CTLSOCK_CLOSE: the reply (a large one too) is read whole, then EOF; what followed is not handled.
 */
static void test_close_after_reply(void **state)
{
    struct fx *f = *state;
    int c = dial(f);
    put(f, c, "close\nafter\n", 12);
    expect_str(f, c, "bye\n");
    assert_true(ended(f, c));
    close(c);
    assert_int_equal(stats(f).requests, 1);
    assert_int_equal(f->last_rc, 0);
    c = dial(f); /* a reply too large to go at once: the client waits closing */
    put(f, c, "bigclose 2000000\nafter\n", 23);
    char *big = malloc(2000000);
    assert_non_null(big);
    memset(big, 'b', 1999999);
    big[1999999] = '\n';
    expect(f, c, big, 2000000);
    free(big);
    assert_true(ended(f, c));
    until_clients(f, 0);
    close(c);
    assert_int_equal(stats(f).requests, 2);
    f->seen[f->seen_len] = '\0';
    assert_null(strstr(f->seen, "after"));
}

/* Only tagged clients hear a broadcast; a free slot is harmless to name. */
static void test_broadcast(void **state)
{
    struct fx *f = *state;
    int a = dial(f), b = dial(f), n = dial(f);
    put(f, a, "sub\n", 4);
    expect_str(f, a, "ok\n");
    int ida = f->last;
    put(f, b, "sub\n", 4);
    expect_str(f, b, "ok\n");
    put(f, n, "x\n", 2);
    expect_str(f, n, "re:x\n");
    int idn = f->last;
    assert_int_equal(ctlsock_tag(f->cs, ida), 1);
    assert_int_equal(ctlsock_tag(f->cs, idn), 0);
    ctlsock_broadcast(f->cs, 1, "ev\n", 3);
    expect_str(f, a, "ev\n");
    expect_str(f, b, "ev\n");
    quiet(f, n);
    ctlsock_broadcast(f->cs, 2, "other\n", 6);
    quiet(f, a);
    /* free slots and ids out of range */
    for (int id = 0; id < CTLSOCK_CLIENTS_MAX; id++)
        if (ctlsock_tag(f->cs, id) == 0 && id != idn) {
            assert_int_equal(ctlsock_reply(f->cs, id, "no\n", 3, 0), -1);
            ctlsock_set_tag(f->cs, id, 1);
            assert_int_equal(ctlsock_tag(f->cs, id), 0);
        }
    assert_int_equal(ctlsock_reply(f->cs, -1, "no\n", 3, 0), -1);
    assert_int_equal(ctlsock_reply(f->cs, CTLSOCK_CLIENTS_MAX, "no\n", 3, 0), -1);
    ctlsock_set_tag(f->cs, CTLSOCK_CLIENTS_MAX, 1);
    assert_int_equal(ctlsock_tag(f->cs, -1), 0);
    close(a);
    close(b);
    close(n);
}

/* 1,000 connects and closes, then as many held open as descriptors allow. */
static void test_connect_flood(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 1000; i++)
        close(dial(f));
    int64_t end = wall_ms() + 5000;
    while (stats(f).accepted + stats(f).refused < 1000 || ctlsock_clients(f->cs) > 0) {
        assert_true(wall_ms() < end);
        turn(f, 10);
    }
    struct ctlsock_stats st = stats(f);
    assert_int_equal(st.accepted + st.refused, 1000);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    int held_max = (int)(rl.rlim_cur > 1100 ? 1000 : rl.rlim_cur - 100);
    int *held = calloc((size_t)held_max, sizeof *held);
    assert_non_null(held);
    for (int i = 0; i < held_max; i++)
        held[i] = dial(f);
    end = wall_ms() + 5000;
    while (stats(f).accepted + stats(f).refused < 1000u + (unsigned)held_max) {
        assert_true(wall_ms() < end);
        turn(f, 10);
    }
    assert_int_equal(ctlsock_clients(f->cs), CTLSOCK_CLIENTS_MAX);
    assert_int_equal(stats(f).refused - st.refused, held_max - CTLSOCK_CLIENTS_MAX);
    for (int i = 0; i < held_max; i++)
        close(held[i]);
    free(held);
    until_clients(f, 0);
    int c = dial(f);
    put(f, c, "alive\n", 6);
    expect_str(f, c, "re:alive\n");
    close(c);
}

/* Out of descriptors, accept rests ACCEPT_PAUSE_MS rather than spin, then goes on. */
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
    struct pollfd pfd[CTLSOCK_POLLFDS];
    assert_int_equal(ctlsock_pollfds(f->cs, pfd), 1);
    assert_int_equal(pfd[0].events, 0);
    assert_int_equal(ctlsock_deadline(f->cs), T0 + 1000);
    f->now = T0 + 1000;
    turn(f, 0);
    until_clients(f, 1);
    put(f, c, "back\n", 5);
    expect_str(f, c, "re:back\n");
    close(c);
}

/* The path: a stale socket is replaced, anything else refused, mode 0660, removed at close. */
static void test_path(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0660);
    ctlsock_close(f->cs); /* removes the path */
    f->cs = NULL;
    assert_int_equal(access(f->path, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    ctlsock_close(NULL);
    /* a stale socket, left by a crash, under a wide umask */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    assert_int_equal(bind(s, (const struct sockaddr *)&sa, sizeof sa), 0);
    close(s);
    mode_t old = umask(0);
    f->cs = ctlsock_open(f->path, getuid(), getgid(), err, sizeof err);
    umask(old);
    assert_non_null(f->cs);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0660);
    assert_int_equal(sb.st_uid, getuid());
    int c = dial(f);
    put(f, c, "new\n", 4);
    expect_str(f, c, "re:new\n");
    close(c);
    ctlsock_close(f->cs);
    f->cs = NULL;
    /* a regular file is not touched */
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_null(ctlsock_open(f->path, (uid_t)-1, (gid_t)-1, err, sizeof err));
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "exists and is not a socket"));
    assert_int_equal(lstat(f->path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    /* too long a path */
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    longp[0] = '/';
    assert_null(ctlsock_open(longp, (uid_t)-1, (gid_t)-1, err, sizeof err));
    assert_non_null(strstr(err, "too long"));
    /* a directory that is not there: strerror and the path */
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/none/ctl", f->dir);
    assert_null(ctlsock_open(nodir, (uid_t)-1, (gid_t)-1, err, sizeof err));
    assert_non_null(strstr(err, nodir));
    assert_non_null(strstr(err, strerror(ENOENT)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_batched_and_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_out_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_after_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_out_of_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
