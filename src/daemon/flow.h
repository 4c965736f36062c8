/*
 * flow: how many datagrams may be in flight to each destination (a message of
 * one datagram, or each part of a message in parts). A window per destination
 * (address and port) that grows as ACKs come back and shrinks on loss, as
 * TCP's congestion window does (flow_lost halves it; flow_loss cuts it only
 * for many losses at once), so a slow or small-buffered receiver is not
 * flooded and a dead peer cannot take every in-flight slot from the others.
 * Each destination's round-trip estimator (daemon/rto.h) lives with its
 * window. Pure: no clock, no I/O.
 */
#ifndef SG_FLOW_H
#define SG_FLOW_H

#include "daemon/rto.h"
#include "util/net.h"

#include <stddef.h>
#include <stdint.h>

#define FLOW_WINDOW_START 512
#define FLOW_WINDOW_MIN 4

struct flow_table;

/* A table for up to max_peers destinations, windows at most max_window. NULL on no memory. */
__attribute__((warn_unused_result)) struct flow_table *flow_new(size_t max_peers,
                                                                uint32_t max_window);
void flow_free(struct flow_table *ft);

/*
 * May one more message go to dst now? If so it is counted in flight and 1 is
 * returned; 0 if dst's window is full. force counts it even then (a message
 * already in flight, found again after a restart). A destination the table
 * has no room for is admitted untracked (returns 1).
 */
int flow_admit(struct flow_table *ft, const struct net_addr *dst, int force);

/* A message to dst left flight: acknowledged (acked 1: the window grows) or given up (0). */
void flow_done(struct flow_table *ft, const struct net_addr *dst, int acked);

/*
 * A retransmission timer for dst fired at now_ms: the window halves, at most
 * once per hold_ms (one loss event, however many of its messages time out).
 */
void flow_lost(struct flow_table *ft, const struct net_addr *dst, int64_t now_ms, int64_t hold_ms);

/*
 * Datagrams to dst found lost at now_ms (under the adaptive policy: a part
 * the receiver's part ACKs show missing, or a timer that fired). Unlike
 * flow_lost, one loss alone does not cut the window: it is cut by 30%, at
 * most once per hold_ms, when more than one datagram in FLOW_LOSS_SHARE was
 * lost lately (counting what flow_done delivered; what came more than a hold
 * ago counts half, and so on, hold_ms being about a round trip). A full queue
 * on the path drops many datagrams at once; a noisy link drops a few, and is
 * not taken for congestion.
 */
void flow_loss(struct flow_table *ft, const struct net_addr *dst, int64_t now_ms, int64_t hold_ms,
               uint32_t lost);

#define FLOW_LOSS_SHARE 8

/* dst's round-trip estimator, or NULL if dst is untracked (no room in the table). */
struct rto *flow_rto(struct flow_table *ft, const struct net_addr *dst);

/* 1 if dst's window is full (a claim should skip its rows). */
int flow_blocked(const struct flow_table *ft, const struct net_addr *dst);

/*
 * A datagram went to dst at now_ms. Together with the ACKs flow_done counts,
 * this tells how long dst has been silent: since the first datagram to it
 * that no ACK has followed.
 */
void flow_note_send(struct flow_table *ft, const struct net_addr *dst, int64_t now_ms);

/* How long dst has not answered (0 if it answered its last datagram, or is untracked). */
int64_t flow_silent_ms(const struct flow_table *ft, const struct net_addr *dst, int64_t now_ms);

/* dst's current window and count in flight (0/0 if untracked); for tests and counters. */
void flow_get(const struct flow_table *ft, const struct net_addr *dst, uint32_t *window,
              uint32_t *in_flight);

#endif
