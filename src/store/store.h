/*
 * store: the message queue, whichever database holds it. Callers see an
 * opaque struct store, results as enum store_rc, and rows as copies they own;
 * nothing here names a backend. store_open chooses the backend from the
 * location: a file path (or sqlite:PATH) is SQLite; a libpq URI,
 * postgresql://... or postgres://..., is PostgreSQL (src/store/pg*.c, tables
 * of data/schema-pg.sql), where several daemons may share one database.
 * Both behave as this file says, but for what sharing needs: in PostgreSQL a
 * claimed row is leased to its connection (claimed_by, lease_until), so
 * store_recover_sending moves back only rows whose lease has ended (their
 * holder's session is gone, or its time ran out), never a live daemon's, and
 * store_outbound_load_sent gives the connection's own 'sent' rows and takes
 * over those whose lease has ended; store_journal_bytes is -1 there, and a
 * text with a NUL byte or invalid UTF-8 (which PostgreSQL text cannot hold)
 * is refused for its row.
 *
 * Tables and states are the original's (data/schema.sql):
 *   outbound: pending -> sending -> sent -> acknowledged; send_failed is terminal
 *   inbound:  received -> ack_sent, or ack_failed
 *
 * Every function that can fail returns
 *   STORE_OK       done;
 *   STORE_BUSY     locked by another connection past the busy timeout, or the
 *                  transaction ran past its time budget (store_set_budget):
 *                  try again later;
 *   STORE_REFUSED  the database refused this one row's change: a CHECK or NOT
 *                  NULL constraint, a trigger's RAISE, a value too big. Only
 *                  that row is at fault (the daemon never ACKs such a message
 *                  and never sends such a row);
 *   STORE_DUP      a UNIQUE message_id is already taken;
 *   STORE_GONE     what was asked for is not there: no such row, no database
 *                  at the location (store_open), or the database file was
 *                  removed or replaced while open (store_commit, store_poll);
 *   STORE_ERR      anything else (disk full, I/O, corruption).
 * store_errmsg() says why after any failure.
 *
 * A write that returns REFUSED or DUP has undone itself and the transaction
 * stays open, unless the database's own rules ended the whole transaction (a
 * trigger's RAISE(ROLLBACK) in SQLite): store_tx_aborted() says which.
 *
 * Every write takes the time from the caller (milliseconds since the epoch)
 * and stores it as text YYYY-MM-DDTHH:MM:SS.SSS in UTC (store_format_ms), the
 * original's format; so do the reads that compute ages. The schema's DEFAULTs
 * are for other programs' inserts.
 *
 * Rows come back as copies in a struct store_rows (or a struct store_record)
 * that the caller owns: it may write to the database while it holds them.
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

/* ---- life cycle ---- */

enum store_open_mode {
    STORE_CREATE,   /* the daemon: a missing or empty database gets our tables */
    STORE_EXISTING, /* the tools: it must be a securedgram database already */
};

/*
 * Opens the database at location with the given busy timeout.
 *
 * PostgreSQL (postgresql://... or postgres://..., a libpq URI): connects
 * (application_name securedgram, connect_timeout 5 s unless the URI says
 * otherwise), sets lock_timeout to the busy timeout, and applies
 * data/schema-pg.sql if the database's securedgram_schema says it is older
 * (or has no tables: STORE_CREATE; STORE_EXISTING refuses a database without
 * them as below); a newer one is refused. A missing database is STORE_GONE
 * in both modes ("database not found: database "X" does not exist ..."), a
 * refused login or no server STORE_ERR, a lock held past the timeout
 * STORE_BUSY. No message repeats the URI: it may hold a password. A text
 * with a NUL byte or invalid UTF-8, which PostgreSQL text cannot hold, is
 * refused (STORE_REFUSED) for its row only.
 *
 * SQLite (a path, sqlite:PATH or sqlite://PATH): WAL mode,
 * synchronous=NORMAL; creates a missing one of our tables and adds what an
 * old one lacks (the columns read_count, peer and sequence, the table
 * peer_sequence; see data/schema.sql), all in one transaction. A database
 * that has neither of our tables is refused
 * ("... is not a securedgram database (no table outbound_messages)") before
 * anything is written to it, and so is an empty one in STORE_EXISTING mode:
 * it is left byte for byte as it was. Files it creates are mode 0600. A
 * read-only database is refused; in STORE_CREATE mode (the daemon) so is a
 * damaged one (checked within STORE_CHECK_BUDGET_MS). Sets *out and returns
 * STORE_OK; else *out is NULL, err says why and the result is STORE_GONE
 * (STORE_EXISTING: there is no database at location), STORE_BUSY (locked
 * past the busy timeout) or STORE_ERR.
 */
/* Room for store_location_text's text. */
#define STORE_LOCATION_TEXT_MAX 4200

/*
 * location as it may be shown (the log, status, a tool's message): in a
 * PostgreSQL URI the password, of its user part or of a password= parameter,
 * becomes "***"; a path is as it is (cut to fit outlen).
 */
void store_location_text(const char *location, char *out, size_t outlen);

__attribute__((warn_unused_result)) enum store_rc store_open(const char *location,
                                                             enum store_open_mode mode, int busy_ms,
                                                             struct store **out, char *err,
                                                             size_t errlen);

/* Closes the database; NULL is fine. */
void store_close(struct store *st);

/* Why the last failed call failed. */
const char *store_errmsg(const struct store *st);

/* ---- transactions ---- */

/*
 * Bounds every transaction of this connection to budget_ms from its BEGIN
 * (0: no bound). A statement still running past it is interrupted, the
 * transaction is rolled back, and the call returns STORE_BUSY: a slow trigger
 * cannot freeze the daemon's loop. store_timed_out() is 1 after that.
 */
void store_set_budget(struct store *st, int budget_ms);
int store_timed_out(const struct store *st);

/*
 * What this connection has written since it opened: statements that wrote
 * (each set-based statement counts once, however many rows it changed) and
 * rows inserted, updated or deleted. For the counters and the benchmark's
 * writes per message.
 */
void store_write_stats(const struct store *st, uint64_t *statements, uint64_t *rows);

/*
 * The bytes of the backend's journal of commits not yet folded into the
 * database (SQLite: the -wal file; it grows when readers hold it), or -1
 * if the backend has none or cannot tell. For status and /metrics.
 */
int64_t store_journal_bytes(const struct store *st);

/*
 * Opens a write transaction (taking the write lock now) / commits / rolls
 * back. store_commit checks first that the database (and, for SQLite, its
 * -wal) is still the file that was opened: if not it rolls back and returns
 * STORE_GONE, as nothing committed there would ever be read again. A failed
 * commit has rolled back. store_rollback outside a transaction is harmless.
 */
__attribute__((warn_unused_result)) enum store_rc store_begin(struct store *st);
__attribute__((warn_unused_result)) enum store_rc store_commit(struct store *st);
void store_rollback(struct store *st);

/*
 * 1 if the transaction of the last store_begin has ended by itself: a
 * refusal that ended the whole transaction (SQLite: a trigger's
 * RAISE(ROLLBACK)), or an interrupted statement. Everything written since
 * store_begin is gone; the caller must not go on as if it were open.
 */
int store_tx_aborted(const struct store *st);

/* ---- commits by other processes ---- */

/*
 * Starts noticing other connections' commits from now on; the database is
 * checked at least every fallback_ms, and more promptly after a file event
 * (SQLite: inotify on the -wal, re-checked 0.1, 1, 5, 25, 100 and 500 ms
 * after each event). now_us is the caller's CLOCK_MONOTONIC, in microseconds;
 * every later call uses the same clock.
 */
__attribute__((warn_unused_result)) enum store_rc
store_watch_start(struct store *st, int fallback_ms, int64_t now_us);

/*
 * The descriptor to poll for readability, or -1 when there is none (then
 * only the fallback checks notice commits). It is set up at the first call,
 * so a caller that never polls pays for none.
 */
int store_watch_fd(struct store *st);

/* When store_poll should next be called (microseconds, the caller's clock). */
int64_t store_poll_due_us(const struct store *st);

/*
 * Call when store_watch_fd is readable (readable = 1) or store_poll_due_us
 * has come. Sets *changed to 1 if another connection committed since the
 * last report. STORE_GONE: the database was removed or replaced (its -wal
 * too, for SQLite); STORE_ERR: it could not be checked.
 */
__attribute__((warn_unused_result)) enum store_rc store_poll(struct store *st, int readable,
                                                             int64_t now_us, int *changed);

/* ---- rows ---- */

/* What a text column reads as when it holds a NUL byte (a BLOB written by a script). */
#define STORE_BAD_TEXT "(a value with a NUL byte)"

/*
 * A row's message_id, address and port text are cut to this many bytes. A
 * peer name is never cut (a cut name could be another peer's): one longer
 * than this reads as STORE_BAD_TEXT. Peer names (conf/peers.h) are at most
 * PEER_NAME_MAX = 64 bytes.
 */
#define STORE_FIELD_MAX 64
/* Text one row needs in a struct store_rows, besides a payload: four fields. */
#define STORE_ROW_TEXT ((size_t)4 * (STORE_FIELD_MAX + 1))

struct store_outbound_row {
    int64_t rowid;
    const char *message_id;    /* NULL if the row has none */
    const char *dst_addr;      /* never NULL ("" if NULL; STORE_BAD_TEXT if it holds a NUL) */
    int64_t dst_port;          /* -1 unless the column is an integer from 1 to 65535 */
    const char *dst_port_text; /* the column as text, for messages ("" if NULL) */
    const char *payload;       /* NULL unless the call reads payloads */
    size_t payload_len;
    int64_t retry_count; /* never below 0 */
    int64_t age_ms;      /* since sent_at (load_sent); 0 where not read */
    const char *peer;    /* NULL if the column is NULL: dst_addr and dst_port say where it goes;
                            else the peer it goes to, by name (dst_addr and dst_port are then
                            ignored, whatever they hold); STORE_BAD_TEXT if it holds a NUL byte
                            or is longer than STORE_FIELD_MAX bytes */
    int64_t sequence;    /* the number the row was given when first sent to a version 2 peer
                            (store_outbound_take), which a retransmission carries again; 0 if
                            it has none (NULL, or not an integer above 0) */
    int64_t created_ms;  /* created_at as ms since the epoch, 0 if it is not a time (for the
                            insert -> acknowledged histogram) */
};

struct store_inbound_row {
    int64_t rowid;
    const char *message_id; /* never NULL */
    const char *src_addr;   /* STORE_BAD_TEXT if it holds a NUL byte */
    int64_t src_port;       /* -1 unless an integer from 1 to 65535 */
    const char *peer;       /* the peer that sent it (its key seals the ACK), or NULL if the
                               column is NULL (the shared secret); STORE_BAD_TEXT as above */
    int64_t sequence;       /* the number it arrived with; 0 if none (NULL: version 1) */
};

/*
 * Rows copied out of the database, with their text in one buffer; the
 * caller owns it and each call refills it (n rows in out[] or in[]). A call
 * takes at most cap rows; full is 1 when it left rows out for lack of room
 * (more may wait). Sized with cap x STORE_ROW_TEXT bytes (plus the largest
 * payload read) it never fills.
 */
struct store_rows {
    int n;
    int full;
    struct store_outbound_row *out; /* cap rows */
    struct store_inbound_row *in;   /* cap rows */
    int cap;
    char *text;
    size_t text_size, text_used;
};

/* Allocates room for cap rows and text_bytes of text. Returns 0, or -1 out of memory. */
__attribute__((warn_unused_result)) int store_rows_init(struct store_rows *r, int cap,
                                                        size_t text_bytes);
void store_rows_free(struct store_rows *r);

/* ---- the daemon: outbound ---- */

/*
 * A destination as rows name it. Only rows without a peer go to their
 * dst_addr and dst_port, so only they are matched by one; a row with a peer
 * is matched by its peer's name (store_outbound_exclude_peers,
 * store_outbound_expire_peer).
 */
struct store_dest {
    const char *addr;
    int64_t port;
};

/* Crash recovery: every 'sending' row back to 'pending'; *moved gets the count. */
__attribute__((warn_unused_result)) enum store_rc store_recover_sending(struct store *st,
                                                                        int64_t now_ms, int *moved);

/*
 * The oldest `limit` (at most out->cap) pending rows, in id order, without
 * their payloads, leaving out the destinations of store_outbound_exclude, the
 * peers of store_outbound_exclude_peers and the rows of store_outbound_skip.
 * However many rows wait for excluded destinations or peers, the others are
 * found.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_pending(struct store *st, int limit, struct store_rows *out);

/*
 * Replaces the set of destinations whose pending rows are left out (their
 * flow windows are full). Call it outside a transaction: the set then
 * survives a rolled-back turn.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_exclude(struct store *st, const struct store_dest *dests, int n);

/*
 * The same for the rows of peers: replaces the set of peer names whose
 * pending rows are left out. The two sets are independent.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_exclude_peers(struct store *st, const char *const *peers, int n);

/*
 * Leaves rows out of every later claim (the database refuses every change
 * to them), until the daemon restarts. Outside a transaction, as above.
 */
__attribute__((warn_unused_result)) enum store_rc store_outbound_skip(struct store *st,
                                                                      const int64_t *rowids, int n);

/*
 * Every pending row for dest (without a peer) created more than
 * older_than_ms before now (and not skipped) -> send_failed with last_error =
 * why; *changed gets the count. For a destination that does not answer: its
 * backlog fails on time.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_expire(struct store *st, const struct store_dest *dest, int64_t older_than_ms,
                      const char *why, int64_t now_ms, int *changed);

/* The same for the pending rows of the peer named peer. */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_expire_peer(struct store *st, const char *peer, int64_t older_than_ms,
                           const char *why, int64_t now_ms, int *changed);

/* payload_len of a row whose payload is neither text nor a blob, or whose row is gone. */
#define STORE_PAYLOAD_UNREADABLE SIZE_MAX

/*
 * Reads the payloads of the rows in out (as store_outbound_pending left them)
 * into out's text, one read each and no statement per row. A payload over max
 * bytes is not read into memory at all: payload NULL, payload_len its size.
 * One neither text nor a blob, or whose row is gone: payload NULL, payload_len
 * STORE_PAYLOAD_UNREADABLE. Rows whose payloads no longer fit out's text are
 * cut from out (n smaller, full set): a later call finds them again.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_payloads(struct store *st, size_t max, struct store_rows *out);

/*
 * Up to `limit` rows in 'sent' with rowid > after, in id order, with
 * retry_count and age_ms since sent_at (no payload: a retransmission reads
 * it with store_outbound_get_sent).
 */
__attribute__((warn_unused_result)) enum store_rc store_outbound_load_sent(struct store *st,
                                                                           int64_t after, int limit,
                                                                           int64_t now_ms,
                                                                           struct store_rows *out);

/*
 * The row rowid with its payload, if it is still 'sent' (out->n is 1; 0 if it
 * is gone or in another state). A payload larger than max is not read: the
 * row comes with payload NULL and payload_len its size.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_get_sent(struct store *st, int64_t rowid, size_t max, struct store_rows *out);

/*
 * pending -> sent for one row, the daemon's claim: writes message_id, (if
 * not NULL) the payload with the message_id inserted, sent_at and, if
 * sequence is above 0, the row's sequence number (0 leaves the row's as it
 * is), in one statement. The row skips 'sending': its datagram leaves right
 * after this transaction commits, and a crash before that leaves a 'sent'
 * row, which is retransmitted on schedule like any other. STORE_DUP: another
 * row already has this message_id. STORE_REFUSED also when the row did not
 * change (a trigger's RAISE(IGNORE), or it is no longer pending): it must not
 * be sent.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_take(struct store *st, int64_t rowid, const char *message_id, const char *payload,
                    size_t payload_len, int64_t sequence, int64_t now_ms);

/* One row of store_outbound_take_set: store_outbound_take's arguments. */
struct store_take {
    int64_t rowid;
    const char *message_id;
    const char *payload; /* NULL: the row's own */
    size_t payload_len;
    int64_t sequence; /* 0: the row's own */
};

/*
 * store_outbound_take for v[0..n), in one statement where the backend can
 * (PostgreSQL: a round trip a row would bound a daemon's rate by the
 * server's latency). STORE_OK: every row was taken. Otherwise *failed is
 * the first row not taken and the result is what store_outbound_take would
 * say of it (STORE_DUP, STORE_REFUSED), or the error; the other rows may or
 * may not have been taken, so the caller rolls the transaction back (and,
 * trying again, takes that row on its own, which tells why).
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_take_set(struct store *st, const struct store_take *v, int n, int64_t now_ms,
                        int *failed);

/* One row's change for store_outbound_sent and store_outbound_failed. */
struct store_sent {
    int64_t rowid;
    int64_t retry_count;
    const char *why; /* last_error, or NULL */
};

/*
 * The functions below that take n rows apply them in order; a failure stops
 * at the row it is about, and *done (if not NULL) gets the number of rows
 * before it, which stay applied. A backend may run several rows as one
 * statement (SQLite: when no trigger could end the transaction) as long as
 * the outcome is the same as one row at a time.
 */

/*
 * sending -> sent, or sent -> sent (a retransmission): sets retry_count and
 * sent_at; why, if not NULL, becomes last_error (a send that must be retried).
 * Rows in other states are left as they are.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_sent(struct store *st, const struct store_sent *v, int n, int64_t now_ms, int *done);

/* Any state but acknowledged -> send_failed with last_error = why (never NULL). */
__attribute__((warn_unused_result)) enum store_rc store_outbound_failed(struct store *st,
                                                                        const struct store_sent *v,
                                                                        int n, int64_t now_ms,
                                                                        int *done);

/*
 * ACKs for rows rowids[0..n): sent or sending -> acknowledged. *matched gets
 * how many rows changed (a row not waiting for an ACK is left as it is);
 * *done as for the calls above.
 */
__attribute__((warn_unused_result)) enum store_rc store_outbound_acked(struct store *st,
                                                                       const int64_t *rowids, int n,
                                                                       int64_t now_ms, int *matched,
                                                                       int *done);

/*
 * The set-based claim: the oldest `limit` (at most out->cap) pending rows,
 * leaving out what store_outbound_pending leaves out, become 'sending' in one
 * statement and come back in out (id order, no payloads). A row the database
 * refuses makes the whole claim STORE_REFUSED (nothing claimed): claim such
 * rows one at a time with store_outbound_take. A claimed row is sent after
 * store_outbound_identify (its message_id, and its payload if that changed),
 * or given back with store_outbound_release.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_claim(struct store *st, int limit, int64_t now_ms, struct store_rows *out);

/*
 * Writes message_id and (if not NULL) payload to a row claimed by
 * store_outbound_claim (still 'sending'). Results as store_outbound_take.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_identify(struct store *st, int64_t rowid, const char *message_id,
                        const char *payload, size_t payload_len, int64_t now_ms);

/* Claimed rows rowids[0..n) not sent after all: sending -> pending. */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_release(struct store *st, const int64_t *rowids, int n, int64_t now_ms);

/* ---- the daemon: inbound ---- */

enum store_in_result {
    STORE_IN_NEW, /* inserted */
    STORE_IN_DUP, /* a row with this message_id is stored already (a retransmission) */
    STORE_IN_OWN, /* an outbound row of ours awaiting its ACK has this message_id: a
                     reflection of our own datagram, not stored */
};

/* A received message to store. */
struct store_inbound {
    const char *message_id;
    const char *src_addr;
    unsigned src_port;
    const char *payload; /* payload_len bytes, not NUL-terminated */
    size_t payload_len;
    uint64_t crypto_ts_ns; /* the envelope's timestamp */
    int to_self;           /* a message this daemon sent to itself: its own outbound row awaiting
                              the ACK is expected, not a sign of a reflection (never STORE_IN_OWN) */
    const char *peer;      /* the peer that sent it, by name; NULL: none (the shared secret) */
    int64_t sequence;      /* its sequence number (1 to INT64_MAX); 0: none, stored as NULL */
};

/*
 * Inserts received messages as 'received' and sets res[k] for each (on
 * STORE_OK, and for the rows before a failure), and rowids[k] (if rowids is
 * not NULL) to the new row's id, or 0 if none was made. An insert that stores nothing
 * is a duplicate only if a row with that message_id really exists; otherwise
 * it is STORE_REFUSED (a CHECK, a NOT NULL, a trigger's RAISE), and the
 * message must not be acknowledged.
 */
__attribute__((warn_unused_result)) enum store_rc
store_inbound_insert(struct store *st, const struct store_inbound *m, int n, int64_t now_ms,
                     enum store_in_result *res, int64_t *rowids, int *done);

/* received -> ack_sent (ack_sent=1, ack_sent_at=now) for message_ids[0..n). */
__attribute__((warn_unused_result)) enum store_rc
store_inbound_ack_sent(struct store *st, const char *const *message_ids, int n, int64_t now_ms,
                       int *done);

/*
 * The same for the rows rowids[0..n), as store_inbound_insert numbered them:
 * the common case, a message stored and ACKed; found by the table's own key,
 * without a look-up of each message_id.
 */
__attribute__((warn_unused_result)) enum store_rc store_inbound_ack_sent_rows(struct store *st,
                                                                              const int64_t *rowids,
                                                                              int n, int64_t now_ms,
                                                                              int *done);

/* received -> ack_failed for message_ids[0..n). */
__attribute__((warn_unused_result)) enum store_rc
store_inbound_ack_failed(struct store *st, const char *const *message_ids, int n, int64_t now_ms,
                         int *done);

/* Up to `limit` rows in 'received' with rowid > after, in id order (into out->in). */
__attribute__((warn_unused_result)) enum store_rc
store_inbound_unacked(struct store *st, int64_t after, int limit, struct store_rows *out);

/* ---- the daemon: sequence numbers ---- */

/*
 * Each peer's last outbound sequence number (docs/wire.md, "Order"), kept
 * apart from the rows so that deleting rows (sg-clean) never makes a number
 * be given twice, and across restarts.
 */
struct store_sequence {
    char peer[STORE_FIELD_MAX + 1]; /* the peer's name */
    int64_t last;                   /* the last number given to a message to it; never below 0 */
};

/*
 * Copies up to cap pairs, in name order, whose peer sorts after `after`
 * (NULL or "": from the first) into out[0..*n). Fewer than cap: there are no
 * more; else call again with after = out[cap - 1].peer. Names that cannot be
 * a peer's (longer than STORE_FIELD_MAX bytes, holding a NUL byte, not text)
 * are left out.
 */
__attribute__((warn_unused_result)) enum store_rc store_sequence_load(struct store *st,
                                                                      const char *after,
                                                                      struct store_sequence *out,
                                                                      int cap, int *n);

/*
 * Records that peer's last number is at least last: the stored number
 * becomes the larger of the two (it never goes down). last 0 (or below)
 * writes nothing. One statement; the caller runs it in its transaction, once
 * per peer per turn.
 */
__attribute__((warn_unused_result)) enum store_rc
store_sequence_save(struct store *st, const char *peer, int64_t last);

/* ---- the tools (sg-send, sg-recv, sg-clean) ---- */

/*
 * The functions below write one line into err on failure (err may be NULL):
 * for STORE_BUSY it is STORE_BUSY_TEXT, else it starts with "Database
 * error: " (the original's wording, which scripts look for). A function that
 * opens a transaction rolls it back before it returns a failure, so a failed
 * call changes nothing.
 */

/* The two tables, as flags. */
enum store_table { STORE_INBOUND = 1, STORE_OUTBOUND = 2 };

/* The error for a database locked past the busy timeout: the original's two lines in one. */
#define STORE_BUSY_TEXT                                                                            \
    "Database is busy: database is locked (by another process, for more than 5 s). The daemon "    \
    "or another process is holding the lock. Try again."
_Static_assert(STORE_TOOL_BUSY_MS == 5000, "STORE_BUSY_TEXT says 5 s");

/* Longest state name we copy out, plus NUL. */
#define STORE_STATE_MAX 32

/*
 * The table a known state belongs to (STORE_INBOUND or STORE_OUTBOUND), and
 * in *active whether rows in it are still in the daemon's hands (pending,
 * sending, sent, received) rather than finished. 0 if the state is unknown.
 */
int store_state_table(const char *state, int *active);

/* The states of a table as text for messages, e.g. "pending, sending, sent, ...". */
const char *store_states_text(enum store_table table);

/* Sets *max to the largest row id in table (0 if it is empty). */
__attribute__((warn_unused_result)) enum store_rc
store_max_id(struct store *st, enum store_table table, int64_t *max, char *err, size_t errlen);

/*
 * sg-send: inserts a 'pending' outbound row (message_id may be NULL: the
 * daemon makes one) created now, for dst_addr and dst_port, or, if peer is
 * not NULL, for that peer (sg-send gives "" and 0 as dst_addr and dst_port
 * then, which the daemon ignores). Sets *rowid. STORE_DUP: another outbound
 * row has this message_id.
 */
__attribute__((warn_unused_result)) enum store_rc
store_enqueue(struct store *st, const char *message_id, const char *dst_addr, unsigned dst_port,
              const char *peer, const char *payload, size_t payload_len, int64_t now_ms,
              int64_t *rowid, char *err, size_t errlen);

/*
 * The state and last_error ("" if NULL) of outbound row rowid. *found is 0 if
 * the row is gone (state and why untouched).
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_state(struct store *st, int64_t rowid, int *found, char state[STORE_STATE_MAX],
                     char *why, size_t whylen, char *err, size_t errlen);

/*
 * sg-send --retry / --retry-failed: puts send_failed outbound rows back to
 * 'pending' (retry_count 0, last_error NULL, updated_at now): row rowid only,
 * or, with rowid 0, every one (only the peer's, if peer is not NULL). Their
 * message_id stays, so a peer that had stored a message stores it once, and
 * so does their sequence (a number once given stays that message's).
 * *changed gets how many rows changed.
 */
__attribute__((warn_unused_result)) enum store_rc
store_outbound_requeue(struct store *st, int64_t rowid, const char *peer, int64_t now_ms,
                       int *changed, char *err, size_t errlen);

#define STORE_MAX_ADDRS 4

/* Which rows store_select picks (sg-recv). Zero means "no condition" for each field. */
struct store_query {
    enum store_table table;
    const char *state;                 /* only rows in this state */
    const char *addr[STORE_MAX_ADDRS]; /* src_addr (inbound) or dst_addr (outbound),
                                          compared as text (TEXT or BLOB), is one of these */
    int unread_only;                   /* inbound: read_count = 0 */
    int64_t after_id;                  /* id > after_id */
    int64_t id;                        /* only this row id */
    const char *message_id;            /* only this message_id */
    int64_t limit;                     /* only the newest `limit` rows; 0 = all */
    int oldest_first; /* return them in id ascending order (else descending: newest first) */
    int mark;         /* inbound: read_count + 1 on every row returned */
    const char *peer; /* only rows of this peer (inbound: from it; outbound: to it) */
};

enum store_type { STORE_NULL, STORE_INT, STORE_REAL, STORE_TEXT, STORE_BLOB };

/*
 * A row picked by store_select: its id and, for an inbound row, its
 * read_count before the marking when that was a number (type STORE_INT or
 * STORE_REAL; any other type: the row's own value is shown).
 */
struct store_selected {
    int64_t id;
    enum store_type before_type;
    int64_t before_i;
    double before_r;
};

/*
 * Picks the rows q selects, in id order (newest first unless
 * q->oldest_first), and sets *out (malloc'd, NULL if none; the caller frees
 * it) and *n: unbounded, as sg-recv's limit 0 means every row, but only ids.
 * With q->mark (inbound only) the rows are claimed atomically: selected,
 * their read_count incremented and updated_at set to now (as the original
 * does, so that sg-clean ages a row from its last reading) in one write
 * transaction, so two readers never both get one unread row. The caller then
 * reads each row with store_fetch outside any transaction, and may write it
 * out as slowly as its reader takes it.
 */
__attribute__((warn_unused_result)) enum store_rc
store_select(struct store *st, const struct store_query *q, int64_t now_ms,
             struct store_selected **out, size_t *n, char *err, size_t errlen);

struct store_col {
    const char *name;
    enum store_type type;
    int64_t i;
    double r;
    const char *text; /* TEXT or BLOB bytes (not NUL-terminated for BLOB) */
    size_t len;
};

/*
 * One whole row: every column of its table, in table order, copied into
 * memory the record owns (it grows to the largest row read). Zero it before
 * the first use; free it with store_record_free.
 */
struct store_record {
    int64_t id;
    int ncols;
    struct store_col *col;
    int colcap;
    char *buf;
    size_t bufcap;
};
void store_record_free(struct store_record *rec);

/*
 * Reads the picked row c of table into rec; an inbound row's read_count is
 * shown as it was before the marking. Sets *found to 1, or to 0 (rec
 * untouched) if the row has been deleted since.
 */
__attribute__((warn_unused_result)) enum store_rc
store_fetch(struct store *st, enum store_table table, const struct store_selected *c,
            struct store_record *rec, int *found, char *err, size_t errlen);

/*
 * Undoes one marking of the picked inbound rows c[0..n) (read_count - 1,
 * never below 0; updated_at is set to now, as by every write), in one
 * transaction: for rows that were picked but could not be shown.
 */
__attribute__((warn_unused_result)) enum store_rc store_unmark(struct store *st,
                                                               const struct store_selected *c,
                                                               size_t n, int64_t now_ms, char *err,
                                                               size_t errlen);

/*
 * sg-clean: which rows of one table to delete. A row's age is its
 * updated_at, read as a date-time text (YYYY-MM-DD...); a row whose
 * updated_at is anything else (garbage, '', 'now', a bare number) has no
 * known age and is never deleted by age: store_purge_unreadable counts those.
 */
struct store_purge {
    enum store_table table;
    const char *before;        /* UTC text YYYY-MM-DDTHH:MM:SS.SSS: updated_at earlier than it */
    const char *const *states; /* only these states (NULL-terminated list), or NULL for any */
    int read_only;             /* inbound: only rows with read_count > 0 */
    const char *peer;          /* only rows of this peer (from it, to it), or NULL for any */
};

/* How many rows are in one state. */
struct store_state_count {
    char state[STORE_STATE_MAX]; /* "(null)" for NULL; cut to fit */
    int64_t n;
};

/*
 * Counts the rows p selects, by state (in state order): *out (malloc'd, NULL
 * if none; the caller frees it), *n states.
 */
__attribute__((warn_unused_result)) enum store_rc
store_purge_count(struct store *st, const struct store_purge *p, struct store_state_count **out,
                  size_t *n, char *err, size_t errlen);

/*
 * Every row of table, by state (in state order), as store_purge_count: for
 * status and /metrics. A scan of the state index: quick, but it grows with
 * the table.
 */
__attribute__((warn_unused_result)) enum store_rc store_count_states(struct store *st,
                                                                     enum store_table table,
                                                                     struct store_state_count **out,
                                                                     size_t *n);

/*
 * Sets *n to the rows p would select but for their age, whose updated_at is
 * not a timestamp (so they are kept whatever the cutoff).
 */
__attribute__((warn_unused_result)) enum store_rc
store_purge_unreadable(struct store *st, const struct store_purge *p, int64_t *n, char *err,
                       size_t errlen);

/*
 * Deletes the rows selected by p[0..n) in one write transaction and sets
 * deleted[k] to the rows deleted for p[k].
 */
__attribute__((warn_unused_result)) enum store_rc store_purge(struct store *st,
                                                              const struct store_purge *p, size_t n,
                                                              int64_t *deleted, char *err,
                                                              size_t errlen);

/* Gives the space of deleted rows back to the file system (SQLite: VACUUM, then a checkpoint). */
__attribute__((warn_unused_result)) enum store_rc store_vacuum(struct store *st, char *err,
                                                               size_t errlen);

/* ---- time as the store writes it ---- */

#define STORE_TIME_LEN 24 /* "YYYY-MM-DDTHH:MM:SS.SSS" and its NUL */

/* Formats ms since the epoch as YYYY-MM-DDTHH:MM:SS.SSS (UTC), the original's timestamps. */
void store_format_ms(int64_t ms, char out[STORE_TIME_LEN]);

/* Formats ns since the epoch as YYYY-MM-DDTHH:MM:SS.NNNNNNNNN (UTC): crypto_timestamp. */
void store_format_ns(uint64_t ns, char out[32]);

#endif
