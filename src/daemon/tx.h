/*
 * tx: the outbound path. Claims pending rows (pending -> sent, sealed into
 * the send queue), retransmits the messages in flight whose ACK is overdue,
 * loads rows left 'sent' (at start, and every sweep for rows other programs
 * wrote), fails what cannot be sent, and records what each send did.
 *
 * It owns the in-flight table (retx) and the destinations' flow windows
 * (daemon/dests.h): claims leave the rows of a destination whose window is
 * full out until an ACK opens it again.
 *
 * Every database write here runs inside the engine's transaction and goes
 * through journal_result; what sending changes afterwards goes into the
 * journal for the next transaction.
 */
#ifndef SG_TX_H
#define SG_TX_H

#include "conf/config.h"
#include "daemon/counters.h"
#include "daemon/dests.h"
#include "daemon/journal.h"
#include "daemon/retx.h"
#include "daemon/sendq.h"
#include "store/store.h"
#include "wire/judge.h"

#include <stddef.h>
#include <stdint.h>

#define TX_INFLIGHT_MAX 8192 /* messages sent and waiting for their ACK */
#define TX_CLAIM_BATCH 512   /* pending rows claimed (and due rows resent) per turn */
#define TX_BULK_MAX 64       /* messages in flight in parts at once (daemon/txparts.h) */
#define TX_BULK_BYTES ((size_t)64 << 20)     /* and their bytes at most */
#define TX_BULK_DEST_BYTES ((size_t)8 << 20) /* to one destination (more if one is larger) */

struct tx_load; /* the state of one load of rows left 'sent' */

struct peertab; /* daemon/peertab.h */
struct peer;

struct tx {
    /* borrowed: set by the caller before tx_init */
    struct config *cfg; /* max_retries, retry_interval (hot: they change on reload) */
    struct store *st;
    struct journal *j;
    struct sendq *q;
    struct counters *c;
    struct peertab *peers; /* the peers file's peers (replaced on reload) */
    int ack_slots;         /* send queue entries kept for this turn's ACKs */
    size_t ack_bytes;      /* and arena bytes */

    /* own */
    struct retx *inflight;
    struct dests dests;     /* flow windows; blocked destinations */
    struct store_rows rows; /* TX_CLAIM_BATCH rows read from the store: preallocated */
    struct tx_load *load;
    struct retx_entry *due[TX_CLAIM_BATCH]; /* this turn's retransmissions */
    uint8_t due_action[TX_CLAIM_BATCH];
    int ndue;
    int want_claim;   /* pending rows may be waiting: claim this turn */
    int loading_sent; /* rows left 'sent' may be waiting: load them this turn */
    int64_t load_after, load_until, next_sweep; /* a sweep reads ids in (load_after, load_until] */
    int64_t now;                                /* this turn's CLOCK_MONOTONIC ms (tx_turn_start) */
    /* messages in parts (daemon/txparts.c) */
    struct store_rows big; /* one row with a payload of up to big_max bytes */
    size_t big_max;
    struct retx_entry *bulk[TX_BULK_MAX]; /* in flight in parts */
    int nbulk, bulk_next;
    size_t bulk_bytes;
    struct retx_entry *bulk_new[TX_BULK_MAX]; /* of them, claimed this turn (a rollback forgets) */
    int nbulk_new;
    int seq_dirty[TX_CLAIM_BATCH]; /* slots of the peers given sequence numbers this turn */
    int nseq_dirty;
    /* the claim's rows, written in one store call when it ends (tx.c, claim) */
    struct store_take *takes;      /* TX_CLAIM_BATCH */
    struct message_out *take_msgs; /* their message_ids and payloads, owned */
    int ntakes;
};

/*
 * Allocates tx's own tables. Returns 0, or -1 if out of memory (t is then
 * safe to tx_fini).
 */
__attribute__((warn_unused_result)) int tx_init(struct tx *t);

/* Frees tx's own tables (not the borrowed members). A zeroed t is fine. */
void tx_fini(struct tx *t);

/*
 * Ready to run at now (CLOCK_MONOTONIC ms): the first turn claims and loads
 * the rows left 'sent'; the first sweep comes a little later.
 */
void tx_start(struct tx *t, int64_t now);

/*
 * Crash recovery at start, outside any transaction: rows an earlier run left
 * 'sending' are pending again (logged when there are any). Returns 0, or -1
 * with one line in err.
 */
int tx_recover(struct tx *t, char *err, size_t errlen);

/*
 * At the start of a turn at now (CLOCK_MONOTONIC ms, the turn's clock for
 * claims and expiry): once a sweep interval has passed, rows left 'sent' are
 * loaded again.
 */
void tx_turn_start(struct tx *t, int64_t now);

/* 1 if the transaction of a turn at now has outbound work: due, claimable or loadable rows. */
int tx_has_work(const struct tx *t, int64_t now);

/* 1 if the next turn should come at once (a claim or a load is waiting). */
int tx_eager(const struct tx *t);

/* The earliest retransmission deadline (ms), or INT64_MAX when nothing is in flight. */
int64_t tx_next_deadline(const struct tx *t);

/*
 * Before the transaction, outside it (so that a rolled-back turn does not
 * undo it): tells the store which destinations claims leave out.
 */
void tx_prepare(struct tx *t);

/*
 * Inside the transaction (full turns only): loads rows left 'sent', resends
 * what is due, claims pending rows, and fails the old backlog of silent
 * destinations; the datagrams are sealed into the send queue. Returns 0, or
 * -1 to abort the turn (t->j->redo may be set).
 */
int tx_write(struct tx *t, int64_t now);

/*
 * After COMMIT: counts the rows the transaction marked send_failed; the due
 * entries whose rows failed, vanished or were acknowledged leave flight.
 */
void tx_committed(struct tx *t);

/*
 * After a rollback: nothing of the turn happened. Its due entries are due
 * again at retry_at, its claimed rows are pending again (their window
 * places are given back; call before sendq_reset), and the next turn claims.
 */
void tx_undo(struct tx *t, int64_t retry_at);

/*
 * A message to dst left flight: acknowledged (acked 1: its window grows) or
 * given up (0). If that opened a blocked destination's window, the next turn
 * claims again.
 */
void tx_release(struct tx *t, const struct net_addr *dst, int acked);

/* The message in flight with this message_id, or NULL. */
struct retx_entry *tx_awaiting(struct tx *t, const char *id);

/* The ACK of ent (from tx_awaiting) was journaled: it leaves flight, its window grows. */
void tx_acked(struct tx *t, struct retx_entry *ent);

/*
 * After the turn's transaction (every turn): seals the parts of messages in
 * parts that their destinations' windows let go now, round the messages in
 * turn, until the send queue is full.
 */
void tx_pump(struct tx *t, int64_t now);

/*
 * A part ACK (judge's JUDGE_PART_ACK, j) from peer p at now: the parts it
 * holds leave flight, those it shows missing are sent again, and the round
 * trip is sampled. Returns 0, or -1 if it matches no message in parts to p
 * of that length (counted by the caller as unmatched).
 */
int tx_part_ack(struct tx *t, const struct peer *p, const struct judgement *j, int64_t now);

/*
 * Each peer's last sequence number, from the store (at start and after a
 * reload), so that no number is given twice. 0, or -1 with one line in err.
 */
int tx_sequences_load(struct tx *t, char *err, size_t errlen);

/* At shutdown: the last transaction only records what is owed (no claims, no loads). */
void tx_quiesce(struct tx *t);

#endif
