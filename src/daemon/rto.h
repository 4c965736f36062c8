/*
 * rto: a retransmission timeout estimator per destination, as RFC 6298 has
 * it: a smoothed round-trip time and its variation from samples (alpha 1/8,
 * beta 1/4), RTO = SRTT + max(G, 4 * RTTVAR) with G = 1 ms, doubled for each
 * timer that fired since the last sample (§5.5, kept until a new sample:
 * §5.7), clamped to the caller's limits. Pure: no clock, no I/O, no random
 * source; the caller passes samples in and a random number for the jitter.
 *
 * Samples are in microseconds and SRTT and RTTVAR are kept in microseconds,
 * so that loopback round trips of well under a millisecond are not rounded
 * to zero; RTOs are in milliseconds, as the rest of the daemon's times are.
 * Samples are capped at RTO_SAMPLE_MAX_US, so no arithmetic can overflow.
 */
#ifndef SG_RTO_H
#define SG_RTO_H

#include <stdint.h>

#define RTO_GRANULARITY_US 1000 /* G: the clock's granularity as RFC 6298 counts it */
#define RTO_BACKOFF_MAX 30      /* doublings counted; 2^30 times any sensible RTO is past max_ms */
#define RTO_SAMPLE_MAX_US (3600 * INT64_C(1000000)) /* a longer sample counts as an hour */

struct rto_limits {
    int64_t initial_ms; /* before any sample (1000) */
    int64_t min_ms;     /* never less (100) */
    int64_t max_ms;     /* never more (60000); wins over min_ms if they cross */
};

/* One destination's estimator. Plain data: embed it; read it through the functions below. */
struct rto {
    int64_t srtt_us, rttvar_us;
    uint32_t samples; /* taken so far (saturates) */
    uint32_t backoff; /* timers fired since the last sample, at most RTO_BACKOFF_MAX */
};

/* No samples, no backoff: rto_current gives initial_ms. */
void rto_init(struct rto *r);

/*
 * A round-trip time measured on a datagram sent once (Karn: never on a
 * retransmitted one, whose ACK could answer either sending), in microseconds.
 * The first sample sets SRTT = R and RTTVAR = R/2 (§2.2), later ones
 * smooth them (§2.3). Resets the backoff to 0. A negative sample (a clock
 * that went back) is ignored; one over RTO_SAMPLE_MAX_US counts as that.
 */
void rto_sample(struct rto *r, int64_t rtt_us);

/*
 * The timeout to use now, in ms: initial_ms before any sample, else
 * SRTT + max(G, 4 * RTTVAR) rounded up to whole ms and raised to min_ms;
 * then doubled backoff times; never above max_ms (nor below min_ms, unless
 * min_ms > max_ms). Never 0 while min_ms >= 1.
 */
int64_t rto_current(const struct rto *r, const struct rto_limits *lim);

/* A retransmission timer fired: the next rto_current doubles (until max_ms stops it). */
void rto_backoff(struct rto *r);

/*
 * value_ms spread by up to a quarter: value + value * random / 2^34, so in
 * [value, value * 1.25) for value >= 4 (a value under 4 comes back as it is,
 * as does one <= 0). random is any uint32_t the caller draws; the result
 * may exceed the limits' max_ms by that quarter. Never overflows.
 */
int64_t rto_with_jitter(int64_t value_ms, uint32_t random);

/* SRTT rounded to the nearest ms, for reports; -1 before any sample. */
int64_t rto_srtt_ms(const struct rto *r);

/* SRTT in microseconds, for reports; -1 before any sample. */
int64_t rto_srtt_us(const struct rto *r);

#endif
