/*
 * store: the message database, and every SQL statement the daemon runs; the
 * only module of the daemon that includes <sqlite3.h>. The tools' queries are
 * in store_admin.c, beside it, over the same connection type.
 *
 * Tables and states are the original's (data/schema.sql):
 *   outbound: pending -> sending -> sent -> acknowledged; send_failed is terminal
 *   inbound:  received -> ack_sent, or ack_failed
 *
 * Write functions run inside the caller's transaction (store_begin ..
 * store_commit) and return:
 *   STORE_OK       done;
 *   STORE_BUSY     locked by another connection, or the transaction ran past
 *                  its time budget (store_set_budget): try the turn again later;
 *   STORE_REFUSED  the database refused this one row's change: a CHECK or NOT
 *                  NULL constraint, or a trigger's RAISE (ABORT, FAIL, IGNORE or
 *                  ROLLBACK). Only that row is at fault. RAISE(ROLLBACK) ends
 *                  the whole transaction: check store_in_tx() before going on;
 *   STORE_DUP      a UNIQUE message_id is already taken;
 *   STORE_ERR      anything else (disk full, I/O, corruption): roll back.
 * store_errmsg() says why after any failure.
 */
#ifndef SG_STORE_H
#define SG_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

enum store_rc { STORE_OK = 0, STORE_BUSY, STORE_ERR, STORE_DUP, STORE_REFUSED, STORE_GONE };

#define STORE_DAEMON_BUSY_MS 1000
/* The daemon checks the database at start for at most this long. */
#define STORE_CHECK_BUDGET_MS 2000
#define STORE_TOOL_BUSY_MS 5000

enum store_open_mode {
    STORE_CREATE,   /* the daemon: a missing or empty file becomes a new database */
    STORE_EXISTING, /* the tools: the file must be a securedgram database already */
};

/*
 * Opens path in WAL mode with synchronous=NORMAL and the given busy timeout,
 * creates a missing one of our tables and adds a missing read_count column.
 * A file that has neither of our tables is refused ("... is not a securedgram
 * database (no table outbound_messages)") before anything is written to it,
 * and so is an empty file in STORE_EXISTING mode; the file is left byte for
 * byte as it was. Files it creates are mode 0600. A read-only database is
 * refused; in STORE_CREATE mode (the daemon) so is a damaged one (PRAGMA
 * quick_check, within STORE_CHECK_BUDGET_MS). Returns NULL with the reason in
 * err on failure.
 */
__attribute__((warn_unused_result)) struct store *
store_open(const char *path, enum store_open_mode mode, int busy_ms, char *err, size_t errlen);

/* Closes the database (finalising every statement); NULL is fine. */
void store_close(struct store *st);

/* Why the last failed call failed. */
const char *store_errmsg(const struct store *st);

/*
 * Bounds every transaction of this connection to budget_ms from its BEGIN
 * (0: no bound). A statement still running past it is interrupted, SQLite
 * rolls the transaction back, and the call returns STORE_BUSY: a slow trigger
 * cannot freeze the daemon's loop. store_timed_out() is 1 after that.
 */
void store_set_budget(struct store *st, int budget_ms);
int store_timed_out(const struct store *st);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
__attribute__((warn_unused_result)) enum store_rc store_begin(struct store *st);
__attribute__((warn_unused_result)) enum store_rc store_commit(struct store *st);
void store_rollback(struct store *st);

/*
 * 1 if the database file or its -wal was removed or replaced since it was
 * opened: commits would go to a file nobody will ever read again (a lost
 * -wal takes every commit since the last checkpoint with it).
 */
int store_file_replaced(struct store *st);

/* 1 while a transaction is open (SQLite rolls some failures back by itself). */
int store_in_tx(const struct store *st);

/* PRAGMA data_version: changes when another connection commits. -1 on error. */
int64_t store_data_version(struct store *st);

/* Crash recovery: every 'sending' row back to 'pending'. Returns rows moved or -1. */
int store_recover_sending(struct store *st);

/* ---- outbound ---- */

struct store_outbound_row {
    int64_t rowid;
    const char *message_id;    /* NULL if the row has none */
    const char *dst_addr;      /* never NULL ("" if NULL; STORE_BAD_TEXT if it holds a NUL) */
    int64_t dst_port;          /* -1 unless the column is an integer from 1 to 65535 */
    const char *dst_port_text; /* the column as text, for messages ("" if NULL) */
    const char *payload;       /* NULL from store_outbound_pending (see store_outbound_payload) */
    size_t payload_len;
    int64_t retry_count; /* never below 0 */
    int64_t age_ms;      /* since sent_at (load_sent), created_at (pending); 0 if unreadable */
};

/* What a text column reads as when it holds a NUL byte (a BLOB written by a script). */
#define STORE_BAD_TEXT "(a value with a NUL byte)"

/*
 * Called once per row; the row's strings are valid only during the call, and
 * the callback must not write to the database (the query is still running).
 */
typedef void (*store_outbound_fn)(void *ctx, const struct store_outbound_row *row);

/* A destination as rows name it. */
struct store_dest {
    const char *addr;
    int64_t port;
};

/*
 * The oldest `limit` pending rows, in id order, without their payloads,
 * leaving out the destinations of store_outbound_exclude and the rows of
 * store_outbound_skip. However many rows wait for excluded destinations, the
 * others are found. Returns the row count or -1.
 */
int store_outbound_pending(struct store *st, int limit, store_outbound_fn fn, void *ctx);

/*
 * Replaces the set of destinations whose pending rows are left out (their
 * flow windows are full). Call it outside a transaction: the set then
 * survives a rolled-back turn.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_exclude(struct store *st, const struct store_dest *dests, int n);

/*
 * Leaves one row out of every later claim (the database refuses every change
 * to it), until the daemon restarts. Outside a transaction, as above.
 */
__attribute__((warn_unused_result)) enum store_rc store_outbound_skip(struct store *st,
                                                                      int64_t rowid);

/*
 * Every pending row for dest created more than older_than_ms ago (and not
 * skipped) -> send_failed with last_error = why; *changed gets the count.
 * For a destination that does not answer: its backlog fails on time.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_expire(struct store *st, const struct store_dest *dest, int64_t older_than_ms,
                      const char *why, int *changed);

/*
 * Reads one outbound row's payload into a malloc'd NUL-terminated copy, if it
 * is at most max bytes. STORE_OK: *out and *len set. STORE_REFUSED: it is
 * larger (*len is its size; nothing was read into memory). STORE_GONE: no such
 * row, or its payload is neither text nor a blob. STORE_BUSY / STORE_ERR.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_payload(struct store *st, int64_t rowid, size_t max, char **out, size_t *len);

/*
 * Up to `limit` rows in 'sent' with rowid > after, in id order, with
 * retry_count and age_ms (the payload is left empty: a retransmission reads it
 * with store_outbound_get_sent). Returns the row count or -1.
 */
int store_outbound_load_sent(struct store *st, int64_t after, int limit, store_outbound_fn fn,
                             void *ctx);

/*
 * pending -> sending for one row, writing message_id and (if not NULL) the
 * payload with the message_id inserted. STORE_DUP: another row already has
 * this message_id. STORE_REFUSED also when the row did not change (a trigger's
 * RAISE(IGNORE), or it is no longer pending): it must not be sent.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_sending(struct store *st, int64_t rowid, const char *message_id, const char *payload,
                       size_t payload_len);

/*
 * sending -> sent, or sent -> sent (a retransmission): sets retry_count and
 * sent_at; why, if not NULL, becomes last_error (a send that must be retried).
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_sent(struct store *st, int64_t rowid, int64_t retry_count, const char *why);

/* Any state but acknowledged -> send_failed with last_error = why. */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_failed(struct store *st, int64_t rowid, int64_t retry_count, const char *why);

/*
 * An ACK for row rowid: sent or sending -> acknowledged. *matched is set to
 * 1 if the row changed, 0 if it was not waiting for an ACK.
 */
__attribute__((warn_unused_result)) enum store_rc store_outbound_acked(struct store *st,
                                                                       int64_t rowid, int *matched);

/*
 * The payload and state of one row for a retransmission. fn is called with
 * the row (only rowid, message_id, dst, payload filled) if it is still 'sent'.
 * Returns 1 if called, 0 if the row is gone or not 'sent', -1 on error.
 */
int store_outbound_get_sent(struct store *st, int64_t rowid, store_outbound_fn fn, void *ctx);

/* ---- inbound ---- */

enum store_in_result {
    STORE_IN_NEW, /* inserted */
    STORE_IN_DUP, /* a row with this message_id is stored already (a retransmission) */
    STORE_IN_OWN, /* an outbound row of ours awaiting its ACK has this message_id: a
                     reflection of our own datagram, not stored */
};

/*
 * Inserts a received message as 'received', and sets *res (on STORE_OK only).
 * An insert that stores nothing is a duplicate only if a row with that
 * message_id really exists; otherwise it is STORE_REFUSED (a CHECK, a NOT
 * NULL, a trigger's RAISE), and must not be acknowledged.
 */
__attribute__((warn_unused_result)) enum store_rc
store_inbound_insert(struct store *st, const char *message_id, const char *src_addr,
                     unsigned src_port, const char *payload, size_t payload_len,
                     uint64_t crypto_ts_ns, enum store_in_result *res);

/*
 * As store_inbound_insert, for a message this daemon sent to itself: its own
 * outbound row awaiting the ACK is expected, not a sign of a reflection.
 */
__attribute__((warn_unused_result)) enum store_rc
store_inbound_insert_self(struct store *st, const char *message_id, const char *src_addr,
                          unsigned src_port, const char *payload, size_t payload_len,
                          uint64_t crypto_ts_ns, enum store_in_result *res);

/* received -> ack_sent (ack_sent=1, ack_sent_at=now) for message_id. */
__attribute__((warn_unused_result)) enum store_rc store_inbound_ack_sent(struct store *st,
                                                                         const char *message_id);

/* received -> ack_failed for message_id. */
__attribute__((warn_unused_result)) enum store_rc store_inbound_ack_failed(struct store *st,
                                                                           const char *message_id);

struct store_inbound_row {
    int64_t rowid;
    const char *message_id;
    const char *src_addr; /* STORE_BAD_TEXT if it holds a NUL byte */
    int64_t src_port;     /* -1 unless an integer from 1 to 65535 */
};
typedef void (*store_inbound_fn)(void *ctx, const struct store_inbound_row *row);

/* The highest inbound id now (0 if none; INT64_MAX if it cannot be read: recover them all). */
int64_t store_inbound_last_id(struct store *st);

/* Up to `limit` rows in 'received' with rowid > after, in id order. Returns count or -1. */
int store_inbound_unacked(struct store *st, int64_t after, int limit, store_inbound_fn fn,
                          void *ctx);

/* Formats ns since the epoch as YYYY-MM-DDTHH:MM:SS.NNNNNNNNN (UTC) into out[32]. */
void store_format_ns(uint64_t ns, char out[32]);

#endif
