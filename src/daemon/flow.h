/*
 * flow: how many messages may be in flight to each destination. A window per
 * destination (address and port) that grows as ACKs come back and halves
 * when a retransmission timer fires, as TCP's congestion window does, so a
 * slow or small-buffered receiver is not flooded and a dead peer cannot take
 * every in-flight slot from the others. Pure: no clock, no I/O.
 */
#ifndef SG_FLOW_H
#define SG_FLOW_H

#include "util/net.h"

#include <stddef.h>
#include <stdint.h>

#define FLOW_WINDOW_START 64
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
