/*
 * net: UDP sockets and addresses. Batched receive and send (recvmmsg and
 * sendmmsg on Linux, a loop of recvfrom/sendto elsewhere).
 */
#ifndef SG_NET_H
#define SG_NET_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A peer address, IPv4 or IPv6, small enough to keep one per message in flight. */
struct net_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } u;
    socklen_t len;
};

#define NET_HOST_MAX 64 /* INET6_ADDRSTRLEN plus room */

/*
 * Parses a numeric IPv4 or IPv6 address (or "localhost", taken as 127.0.0.1)
 * and a port into out. Host names are not resolved: the daemon never blocks
 * on DNS. Returns 0, or -1 if host is not an address.
 */
__attribute__((warn_unused_result)) int net_addr_parse(const char *host, unsigned port,
                                                       struct net_addr *out);

/*
 * "host:port" or "[v6]:port" (numeric, as net_addr_parse; the brackets are
 * required for IPv6) into out. Returns 0, or -1.
 */
__attribute__((warn_unused_result)) int net_endpoint_parse(const char *text, struct net_addr *out);

/* A network: an address and how many of its leading bits count (CIDR). */
struct net_prefix {
    int family; /* AF_INET or AF_INET6 */
    uint8_t bytes[16];
    unsigned bits; /* 0-32 or 0-128 */
};

/*
 * "192.0.2.0/24", "2001:db8::/32", or one address alone (all its bits).
 * Host bits that are set are refused, as a likely typo ("10.1.2.3/8").
 * Returns 0, or -1.
 */
__attribute__((warn_unused_result)) int net_prefix_parse(const char *text, struct net_prefix *out);

/* 1 if a (its address, not its port) lies inside p; an IPv4-mapped IPv6 address counts as IPv4. */
int net_prefix_contains(const struct net_prefix *p, const struct net_addr *a);

/* Formats p as net_prefix_parse reads it, into out (at least NET_HOST_MAX + 4 bytes). */
void net_prefix_format(const struct net_prefix *p, char *out, size_t out_size);

/*
 * Formats an address as text and port; an IPv4-mapped IPv6 address is shown as
 * plain IPv4, so senders are stored the same way whichever socket heard them.
 */
void net_addr_format(const struct net_addr *a, char host[NET_HOST_MAX], unsigned *port);

#define NET_ENDPOINT_MAX (NET_HOST_MAX + 8) /* "[v6]:65535" and its NUL */

/*
 * Accepts up to burst connections waiting on the non-blocking listener lfd,
 * each made non-blocking and close-on-exec and handed to take(ctx, fd),
 * which owns it. Returns 0 once none waits, or the errno of a failure (such
 * as EMFILE: the listener stays readable, so its caller should rest it).
 */
int net_accept_burst(int lfd, int burst, void (*take)(void *ctx, int fd), void *ctx);

/* Formats an address as net_endpoint_parse reads it: "host:port", or "[v6]:port". */
void net_endpoint_format(const struct net_addr *a, char out[NET_ENDPOINT_MAX]);

/*
 * Opens a non-blocking UDP socket bound to host:port (host may be a name; it is
 * resolved once, at start). An IPv6 socket also serves IPv4 (not V6ONLY).
 * Asks for bufsize-byte kernel buffers. Returns the fd, or -1 with err set.
 */
int net_bind(const char *host, unsigned port, int bufsize, char *err, size_t errlen);

/*
 * Opens a socket of family af, port 0, for sending to the other family than
 * main_fd's, with no wider exposure than main_fd: a daemon bound to a
 * loopback address gets the other family's loopback (127.0.0.1 or ::1). Any
 * other bind address refuses (-1, err says why and what to do): opening a
 * wildcard socket would accept datagrams from interfaces the operator did
 * not choose.
 */
int net_bind_beside(int main_fd, int af, int bufsize, char *err, size_t errlen);

/*
 * 1 if a datagram sent to dst from the socket fd comes back to fd itself: the
 * same port, and the bound address, or any local address when fd is bound to
 * the wildcard (checked by binding a scratch socket to it). For the rare
 * datagram of ours that comes back: it is accepted only if we sent it to us.
 */
int net_addr_is_self(int fd, const struct net_addr *dst);

/* in with an IPv4-mapped IPv6 address turned into plain IPv4 (else a copy). */
void net_addr_canon(const struct net_addr *in, struct net_addr *out);

/* 1 if a and b are the same address and port, whichever socket family names them. */
int net_addr_same_peer(const struct net_addr *a, const struct net_addr *b);

#define NET_ADDR_KEY_BYTES 18
#define NET_ADDR_KEY_HOST_BYTES 16 /* the key's first bytes: the address without the port */

/*
 * The one canonical key of an address, for hash tables: 16 bytes of IPv6
 * address, an IPv4 address written IPv4-mapped (::ffff:a.b.c.d), so that a
 * peer is one key whichever socket family names it (as net_addr_same_peer),
 * then the port, 2 bytes in network order. The family is in the address (the
 * IPv4-mapped prefix means IPv4); a key by host alone is the first
 * NET_ADDR_KEY_HOST_BYTES. The IPv6 scope id and flow label are left out.
 * Any family but AF_INET and AF_INET6 gives 18 zero bytes.
 */
void net_addr_key(const struct net_addr *a, uint8_t key[NET_ADDR_KEY_BYTES]);

/* The family of a bound socket (AF_INET or AF_INET6), or -1. */
int net_family(int fd);

/* One datagram of a batch. */
struct net_dgram {
    uint8_t *buf;
    size_t cap; /* for receiving: one byte more than the largest datagram */
    size_t len;
    int truncated;
    struct net_addr addr;
    int err; /* for sending: 0, or the errno of this datagram */
};

/*
 * Receives up to n datagrams without blocking. Returns how many (0 if none are
 * waiting), or -1 on a socket error (errno set).
 */
int net_recv_batch(int fd, struct net_dgram *d, int n);

/*
 * Sends n datagrams to their addresses; each one's err is set to 0 or to its
 * errno. Returns how many were sent.
 */
int net_send_batch(int fd, struct net_dgram *d, int n);

/* 1 if a and b are the same family, address and port (padding bytes aside). */
int net_addr_equal(const struct net_addr *a, const struct net_addr *b);

/*
 * Makes an address suitable for a socket of family af: an IPv4 address for an
 * IPv6 socket becomes IPv4-mapped. Returns 0, or -1 if it cannot be sent there.
 */
int net_addr_for_family(const struct net_addr *in, int af, struct net_addr *out);

#endif
