#include "daemon/flow.h"

#include <stdlib.h>
#include <string.h>

struct peer {
    uint8_t key[18]; /* 16 address bytes (IPv4 mapped) + 2 port bytes */
    uint32_t window, in_flight;
    uint32_t growth;    /* ACKs counted towards the next +1 past the threshold */
    uint32_t threshold; /* slow start below it */
    int64_t last_loss_ms;
    int64_t unacked_since; /* first send not answered by an ACK yet (0: none) */
    struct peer *next;     /* hash chain, or free list */
};

struct flow_table {
    size_t npeers, nbuckets;
    uint32_t max_window;
    struct peer *pool, *free_list;
    struct peer **buckets;
};

struct flow_table *flow_new(size_t max_peers, uint32_t max_window)
{
    struct flow_table *ft = calloc(1, sizeof *ft);
    if (ft == NULL)
        return NULL;
    ft->npeers = max_peers;
    ft->max_window = max_window;
    ft->nbuckets = 16;
    while (ft->nbuckets < max_peers * 2)
        ft->nbuckets *= 2;
    ft->pool = calloc(max_peers, sizeof *ft->pool);
    ft->buckets = calloc(ft->nbuckets, sizeof *ft->buckets);
    if (ft->pool == NULL || ft->buckets == NULL) {
        flow_free(ft);
        return NULL;
    }
    for (size_t i = max_peers; i-- > 0;) {
        ft->pool[i].next = ft->free_list;
        ft->free_list = &ft->pool[i];
    }
    return ft;
}

void flow_free(struct flow_table *ft)
{
    if (ft == NULL)
        return;
    free(ft->pool);
    free(ft->buckets);
    free(ft);
}

static void key_of(const struct net_addr *a, uint8_t key[18])
{
    memset(key, 0, 18);
    if (a->u.sa.sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &a->u.v4.sin_addr, 4);
        memcpy(key + 16, &a->u.v4.sin_port, 2);
    } else {
        memcpy(key, &a->u.v6.sin6_addr, 16);
        memcpy(key + 16, &a->u.v6.sin6_port, 2);
    }
}

static size_t bucket_of(const struct flow_table *ft, const uint8_t key[18])
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 18; i++)
        h = (h ^ key[i]) * 1099511628211ULL;
    return (size_t)(h & (ft->nbuckets - 1));
}

static struct peer *find(const struct flow_table *ft, const struct net_addr *dst, size_t *bucket,
                         uint8_t key[18])
{
    key_of(dst, key);
    *bucket = bucket_of(ft, key);
    for (struct peer *p = ft->buckets[*bucket]; p != NULL; p = p->next)
        if (memcmp(p->key, key, 18) == 0)
            return p;
    return NULL;
}

/* Frees one idle peer (nothing in flight) to make room; returns 0 if none is idle. */
static int evict_idle(struct flow_table *ft)
{
    for (size_t b = 0; b < ft->nbuckets; b++)
        for (struct peer **pp = &ft->buckets[b]; *pp != NULL; pp = &(*pp)->next)
            if ((*pp)->in_flight == 0) {
                struct peer *p = *pp;
                *pp = p->next;
                p->next = ft->free_list;
                ft->free_list = p;
                return 1;
            }
    return 0;
}

int flow_admit(struct flow_table *ft, const struct net_addr *dst, int force)
{
    size_t b;
    uint8_t key[18];
    struct peer *p = find(ft, dst, &b, key);
    if (p == NULL) {
        if (ft->free_list == NULL && !evict_idle(ft))
            return 1;
        p = ft->free_list;
        ft->free_list = p->next;
        memset(p, 0, sizeof *p);
        memcpy(p->key, key, 18);
        p->window = FLOW_WINDOW_START < ft->max_window ? FLOW_WINDOW_START : ft->max_window;
        p->threshold = ft->max_window;
        p->last_loss_ms = INT64_MIN / 2;
        p->next = ft->buckets[b];
        ft->buckets[b] = p;
    }
    if (p->in_flight >= p->window && !force)
        return 0;
    p->in_flight++;
    return 1;
}

void flow_done(struct flow_table *ft, const struct net_addr *dst, int acked)
{
    size_t b;
    uint8_t key[18];
    struct peer *p = find(ft, dst, &b, key);
    if (p == NULL)
        return;
    if (p->in_flight > 0)
        p->in_flight--;
    if (acked)
        p->unacked_since = 0; /* it answers */
    if (!acked || p->window >= ft->max_window)
        return;
    if (p->window < p->threshold) {
        p->window++; /* slow start: doubles every round trip */
    } else if (++p->growth >= p->window) {
        p->growth = 0;
        p->window++; /* then one more per window's worth of ACKs */
    }
}

void flow_lost(struct flow_table *ft, const struct net_addr *dst, int64_t now_ms, int64_t hold_ms)
{
    size_t b;
    uint8_t key[18];
    struct peer *p = find(ft, dst, &b, key);
    if (p == NULL || now_ms - p->last_loss_ms < hold_ms)
        return;
    p->last_loss_ms = now_ms;
    p->window = p->window / 2 > FLOW_WINDOW_MIN ? p->window / 2 : FLOW_WINDOW_MIN;
    p->threshold = p->window;
    p->growth = 0;
}

int flow_blocked(const struct flow_table *ft, const struct net_addr *dst)
{
    size_t b;
    uint8_t key[18];
    const struct peer *p = find(ft, dst, &b, key);
    return p != NULL && p->in_flight >= p->window;
}

void flow_get(const struct flow_table *ft, const struct net_addr *dst, uint32_t *window,
              uint32_t *in_flight)
{
    size_t b;
    uint8_t key[18];
    const struct peer *p = find(ft, dst, &b, key);
    *window = p != NULL ? p->window : 0;
    *in_flight = p != NULL ? p->in_flight : 0;
}

void flow_note_send(struct flow_table *ft, const struct net_addr *dst, int64_t now_ms)
{
    size_t b;
    uint8_t key[18];
    struct peer *p = find(ft, dst, &b, key);
    if (p != NULL && p->unacked_since == 0)
        p->unacked_since = now_ms != 0 ? now_ms : 1;
}

int64_t flow_silent_ms(const struct flow_table *ft, const struct net_addr *dst, int64_t now_ms)
{
    size_t b;
    uint8_t key[18];
    const struct peer *p = find(ft, dst, &b, key);
    return p != NULL && p->unacked_since != 0 ? now_ms - p->unacked_since : 0;
}
