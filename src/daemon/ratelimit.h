/*
 * ratelimit: a token bucket per sender address (the IP, not the port), for
 * authenticated messages: rate tokens a second, at most burst saved up. A
 * message that finds its sender's bucket empty is dropped unanswered; the
 * sender retransmits later. Pure: the caller passes the time. A fixed number
 * of senders is tracked; a full bucket (an idle sender) is forgotten first.
 */
#ifndef SG_RATELIMIT_H
#define SG_RATELIMIT_H

#include "util/net.h"

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* A limiter for up to max_senders addresses; NULL on no memory. */
__attribute__((warn_unused_result)) struct ratelimit *ratelimit_new(size_t max_senders);
void ratelimit_free(struct ratelimit *rl);

/*
 * 1 if a message from `from` may pass at now_ms under rate/burst (rate 0:
 * always), taking a token; 0 if it must be dropped.
 */
int ratelimit_allow(struct ratelimit *rl, const struct net_addr *from, unsigned rate,
                    unsigned burst, int64_t now_ms);

/* One bucket on its own (a peer's): zeroed, then ratelimit_take. */
struct ratebucket {
    int64_t tokens_mt; /* milli-tokens */
    int64_t refill_ms; /* when tokens_mt was last brought up to date */
    int started;       /* 0: never used (a zeroed bucket), so full at its first message */
};

/* 1 if a message may pass at now_ms under rate/burst (rate 0: always), taking a token. */
int ratelimit_take(struct ratebucket *b, unsigned rate, unsigned burst, int64_t now_ms);

#endif
