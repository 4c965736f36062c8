/*
 * xfer: the sender's state of one message being sent in parts
 * (docs/wire.md "Version 2: messages in parts"). It holds a copy of the
 * message and, for each part, whether it is acknowledged (by a part ACK,
 * type 0x03), when it was last sent, how often, and whether it is lost and
 * due to be sent again. Pure: no clock (times are passed in, ms), no I/O;
 * which part goes next and what an ACK or a timer means, not when the
 * window lets a part go, nor what the RTO is (daemon/rto.h).
 *
 * A part is in one of four states: never sent, in flight (sent, neither
 * acknowledged nor lost), lost (to be sent again), acknowledged (final).
 *
 * Loss, as QUIC's packet threshold (RFC 9002 §6.1.1), counted in sendings:
 * every sending gets the next number of this message's sendings, and a part
 * in flight is lost once a part whose last sending was at least
 * XFER_LOSS_THRESHOLD sendings after its own is acknowledged. For parts sent
 * once in index order this is "3 indexes below the highest acknowledged",
 * but it stays right for parts sent again, which go out after higher indexes
 * and often in the same millisecond as the parts acknowledged with them.
 * The other way to be lost is the timer: xfer_timeout.
 *
 * Memory: one allocation at xfer_new, of 16 bytes per part plus the
 * message; nothing grows after. Indexes and ranges from the network are
 * checked against the part count before any use.
 */
#ifndef SG_XFER_H
#define SG_XFER_H

#include "wire/parts.h"

#include <stddef.h>
#include <stdint.h>

#define XFER_LOSS_THRESHOLD 3 /* sendings, as QUIC's kPacketThreshold */
#define XFER_MAX_PARTS 65536u /* what the wire's part size floor allows */

struct xfer;

/*
 * A copy of length bytes of msg, to be sent in parts of part_size bytes
 * under sequence and id (both copied). NULL on no memory or bad arguments:
 * length 0 or over PART_MAX_MESSAGE, part_size 0, more than XFER_MAX_PARTS
 * parts, a part_size under PART_MIN_SIZE with more than one part, msg or id
 * NULL.
 */
__attribute__((warn_unused_result)) struct xfer *xfer_new(const void *msg, uint32_t length,
                                                          uint16_t part_size, uint64_t sequence,
                                                          const uint8_t id[PART_ID_BYTES]);
void xfer_free(struct xfer *x);

uint32_t xfer_count(const struct xfer *x);  /* parts, ceil(length / part_size) */
uint32_t xfer_length(const struct xfer *x); /* the message's bytes */

/*
 * Part index's header and data (into the xfer's copy, valid until
 * xfer_free), ready for part_write. 0, or -1 with nothing set if index is
 * not below xfer_count.
 */
__attribute__((warn_unused_result)) int xfer_part(const struct xfer *x, uint32_t index,
                                                  struct part_header *h, const uint8_t **data,
                                                  size_t *data_len);

/*
 * The part to send next: the lowest lost one, else the lowest never sent;
 * -1 if neither is left (everything is in flight or acknowledged). Changes
 * nothing but where the next search starts.
 */
int64_t xfer_next(struct xfer *x);

/*
 * Part index was sent at now_ms: it is in flight (no longer lost) with a
 * new sending number. A sending of an acknowledged part is counted but
 * changes nothing else; an index not below xfer_count is ignored.
 */
void xfer_sent(struct xfer *x, uint32_t index, int64_t now_ms);

/*
 * A part ACK arrived at now_ms holding ranges r[0..n-1] (first..last
 * inclusive; any order, overlaps tolerated; the parts of a range beyond the
 * count are ignored, as is a range with first > last). Marks the parts
 * acknowledged (a lost one stops being lost), then declares lost the parts
 * in flight that the loss threshold condemns (see above). Returns how many
 * parts it newly acknowledged. *rtt_ms is a sample Karn allows: now_ms less
 * the sending time of the newly acknowledged part sent most recently among
 * those sent only once (never negative), or -1 if there is none.
 * *newly_lost is how many parts it declared lost. Both out-parameters are
 * always set. Costs O(count) at most: acknowledged parts below the lowest
 * unacknowledged one are never visited again.
 */
uint32_t xfer_on_ack(struct xfer *x, const struct part_range *r, int n, int64_t now_ms,
                     int64_t *rtt_ms, uint32_t *newly_lost);

/*
 * A timer check at now_ms: parts in flight last sent at least rto_ms before
 * now_ms (last sending + rto_ms <= now_ms) are declared lost. Returns how
 * many. O(count).
 */
uint32_t xfer_timeout(struct xfer *x, int64_t now_ms, int64_t rto_ms);

/*
 * When xfer_timeout next has something to do: the earliest last sending of
 * a part in flight, plus rto_ms (saturating); INT64_MAX if none is in
 * flight. O(1): the earliest sending is kept up to date as parts leave
 * flight.
 */
int64_t xfer_deadline(const struct xfer *x, int64_t rto_ms);

uint32_t xfer_in_flight(const struct xfer *x); /* sent, neither acknowledged nor lost */
uint32_t xfer_lost(const struct xfer *x);      /* lost, waiting to be sent again */
uint32_t xfer_acked(const struct xfer *x);
int xfer_complete(const struct xfer *x); /* 1 if every part is acknowledged */

uint64_t xfer_sendings(const struct xfer *x);        /* every xfer_sent */
uint64_t xfer_retransmissions(const struct xfer *x); /* those of a part sent before */

/*
 * The receiver forgot the parts it held (it evicted the message, or
 * restarted): every part sent is to be sent again, none is acknowledged or in
 * flight (the caller takes xfer_in_flight's parts out of its window first).
 */
void xfer_restart(struct xfer *x);

#endif
