/*
 * rxparts: parts in, messages out.
 *
 * A message of one part is an item of the turn at once, like a type 0x01
 * message. A message of several parts goes to the reassembly table; when its
 * last part arrives it becomes an item whose JSON stays in that table until
 * the turn's transaction committed (then the table remembers it was stored,
 * so that later parts of it get its ACK again) or failed (then it is
 * forgotten, and its sender sends again). Only authenticated parts of peers
 * reach here, so every answer (a part ACK, an ACK again) goes to a keyholder.
 */
#include "daemon/rxparts.h"

#include "daemon/peertab.h"
#include "daemon/reasm.h"
#include "daemon/route.h"
#include "daemon/sysio.h"
#include "daemon/tx.h"
#include "wire/message.h"
#include "wire/parts.h"

#include <string.h>

#define REASM_MESSAGES_MAX 1024 /* messages being put together at once */
#define REASM_AGE_MS 30000      /* an incomplete message with no part for this long is evicted */
#define REASM_DONE_MAX 4096     /* stored messages remembered, to ACK their late parts again */
#define REASM_DONE_MS 60000
#define DIRTY_BATCH 256 /* part ACKs sealed per turn */

static void limits(const struct config *cfg, struct reasm_limits *lim)
{
    *lim = (struct reasm_limits){.total_bytes = cfg->reassembly_memory,
                                 .peer_bytes = cfg->reassembly_memory / 4,
                                 .max_message = cfg->max_message,
                                 .max_messages = REASM_MESSAGES_MAX,
                                 .age_ms = REASM_AGE_MS,
                                 .done_max = REASM_DONE_MAX,
                                 .done_ms = REASM_DONE_MS};
}

struct reasm *rxp_reasm_new(const struct config *cfg)
{
    struct reasm_limits lim;
    limits(cfg, &lim);
    return reasm_new(&lim);
}

void rx_set_part_limits(struct rx *rx)
{
    struct reasm_limits lim;
    limits(rx->cfg, &lim);
    reasm_set_limits(rx->reasm, &lim);
}

/* The reassembly table's name for p: its slot and generation, so a removed peer's are orphans. */
static uint64_t peer_key(struct rx *rx, const struct peer *p)
{
    return (uint64_t)(uint32_t)peertab_slot(rx->peers, p) << 32 | p->gen;
}

static struct peer *key_peer(struct rx *rx, uint64_t key)
{
    return peertab_get(rx->peers, (int)(key >> 32), (uint32_t)key);
}

/* Seals the ACK of id for p to where d came from (a part of a message stored before). */
static void ack_again(struct rx *rx, int sock, const struct net_dgram *d, struct peer *p,
                      const char *id)
{
    struct sendq_as as;
    route_seal_as(rx->peers, p, rx->key, &as);
    (void)sendq_ack(rx->q, sock, &d->addr, id, 0, &as);
}

/*
 * A whole message (text, len bytes; held by reassembly m, or NULL: in the
 * receive buffer) from p, as its parts' header h says: checked as a type
 * 0x01 body would be, then an item of the turn.
 */
static void deliver(struct rx *rx, int sock, const struct net_dgram *d, const struct judgement *j,
                    struct peer *p, const char *text, size_t len, struct reasm_msg *m,
                    int64_t now_ms)
{
    struct judgement whole = *j;
    enum judge_verdict v = JUDGE_MESSAGE;
    switch (message_classify(text, len, &whole.msg)) {
    case MESSAGE_VALID:
        /* an ACK travels as type 0x01; one in parts, or a message under another id, is bad */
        if (whole.msg.kind != MESSAGE_DATA || strcmp(whole.msg.id, j->msg.id) != 0)
            v = JUDGE_DROP_BAD_PART;
        break;
    case MESSAGE_BAD_ID:
        v = JUDGE_DROP_BAD_ID;
        break;
    default:
        v = JUDGE_DROP_JSON;
    }
    int to_self = 0;
    whole.json = m != NULL ? NULL : text; /* not copied: reassembly holds it */
    whole.json_len = len;
    if (v != JUDGE_MESSAGE) {
        p->st.verdicts[v]++;
        drop(rx, &rx->c->verdicts[v], &d->addr, judge_reason(v));
    } else if (message_admitted(rx, d, &whole, p, &to_self, now_ms)) {
        p->st.verdicts[JUDGE_MESSAGE]++;
        struct rx_item *it = add_item(rx, sock, d, &whole, p, to_self);
        it->sequence = j->part.sequence <= INT64_MAX ? (int64_t)j->part.sequence : 0;
        if (m != NULL) {
            it->json = text;
            it->reasm = m;
        }
        return;
    }
    if (m != NULL)
        reasm_drop(rx->reasm, m);
}

static void handle_part(struct rx *rx, int sock, const struct net_dgram *d,
                        const struct judgement *j, struct peer *p, int64_t now_ms)
{
    const struct part_header *h = &j->part;
    p->parts_from = d->addr;
    if (h->length > rx->cfg->max_message) {
        drop(rx, &rx->c->drop_too_large, &d->addr,
             "a part of a message longer than SECUREDGRAM_MAX_MESSAGE");
        return;
    }
    if (part_count(h->length, h->part_size) == 1) {
        deliver(rx, sock, d, j, p, (const char *)j->part_data, j->part_data_len, NULL, now_ms);
        return;
    }
    struct reasm_msg *m = NULL;
    switch (reasm_add(rx->reasm, peer_key(rx, p), h, j->part_data, j->part_data_len, now_ms, &m)) {
    case REASM_COMPLETE:
        deliver(rx, sock, d, j, p, (const char *)reasm_bytes(m), reasm_length(m), m, now_ms);
        break;
    case REASM_STORED_BEFORE:
        ack_again(rx, sock, d, p, j->msg.id);
        break;
    case REASM_TOO_LARGE:
        drop(rx, &rx->c->drop_too_large, &d->addr,
             "a part of a message longer than SECUREDGRAM_MAX_MESSAGE");
        break;
    default:
        break; /* taken, a duplicate, or refused (counted by the table) */
    }
}

void rxp_handle(struct rx *rx, enum judge_verdict v, int sock, const struct net_dgram *d,
                const struct judgement *j, struct peer *p, int64_t now_ms)
{
    rx->c->verdicts[v]++;
    if (v == JUDGE_PART_ACK) {
        if (tx_part_ack(rx->tx, p, j, now_ms) != 0)
            rx->c->acks_unmatched++;
        return;
    }
    handle_part(rx, sock, d, j, p, now_ms);
}

void rxp_items_done(struct rx *rx, int committed)
{
    int64_t now = sysio_mono_ms();
    for (int i = 0; i < rx->nitems; i++) {
        struct rx_item *it = &rx->items[i];
        if (it->reasm == NULL)
            continue;
        if (committed && it->stored)
            reasm_stored(rx->reasm, it->reasm, now);
        else
            reasm_drop(rx->reasm, it->reasm);
        it->reasm = NULL;
    }
}

void rx_part_acks(struct rx *rx, int64_t now)
{
    struct reasm_msg *dirty[DIRTY_BATCH];
    struct part_range r[PART_ACK_RANGES_MAX];
    reasm_expire(rx->reasm, now);
    int n = reasm_take_dirty(rx->reasm, dirty, DIRTY_BATCH);
    for (int i = 0; i < n; i++) {
        struct peer *p = key_peer(rx, reasm_peer(dirty[i]));
        struct net_addr to;
        char err[160];
        if (p == NULL)
            continue;
        int sock = sendq_route(rx->q, &p->parts_from, &to, err, sizeof err);
        struct sendq_as as;
        route_seal_as(rx->peers, p, rx->key, &as);
        int nr = reasm_ranges(dirty[i], r, PART_ACK_RANGES_MAX);
        const struct part_header *h = reasm_header(dirty[i]);
        if (sock >= 0 && nr > 0 &&
            sendq_part_ack(rx->q, sock, &to, h->id, h->length, r, nr, &as) == NULL)
            return; /* the queue is full: the next part brings the next part ACK */
    }
}
