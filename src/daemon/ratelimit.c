#include "daemon/ratelimit.h"

#include "util/table.h"

#include <stdlib.h>

/* A sender's bucket; the table's key is the host part of its net_addr_key (no port). */
#define sender ratebucket

struct ratelimit {
    struct table *senders;
    size_t sweep; /* where the next eviction scan starts (a table index) */
};

struct ratelimit *ratelimit_new(size_t max_senders)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (rl == NULL)
        return NULL;
    rl->senders = table_new(max_senders, NET_ADDR_KEY_HOST_BYTES, sizeof(struct sender));
    if (rl->senders == NULL) {
        ratelimit_free(rl);
        return NULL;
    }
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    table_free(rl->senders);
    free(rl);
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

/*
 * Frees a sender whose bucket is full again (it has been quiet); 0 if none is
 * found. The scan goes round from where the last one stopped, so the same few
 * senders are not looked at first every time.
 */
static int evict_full(struct ratelimit *rl, unsigned rate, unsigned burst, int64_t now_ms)
{
    for (int lap = 0; lap < 2; lap++) {
        size_t pos = lap == 0 ? rl->sweep : 0, end = lap == 0 ? SIZE_MAX : rl->sweep;
        for (struct sender *s; pos < end && (s = table_next(rl->senders, &pos)) != NULL;) {
            refill(s, rate, burst, now_ms);
            if (s->tokens_mt >= (int64_t)burst * 1000) {
                table_remove(rl->senders, s);
                rl->sweep = pos;
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
    uint8_t key[NET_ADDR_KEY_BYTES];
    net_addr_key(from, key); /* the table reads its first NET_ADDR_KEY_HOST_BYTES */
    struct sender *s = table_find(rl->senders, key);
    if (s == NULL) {
        if (table_count(rl->senders) == table_capacity(rl->senders) &&
            !evict_full(rl, rate, burst, now_ms))
            return 0; /* every tracked sender is busy: a new one waits its turn */
        s = table_insert(rl->senders, key);
        if (s == NULL)
            return 0;
    }
    return ratelimit_take(s, rate, burst, now_ms);
}

int ratelimit_take(struct ratebucket *b, unsigned rate, unsigned burst, int64_t now_ms)
{
    if (rate == 0)
        return 1;
    if (!b->started) { /* a new bucket starts full */
        b->tokens_mt = (int64_t)burst * 1000;
        b->refill_ms = now_ms;
        b->started = 1;
    }
    refill(b, rate, burst, now_ms);
    if (b->tokens_mt < 1000)
        return 0;
    b->tokens_mt -= 1000;
    return 1;
}
