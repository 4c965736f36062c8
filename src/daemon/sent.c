/*
 * sent: what sending an outbound datagram did. Sent: the message is in
 * flight (a new one joins the in-flight table, a retransmission's retry
 * count is now the row's), and its destination is known to have been sent
 * to. A transient error (EAGAIN, ENOBUFS, ...): it stays or goes in flight
 * and is due again EAGAIN_RETRY_MS later. Any other error: the row fails.
 * A row's change, if any, goes into the journal, for the next transaction:
 * a new message's row is 'sent' from its claim on (tx.c).
 */
#include "daemon/sent.h"

#include "daemon/flow.h"
#include "daemon/sysio.h"
#include "daemon/txparts.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define EAGAIN_RETRY_MS 200

static int send_error_is_transient(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ENOMEM || err == EINTR;
}

/* A new message was sent (or met a transient error): in flight now. 1 if it failed instead. */
static int sent_new(struct tx *t, const struct sendq_msg *m, int err, const char *why,
                    const char *host, unsigned port, int64_t now)
{
    if (err != 0 && !send_error_is_transient(err)) {
        journal_add(t->j, JOURNAL_FAILED, NULL, m->rowid, m->retries, why);
        tx_release(t, &m->dst, 0);
        return 1;
    }
    int64_t retries = m->retries + (err != 0);
    struct retx_entry *ent = retx_add(t->inflight, m->rowid, m->id, &m->dst, retries, now);
    if (ent == NULL) {
        tx_release(t, &m->dst, 0); /* cannot happen: room was checked */
    } else {
        ent->first_ms = ent->sent_ms = now;
        ent->resent = err != 0;
        ent->peer_slot = m->peer_slot;
        ent->peer_gen = m->peer_gen;
        ent->v2 = m->v2;
        ent->sequence = m->sequence;
        ent->created_ms = m->created_ms;
        retx_reschedule(t->inflight, ent, now + (err != 0 ? EAGAIN_RETRY_MS : txp_timeout(t, ent)));
    }
    /* The claim made the row 'sent' already; only a transient error has something to add. */
    if (err != 0)
        journal_add(t->j, JOURNAL_SENT, NULL, m->rowid, retries, why);
    t->c->sent += err == 0;
    if (err == 0) {
        flow_note_send(t->dests.flows, &m->dst, now);
        log_info("sent outbound row %lld (message_id %s) to %s port %u", (long long)m->rowid, m->id,
                 host, port);
    }
    return 0;
}

/* A retransmission was sent (or met a transient error: due again soon). 1 if it failed. */
static int sent_retx(struct tx *t, const struct sendq_msg *m, int err, const char *why,
                     const char *host, unsigned port, int64_t now)
{
    m->ent->resent = 1;
    m->ent->sent_ms = now;
    if (err == 0) {
        t->c->retransmits++;
        m->ent->retries = m->retries;
        flow_note_send(t->dests.flows, &m->ent->dst, now);
        log_info("retransmitted outbound row %lld (message_id %s, retry %lld) to %s port %u",
                 (long long)m->rowid, m->id, (long long)m->retries, host, port);
    } else if (send_error_is_transient(err)) {
        m->ent->retries = m->retries;
        retx_reschedule(t->inflight, m->ent, now + EAGAIN_RETRY_MS);
    } else {
        journal_add(t->j, JOURNAL_FAILED, NULL, m->rowid, m->retries, why);
        tx_release(t, &m->ent->dst, 0);
        retx_remove(t->inflight, m->ent);
        return 1;
    }
    return 0;
}

void sent_result(struct tx *t, const struct sendq_msg *m, const struct net_dgram *d, int64_t now)
{
    int err = d->err;
    char why[160], host[NET_HOST_MAX] = "";
    unsigned port = 0;
    if (err != 0 || log_get_level() >= LOG_LEVEL_INFO) /* only a log line names it */
        net_addr_format(m->kind == SENDQ_RETX ? &m->ent->dst : &d->addr, host, &port);
    if (err != 0)
        snprintf(why, sizeof why, "send failed: %s", strerror(err));
    if (m->kind == SENDQ_PART) {
        /* a part that did not leave is overdue in time, like a lost one */
        t->c->parts_sent += err == 0;
        return;
    }
    int failed = m->kind == SENDQ_NEW ? sent_new(t, m, err, why, host, port, now)
                                      : sent_retx(t, m, err, why, host, port, now);
    if (failed) {
        t->c->send_failed++;
        log_warn_limited(&t->j->lim_rows, sysio_mono_ms(),
                         "outbound row %lld (message_id %s) to %s port %u: send_failed: %s",
                         (long long)m->rowid, m->id, host, port, why);
    } else if (err != 0) {
        log_warn_limited(&t->q->lim_send, sysio_mono_ms(),
                         "outbound row %lld (message_id %s) to %s port %u: %s; will retry",
                         (long long)m->rowid, m->id, host, port, why);
    }
}
