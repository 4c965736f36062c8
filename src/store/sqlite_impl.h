/*
 * sqlite_impl: the SQLite backend's own header, shared by sqlite.c (the
 * connection, its one statement cache, transactions), sqlite_open.c (opening,
 * and refusing what is not ours), sqlite_queue.c (the daemon's rows),
 * sqlite_set.c (several rows in one statement), sqlite_admin.c (the tools'
 * queries) and sqlite_watch.c (noticing other connections' commits). Not for
 * other modules.
 */
#ifndef SG_SQLITE_IMPL_H
#define SG_SQLITE_IMPL_H

#include "store/store_impl.h"

#include <sqlite3.h>
#include <sys/types.h>

/* Every fixed statement of the backend: one cache, indexed by these (texts in sqlite.c). */
enum sq_query {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_DATA_VERSION,
    Q_PENDING,
    Q_PENDING_ALL,
    Q_PENDING_PEERS,
    Q_LOAD_SENT,
    Q_GET_SENT,
    Q_TAKE,
    Q_SENT,
    Q_FAILED,
    Q_ACKED,
    Q_SENT_SET,
    Q_FAILED_SET,
    Q_ACKED_SET,
    Q_CLAIM,
    Q_IDENTIFY,
    Q_RELEASE,
    Q_TRIGGERS,
    Q_RECOVER,
    Q_EXPIRE,
    Q_EXPIRE_PEER,
    Q_EXCLUDE_CLEAR,
    Q_EXCLUDE_ADD,
    Q_EXCLUDE_PEER_CLEAR,
    Q_EXCLUDE_PEER_ADD,
    Q_SKIP_ADD,
    Q_IN_INSERT,
    Q_IN_INSERT_SELF,
    Q_IN_EXISTS,
    Q_IN_ACK_SENT,
    Q_IN_ACK_FAILED,
    Q_IN_ACK_SENT_SET,
    Q_IN_ACK_SENT_ROW,
    Q_IN_ACK_SENT_ROW_SET,
    Q_IN_ACK_FAILED_SET,
    Q_IN_UNACKED,
    Q_ENQUEUE,
    Q_OUT_STATE,
    Q_REQUEUE,
    Q_MARK,
    Q_UNMARK,
    Q_FETCH_IN,
    Q_FETCH_OUT,
    Q_MAX_IN,
    Q_MAX_OUT,
    Q_SEQ_LOAD,
    Q_SEQ_SAVE,
    Q_COUNT
};

/* The watch (sqlite_watch.c): inotify on the -wal, confirmed by PRAGMA data_version. */
struct sq_watch {
    int started;
    int fd;    /* inotify, or -1 */
    int tried; /* the inotify watch was tried (it is made at the first store_watch_fd) */
    int64_t fallback_us;
    int64_t version;
    int64_t event_at; /* us */
    int settle_step;
    int64_t next_check; /* us */
};

struct sq_ckpt;

struct sq {
    struct store base;
    sqlite3 *db;
    sqlite3_stmt *stmt[Q_COUNT]; /* prepared on first use */
    char why[256];               /* why the last call failed, when SQLite's own message is not it */
    char path[4096];
    dev_t wal_dev; /* the -wal opened, to notice it being removed or replaced */
    ino_t wal_ino; /* (0 until it exists) */
    int budget_ms;
    int64_t deadline; /* CLOCK_MONOTONIC ms: the open transaction's budget ends */
    int timed_out;
    uint64_t writes;  /* statements that wrote, run to the end (store_write_stats) */
    int in_tx;        /* store_begin succeeded, and neither commit nor rollback came since */
    int blocked;      /* temp.sg_blocked may hold rows */
    int blocked_peer; /* temp.sg_blocked_peer may hold rows */
    int skipped;      /* temp.sg_skip may hold rows */
    struct sq_watch watch;
    struct sq_ckpt *ckpt; /* the daemon's checkpoint thread (sqlite_ckpt.c), or NULL */
};

/*
 * sqlite_ckpt.c: from now on the -wal is checkpointed by a thread with a
 * connection of its own, not by b's commits (for the daemon: STORE_CREATE).
 * Returns 0, or -1 with one line in err. sq_ckpt_stop ends it (none: fine).
 */
int sq_ckpt_start(struct sq *b, char *err, size_t errlen);
void sq_ckpt_stop(struct sq *b);

static inline struct sq *sq_of(struct store *st)
{
    return (struct sq *)st;
}

static inline const struct sq *sq_const(const struct store *st)
{
    return (const struct sq *)st;
}

/*
 * sqlite_open.c: the file at path, looked at before SQLite opens it (STORE_OK,
 * or the refusal with err written); then the connection b->db set up, or
 * refused (SQLITE_OK, or the failing code with err written).
 */
enum store_rc sq_check_file(const char *path, enum store_open_mode mode, char *err, size_t errlen);
int sq_setup(struct sq *b, const char *path, enum store_open_mode mode, int busy_ms, char *err,
             size_t errlen);

/* The cached statement q (reset, bindings cleared), or NULL (the reason kept). */
sqlite3_stmt *sq_stmt(struct sq *b, enum sq_query q);

/*
 * Maps an (extended) SQLite result code to a store_rc: STORE_OK for
 * DONE/ROW/OK, STORE_BUSY for BUSY/LOCKED/INTERRUPT, STORE_DUP for a UNIQUE
 * or PRIMARY KEY conflict, STORE_REFUSED for other constraints (CHECK, NOT
 * NULL, a trigger's RAISE), a too big or mismatched value, else STORE_ERR.
 */
enum store_rc sq_rc_of(int rc);

/*
 * The one step helper: steps s (NULL: a statement that could not be
 * prepared) and sets *row to 1 for a row, 0 when done. A failure resets s,
 * keeps SQLite's reason for store_errmsg and returns its store_rc (never
 * STORE_OK). The caller resets s once done with its rows.
 */
enum store_rc sq_step(struct sq *b, sqlite3_stmt *s, int *row);

/* Steps a statement that returns no rows, then resets it. */
enum store_rc sq_run(struct sq *b, sqlite3_stmt *s);

/* Records a failure of a call that did not step (rc: SQLite's code). */
enum store_rc sq_fail(struct sq *b, int rc);

/* Binds the time now_ms, as the store writes it, to parameter i of s. */
void sq_bind_time(sqlite3_stmt *s, int i, int64_t now_ms);

/* sq_run, and *changed (if not NULL) gets the rows the statement changed. */
enum store_rc sq_run_counting(struct sq *b, sqlite3_stmt *s, int *changed);

/*
 * Reads the columns every outbound row query starts with (id, message_id,
 * dst_addr, dst_port, retry_count, checked port, peer, sequence) into *r; the
 * rest zeroed. The strings are valid until s steps again.
 */
void sq_outbound_columns(sqlite3_stmt *s, struct store_outbound_row *r);

/* A sequence column: its value if it is an integer above 0, else 0 (NULL, or a script's junk). */
int64_t sq_sequence_col(sqlite3_stmt *s, int col);

/*
 * Runs q (Q_TAKE or Q_IDENTIFY: rowid, message_id, payload or NULL to keep the
 * row's, now, and for Q_TAKE the sequence, 0 to keep the row's) on one row.
 * STORE_REFUSED, saying "<nothing> changed nothing", if it changed no row (a
 * trigger's RAISE(IGNORE), or the row moved on).
 */
enum store_rc sq_write_identity(struct sq *b, enum sq_query q, int64_t rowid,
                                const char *message_id, const char *payload, size_t payload_len,
                                int64_t sequence, int64_t now_ms, const char *nothing);

/* A text column, dflt if NULL, STORE_BAD_TEXT if it has a NUL byte inside (a script's BLOB). */
const char *sq_text_or(sqlite3_stmt *s, int col, const char *dflt);

/* 1 (the reason kept) if the database file or its -wal was removed or replaced since opened. */
int sq_file_replaced(struct sq *b);

/* CLOCK_MONOTONIC in milliseconds / microseconds. */

/*
 * sqlite_set.c: 1 if n rows of table may change in one statement (n > 1, no
 * trigger on it); 1 if no rowid comes twice in v[0..n). Then the set
 * statement q over the rows: changes (rowid, retry_count, why), rowids
 * (*changed, if not NULL, gets the count) or message_ids, at now_ms.
 */
int sq_set_allowed(struct sq *b, const char *table, int n);
int sq_rowids_unique(const struct store_sent *v, int n);
enum store_rc sq_set_changes(struct sq *b, enum sq_query q, const struct store_sent *v, int n,
                             int64_t now_ms);
enum store_rc sq_set_rowids(struct sq *b, enum sq_query q, const int64_t *rowids, int n,
                            int64_t now_ms, int *changed);
enum store_rc sq_set_message_ids(struct sq *b, enum sq_query q, const char *const *ids, int n,
                                 int64_t now_ms);

/* The methods of sqlite_queue.c. */
enum store_rc sq_recover_sending(struct store *st, int64_t now_ms, int *moved);
enum store_rc sq_outbound_pending(struct store *st, int limit, struct store_rows *out);
enum store_rc sq_outbound_exclude(struct store *st, const struct store_dest *dests, int n);
enum store_rc sq_outbound_exclude_peers(struct store *st, const char *const *peers, int n);
enum store_rc sq_outbound_skip(struct store *st, const int64_t *rowids, int n);
enum store_rc sq_outbound_expire(struct store *st, const struct store_dest *dest,
                                 int64_t older_than_ms, const char *why, int64_t now_ms,
                                 int *changed);
enum store_rc sq_outbound_expire_peer(struct store *st, const char *peer, int64_t older_than_ms,
                                      const char *why, int64_t now_ms, int *changed);
enum store_rc sq_outbound_payloads(struct store *st, size_t max, struct store_rows *out);
enum store_rc sq_outbound_load_sent(struct store *st, int64_t after, int limit, int64_t now_ms,
                                    struct store_rows *out);
enum store_rc sq_outbound_get_sent(struct store *st, int64_t rowid, size_t max,
                                   struct store_rows *out);
enum store_rc sq_outbound_take(struct store *st, int64_t rowid, const char *message_id,
                               const char *payload, size_t payload_len, int64_t sequence,
                               int64_t now_ms);
enum store_rc sq_outbound_sent(struct store *st, const struct store_sent *v, int n, int64_t now_ms,
                               int *done);
enum store_rc sq_outbound_failed(struct store *st, const struct store_sent *v, int n,
                                 int64_t now_ms, int *done);
enum store_rc sq_outbound_acked(struct store *st, const int64_t *rowids, int n, int64_t now_ms,
                                int *matched, int *done);
enum store_rc sq_inbound_insert(struct store *st, const struct store_inbound *m, int n,
                                int64_t now_ms, enum store_in_result *res, int64_t *rowids,
                                int *done);
enum store_rc sq_inbound_ack_sent(struct store *st, const char *const *ids, int n, int64_t now_ms,
                                  int *done);
enum store_rc sq_inbound_ack_sent_rows(struct store *st, const int64_t *rowids, int n,
                                       int64_t now_ms, int *done);
enum store_rc sq_inbound_ack_failed(struct store *st, const char *const *ids, int n, int64_t now_ms,
                                    int *done);
enum store_rc sq_inbound_unacked(struct store *st, int64_t after, int limit,
                                 struct store_rows *out);
enum store_rc sq_sequence_load(struct store *st, const char *after, struct store_sequence *out,
                               int cap, int *n);
enum store_rc sq_sequence_save(struct store *st, const char *peer, int64_t last);

/* The methods of sqlite_set.c. */
enum store_rc sq_outbound_claim(struct store *st, int limit, int64_t now_ms,
                                struct store_rows *out);
enum store_rc sq_outbound_identify(struct store *st, int64_t rowid, const char *message_id,
                                   const char *payload, size_t payload_len, int64_t now_ms);
enum store_rc sq_outbound_release(struct store *st, const int64_t *rowids, int n, int64_t now_ms);

/* The methods of sqlite_admin.c. */
enum store_rc sq_max_id(struct store *st, enum store_table table, int64_t *max);
enum store_rc sq_outbound_requeue(struct store *st, int64_t rowid, const char *peer, int64_t now_ms,
                                  int *changed);
enum store_rc sq_enqueue(struct store *st, const char *message_id, const char *dst_addr,
                         unsigned dst_port, const char *peer, const char *payload,
                         size_t payload_len, int64_t now_ms, int64_t *rowid);
enum store_rc sq_outbound_state(struct store *st, int64_t rowid, int *found,
                                char state[STORE_STATE_MAX], char *why, size_t whylen);
enum store_rc sq_select(struct store *st, const struct store_query *q, int64_t now_ms,
                        struct store_selected **out, size_t *n);
enum store_rc sq_fetch(struct store *st, enum store_table table, const struct store_selected *c,
                       struct store_record *rec, int *found);
enum store_rc sq_unmark(struct store *st, const struct store_selected *c, size_t n, int64_t now_ms);
enum store_rc sq_purge_count(struct store *st, const struct store_purge *p,
                             struct store_state_count **out, size_t *n);
enum store_rc sq_count_states(struct store *st, enum store_table table,
                              struct store_state_count **out, size_t *n);
enum store_rc sq_purge_unreadable(struct store *st, const struct store_purge *p, int64_t *n);
enum store_rc sq_purge(struct store *st, const struct store_purge *p, size_t n, int64_t *deleted);
enum store_rc sq_vacuum(struct store *st);

/* The methods of sqlite_watch.c. */
enum store_rc sq_watch_start(struct store *st, int fallback_ms, int64_t now_us);
int sq_watch_fd(struct store *st);
int64_t sq_poll_due_us(const struct store *st);
enum store_rc sq_poll(struct store *st, int readable, int64_t now_us, int *changed);
void sq_watch_close(struct sq *b);

#endif
