/*
 * dests: flow windows per destination, and the list of blocked destinations
 * kept in step with them. Pure: no clock, no I/O.
 */
#include "daemon/dests.h"

#include "daemon/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dests_blocked {
    char addr[NET_HOST_MAX];
    int64_t port;
    char peer[PEER_NAME_MAX + 1]; /* rows that name a peer: left out by its name ("": none) */
    struct net_addr dst;
    int64_t next_expiry; /* when its backlog is next checked against the deadline */
};

int dests_init(struct dests *d, uint32_t max_window)
{
    d->flows = flow_new(DESTS_MAX, max_window);
    d->blocked = calloc(DESTS_MAX, sizeof *d->blocked);
    d->exclude = calloc(DESTS_MAX, sizeof *d->exclude);
    d->exclude_peers = calloc(DESTS_MAX, sizeof *d->exclude_peers);
    d->nblocked = d->dirty = 0;
    return d->flows != NULL && d->blocked != NULL && d->exclude != NULL && d->exclude_peers != NULL
               ? 0
               : -1;
}

void dests_fini(struct dests *d)
{
    flow_free(d->flows);
    free(d->blocked);
    free(d->exclude);
    free(d->exclude_peers);
    d->flows = NULL;
    d->blocked = NULL;
    d->exclude = NULL;
    d->exclude_peers = NULL;
    d->nblocked = 0;
}

int64_t dests_deadline_ms(const struct dests *d)
{
    if (d->cfg->give_up_after > 0)
        return (int64_t)d->cfg->give_up_after * 1000;
    return ((int64_t)d->cfg->max_retries + 1) * (int64_t)d->cfg->retry_interval * 1000;
}

int dests_unblock(struct dests *d, const struct net_addr *dst)
{
    if (d->nblocked == 0 || flow_blocked(d->flows, dst))
        return 0;
    int opened = 0;
    for (int i = 0; i < d->nblocked;)
        if (net_addr_equal(&d->blocked[i].dst, dst)) {
            d->blocked[i] = d->blocked[--d->nblocked];
            d->dirty = opened = 1;
        } else {
            i++;
        }
    return opened;
}

int dests_release(struct dests *d, const struct net_addr *dst, int acked)
{
    flow_done(d->flows, dst, acked);
    return dests_unblock(d, dst);
}

/* Remembers a destination whose window is full (once; not beyond DESTS_MAX). */
static void block(struct dests *d, const struct store_outbound_row *row, const struct net_addr *dst)
{
    const char *peer = row->peer != NULL ? row->peer : "";
    for (int i = 0; i < d->nblocked; i++)
        if (net_addr_equal(&d->blocked[i].dst, dst) && strcmp(d->blocked[i].peer, peer) == 0)
            return;
    if (d->nblocked >= DESTS_MAX)
        return;
    struct dests_blocked *b = &d->blocked[d->nblocked++];
    snprintf(b->addr, NET_HOST_MAX, "%s", row->dst_addr);
    b->port = row->dst_port;
    snprintf(b->peer, sizeof b->peer, "%s", peer);
    b->dst = *dst;
    b->next_expiry = 0;
    d->dirty = 1;
}

enum dests_verdict dests_admit(struct dests *d, const struct store_outbound_row *row,
                               const struct net_addr *dst, int64_t now)
{
    int64_t deadline = dests_deadline_ms(d);
    if (row->age_ms >= deadline && flow_silent_ms(d->flows, dst, now) >= deadline)
        return DESTS_SILENT;
    if (flow_admit(d->flows, dst, 0))
        return DESTS_GO;
    block(d, row, dst);
    return DESTS_WAIT;
}

const struct store_dest *dests_exclusions(struct dests *d, int *n)
{
    if (!d->dirty)
        return NULL;
    int k = 0;
    d->nexclude_peers = 0;
    for (int i = 0; i < d->nblocked; i++) {
        if (d->blocked[i].peer[0] != '\0')
            d->exclude_peers[d->nexclude_peers++] = d->blocked[i].peer;
        else
            d->exclude[k++] = (struct store_dest){d->blocked[i].addr, d->blocked[i].port};
    }
    *n = k;
    return d->exclude;
}

const char *const *dests_peer_exclusions(const struct dests *d, int *n)
{
    *n = d->nexclude_peers;
    return d->exclude_peers;
}

void dests_excluded(struct dests *d)
{
    d->dirty = 0;
}

const struct store_dest *dests_next_silent(struct dests *d, int *i, int64_t now)
{
    int64_t deadline = dests_deadline_ms(d);
    for (; *i < d->nblocked; (*i)++) {
        struct dests_blocked *b = &d->blocked[*i];
        if (now < b->next_expiry || flow_silent_ms(d->flows, &b->dst, now) < deadline)
            continue;
        b->next_expiry = now + (int64_t)d->cfg->retry_interval * 1000;
        d->silent = (struct store_dest){b->addr, b->port};
        d->silent_peer = b->peer[0] != '\0' ? b->peer : NULL;
        (*i)++;
        return &d->silent;
    }
    return NULL;
}
