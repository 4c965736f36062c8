/*
 * rx: the inbound path. Receives what is waiting on the sockets, judges
 * each datagram (wire/judge.c: length, authenticity, timestamp,
 * replay, JSON, message_id), rate-limits senders, and turns an ACK into a
 * journal entry and a message into an item of the turn. The items are
 * stored inside the turn's transaction (rx_store) and ACKed only after it
 * committed (rx_committed). A failed ACK is tried again later; at start,
 * rows an earlier run stored but never ACKed are ACKed (rx_recover).
 *
 * Nothing is answered before it is authenticated, and nothing but the ACK
 * of a stored message is answered at all: drops are counted by reason and
 * logged with a limit.
 */
#ifndef SG_RX_H
#define SG_RX_H

#include "conf/config.h"
#include "daemon/counters.h"
#include "daemon/journal.h"
#include "daemon/sendq.h"
#include "store/store.h"
#include "util/log.h"
#include "util/net.h"
#include "wire/envelope.h"

#include <stddef.h>
#include <stdint.h>

#define RX_SLOTS 64           /* datagrams per recvmmsg */
#define RX_ITEMS_MAX 1024     /* datagrams per turn, so messages per transaction */
#define RX_ACK_RETRY_MAX 1024 /* failed ACKs waiting to be tried again */

struct tx;           /* daemon/tx.h */
struct reasm;        /* daemon/reasm.h */
struct peertab;      /* daemon/peertab.h */
struct rx_item;      /* a message received this turn */
struct rx_ack_retry; /* an ACK whose sending failed */

struct rx {
    /* borrowed: set by the caller before rx_init */
    struct config *cfg;             /* window, rate_limit, rate_burst, max_retries (hot) */
    const struct envelope_key *key; /* replaced on reload */
    struct store *st;
    struct journal *j;
    struct sendq *q;
    struct tx *tx; /* the messages in flight, for ACKs and reflections */
    struct counters *c;
    struct peertab *peers; /* the peers file's peers (replaced on reload) */

    /* own */
    struct replay *replay;
    struct ratelimit *limiter;
    struct reasm *reasm; /* messages in parts being put together */
    uint8_t *buf;        /* RX_SLOTS receive buffers, each one byte larger than any datagram */
    uint8_t *plain;      /* where a datagram opens when more than one key may be tried */
    struct net_dgram slots[RX_SLOTS];
    struct rx_item *items; /* RX_ITEMS_MAX: this turn's messages */
    int nitems;
    /* RX_ITEMS_MAX each: the turn's messages as one store call (rx_store) */
    struct store_inbound *batch;
    enum store_in_result *batch_res;
    int64_t *batch_rowids;
    int *batch_item; /* which item each is */
    char *arena;     /* their JSON (the receive buffers are reused by the next recvmmsg) */
    size_t used;
    struct rx_ack_retry *retries; /* RX_ACK_RETRY_MAX */
    struct store_rows rows;       /* a batch of 'received' rows to ACK again at start */
    int nretries;
    int recovering;       /* rows stored but never ACKed may wait: ACK a batch a turn */
    int64_t recover_upto; /* recovery ACKs rows stored before we started, not this run's own */
    int recover_past;     /* it has come to this run's rows */
    int recover_full;     /* this turn's send queue is full: recovery goes on next turn */
    int64_t recover_after;
    struct log_limiter lim_drop; /* "warnings about dropped datagrams" */
};

/*
 * After the turn's transaction: a part ACK to each peer whose message in parts
 * took new parts this turn, and incomplete messages past their age evicted.
 */
void rx_part_acks(struct rx *rx, int64_t now);

/* New limits for messages in parts (a reload changed SECUREDGRAM_MAX_MESSAGE or the memory). */
void rx_set_part_limits(struct rx *rx);

/*
 * Allocates rx's own buffers and tables (replay cache of replay_max nonces,
 * a token bucket for each of up to max_senders addresses). Returns 0, or -1
 * if out of memory (rx is then safe to rx_fini).
 */
__attribute__((warn_unused_result)) int rx_init(struct rx *rx, size_t replay_max,
                                                size_t max_senders);

/* Frees rx's own buffers and tables (not the borrowed members). A zeroed rx is fine. */
void rx_fini(struct rx *rx);

/*
 * At start, after the store's crash recovery: ACKs again, a batch a turn,
 * the rows stored before now and never ACKed.
 */
void rx_start_recovery(struct rx *rx);

/* Starts a turn: no items yet. */
void rx_turn_start(struct rx *rx);

/*
 * Receives what is waiting on every socket, a batch at a time, up to
 * RX_ITEMS_MAX datagrams, and handles each: drops counted and logged, ACKs
 * journaled (only for a message in flight, from where it went), messages
 * kept as this turn's items.
 */
void rx_receive(struct rx *rx);

/*
 * Inside the transaction: inserts this turn's items. One the database
 * refuses is skipped and never ACKed (logged; j->redo may be set). Returns
 * 0, or -1 to abort the turn.
 */
int rx_store(struct rx *rx);

/* After COMMIT: counts the stored items (and the duplicates) and queues their ACKs. */
void rx_committed(struct rx *rx);

/* The items of a turn that came to nothing (its transaction failed) are counted as unstored. */
void rx_unstored(struct rx *rx);

/*
 * Crash recovery, one batch a turn while rx->recovering: queues the ACKs of
 * rows stored before start and never ACKed; a row whose sender cannot be
 * answered is journaled ack_failed.
 */
void rx_recover(struct rx *rx);

/* Queues the ACKs whose retry is due at now (ms), as room in the send queue allows. */
void rx_queue_retries(struct rx *rx, int64_t now);

/*
 * What sending ACK d (entry m, SENDQ_ACK) did, at now: sent is journaled
 * ack_sent; a failure is tried again ACK_RETRY_MS later, up to max_retries
 * times, then journaled ack_failed.
 */
void rx_ack_result(struct rx *rx, const struct sendq_msg *m, const struct net_dgram *d,
                   int64_t now);

/* The earlier of wake and the next ACK retry (ms). */
int64_t rx_next_wake(const struct rx *rx, int64_t wake);

#endif
