/*
 * store_impl: what a backend implements, and the helpers store.c gives it.
 * Private to src/store/.
 *
 * A backend is a table of function pointers, versioned as SQLite's
 * sqlite3_io_methods is: a backend of version N fills every method up to
 * version N, and store.c calls a later method only when ops->version says it
 * is there. Each backend exports one function, its *_open, which allocates a
 * struct of its own that begins with struct store (so a struct store * is
 * its struct), sets base.ops, and fills *out.
 *
 * Methods get their arguments as store.h documents them, already checked:
 * n >= 0, rows buffers reset (n = 0, full = 0, no text used). A method sets
 * the reason for store_errmsg itself; the tools' err lines are written by
 * store.c from the result and that reason.
 */
#ifndef SG_STORE_IMPL_H
#define SG_STORE_IMPL_H

#include "store/store.h"

#define STORE_OPS_VERSION 6

struct store_ops {
    int version;
    const char *name; /* "sqlite", "postgresql" */

    /* Methods below are valid for version 1. */
    void (*close)(struct store *st);
    const char *(*errmsg)(const struct store *st);

    void (*set_budget)(struct store *st, int budget_ms);
    int (*timed_out)(const struct store *st);
    void (*write_stats)(const struct store *st, uint64_t *statements, uint64_t *rows);
    enum store_rc (*begin)(struct store *st);
    enum store_rc (*commit)(struct store *st);
    void (*rollback)(struct store *st);
    int (*tx_aborted)(const struct store *st);

    enum store_rc (*watch_start)(struct store *st, int fallback_ms, int64_t now_us);
    int (*watch_fd)(struct store *st);
    int64_t (*poll_due_us)(const struct store *st);
    enum store_rc (*poll)(struct store *st, int readable, int64_t now_us, int *changed);

    enum store_rc (*recover_sending)(struct store *st, int64_t now_ms, int *moved);
    enum store_rc (*outbound_pending)(struct store *st, int limit, struct store_rows *out);
    enum store_rc (*outbound_exclude)(struct store *st, const struct store_dest *dests, int n);
    enum store_rc (*outbound_skip)(struct store *st, const int64_t *rowids, int n);
    enum store_rc (*outbound_expire)(struct store *st, const struct store_dest *dest,
                                     int64_t older_than_ms, const char *why, int64_t now_ms,
                                     int *changed);
    enum store_rc (*outbound_payloads)(struct store *st, size_t max, struct store_rows *out);
    enum store_rc (*outbound_load_sent)(struct store *st, int64_t after, int limit, int64_t now_ms,
                                        struct store_rows *out);
    enum store_rc (*outbound_get_sent)(struct store *st, int64_t rowid, size_t max,
                                       struct store_rows *out);
    enum store_rc (*outbound_take)(struct store *st, int64_t rowid, const char *message_id,
                                   const char *payload, size_t payload_len, int64_t sequence,
                                   int64_t now_ms);
    enum store_rc (*outbound_sent)(struct store *st, const struct store_sent *v, int n,
                                   int64_t now_ms, int *done);
    enum store_rc (*outbound_failed)(struct store *st, const struct store_sent *v, int n,
                                     int64_t now_ms, int *done);
    enum store_rc (*outbound_acked)(struct store *st, const int64_t *rowids, int n, int64_t now_ms,
                                    int *matched, int *done);
    enum store_rc (*outbound_claim)(struct store *st, int limit, int64_t now_ms,
                                    struct store_rows *out);
    enum store_rc (*outbound_identify)(struct store *st, int64_t rowid, const char *message_id,
                                       const char *payload, size_t payload_len, int64_t now_ms);
    enum store_rc (*outbound_release)(struct store *st, const int64_t *rowids, int n,
                                      int64_t now_ms);

    enum store_rc (*inbound_insert)(struct store *st, const struct store_inbound *m, int n,
                                    int64_t now_ms, enum store_in_result *res, int64_t *rowids,
                                    int *done);
    enum store_rc (*inbound_ack_sent)(struct store *st, const char *const *ids, int n,
                                      int64_t now_ms, int *done);
    enum store_rc (*inbound_ack_sent_rows)(struct store *st, const int64_t *rowids, int n,
                                           int64_t now_ms, int *done);
    enum store_rc (*inbound_ack_failed)(struct store *st, const char *const *ids, int n,
                                        int64_t now_ms, int *done);
    enum store_rc (*inbound_unacked)(struct store *st, int64_t after, int limit,
                                     struct store_rows *out);

    enum store_rc (*max_id)(struct store *st, enum store_table table, int64_t *max);
    enum store_rc (*enqueue)(struct store *st, const char *message_id, const char *dst_addr,
                             unsigned dst_port, const char *peer, const char *payload,
                             size_t payload_len, int64_t now_ms, int64_t *rowid);
    enum store_rc (*outbound_state)(struct store *st, int64_t rowid, int *found,
                                    char state[STORE_STATE_MAX], char *why, size_t whylen);
    enum store_rc (*select)(struct store *st, const struct store_query *q, int64_t now_ms,
                            struct store_selected **out, size_t *n);
    enum store_rc (*fetch)(struct store *st, enum store_table table, const struct store_selected *c,
                           struct store_record *rec, int *found);
    enum store_rc (*unmark)(struct store *st, const struct store_selected *c, size_t n,
                            int64_t now_ms);
    enum store_rc (*purge_count)(struct store *st, const struct store_purge *p,
                                 struct store_state_count **out, size_t *n);
    enum store_rc (*purge_unreadable)(struct store *st, const struct store_purge *p, int64_t *n);
    enum store_rc (*purge)(struct store *st, const struct store_purge *p, size_t n,
                           int64_t *deleted);
    enum store_rc (*vacuum)(struct store *st);

    /* Methods below are valid for version 2 (issue 11: rows for peers). */
    enum store_rc (*outbound_exclude_peers)(struct store *st, const char *const *peers, int n);
    enum store_rc (*outbound_expire_peer)(struct store *st, const char *peer, int64_t older_than_ms,
                                          const char *why, int64_t now_ms, int *changed);

    /* Methods below are valid for version 3 (issue 12: sg-send --retry). */
    enum store_rc (*outbound_requeue)(struct store *st, int64_t rowid, const char *peer,
                                      int64_t now_ms, int *changed);

    /* Methods below are valid for version 4 (sequence numbers: each peer's last one). */
    enum store_rc (*sequence_load)(struct store *st, const char *after, struct store_sequence *out,
                                   int cap, int *n);
    enum store_rc (*sequence_save)(struct store *st, const char *peer, int64_t last);

    /* Methods below are valid for version 5 (issue 13: what operators see). */
    int64_t (*journal_bytes)(const struct store *st);
    enum store_rc (*count_states)(struct store *st, enum store_table table,
                                  struct store_state_count **out, size_t *n);

    /*
     * Methods below are valid for version 6 (issue 14: fleets). Each may be
     * NULL: store.c then does its work one row at a time.
     */
    enum store_rc (*outbound_take_set)(struct store *st, const struct store_take *v, int n,
                                       int64_t now_ms, int *failed);
};

struct store {
    const struct store_ops *ops;
};

/* The backends. */
enum store_rc store_sqlite_open(const char *path, enum store_open_mode mode, int busy_ms,
                                struct store **out, char *err, size_t errlen);
/* location: a libpq URI, postgresql://... or postgres://... (src/store/pg.c). */
enum store_rc store_pg_open(const char *location, enum store_open_mode mode, int busy_ms,
                            struct store **out, char *err, size_t errlen);

/* ---- helpers for backends (store.c) ---- */

/*
 * Appends a copy of one row to r: strings cut to STORE_FIELD_MAX bytes (the
 * payload whole; a longer peer name becomes STORE_BAD_TEXT). Returns 0, or -1
 * (and sets r->full) when it does not fit.
 */
int store_rows_add_out(struct store_rows *r, const struct store_outbound_row *row);
int store_rows_add_in(struct store_rows *r, const struct store_inbound_row *row);

/* Room for len bytes and a NUL in r's text (the caller fills it), or NULL when it does not fit. */
char *store_rows_reserve(struct store_rows *r, size_t len);

/*
 * Fills rec with copies of the n columns of cols (whose pointers need be
 * valid only during the call). Returns 0, or -1 out of memory.
 */
int store_record_fill(struct store_record *rec, int64_t id, const struct store_col *cols, int n);

#endif
