/*
 * rx: receiving, judging and storing messages, and ACKing them once stored.
 *
 * A message becomes an item of the turn: its JSON is copied into the turn's
 * arena (the receive slot is reused by the next recvmmsg), and all of a
 * turn's items are inserted in its one transaction. An item is ACKed only
 * after that transaction committed; a duplicate (a retransmission of a
 * message stored before) is ACKed again; a refused one never.
 *
 * A datagram we sealed ourselves is taken only as a message we sent to
 * ourselves, and its ACK; anything else of ours coming back is a reflection
 * and dropped. An ACK counts only for a message in flight, and only from
 * the address and port that message was sent to: nothing is journaled for
 * any other ACK, so a flood of them cannot crowd out the real ones.
 */
#include "daemon/rx.h"

#include "daemon/peertab.h"
#include "daemon/reasm.h"
#include "daemon/rxparts.h"
#include "daemon/ratelimit.h"
#include "daemon/route.h"
#include "daemon/sysio.h"
#include "daemon/tx.h"
#include "wire/judge.h"
#include "wire/message.h"
#include "wire/replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_ARENA_BYTES (2u << 20) /* this turn's received JSON */
#define RECOVER_BATCH 512           /* rows re-ACKed per turn at start */
#define ACK_RETRY_MS 1000

struct rx_ack_retry {
    char id[MESSAGE_ID_LEN + 1];
    uint8_t sock;
    int attempts;
    int peer_slot; /* sealed for this peer (-1: the shared secret) */
    uint32_t peer_gen;
    struct net_addr to;
    int64_t due;
};

int rx_init(struct rx *rx, size_t replay_max, size_t max_senders)
{
    rx->replay = replay_new(replay_max);
    rx->limiter = ratelimit_new(max_senders);
    rx->buf = malloc((size_t)RX_SLOTS * (ENVELOPE_MAX_DATAGRAM + 1));
    rx->plain = malloc(ENVELOPE_MAX_DATAGRAM + 1);
    rx->items = calloc(RX_ITEMS_MAX, sizeof *rx->items);
    rx->arena = malloc(ITEM_ARENA_BYTES);
    rx->retries = calloc(RX_ACK_RETRY_MAX, sizeof *rx->retries);
    rx->batch = malloc(RX_ITEMS_MAX * sizeof *rx->batch);
    rx->batch_res = malloc(RX_ITEMS_MAX * sizeof *rx->batch_res);
    rx->batch_rowids = malloc(RX_ITEMS_MAX * sizeof *rx->batch_rowids);
    rx->batch_item = malloc(RX_ITEMS_MAX * sizeof *rx->batch_item);
    rx->reasm = rxp_reasm_new(rx->cfg);
    int rows_failed = store_rows_init(&rx->rows, RECOVER_BATCH, RECOVER_BATCH * STORE_ROW_TEXT);
    if (rx->replay == NULL || rx->limiter == NULL || rx->buf == NULL || rx->plain == NULL ||
        rx->items == NULL || rx->arena == NULL || rx->retries == NULL || rx->reasm == NULL ||
        rx->batch == NULL || rx->batch_res == NULL || rx->batch_rowids == NULL ||
        rx->batch_item == NULL || rows_failed)
        return -1;
    for (int i = 0; i < RX_SLOTS; i++) {
        rx->slots[i].buf = rx->buf + (size_t)i * (ENVELOPE_MAX_DATAGRAM + 1);
        rx->slots[i].cap = ENVELOPE_MAX_DATAGRAM + 1;
    }
    return 0;
}

void rx_fini(struct rx *rx)
{
    replay_free(rx->replay);
    ratelimit_free(rx->limiter);
    free(rx->buf);
    free(rx->plain);
    free(rx->items);
    free(rx->arena);
    free(rx->retries);
    free(rx->batch);
    free(rx->batch_res);
    free(rx->batch_rowids);
    free(rx->batch_item);
    rx->batch = NULL;
    rx->batch_res = NULL;
    rx->batch_rowids = NULL;
    rx->batch_item = NULL;
    reasm_free(rx->reasm);
    rx->reasm = NULL;
    store_rows_free(&rx->rows);
    rx->replay = NULL;
    rx->limiter = NULL;
    rx->buf = NULL;
    rx->plain = NULL;
    rx->items = NULL;
    rx->arena = NULL;
    rx->retries = NULL;
}

void rx_start_recovery(struct rx *rx)
{
    if (store_max_id(rx->st, STORE_INBOUND, &rx->recover_upto, NULL, 0) != STORE_OK)
        rx->recover_upto = INT64_MAX; /* unreadable: recover them all */
    rx->recovering = 1;
}

void rx_turn_start(struct rx *rx)
{
    rx->nitems = 0;
    rx->used = 0;
}

/* ---- receiving ---- */

void drop(struct rx *rx, uint64_t *counter, const struct net_addr *from, const char *why)
{
    (*counter)++;
    char host[NET_HOST_MAX];
    unsigned port;
    net_addr_format(from, host, &port);
    log_debug("datagram from %s port %u: dropped: %s", host, port, why);
    log_warn_limited(&rx->lim_drop, sysio_mono_ms(), "dropped a datagram from %s port %u: %s", host,
                     port, why);
}

/*
 * 1 if ent is a message we sent to ourselves and from is ourselves too: the
 * one case where a datagram we sealed may be taken (the quick start's loop).
 */
static int self_exchange(const struct rx *rx, const struct retx_entry *ent,
                         const struct net_addr *from)
{
    int fd = rx->q->socks[SENDQ_MAIN].fd;
    return ent != NULL && net_addr_is_self(fd, &ent->dst) && net_addr_is_self(fd, from);
}

static void drop_reflected(struct rx *rx, const struct net_addr *from)
{
    drop(rx, &rx->c->verdicts[JUDGE_DROP_REFLECTED], from, judge_reason(JUDGE_DROP_REFLECTED));
}

static void handle_ack(struct rx *rx, const struct net_dgram *d, const char *id, int ours,
                       struct peer *p)
{
    struct retx_entry *ent = tx_awaiting(rx->tx, id);
    if (ours && !self_exchange(rx, ent, &d->addr)) {
        drop_reflected(rx, &d->addr);
        return;
    }
    if (ent == NULL) {
        rx->c->acks_unmatched++;
        return;
    }
    /* The ACK must be sealed as its message was: by the same peer (still in the file), or both
     * under the shared secret. */
    int sent_to_peer = ent->peer_slot >= 0;
    struct peer *to = sent_to_peer ? peertab_get(rx->peers, ent->peer_slot, ent->peer_gen) : NULL;
    int same_sealer = sent_to_peer ? to != NULL && p == to : p == NULL;
    if (!same_sealer) {
        drop(rx, &rx->c->acks_wrong_source, &d->addr,
             "an ACK sealed with another key than its message was sent with");
        return;
    }
    if (p == NULL && !net_addr_same_peer(&d->addr, &ent->dst)) {
        /* a peer's ACK may come from where it roamed; the shared secret's, only from there */
        drop(rx, &rx->c->acks_wrong_source, &d->addr,
             "an ACK from another address than its message was sent to");
        return;
    }
    if (journal_add(rx->j, JOURNAL_ACKED, id, ent->rowid, 0, NULL) != 0)
        return; /* kept in flight: the retransmission is ACKed again */
    if (log_get_level() >= LOG_LEVEL_INFO) {
        char host[NET_HOST_MAX];
        unsigned port;
        net_addr_format(&d->addr, host, &port);
        log_info("acknowledged: outbound row %lld (message_id %s) by %s%s%s port %u",
                 (long long)ent->rowid, id, p != NULL ? p->name : "", p != NULL ? " at " : "", host,
                 port);
    }
    if (p != NULL)
        p->st.acked++;
    rx->c->acked++;
    if (ent->created_ms > 0)
        histo_observe(&rx->c->insert_to_ack, (sysio_real_ms() - ent->created_ms) * 1000);
    tx_acked(rx->tx, ent);
}

static void log_accepted(const struct net_dgram *d, enum judge_verdict v, const struct judgement *j)
{
    if (log_get_level() < LOG_LEVEL_DEBUG || (v != JUDGE_MESSAGE && v != JUDGE_ACK))
        return;
    char host[NET_HOST_MAX];
    unsigned port;
    net_addr_format(&d->addr, host, &port);
    log_debug("datagram from %s port %u, %zu bytes: %s, message_id %s%s", host, port, d->len,
              judge_reason(v), j->msg.id, j->ours ? " (sealed by us)" : "");
}

/*
 * 1 if a message (verdict JUDGE_MESSAGE) may be stored. A datagram of ours is
 * taken only as a message we sent to ourselves (*to_self); a message with the
 * id of one of ours in flight to anyone else is a reflection (the database
 * checks the same for rows not in memory).
 */
int message_admitted(struct rx *rx, const struct net_dgram *d, const struct judgement *j,
                     struct peer *p, int *to_self, int64_t now_ms)
{
    struct retx_entry *own = tx_awaiting(rx->tx, j->msg.id);
    *to_self = j->ours && self_exchange(rx, own, &d->addr);
    if (j->ours && !*to_self) {
        drop_reflected(rx, &d->addr);
        return 0;
    }
    if (own != NULL && !*to_self) {
        drop(rx, &rx->c->drop_own_id, &d->addr,
             "a message with the id of one of ours awaiting its ACK (a reflection?)");
        return 0;
    }
    rx->c->verdicts[JUDGE_MESSAGE]++;
    if (p != NULL ? !ratelimit_take(&p->bucket, rx->cfg->rate_limit, rx->cfg->rate_burst, now_ms)
                  : !ratelimit_allow(rx->limiter, &d->addr, rx->cfg->rate_limit,
                                     rx->cfg->rate_burst, now_ms)) {
        if (p != NULL)
            p->st.rate_limited++;
        drop(rx, &rx->c->drop_rate_limited, &d->addr, "over the sender's rate limit");
        return 0;
    }
    if (j->json != NULL && j->json_len > ITEM_ARENA_BYTES - rx->used) {
        rx->c->drop_unstored++; /* not this turn: the sender retransmits */
        return 0;
    }
    return 1;
}

struct rx_item *add_item(struct rx *rx, int sock, const struct net_dgram *d,
                         const struct judgement *j, struct peer *p, int to_self)
{
    char *copy = rx->arena + rx->used;
    if (j->json != NULL) {
        memcpy(copy, j->json, j->json_len);
        rx->used += j->json_len;
    }
    struct rx_item *it = &rx->items[rx->nitems++];
    memset(it, 0, sizeof *it);
    it->msg = j->msg;
    it->sock = (uint8_t)sock;
    it->from = d->addr;
    it->json = copy;
    it->len = j->json_len;
    it->ts = j->ts_ns;
    it->to_self = to_self;
    it->peer = p;
    return it;
}

/*
 * The keys to try for d: the one its version 2 key id names, or the version 1
 * candidates of its source and then the shared secret. Returns how many, or
 * -1 if it is dropped unopened (*v set). A peer's replay cache is made by
 * judge only once its key opens the datagram: forgeries cost no memory.
 */
static int keys_for(struct rx *rx, const struct net_dgram *d, uint64_t now_ns,
                    struct judge_key *keys, struct peer **peers, int *v2, enum judge_verdict *v)
{
    int64_t now_s = (int64_t)(now_ns / 1000000000u);
    size_t max = peertab_replay_max(rx->peers);
    struct envelope_v2_header h;
    *v2 = 0;
    if (peertab_has_v2(rx->peers) && envelope_v2_header(d->buf, d->len, &h) == 0) {
        int which = 0;
        struct peer *p = peertab_by_id(rx->peers, h.key_id, now_s, &which);
        *v = JUDGE_DROP_UNKNOWN_KEY;
        if (p == NULL)
            return -1;
        keys[0] = (struct judge_key){p->recv[which], NULL, &p->replay, max};
        peers[0] = p;
        *v2 = 1;
        return 1;
    }
    const struct envelope_key *k[JUDGE_TRIALS_MAX];
    int n = peertab_v1_candidates(rx->peers, &d->addr, now_s, k, peers,
                                  JUDGE_TRIALS_MAX - (rx->key != NULL));
    for (int i = 0; i < n; i++)
        keys[i] = (struct judge_key){k[i], NULL, &peers[i]->replay, max};
    if (rx->key != NULL) {
        keys[n] = (struct judge_key){rx->key, rx->replay, NULL, 0};
        peers[n++] = NULL;
    }
    return n;
}

/* An authenticated datagram of peer p: from inside its allowed? Then it is heard, and roams. */
static int peer_heard(struct rx *rx, struct peer *p, const struct net_dgram *d, uint64_t now_ns,
                      enum judge_verdict v)
{
    if (!peer_allows(p, &d->addr)) {
        p->st.verdicts[JUDGE_DROP_NOT_ALLOWED]++;
        drop(rx, &rx->c->verdicts[JUDGE_DROP_NOT_ALLOWED], &d->addr,
             judge_reason(JUDGE_DROP_NOT_ALLOWED));
        return 0;
    }
    p->st.verdicts[v]++;
    p->st.last_seen_ns = now_ns;
    if (p->roaming && (!p->has_endpoint || !net_addr_same_peer(&p->endpoint, &d->addr))) {
        char host[NET_HOST_MAX];
        unsigned port;
        net_addr_format(&d->addr, host, &port);
        log_info("peer %s roamed: its endpoint is now %s port %u", p->name, host, port);
        peertab_roam(rx->peers, p, &d->addr);
    }
    return 1;
}

static void handle_dgram(struct rx *rx, int sock, struct net_dgram *d, uint64_t now_ns,
                         int64_t now_ms)
{
    rx->c->rx++;
    if (d->truncated) {
        drop(rx, &rx->c->drop_oversize, &d->addr, "larger than any datagram we accept");
        return;
    }
    struct judge_key keys[JUDGE_TRIALS_MAX];
    struct peer *peers[JUDGE_TRIALS_MAX];
    int v2 = 0, trials = 0;
    enum judge_verdict v = JUDGE_DROP_AUTH;
    int n = keys_for(rx, d, now_ns, keys, peers, &v2, &v);
    if (n < 0) {
        drop(rx, &rx->c->verdicts[v], &d->addr, judge_reason(v));
        return;
    }
    struct judge_ctx cx = {keys, n, v2, n > 1 || v2 ? rx->plain : NULL, now_ns, rx->cfg->window};
    struct judgement j;
    v = judge_datagram(&cx, d->buf, d->len, &j, &trials);
    rx->c->trial_opens += (uint64_t)trials;
    log_accepted(d, v, &j);
    if (v != JUDGE_MESSAGE && v != JUDGE_ACK && v != JUDGE_PART && v != JUDGE_PART_ACK) {
        if (j.key_index >= 0 && peers[j.key_index] != NULL)
            peers[j.key_index]->st.verdicts[v]++;
        drop(rx, &rx->c->verdicts[v], &d->addr, judge_reason(v));
        return;
    }
    struct peer *p = peers[j.key_index];
    if (p != NULL && !peer_heard(rx, p, d, now_ns, v))
        return;
    if (v == JUDGE_ACK) {
        rx->c->verdicts[v]++;
        handle_ack(rx, d, j.msg.id, j.ours, p);
        return;
    }
    if (v == JUDGE_PART || v == JUDGE_PART_ACK) {
        rxp_handle(rx, v, sock, d, &j, p, now_ms);
        return;
    }
    int to_self = 0;
    if (message_admitted(rx, d, &j, p, &to_self, now_ms))
        add_item(rx, sock, d, &j, p, to_self);
}

void rx_receive(struct rx *rx)
{
    int total = 0;
    uint64_t now_ns = sysio_real_ns();
    int64_t now_ms = sysio_mono_ms();
    for (int s = 0; s < SENDQ_SOCKS; s++) {
        int fd = rx->q->socks[s].fd, n = RX_SLOTS;
        while (fd >= 0 && n == RX_SLOTS && total + RX_SLOTS <= RX_ITEMS_MAX) {
            n = sysio_recv_batch(fd, rx->slots, RX_SLOTS);
            if (n < 0) {
                log_warn_limited(&rx->lim_drop, sysio_mono_ms(), "receive error: %s",
                                 strerror(errno));
                break;
            }
            for (int i = 0; i < n; i++)
                handle_dgram(rx, s, &rx->slots[i], now_ns, now_ms);
            total += n;
        }
    }
}

/* ---- storing, and ACKing what was stored ---- */

/* An item the database took: stored now, or found stored before. */
static void took(struct rx *rx, struct rx_item *it, enum store_in_result res)
{
    if (res == STORE_IN_OWN) {
        it->refused = 1;
        rx->c->drop_own_id++;
        return;
    }
    it->stored = 1;
    it->duplicate = res == STORE_IN_DUP;
}

/* An item the database refused: never ACKed; 0, or -1 if the turn must be redone without it. */
static int refused(struct rx *rx, struct rx_item *it)
{
    it->refused = 1;
    rx->c->drop_refused++;
    log_warn_limited(&rx->j->lim_rows, sysio_mono_ms(),
                     "message %s from %s port %u: the database refused it (%s); "
                     "not acknowledged",
                     it->msg.id, it->host, it->port, store_errmsg(rx->st));
    return rx->j->redo ? -1 : 0;
}

/*
 * Inserts the turn's items in as few store calls as refusals allow: one
 * statement for them all where the backend can (a round trip each would
 * bound a PostgreSQL daemon's rate by its latency). A refused row stops a
 * call; the rows before it are in, and the call goes on after it. 0, or -1
 * to abort the turn.
 */
int rx_store(struct rx *rx)
{
    int n = 0;
    for (int i = 0; i < rx->nitems; i++) {
        struct rx_item *it = &rx->items[i];
        it->stored = 0;
        if (it->refused)
            continue;
        net_addr_format(&it->from, it->host, &it->port);
        rx->batch[n] = (struct store_inbound){
            it->msg.id,  it->host, it->port,    it->json,
            it->len,     it->ts,   it->to_self, it->peer != NULL ? it->peer->name : NULL,
            it->sequence};
        rx->batch_item[n++] = i;
    }
    for (int at = 0; at < n;) {
        int done = 0;
        enum store_rc rc = store_inbound_insert(rx->st, rx->batch + at, n - at, sysio_real_ms(),
                                                rx->batch_res + at, rx->batch_rowids + at, &done);
        if (rc == STORE_OK)
            done = n - at;
        for (int k = at; k < at + done; k++) {
            struct rx_item *it = &rx->items[rx->batch_item[k]];
            it->rowid = rx->batch_rowids[k];
            took(rx, it, rx->batch_res[k]);
        }
        if (rc == STORE_OK)
            return 0;
        if (journal_result(rx->j, rc, "store a received message") < 0 || at + done >= n)
            return -1;
        if (refused(rx, &rx->items[rx->batch_item[at + done]]) < 0)
            return -1;
        at += done + 1;
    }
    return 0;
}

void rx_committed(struct rx *rx)
{
    for (int i = 0; i < rx->nitems; i++) {
        struct rx_item *it = &rx->items[i];
        if (!it->stored) {
            rx->c->drop_unstored++;
            continue;
        }
        if (it->duplicate)
            rx->c->duplicates++;
        else
            rx->c->stored++;
        if (it->peer != NULL && it->duplicate)
            it->peer->st.duplicates++;
        else if (it->peer != NULL)
            it->peer->st.stored++;
        if (log_get_level() >= LOG_LEVEL_INFO) {
            char host[NET_HOST_MAX];
            unsigned port;
            net_addr_format(&it->from, host, &port);
            log_info("%s message %s from %s%s%s port %u",
                     it->duplicate ? "again (a duplicate):" : "stored", it->msg.id,
                     it->peer != NULL ? it->peer->name : "", it->peer != NULL ? " at " : "", host,
                     port);
        }
        struct sendq_as as;
        route_seal_as(rx->peers, it->peer, rx->key, &as);
        struct sendq_msg *ack = sendq_ack(rx->q, it->sock, &it->from, it->msg.id, 0, &as);
        if (ack != NULL)
            ack->rowid = it->rowid; /* its ack_sent is then written by rowid */
    }
    rxp_items_done(rx, 1);
}

void rx_unstored(struct rx *rx)
{
    rx->c->drop_unstored += (uint64_t)rx->nitems;
    rxp_items_done(rx, 0);
}

/* ---- crash recovery ---- */

static void on_unacked(struct rx *rx, const struct store_inbound_row *row)
{
    struct net_addr from, to;
    char err[160];
    if (row->rowid > rx->recover_upto)
        rx->recover_past = 1; /* this run's own rows: ACKed as they were stored */
    if (rx->recover_full || rx->recover_past)
        return; /* the rest waits for the next turn */
    if (rx->q->n >= rx->q->cap || sendq_room(rx->q) < ENVELOPE_V2_OVERHEAD + MESSAGE_ACK_MAX) {
        rx->recover_full = 1;
        return;
    }
    rx->recover_after = row->rowid;
    if (net_addr_parse(row->src_addr, (unsigned)(row->src_port > 0 ? row->src_port : 0), &from) !=
            0 ||
        !message_id_valid(row->message_id)) {
        journal_add(rx->j, JOURNAL_ACK_FAILED, row->message_id, 0, 0, NULL);
        return;
    }
    struct peer *p = row->peer != NULL ? peertab_find(rx->peers, row->peer) : NULL;
    struct sendq_as as;
    route_seal_as(rx->peers, p, rx->key, &as);
    int sock = sendq_route(rx->q, &from, &to, err, sizeof err);
    if (sock < 0 || (row->peer != NULL && p == NULL) ||
        sendq_ack(rx->q, sock, &to, row->message_id, 0, &as) == NULL)
        journal_add(rx->j, JOURNAL_ACK_FAILED, row->message_id, 0, 0, NULL);
}

void rx_recover(struct rx *rx)
{
    rx->recover_full = 0;
    int n = store_inbound_unacked(rx->st, rx->recover_after, RECOVER_BATCH, &rx->rows) == STORE_OK
                ? rx->rows.n
                : -1;
    for (int i = 0; i < n; i++)
        on_unacked(rx, &rx->rows.in[i]);
    if (n >= 0 && (n < RECOVER_BATCH || rx->recover_past) && !rx->recover_full)
        rx->recovering = 0;
}

/* ---- ACKs whose sending failed ---- */

static void retry_add(struct rx *rx, const struct sendq_msg *m, const struct net_addr *to,
                      int64_t now)
{
    if (m->attempts + 1 > (int)rx->cfg->max_retries) {
        journal_add(rx->j, JOURNAL_ACK_FAILED, m->id, 0, 0, NULL);
        return;
    }
    if (rx->nretries >= RX_ACK_RETRY_MAX)
        return; /* left 'received': ACKed again at the next start */
    struct rx_ack_retry *a = &rx->retries[rx->nretries++];
    memcpy(a->id, m->id, sizeof a->id);
    a->sock = m->sock;
    a->attempts = m->attempts + 1;
    a->peer_slot = m->peer_slot;
    a->peer_gen = m->peer_gen;
    a->to = *to;
    a->due = now + ACK_RETRY_MS;
}

void rx_queue_retries(struct rx *rx, int64_t now)
{
    int keep = 0;
    for (int i = 0; i < rx->nretries; i++) {
        struct rx_ack_retry *a = &rx->retries[i];
        struct peer *p =
            a->peer_slot >= 0 ? peertab_get(rx->peers, a->peer_slot, a->peer_gen) : NULL;
        if (a->peer_slot >= 0 && p == NULL)
            continue; /* its peer was removed: left 'received' */
        struct sendq_as as;
        route_seal_as(rx->peers, p, rx->key, &as);
        if (a->due <= now && rx->q->n < rx->q->cap &&
            sendq_ack(rx->q, a->sock, &a->to, a->id, a->attempts, &as) != NULL)
            continue;
        rx->retries[keep++] = *a;
    }
    rx->nretries = keep;
}

void rx_ack_result(struct rx *rx, const struct sendq_msg *m, const struct net_dgram *d, int64_t now)
{
    char host[NET_HOST_MAX];
    unsigned port;
    if (d->err == 0) {
        rx->c->acks_sent++;
        if (m->rowid > 0)
            journal_add(rx->j, JOURNAL_ACK_SENT_ROW, m->id, m->rowid, 0, NULL);
        else
            journal_add(rx->j, JOURNAL_ACK_SENT, m->id, 0, 0, NULL);
        if (log_get_level() >= LOG_LEVEL_INFO) {
            net_addr_format(&d->addr, host, &port);
            log_info("ACK sent for message %s to %s port %u", m->id, host, port);
        }
        return;
    }
    net_addr_format(&d->addr, host, &port);
    retry_add(rx, m, &d->addr, now);
    log_warn_limited(&rx->q->lim_send, sysio_mono_ms(),
                     "ACK for message %s to %s port %u: send failed: %s", m->id, host, port,
                     strerror(d->err));
}

int64_t rx_next_wake(const struct rx *rx, int64_t wake)
{
    int64_t expiry = reasm_next_expiry(rx->reasm);
    if (expiry < wake)
        wake = expiry;
    for (int i = 0; i < rx->nretries; i++)
        if (rx->retries[i].due < wake)
            wake = rx->retries[i].due;
    return wake;
}
