/*
 * txparts: the outbound path's half for version 2 peers (private to
 * daemon/tx.c, daemon/sent.c and daemon/txparts.c): messages sent in parts
 * (wire/parts.h, one daemon/xfer.h each, in flight as a retx entry whose
 * xfer is set), the timers of the retry policies, and the per-peer sequence
 * numbers.
 *
 * A message of several parts is claimed like any row (pending -> sent, in
 * the turn's transaction); its parts go out after the commit, as its
 * destination's flow window lets them (tx_pump), and the receiver's part ACKs
 * take them out of flight or show them lost (tx_part_ack). Its timer fires
 * only when parts are overdue (or all arrived but no ACK came): that is one
 * retry, recorded in retry_count, and backs the timer off. The message's ACK
 * (type 0x01) alone makes the row acknowledged.
 */
#ifndef SG_TXPARTS_H
#define SG_TXPARTS_H

#include "daemon/tx.h"

struct peer;

/* ---- shared by tx.c and resend.c ---- */

enum due_action { DUE_RESEND, DUE_DROP };

/* One claim (or one row's retransmission, or a load's failures) in progress. */
struct claim_ctx {
    struct tx *t;
    int skipped;  /* rows left for lack of room this turn */
    int progress; /* rows claimed or failed */
    int abort;
    int deferred; /* the last row's claim waits in t->takes for the set claim (claim_mark) */
};

/* Marks a row send_failed (journal_fail_row); the claim goes on, or aborts (cx->abort). */
void fail_row(struct claim_ctx *cx, const struct store_outbound_row *row, int64_t retries,
              const char *why);

/* SECUREDGRAM_RETRY_INTERVAL in ms. */
int64_t interval_ms(const struct tx *t);

/* resend.c: the due retransmissions of a turn, and the loading of rows left 'sent'. */
int retransmit_due(struct tx *t, int64_t now);
int load_sent(struct tx *t, int64_t now);
struct tx_load *tx_load_new(void);

/* ---- messages in parts (txparts.c) ---- */

/* How long to wait for ent's ACK (or overdue parts) now: the fixed interval, or adaptive. */
int64_t txp_timeout(struct tx *t, const struct retx_entry *ent);

/* ent's timer fired: its next wait backs off (adaptive), its destination's window reacts. */
void txp_timer_fired(struct tx *t, struct retx_entry *ent, int64_t now);

/* ent's ACK came at now: a round-trip sample if it was sent once (Karn). */
void txp_acked(struct tx *t, struct retx_entry *ent, int64_t now);

/* The part size for the running MTU. */
uint16_t txp_part_size(const struct tx *t);

/* The sequence number for a claimed row to peer p (its own if it has one already). */
int64_t txp_sequence(struct tx *t, struct peer *p, int64_t row_sequence);

/* Room for one more message in parts of len bytes, to dst? */
int txp_has_room(const struct tx *t, size_t len, const struct net_addr *dst);

/*
 * A claimed row of len bytes (m: prepared) that goes to v2 peer p in several
 * parts: in flight from now, its parts sent by tx_pump. Returns 0, or -1 if
 * there is no room for it (it stays pending; *full set).
 */
int txp_claim(struct tx *t, const struct store_outbound_row *row, const struct message_out *m,
              const struct peer *p, const struct net_addr *dst, int64_t sequence);

/*
 * A row loaded in flight (ent, no xfer) is due and its payload (len bytes,
 * prepared) takes several parts: it becomes a message in parts. 0, or -1 if
 * there is no room now (it is due again later).
 */
int txp_adopt(struct tx *t, struct retx_entry *ent, const struct message_out *m);

/*
 * The timer of ent (a message in parts) fired. Returns 1 if that is a retry
 * (parts were overdue, or every part arrived and the ACK did not come): the
 * caller records it; 0 if nothing was overdue (its parts wait for the
 * window).
 */
int txp_due(struct tx *t, struct retx_entry *ent, int64_t now);

/* ent leaves flight: its parts leave its window (delivered if acked), its xfer is freed. */
void txp_forget(struct tx *t, struct retx_entry *ent, int acked);

/* Inside the transaction: each peer's last sequence number given this turn is recorded. */
int txp_save_sequences(struct tx *t);

/* The longest payload a row to p may have: SECUREDGRAM_MAX_MESSAGE for a version 2 peer. */
size_t txp_max_payload(const struct tx *t, const struct peer *p);

/* 1 if row's payload was not read (too large for one datagram) but p takes it in parts. */
int txp_wants_big(const struct tx *t, const struct store_outbound_row *row, const struct peer *p);

/* Why row's payload, which the store did not read, cannot be sent to p (NULL: the secret). */
void txp_unread_reason(const struct tx *t, const struct store_outbound_row *row,
                       const struct peer *p, char *err, size_t errlen);

/*
 * Reads the payload of row, too large for the claim's buffer, into the one
 * row buffer of its own (up to SECUREDGRAM_MAX_MESSAGE): row->payload is set
 * then. 0, or -1 if it cannot be read now (out of memory, or busy).
 */
int txp_read_big(struct tx *t, struct store_outbound_row *row);

/*
 * Seals a message that takes one datagram: one part (with its sequence
 * number) if `as` is a version 2 peer's, else a version 1 datagram. Its
 * queue entry, or NULL if full.
 */
struct sendq_msg *txp_seal_whole(struct tx *t, int sock, const struct net_addr *to,
                                 const struct message_out *m, int64_t sequence,
                                 const struct sendq_as *as);

/* 1 if m must go in several parts (it is for a version 2 peer and over one part). */
int txp_needs_parts(const struct tx *t, const struct sendq_as *as, size_t len);

/* After COMMIT, and after a rollback (the turn's claims in parts and numbers are undone). */
void txp_committed(struct tx *t);
void txp_undo(struct tx *t);

#endif
