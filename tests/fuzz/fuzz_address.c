/*
 * Address and port parsing, as the daemon reads a row's dst_addr/src_addr and
 * port (net_addr_parse) and as SECUREDGRAM_PORT, sg-send's DST_PORT and the
 * tools' numbers are read (strict_ulong). The input is the host text, then
 * optionally a NUL and the port text. SECUREDGRAM_ADDRESS itself has no parser
 * of its own: config only checks it is not empty, and it is resolved once, by
 * getaddrinfo, when the socket is bound.
 *
 * Properties: what parses formats as text that parses again to an equal
 * address (an IPv4-mapped IPv6 address formats as plain IPv4, which maps back
 * to it), formatting is a fixed point, and a port text is accepted exactly
 * when it is digits naming 1 to 65535.
 */
#include "fuzz_common.h"
#include "util/net.h"
#include "util/strict.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The port for the host when the input gives none (or a bad one): any 1..65535. */
static unsigned some_port(const uint8_t *data, size_t size)
{
    unsigned v = (unsigned)size;
    for (size_t i = 0; i < size && i < 8; i++)
        v = v * 31 + data[i];
    return 1 + v % 65535;
}

/* The port text: accepted exactly when all digits and 1..65535 (leading zeros allowed). */
static int check_port(const char *text, unsigned long *port)
{
    size_t n = strlen(text), digits = strspn(text, "0123456789");
    int ok = strict_ulong(text, 1, 65535, port) == 0;
    if (ok) {
        char again[32];
        unsigned long back;
        snprintf(again, sizeof again, "%lu", *port);
        if (n == 0 || digits != n || *port < 1 || *port > 65535 ||
            strict_ulong(again, 1, 65535, &back) != 0 || back != *port)
            abort();
    } else if (n > 0 && digits == n) {
        /* Refused digits: the value must be 0 or more than 65535. */
        const char *p = text + strspn(text, "0");
        if (*p != '\0' && strlen(p) <= 5 && strtoul(p, NULL, 10) <= 65535)
            abort();
    }
    return ok;
}

/* b is the same address as a, one of them possibly named through the other family. */
static int same(const struct net_addr *a, const struct net_addr *b)
{
    struct net_addr m;
    if (net_addr_equal(a, b))
        return 1;
    if (a->u.sa.sa_family == AF_INET6 && b->u.sa.sa_family == AF_INET)
        return net_addr_for_family(b, AF_INET6, &m) == 0 && net_addr_equal(a, &m);
    return 0;
}

static void round_trip(const char *host, unsigned port)
{
    struct net_addr a, b, c;
    char text[NET_HOST_MAX], again[NET_HOST_MAX];
    unsigned p1, p2;
    if (net_addr_parse(host, 0, &a) == 0 || net_addr_parse(host, 65536, &a) == 0)
        abort(); /* no port 0 or above 65535 */
    if (net_addr_parse(host, port, &a) != 0)
        return;
    int fam = a.u.sa.sa_family;
    if ((fam == AF_INET && a.len != sizeof a.u.v4) || (fam == AF_INET6 && a.len != sizeof a.u.v6) ||
        (fam != AF_INET && fam != AF_INET6))
        abort();
    net_addr_format(&a, text, &p1);
    if (p1 != port || text[0] == '\0' || strlen(text) >= NET_HOST_MAX)
        abort();
    if (net_addr_parse(text, p1, &b) != 0 || !same(&a, &b))
        abort(); /* what we write back into the database must read back as the same peer */
    net_addr_format(&b, again, &p2);
    if (strcmp(text, again) != 0 || p2 != p1)
        abort(); /* the formatted text is canonical: a fixed point */
    /* For the other family's socket: IPv4 maps into IPv6 and still formats the same. */
    if (net_addr_for_family(&a, fam, &c) != 0 || !net_addr_equal(&a, &c))
        abort();
    if (fam == AF_INET) {
        if (net_addr_for_family(&a, AF_INET6, &c) != 0 || c.u.sa.sa_family != AF_INET6)
            abort();
        net_addr_format(&c, again, &p2);
        if (strcmp(text, again) != 0 || p2 != port)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstring(data, size);
    if (s == NULL)
        return 0;
    size_t hn = strlen(s);
    unsigned long port = 0;
    unsigned use = some_port(data, size);
    if (hn < size && check_port(s + hn + 1, &port))
        use = (unsigned)port;
    round_trip(s, use);
    free(s);
    return 0;
}
