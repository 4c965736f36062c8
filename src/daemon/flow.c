#include "daemon/flow.h"

#include "util/table.h"

#include <stdlib.h>

/* A destination's window; the table's key is its net_addr_key. */
struct peer {
    uint32_t window, in_flight;
    uint32_t growth;    /* ACKs counted towards the next +1 past the threshold */
    uint32_t threshold; /* slow start below it */
    int64_t last_loss_ms;
    int64_t unacked_since;    /* first send not answered by an ACK yet (0: none) */
    uint32_t delivered, lost; /* recently (flow_loss): halved for every hold that passed */
    int64_t counted_ms;       /* when they were last halved */
    struct rto rto;
};

struct flow_table {
    uint32_t max_window;
    struct table *peers;
};

struct flow_table *flow_new(size_t max_peers, uint32_t max_window)
{
    struct flow_table *ft = calloc(1, sizeof *ft);
    if (ft == NULL)
        return NULL;
    ft->max_window = max_window;
    ft->peers = table_new(max_peers, NET_ADDR_KEY_BYTES, sizeof(struct peer));
    if (ft->peers == NULL) {
        flow_free(ft);
        return NULL;
    }
    return ft;
}

void flow_free(struct flow_table *ft)
{
    if (ft == NULL)
        return;
    table_free(ft->peers);
    free(ft);
}

static struct peer *find(const struct flow_table *ft, const struct net_addr *dst)
{
    uint8_t key[NET_ADDR_KEY_BYTES];
    net_addr_key(dst, key);
    return table_find(ft->peers, key);
}

/* Frees one idle peer (nothing in flight) to make room; returns 0 if none is idle. */
static int evict_idle(struct flow_table *ft)
{
    size_t pos = 0;
    for (struct peer *p; (p = table_next(ft->peers, &pos)) != NULL;)
        if (p->in_flight == 0) {
            table_remove(ft->peers, p);
            return 1;
        }
    return 0;
}

/* A new peer for dst, evicting an idle one if the table is full; NULL if none is idle. */
static struct peer *add(struct flow_table *ft, const struct net_addr *dst)
{
    uint8_t key[NET_ADDR_KEY_BYTES];
    net_addr_key(dst, key);
    if (table_count(ft->peers) == table_capacity(ft->peers) && !evict_idle(ft))
        return NULL;
    struct peer *p = table_insert(ft->peers, key);
    if (p == NULL)
        return NULL;
    p->window = FLOW_WINDOW_START < ft->max_window ? FLOW_WINDOW_START : ft->max_window;
    p->threshold = ft->max_window;
    p->last_loss_ms = INT64_MIN / 2;
    rto_init(&p->rto);
    return p;
}

int flow_admit(struct flow_table *ft, const struct net_addr *dst, int force)
{
    struct peer *p = find(ft, dst);
    if (p == NULL && (p = add(ft, dst)) == NULL)
        return 1;
    if (p->in_flight >= p->window && !force)
        return 0;
    p->in_flight++;
    return 1;
}

void flow_done(struct flow_table *ft, const struct net_addr *dst, int acked)
{
    struct peer *p = find(ft, dst);
    if (p == NULL)
        return;
    if (p->in_flight > 0)
        p->in_flight--;
    if (acked) {
        p->unacked_since = 0; /* it answers */
        p->delivered += p->delivered < UINT32_MAX;
    }
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
    struct peer *p = find(ft, dst);
    if (p == NULL || now_ms - p->last_loss_ms < hold_ms)
        return;
    p->last_loss_ms = now_ms;
    p->window = p->window / 2 > FLOW_WINDOW_MIN ? p->window / 2 : FLOW_WINDOW_MIN;
    p->threshold = p->window;
    p->growth = 0;
}

void flow_loss(struct flow_table *ft, const struct net_addr *dst, int64_t now_ms, int64_t hold_ms,
               uint32_t lost)
{
    struct peer *p = find(ft, dst);
    if (p == NULL || lost == 0)
        return;
    /* what happened a few round trips ago weighs less, so a long quiet spell does not hide a
     * burst of losses now */
    int64_t age = hold_ms > 0 ? (now_ms - p->counted_ms) / hold_ms : 0;
    if (age > 0) {
        int k = age > 31 ? 31 : (int)age;
        p->delivered >>= k;
        p->lost >>= k;
        p->counted_ms = now_ms;
    }
    p->lost = lost > UINT32_MAX - p->lost ? UINT32_MAX : p->lost + lost;
    uint64_t seen = (uint64_t)p->lost + p->delivered;
    if (now_ms - p->last_loss_ms < hold_ms || (uint64_t)p->lost * FLOW_LOSS_SHARE <= seen)
        return;
    p->last_loss_ms = now_ms;
    uint32_t cut = (uint32_t)((uint64_t)p->window * 7 / 10);
    p->window = cut > FLOW_WINDOW_MIN ? cut : FLOW_WINDOW_MIN;
    p->threshold = p->window;
    p->growth = 0;
    p->delivered = p->lost = 0;
    p->counted_ms = now_ms;
}

struct rto *flow_rto(struct flow_table *ft, const struct net_addr *dst)
{
    struct peer *p = find(ft, dst);
    if (p == NULL)
        p = add(ft, dst);
    return p != NULL ? &p->rto : NULL;
}

int flow_blocked(const struct flow_table *ft, const struct net_addr *dst)
{
    const struct peer *p = find(ft, dst);
    return p != NULL && p->in_flight >= p->window;
}

void flow_get(const struct flow_table *ft, const struct net_addr *dst, uint32_t *window,
              uint32_t *in_flight)
{
    const struct peer *p = find(ft, dst);
    *window = p != NULL ? p->window : 0;
    *in_flight = p != NULL ? p->in_flight : 0;
}

void flow_note_send(struct flow_table *ft, const struct net_addr *dst, int64_t now_ms)
{
    struct peer *p = find(ft, dst);
    if (p != NULL && p->unacked_since == 0)
        p->unacked_since = now_ms != 0 ? now_ms : 1;
}

int64_t flow_silent_ms(const struct flow_table *ft, const struct net_addr *dst, int64_t now_ms)
{
    const struct peer *p = find(ft, dst);
    return p != NULL && p->unacked_since != 0 ? now_ms - p->unacked_since : 0;
}
