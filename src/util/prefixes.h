/*
 * prefixes: longest-prefix match of addresses over a fixed set of networks
 * (CIDR), each network carrying a few small integers (peer slots). A look-up
 * costs one hash probe per distinct prefix length in the set (at most 33 for
 * IPv4, 129 for IPv6), whatever the number of networks, so a source address
 * off the network cannot make it scan a long list.
 *
 * An IPv4-mapped IPv6 address is matched as the IPv4 address it holds.
 */
#ifndef SG_PREFIXES_H
#define SG_PREFIXES_H

#include "util/net.h"

#include <stddef.h>

#define PREFIXES_PER_NET 4 /* values kept for one network; more are not added */

struct prefixes;

/* A set for up to cap distinct networks; NULL on no memory. */
__attribute__((warn_unused_result)) struct prefixes *prefixes_new(size_t cap);
void prefixes_free(struct prefixes *px);

/*
 * Adds value to network p (created on first use). Returns 0; 1 if p already
 * holds PREFIXES_PER_NET values (value not added); -1 if the set is full.
 */
int prefixes_add(struct prefixes *px, const struct net_prefix *p, int value);

/*
 * The values of the networks that contain a, longest prefix first (and in
 * the order they were added within one network), at most max of them, into
 * out. Returns how many.
 */
int prefixes_match(const struct prefixes *px, const struct net_addr *a, int *out, int max);

#endif
