/*
 * route: where an outbound row goes and how a datagram to a peer is sealed.
 * A row that names a peer goes to that peer's endpoint (which roaming
 * moves); one that names an address and port goes there, sealed for the
 * peer whose endpoint that is, else on the shared secret, else nowhere, with
 * the reason. Pure: tx and rx both use it.
 */
#ifndef SG_ROUTE_H
#define SG_ROUTE_H

#include "daemon/peertab.h"
#include "daemon/sendq.h"
#include "store/store.h"

#include <stddef.h>

/*
 * The destination of row in *dst and its peer in *pp (NULL: the shared key
 * shared, which may be NULL when there is none). Returns NULL, or err with
 * one line saying why the row cannot be sent.
 */
const char *route_row(struct peertab *pt, const struct envelope_key *shared,
                      const struct store_outbound_row *row, struct net_addr *dst, struct peer **pp,
                      char *err, size_t errlen);

/* How to seal for peer p: its key and wire version, or (p NULL) version 1 under shared. */
void route_seal_as(const struct peertab *pt, const struct peer *p,
                   const struct envelope_key *shared, struct sendq_as *as);

/* NULL if a message of len bytes may go to p (a version 2 peer: up to max_message), else err. */
const char *route_too_large(const struct peer *p, size_t len, size_t max_message, char *err,
                            size_t errlen);

#endif
