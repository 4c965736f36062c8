/*
 * store_admin: the tools' SQL (sg-send, sg-recv, sg-clean), over the same
 * connection as the daemon's (store_open with STORE_EXISTING and
 * STORE_TOOL_BUSY_MS), so the tools cannot disagree with it about the schema.
 *
 * Every function that can fail returns STORE_OK, STORE_BUSY (another process
 * kept the database locked for longer than the busy timeout), STORE_DUP (a
 * unique index refused the row) or STORE_ERR, and on failure writes one line
 * into err: for STORE_BUSY it starts with "database is busy". A function that
 * opens a transaction rolls it back before it returns a failure, so a failed
 * call changes nothing.
 */
#ifndef SG_STORE_ADMIN_H
#define SG_STORE_ADMIN_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* The two tables, as flags. */
enum store_admin_table { STORE_ADMIN_INBOUND = 1, STORE_ADMIN_OUTBOUND = 2 };

/* Longest state name we copy out, plus NUL. */
#define STORE_ADMIN_STATE_MAX 32

/* ---- states ---- */

/*
 * The table a known state belongs to (STORE_ADMIN_INBOUND or _OUTBOUND), and
 * in *active whether rows in it are still in the daemon's hands (pending,
 * sending, sent, received) rather than finished. 0 if the state is unknown.
 */
int store_admin_state_table(const char *state, int *active);

/* The states of a table as text for messages, e.g. "pending, sending, sent, ...". */
const char *store_admin_states_text(enum store_admin_table table);

/* ---- sg-send ---- */

/*
 * Inserts a 'pending' outbound row (message_id may be NULL: the daemon makes
 * one). Sets *rowid. STORE_DUP: another outbound row has this message_id.
 */
__attribute__((warn_unused_result)) enum store_rc
store_admin_enqueue(struct store *st, const char *message_id, const char *dst_addr,
                    unsigned dst_port, const char *payload, size_t payload_len, int64_t *rowid,
                    char *err, size_t errlen);

/*
 * The state and last_error ("" if NULL) of outbound row rowid. *found is 0 if
 * the row is gone (state and why untouched).
 */
__attribute__((warn_unused_result)) enum store_rc
store_admin_outbound_state(struct store *st, int64_t rowid, int *found,
                           char state[STORE_ADMIN_STATE_MAX], char *why, size_t whylen, char *err,
                           size_t errlen);

/* ---- sg-recv ---- */

#define STORE_ADMIN_MAX_ADDRS 4

/* Which rows store_admin_list returns. Zero means "no condition" for each field. */
struct store_admin_query {
    enum store_admin_table table;
    const char *state;                       /* only rows in this state */
    const char *addr[STORE_ADMIN_MAX_ADDRS]; /* src_addr (inbound) or dst_addr (outbound),
                                                compared as text (TEXT or BLOB), is one of these */
    int unread_only;                         /* inbound: read_count = 0 */
    int64_t after_id;                        /* id > after_id */
    int64_t id;                              /* only this row id */
    const char *message_id;                  /* only this message_id */
    int64_t limit;                           /* only the newest `limit` rows; 0 = all */
    int oldest_first;                        /* return them in id ascending order (else
                                                descending: newest first) */
    int mark;                                /* inbound: read_count + 1 on every row returned */
};

enum store_admin_type {
    STORE_ADMIN_NULL,
    STORE_ADMIN_INT,
    STORE_ADMIN_REAL,
    STORE_ADMIN_TEXT,
    STORE_ADMIN_BLOB,
};

struct store_admin_col {
    const char *name;
    enum store_admin_type type;
    int64_t i;
    double r;
    const char *text; /* TEXT or BLOB bytes (not NUL-terminated for BLOB) */
    size_t len;
};

/* One row: every column of its table, in table order. Valid only during the callback. */
struct store_admin_row {
    int64_t id;
    int ncols;
    const struct store_admin_col *col;
};

/* Called once per row; it must not use the database (the query is still running). */
typedef void (*store_admin_row_fn)(void *ctx, const struct store_admin_row *row);

/*
 * Calls fn for each row that q selects, in id order (newest first unless
 * q->oldest_first), and sets *nrows. With q->mark (inbound only) the rows are
 * claimed atomically: selected and their read_count incremented in one
 * IMMEDIATE transaction, so two readers never both get one unread row; the
 * rows passed to fn show read_count as it was before. If the call then fails,
 * nothing was marked and the caller must drop whatever fn collected.
 */
__attribute__((warn_unused_result)) enum store_rc
store_admin_list(struct store *st, const struct store_admin_query *q, store_admin_row_fn fn,
                 void *ctx, int64_t *nrows, char *err, size_t errlen);

/*
 * Undoes one marking of the inbound rows ids[0..n) (read_count - 1, never
 * below 0), in one transaction: for rows that were claimed but could not be
 * shown.
 */
__attribute__((warn_unused_result)) enum store_rc
store_admin_unmark(struct store *st, const int64_t *ids, size_t n, char *err, size_t errlen);

/* ---- sg-clean ---- */

/* Which rows of one table to delete. */
struct store_admin_purge {
    enum store_admin_table table;
    const char *before;        /* UTC text YYYY-MM-DDTHH:MM:SS.SSS: updated_at earlier than it */
    const char *const *states; /* only these states (NULL-terminated list), or NULL for any */
    int read_only;             /* inbound: only rows with read_count > 0 */
};

/* Called once per state with the number of matching rows in it (states in name order). */
typedef void (*store_admin_count_fn)(void *ctx, const char *state, int64_t n);

/* Counts the rows p selects, by state. */
__attribute__((warn_unused_result)) enum store_rc
store_admin_purge_count(struct store *st, const struct store_admin_purge *p,
                        store_admin_count_fn fn, void *ctx, char *err, size_t errlen);

/*
 * Deletes the rows selected by p[0..n) in one IMMEDIATE transaction and sets
 * deleted[k] to the rows deleted for p[k].
 */
__attribute__((warn_unused_result)) enum store_rc
store_admin_purge(struct store *st, const struct store_admin_purge *p, size_t n, int64_t *deleted,
                  char *err, size_t errlen);

/* VACUUM, then a TRUNCATE checkpoint (best effort) so the files shrink. */
__attribute__((warn_unused_result)) enum store_rc store_admin_vacuum(struct store *st, char *err,
                                                                     size_t errlen);

#endif
