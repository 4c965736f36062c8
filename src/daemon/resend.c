/*
 * resend: the outbound path's timers (private to daemon/tx.c): messages in
 * flight whose ACK is overdue are sent again or given up on (their rows
 * become send_failed with why), and rows left 'sent' (at start, or written
 * by another program) are loaded back in flight.
 */
#include "daemon/txparts.h"

#include "daemon/flow.h"
#include "daemon/peertab.h"
#include "daemon/route.h"
#include "daemon/sysio.h"
#include "wire/envelope.h"
#include "wire/message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_BATCH 512 /* rows left 'sent' loaded per turn */

struct tx_load {
    struct tx *t;
    int64_t now;
    struct {
        int64_t rowid, retries;
    } bad[LOAD_BATCH]; /* rows whose id or address cannot be used */
    int nbad;
};

struct tx_load *tx_load_new(void)
{
    return calloc(1, sizeof(struct tx_load));
}

/* ---- retransmitting ---- */

/* Why ent is given up on whatever its row says (NULL: it may go on). */
static const char *give_up_reason(struct tx *t, const struct retx_entry *ent, struct peer **pp,
                                  char *err, size_t errlen)
{
    *pp = ent->peer_slot >= 0 ? peertab_get(t->peers, ent->peer_slot, ent->peer_gen) : NULL;
    if (t->cfg->give_up_after > 0 &&
        t->now - ent->first_ms >= (int64_t)t->cfg->give_up_after * 1000) {
        snprintf(err, errlen, "no ACK within SECUREDGRAM_GIVE_UP_AFTER (%u s, %lld retries)",
                 t->cfg->give_up_after, (long long)ent->retries);
        return err;
    }
    if (t->cfg->give_up_after == 0 && ent->retries >= (int64_t)t->cfg->max_retries)
        return "max retries exceeded (no ACK)";
    int refused = journal_poisoned(t->j, ent->rowid);
    if (refused == JOURNAL_REFUSED_UPDATE || refused == JOURNAL_REFUSED_FAIL)
        return "the database refused to record its retransmission";
    if (ent->peer_slot >= 0 && *pp == NULL)
        return "its peer was removed from the peers file";
    if (*pp == NULL && t->q->key == NULL)
        return "SECUREDGRAM_SECRET is no longer set: no key to send it with";
    return NULL;
}

/* Why a due row is given up on instead of resent (NULL: resend it); may route it (*sock, *to). */
static const char *resend_refusal(struct tx *t, const struct retx_entry *ent,
                                  struct store_outbound_row *row, int *sock, struct net_addr *to,
                                  struct message_out *m, char *err, size_t errlen)
{
    struct peer *p;
    const char *why = give_up_reason(t, ent, &p, err, errlen);
    if (why != NULL)
        return why;
    /* a peer's row follows its endpoint, wherever it roamed */
    *sock =
        sendq_route(t->q, p != NULL && p->has_endpoint ? &p->endpoint : &ent->dst, to, err, errlen);
    if (*sock >= 0 && txp_wants_big(t, row, p) && txp_read_big(t, row) != 0)
        return "its payload could not be read again"; /* too large for the claim's buffer */
    if (*sock >= 0 && row->payload == NULL)           /* too large: the store did not read it */
        txp_unread_reason(t, row, p, err, errlen);
    if (*sock < 0 || row->payload == NULL ||
        message_prepare_max(row->payload, row->payload_len, row->message_id, txp_max_payload(t, p),
                            m, err, errlen) != 0)
        return err;
    if (route_too_large(p, m->payload_len, t->cfg->max_message, err, errlen) != NULL) {
        message_out_clear(m);
        return err;
    }
    return NULL;
}

/* Records one more retry of ent's row (in the turn's transaction). 1 done, 0 refused, -1 abort. */
static int record_retry(struct tx *t, const struct retx_entry *ent)
{
    struct store_sent sent = {ent->rowid, ent->retries + 1, NULL};
    return journal_result(t->j, store_outbound_sent(t->st, &sent, 1, sysio_real_ms(), NULL),
                          "record a retransmission");
}

/* The database refused to record a retry of row: it fails (unless the turn is redone). */
static void refused_retry(struct tx *t, int idx, const struct store_outbound_row *row, int *abort)
{
    struct claim_ctx cx = {.t = t};
    journal_poison(t->j, row->rowid, JOURNAL_REFUSED_UPDATE);
    t->due_action[idx] = DUE_DROP;
    if (!t->j->redo) {
        fail_row(&cx, row, t->due[idx]->retries,
                 "the database refused to record its retransmission");
        *abort = cx.abort;
    }
}

/* Resends (or gives up on) one due row; sets the entry's fate in due_action[idx]. */
static void resend_row(struct tx *t, int idx, struct store_outbound_row *row, int *abort)
{
    struct retx_entry *ent = t->due[idx];
    struct claim_ctx cx = {.t = t};
    char err[256];
    struct net_addr to;
    struct message_out m;
    int sock = -1;
    const char *why = resend_refusal(t, ent, row, &sock, &to, &m, err, sizeof err);
    if (why != NULL) {
        fail_row(&cx, row, ent->retries, why);
        *abort = cx.abort;
        return;
    }
    t->due_action[idx] = DUE_RESEND;
    struct sendq_as as; /* resend_refusal checked that its peer, if it had one, is still there */
    route_seal_as(t->peers,
                  ent->peer_slot >= 0 ? peertab_get(t->peers, ent->peer_slot, ent->peer_gen) : NULL,
                  t->q->key, &as);
    if (txp_needs_parts(t, &as, m.payload_len)) {
        /* loaded at start: from now on in parts, sent as its window allows */
        int r = txp_adopt(t, ent, &m) == 0 ? record_retry(t, ent) : 1;
        message_out_clear(&m);
        if (r == 0)
            refused_retry(t, idx, row, abort);
        *abort |= r < 0 || t->j->redo;
        if (r > 0 && ent->bulk != NULL)
            ent->retries++;
        return;
    }
    int r = record_retry(t, ent);
    struct sendq_msg *om = r > 0 ? txp_seal_whole(t, sock, &to, &m, ent->sequence, &as) : NULL;
    message_out_clear(&m);
    if (r == 0)
        refused_retry(t, idx, row, abort);
    if (r < 0 || t->j->redo)
        *abort = 1;
    if (om != NULL) {
        om->kind = SENDQ_RETX;
        om->rowid = row->rowid;
        om->retries = ent->retries + 1;
        om->ent = ent;
        memcpy(om->id, ent->id, sizeof om->id);
    }
}

/* A message in parts is due: overdue parts go again (a retry), or it is given up on. */
static int resend_parts(struct tx *t, int idx)
{
    struct retx_entry *ent = t->due[idx];
    struct peer *p;
    char err[256];
    const char *why = give_up_reason(t, ent, &p, err, sizeof err);
    struct claim_ctx cx = {.t = t};
    struct store_outbound_row row = {.rowid = ent->rowid, .dst_addr = "?", .dst_port_text = "?"};
    if (why != NULL) {
        fail_row(&cx, &row, ent->retries, why);
        return cx.abort ? -1 : 0;
    }
    t->due_action[idx] = DUE_RESEND;
    if (!txp_due(t, ent, t->now))
        return 0; /* nothing was overdue: its parts wait for the window */
    int abort = 0, r = record_retry(t, ent);
    if (r == 0)
        refused_retry(t, idx, &row, &abort);
    if (r > 0) {
        ent->retries++;
        t->c->retransmits++;
    }
    return r < 0 || t->j->redo || abort ? -1 : 0;
}

/* Reads due entry idx's row and resends it. 0, or -1 to abort the turn. */
static int resend_due(struct tx *t, int idx)
{
    int abort = 0;
    if (t->due[idx]->bulk != NULL)
        return resend_parts(t, idx);
    int n =
        store_outbound_get_sent(t->st, t->due[idx]->rowid, ENVELOPE_MAX_JSON, &t->rows) == STORE_OK
            ? t->rows.n
            : -1;
    if (n > 0)
        resend_row(t, idx, &t->rows.out[0], &abort);
    if (n < 0)
        return journal_result(t->j, STORE_BUSY, "read a row to retransmit");
    return abort ? -1 : 0;
}

/* Takes the due entries out of the timer order (rescheduled one timeout on) and resends them. */
int retransmit_due(struct tx *t, int64_t now)
{
    struct retx_entry *ent;
    t->ndue = 0;
    while (t->ndue < TX_CLAIM_BATCH && (ent = retx_due(t->inflight, now)) != NULL) {
        if (sendq_room(t->q) < ENVELOPE_MAX_DATAGRAM + t->ack_bytes ||
            t->q->n >= t->q->cap - t->ack_slots)
            break;
        if (ent->bulk == NULL) { /* (a message in parts has a timer of its own: txp_due) */
            txp_timer_fired(t, ent, now);
            retx_reschedule(t->inflight, ent, now + txp_timeout(t, ent));
        }
        int idx = t->ndue++;
        t->due[idx] = ent;
        t->due_action[idx] = DUE_DROP; /* unless the row is found and resent */
        if (journal_poisoned(t->j, ent->rowid) == JOURNAL_REFUSED_FAIL)
            continue; /* the database takes no change to it: forget it */
        if (resend_due(t, idx) != 0)
            return -1;
    }
    return 0;
}

/* ---- rows left 'sent' ---- */

static void on_loaded_sent(struct tx_load *lx, const struct store_outbound_row *row)
{
    struct tx *t = lx->t;
    struct net_addr dst;
    t->load_after = row->rowid;
    int64_t wait = interval_ms(t) - row->age_ms;
    if (wait < 0)
        wait = 0;
    struct peer *p = NULL;
    char err[256];
    if (row->message_id == NULL || !message_id_valid(row->message_id) ||
        route_row(t->peers, t->q->key, row, &dst, &p, err, sizeof err) != NULL) {
        if (lx->nbad < LOAD_BATCH) {
            lx->bad[lx->nbad].rowid = row->rowid;
            lx->bad[lx->nbad++].retries = row->retry_count;
        }
        return;
    }
    struct retx_entry *ent =
        retx_add(t->inflight, row->rowid, row->message_id, &dst, row->retry_count, lx->now + wait);
    if (ent == NULL)
        return;
    ent->first_ms = lx->now - row->age_ms;
    ent->resent = 1; /* when it was last sent is not known to the ms: no round-trip sample */
    ent->sequence = row->sequence;
    ent->created_ms = row->created_ms;
    (void)flow_admit(t->dests.flows, &dst, 1);
    if (p != NULL) {
        ent->peer_slot = peertab_slot(t->peers, p);
        ent->peer_gen = p->gen;
        ent->v2 = p->wire == 2;
    }
}

/*
 * Rows in 'sent' that are not in flight join the in-flight table as room
 * allows: at start (crash recovery), and every sweep for rows another
 * program wrote as 'sent'. A row whose id or address cannot be used fails.
 */
int load_sent(struct tx *t, int64_t now)
{
    size_t room = retx_room(t->inflight);
    int limit = room < LOAD_BATCH ? (int)room : LOAD_BATCH;
    if (limit == 0)
        return 0;
    struct tx_load *lx = t->load;
    lx->nbad = 0;
    lx->t = t;
    lx->now = now;
    int n =
        store_outbound_load_sent(t->st, t->load_after, limit, sysio_real_ms(), &t->rows) == STORE_OK
            ? t->rows.n
            : -1;
    int past = 0; /* a row beyond the sweep's end: the sweep is done */
    for (int i = 0; i < n && !(past = t->rows.out[i].rowid > t->load_until); i++)
        on_loaded_sent(lx, &t->rows.out[i]);
    struct claim_ctx cx = {.t = t};
    for (int i = 0; i < lx->nbad && n >= 0 && !cx.abort; i++) {
        struct store_outbound_row r = {
            .rowid = lx->bad[i].rowid, .dst_addr = "?", .dst_port_text = "?"};
        fail_row(&cx, &r, lx->bad[i].retries,
                 "a 'sent' row without a usable message_id, dst_addr or dst_port");
    }
    if (n < 0)
        return journal_result(t->j, STORE_BUSY, "read rows left sent");
    if (cx.abort)
        return -1;
    if (n < limit || past)
        t->loading_sent = 0;
    return 0;
}
