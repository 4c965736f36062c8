/*
 * tx: claiming, retransmitting and failing outbound rows, paced by the flow
 * windows of daemon/dests.c.
 *
 * A claim reads up to TX_CLAIM_BATCH pending rows (those of blocked
 * destinations left out in SQL), checks each (port, address, a socket to
 * reach it, a silent peer, its window, its payload), claims it with its
 * message_id straight to 'sent' (one write: the datagram leaves right after
 * the commit, and a crash before that leaves a 'sent' row that is simply
 * retransmitted on schedule) and seals it. A retransmission re-reads the payload of a
 * 'sent' row, records retry_count + 1 and reseals it with a fresh nonce. A
 * row that cannot be sent becomes send_failed with why; a row whose change
 * the database refuses is poisoned (journal_poison) so that a redone turn
 * leaves it alone.
 */
#include "daemon/tx.h"

#include "daemon/flow.h"
#include "daemon/peertab.h"
#include "daemon/route.h"
#include "daemon/sysio.h"
#include "daemon/txparts.h"
#include "daemon/xfer.h"
#include "util/log.h"
#include "wire/envelope.h"
#include "wire/message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Look for 'sent' rows written by other programs every retry interval, 2 to 10 s apart. */
#define SWEEP_MIN_MS 2000
#define SWEEP_MAX_MS 10000

int tx_init(struct tx *t)
{
    t->dests.cfg = t->cfg;
    int dests = dests_init(&t->dests, TX_INFLIGHT_MAX);
    t->inflight = retx_new(TX_INFLIGHT_MAX);
    /* rows of a claim with their payloads (a few of the largest, or a batch of small ones),
     * of a load, or one row to retransmit with its payload */
    int rows = store_rows_init(&t->rows, TX_CLAIM_BATCH,
                               TX_CLAIM_BATCH * STORE_ROW_TEXT + 4 * (ENVELOPE_MAX_JSON + 1));
    t->load = tx_load_new();
    t->takes = malloc(TX_CLAIM_BATCH * sizeof *t->takes);
    t->take_msgs = malloc(TX_CLAIM_BATCH * sizeof *t->take_msgs);
    return dests == 0 && t->inflight != NULL && rows == 0 && t->load != NULL && t->takes != NULL &&
                   t->take_msgs != NULL
               ? 0
               : -1;
}

void tx_fini(struct tx *t)
{
    while (t->nbulk > 0)
        txp_forget(t, t->bulk[t->nbulk - 1], 0);
    store_rows_free(&t->big);
    dests_fini(&t->dests);
    retx_free(t->inflight);
    store_rows_free(&t->rows);
    free(t->load);
    free(t->takes);
    free(t->take_msgs);
    t->takes = NULL;
    t->take_msgs = NULL;
}

void tx_start(struct tx *t, int64_t now)
{
    t->want_claim = t->loading_sent = 1;
    t->load_until = INT64_MAX; /* at start every row left 'sent' is one to recover */
    t->next_sweep = now + SWEEP_MIN_MS;
}

int tx_recover(struct tx *t, char *err, size_t errlen)
{
    int moved = 0;
    if (store_recover_sending(t->st, sysio_real_ms(), &moved) != STORE_OK) {
        snprintf(err, errlen, "crash recovery failed: %s", store_errmsg(t->st));
        return -1;
    }
    if (moved > 0)
        log_warn("recovery: %d outbound rows left 'sending' by an earlier run are pending again",
                 moved);
    return 0;
}

int64_t interval_ms(const struct tx *t)
{
    return (int64_t)t->cfg->retry_interval * 1000;
}

void tx_turn_start(struct tx *t, int64_t now)
{
    t->now = now;
    if (now < t->next_sweep)
        return;
    int64_t every = interval_ms(t);
    t->next_sweep = now + (every < SWEEP_MIN_MS   ? SWEEP_MIN_MS
                           : every > SWEEP_MAX_MS ? SWEEP_MAX_MS
                                                  : every);
    t->loading_sent = 1; /* rows another program wrote as 'sent' are picked up */
    t->load_after = 0;
    /* Up to the rows there now: those claimed from here on are in flight already, and
     * a sweep that chased them would read every claim of a busy daemon once more. */
    char err[160];
    if (store_max_id(t->st, STORE_OUTBOUND, &t->load_until, err, sizeof err) != STORE_OK)
        t->load_until = INT64_MAX;
}

int tx_has_work(const struct tx *t, int64_t now)
{
    return retx_next_deadline(t->inflight) <= now ||
           (t->want_claim && retx_room(t->inflight) > 0) ||
           (t->loading_sent && retx_room(t->inflight) > 0);
}

int tx_eager(const struct tx *t)
{
    return t->want_claim || t->loading_sent;
}

int64_t tx_next_deadline(const struct tx *t)
{
    return retx_next_deadline(t->inflight);
}

void tx_release(struct tx *t, const struct net_addr *dst, int acked)
{
    if (dests_release(&t->dests, dst, acked))
        t->want_claim = 1;
}

void tx_prepare(struct tx *t)
{
    int n = 0, np = 0;
    const struct store_dest *list = dests_exclusions(&t->dests, &n);
    if (list == NULL)
        return;
    const char *const *peers = dests_peer_exclusions(&t->dests, &np);
    if (store_outbound_exclude(t->st, list, n) == STORE_OK &&
        store_outbound_exclude_peers(t->st, peers, np) == STORE_OK)
        dests_excluded(&t->dests);
}

/*
 * A destination that has not answered for the deadline: its pending rows
 * older than the deadline fail now, instead of waiting behind its closed
 * window for ever. 0, or -1 to abort the turn.
 */
static int expire_blocked(struct tx *t)
{
    const struct store_dest *d;
    int64_t deadline = dests_deadline_ms(&t->dests);
    for (int i = 0; (d = dests_next_silent(&t->dests, &i, t->now)) != NULL;)
        if (journal_fail_backlog(t->j, d, t->dests.silent_peer, deadline, t->now) != 0)
            return -1;
    return 0;
}

/* ---- claiming ---- */

void fail_row(struct claim_ctx *cx, const struct store_outbound_row *row, int64_t retries,
              const char *why)
{
    int r = journal_fail_row(cx->t->j, row, retries, why);
    if (r > 0)
        cx->progress++;
    else if (r < 0 || cx->t->j->redo)
        cx->abort = 1;
}

/*
 * The row's payload, as store_outbound_payloads left it: read only if it can
 * fit one datagram, or (a version 2 peer's) SECUREDGRAM_MAX_MESSAGE, so a row
 * that never can fails from its size alone. 1 readable, 0 the row failed (or
 * waits).
 */
static int check_read(struct claim_ctx *cx, struct store_outbound_row *row, const struct peer *p)
{
    char err[200];
    if (row->payload != NULL)
        return 1;
    /* a version 2 peer takes it in parts: read it into the buffer for one large row */
    if (txp_wants_big(cx->t, row, p)) {
        if (txp_read_big(cx->t, row) == 0)
            return 1;
        cx->skipped = 1; /* not now: next turn */
        return 0;
    }
    txp_unread_reason(cx->t, row, p, err, sizeof err);
    fail_row(cx, row, row->retry_count, err);
    return 0;
}

/*
 * Where a claimed row goes: its destination in *dst, the socket and the
 * address for it in *to, counted in its window. Returns the socket, or -1 if
 * the row failed or waits for its window.
 */
static int claim_dest(struct claim_ctx *cx, const struct store_outbound_row *row,
                      struct net_addr *dst, struct net_addr *to, struct peer **pp)
{
    struct tx *t = cx->t;
    char err[256];
    if (route_row(t->peers, t->q->key, row, dst, pp, err, sizeof err) != NULL) {
        fail_row(cx, row, row->retry_count, err);
        return -1;
    }
    int sock = sendq_route(t->q, dst, to, err, sizeof err);
    if (sock < 0) {
        fail_row(cx, row, row->retry_count, err);
        return -1;
    }
    switch (dests_admit(&t->dests, row, dst, t->now)) {
    case DESTS_GO:
        return sock;
    case DESTS_SILENT:
        fail_row(cx, row, row->retry_count, "peer not answering; not sent");
        return -1;
    default:
        return -1; /* stays pending until the window opens */
    }
}

/* The claimed row's payload, prepared into *m. 1 ready, else 0 (the row failed). */
static int claim_payload(struct claim_ctx *cx, struct store_outbound_row *row, const struct peer *p,
                         struct message_out *m)
{
    char err[256];
    int ok = check_read(cx, row, p);
    if (ok > 0 && journal_poisoned(cx->t->j, row->rowid) == JOURNAL_REFUSED_UPDATE) {
        fail_row(cx, row, row->retry_count, "the database refused to mark it sent");
        ok = 0;
    }
    if (ok > 0 && message_prepare_max(row->payload, row->payload_len, row->message_id,
                                      txp_max_payload(cx->t, p), m, err, sizeof err) != 0) {
        fail_row(cx, row, row->retry_count, err);
        ok = 0;
    } else if (ok > 0 && route_too_large(p, m->payload_len, cx->t->cfg->max_message, err,
                                         sizeof err) != NULL) {
        fail_row(cx, row, row->retry_count, err);
        message_out_clear(m);
        ok = 0;
    }
    return ok; /* message_prepare made its own copy */
}

/*
 * Claims the prepared row (pending -> sent), giving it its sequence number if
 * seq is not 0. 1 claimed; 0 not (the row failed, or the turn aborts).
 */
static int claim_mark(struct claim_ctx *cx, const struct store_outbound_row *row,
                      const struct message_out *m, int64_t seq)
{
    struct tx *t = cx->t;
    char err[256];
    if (journal_poisoned(t->j, row->rowid) != JOURNAL_TAKE_ALONE && t->ntakes < TX_CLAIM_BATCH) {
        /* written with the claim's other rows when it ends (take_all); m is kept then */
        t->takes[t->ntakes] = (struct store_take){.rowid = row->rowid, .sequence = seq};
        cx->deferred = 1;
        return 1;
    }
    enum store_rc rc =
        store_outbound_take(t->st, row->rowid, m->id, m->payload_changed ? m->payload : NULL,
                            m->payload_len, seq, sysio_real_ms());
    if (rc == STORE_DUP && !store_tx_aborted(t->st)) {
        snprintf(err, sizeof err, "message_id %s is already used by another outbound row", m->id);
        fail_row(cx, row, row->retry_count, err);
        return 0;
    }
    int r = journal_result(t->j, rc, "claim a pending row");
    if (r == 0) {
        snprintf(err, sizeof err, "the database refused to mark it sent: %s", store_errmsg(t->st));
        journal_poison(t->j, row->rowid, JOURNAL_REFUSED_UPDATE);
        if (!t->j->redo)
            fail_row(cx, row, row->retry_count, err);
    }
    if (r < 0 || t->j->redo)
        cx->abort = 1;
    return r > 0 && !cx->abort;
}

/*
 * Claims the prepared row and sends it: sealed now as one datagram (its queue
 * entry SENDQ_NEW), or, in parts, in flight from now with its parts to
 * follow (tx_pump). 1 claimed, 0 not.
 */
static int claim_send(struct claim_ctx *cx, const struct store_outbound_row *row,
                      const struct message_out *m, struct peer *p, const struct net_addr *dst,
                      int sock, const struct net_addr *to)
{
    struct tx *t = cx->t;
    struct sendq_as as;
    route_seal_as(t->peers, p, t->q->key, &as);
    int parts = txp_needs_parts(t, &as, m->payload_len);
    if (parts && !txp_has_room(t, m->payload_len, dst))
        return 0; /* pending until a message in parts leaves flight (tx_acked claims again) */
    int fresh = p != NULL && p->wire == 2 && row->sequence <= 0;
    int64_t seq = p != NULL && p->wire == 2 ? txp_sequence(t, p, row->sequence) : 0;
    if (!claim_mark(cx, row, m, fresh ? seq : 0)) {
        if (fresh)
            p->seq_last--; /* not given after all */
        return 0;
    }
    if (parts) {
        if (txp_claim(t, row, m, p, dst, seq) != 0)
            cx->abort = 1; /* out of memory: roll back, try next turn */
        return !cx->abort;
    }
    struct sendq_msg *om = txp_seal_whole(t, sock, to, m, seq, &as);
    if (om == NULL) {
        cx->abort = 1; /* no room after all: roll back, try next turn */
        return 0;
    }
    om->kind = SENDQ_NEW;
    om->rowid = row->rowid;
    om->retries = row->retry_count;
    om->created_ms = row->created_ms;
    om->dst = *dst;
    memcpy(om->id, m->id, sizeof om->id);
    return 1;
}

/* Validates one pending row, claims it (pending -> sent) and sends it. */
static void claim_row(struct claim_ctx *cx, struct store_outbound_row *row)
{
    struct tx *t = cx->t;
    struct net_addr dst, to;
    struct peer *p = NULL;
    if (journal_poisoned(t->j, row->rowid) == JOURNAL_REFUSED_FAIL)
        return;
    int sock = claim_dest(cx, row, &dst, &to, &p);
    if (sock < 0)
        return;
    struct message_out m;
    if (claim_payload(cx, row, p, &m) <= 0) {
        tx_release(t, &dst, 0);
        return;
    }
    if (claim_send(cx, row, &m, p, &dst, sock, &to)) {
        cx->progress++;
        if (cx->deferred) { /* its message_id and payload wait with it for take_all */
            struct store_take *k = &t->takes[t->ntakes];
            struct message_out *km = &t->take_msgs[t->ntakes++];
            *km = m;
            k->message_id = km->id;
            k->payload = km->payload_changed ? km->payload : NULL;
            k->payload_len = km->payload_len;
            cx->deferred = 0;
            return;
        }
    } else {
        tx_release(t, &dst, 0);
    }
    cx->deferred = 0;
    message_out_clear(&m);
}

/*
 * The claim's rows, pending -> sent, in one store call: their datagrams
 * leave only after the commit, so none has gone yet. A row the set leaves
 * out (another row's message_id, a refusal) rolls the turn back; redone, it
 * is claimed on its own, which fails it or leaves it as one claim alone
 * would. With abort, the rows are only let go. 0, or -1 to abort the turn.
 */
static int take_all(struct tx *t, int abort)
{
    int failed = 0;
    enum store_rc rc =
        abort ? STORE_OK
              : store_outbound_take_set(t->st, t->takes, t->ntakes, sysio_real_ms(), &failed);
    int64_t rowid = t->ntakes > 0 ? t->takes[failed].rowid : 0;
    for (int i = 0; i < t->ntakes; i++)
        message_out_clear(&t->take_msgs[i]);
    t->ntakes = 0;
    if (abort || rc == STORE_OK)
        return abort ? -1 : 0;
    if (rc == STORE_DUP || rc == STORE_REFUSED) {
        journal_poison(t->j, rowid, JOURNAL_TAKE_ALONE);
        t->j->redo = 1;
        return -1;
    }
    return journal_result(t->j, rc, "claim pending rows") > 0 ? 0 : -1;
}

static int claim(struct tx *t)
{
    size_t room = retx_room(t->inflight);
    int limit = room < TX_CLAIM_BATCH ? (int)room : TX_CLAIM_BATCH;
    int queue_room = t->q->cap - t->ack_slots - t->q->n;
    if (limit > queue_room)
        limit = queue_room;
    if (limit <= 0 || sendq_room(t->q) <= t->ack_bytes)
        return 0;
    struct store_rows *rows = &t->rows;
    struct claim_ctx cx = {.t = t};
    int n = store_outbound_pending(t->st, limit, rows) == STORE_OK &&
                    store_outbound_payloads(t->st, ENVELOPE_MAX_JSON, rows) == STORE_OK
                ? rows->n
                : -1;
    cx.skipped = n >= 0 && rows->full; /* no room in the row buffer: next turn */
    size_t budget = sendq_room(t->q) - t->ack_bytes, used = 0;
    for (int i = 0; i < n && !cx.abort; i++) {
        if (used > budget || budget - used < ENVELOPE_MAX_DATAGRAM) {
            cx.skipped = 1; /* no room left in this turn's arena: next turn */
        } else {
            size_t before = t->q->used;
            claim_row(&cx, &rows->out[i]);
            used += t->q->used - before;
        }
    }
    if (take_all(t, cx.abort) != 0)
        return -1;
    if (n < 0)
        return journal_result(t->j, STORE_BUSY, "read pending rows");
    /* More may wait; but rows all held back by full windows wait for an ACK instead. */
    t->want_claim = cx.skipped || (n == limit && cx.progress > 0);
    return 0;
}

/* ---- the turn ---- */

int tx_write(struct tx *t, int64_t now)
{
    if (t->loading_sent && load_sent(t, now) != 0)
        return -1;
    if (retransmit_due(t, now) != 0)
        return -1;
    if (t->want_claim && claim(t) != 0)
        return -1;
    if (t->dests.nblocked > 0 && expire_blocked(t) != 0)
        return -1;
    return txp_save_sequences(t);
}

void tx_committed(struct tx *t)
{
    t->c->send_failed += t->j->failed;
    for (int i = 0; i < t->ndue; i++)
        if (t->due_action[i] == DUE_DROP) {
            txp_forget(t, t->due[i], 0);
            tx_release(t, &t->due[i]->dst, 0);
            retx_remove(t->inflight, t->due[i]);
        }
    t->ndue = 0;
    txp_committed(t);
}

void tx_undo(struct tx *t, int64_t retry_at)
{
    for (int i = 0; i < t->ndue; i++)
        retx_reschedule(t->inflight, t->due[i], retry_at);
    t->ndue = 0;
    for (int i = 0; i < t->q->n; i++)
        if (t->q->msg[i].kind == SENDQ_NEW)
            tx_release(t, &t->q->msg[i].dst, 0); /* rolled back: still pending */
    txp_undo(t);
    t->want_claim = 1;
}

struct retx_entry *tx_awaiting(struct tx *t, const char *id)
{
    return retx_find(t->inflight, id);
}

void tx_acked(struct tx *t, struct retx_entry *ent)
{
    txp_acked(t, ent, sysio_mono_ms());
    txp_forget(t, ent, 1);
    tx_release(t, &ent->dst, 1);
    retx_remove(t->inflight, ent);
    t->want_claim = 1; /* room in flight again */
}

void tx_quiesce(struct tx *t)
{
    t->want_claim = t->loading_sent = 0;
}
