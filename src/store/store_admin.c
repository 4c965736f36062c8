/*
 * store_admin: the tools' SQL. Fixed statements are cached in the slots from
 * STORE_ADMIN_STMT_BASE on; the queries whose conditions depend on the
 * options are built from fixed fragments (values are always bound, never
 * written into the text), prepared, run once and finalised.
 */
#include "store/store_admin.h"

#include "store/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    A_ENQUEUE = STORE_ADMIN_STMT_BASE,
    A_OUT_STATE,
    A_MARK,
    A_UNMARK,
    A_FETCH_IN,
    A_FETCH_OUT,
    A_MAX_IN,
    A_MAX_OUT,
    A_END
};
_Static_assert(A_END <= STORE_MAX_STMTS, "store_admin statements overflow the cache");

static const char *const admin_sql[A_END - STORE_ADMIN_STMT_BASE] = {
    [A_ENQUEUE - STORE_ADMIN_STMT_BASE] =
        ("INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload) "
         "VALUES (?1, ?2, ?3, ?4)"),
    [A_OUT_STATE - STORE_ADMIN_STMT_BASE] =
        "SELECT state, last_error FROM outbound_messages WHERE id = ?1",
    /* Every write sets updated_at, as the original's do: sg-clean ages rows by it. */
    [A_MARK - STORE_ADMIN_STMT_BASE] = "UPDATE inbound_messages SET read_count = read_count + 1, "
                                       "updated_at = " STORE_NOW " WHERE id = ?1",
    [A_UNMARK - STORE_ADMIN_STMT_BASE] =
        "UPDATE inbound_messages SET read_count = read_count - 1, "
        "updated_at = " STORE_NOW " WHERE id = ?1 AND read_count > 0",
    [A_FETCH_IN - STORE_ADMIN_STMT_BASE] = "SELECT * FROM inbound_messages WHERE id = ?1",
    [A_FETCH_OUT - STORE_ADMIN_STMT_BASE] = "SELECT * FROM outbound_messages WHERE id = ?1",
    [A_MAX_IN - STORE_ADMIN_STMT_BASE] = "SELECT coalesce(max(id), 0) FROM inbound_messages",
    [A_MAX_OUT - STORE_ADMIN_STMT_BASE] = "SELECT coalesce(max(id), 0) FROM outbound_messages",
};

static sqlite3_stmt *admin_stmt(struct store *st, int idx)
{
    return store_stmt(st, idx, admin_sql[idx - STORE_ADMIN_STMT_BASE]);
}

/* ---- states ---- */

static const struct {
    const char *name;
    enum store_admin_table table;
    int active;
} states[] = {
    {"pending", STORE_ADMIN_OUTBOUND, 1},     {"sending", STORE_ADMIN_OUTBOUND, 1},
    {"sent", STORE_ADMIN_OUTBOUND, 1},        {"acknowledged", STORE_ADMIN_OUTBOUND, 0},
    {"send_failed", STORE_ADMIN_OUTBOUND, 0}, {"received", STORE_ADMIN_INBOUND, 1},
    {"ack_sent", STORE_ADMIN_INBOUND, 0},     {"ack_failed", STORE_ADMIN_INBOUND, 0},
};

int store_admin_state_table(const char *state, int *active)
{
    for (size_t k = 0; k < sizeof states / sizeof states[0]; k++)
        if (strcmp(states[k].name, state) == 0) {
            *active = states[k].active;
            return (int)states[k].table;
        }
    return 0;
}

const char *store_admin_states_text(enum store_admin_table table)
{
    return table == STORE_ADMIN_OUTBOUND ? "pending, sending, sent, acknowledged, send_failed"
                                         : "received, ack_sent, ack_failed";
}

static const char *table_name(enum store_admin_table t)
{
    return t == STORE_ADMIN_OUTBOUND ? "outbound_messages" : "inbound_messages";
}

/* ---- errors ---- */

/* Writes the reason for rc into err (before any rollback replaces SQLite's message). */
static enum store_rc failed(struct store *st, enum store_rc rc, char *err, size_t errlen)
{
    if (rc == STORE_OK)
        rc = STORE_ERR;
    if (rc == STORE_BUSY)
        snprintf(err, errlen, "%s", STORE_ADMIN_BUSY_TEXT);
    else
        snprintf(err, errlen, "Database error: %s", store_errmsg(st));
    return rc;
}

/* Fails a transaction: the reason first, then the rollback. */
static enum store_rc abort_tx(struct store *st, enum store_rc rc, char *err, size_t errlen)
{
    rc = failed(st, rc, err, errlen);
    store_rollback(st);
    return rc;
}

/* Steps a statement that returns no rows, then resets it. */
static enum store_rc exec_stmt(sqlite3_stmt *s)
{
    if (s == NULL)
        return STORE_ERR;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return STORE_OK;
    enum store_rc r = store_rc_of(rc);
    return r == STORE_OK ? STORE_ERR : r;
}

/* ---- dynamic queries ---- */

#define SQL_MAX 1024
#define ARGS_MAX 16

/* A statement under construction: text from fixed fragments, values in order of their '?'. */
struct sql {
    char text[SQL_MAX];
    size_t len;
    int overflow;
    int nargs;
    struct {
        const char *s; /* NULL: the integer */
        int64_t i;
    } arg[ARGS_MAX];
};

static void sql_add(struct sql *q, const char *frag)
{
    size_t n = strlen(frag);
    if (n >= SQL_MAX - q->len) {
        q->overflow = 1;
        return;
    }
    memcpy(q->text + q->len, frag, n + 1);
    q->len += n;
}

static void sql_text(struct sql *q, const char *s)
{
    if (q->nargs == ARGS_MAX) {
        q->overflow = 1;
        return;
    }
    q->arg[q->nargs].s = s;
    q->arg[q->nargs++].i = 0;
}

static void sql_int(struct sql *q, int64_t v)
{
    if (q->nargs == ARGS_MAX) {
        q->overflow = 1;
        return;
    }
    q->arg[q->nargs].s = NULL;
    q->arg[q->nargs++].i = v;
}

/* Appends " WHERE " before the first condition and " AND " before the others. */
static void sql_cond(struct sql *q, int *first, const char *cond)
{
    sql_add(q, *first ? " WHERE " : " AND ");
    sql_add(q, cond);
    *first = 0;
}

/* Appends "(?, ?, ...)" for the NULL-terminated or n-long list, binding its values. */
static void sql_list(struct sql *q, const char *const *v, size_t n)
{
    sql_add(q, "(");
    for (size_t k = 0; k < n && v[k] != NULL; k++) {
        sql_add(q, k > 0 ? ", ?" : "?");
        sql_text(q, v[k]);
    }
    sql_add(q, ")");
}

/* Prepares q and binds its values. Returns the statement or NULL (err written). */
static sqlite3_stmt *sql_prepare(struct store *st, const struct sql *q, enum store_rc *rc,
                                 char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    if (q->overflow) {
        snprintf(err, errlen, "internal error: query too long");
        *rc = STORE_ERR;
        return NULL;
    }
    int r = sqlite3_prepare_v2(st->db, q->text, -1, &s, NULL);
    if (r != SQLITE_OK) {
        *rc = failed(st, store_rc_of(r), err, errlen);
        return NULL;
    }
    for (int k = 0; k < q->nargs; k++) {
        if (q->arg[k].s != NULL)
            sqlite3_bind_text(s, k + 1, q->arg[k].s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(s, k + 1, q->arg[k].i);
    }
    return s;
}

/* ---- sg-send ---- */

enum store_rc store_admin_enqueue(struct store *st, const char *message_id, const char *dst_addr,
                                  unsigned dst_port, const char *payload, size_t payload_len,
                                  int64_t *rowid, char *err, size_t errlen)
{
    sqlite3_stmt *s = admin_stmt(st, A_ENQUEUE);
    if (s == NULL)
        return failed(st, STORE_ERR, err, errlen);
    if (message_id != NULL)
        sqlite3_bind_text(s, 1, message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, dst_addr, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, (int)dst_port);
    sqlite3_bind_text(s, 4, payload, (int)payload_len, SQLITE_STATIC);
    int r = sqlite3_step(s);
    enum store_rc rc = r == SQLITE_DONE ? STORE_OK : store_rc_of(r);
    if (rc == STORE_OK && r != SQLITE_DONE)
        rc = STORE_ERR;
    if (rc == STORE_DUP) {
        snprintf(err, errlen, "message_id %s is already used by another outbound message",
                 message_id != NULL ? message_id : "(none)");
    } else if (rc != STORE_OK) {
        rc = failed(st, rc, err, errlen);
    } else {
        *rowid = sqlite3_last_insert_rowid(st->db);
    }
    sqlite3_reset(s);
    return rc;
}

enum store_rc store_admin_outbound_state(struct store *st, int64_t rowid, int *found,
                                         char state[STORE_ADMIN_STATE_MAX], char *why,
                                         size_t whylen, char *err, size_t errlen)
{
    sqlite3_stmt *s = admin_stmt(st, A_OUT_STATE);
    if (s == NULL)
        return failed(st, STORE_ERR, err, errlen);
    sqlite3_bind_int64(s, 1, rowid);
    int r = sqlite3_step(s);
    enum store_rc rc = STORE_OK;
    if (r == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        const char *e = (const char *)sqlite3_column_text(s, 1);
        snprintf(state, STORE_ADMIN_STATE_MAX, "%s", t != NULL ? t : "");
        snprintf(why, whylen, "%s", e != NULL ? e : "");
        *found = 1;
    } else if (r == SQLITE_DONE) {
        *found = 0;
    } else {
        rc = failed(st, store_rc_of(r), err, errlen);
    }
    sqlite3_reset(s);
    return rc;
}

/* ---- sg-recv ---- */

/*
 * Builds the SELECT of q's ids (and read counts: outbound rows have none, so
 * 0). The rest of each row is read later, by store_admin_fetch.
 */
static void claim_sql(const struct store_admin_query *q, struct sql *b)
{
    int first = 1, out = q->table == STORE_ADMIN_OUTBOUND;
    int tail = q->oldest_first && q->limit > 0;
    if (tail)
        sql_add(b, "SELECT * FROM (");
    sql_add(b, out ? "SELECT id, 0 FROM " : "SELECT id, read_count FROM ");
    sql_add(b, table_name(q->table));
    if (q->state != NULL) {
        sql_cond(b, &first, "state = ?");
        sql_text(b, q->state);
    }
    if (q->addr[0] != NULL) {
        sql_cond(b, &first, out ? "CAST(dst_addr AS TEXT) IN " : "CAST(src_addr AS TEXT) IN ");
        sql_list(b, q->addr, STORE_ADMIN_MAX_ADDRS);
    }
    if (q->unread_only && !out)
        sql_cond(b, &first, "read_count = 0");
    if (q->after_id > 0) {
        sql_cond(b, &first, "id > ?");
        sql_int(b, q->after_id);
    }
    if (q->id > 0) {
        sql_cond(b, &first, "id = ?");
        sql_int(b, q->id);
    }
    if (q->message_id != NULL) {
        sql_cond(b, &first, "message_id = ?");
        sql_text(b, q->message_id);
    }
    /* The newest `limit` rows, in the order asked for. */
    sql_add(b, q->oldest_first && !tail ? " ORDER BY id ASC" : " ORDER BY id DESC");
    if (q->limit > 0) {
        sql_add(b, " LIMIT ?");
        sql_int(b, q->limit);
    }
    if (tail)
        sql_add(b, ") ORDER BY id ASC");
}

/* Fills cols from the current row of s; returns the value of the "id" column. */
static int64_t read_row(sqlite3_stmt *s, struct store_admin_col *cols, int n)
{
    int64_t id = 0;
    for (int c = 0; c < n; c++) {
        struct store_admin_col *v = &cols[c];
        memset(v, 0, sizeof *v);
        v->name = sqlite3_column_name(s, c);
        switch (sqlite3_column_type(s, c)) {
        case SQLITE_INTEGER:
            v->type = STORE_ADMIN_INT;
            v->i = sqlite3_column_int64(s, c);
            break;
        case SQLITE_FLOAT:
            v->type = STORE_ADMIN_REAL;
            v->r = sqlite3_column_double(s, c);
            break;
        case SQLITE_TEXT:
            v->type = STORE_ADMIN_TEXT;
            v->text = (const char *)sqlite3_column_text(s, c);
            v->len = (size_t)sqlite3_column_bytes(s, c);
            break;
        case SQLITE_BLOB:
            v->type = STORE_ADMIN_BLOB;
            v->text = sqlite3_column_blob(s, c);
            v->len = (size_t)sqlite3_column_bytes(s, c);
            break;
        default:
            v->type = STORE_ADMIN_NULL;
            break;
        }
        if (v->name != NULL && strcmp(v->name, "id") == 0)
            id = sqlite3_column_int64(s, c);
    }
    return id;
}

/* Growable list of claimed rows. */
struct claims {
    struct store_admin_claimed *v;
    size_t n, cap;
};

/* Appends the current row of s (id, read count). Returns 0, or -1 out of memory. */
static int claims_push(struct claims *l, sqlite3_stmt *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct store_admin_claimed *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    struct store_admin_claimed *c = &l->v[l->n++];
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(s, 0);
    switch (sqlite3_column_type(s, 1)) {
    case SQLITE_INTEGER:
        c->before_type = STORE_ADMIN_INT;
        c->before_i = sqlite3_column_int64(s, 1);
        break;
    case SQLITE_FLOAT:
        c->before_type = STORE_ADMIN_REAL;
        c->before_r = sqlite3_column_double(s, 1);
        break;
    default:
        c->before_type = STORE_ADMIN_NULL; /* not a number: show the row's own value */
        break;
    }
    return 0;
}

/* Runs the SELECT of q, collecting the ids and read counts. */
static enum store_rc claim_rows(struct store *st, const struct store_admin_query *q,
                                struct claims *l, char *err, size_t errlen)
{
    struct sql b;
    memset(&b, 0, sizeof b);
    claim_sql(q, &b);
    enum store_rc rc = STORE_OK;
    sqlite3_stmt *s = sql_prepare(st, &b, &rc, err, errlen);
    if (s == NULL)
        return rc;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (claims_push(l, s) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = STORE_ERR;
            break;
        }
    }
    if (rc == STORE_OK && r != SQLITE_DONE)
        rc = failed(st, store_rc_of(r), err, errlen);
    sqlite3_finalize(s);
    return rc;
}

/* Runs the statement idx once per claimed row (inside the caller's transaction). */
static enum store_rc each_claimed(struct store *st, int idx, const struct store_admin_claimed *c,
                                  size_t n)
{
    for (size_t k = 0; k < n; k++) {
        sqlite3_stmt *s = admin_stmt(st, idx);
        if (s == NULL)
            return STORE_ERR;
        sqlite3_bind_int64(s, 1, c[k].id);
        enum store_rc rc = exec_stmt(s);
        if (rc != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

enum store_rc store_admin_claim(struct store *st, const struct store_admin_query *q,
                                struct store_admin_claimed **out, size_t *n, char *err,
                                size_t errlen)
{
    int mark = q->mark && q->table == STORE_ADMIN_INBOUND;
    struct claims l = {NULL, 0, 0};
    enum store_rc rc = mark ? store_begin(st) : STORE_OK;
    if (rc != STORE_OK)
        return abort_tx(st, rc, err, errlen);
    if ((rc = claim_rows(st, q, &l, err, errlen)) != STORE_OK) {
        if (mark)
            store_rollback(st);
        goto fail;
    }
    if (mark && ((rc = each_claimed(st, A_MARK, l.v, l.n)) != STORE_OK ||
                 (rc = store_commit(st)) != STORE_OK)) {
        rc = abort_tx(st, rc, err, errlen);
        goto fail;
    }
    *out = l.v;
    *n = l.n;
    return STORE_OK;
fail:
    free(l.v);
    return rc;
}

enum store_rc store_admin_max_id(struct store *st, enum store_admin_table table, int64_t *max,
                                 char *err, size_t errlen)
{
    sqlite3_stmt *s = admin_stmt(st, table == STORE_ADMIN_OUTBOUND ? A_MAX_OUT : A_MAX_IN);
    if (s == NULL)
        return failed(st, STORE_ERR, err, errlen);
    int r = sqlite3_step(s);
    enum store_rc rc = STORE_OK;
    if (r == SQLITE_ROW)
        *max = sqlite3_column_int64(s, 0);
    else
        rc = failed(st, store_rc_of(r), err, errlen);
    sqlite3_reset(s);
    return rc;
}

/* Replaces an inbound row's read_count by its value before the claim, if that was a number. */
static void show_before(struct store_admin_col *cols, int n, const struct store_admin_claimed *c)
{
    if (c->before_type != STORE_ADMIN_INT && c->before_type != STORE_ADMIN_REAL)
        return;
    for (int k = 0; k < n; k++) {
        if (cols[k].name == NULL || strcmp(cols[k].name, "read_count") != 0)
            continue;
        cols[k].type = c->before_type;
        cols[k].i = c->before_i;
        cols[k].r = c->before_r;
        cols[k].text = NULL;
        cols[k].len = 0;
    }
}

enum store_rc store_admin_fetch(struct store *st, enum store_admin_table table,
                                const struct store_admin_claimed *c, store_admin_row_fn fn,
                                void *ctx, int *found, char *err, size_t errlen)
{
    int in = table == STORE_ADMIN_INBOUND;
    sqlite3_stmt *s = admin_stmt(st, in ? A_FETCH_IN : A_FETCH_OUT);
    if (s == NULL)
        return failed(st, STORE_ERR, err, errlen);
    sqlite3_bind_int64(s, 1, c->id);
    enum store_rc rc = STORE_OK;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        int n = sqlite3_column_count(s);
        struct store_admin_col *cols = calloc((size_t)(n > 0 ? n : 1), sizeof *cols);
        if (cols == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = STORE_ERR;
        } else {
            struct store_admin_row row = {read_row(s, cols, n), n, cols};
            if (in)
                show_before(cols, n, c);
            fn(ctx, &row);
            *found = 1;
            free(cols);
        }
    } else if (r == SQLITE_DONE) {
        *found = 0;
    } else {
        rc = failed(st, store_rc_of(r), err, errlen);
    }
    sqlite3_reset(s);
    return rc;
}

enum store_rc store_admin_unmark(struct store *st, const struct store_admin_claimed *c, size_t n,
                                 char *err, size_t errlen)
{
    enum store_rc rc = store_begin(st);
    if (rc != STORE_OK || (rc = each_claimed(st, A_UNMARK, c, n)) != STORE_OK ||
        (rc = store_commit(st)) != STORE_OK)
        return abort_tx(st, rc, err, errlen);
    return STORE_OK;
}

/* ---- sg-clean ---- */

/*
 * Whether updated_at is a timestamp sg-clean can read: text (or a BLOB of
 * text) starting with a date, YYYY-MM-DD, that julianday() understands
 * (2025-01-31T12:00:00.000 as the daemon writes it, with or without time,
 * fraction or zone). Not: NULL, garbage, an impossible date, 'now' (always
 * now to julianday()), or a bare number (julianday() would take 12345 as a
 * Julian day number, in 4679 BC). coalesce makes it 0 or 1, never NULL.
 */
#define UPDATED_TEXT "CAST(updated_at AS TEXT)"
#define UPDATED_READABLE                                                                           \
    "coalesce(" UPDATED_TEXT " GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' AND "            \
    "julianday(" UPDATED_TEXT ") IS NOT NULL, 0)"

/*
 * Appends the WHERE clause of p: its rows whose updated_at is before the
 * cutoff or, with unreadable, those whose updated_at is no timestamp at all
 * (their age is unknown, so they are never deleted by age).
 */
static void purge_where(const struct store_admin_purge *p, int unreadable, struct sql *b)
{
    int first = 1;
    if (unreadable) {
        sql_cond(b, &first, "NOT " UPDATED_READABLE);
    } else {
        sql_cond(b, &first, UPDATED_READABLE " AND julianday(" UPDATED_TEXT ") < julianday(?)");
        sql_text(b, p->before);
    }
    if (p->states != NULL) {
        sql_cond(b, &first, "state IN ");
        sql_list(b, p->states, ARGS_MAX);
    }
    if (p->read_only && p->table == STORE_ADMIN_INBOUND)
        sql_cond(b, &first, "read_count > 0");
}

enum store_rc store_admin_purge_count(struct store *st, const struct store_admin_purge *p,
                                      store_admin_count_fn fn, void *ctx, char *err, size_t errlen)
{
    struct sql b;
    memset(&b, 0, sizeof b);
    sql_add(&b, "SELECT CAST(state AS TEXT), COUNT(*) FROM ");
    sql_add(&b, table_name(p->table));
    purge_where(p, 0, &b);
    sql_add(&b, " GROUP BY 1 ORDER BY 1");
    enum store_rc rc = STORE_OK;
    sqlite3_stmt *s = sql_prepare(st, &b, &rc, err, errlen);
    if (s == NULL)
        return rc;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(s, 0);
        fn(ctx, state != NULL ? state : "(null)", sqlite3_column_int64(s, 1));
    }
    if (r != SQLITE_DONE)
        rc = failed(st, store_rc_of(r), err, errlen);
    sqlite3_finalize(s);
    return rc;
}

enum store_rc store_admin_purge_unreadable(struct store *st, const struct store_admin_purge *p,
                                           int64_t *n, char *err, size_t errlen)
{
    struct sql b;
    memset(&b, 0, sizeof b);
    sql_add(&b, "SELECT COUNT(*) FROM ");
    sql_add(&b, table_name(p->table));
    purge_where(p, 1, &b);
    enum store_rc rc = STORE_OK;
    sqlite3_stmt *s = sql_prepare(st, &b, &rc, err, errlen);
    if (s == NULL)
        return rc;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    else
        rc = failed(st, store_rc_of(r), err, errlen);
    sqlite3_finalize(s);
    return rc;
}

/* Deletes the rows of one purge (inside the caller's transaction). */
static enum store_rc purge_one(struct store *st, const struct store_admin_purge *p,
                               int64_t *deleted, char *err, size_t errlen)
{
    struct sql b;
    memset(&b, 0, sizeof b);
    sql_add(&b, "DELETE FROM ");
    sql_add(&b, table_name(p->table));
    purge_where(p, 0, &b);
    enum store_rc rc = STORE_OK;
    sqlite3_stmt *s = sql_prepare(st, &b, &rc, err, errlen);
    if (s == NULL)
        return rc;
    int r = sqlite3_step(s);
    if (r == SQLITE_DONE)
        *deleted = sqlite3_changes(st->db);
    else
        rc = failed(st, store_rc_of(r), err, errlen);
    sqlite3_finalize(s);
    return rc;
}

enum store_rc store_admin_purge(struct store *st, const struct store_admin_purge *p, size_t n,
                                int64_t *deleted, char *err, size_t errlen)
{
    enum store_rc rc = store_begin(st);
    if (rc != STORE_OK)
        return abort_tx(st, rc, err, errlen);
    for (size_t k = 0; k < n; k++) {
        if ((rc = purge_one(st, &p[k], &deleted[k], err, errlen)) != STORE_OK) {
            store_rollback(st);
            return rc;
        }
    }
    if ((rc = store_commit(st)) != STORE_OK)
        return abort_tx(st, rc, err, errlen);
    return STORE_OK;
}

enum store_rc store_admin_vacuum(struct store *st, char *err, size_t errlen)
{
    int r = sqlite3_exec(st->db, "VACUUM", NULL, NULL, NULL);
    if (r != SQLITE_OK)
        return failed(st, store_rc_of(r), err, errlen);
    (void)sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    return STORE_OK;
}
