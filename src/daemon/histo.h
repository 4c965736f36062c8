/*
 * histo: a latency histogram in the manner of Prometheus's (cumulative
 * buckets by upper bound, a count and a sum), for what operators chart:
 * insert -> acknowledged and datagram -> ACK. Fixed bounds, no allocation:
 * observing is a few compares and adds on the hot path. Pure.
 */
#ifndef SG_HISTO_H
#define SG_HISTO_H

#include <stdint.h>

#define HISTO_BOUNDS_MAX 16

struct histo {
    const int64_t *bounds_us; /* upper bounds (le), ascending, nbounds of them */
    int nbounds;
    uint64_t in[HISTO_BOUNDS_MAX + 1]; /* observations per bucket (not cumulative); last: +Inf */
    uint64_t count;
    uint64_t sum_us;
};

/* The bounds of the two histograms (microseconds). */
extern const int64_t HISTO_INSERT_ACK_US[];
extern const int HISTO_INSERT_ACK_N;
extern const int64_t HISTO_DATAGRAM_ACK_US[];
extern const int HISTO_DATAGRAM_ACK_N;

/* An empty histogram over bounds (n at most HISTO_BOUNDS_MAX, ascending). */
void histo_init(struct histo *h, const int64_t *bounds_us, int n);

/* Counts one observation of us microseconds (below 0 counts as 0). */
void histo_observe(struct histo *h, int64_t us);

/* Observations of at most bound i (cumulative, as Prometheus's le buckets); i = nbounds: all. */
uint64_t histo_cumulative(const struct histo *h, int i);

#endif
