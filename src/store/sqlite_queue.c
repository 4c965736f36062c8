/*
 * sqlite_queue: the SQLite backend's rows for the daemon. Each method binds
 * one cached statement (sqlite.c) and steps it with sq_step; rows are copied
 * into the caller's struct store_rows before the statement is reset, so no
 * statement is left open behind a row the caller holds.
 *
 * A change of several rows runs as one statement (sqlite_set.c) when that
 * is allowed, and one row at a time when it is not or when the statement was
 * refused: the outcome is always that of one row at a time.
 */
#include "store/sqlite_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum store_rc sq_recover_sending(struct store *st, int64_t now_ms, int *moved)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_RECOVER);
    if (s != NULL)
        sq_bind_time(s, 1, now_ms);
    return sq_run_counting(b, s, moved);
}

void sq_outbound_columns(sqlite3_stmt *s, struct store_outbound_row *r)
{
    memset(r, 0, sizeof *r);
    r->rowid = sqlite3_column_int64(s, 0);
    r->message_id = (const char *)sqlite3_column_text(s, 1);
    r->dst_addr = sq_text_or(s, 2, "");
    r->dst_port_text = sq_text_or(s, 3, "");
    r->retry_count = sqlite3_column_int64(s, 4);
    if (r->retry_count < 0)
        r->retry_count = 0; /* a script's negative count would buy endless retries */
    r->dst_port = sqlite3_column_int64(s, 5);
    r->peer = sq_text_or(s, 6, NULL);
    r->sequence = sq_sequence_col(s, 7);
    r->created_ms = sqlite3_column_int64(s, 8); /* NULL reads as 0 */
}

int64_t sq_sequence_col(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) != SQLITE_INTEGER)
        return 0;
    int64_t v = sqlite3_column_int64(s, col);
    return v > 0 ? v : 0;
}

/*
 * Steps s, copying each outbound row into out. Columns: id, message_id,
 * dst_addr, dst_port, retry_count, checked port, peer, sequence, created_ms, then age_ms
 * and payload where the query has them (a payload over max is left out:
 * NULL, its size).
 */
static enum store_rc outbound_rows(struct sq *b, sqlite3_stmt *s, size_t max,
                                   struct store_rows *out)
{
    int row, ncols = s != NULL ? sqlite3_column_count(s) : 0;
    enum store_rc rc;
    while ((rc = sq_step(b, s, &row)) == STORE_OK && row) {
        struct store_outbound_row r;
        sq_outbound_columns(s, &r);
        if (ncols > 9)
            r.age_ms = sqlite3_column_int64(s, 9);
        if (ncols > 10) {
            r.payload = sq_text_or(s, 10, "");
            r.payload_len = strlen(r.payload);
            if (r.payload_len > max)
                r.payload = NULL;
        }
        if (store_rows_add_out(out, &r) != 0)
            break; /* no room: the rest waits for the next call */
    }
    if (rc == STORE_OK)
        sqlite3_reset(s);
    return rc;
}

enum store_rc sq_outbound_pending(struct store *st, int limit, struct store_rows *out)
{
    struct sq *b = sq_of(st);
    /* Nothing left out: the plain query, without two look-ups per row. */
    sqlite3_stmt *s = sq_stmt(b, b->blocked_peer            ? Q_PENDING_PEERS
                                 : b->blocked || b->skipped ? Q_PENDING
                                                            : Q_PENDING_ALL);
    if (s != NULL)
        sqlite3_bind_int(s, 1, limit);
    return outbound_rows(b, s, 0, out);
}

enum store_rc sq_outbound_expire(struct store *st, const struct store_dest *dest,
                                 int64_t older_than_ms, const char *why, int64_t now_ms,
                                 int *changed)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_EXPIRE);
    if (s != NULL) {
        char cutoff[STORE_TIME_LEN];
        store_format_ms(now_ms - older_than_ms, cutoff);
        sqlite3_bind_text(s, 1, dest->addr, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, dest->port);
        sqlite3_bind_text(s, 3, cutoff, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 4, why, -1, SQLITE_STATIC);
        sq_bind_time(s, 5, now_ms);
    }
    return sq_run_counting(b, s, changed);
}

enum store_rc sq_outbound_expire_peer(struct store *st, const char *peer, int64_t older_than_ms,
                                      const char *why, int64_t now_ms, int *changed)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_EXPIRE_PEER);
    if (s != NULL) {
        char cutoff[STORE_TIME_LEN];
        store_format_ms(now_ms - older_than_ms, cutoff);
        sqlite3_bind_text(s, 1, peer, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, cutoff, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 3, why, -1, SQLITE_STATIC);
        sq_bind_time(s, 4, now_ms);
    }
    return sq_run_counting(b, s, changed);
}

enum store_rc sq_outbound_exclude(struct store *st, const struct store_dest *dests, int n)
{
    struct sq *b = sq_of(st);
    enum store_rc rc = sq_run(b, sq_stmt(b, Q_EXCLUDE_CLEAR));
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *s = sq_stmt(b, Q_EXCLUDE_ADD);
        if (s != NULL) {
            sqlite3_bind_text(s, 1, dests[i].addr, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, dests[i].port);
        }
        rc = sq_run(b, s);
    }
    b->blocked = rc != STORE_OK || n > 0; /* after a failure, what is left is not known */
    return rc;
}

enum store_rc sq_outbound_exclude_peers(struct store *st, const char *const *peers, int n)
{
    struct sq *b = sq_of(st);
    enum store_rc rc = sq_run(b, sq_stmt(b, Q_EXCLUDE_PEER_CLEAR));
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *s = sq_stmt(b, Q_EXCLUDE_PEER_ADD);
        if (s != NULL)
            sqlite3_bind_text(s, 1, peers[i], -1, SQLITE_STATIC);
        rc = sq_run(b, s);
    }
    b->blocked_peer = rc != STORE_OK || n > 0; /* as for destinations */
    return rc;
}

enum store_rc sq_outbound_skip(struct store *st, const int64_t *rowids, int n)
{
    struct sq *b = sq_of(st);
    enum store_rc rc = STORE_OK;
    b->skipped |= n > 0; /* the set is never emptied */
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *s = sq_stmt(b, Q_SKIP_ADD);
        if (s != NULL)
            sqlite3_bind_int64(s, 1, rowids[i]);
        rc = sq_run(b, s);
    }
    return rc;
}

/*
 * Incremental blob I/O, one handle for the whole batch, moved from row to
 * row: opening a handle prepares a statement (as costly as the claim's
 * UPDATE), moving it is a seek. sqlite3_blob_bytes() reads the size from the
 * record header, so a payload of gigabytes is refused without being read. A
 * handle whose row failed is spent: the next row opens another.
 */
enum store_rc sq_outbound_payloads(struct store *st, size_t max, struct store_rows *out)
{
    struct sq *b = sq_of(st);
    b->why[0] = '\0';
    sqlite3_blob *blob = NULL;
    enum store_rc r = STORE_OK;
    for (int i = 0; i < out->n && r == STORE_OK; i++) {
        struct store_outbound_row *row = &out->out[i];
        int rc = blob == NULL ? sqlite3_blob_open(b->db, "main", "outbound_messages", "payload",
                                                  row->rowid, 0, &blob)
                              : sqlite3_blob_reopen(blob, row->rowid);
        row->payload = NULL;
        if (rc != SQLITE_OK) {
            sqlite3_blob_close(blob);
            blob = NULL;
            if ((rc & 0xff) == SQLITE_ERROR) { /* no such row, or not text nor a blob */
                row->payload_len = STORE_PAYLOAD_UNREADABLE;
                continue;
            }
            r = sq_fail(b, rc);
            break;
        }
        size_t size = (size_t)sqlite3_blob_bytes(blob);
        row->payload_len = size;
        if (size > max)
            continue;
        char *at = store_rows_reserve(out, size);
        if (at == NULL) {
            out->n = i; /* no room: these rows wait for the next claim */
            out->full = 1;
            break;
        }
        if ((rc = sqlite3_blob_read(blob, at, (int)size, 0)) != SQLITE_OK)
            r = sq_fail(b, rc);
        else
            row->payload = at;
    }
    sqlite3_blob_close(blob);
    return r;
}

enum store_rc sq_outbound_load_sent(struct store *st, int64_t after, int limit, int64_t now_ms,
                                    struct store_rows *out)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_LOAD_SENT);
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, after);
        sqlite3_bind_int(s, 2, limit);
        sq_bind_time(s, 3, now_ms);
    }
    return outbound_rows(b, s, 0, out);
}

enum store_rc sq_outbound_get_sent(struct store *st, int64_t rowid, size_t max,
                                   struct store_rows *out)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_GET_SENT);
    if (s != NULL)
        sqlite3_bind_int64(s, 1, rowid);
    return outbound_rows(b, s, max, out);
}

enum store_rc sq_write_identity(struct sq *b, enum sq_query q, int64_t rowid,
                                const char *message_id, const char *payload, size_t payload_len,
                                int64_t sequence, int64_t now_ms, const char *nothing)
{
    sqlite3_stmt *s = sq_stmt(b, q);
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, rowid);
        sqlite3_bind_text(s, 2, message_id, -1, SQLITE_STATIC);
        if (payload != NULL)
            sqlite3_bind_text(s, 3, payload, (int)payload_len, SQLITE_STATIC);
        sq_bind_time(s, 4, now_ms);
        if (sequence > 0)
            sqlite3_bind_int64(s, 5, sequence);
    }
    int changed = 0;
    enum store_rc rc = sq_run_counting(b, s, &changed);
    if (rc == STORE_OK && changed != 1) {
        snprintf(b->why, sizeof b->why, "%s changed nothing (a trigger's RAISE(IGNORE)?)", nothing);
        rc = STORE_REFUSED;
    }
    return rc;
}

enum store_rc sq_outbound_take(struct store *st, int64_t rowid, const char *message_id,
                               const char *payload, size_t payload_len, int64_t sequence,
                               int64_t now_ms)
{
    return sq_write_identity(sq_of(st), Q_TAKE, rowid, message_id, payload, payload_len, sequence,
                             now_ms, "the update to 'sent'");
}

/*
 * The outcome of a set statement over n rows: 1 if it is final (*done, if
 * not NULL, says how many rows it applied), 0 if the statement was refused,
 * undid itself, and the rows are to be tried one at a time.
 */
static int set_final(enum store_rc rc, int n, int *done)
{
    if (rc == STORE_REFUSED || rc == STORE_DUP)
        return 0;
    if (done != NULL)
        *done = rc == STORE_OK ? n : 0;
    return 1;
}

/*
 * Runs Q_SENT or Q_FAILED (or their set form qset) for each of v[0..n):
 * (rowid, retry_count, why or NULL, now).
 */
static enum store_rc rows_update(struct sq *b, enum sq_query q, enum sq_query qset,
                                 const struct store_sent *v, int n, int64_t now_ms, int *done)
{
    enum store_rc rc = STORE_OK;
    if (sq_set_allowed(b, "outbound_messages", n) && sq_rowids_unique(v, n)) {
        rc = sq_set_changes(b, qset, v, n, now_ms);
        if (set_final(rc, n, done))
            return rc;
        rc = STORE_OK;
    }
    int i = 0;
    for (; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *s = sq_stmt(b, q);
        if (s != NULL) {
            sqlite3_bind_int64(s, 1, v[i].rowid);
            sqlite3_bind_int64(s, 2, v[i].retry_count);
            if (v[i].why != NULL)
                sqlite3_bind_text(s, 3, v[i].why, -1, SQLITE_STATIC);
            sq_bind_time(s, 4, now_ms);
        }
        rc = sq_run(b, s);
    }
    if (done != NULL)
        *done = rc == STORE_OK ? n : i - 1;
    return rc;
}

enum store_rc sq_outbound_sent(struct store *st, const struct store_sent *v, int n, int64_t now_ms,
                               int *done)
{
    return rows_update(sq_of(st), Q_SENT, Q_SENT_SET, v, n, now_ms, done);
}

enum store_rc sq_outbound_failed(struct store *st, const struct store_sent *v, int n,
                                 int64_t now_ms, int *done)
{
    return rows_update(sq_of(st), Q_FAILED, Q_FAILED_SET, v, n, now_ms, done);
}

enum store_rc sq_outbound_acked(struct store *st, const int64_t *rowids, int n, int64_t now_ms,
                                int *matched, int *done)
{
    struct sq *b = sq_of(st);
    enum store_rc rc = STORE_OK;
    if (sq_set_allowed(b, "outbound_messages", n)) {
        rc = sq_set_rowids(b, Q_ACKED_SET, rowids, n, now_ms, matched);
        if (set_final(rc, n, done))
            return rc;
        rc = STORE_OK;
    }
    int i = 0;
    for (; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *s = sq_stmt(b, Q_ACKED);
        if (s != NULL) {
            sqlite3_bind_int64(s, 1, rowids[i]);
            sq_bind_time(s, 2, now_ms);
        }
        int changed = 0;
        rc = sq_run_counting(b, s, &changed);
        *matched += changed > 0;
    }
    if (done != NULL)
        *done = rc == STORE_OK ? n : i - 1;
    return rc;
}

/*
 * Runs the statement q (key, now), or its set form qset, for each inbound row
 * named by rowids[0..n) or, if rowids is NULL, by ids[0..n) (message_ids).
 */
static enum store_rc by_key(struct sq *b, enum sq_query q, enum sq_query qset,
                            const int64_t *rowids, const char *const *ids, int n, int64_t now_ms,
                            int *done)
{
    enum store_rc rc = STORE_OK;
    if (sq_set_allowed(b, "inbound_messages", n)) {
        rc = rowids != NULL ? sq_set_rowids(b, qset, rowids, n, now_ms, NULL)
                            : sq_set_message_ids(b, qset, ids, n, now_ms);
        if (set_final(rc, n, done))
            return rc;
        rc = STORE_OK;
    }
    int i = 0;
    for (; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *s = sq_stmt(b, q);
        if (s != NULL) {
            if (rowids != NULL)
                sqlite3_bind_int64(s, 1, rowids[i]);
            else
                sqlite3_bind_text(s, 1, ids[i], -1, SQLITE_STATIC);
            sq_bind_time(s, 2, now_ms);
        }
        rc = sq_run(b, s);
    }
    if (done != NULL)
        *done = rc == STORE_OK ? n : i - 1;
    return rc;
}

enum store_rc sq_inbound_ack_sent(struct store *st, const char *const *ids, int n, int64_t now_ms,
                                  int *done)
{
    return by_key(sq_of(st), Q_IN_ACK_SENT, Q_IN_ACK_SENT_SET, NULL, ids, n, now_ms, done);
}

enum store_rc sq_inbound_ack_sent_rows(struct store *st, const int64_t *rowids, int n,
                                       int64_t now_ms, int *done)
{
    return by_key(sq_of(st), Q_IN_ACK_SENT_ROW, Q_IN_ACK_SENT_ROW_SET, rowids, NULL, n, now_ms,
                  done);
}

enum store_rc sq_inbound_ack_failed(struct store *st, const char *const *ids, int n, int64_t now_ms,
                                    int *done)
{
    return by_key(sq_of(st), Q_IN_ACK_FAILED, Q_IN_ACK_FAILED_SET, NULL, ids, n, now_ms, done);
}

/* After an insert that stored nothing: is it a duplicate, our own id, or refused? */
static enum store_rc inbound_why_not(struct sq *b, const char *message_id,
                                     enum store_in_result *res, const char *refusal, int guarded)
{
    sqlite3_stmt *s = sq_stmt(b, Q_IN_EXISTS);
    if (s != NULL)
        sqlite3_bind_text(s, 1, message_id, -1, SQLITE_STATIC);
    int row;
    enum store_rc rc = sq_step(b, s, &row);
    if (rc != STORE_OK)
        return rc;
    int stored = row && sqlite3_column_int(s, 0) > 0, ours = row && sqlite3_column_int(s, 1) > 0;
    sqlite3_reset(s);
    if (stored) {
        *res = STORE_IN_DUP;
        return STORE_OK;
    }
    if (ours && guarded) {
        *res = STORE_IN_OWN;
        return STORE_OK;
    }
    snprintf(b->why, sizeof b->why, "%s", refusal);
    return STORE_REFUSED;
}

static enum store_rc insert_one(struct sq *b, const struct store_inbound *m, int64_t now_ms,
                                enum store_in_result *res, int64_t *rowid)
{
    *rowid = 0;
    sqlite3_stmt *s = sq_stmt(b, m->to_self ? Q_IN_INSERT_SELF : Q_IN_INSERT);
    if (s != NULL) {
        char ts[32];
        store_format_ns(m->crypto_ts_ns, ts);
        sqlite3_bind_text(s, 1, m->message_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, m->src_addr, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, (int)m->src_port);
        sqlite3_bind_text(s, 4, m->payload, (int)m->payload_len, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, ts, -1, SQLITE_TRANSIENT);
        sq_bind_time(s, 6, now_ms);
        if (m->peer != NULL)
            sqlite3_bind_text(s, 7, m->peer, -1, SQLITE_STATIC);
        if (m->sequence > 0)
            sqlite3_bind_int64(s, 8, m->sequence);
    }
    int changed = 0;
    enum store_rc rc = sq_run_counting(b, s, &changed);
    if (rc == STORE_OK && changed > 0) {
        *res = STORE_IN_NEW;
        *rowid = sqlite3_last_insert_rowid(b->db);
        return STORE_OK;
    }
    if (rc == STORE_OK)
        return inbound_why_not(b, m->message_id, res,
                               "the insert stored nothing (a trigger's RAISE(IGNORE)?)",
                               !m->to_self);
    if (rc == STORE_DUP) {
        char why[sizeof b->why]; /* a UNIQUE index of the operator's, not message_id's? */
        memcpy(why, b->why, sizeof why);
        return inbound_why_not(b, m->message_id, res, why, !m->to_self);
    }
    return rc;
}

enum store_rc sq_inbound_insert(struct store *st, const struct store_inbound *m, int n,
                                int64_t now_ms, enum store_in_result *res, int64_t *rowids,
                                int *done)
{
    struct sq *b = sq_of(st);
    enum store_rc rc = STORE_OK;
    int i = 0;
    int64_t unused;
    for (; i < n && rc == STORE_OK; i++)
        rc = insert_one(b, &m[i], now_ms, &res[i], rowids != NULL ? &rowids[i] : &unused);
    if (done != NULL)
        *done = rc == STORE_OK ? n : i - 1;
    return rc;
}

enum store_rc sq_inbound_unacked(struct store *st, int64_t after, int limit, struct store_rows *out)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_IN_UNACKED);
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, after);
        sqlite3_bind_int(s, 2, limit);
    }
    int row;
    enum store_rc rc;
    while ((rc = sq_step(b, s, &row)) == STORE_OK && row) {
        struct store_inbound_row r;
        r.rowid = sqlite3_column_int64(s, 0);
        r.message_id = sq_text_or(s, 1, "");
        r.src_addr = sq_text_or(s, 2, "");
        r.src_port = sqlite3_column_int64(s, 3); /* -1 unless 1 .. 65535 */
        r.peer = sq_text_or(s, 4, NULL);
        r.sequence = sq_sequence_col(s, 5);
        if (store_rows_add_in(out, &r) != 0)
            break;
    }
    if (rc == STORE_OK)
        sqlite3_reset(s);
    return rc;
}

/* ---- each peer's last outbound sequence number ---- */

enum store_rc sq_sequence_load(struct store *st, const char *after, struct store_sequence *out,
                               int cap, int *n)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_SEQ_LOAD);
    if (s != NULL) {
        /* a copy: after may be a name in out, which the rows overwrite */
        sqlite3_bind_text(s, 1, after != NULL ? after : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 2, cap);
        sqlite3_bind_int(s, 3, STORE_FIELD_MAX);
    }
    int row;
    enum store_rc rc = STORE_OK;
    while (*n < cap && (rc = sq_step(b, s, &row)) == STORE_OK && row) {
        const void *name = sqlite3_column_blob(s, 0);
        size_t len = (size_t)sqlite3_column_bytes(s, 0);
        if (name == NULL || len > STORE_FIELD_MAX)
            continue; /* the query let through only what fits */
        struct store_sequence *v = &out[(*n)++];
        memcpy(v->peer, name, len);
        v->peer[len] = '\0';
        v->last = sqlite3_column_int64(s, 1);
    }
    if (rc == STORE_OK)
        sqlite3_reset(s);
    return rc;
}

enum store_rc sq_sequence_save(struct store *st, const char *peer, int64_t last)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_SEQ_SAVE);
    if (s != NULL) {
        sqlite3_bind_text(s, 1, peer, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, last);
    }
    return sq_run(b, s);
}
