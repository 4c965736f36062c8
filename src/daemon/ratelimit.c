#include "daemon/ratelimit.h"

#include <stdlib.h>
#include <string.h>

struct sender {
    uint8_t ip[16];    /* IPv4 as IPv4-mapped IPv6 */
    int64_t tokens_mt; /* milli-tokens */
    int64_t refill_ms; /* when tokens_mt was last brought up to date */
    struct sender *next;
};

struct ratelimit {
    size_t max, nbuckets;
    struct sender *pool, *free_list;
    struct sender **buckets;
    size_t sweep; /* where the next eviction scan starts */
};

struct ratelimit *ratelimit_new(size_t max_senders)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (rl == NULL)
        return NULL;
    rl->max = max_senders;
    rl->nbuckets = 16;
    while (rl->nbuckets < max_senders * 2)
        rl->nbuckets *= 2;
    rl->pool = calloc(max_senders, sizeof *rl->pool);
    rl->buckets = calloc(rl->nbuckets, sizeof *rl->buckets);
    if (rl->pool == NULL || rl->buckets == NULL) {
        ratelimit_free(rl);
        return NULL;
    }
    for (size_t i = max_senders; i-- > 0;) {
        rl->pool[i].next = rl->free_list;
        rl->free_list = &rl->pool[i];
    }
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    free(rl->pool);
    free(rl->buckets);
    free(rl);
}

static void ip_of(const struct net_addr *a, uint8_t ip[16])
{
    memset(ip, 0, 16);
    if (a->u.sa.sa_family == AF_INET) {
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, &a->u.v4.sin_addr, 4);
    } else {
        memcpy(ip, &a->u.v6.sin6_addr, 16);
    }
}

static size_t bucket_of(const struct ratelimit *rl, const uint8_t ip[16])
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip[i]) * 1099511628211ULL;
    return (size_t)(h & (rl->nbuckets - 1));
}

static void refill(struct sender *s, unsigned rate, unsigned burst, int64_t now_ms)
{
    int64_t cap = (int64_t)burst * 1000;
    if (now_ms > s->refill_ms) {
        s->tokens_mt += (now_ms - s->refill_ms) * (int64_t)rate; /* rate tokens/s = rate mt/ms */
        s->refill_ms = now_ms;
    }
    if (s->tokens_mt > cap)
        s->tokens_mt = cap;
}

/* Frees a sender whose bucket is full again (it has been quiet); 0 if none is found. */
static int evict_full(struct ratelimit *rl, unsigned rate, unsigned burst, int64_t now_ms)
{
    for (size_t n = 0; n < rl->nbuckets; n++) {
        size_t b = (rl->sweep + n) & (rl->nbuckets - 1);
        for (struct sender **pp = &rl->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
            refill(*pp, rate, burst, now_ms);
            if ((*pp)->tokens_mt >= (int64_t)burst * 1000) {
                struct sender *s = *pp;
                *pp = s->next;
                s->next = rl->free_list;
                rl->free_list = s;
                rl->sweep = b + 1;
                return 1;
            }
        }
    }
    return 0;
}

int ratelimit_allow(struct ratelimit *rl, const struct net_addr *from, unsigned rate,
                    unsigned burst, int64_t now_ms)
{
    if (rate == 0)
        return 1;
    uint8_t ip[16];
    ip_of(from, ip);
    size_t b = bucket_of(rl, ip);
    struct sender *s = rl->buckets[b];
    while (s != NULL && memcmp(s->ip, ip, 16) != 0)
        s = s->next;
    if (s == NULL) {
        if (rl->free_list == NULL && !evict_full(rl, rate, burst, now_ms))
            return 0; /* every tracked sender is busy: a new one waits its turn */
        s = rl->free_list;
        rl->free_list = s->next;
        memcpy(s->ip, ip, 16);
        s->tokens_mt = (int64_t)burst * 1000;
        s->refill_ms = now_ms;
        s->next = rl->buckets[b];
        rl->buckets[b] = s;
    }
    refill(s, rate, burst, now_ms);
    if (s->tokens_mt < 1000)
        return 0;
    s->tokens_mt -= 1000;
    return 1;
}
