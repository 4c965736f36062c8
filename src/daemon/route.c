/* route: a row's destination and peer; a peer's sealing. */
#include "daemon/route.h"

#include <stdio.h>

const char *route_row(struct peertab *pt, const struct envelope_key *shared,
                      const struct store_outbound_row *row, struct net_addr *dst, struct peer **pp,
                      char *err, size_t errlen)
{
    *pp = NULL;
    if (row->peer != NULL) {
        struct peer *p = peertab_find(pt, row->peer);
        if (p == NULL)
            snprintf(err, errlen, "no peer named '%.64s' in the peers file", row->peer);
        else if (!p->has_endpoint)
            snprintf(err, errlen,
                     "peer %s has no endpoint (none in the peers file, and it has not roamed to "
                     "one)",
                     p->name);
        else
            *dst = p->endpoint;
        *pp = p;
        return p != NULL && p->has_endpoint ? NULL : err;
    }
    if (row->dst_port < 1 || row->dst_port > 65535) {
        snprintf(err, errlen, "dst_port '%.32s' is not a port number (1-65535)",
                 row->dst_port_text);
        return err;
    }
    if (net_addr_parse(row->dst_addr, (unsigned)row->dst_port, dst) != 0) {
        snprintf(err, errlen, "dst_addr '%.64s' is not an IPv4 or IPv6 address", row->dst_addr);
        return err;
    }
    *pp = peertab_by_endpoint(pt, dst);
    if (*pp == NULL && shared == NULL) {
        snprintf(err, errlen,
                 "no key for dst_addr '%.64s' port %lld: it is no peer's endpoint, and "
                 "SECUREDGRAM_SECRET is not set",
                 row->dst_addr, (long long)row->dst_port);
        return err;
    }
    return NULL;
}

void route_seal_as(const struct peertab *pt, const struct peer *p,
                   const struct envelope_key *shared, struct sendq_as *as)
{
    *as = (struct sendq_as){shared, NULL, -1, 0};
    if (p != NULL)
        *as = (struct sendq_as){p->send, p->wire == 2 ? p->send_id : NULL, peertab_slot(pt, p),
                                p->gen};
}

const char *route_too_large(const struct peer *p, size_t len, size_t max_message, char *err,
                            size_t errlen)
{
    if (p == NULL || p->wire != 2 || len <= max_message)
        return NULL;
    snprintf(err, errlen,
             "payload is %zu bytes with its message_id; SECUREDGRAM_MAX_MESSAGE is %zu", len,
             max_message);
    return err;
}
