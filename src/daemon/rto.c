#include "daemon/rto.h"

void rto_init(struct rto *r)
{
    r->srtt_us = 0;
    r->rttvar_us = 0;
    r->samples = 0;
    r->backoff = 0;
}

void rto_sample(struct rto *r, int64_t rtt_us)
{
    if (rtt_us < 0)
        return;
    if (rtt_us > RTO_SAMPLE_MAX_US)
        rtt_us = RTO_SAMPLE_MAX_US;
    if (r->samples == 0) {
        r->srtt_us = rtt_us;
        r->rttvar_us = rtt_us / 2;
    } else {
        /* RTTVAR first: §2.3 computes it from the SRTT before this sample. */
        int64_t err = r->srtt_us > rtt_us ? r->srtt_us - rtt_us : rtt_us - r->srtt_us;
        r->rttvar_us = (3 * r->rttvar_us + err) / 4;
        r->srtt_us = (7 * r->srtt_us + rtt_us) / 8;
    }
    if (r->samples < UINT32_MAX)
        r->samples++;
    r->backoff = 0;
}

/* v raised to lo, then lowered to hi: hi wins if they cross. */
static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    if (v < lo)
        v = lo;
    return v > hi ? hi : v;
}

int64_t rto_current(const struct rto *r, const struct rto_limits *lim)
{
    int64_t base;
    if (r->samples == 0) {
        base = lim->initial_ms;
    } else {
        int64_t var = 4 * r->rttvar_us;
        int64_t us = r->srtt_us + (var > RTO_GRANULARITY_US ? var : RTO_GRANULARITY_US);
        base = (us + 999) / 1000; /* up, so a sub-ms RTT gives 1 ms, never 0 */
    }
    base = clamp(base, lim->min_ms, lim->max_ms);
    /* base << backoff, unless that would pass max_ms (tested without shifting base). */
    unsigned shift = r->backoff > RTO_BACKOFF_MAX ? RTO_BACKOFF_MAX : r->backoff;
    if (base > 0 && lim->max_ms >= 0 && base > (lim->max_ms >> shift))
        return lim->max_ms;
    if (base > 0)
        base <<= shift;
    return clamp(base, lim->min_ms, lim->max_ms);
}

void rto_backoff(struct rto *r)
{
    if (r->backoff < RTO_BACKOFF_MAX)
        r->backoff++;
}

int64_t rto_with_jitter(int64_t value_ms, uint32_t random)
{
    if (value_ms <= 0)
        return value_ms;
    /* (value / 4) * random / 2^32 in two halves, so no product passes 2^62. */
    uint64_t q = (uint64_t)value_ms >> 2;
    uint64_t extra = (q >> 32) * random + (((q & 0xffffffffu) * random) >> 32);
    if (extra > (uint64_t)(INT64_MAX - value_ms))
        return INT64_MAX;
    return value_ms + (int64_t)extra;
}

int64_t rto_srtt_ms(const struct rto *r)
{
    return r->samples == 0 ? -1 : (r->srtt_us + 500) / 1000;
}

int64_t rto_srtt_us(const struct rto *r)
{
    return r->samples == 0 ? -1 : r->srtt_us;
}
