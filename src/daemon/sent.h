/*
 * sent: the results of sending the outbound datagrams of a turn (claimed
 * rows and retransmissions, both queued by daemon/tx.c), after the flush.
 * The ACKs' results are daemon/rx.c's (rx_ack_result).
 */
#ifndef SG_SENT_H
#define SG_SENT_H

#include "daemon/sendq.h"
#include "daemon/tx.h"
#include "util/net.h"

#include <stdint.h>

/*
 * What sending datagram d (entry m, SENDQ_NEW or SENDQ_RETX, from t's turn)
 * did, at now (ms): the message joins or stays in flight (a transient error
 * retries soon), or its row fails; the row's change goes into the journal;
 * counted (sent, retransmits, send_failed) and logged with its row, id and
 * peer.
 */
void sent_result(struct tx *t, const struct sendq_msg *m, const struct net_dgram *d, int64_t now);

#endif
