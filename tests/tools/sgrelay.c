/*
 * sgrelay: a lossy UDP relay on loopback, for tests and the benchmark (this
 * kernel has no netem).
 *
 *   sgrelay [options] LISTEN_ADDR:PORT TARGET_ADDR:PORT
 *
 * A program (A) sends to LISTEN; each datagram goes on to TARGET (B) from a
 * second socket (--source, by default LISTEN's address on an ephemeral port).
 * What B sends back to that socket goes to the last address that sent to
 * LISTEN, from LISTEN. Each direction (ab: A to B, ba: B to A) has its own
 * impairments, applied in this order: loss, duplication (the copy goes
 * through the rest on its own), the bandwidth cap (a serialisation queue: a
 * datagram leaves len / rate seconds after the one before it), then delay,
 * jitter and reordering. At most --queue datagrams are held per direction
 * (waiting for the link or for their delay); more are dropped. Random choices
 * come from splitmix64, one stream per direction, a fixed number of draws per
 * datagram: the nth datagram of a direction meets the same fate in every run
 * with the same seed. One poll() loop, CLOCK_MONOTONIC, a heap of release
 * times; no threads. Only loopback addresses are accepted.
 *
 * --stats FILE gets one JSON object: seed, reason (max-seconds, max-packets,
 * signal), elapsed_us, foreign (datagrams at the second socket not from
 * TARGET, ignored), and for each of "ab" and "ba": received, forwarded,
 * dropped_loss, dropped_queue, duplicated (copies made), reordered (datagrams
 * held back), send_errors, unsent (held at exit), bytes (forwarded, UDP
 * payload), first_us and last_us (the first and last forwarding, after the
 * start; -1 if none), late_us (the most a send came after its due time).
 * received + duplicated = forwarded + dropped_loss + dropped_queue +
 * send_errors + unsent.
 */
#include "util/clock.h"
#include "util/net.h"
#include "util/strict.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DGRAM_MAX 65536
#define READ_BATCH 64 /* datagrams read from one socket per wakeup */

static const char usage[] =
    "usage: sgrelay [options] LISTEN_ADDR:PORT TARGET_ADDR:PORT\n"
    "Relays UDP: what arrives at LISTEN goes to TARGET (A to B, 'ab'), what TARGET\n"
    "sends back goes to the last sender to LISTEN ('ba'). Addresses are numeric\n"
    "loopback (127.0.0.0/8, [::1]); IPv6 in brackets. Port 0 picks one (see --ready).\n"
    "Impairments, for both directions, or one with the suffix -ab or -ba\n"
    "(--loss-ab 5); later options override earlier ones:\n"
    "  --loss PCT            drop this percentage of datagrams\n"
    "  --dup PCT             send this percentage twice\n"
    "  --delay MS            hold each datagram MS milliseconds (decimals allowed)\n"
    "  --jitter MS           add a uniform random -MS..+MS to the delay\n"
    "  --reorder PCT         hold this percentage back a further --reorder-delay\n"
    "  --reorder-delay MS    (default 20) so that later datagrams overtake them\n"
    "  --rate BYTES_PER_S    bandwidth cap on UDP payload bytes (0: none, the default)\n"
    "Other options:\n"
    "  --queue N             datagrams held per direction at most (default 1000);\n"
    "                        more are dropped (dropped_queue)\n"
    "  --source ADDR[:PORT]  the address (and port) TARGET sees the relay send from\n"
    "  --seed N              seed of the random choices (default 1)\n"
    "  --max-seconds S       exit after S seconds (default 300)\n"
    "  --max-packets N       after N datagrams received (both directions), stop\n"
    "                        reading, send what is held, exit (default 10000000)\n"
    "  --stats FILE          on exit, write per-direction counts as one JSON object\n"
    "  --ready FILE          once both sockets are bound, write their addresses to FILE\n"
    "  --help                this text\n"
    "Exits 0 at either limit and on SIGTERM or SIGINT (held datagrams are counted\n"
    "as unsent), 1 on a socket error, 2 on a bad option.\n";

enum { LOSS, DUP, DELAY, JITTER, REORDER, REORDER_DELAY, RATE, N_IMP };
static const char *const imp_names[N_IMP] = {"loss",    "dup",           "delay", "jitter",
                                             "reorder", "reorder-delay", "rate"};
static uint64_t seed = 1, max_sec = 300, max_pkt = 10000000, queue_max = 1000;
static const struct {
    const char *name;
    uint64_t *v, min, max;
} nums[] = {{"queue", &queue_max, 1, 1000000},
            {"seed", &seed, 0, UINT64_MAX},
            {"max-seconds", &max_sec, 1, 86400},
            {"max-packets", &max_pkt, 1, UINT64_MAX}};
static const char *stats, *ready, *source;
static const struct {
    const char *name;
    const char **v;
} strs[] = {{"stats", &stats}, {"ready", &ready}, {"source", &source}};
enum { N_NUMS = sizeof nums / sizeof nums[0], N_STRS = sizeof strs / sizeof strs[0] };
enum { O_IMP = 256, O_NUM = 512, O_STR = 768 }; /* getopt_long's values */

struct dir {
    double v[N_IMP]; /* percentages (LOSS, DUP, REORDER) and milliseconds; not RATE */
    uint64_t rate;   /* bytes per second, 0: no cap */
    uint64_t rng;
    int64_t link_free; /* when the capped link is free again (us) */
    size_t held;
    uint64_t received, forwarded, dropped_loss, dropped_queue, duplicated, reordered;
    uint64_t send_errors, unsent, bytes;
    int64_t first_us, last_us; /* first and last forwarding, us since start; -1: none */
    int64_t late_us;           /* the most a datagram was sent after its release time */
};

struct slot {
    int64_t t;    /* release time, us */
    uint64_t seq; /* ties keep arrival order */
    int dir;
    size_t len;
    uint8_t *data;
};

static struct dir dirs[2];
static struct slot *slots;
static size_t *heap, heap_n, *free_list, free_n;
static uint64_t next_seq, foreign;
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    (void)!write(sig_pipe[1], "x", 1);
    errno = saved;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double uniform(struct dir *d)
{
    return (double)(splitmix64(&d->rng) >> 11) * 0x1.0p-53;
}

static int before(size_t a, size_t b)
{
    return slots[a].t < slots[b].t || (slots[a].t == slots[b].t && slots[a].seq < slots[b].seq);
}

static void heap_push(size_t s)
{
    size_t i = heap_n++;
    while (i > 0 && before(s, heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = s;
}

static size_t heap_pop(void)
{
    size_t top = heap[0], last = heap[--heap_n], i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = l + 1 < heap_n && before(heap[l + 1], heap[l]) ? l + 1 : l;
        if (l >= heap_n || !before(heap[m], last))
            break;
        heap[i] = heap[m];
        i = m;
    }
    if (heap_n > 0)
        heap[i] = last;
    return top;
}

/* Puts one datagram of direction k in the heap (or drops it), given its two random draws. */
static void hold(int k, const uint8_t *buf, size_t len, int64_t now, double u_jitter, int reorder)
{
    struct dir *d = &dirs[k];
    uint8_t *copy = d->held < queue_max ? malloc(len > 0 ? len : 1) : NULL;
    if (copy == NULL) {
        d->dropped_queue++;
        return;
    }
    memcpy(copy, buf, len);
    int64_t t = now;
    if (d->rate > 0) {
        t = d->link_free > now ? d->link_free : now;
        t += (int64_t)(((uint64_t)len * 1000000 + d->rate - 1) / d->rate);
        d->link_free = t;
    }
    double delay_ms = d->v[DELAY] + (2 * u_jitter - 1) * d->v[JITTER];
    t += delay_ms > 0 ? (int64_t)(delay_ms * 1000) : 0;
    if (reorder) {
        t += (int64_t)(d->v[REORDER_DELAY] * 1000);
        d->reordered++;
    }
    size_t s = free_list[--free_n];
    slots[s] = (struct slot){.t = t, .seq = next_seq++, .dir = k, .len = len, .data = copy};
    d->held++;
    heap_push(s);
}

/* One datagram received in direction k: five draws, whatever is enabled. */
static void arrive(int k, const uint8_t *buf, size_t len, int64_t now)
{
    struct dir *d = &dirs[k];
    d->received++;
    double u_loss = uniform(d), u_dup = uniform(d), u_reorder = uniform(d);
    double u_j1 = uniform(d), u_j2 = uniform(d);
    if (u_loss * 100 < d->v[LOSS]) {
        d->dropped_loss++;
        return;
    }
    int reorder = u_reorder * 100 < d->v[REORDER];
    hold(k, buf, len, now, u_j1, reorder);
    if (u_dup * 100 < d->v[DUP]) {
        d->duplicated++;
        hold(k, buf, len, now, u_j2, 0);
    }
}

static void release(size_t s, int fd, const struct net_addr *to, int64_t start)
{
    struct slot *sl = &slots[s];
    struct dir *d = &dirs[sl->dir];
    if (to != NULL && sendto(fd, sl->data, sl->len, 0, &to->u.sa, to->len) >= 0) {
        d->forwarded++;
        d->bytes += sl->len;
        d->last_us = clock_mono_us() - start;
        if (d->last_us + start - sl->t > d->late_us)
            d->late_us = d->last_us + start - sl->t;
        if (d->first_us < 0)
            d->first_us = d->last_us;
    } else {
        d->send_errors++;
    }
    free(sl->data);
    sl->data = NULL;
    d->held--;
    free_list[free_n++] = s;
}

static int loopback(const struct net_addr *a)
{
    struct net_prefix v4, v6;
    return net_prefix_parse("127.0.0.0/8", &v4) == 0 && net_prefix_parse("::1", &v6) == 0 &&
           (net_prefix_contains(&v4, a) || net_prefix_contains(&v6, a));
}

static void set_port(struct net_addr *a, unsigned port)
{
    if (a->u.sa.sa_family == AF_INET)
        a->u.v4.sin_port = htons((uint16_t)port);
    else
        a->u.v6.sin6_port = htons((uint16_t)port);
}

/* ADDR:PORT or [V6]:PORT (PORT 0: a free one); with port_optional also ADDR, V6 or [V6]. */
static int parse_endpoint(const char *s, int port_optional, struct net_addr *out)
{
    char host[NET_HOST_MAX];
    const char *h = s, *rest, *first = strchr(s, ':');
    if (s[0] == '[') {
        h = s + 1;
        rest = strchr(h, ']');
        if (rest == NULL)
            return -1;
        rest++;
    } else if (first != NULL && strchr(first + 1, ':') != NULL) {
        rest = s + strlen(s); /* a bare IPv6 address */
    } else {
        rest = first != NULL ? first : s + strlen(s);
    }
    size_t hlen = (size_t)(rest - h) - (s[0] == '[');
    unsigned long port = 0;
    if (hlen == 0 || hlen >= sizeof host || (*rest == '\0' && !port_optional) ||
        (*rest != '\0' && (*rest != ':' || strict_ulong(rest + 1, 0, 65535, &port) != 0)))
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (net_addr_parse(host, 1, out) != 0) /* which refuses port 0 */
        return -1;
    set_port(out, (unsigned)port);
    return 0;
}

static int open_socket(const struct net_addr *a, struct net_addr *bound, const char *what)
{
    char host[NET_HOST_MAX];
    unsigned port;
    int fd = socket(a->u.sa.sa_family, SOCK_DGRAM, 0), buf = 4 << 20;
    net_addr_format(a, host, &port);
    if (fd < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || bind(fd, &a->u.sa, a->len) != 0) {
        fprintf(stderr, "sgrelay: %s %s port %u: %s\n", what, host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    bound->len = sizeof bound->u;
    (void)getsockname(fd, &bound->u.sa, &bound->len);
    return fd;
}

/* Writes FILE through FILE.tmp and a rename, so that a reader never sees half of it. */
static int write_file(const char *path, const char *text)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "sgrelay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_stats(const char *path, const char *reason, int64_t elapsed)
{
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "{\"seed\":%" PRIu64 ",\"reason\":\"%s\",\"elapsed_us\":%" PRId64
                     ",\"foreign\":%" PRIu64,
                     seed, reason, elapsed, foreign);
    for (int k = 0; k < 2; k++) {
        const struct dir *d = &dirs[k];
        n += snprintf(text + n, sizeof text - (size_t)n,
                      ",\"%s\":{\"received\":%" PRIu64 ",\"forwarded\":%" PRIu64
                      ",\"dropped_loss\":%" PRIu64 ",\"dropped_queue\":%" PRIu64
                      ",\"duplicated\":%" PRIu64 ",\"reordered\":%" PRIu64
                      ",\"send_errors\":%" PRIu64 ",\"unsent\":%" PRIu64 ",\"bytes\":%" PRIu64
                      ",\"first_us\":%" PRId64 ",\"last_us\":%" PRId64 ",\"late_us\":%" PRId64 "}",
                      k == 0 ? "ab" : "ba", d->received, d->forwarded, d->dropped_loss,
                      d->dropped_queue, d->duplicated, d->reordered, d->send_errors, d->unsent,
                      d->bytes, d->first_us, d->last_us, d->late_us);
    }
    snprintf(text + n, sizeof text - (size_t)n, "}\n");
    return write_file(path, text);
}

int main(int argc, char **argv)
{
    static char names[N_IMP * 3][24];
    struct option opts[1 + N_NUMS + N_STRS + N_IMP * 3 + 1], *o = opts;
    *o++ = (struct option){"help", no_argument, NULL, 'h'};
    for (int i = 0; i < N_NUMS; i++)
        *o++ = (struct option){nums[i].name, required_argument, NULL, O_NUM + i};
    for (int i = 0; i < N_STRS; i++)
        *o++ = (struct option){strs[i].name, required_argument, NULL, O_STR + i};
    for (int i = 0; i < N_IMP * 3; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", imp_names[i / 3],
                 (const char *[]){"", "-ab", "-ba"}[i % 3]);
        *o++ = (struct option){names[i], required_argument, NULL, O_IMP + i};
    }
    *o = (struct option){0};
    for (int k = 0; k < 2; k++)
        dirs[k] = (struct dir){.v = {[REORDER_DELAY] = 20}, .first_us = -1, .last_us = -1};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int i = c - (c >= O_STR ? O_STR : c >= O_NUM ? O_NUM : O_IMP), imp = i / 3;
        int pct = imp == LOSS || imp == DUP || imp == REORDER;
        double x = 0;
        uint64_t r = 0;
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        } else if (c >= O_STR && i < N_STRS) {
            *strs[i].v = optarg;
        } else if (c >= O_NUM && i < N_NUMS) {
            if (strict_u64(optarg, nums[i].min, nums[i].max, nums[i].v) != 0) {
                fprintf(stderr,
                        "sgrelay: --%s '%s': not a whole number from %" PRIu64 " to %" PRIu64 "\n",
                        nums[i].name, optarg, nums[i].min, nums[i].max);
                return 2;
            }
        } else if (c < O_IMP || imp >= N_IMP) {
            fprintf(stderr, "sgrelay: unknown option or missing value: %s (see --help)\n",
                    argv[optind - 1]);
            return 2;
        } else if (imp == RATE ? strict_u64(optarg, 0, UINT64_MAX / 1000000, &r) != 0
                               : strict_double(optarg, 0, pct ? 100 : 3600000, &x) != 0) {
            fprintf(stderr, "sgrelay: --%s '%s': not %s\n", names[i], optarg,
                    imp == RATE ? "a whole number of bytes per second"
                    : pct       ? "a percentage from 0 to 100"
                                : "milliseconds from 0 to 3600000");
            return 2;
        } else {
            for (int k = 0; k < 2; k++) {
                if (i % 3 != 0 && i % 3 != k + 1)
                    continue;
                if (imp == RATE)
                    dirs[k].rate = r;
                else
                    dirs[k].v[imp] = x;
            }
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "sgrelay: expected LISTEN_ADDR:PORT TARGET_ADDR:PORT (see --help)\n");
        return 2;
    }
    struct net_addr listen_a, target, src, listen_b, src_b, peer, from;
    const char *bad_addr = parse_endpoint(argv[optind], 0, &listen_a) != 0     ? argv[optind]
                           : parse_endpoint(argv[optind + 1], 0, &target) != 0 ? argv[optind + 1]
                           : source != NULL && parse_endpoint(source, 1, &src) != 0 ? source
                                                                                    : NULL;
    if (bad_addr != NULL) {
        fprintf(stderr, "sgrelay: not a numeric ADDR:PORT or [V6]:PORT: %s\n", bad_addr);
        return 2;
    }
    const char *lo = target.u.sa.sa_family == AF_INET ? "127.0.0.1" : "::1";
    if (source == NULL && target.u.sa.sa_family == listen_a.u.sa.sa_family)
        src = listen_a; /* LISTEN's address on a free port, else the target family's loopback */
    else if (source == NULL && net_addr_parse(lo, 1, &src) != 0)
        return 2;
    if (source == NULL)
        set_port(&src, 0);
    if (!loopback(&listen_a) || !loopback(&target) || !loopback(&src)) {
        fprintf(stderr, "sgrelay: only loopback addresses (127.0.0.0/8, ::1) are accepted\n");
        return 2;
    }
    if (src.u.sa.sa_family != target.u.sa.sa_family) {
        fprintf(stderr, "sgrelay: --source must be of the same family as TARGET\n");
        return 2;
    }
    for (int k = 0; k < 2; k++) { /* two streams: one splitmix64 output each as the state */
        uint64_t s = seed ^ (k == 0 ? 0xab : 0xba);
        dirs[k].rng = splitmix64(&s);
    }
    size_t n_slots = (size_t)queue_max * 2;
    slots = calloc(n_slots, sizeof *slots);
    heap = calloc(n_slots, sizeof *heap);
    free_list = calloc(n_slots, sizeof *free_list);
    static uint8_t buf[DGRAM_MAX];
    int rc = 1, lfd = -1, ofd = -1;
    if (slots == NULL || heap == NULL || free_list == NULL || pipe(sig_pipe) != 0) {
        fprintf(stderr, "sgrelay: no memory\n");
        goto out;
    }
    for (free_n = 0; free_n < n_slots; free_n++)
        free_list[free_n] = n_slots - 1 - free_n;
    (void)fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    lfd = open_socket(&listen_a, &listen_b, "LISTEN");
    ofd = lfd < 0 ? -1 : open_socket(&src, &src_b, "--source");
    if (ofd < 0)
        goto out;
    if (ready != NULL) {
        char lh[NET_HOST_MAX], sh[NET_HOST_MAX], text[256];
        unsigned lp, sp;
        net_addr_format(&listen_b, lh, &lp);
        net_addr_format(&src_b, sh, &sp);
        snprintf(text, sizeof text, "listen %s %u\nsource %s %u\n", lh, lp, sh, sp);
        if (write_file(ready, text) != 0)
            goto out;
    }
    int64_t start = clock_mono_us(), end = start + (int64_t)max_sec * 1000000;
    int have_peer = 0, draining = 0;
    const char *reason = "max-seconds";
    for (;;) {
        int64_t now = clock_mono_us();
        while (heap_n > 0 && slots[heap[0]].t <= now) {
            size_t s = heap_pop();
            int k = slots[s].dir;
            release(s, k == 0 ? ofd : lfd, k == 0 ? &target : have_peer ? &peer : NULL, start);
        }
        if (draining && heap_n == 0) {
            reason = "max-packets";
            break;
        }
        if (now >= end)
            break;
        int64_t wake = heap_n > 0 && slots[heap[0]].t < end ? slots[heap[0]].t : end;
        struct pollfd pfd[3] = {{.fd = sig_pipe[0], .events = POLLIN},
                                {.fd = draining ? -1 : lfd, .events = POLLIN},
                                {.fd = draining ? -1 : ofd, .events = POLLIN}};
        int r = poll(pfd, 3, (int)((wake - now + 999) / 1000));
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "sgrelay: poll: %s\n", strerror(errno));
            goto out;
        }
        if (r > 0 && pfd[0].revents != 0) {
            reason = "signal";
            break;
        }
        now = clock_mono_us();
        for (int k = 0; k < 2 && r > 0; k++) {
            for (int i = 0; i < READ_BATCH && !draining && pfd[1 + k].revents != 0; i++) {
                from.len = sizeof from.u;
                ssize_t n = recvfrom(k == 0 ? lfd : ofd, buf, sizeof buf, 0, &from.u.sa, &from.len);
                if (n < 0)
                    break;
                if (k == 1 && !net_addr_same_peer(&from, &target)) {
                    foreign++; /* not from TARGET: not relayed */
                    continue;
                }
                if (k == 0) {
                    peer = from;
                    have_peer = 1;
                }
                arrive(k, buf, (size_t)n, now);
                draining = dirs[0].received + dirs[1].received >= max_pkt;
            }
        }
    }
    rc = 0;
    while (heap_n > 0) {
        size_t s = heap_pop();
        dirs[slots[s].dir].unsent++;
        dirs[slots[s].dir].held--;
        free(slots[s].data);
    }
    if (stats != NULL && write_stats(stats, reason, clock_mono_us() - start) != 0)
        rc = 1;
out:
    if (lfd >= 0)
        close(lfd);
    if (ofd >= 0)
        close(ofd);
    for (int i = 0; i < 2; i++)
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
    free(slots);
    free(heap);
    free(free_list);
    return rc;
}
