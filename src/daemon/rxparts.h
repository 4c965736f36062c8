/*
 * rxparts: the inbound path's half for version 2 peers (private to
 * daemon/rx.c and daemon/rxparts.c): parts (type 0x02) put together into
 * messages within the bounds of daemon/reasm.h, part ACKs (type 0x03) sent
 * back, and part ACKs received handed to the outbound path.
 */
#ifndef SG_RXPARTS_H
#define SG_RXPARTS_H

#include "daemon/rx.h"
#include "wire/judge.h"

struct peer;
struct reasm_msg;

/* A message received this turn (daemon/rx.c). */
struct rx_item {
    struct message_in msg;
    uint8_t sock;
    int stored;
    int duplicate;     /* its message_id was stored before (a retransmission) */
    int refused;       /* the database refused it, or it is one of ours: never ACKed */
    int to_self;       /* we sent it to ourselves: our outbound row with its id is expected */
    int64_t rowid;     /* the row it was stored as (0: stored before, a duplicate) */
    struct peer *peer; /* who sealed it (valid for the turn), or NULL: the shared secret */
    struct net_addr from;
    char host[NET_HOST_MAX]; /* from, as text: the row's src_addr (made when it is stored) */
    unsigned port;
    const char *json; /* in the arena, or held by reassembly (reasm) */
    size_t len;
    uint64_t ts;
    int64_t sequence;        /* its number from its peer (0: none) */
    struct reasm_msg *reasm; /* put together from parts: freed once it is stored or refused */
};

/* rx.c's, shared: a drop counted and logged; a message's admission; a new item of the turn. */
void drop(struct rx *rx, uint64_t *counter, const struct net_addr *from, const char *why);
int message_admitted(struct rx *rx, const struct net_dgram *d, const struct judgement *j,
                     struct peer *p, int *to_self, int64_t now_ms);
struct rx_item *add_item(struct rx *rx, int sock, const struct net_dgram *d,
                         const struct judgement *j, struct peer *p, int to_self);

/* The table of messages being put together, within cfg's limits; NULL on no memory. */
struct reasm *rxp_reasm_new(const struct config *cfg);

/* An authenticated part or part ACK (verdict v, j) of peer p, from inside its allowed. */
void rxp_handle(struct rx *rx, enum judge_verdict v, int sock, const struct net_dgram *d,
                const struct judgement *j, struct peer *p, int64_t now_ms);

/* The turn's items are done with: those put together from parts are stored (1) or not. */
void rxp_items_done(struct rx *rx, int committed);

#endif
