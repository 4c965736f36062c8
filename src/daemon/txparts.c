/*
 * txparts: messages in parts, the retry policies' timers, sequence numbers.
 *
 * Flow windows count datagrams: a message claimed holds one place in its
 * destination's window (tx.c), and each part in flight one more, which it
 * gives back when a part ACK shows it arrived (the window grows) or lost.
 * The adaptive timer is its destination's (daemon/flow.h keeps an RFC 6298
 * estimator with each window); samples come from messages sent once and from
 * parts a part ACK names (Karn: xfer_on_ack picks one sent once).
 */
#include "daemon/txparts.h"

#include "daemon/flow.h"
#include "daemon/peertab.h"
#include "daemon/route.h"
#include "daemon/rto.h"
#include "daemon/xfer.h"
#include "util/log.h"
#include "util/random.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_RTO_MS 1000 /* before a destination's first sample (RFC 6298 2.1) */

/* What an entry in flight in parts has besides its retx_entry. */
struct retx_bulk {
    struct xfer *x;
    int index;     /* its place in tx's list */
    uint8_t poke;  /* every part arrived but no ACK came: send the last part again */
    uint8_t pokes; /* times that happened in a row */
    uint8_t tail;  /* every part sent, later ones acknowledged: the time threshold applies */
};

/* ---- windows ---- */

/* n parts to ent's destination left flight (delivered if acked); a claim may follow. */
static void parts_done(struct tx *t, const struct retx_entry *ent, uint32_t n, int acked)
{
    for (; n > 0; n--)
        flow_done(t->dests.flows, &ent->dst, acked);
    if (dests_unblock(&t->dests, &ent->dst))
        t->want_claim = 1;
}

/* ---- timers ---- */

/* The fixed policy's: one interval between sendings, and one loss event per interval. */
static int64_t interval_hold(const struct tx *t)
{
    return (int64_t)t->cfg->retry_interval * 1000;
}

static int adaptive(const struct tx *t, const struct retx_entry *ent)
{
    switch (t->cfg->retry_policy) {
    case RETRY_FIXED:
        return 0;
    case RETRY_ADAPTIVE:
        return 1;
    default:
        return ent->v2; /* auto: the original's behaviour towards version 1 */
    }
}

/*
 * The destination's estimate, backed off by this message's own timers: many
 * messages in flight to one destination each have a timer, and one lost
 * message must not double the wait of all the others (RFC 6298's backoff is
 * per connection, which has one timer).
 */
int64_t txp_timeout(struct tx *t, const struct retx_entry *ent)
{
    struct rto *r = adaptive(t, ent) ? flow_rto(t->dests.flows, &ent->dst) : NULL;
    if (r == NULL)
        return (int64_t)t->cfg->retry_interval * 1000;
    struct rto_limits lim = {INITIAL_RTO_MS, t->cfg->retry_min_ms, t->cfg->retry_max_ms};
    struct rto mine = *r;
    mine.backoff = ent->backoff;
    int64_t wait = rto_current(&mine, &lim);
    /* Parts leave in bursts and queue behind each other at the slowest link, so their round
     * trips vary more than the estimate has seen; a lost part is mostly found by the part ACKs
     * of later ones, so its timer can afford to wait longer than a single datagram's. */
    if (ent->bulk != NULL)
        wait += wait / 2;
    /* jitter: timers of many messages lost together do not all fire in the same turn */
    return rto_with_jitter(wait, random_u32());
}

void txp_timer_fired(struct tx *t, struct retx_entry *ent, int64_t now)
{
    if (!adaptive(t, ent)) {
        flow_lost(t->dests.flows, &ent->dst, now, interval_hold(t));
        return;
    }
    if (ent->backoff < RTO_BACKOFF_MAX)
        ent->backoff++;
    flow_loss(t->dests.flows, &ent->dst, now, txp_timeout(t, ent), 1);
}

void txp_acked(struct tx *t, struct retx_entry *ent, int64_t now)
{
    struct rto *r = flow_rto(t->dests.flows, &ent->dst);
    if (r != NULL && !ent->resent && ent->sent_ms > 0 && ent->bulk == NULL)
        rto_sample(r, (now - ent->sent_ms) * 1000);
}

uint16_t txp_part_size(const struct tx *t)
{
    return part_size_for_mtu(t->cfg->mtu);
}

/* ---- sequence numbers ---- */

int64_t txp_sequence(struct tx *t, struct peer *p, int64_t row_sequence)
{
    if (row_sequence > 0)
        return row_sequence; /* given when it was first claimed: a retransmission keeps it */
    if (p->seq_last == p->seq_committed && t->nseq_dirty < TX_CLAIM_BATCH)
        t->seq_dirty[t->nseq_dirty++] = peertab_slot(t->peers, p);
    return ++p->seq_last;
}

int txp_save_sequences(struct tx *t)
{
    for (int i = 0; i < t->nseq_dirty; i++) {
        struct peer *p = peertab_at(t->peers, t->seq_dirty[i]);
        if (p != NULL && journal_result(t->j, store_sequence_save(t->st, p->name, p->seq_last),
                                        "record a sequence number") <= 0)
            return -1;
    }
    return 0;
}

int tx_sequences_load(struct tx *t, char *err, size_t errlen)
{
    struct store_sequence seq[64];
    const char *after = NULL;
    char last[STORE_FIELD_MAX + 1] = "";
    for (int n = (int)(sizeof seq / sizeof seq[0]); n == (int)(sizeof seq / sizeof seq[0]);) {
        if (store_sequence_load(t->st, after, seq, n, &n) != STORE_OK) {
            snprintf(err, errlen, "cannot read the sequence numbers: %s", store_errmsg(t->st));
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct peer *p = peertab_find(t->peers, seq[i].peer);
            if (p != NULL && p->seq_last < seq[i].last)
                p->seq_last = p->seq_committed = seq[i].last;
        }
        if (n > 0) {
            snprintf(last, sizeof last, "%s", seq[n - 1].peer);
            after = last;
        }
    }
    return 0;
}

/* ---- messages in parts ---- */

/* ent is in flight in parts (x) from now on. 0, or -1 out of memory (x is then freed). */
static int bulk_add(struct tx *t, struct retx_entry *ent, struct xfer *x)
{
    ent->bulk = calloc(1, sizeof *ent->bulk);
    if (ent->bulk == NULL) {
        xfer_free(x);
        return -1;
    }
    ent->bulk->x = x;
    ent->bulk->index = t->nbulk;
    t->bulk[t->nbulk++] = ent;
    t->bulk_bytes += xfer_length(x);
    return 0;
}

int txp_has_room(const struct tx *t, size_t len, const struct net_addr *dst)
{
    if (t->nbulk >= TX_BULK_MAX || t->nbulk_new >= TX_BULK_MAX ||
        len > TX_BULK_BYTES - t->bulk_bytes)
        return 0;
    /* A receiver holds at most a quarter of its reassembly memory (16 MiB by default) for one
     * peer: more at once would only make it evict the first messages to make room for later. */
    size_t to_dst = 0;
    for (int i = 0; i < t->nbulk; i++)
        if (net_addr_same_peer(&t->bulk[i]->dst, dst))
            to_dst += xfer_length(t->bulk[i]->bulk->x);
    return to_dst == 0 ||
           len <= TX_BULK_DEST_BYTES - (to_dst < TX_BULK_DEST_BYTES ? to_dst : TX_BULK_DEST_BYTES);
}

static struct xfer *make_xfer(const struct tx *t, const struct message_out *m, int64_t sequence)
{
    uint8_t id[PART_ID_BYTES];
    if (part_id_from_hex(m->id, id) != 0 || m->payload_len > UINT32_MAX)
        return NULL;
    return xfer_new(m->payload, (uint32_t)m->payload_len, txp_part_size(t), (uint64_t)sequence, id);
}

int txp_claim(struct tx *t, const struct store_outbound_row *row, const struct message_out *m,
              const struct peer *p, const struct net_addr *dst, int64_t sequence)
{
    if (!txp_has_room(t, m->payload_len, dst))
        return -1;
    struct xfer *x = make_xfer(t, m, sequence);
    struct retx_entry *ent =
        x != NULL ? retx_add(t->inflight, row->rowid, m->id, dst, row->retry_count, t->now) : NULL;
    if (ent == NULL) {
        xfer_free(x);
        return -1;
    }
    ent->first_ms = t->now;
    ent->created_ms = row->created_ms;
    ent->peer_slot = peertab_slot(t->peers, p);
    ent->peer_gen = p->gen;
    ent->v2 = 1;
    ent->sequence = sequence;
    if (bulk_add(t, ent, x) != 0) {
        retx_remove(t->inflight, ent);
        return -1;
    }
    t->bulk_new[t->nbulk_new++] = ent;
    t->c->sent++;
    return 0;
}

int txp_adopt(struct tx *t, struct retx_entry *ent, const struct message_out *m)
{
    if (!txp_has_room(t, m->payload_len, &ent->dst))
        return -1;
    struct xfer *x = make_xfer(t, m, ent->sequence);
    if (x == NULL)
        return -1;
    return bulk_add(t, ent, x);
}

void txp_forget(struct tx *t, struct retx_entry *ent, int acked)
{
    if (ent->bulk == NULL)
        return;
    struct xfer *x = ent->bulk->x;
    parts_done(t, ent, xfer_in_flight(x), acked);
    int i = ent->bulk->index;
    t->bulk[i] = t->bulk[--t->nbulk];
    t->bulk[i]->bulk->index = i;
    t->bulk_bytes -= xfer_length(x);
    xfer_free(x);
    free(ent->bulk);
    ent->bulk = NULL;
}

/*
 * In the tail of a message (every part sent, some not acknowledged while
 * later ones are), a part whose ACK has not come 9/8 of a round trip after
 * it left is lost (QUIC's time threshold): no later sendings will come to
 * show it missing, and a whole timeout would be the longest wait of the
 * message. 0 if there is no round-trip estimate yet.
 */
static int64_t tail_wait(struct tx *t, const struct retx_entry *ent)
{
    struct rto *r = flow_rto(t->dests.flows, &ent->dst);
    int64_t srtt = r != NULL ? rto_srtt_ms(r) : -1;
    return srtt < 0 || !adaptive(t, ent) ? 0 : srtt + srtt / 8 + 2;
}

/* ent's timer: when its earliest part in flight is overdue, or, with none, one timeout on. */
static void bulk_reschedule(struct tx *t, struct retx_entry *ent, int64_t now)
{
    int64_t tail = ent->bulk->tail ? tail_wait(t, ent) : 0;
    int64_t rto = tail > 0 ? tail : txp_timeout(t, ent);
    int64_t at = xfer_in_flight(ent->bulk->x) > 0 ? xfer_deadline(ent->bulk->x, rto) : now + rto;
    if (at != ent->deadline)
        retx_reschedule(t->inflight, ent, at);
}

int txp_due(struct tx *t, struct retx_entry *ent, int64_t now)
{
    int64_t tail = ent->bulk->tail ? tail_wait(t, ent) : 0;
    ent->bulk->tail = 0;
    if (tail > 0) {
        /* the tail's parts overdue by the time threshold: sent again at once, not a retry */
        uint32_t late = xfer_timeout(ent->bulk->x, now, tail);
        parts_done(t, ent, late, 0);
        if (late > 0)
            flow_loss(t->dests.flows, &ent->dst, now, txp_timeout(t, ent), late);
        bulk_reschedule(t, ent, now);
        return 0;
    }
    uint32_t lost = xfer_timeout(ent->bulk->x, now, txp_timeout(t, ent));
    int retry = lost > 0 || xfer_complete(ent->bulk->x);
    if (xfer_complete(ent->bulk->x) && ++ent->bulk->pokes > 2) {
        xfer_restart(ent->bulk->x); /* asked twice, no ACK: the receiver must have forgotten it */
        ent->bulk->pokes = 0;
    } else if (xfer_complete(ent->bulk->x)) {
        ent->bulk->poke = 1; /* the ACK, or the last part, was lost: ask again */
    }
    parts_done(t, ent, lost, 0);
    if (retry)
        txp_timer_fired(t, ent, now);
    bulk_reschedule(t, ent, now);
    return retry;
}

enum pump { PUMP_MORE, PUMP_FULL };

/* Seals part idx of ent; PUMP_FULL if the send queue has no room for it. */
static enum pump seal_part(struct tx *t, struct retx_entry *ent, uint32_t idx, int sock,
                           const struct net_addr *to, const struct sendq_as *as)
{
    struct part_header h;
    const uint8_t *data;
    size_t len;
    if (xfer_part(ent->bulk->x, idx, &h, &data, &len) != 0)
        return PUMP_MORE;
    if (t->q->n >= t->q->cap - t->ack_slots ||
        sendq_room(t->q) < len + PART_HEADER_BYTES + ENVELOPE_V2_OVERHEAD + t->ack_bytes)
        return PUMP_FULL;
    struct sendq_msg *om = sendq_part(t->q, (int)sock, to, &h, data, len, as);
    if (om == NULL)
        return PUMP_FULL;
    om->kind = SENDQ_PART;
    om->rowid = ent->rowid;
    om->ent = ent;
    memcpy(om->id, ent->id, sizeof om->id);
    return PUMP_MORE;
}

/* Sends what ent's window lets go. */
static enum pump pump_one(struct tx *t, struct retx_entry *ent, int64_t now)
{
    struct peer *p = peertab_get(t->peers, ent->peer_slot, ent->peer_gen);
    struct sendq_as as;
    struct net_addr to;
    char err[160];
    if (p == NULL)
        return PUMP_MORE; /* its timer fails it: the peer was removed */
    route_seal_as(t->peers, p, t->q->key, &as);
    int sock = sendq_route(t->q, p->has_endpoint ? &p->endpoint : &ent->dst, &to, err, sizeof err);
    if (sock < 0)
        return PUMP_MORE;
    int sent = 0;
    enum pump r = PUMP_MORE;
    if (ent->bulk->poke &&
        (r = seal_part(t, ent, xfer_count(ent->bulk->x) - 1, sock, &to, &as)) == PUMP_MORE) {
        ent->bulk->poke = 0;
        sent++;
    }
    for (int64_t idx; r == PUMP_MORE && (idx = xfer_next(ent->bulk->x)) >= 0; sent++) {
        if (!flow_admit(t->dests.flows, &ent->dst, 0))
            break;
        if ((r = seal_part(t, ent, (uint32_t)idx, sock, &to, &as)) != PUMP_MORE) {
            flow_done(t->dests.flows, &ent->dst, 0);
            break;
        }
        xfer_sent(ent->bulk->x, (uint32_t)idx, now);
    }
    if (sent > 0) {
        ent->sent_ms = now;
        flow_note_send(t->dests.flows, &ent->dst, now);
        bulk_reschedule(t, ent, now);
    }
    return r;
}

void tx_pump(struct tx *t, int64_t now)
{
    int n = t->nbulk;
    for (int k = 0; k < n; k++) {
        int i = (t->bulk_next + k) % n;
        if (pump_one(t, t->bulk[i], now) == PUMP_FULL) {
            t->bulk_next = i; /* the queue is full: this one goes first next turn */
            return;
        }
    }
    t->bulk_next = n > 0 ? (t->bulk_next + 1) % n : 0; /* take turns at the windows */
}

int tx_part_ack(struct tx *t, const struct peer *p, const struct judgement *j, int64_t now)
{
    struct retx_entry *ent = retx_find(t->inflight, j->msg.id);
    if (ent == NULL || ent->bulk == NULL || p == NULL ||
        peertab_get(t->peers, ent->peer_slot, ent->peer_gen) != p ||
        xfer_length(ent->bulk->x) != j->ack_length)
        return -1;
    int64_t rtt = -1;
    uint32_t lost = 0, held = 0;
    for (int i = 0; i < j->nranges; i++)
        held += j->ranges[i].last - j->ranges[i].first + 1;
    if (j->nranges < PART_ACK_RANGES_MAX && held < xfer_acked(ent->bulk->x)) {
        /* all it holds, and less than it acknowledged: it evicted the message, or restarted */
        parts_done(t, ent, xfer_in_flight(ent->bulk->x), 0);
        xfer_restart(ent->bulk->x);
    }
    uint32_t got = xfer_on_ack(ent->bulk->x, j->ranges, j->nranges, now, &rtt, &lost);
    parts_done(t, ent, got, 1);
    parts_done(t, ent, lost, 0);
    struct rto *r = flow_rto(t->dests.flows, &ent->dst);
    if (r != NULL && rtt >= 0)
        rto_sample(r, rtt * 1000);
    if (got > 0)
        ent->backoff = ent->bulk->pokes = 0; /* it makes progress: its timer need not wait longer */
    ent->bulk->tail = got > 0 && xfer_in_flight(ent->bulk->x) > 0 && xfer_next(ent->bulk->x) < 0;
    if (lost > 0 && adaptive(t, ent))
        flow_loss(t->dests.flows, &ent->dst, now, txp_timeout(t, ent), lost);
    else if (lost > 0)
        flow_lost(t->dests.flows, &ent->dst, now, interval_hold(t));
    bulk_reschedule(t, ent, now);
    return 0;
}

/* ---- one datagram, or several ---- */

size_t txp_max_payload(const struct tx *t, const struct peer *p)
{
    return p != NULL && p->wire == 2 ? t->cfg->max_message : ENVELOPE_MAX_JSON;
}

int txp_wants_big(const struct tx *t, const struct store_outbound_row *row, const struct peer *p)
{
    return row->payload == NULL && p != NULL && p->wire == 2 &&
           row->payload_len != STORE_PAYLOAD_UNREADABLE && row->payload_len <= t->cfg->max_message;
}

void txp_unread_reason(const struct tx *t, const struct store_outbound_row *row,
                       const struct peer *p, char *err, size_t errlen)
{
    if (row->payload_len == STORE_PAYLOAD_UNREADABLE)
        snprintf(err, errlen, "payload is not text");
    else if (p != NULL && p->wire == 2)
        snprintf(err, errlen, "payload is %zu bytes; SECUREDGRAM_MAX_MESSAGE is %u",
                 row->payload_len, t->cfg->max_message);
    else
        snprintf(err, errlen,
                 "payload is %zu bytes; one datagram carries at most %d (version 1; a version 2 "
                 "peer takes larger messages in parts)",
                 row->payload_len, ENVELOPE_MAX_JSON);
}

int txp_read_big(struct tx *t, struct store_outbound_row *row)
{
    size_t want = t->cfg->max_message;
    if (t->big_max < want) {
        store_rows_free(&t->big);
        t->big_max = 0;
        if (store_rows_init(&t->big, 1, want + STORE_ROW_TEXT + 1) != 0)
            return -1;
        t->big_max = want;
    }
    /* a row as store_outbound_pending leaves one: its id is all store_outbound_payloads reads */
    t->big.n = 1;
    t->big.full = 0;
    t->big.text_used = 0;
    t->big.out[0] = (struct store_outbound_row){.rowid = row->rowid};
    if (store_outbound_payloads(t->st, want, &t->big) != STORE_OK || t->big.n != 1 ||
        t->big.out[0].payload == NULL)
        return -1;
    row->payload = t->big.out[0].payload;
    row->payload_len = t->big.out[0].payload_len;
    return 0;
}

int txp_needs_parts(const struct tx *t, const struct sendq_as *as, size_t len)
{
    return as->v2_id != NULL && len > txp_part_size(t);
}

struct sendq_msg *txp_seal_whole(struct tx *t, int sock, const struct net_addr *to,
                                 const struct message_out *m, int64_t sequence,
                                 const struct sendq_as *as)
{
    if (as->v2_id == NULL)
        return sendq_seal(t->q, sock, to, m->payload, m->payload_len, as);
    struct part_header h = {.sequence = (uint64_t)sequence,
                            .length = (uint32_t)m->payload_len,
                            .part_size = (uint16_t)m->payload_len,
                            .index = 0};
    if (m->payload_len > txp_part_size(t) || part_id_from_hex(m->id, h.id) != 0)
        return NULL;
    struct sendq_msg *om = sendq_part(t->q, sock, to, &h, m->payload, m->payload_len, as);
    if (om != NULL)
        om->sequence = sequence;
    return om;
}

/* ---- the turn's end ---- */

void txp_committed(struct tx *t)
{
    for (int i = 0; i < t->nseq_dirty; i++) {
        struct peer *p = peertab_at(t->peers, t->seq_dirty[i]);
        if (p != NULL)
            p->seq_committed = p->seq_last;
    }
    t->nseq_dirty = 0;
    t->nbulk_new = 0;
}

void txp_undo(struct tx *t)
{
    for (int i = 0; i < t->nseq_dirty; i++) {
        struct peer *p = peertab_at(t->peers, t->seq_dirty[i]);
        if (p != NULL)
            p->seq_last = p->seq_committed; /* the rows keep no number: they are pending again */
    }
    t->nseq_dirty = 0;
    for (int i = 0; i < t->nbulk_new; i++) {
        struct retx_entry *ent = t->bulk_new[i];
        t->c->sent--;
        txp_forget(t, ent, 0);
        tx_release(t, &ent->dst, 0);
        retx_remove(t->inflight, ent);
    }
    t->nbulk_new = 0;
}
