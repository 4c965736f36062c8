/*
 * store_admin: the tools' SQL (sg-send, sg-recv, sg-clean), over the same
 * connection as the daemon's (store_open with STORE_EXISTING and
 * STORE_TOOL_BUSY_MS), so the tools cannot disagree with it about the schema.
 *
 * Every function that can fail returns STORE_OK, STORE_BUSY (another process
 * kept the database locked for longer than the busy timeout), STORE_DUP (a
 * unique index refused the row) or STORE_ERR, and on failure writes one line
 * into err: for STORE_BUSY it is STORE_ADMIN_BUSY_TEXT, else it starts with
 * "Database error: " (the original's wording, which scripts look for). A
 * function that opens a transaction rolls it back before it returns a
 * failure, so a failed call changes nothing.
 */
#ifndef SG_STORE_ADMIN_H
#define SG_STORE_ADMIN_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* The two tables, as flags. */
enum store_admin_table { STORE_ADMIN_INBOUND = 1, STORE_ADMIN_OUTBOUND = 2 };

/* The error for a database locked past the busy timeout: the original's two lines in one. */
#define STORE_ADMIN_BUSY_TEXT                                                                      \
    "Database is busy: database is locked (by another process, for more than 5 s). The daemon "    \
    "or another process is holding the lock. Try again."
_Static_assert(STORE_TOOL_BUSY_MS == 5000, "STORE_ADMIN_BUSY_TEXT says 5 s");

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

/* Which rows store_admin_claim picks. Zero means "no condition" for each field. */
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

/* Called once per row; it must not use the database (the row is still being read). */
typedef void (*store_admin_row_fn)(void *ctx, const struct store_admin_row *row);

/*
 * A row picked by store_admin_claim: its id and, for an inbound row, its
 * read_count before the claim when that was a number (type STORE_ADMIN_INT or
 * STORE_ADMIN_REAL; any other type: the row's own value is shown).
 */
struct store_admin_claimed {
    int64_t id;
    enum store_admin_type before_type;
    int64_t before_i;
    double before_r;
};

/*
 * Picks the rows q selects, in id order (newest first unless
 * q->oldest_first), and sets *out (malloc'd, NULL if none; the caller frees
 * it) and *n. With q->mark (inbound only) the rows are claimed atomically:
 * selected, their read_count incremented and updated_at set to now (as the
 * original does, so that sg-clean ages a row from its last reading) in one
 * IMMEDIATE transaction, so two readers never both get one unread row. Only
 * ids and read counts are read here, so the write lock is held briefly
 * whatever the rows hold; the caller then reads each row with
 * store_admin_fetch outside any transaction, and may write it out as slowly
 * as its reader takes it.
 */
__attribute__((warn_unused_result)) enum store_rc
store_admin_claim(struct store *st, const struct store_admin_query *q,
                  struct store_admin_claimed **out, size_t *n, char *err, size_t errlen);

/*
 * Reads the picked row c of table and calls fn once with every column of it;
 * an inbound row's read_count is shown as it was before the claim. Sets
 * *found to 1, or to 0 (fn not called) if the row has been deleted since.
 */
__attribute__((warn_unused_result)) enum store_rc
store_admin_fetch(struct store *st, enum store_admin_table table,
                  const struct store_admin_claimed *c, store_admin_row_fn fn, void *ctx, int *found,
                  char *err, size_t errlen);

/* Sets *max to the largest row id in table (0 if it is empty). */
__attribute__((warn_unused_result)) enum store_rc store_admin_max_id(struct store *st,
                                                                     enum store_admin_table table,
                                                                     int64_t *max, char *err,
                                                                     size_t errlen);

/*
 * Undoes one marking of the claimed inbound rows c[0..n) (read_count - 1,
 * never below 0; updated_at is set to now, as by every write), in one
 * transaction: for rows that were claimed but could not be shown.
 */
__attribute__((warn_unused_result)) enum store_rc
store_admin_unmark(struct store *st, const struct store_admin_claimed *c, size_t n, char *err,
                   size_t errlen);

/* ---- sg-clean ---- */

/*
 * Which rows of one table to delete. A row's age is its updated_at, read as
 * julianday() reads it when it is a date-time text (YYYY-MM-DD...); a row
 * whose updated_at is anything else (garbage, '', 'now', a bare number) has
 * no known age and is never deleted by age: store_admin_purge_unreadable
 * counts those.
 */
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
 * Sets *n to the rows p would select but for their age, whose updated_at is
 * not a timestamp (so they are kept whatever the cutoff).
 */
__attribute__((warn_unused_result)) enum store_rc
store_admin_purge_unreadable(struct store *st, const struct store_admin_purge *p, int64_t *n,
                             char *err, size_t errlen);

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
