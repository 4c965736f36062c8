/*
 * sgctl: control-socket clients for the integration tests, well-behaved and
 * hostile (daemon/ctl.h, daemon/ctlsock.h). Every command is bounded in
 * time and stops by itself.
 *
 *   sgctl PATH ask JSON        send one request line, print the reply line
 *   sgctl PATH long BYTES      send BYTES bytes with no newline; exit 0 once the
 *                              daemon closes the connection (within 10 s)
 *   sgctl PATH hold MS         send half a request and hold it; prints "closed
 *                              after N ms" when the daemon drops it, or "held" if it
 *                              is still open after MS ms
 *   sgctl PATH connects N      N connections at once (as many as the descriptor
 *                              limit allows), then closes them; prints "opened N
 *                              closed-by-daemon M"
 *   sgctl PATH noread N MS     N status requests, never reading a reply; prints
 *                              "closed" when the daemon drops it, "open" after MS ms
 *   sgctl PATH garbage         send a line that is not JSON; print the reply and
 *                              exit 0 if the daemon then closes the connection
 *   sgctl PATH events N MS     subscribe; print each event line, until N of them
 *                              or MS ms
 *   sgctl PATH idle N MS       N connections that send nothing; prints "closed after
 *                              N ms" once the daemon closed them all, or "held N"
 *                              (how many were still open) after MS ms
 * PATH may be tcp:HOST:PORT (an IPv4 address): /metrics' clients, for idle and hold.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

static const char *path;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A stream socket connected to sa, or -1 (said on stderr unless quiet). */
static int connect_to(const struct sockaddr *sa, socklen_t len, int quiet)
{
    int fd = socket(sa->sa_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, sa, len) != 0) {
        if (!quiet)
            fprintf(stderr, "sgctl: connect %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int dial_tcp(int quiet)
{
    char host[64];
    int port = 0;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    if (sscanf(path, "tcp:%63[0-9.]:%d", host, &port) != 2 ||
        inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "sgctl: not tcp:HOST:PORT: %s\n", path);
        return -1;
    }
    sin.sin_port = htons((uint16_t)port);
    return connect_to((struct sockaddr *)&sin, sizeof sin, quiet);
}

static int dial(int quiet)
{
    if (strncmp(path, "tcp:", 4) == 0)
        return dial_tcp(quiet);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    return connect_to((struct sockaddr *)&sa, sizeof sa, quiet);
}

static void put(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the daemon closed it: the caller sees that on reading */
        s += w;
        n -= (size_t)w;
    }
}

/*
 * Reads until a newline (printing the line if print) or EOF, for at most ms.
 * Returns 1 on a line, 0 on EOF (closed by the daemon), -1 on timeout.
 */
static int get_line(int fd, int ms, int print)
{
    long long end = now_ms() + ms;
    char c;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = end - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        ssize_t r = recv(fd, &c, 1, 0);
        if (r <= 0)
            return r == 0 || errno == ECONNRESET ? 0 : -1;
        if (print)
            putchar(c);
        if (c == '\n')
            return 1;
    }
}

/* Waits for EOF (discarding what arrives) for at most ms: 1 closed, 0 still open. */
static int closed_within(int fd, int ms)
{
    long long end = now_ms() + ms;
    char buf[65536];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = end - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return 0;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 1;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sgctl PATH ask|long|hold|connects|noread|garbage|events ...\n");
        return 2;
    }
    path = argv[1];
    const char *cmd = argv[2];
    if (strcmp(cmd, "ask") == 0 && argc == 4) {
        int fd = dial(0);
        if (fd < 0)
            return 1;
        put(fd, argv[3], strlen(argv[3]));
        put(fd, "\n", 1);
        return get_line(fd, 5000, 1) == 1 ? 0 : 1;
    }
    if (strcmp(cmd, "long") == 0 && argc == 4) {
        int fd = dial(0);
        if (fd < 0)
            return 1;
        size_t n = strtoul(argv[3], NULL, 10);
        char *junk = malloc(n);
        if (junk == NULL)
            return 1;
        memset(junk, 'x', n);
        put(fd, junk, n);
        free(junk);
        return closed_within(fd, 10000) ? 0 : 1;
    }
    if (strcmp(cmd, "hold") == 0 && argc == 4) {
        int fd = dial(0);
        if (fd < 0)
            return 1;
        long long t0 = now_ms();
        put(fd, "{\"op\":\"sta", 10);
        if (closed_within(fd, atoi(argv[3])))
            printf("closed after %lld ms\n", now_ms() - t0);
        else
            printf("held\n");
        return 0;
    }
    if (strcmp(cmd, "connects") == 0 && argc == 4) {
        int n = atoi(argv[3]), opened = 0, closed = 0;
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16) {
            rl.rlim_cur = rl.rlim_max < (rlim_t)n + 16 ? rl.rlim_max : (rlim_t)n + 16;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        int *fds = calloc((size_t)n, sizeof *fds);
        if (fds == NULL)
            return 1;
        for (int i = 0; i < n; i++)
            if ((fds[i] = dial(1)) >= 0)
                opened++;
        for (int i = 0; i < n; i++)
            if (fds[i] >= 0) {
                closed += closed_within(fds[i], 0 + (i == n - 1) * 100);
                close(fds[i]);
            }
        free(fds);
        printf("opened %d closed-by-daemon %d\n", opened, closed);
        return 0;
    }
    if (strcmp(cmd, "noread") == 0 && argc == 5) {
        int fd = dial(0);
        if (fd < 0)
            return 1;
        int rcv = 4096;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        for (int i = 0, n = atoi(argv[3]); i < n; i++)
            put(fd, "{\"op\":\"status\"}\n", 16);
        /* never read: poll for the hang-up alone */
        long long end = now_ms() + atoi(argv[4]);
        for (;;) {
            struct pollfd p = {.fd = fd, .events = POLLRDHUP};
            long long left = end - now_ms();
            if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
                printf("open\n");
                return 0;
            }
            if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) {
                printf("closed\n");
                return 0;
            }
        }
    }
    if (strcmp(cmd, "garbage") == 0 && argc == 3) {
        int fd = dial(0);
        if (fd < 0)
            return 1;
        put(fd, "this is not json\n", 17);
        if (get_line(fd, 5000, 1) != 1)
            return 1;
        return closed_within(fd, 5000) ? 0 : 1;
    }
    if (strcmp(cmd, "events") == 0 && argc == 5) {
        int fd = dial(0);
        if (fd < 0)
            return 1;
        put(fd, "{\"op\":\"subscribe\"}\n", 19);
        if (get_line(fd, 5000, 0) != 1)
            return 1;
        printf("subscribed\n");
        fflush(stdout);
        long long end = now_ms() + atoi(argv[4]);
        for (int seen = 0, n = atoi(argv[3]); seen < n;) {
            long long left = end - now_ms();
            if (left <= 0 || get_line(fd, (int)left, 1) != 1)
                return 1;
            fflush(stdout);
            seen++;
        }
        return 0;
    }
    if (strcmp(cmd, "idle") == 0 && argc == 5) {
        int n = atoi(argv[3]), open_n = 0;
        if (n <= 0 || n > 64)
            return 2;
        struct pollfd p[64];
        for (int i = 0; i < n; i++)
            if ((p[i].fd = dial(0)) < 0)
                return 1;
        long long t0 = now_ms(), end = t0 + atoi(argv[4]);
        for (open_n = n; open_n > 0;) {
            for (int i = 0; i < n; i++)
                p[i].events = POLLRDHUP, p[i].revents = 0;
            long long left = end - now_ms();
            if (left <= 0 || poll(p, (nfds_t)n, (int)left) <= 0)
                break;
            for (int i = 0; i < n; i++)
                if (p[i].fd >= 0 && (p[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
                    close(p[i].fd);
                    p[i].fd = -1; /* poll skips it from now on */
                    open_n--;
                }
        }
        if (open_n == 0)
            printf("closed after %lld ms\n", now_ms() - t0);
        else
            printf("held %d\n", open_n);
        return 0;
    }
    fprintf(stderr, "sgctl: bad arguments\n");
    return 2;
}
