#define _GNU_SOURCE
#include "util/net.h"

#include "util/strict.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int net_addr_parse(const char *host, unsigned port, struct net_addr *out)
{
    struct net_addr a;
    memset(&a, 0, sizeof a);
    if (port == 0 || port > 65535)
        return -1;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a.u.v4.sin_addr) == 1) {
        a.u.v4.sin_family = AF_INET;
        a.u.v4.sin_port = htons((uint16_t)port);
        a.len = sizeof a.u.v4;
    } else if (inet_pton(AF_INET6, host, &a.u.v6.sin6_addr) == 1) {
        a.u.v6.sin6_family = AF_INET6;
        a.u.v6.sin6_port = htons((uint16_t)port);
        a.len = sizeof a.u.v6;
    } else {
        return -1;
    }
    *out = a;
    return 0;
}

int net_endpoint_parse(const char *text, struct net_addr *out)
{
    char host[NET_HOST_MAX];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
        return -1;
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (text[0] == '[') { /* [v6]:port */
        if (hlen < 3 || text[hlen - 1] != ']')
            return -1;
        h = text + 1;
        hlen -= 2;
        if (memchr(h, ':', hlen) == NULL)
            return -1; /* brackets are for IPv6 only */
    } else if (memchr(text, ':', hlen) != NULL) {
        return -1; /* an IPv6 address needs its brackets: "::1:5000" is ambiguous */
    }
    if (hlen == 0 || hlen >= sizeof host)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    unsigned long port = 0;
    if (colon[1] == '0' || strict_ulong(colon + 1, 1, 65535, &port) != 0)
        return -1; /* no leading zeros, no port 0 */
    return net_addr_parse(host, (unsigned)port, out);
}

int net_prefix_parse(const char *text, struct net_prefix *out)
{
    char host[NET_HOST_MAX];
    const char *slash = strchr(text, '/');
    size_t hlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
    if (hlen == 0 || hlen >= sizeof host)
        return -1;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    struct net_prefix p;
    memset(&p, 0, sizeof p);
    if (inet_pton(AF_INET, host, p.bytes) == 1)
        p.family = AF_INET;
    else if (inet_pton(AF_INET6, host, p.bytes) == 1)
        p.family = AF_INET6;
    else
        return -1;
    unsigned max = p.family == AF_INET ? 32 : 128;
    p.bits = max;
    if (slash != NULL) {
        unsigned long v = 0;
        if ((slash[1] == '0' && slash[2] != '\0') || strict_ulong(slash + 1, 0, max, &v) != 0)
            return -1; /* no leading zeros */
        p.bits = (unsigned)v;
    }
    for (unsigned bit = p.bits; bit < max; bit++)
        if (p.bytes[bit / 8] & (0x80u >> (bit % 8)))
            return -1; /* host bits set: "10.1.2.3/8" is not a network */
    *out = p;
    return 0;
}

int net_prefix_contains(const struct net_prefix *p, const struct net_addr *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *bytes;
    int family = a->u.sa.sa_family;
    if (family == AF_INET) {
        bytes = (const uint8_t *)&a->u.v4.sin_addr;
    } else if (family == AF_INET6) {
        bytes = a->u.v6.sin6_addr.s6_addr;
        if (p->family == AF_INET && memcmp(bytes, mapped, sizeof mapped) == 0) {
            bytes += 12;
            family = AF_INET;
        }
    } else {
        return 0;
    }
    if (family != p->family)
        return 0;
    unsigned whole = p->bits / 8, rest = p->bits % 8;
    if (memcmp(bytes, p->bytes, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (bytes[whole] & mask) == (p->bytes[whole] & mask);
}

void net_prefix_format(const struct net_prefix *p, char *out, size_t out_size)
{
    char host[NET_HOST_MAX] = "";
    inet_ntop(p->family, p->bytes, host, sizeof host);
    snprintf(out, out_size, "%s/%u", host, p->bits);
}

int net_accept_burst(int lfd, int burst, void (*take)(void *ctx, int fd), void *ctx)
{
    for (int k = 0; k < burst; k++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            take(ctx, fd);
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        else if (errno != EINTR && errno != ECONNABORTED)
            return errno;
    }
    return 0;
}

void net_endpoint_format(const struct net_addr *a, char out[NET_ENDPOINT_MAX])
{
    char host[NET_HOST_MAX];
    unsigned port;
    net_addr_format(a, host, &port);
    snprintf(out, NET_ENDPOINT_MAX, strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host, port);
}

void net_addr_format(const struct net_addr *a, char host[NET_HOST_MAX], unsigned *port)
{
    host[0] = '\0';
    *port = 0;
    if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.v4.sin_addr, host, NET_HOST_MAX);
        *port = ntohs(a->u.v4.sin_port);
    } else if (a->u.sa.sa_family == AF_INET6) {
        const struct in6_addr *ip = &a->u.v6.sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(ip))
            inet_ntop(AF_INET, &ip->s6_addr[12], host, NET_HOST_MAX);
        else
            inet_ntop(AF_INET6, ip, host, NET_HOST_MAX);
        *port = ntohs(a->u.v6.sin6_port);
    }
}

int net_addr_equal(const struct net_addr *a, const struct net_addr *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return 0;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.v4.sin_port == b->u.v4.sin_port &&
               a->u.v4.sin_addr.s_addr == b->u.v4.sin_addr.s_addr;
    return a->u.v6.sin6_port == b->u.v6.sin6_port &&
           memcmp(&a->u.v6.sin6_addr, &b->u.v6.sin6_addr, sizeof a->u.v6.sin6_addr) == 0;
}

int net_addr_for_family(const struct net_addr *in, int af, struct net_addr *out)
{
    if (in->u.sa.sa_family == af) {
        *out = *in;
        return 0;
    }
    if (af == AF_INET6 && in->u.sa.sa_family == AF_INET) {
        struct net_addr m;
        memset(&m, 0, sizeof m);
        m.u.v6.sin6_family = AF_INET6;
        m.u.v6.sin6_port = in->u.v4.sin_port;
        m.u.v6.sin6_addr.s6_addr[10] = 0xff;
        m.u.v6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&m.u.v6.sin6_addr.s6_addr[12], &in->u.v4.sin_addr, 4);
        m.len = sizeof m.u.v6;
        *out = m;
        return 0;
    }
    return -1;
}

static void set_buffers(int fd, int bufsize)
{
#ifdef SO_RCVBUFFORCE
    /* As root the FORCE variants pass net.core.rmem_max; otherwise they fail quietly. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof bufsize) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof bufsize) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
#else
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
#endif
}

static int open_bound(const struct sockaddr *sa, socklen_t len, int bufsize, char *err,
                      size_t errlen, const char *what)
{
    int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a UDP socket: %s", strerror(errno));
        return -1;
    }
    if (sa->sa_family == AF_INET6) {
        int off = 0;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    set_buffers(fd, bufsize);
    if (bind(fd, sa, len) != 0) {
        snprintf(err, errlen, "cannot bind UDP %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int net_bind(const char *host, unsigned port, int bufsize, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot use bind address %s: %s", host, gai_strerror(gai));
        return -1;
    }
    char what[NET_HOST_MAX + 16];
    snprintf(what, sizeof what, "%s port %u", host, port);
    int fd = open_bound(res->ai_addr, res->ai_addrlen, bufsize, err, errlen, what);
    freeaddrinfo(res);
    return fd;
}

/* 1 if a is a loopback address (127.0.0.0/8, ::1, or 127/8 mapped into IPv6). */
static int is_loopback(const struct net_addr *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return (ntohl(a->u.v4.sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *ip = &a->u.v6.sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(ip) || (IN6_IS_ADDR_V4MAPPED(ip) && ip->s6_addr[12] == 127);
}

/* The address a socket is bound to. Returns 0, or -1 (errno set). */
static int bound_addr(int fd, struct net_addr *me)
{
    memset(me, 0, sizeof *me);
    socklen_t len = sizeof me->u;
    if (getsockname(fd, &me->u.sa, &len) != 0)
        return -1;
    me->len = len;
    return 0;
}

static void set_port(struct net_addr *a, uint16_t port)
{
    if (a->u.sa.sa_family == AF_INET)
        a->u.v4.sin_port = htons(port);
    else
        a->u.v6.sin6_port = htons(port);
}

int net_bind_beside(int main_fd, int af, int bufsize, char *err, size_t errlen)
{
    struct net_addr me, a;
    if (bound_addr(main_fd, &me) != 0) {
        snprintf(err, errlen, "cannot read the bound address: %s", strerror(errno));
        return -1;
    }
    const char *fam = af == AF_INET ? "IPv4" : "IPv6";
    if (!is_loopback(&me)) {
        char host[NET_HOST_MAX];
        unsigned port;
        net_addr_format(&me, host, &port);
        snprintf(err, errlen,
                 "this daemon is bound to %s (SECUREDGRAM_ADDRESS) and sends only from it, so "
                 "not to %s addresses; bind to :: to reach both families",
                 host, fam);
        return -1;
    }
    /* The same exposure as the main socket: the other family's loopback, nothing wider. */
    if (net_addr_parse(af == AF_INET ? "127.0.0.1" : "::1", 1, &a) != 0)
        return -1;
    set_port(&a, 0);
    return open_bound(&a.u.sa, a.len, bufsize, err, errlen,
                      af == AF_INET ? "127.0.0.1 any port" : "::1 any port");
}

static int is_wildcard(const struct net_addr *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return a->u.v4.sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&a->u.v6.sin6_addr);
}

static uint16_t port_of(const struct net_addr *a)
{
    return ntohs(a->u.sa.sa_family == AF_INET ? a->u.v4.sin_port : a->u.v6.sin6_port);
}

int net_addr_is_self(int fd, const struct net_addr *dst)
{
    struct net_addr me, d, probe;
    if (bound_addr(fd, &me) != 0)
        return 0;
    net_addr_canon(&me, &me);
    net_addr_canon(dst, &d);
    if (port_of(&me) != port_of(&d))
        return 0;
    if (net_addr_equal(&me, &d))
        return 1;
    if (!is_wildcard(&me))
        return 0;
    probe = d;
    set_port(&probe, 0);
    int s = socket(probe.u.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int local = s >= 0 && bind(s, &probe.u.sa, probe.len) == 0;
    if (s >= 0)
        close(s);
    return local;
}

void net_addr_canon(const struct net_addr *in, struct net_addr *out)
{
    const struct in6_addr *ip = &in->u.v6.sin6_addr;
    if (in->u.sa.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(ip)) {
        *out = *in;
        return;
    }
    struct net_addr v4;
    memset(&v4, 0, sizeof v4);
    v4.u.v4.sin_family = AF_INET;
    v4.u.v4.sin_port = in->u.v6.sin6_port;
    memcpy(&v4.u.v4.sin_addr, &ip->s6_addr[12], 4);
    v4.len = sizeof v4.u.v4;
    *out = v4;
}

int net_addr_same_peer(const struct net_addr *a, const struct net_addr *b)
{
    struct net_addr x, y;
    net_addr_canon(a, &x);
    net_addr_canon(b, &y);
    return net_addr_equal(&x, &y);
}

void net_addr_key(const struct net_addr *a, uint8_t key[NET_ADDR_KEY_BYTES])
{
    memset(key, 0, NET_ADDR_KEY_BYTES);
    if (a->u.sa.sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &a->u.v4.sin_addr, 4);
        memcpy(key + 16, &a->u.v4.sin_port, 2);
    } else if (a->u.sa.sa_family == AF_INET6) {
        memcpy(key, &a->u.v6.sin6_addr, 16);
        memcpy(key + 16, &a->u.v6.sin6_port, 2);
    }
}

int net_family(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ss.ss_family;
}

#ifdef __linux__
#define BATCH_MAX 64

int net_recv_batch(int fd, struct net_dgram *d, int n)
{
    struct mmsghdr msgs[BATCH_MAX];
    struct iovec iov[BATCH_MAX];
    if (n > BATCH_MAX)
        n = BATCH_MAX;
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = d[i].buf;
        iov[i].iov_len = d[i].cap;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &d[i].addr.u;
        msgs[i].msg_hdr.msg_namelen = sizeof d[i].addr.u;
    }
    int got = recvmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT, NULL);
    if (got < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    for (int i = 0; i < got; i++) {
        d[i].len = msgs[i].msg_len;
        d[i].truncated = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || d[i].len >= d[i].cap;
        d[i].addr.len = msgs[i].msg_hdr.msg_namelen;
    }
    return got;
}

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, since Linux 4.18 */
#endif
#define TRAIN_SEGMENTS_MAX 64 /* the kernel's UDP_MAX_SEGMENTS */
#define TRAIN_BYTES_MAX 60000 /* the whole train under IP's 64 KiB, headers included */

/* The kernel or the device said no to segmentation offload: plain datagrams from then on. */
static int trains_off;

/* A train goes out of one interface: IPv6 link-local scopes must agree too. */
static int same_scope(const struct net_addr *a, const struct net_addr *b)
{
    return a->u.sa.sa_family != AF_INET6 || a->u.v6.sin6_scope_id == b->u.v6.sin6_scope_id;
}

/*
 * How many datagrams from d[i] on can leave as one train: UDP segmentation
 * offload (UDP_SEGMENT) passes them down the stack as one buffer that is cut
 * into datagrams of the first one's size at the end (by the NIC, or in
 * software); on the wire they are the same datagrams, one by one. They must
 * share a destination and a size; only the last may be shorter.
 */
static int train_length(const struct net_dgram *d, int i, int n, int room)
{
    size_t seg = d[i].len, total = seg;
    int k = 1;
    if (trains_off || seg == 0)
        return 1;
    while (i + k < n && k < room && k < TRAIN_SEGMENTS_MAX && d[i + k].len > 0 &&
           d[i + k].len <= seg && total + d[i + k].len <= TRAIN_BYTES_MAX &&
           net_addr_equal(&d[i].addr, &d[i + k].addr) && same_scope(&d[i].addr, &d[i + k].addr)) {
        total += d[i + k].len;
        if (d[i + k++].len < seg)
            break; /* a shorter one ends its train */
    }
    return k;
}

/* A train was refused: its datagrams go again one by one; a refusal by the kernel or device is for
 * good. */
static int train_refused(int err)
{
    if (err == EIO || err == EOPNOTSUPP || err == ENOPROTOOPT)
        trains_off = 1;
    return err == EIO || err == EOPNOTSUPP || err == ENOPROTOOPT || err == EINVAL ||
           err == EMSGSIZE;
}

int net_send_batch(int fd, struct net_dgram *d, int n)
{
    struct mmsghdr msgs[BATCH_MAX];
    struct iovec iov[BATCH_MAX];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl[BATCH_MAX];
    int first[BATCH_MAX] = {0}, count[BATCH_MAX] = {0};
    int sent = 0, i = 0, plain_until = 0; /* d[i..plain_until) go one by one */
    while (i < n) {
        int m = 0, used = 0;
        for (int j = i; j < n && used < BATCH_MAX; m++) {
            int k = j < plain_until ? 1 : train_length(d, j, n, BATCH_MAX - used);
            memset(&msgs[m], 0, sizeof msgs[m]);
            for (int x = 0; x < k; x++) {
                iov[used + x].iov_base = d[j + x].buf;
                iov[used + x].iov_len = d[j + x].len;
            }
            msgs[m].msg_hdr.msg_iov = &iov[used];
            msgs[m].msg_hdr.msg_iovlen = (size_t)k;
            msgs[m].msg_hdr.msg_name = &d[j].addr.u;
            msgs[m].msg_hdr.msg_namelen = d[j].addr.len;
            if (k > 1) {
                memset(ctl[m].buf, 0, sizeof ctl[m].buf); /* no stray bytes in the padding */
                msgs[m].msg_hdr.msg_control = ctl[m].buf;
                msgs[m].msg_hdr.msg_controllen = sizeof ctl[m].buf;
                struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[m].msg_hdr);
                c->cmsg_level = IPPROTO_UDP;
                c->cmsg_type = UDP_SEGMENT;
                c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t seg = (uint16_t)d[j].len;
                memcpy(CMSG_DATA(c), &seg, sizeof seg);
            }
            first[m] = j;
            count[m] = k;
            used += k;
            j += k;
        }
        int r = sendmmsg(fd, msgs, (unsigned)m, MSG_DONTWAIT);
        if (r < 0) {
            int err = errno;
            if (err == EINTR)
                continue;
            if (count[0] > 1 && train_refused(err)) {
                plain_until = i + count[0];
                continue;
            }
            for (int x = 0; x < count[0]; x++)
                d[i + x].err = err; /* the first of the call failed */
            i += count[0];
            continue;
        }
        if (r > m)
            r = m; /* never, but the count is the kernel's */
        for (int x = 0; x < r; x++)
            for (int y = 0; y < count[x]; y++)
                d[first[x] + y].err = 0;
        if (r > 0) {
            sent += first[r - 1] + count[r - 1] - i;
            i = first[r - 1] + count[r - 1];
        }
    }
    return sent;
}
#else
int net_recv_batch(int fd, struct net_dgram *d, int n)
{
    int got = 0;
    for (; got < n; got++) {
        socklen_t alen = sizeof d[got].addr.u;
        ssize_t r = recvfrom(fd, d[got].buf, d[got].cap, MSG_DONTWAIT, &d[got].addr.u.sa, &alen);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            return got > 0 ? got : -1;
        }
        d[got].len = (size_t)r;
        d[got].truncated = d[got].len >= d[got].cap;
        d[got].addr.len = alen;
    }
    return got;
}

int net_send_batch(int fd, struct net_dgram *d, int n)
{
    int sent = 0;
    for (int i = 0; i < n; i++) {
        ssize_t r = sendto(fd, d[i].buf, d[i].len, MSG_DONTWAIT, &d[i].addr.u.sa, d[i].addr.len);
        d[i].err = r < 0 ? errno : 0;
        sent += r >= 0;
    }
    return sent;
}
#endif
