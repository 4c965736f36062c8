/*
 * sqlite_admin: the SQLite backend's queries for the tools (sg-send, sg-recv,
 * sg-clean). Fixed statements are in sqlite.c's one cache; the queries whose
 * conditions depend on the options are built here from fixed fragments
 * (values are always bound, never written into the text), prepared, run once
 * and finalised.
 */
#include "store/sqlite_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *table_name(enum store_table t)
{
    return t == STORE_OUTBOUND ? "outbound_messages" : "inbound_messages";
}

/* Fails a transaction: the reason first, then the rollback. */
static enum store_rc abort_tx(struct sq *b, enum store_rc rc)
{
    char why[sizeof b->why];
    memcpy(why, b->why, sizeof why);
    b->base.ops->rollback(&b->base);
    memcpy(b->why, why, sizeof why);
    return rc;
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

static void sql_arg(struct sql *q, const char *s, int64_t i)
{
    if (q->nargs == ARGS_MAX) {
        q->overflow = 1;
        return;
    }
    q->arg[q->nargs].s = s;
    q->arg[q->nargs++].i = i;
}

static void sql_text(struct sql *q, const char *s)
{
    sql_arg(q, s, 0);
}

static void sql_int(struct sql *q, int64_t v)
{
    sql_arg(q, NULL, v);
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

/* Prepares q and binds its values. Returns the statement, or NULL with *rc set. */
static sqlite3_stmt *sql_prepare(struct sq *b, const struct sql *q, enum store_rc *rc)
{
    sqlite3_stmt *s = NULL;
    b->why[0] = '\0';
    if (q->overflow) {
        snprintf(b->why, sizeof b->why, "internal error: query too long");
        *rc = STORE_ERR;
        return NULL;
    }
    int r = sqlite3_prepare_v2(b->db, q->text, -1, &s, NULL);
    if (r != SQLITE_OK) {
        *rc = sq_fail(b, r);
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

enum store_rc sq_enqueue(struct store *st, const char *message_id, const char *dst_addr,
                         unsigned dst_port, const char *peer, const char *payload,
                         size_t payload_len, int64_t now_ms, int64_t *rowid)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_ENQUEUE);
    if (s != NULL) {
        char now[STORE_TIME_LEN];
        store_format_ms(now_ms, now);
        if (message_id != NULL)
            sqlite3_bind_text(s, 1, message_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, dst_addr, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, (int)dst_port);
        sqlite3_bind_text(s, 4, payload, (int)payload_len, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, now, -1, SQLITE_TRANSIENT);
        if (peer != NULL)
            sqlite3_bind_text(s, 6, peer, -1, SQLITE_STATIC);
    }
    enum store_rc rc = sq_run(b, s);
    if (rc == STORE_OK)
        *rowid = sqlite3_last_insert_rowid(b->db);
    return rc;
}

enum store_rc sq_outbound_requeue(struct store *st, int64_t rowid, const char *peer, int64_t now_ms,
                                  int *changed)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_REQUEUE);
    if (s != NULL) {
        char now[STORE_TIME_LEN];
        store_format_ms(now_ms, now);
        sqlite3_bind_int64(s, 1, rowid);
        if (peer != NULL)
            sqlite3_bind_text(s, 2, peer, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, now, -1, SQLITE_TRANSIENT);
    }
    return sq_run_counting(b, s, changed);
}

enum store_rc sq_outbound_state(struct store *st, int64_t rowid, int *found,
                                char state[STORE_STATE_MAX], char *why, size_t whylen)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, Q_OUT_STATE);
    if (s != NULL)
        sqlite3_bind_int64(s, 1, rowid);
    int row;
    enum store_rc rc = sq_step(b, s, &row);
    if (rc != STORE_OK)
        return rc;
    if (row) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        const char *e = (const char *)sqlite3_column_text(s, 1);
        snprintf(state, STORE_STATE_MAX, "%s", t != NULL ? t : "");
        snprintf(why, whylen, "%s", e != NULL ? e : "");
    }
    *found = row;
    sqlite3_reset(s);
    return STORE_OK;
}

enum store_rc sq_max_id(struct store *st, enum store_table table, int64_t *max)
{
    struct sq *b = sq_of(st);
    sqlite3_stmt *s = sq_stmt(b, table == STORE_OUTBOUND ? Q_MAX_OUT : Q_MAX_IN);
    int row;
    enum store_rc rc = sq_step(b, s, &row);
    if (rc != STORE_OK)
        return rc;
    *max = row ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return STORE_OK;
}

/* ---- sg-recv ---- */

/*
 * Builds the SELECT of q's ids (and read counts: outbound rows have none, so
 * 0). The rest of each row is read later, by store_fetch.
 */
static void select_sql(const struct store_query *q, struct sql *b)
{
    int first = 1, out = q->table == STORE_OUTBOUND;
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
        sql_list(b, q->addr, STORE_MAX_ADDRS);
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
    if (q->peer != NULL) {
        sql_cond(b, &first, "CAST(peer AS TEXT) = ?");
        sql_text(b, q->peer);
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

/* The column c of s as a store_col, pointing into SQLite's memory. */
static void read_col(sqlite3_stmt *s, int c, struct store_col *v)
{
    memset(v, 0, sizeof *v);
    v->name = sqlite3_column_name(s, c);
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_INTEGER:
        v->type = STORE_INT;
        v->i = sqlite3_column_int64(s, c);
        break;
    case SQLITE_FLOAT:
        v->type = STORE_REAL;
        v->r = sqlite3_column_double(s, c);
        break;
    case SQLITE_TEXT:
        v->type = STORE_TEXT;
        v->text = (const char *)sqlite3_column_text(s, c);
        v->len = (size_t)sqlite3_column_bytes(s, c);
        break;
    case SQLITE_BLOB:
        v->type = STORE_BLOB;
        v->text = sqlite3_column_blob(s, c);
        v->len = (size_t)sqlite3_column_bytes(s, c);
        break;
    default:
        v->type = STORE_NULL;
        break;
    }
}

/* Growable list of picked rows. */
struct picks {
    struct store_selected *v;
    size_t n, cap;
};

/* Appends the current row of s (id, read count). Returns 0, or -1 out of memory. */
static int picks_push(struct picks *l, sqlite3_stmt *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct store_selected *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    struct store_selected *c = &l->v[l->n++];
    struct store_col before;
    read_col(s, 1, &before);
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(s, 0);
    /* not a number: the row's own value is shown */
    c->before_type =
        before.type == STORE_INT || before.type == STORE_REAL ? before.type : STORE_NULL;
    c->before_i = before.i;
    c->before_r = before.r;
    return 0;
}

/* Runs the SELECT of q, collecting the ids and read counts. */
static enum store_rc select_rows(struct sq *b, const struct store_query *q, struct picks *l)
{
    struct sql text;
    memset(&text, 0, sizeof text);
    select_sql(q, &text);
    enum store_rc rc = STORE_OK;
    sqlite3_stmt *s = sql_prepare(b, &text, &rc);
    if (s == NULL)
        return rc;
    int row;
    while ((rc = sq_step(b, s, &row)) == STORE_OK && row) {
        if (picks_push(l, s) != 0) {
            snprintf(b->why, sizeof b->why, "out of memory");
            rc = STORE_ERR;
            break;
        }
    }
    sqlite3_finalize(s);
    return rc;
}

/* Runs the statement q (id, now) once per picked row (inside the caller's transaction). */
static enum store_rc each_picked(struct sq *b, enum sq_query q, const struct store_selected *c,
                                 size_t n, int64_t now_ms)
{
    char now[STORE_TIME_LEN];
    store_format_ms(now_ms, now);
    enum store_rc rc = STORE_OK;
    for (size_t k = 0; k < n && rc == STORE_OK; k++) {
        sqlite3_stmt *s = sq_stmt(b, q);
        if (s != NULL) {
            sqlite3_bind_int64(s, 1, c[k].id);
            sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
        }
        rc = sq_run(b, s);
    }
    return rc;
}

enum store_rc sq_select(struct store *st, const struct store_query *q, int64_t now_ms,
                        struct store_selected **out, size_t *n)
{
    struct sq *b = sq_of(st);
    int mark = q->mark && q->table == STORE_INBOUND;
    struct picks l = {NULL, 0, 0};
    enum store_rc rc = mark ? st->ops->begin(st) : STORE_OK;
    if (rc != STORE_OK)
        return abort_tx(b, rc);
    if ((rc = select_rows(b, q, &l)) == STORE_OK && mark &&
        (rc = each_picked(b, Q_MARK, l.v, l.n, now_ms)) == STORE_OK)
        rc = st->ops->commit(st);
    if (rc != STORE_OK) {
        if (mark)
            (void)abort_tx(b, rc);
        free(l.v);
        return rc;
    }
    *out = l.v;
    *n = l.n;
    return STORE_OK;
}

enum store_rc sq_fetch(struct store *st, enum store_table table, const struct store_selected *c,
                       struct store_record *rec, int *found)
{
    struct sq *b = sq_of(st);
    int in = table == STORE_INBOUND;
    sqlite3_stmt *s = sq_stmt(b, in ? Q_FETCH_IN : Q_FETCH_OUT);
    if (s != NULL)
        sqlite3_bind_int64(s, 1, c->id);
    int row;
    enum store_rc rc = sq_step(b, s, &row);
    if (rc != STORE_OK || !row) {
        if (rc == STORE_OK)
            sqlite3_reset(s);
        return rc;
    }
    int n = sqlite3_column_count(s);
    struct store_col *cols = calloc((size_t)(n > 0 ? n : 1), sizeof *cols);
    int64_t id = 0;
    for (int k = 0; cols != NULL && k < n; k++) {
        read_col(s, k, &cols[k]);
        if (cols[k].name != NULL && strcmp(cols[k].name, "id") == 0)
            id = sqlite3_column_int64(s, k);
        /* an inbound row's read_count as it was before the marking, if that was a number */
        if (in && cols[k].name != NULL && strcmp(cols[k].name, "read_count") == 0 &&
            (c->before_type == STORE_INT || c->before_type == STORE_REAL)) {
            cols[k].type = c->before_type;
            cols[k].i = c->before_i;
            cols[k].r = c->before_r;
            cols[k].text = NULL;
            cols[k].len = 0;
        }
    }
    if (cols == NULL || store_record_fill(rec, id, cols, n) != 0) {
        snprintf(b->why, sizeof b->why, "out of memory");
        rc = STORE_ERR;
    } else {
        *found = 1;
    }
    free(cols);
    sqlite3_reset(s);
    return rc;
}

enum store_rc sq_unmark(struct store *st, const struct store_selected *c, size_t n, int64_t now_ms)
{
    struct sq *b = sq_of(st);
    enum store_rc rc = st->ops->begin(st);
    if (rc != STORE_OK || (rc = each_picked(b, Q_UNMARK, c, n, now_ms)) != STORE_OK ||
        (rc = st->ops->commit(st)) != STORE_OK)
        return abort_tx(b, rc);
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
static void purge_where(const struct store_purge *p, int unreadable, struct sql *b)
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
    if (p->read_only && p->table == STORE_INBOUND)
        sql_cond(b, &first, "read_count > 0");
    if (p->peer != NULL) {
        sql_cond(b, &first, "CAST(peer AS TEXT) = ?");
        sql_text(b, p->peer);
    }
}

/* Builds "head <table> <where of p> tail", prepares it and binds its values. */
static sqlite3_stmt *purge_stmt(struct sq *b, const struct store_purge *p, const char *head,
                                int unreadable, const char *tail, enum store_rc *rc)
{
    struct sql text;
    memset(&text, 0, sizeof text);
    sql_add(&text, head);
    sql_add(&text, table_name(p->table));
    purge_where(p, unreadable, &text);
    sql_add(&text, tail);
    return sql_prepare(b, &text, rc);
}

/* The (state, count) rows of s (finalized here) into *out and *n. */
static enum store_rc collect_states(struct sq *b, sqlite3_stmt *s, struct store_state_count **out,
                                    size_t *n)
{
    enum store_rc rc = STORE_OK;
    struct store_state_count *v = NULL;
    size_t k = 0;
    int row;
    while ((rc = sq_step(b, s, &row)) == STORE_OK && row) {
        struct store_state_count *nv = realloc(v, (k + 1) * sizeof *v);
        if (nv == NULL) {
            snprintf(b->why, sizeof b->why, "out of memory");
            rc = STORE_ERR;
            break;
        }
        v = nv;
        const char *state = (const char *)sqlite3_column_text(s, 0);
        snprintf(v[k].state, sizeof v[k].state, "%s", state != NULL ? state : "(null)");
        v[k++].n = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    if (rc != STORE_OK) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return STORE_OK;
}

enum store_rc sq_purge_count(struct store *st, const struct store_purge *p,
                             struct store_state_count **out, size_t *n)
{
    struct sq *b = sq_of(st);
    enum store_rc rc = STORE_OK;
    sqlite3_stmt *s = purge_stmt(b, p, "SELECT CAST(state AS TEXT), COUNT(*) FROM ", 0,
                                 " GROUP BY 1 ORDER BY 1", &rc);
    return s != NULL ? collect_states(b, s, out, n) : rc;
}

/* Every row of a table by state: a scan of its state index. */
enum store_rc sq_count_states(struct store *st, enum store_table table,
                              struct store_state_count **out, size_t *n)
{
    struct sq *b = sq_of(st);
    struct sql text;
    enum store_rc rc = STORE_OK;
    memset(&text, 0, sizeof text);
    sql_add(&text, "SELECT CAST(state AS TEXT), COUNT(*) FROM ");
    sql_add(&text, table_name(table));
    sql_add(&text, " GROUP BY 1 ORDER BY 1");
    sqlite3_stmt *s = sql_prepare(b, &text, &rc);
    return s != NULL ? collect_states(b, s, out, n) : rc;
}

enum store_rc sq_purge_unreadable(struct store *st, const struct store_purge *p, int64_t *n)
{
    struct sq *b = sq_of(st);
    enum store_rc rc = STORE_OK;
    sqlite3_stmt *s = purge_stmt(b, p, "SELECT COUNT(*) FROM ", 1, "", &rc);
    if (s == NULL)
        return rc;
    int row;
    if ((rc = sq_step(b, s, &row)) == STORE_OK)
        *n = row ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return rc;
}

enum store_rc sq_purge(struct store *st, const struct store_purge *p, size_t n, int64_t *deleted)
{
    struct sq *b = sq_of(st);
    enum store_rc rc = st->ops->begin(st);
    for (size_t k = 0; k < n && rc == STORE_OK; k++) {
        sqlite3_stmt *s = purge_stmt(b, &p[k], "DELETE FROM ", 0, "", &rc);
        if (s == NULL)
            break;
        int row;
        if ((rc = sq_step(b, s, &row)) == STORE_OK)
            deleted[k] = sqlite3_changes(b->db);
        sqlite3_finalize(s);
    }
    if (rc == STORE_OK)
        rc = st->ops->commit(st);
    return rc == STORE_OK ? STORE_OK : abort_tx(b, rc);
}

enum store_rc sq_vacuum(struct store *st)
{
    struct sq *b = sq_of(st);
    b->why[0] = '\0';
    int r = sqlite3_exec(b->db, "VACUUM", NULL, NULL, NULL);
    if (r != SQLITE_OK)
        return sq_fail(b, r);
    (void)sqlite3_exec(b->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    return STORE_OK;
}
