/*
 * histo: fixed buckets; the sum is kept in whole microseconds so that it
 * never loses precision the way a double would after months of traffic.
 */
#include "daemon/histo.h"

#include <string.h>

/* insert -> acknowledged: from a millisecond on a LAN to minutes behind an outage */
const int64_t HISTO_INSERT_ACK_US[] = {1000,     2500,     5000,     10000,    25000,   50000,
                                       100000,   250000,   500000,   1000000,  2500000, 5000000,
                                       10000000, 30000000, 60000000, 300000000};
const int HISTO_INSERT_ACK_N = (int)(sizeof HISTO_INSERT_ACK_US / sizeof HISTO_INSERT_ACK_US[0]);

/* datagram -> ACK: the daemon's own part, the commit included (about 100 us unloaded) */
const int64_t HISTO_DATAGRAM_ACK_US[] = {50,    100,   250,   500,    1000,   2500,   5000,
                                         10000, 25000, 50000, 100000, 250000, 1000000};
const int HISTO_DATAGRAM_ACK_N =
    (int)(sizeof HISTO_DATAGRAM_ACK_US / sizeof HISTO_DATAGRAM_ACK_US[0]);

void histo_init(struct histo *h, const int64_t *bounds_us, int n)
{
    memset(h, 0, sizeof *h);
    h->bounds_us = bounds_us;
    h->nbounds = n < 0 ? 0 : n > HISTO_BOUNDS_MAX ? HISTO_BOUNDS_MAX : n;
}

void histo_observe(struct histo *h, int64_t us)
{
    if (us < 0)
        us = 0;
    int i = 0;
    while (i < h->nbounds && us > h->bounds_us[i])
        i++;
    h->in[i]++;
    h->count++;
    h->sum_us += (uint64_t)us;
}

uint64_t histo_cumulative(const struct histo *h, int i)
{
    uint64_t n = 0;
    for (int k = 0; k <= i && k <= h->nbounds; k++)
        n += h->in[k];
    return n;
}
