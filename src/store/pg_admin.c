/*
 * pg_admin: the PostgreSQL backend's queries for the tools (sg-send,
 * sg-recv, sg-clean), with the results and the order of SQLite's. Fixed
 * statements are in pg.c's table; the queries whose conditions depend on
 * the options are built here from fixed fragments, values always bound as
 * $n parameters, never written into the text.
 */
#include "store/pg_impl.h"

#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *table_name(enum store_table t)
{
    return t == STORE_OUTBOUND ? "outbound_messages" : "inbound_messages";
}

/* Fails a transaction: the reason first, then the rollback. */
static enum store_rc abort_tx(struct pg *b, enum store_rc rc)
{
    char why[sizeof b->why];
    memcpy(why, b->why, sizeof why);
    b->base.ops->rollback(&b->base);
    memcpy(b->why, why, sizeof why);
    return rc;
}

/* ---- dynamic queries ---- */

#define SQL_MAX 4096

/* A statement under construction: text from fixed fragments, values as $1, $2, ... */
struct sql {
    char text[SQL_MAX];
    size_t len;
    int overflow;
    struct pg_params p;
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

/* Appends the placeholder of the next parameter, cast to type. */
static void sql_param(struct sql *q, const char *type)
{
    char t[32];
    snprintf(t, sizeof t, "$%d::%s", q->p.n + 1, type);
    sql_add(q, t);
}

static void sql_text(struct sql *q, const char *s)
{
    sql_param(q, "text");
    pp_text(&q->p, s);
}

static void sql_int(struct sql *q, int64_t v)
{
    sql_param(q, "bigint");
    pp_int(&q->p, v);
}

/* Appends " WHERE " before the first condition and " AND " before the others. */
static void sql_cond(struct sql *q, int *first, const char *cond)
{
    sql_add(q, *first ? " WHERE " : " AND ");
    sql_add(q, cond);
    *first = 0;
}

/* Appends " = ANY($n::text[])" for the NULL-terminated or n-long list. */
static void sql_list(struct sql *q, const char *const *v, size_t n)
{
    size_t k = 0;
    while (k < n && v[k] != NULL)
        k++;
    sql_add(q, " = ANY(");
    sql_param(q, "text[]");
    sql_add(q, ")");
    pp_owned(&q->p, pg_text_array(v, (int)k));
}

/* Runs q (its parameters freed). NULL and *rc on failure. */
static PGresult *sql_run(struct pg *b, struct sql *q, int flags, enum store_rc *rc)
{
    if (q->overflow) {
        pp_free(&q->p);
        *rc = pg_fail(b, STORE_ERR, "internal error: query too long");
        return NULL;
    }
    return pg_run_sql(b, q->text, flags, &q->p, rc);
}

/* ---- sg-send ---- */

enum store_rc pg_enqueue(struct store *st, const char *message_id, const char *dst_addr,
                         unsigned dst_port, const char *peer, const char *payload,
                         size_t payload_len, int64_t now_ms, int64_t *rowid)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_text(&p, message_id);
    pp_text(&p, dst_addr);
    pp_int(&p, dst_port);
    pp_bytes(&p, payload != NULL ? payload : "", payload_len);
    pp_time(&p, now_ms);
    pp_text(&p, peer);
    enum store_rc rc;
    PGresult *r = pg_run(b, P_ENQUEUE, &p, &rc);
    if (r == NULL)
        return rc;
    int made = PQntuples(r) == 1;
    if (made) {
        *rowid = pg_int(r, 0, 0);
        if (*rowid > b->watch.own_out)
            b->watch.own_out = *rowid;
    }
    PQclear(r);
    if (made)
        return STORE_OK;
    /* Stored nothing: a message_id taken (DUP), or another UNIQUE index's conflict. */
    pp_int(&p, 0);
    pp_text(&p, message_id);
    pp_text(&p, b->me);
    r = pg_run(b, P_IDENTITY_WHY, &p, &rc);
    if (r == NULL)
        return rc;
    int dup = message_id != NULL && pg_int(r, 0, 2);
    PQclear(r);
    if (dup)
        return pg_fail(
            b, STORE_DUP,
            "duplicate key value violates unique constraint \"idx_outbound_message_id\"");
    return pg_fail(b, STORE_REFUSED,
                   "the insert stored nothing (a UNIQUE index of the operator's?)");
}

enum store_rc pg_outbound_requeue(struct store *st, int64_t rowid, const char *peer, int64_t now_ms,
                                  int *changed)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_int(&p, rowid);
    pp_text(&p, peer);
    pp_time(&p, now_ms);
    return pg_run_count(b, P_REQUEUE, &p, changed);
}

enum store_rc pg_outbound_state(struct store *st, int64_t rowid, int *found,
                                char state[STORE_STATE_MAX], char *why, size_t whylen)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_int(&p, rowid);
    enum store_rc rc;
    PGresult *r = pg_run(b, P_OUT_STATE, &p, &rc);
    if (r == NULL)
        return rc;
    *found = PQntuples(r) > 0;
    if (*found) {
        const char *t = pg_text(r, 0, 0), *e = pg_text(r, 0, 1);
        snprintf(state, STORE_STATE_MAX, "%s", t != NULL ? t : "");
        snprintf(why, whylen, "%s", e != NULL ? e : "");
    }
    PQclear(r);
    return STORE_OK;
}

enum store_rc pg_max_id(struct store *st, enum store_table table, int64_t *max)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    enum store_rc rc;
    PGresult *r = pg_run(b, table == STORE_OUTBOUND ? P_MAX_OUT : P_MAX_IN, &p, &rc);
    if (r == NULL)
        return rc;
    *max = PQntuples(r) > 0 ? pg_int(r, 0, 0) : 0;
    PQclear(r);
    return STORE_OK;
}

/* ---- sg-recv ---- */

/*
 * The SELECT of q's ids and read counts (outbound rows have none: 0). With
 * mark, the rows are locked (FOR UPDATE): a second reader waits for the
 * first one's commit, then finds them marked, so two readers never both get
 * one unread row (SQLite's one writer gives the same).
 */
static void select_sql(const struct store_query *q, int mark, struct sql *s)
{
    int first = 1, out = q->table == STORE_OUTBOUND;
    int tail = q->oldest_first && q->limit > 0;
    if (tail)
        sql_add(s, "SELECT * FROM (");
    sql_add(s, out ? "SELECT id, 0 FROM " : "SELECT id, read_count FROM ");
    sql_add(s, table_name(q->table));
    if (q->state != NULL) {
        sql_cond(s, &first, "state = ");
        sql_text(s, q->state);
    }
    if (q->addr[0] != NULL) {
        sql_cond(s, &first, out ? "dst_addr" : "src_addr");
        sql_list(s, q->addr, STORE_MAX_ADDRS);
    }
    if (q->unread_only && !out)
        sql_cond(s, &first, "read_count = 0");
    if (q->after_id > 0) {
        sql_cond(s, &first, "id > ");
        sql_int(s, q->after_id);
    }
    if (q->id > 0) {
        sql_cond(s, &first, "id = ");
        sql_int(s, q->id);
    }
    if (q->message_id != NULL) {
        sql_cond(s, &first, "message_id = ");
        sql_text(s, q->message_id);
    }
    if (q->peer != NULL) {
        sql_cond(s, &first, "peer = ");
        sql_text(s, q->peer);
    }
    /* The newest `limit` rows, in the order asked for. */
    sql_add(s, q->oldest_first && !tail ? " ORDER BY id ASC" : " ORDER BY id DESC");
    if (q->limit > 0) {
        sql_add(s, " LIMIT ");
        sql_int(s, q->limit);
    }
    if (mark)
        sql_add(s, " FOR UPDATE");
    if (tail)
        sql_add(s, ") s ORDER BY id ASC");
}

enum store_rc pg_select(struct store *st, const struct store_query *q, int64_t now_ms,
                        struct store_selected **out, size_t *n)
{
    struct pg *b = pg_of(st);
    int mark = q->mark && q->table == STORE_INBOUND;
    enum store_rc rc = mark ? st->ops->begin(st) : STORE_OK;
    if (rc != STORE_OK)
        return abort_tx(b, rc);
    struct sql *s = calloc(1, sizeof *s);
    if (s == NULL) {
        rc = pg_fail(b, STORE_ERR, "out of memory");
        return mark ? abort_tx(b, rc) : rc;
    }
    select_sql(q, mark, s);
    PGresult *r = sql_run(b, s, PG_READ, &rc);
    free(s);
    if (r == NULL)
        return mark ? abort_tx(b, rc) : rc;
    size_t k = (size_t)PQntuples(r);
    struct store_selected *v = calloc(k > 0 ? k : 1, sizeof *v);
    int64_t *ids = malloc((k > 0 ? k : 1) * sizeof *ids);
    if (v == NULL || ids == NULL) {
        PQclear(r);
        free(v);
        free(ids);
        rc = pg_fail(b, STORE_ERR, "out of memory");
        return mark ? abort_tx(b, rc) : rc;
    }
    for (size_t i = 0; i < k; i++) {
        v[i].id = ids[i] = pg_int(r, (int)i, 0);
        v[i].before_type = STORE_INT; /* a bigint, NOT NULL */
        v[i].before_i = pg_int(r, (int)i, 1);
    }
    PQclear(r);
    if (mark && k > 0) {
        struct pg_params p = {0};
        pp_owned(&p, pg_int_array(ids, (int)k));
        pp_time(&p, now_ms);
        rc = pg_run_count(b, P_MARK, &p, NULL);
    }
    free(ids);
    if (rc == STORE_OK && mark)
        rc = st->ops->commit(st);
    if (rc != STORE_OK) {
        free(v);
        return mark ? abort_tx(b, rc) : rc;
    }
    if (k == 0) {
        free(v);
        v = NULL;
    }
    *out = v;
    *n = k;
    return STORE_OK;
}

/* The type of a column of the result as the tools print it. */
static enum store_type col_type(const PGresult *r, int c)
{
    switch (PQftype(r, c)) {
    case 20: /* int8 */
    case 21: /* int2 */
    case 23: /* int4 */
        return STORE_INT;
    case 700:  /* float4 */
    case 701:  /* float8 */
    case 1700: /* numeric */
        return STORE_REAL;
    default:
        return STORE_TEXT;
    }
}

enum store_rc pg_fetch(struct store *st, enum store_table table, const struct store_selected *c,
                       struct store_record *rec, int *found)
{
    struct pg *b = pg_of(st);
    int in = table == STORE_INBOUND;
    struct pg_params p = {0};
    pp_int(&p, c->id);
    enum store_rc rc;
    PGresult *r = pg_run(b, in ? P_FETCH_IN : P_FETCH_OUT, &p, &rc);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return STORE_OK;
    }
    int n = PQnfields(r);
    struct store_col *cols = calloc((size_t)(n > 0 ? n : 1), sizeof *cols);
    int64_t id = 0;
    for (int k = 0; cols != NULL && k < n; k++) {
        struct store_col *v = &cols[k];
        v->name = PQfname(r, k);
        if (PQgetisnull(r, 0, k)) {
            v->type = STORE_NULL;
        } else {
            v->type = col_type(r, k);
            if (v->type == STORE_INT)
                v->i = pg_int(r, 0, k);
            else if (v->type == STORE_REAL)
                v->r = strtod(PQgetvalue(r, 0, k), NULL);
            v->text = v->type == STORE_TEXT ? PQgetvalue(r, 0, k) : NULL;
            v->len = v->type == STORE_TEXT ? (size_t)PQgetlength(r, 0, k) : 0;
        }
        if (strcmp(v->name, "id") == 0)
            id = pg_int(r, 0, k);
        /* an inbound row's read_count as it was before the marking, if that was a number */
        if (in && strcmp(v->name, "read_count") == 0 &&
            (c->before_type == STORE_INT || c->before_type == STORE_REAL)) {
            v->type = c->before_type;
            v->i = c->before_i;
            v->r = c->before_r;
            v->text = NULL;
            v->len = 0;
        }
    }
    if (cols == NULL || store_record_fill(rec, id, cols, n) != 0)
        rc = pg_fail(b, STORE_ERR, "out of memory");
    else
        *found = 1;
    free(cols);
    PQclear(r);
    return rc;
}

enum store_rc pg_unmark(struct store *st, const struct store_selected *c, size_t n, int64_t now_ms)
{
    struct pg *b = pg_of(st);
    int64_t *ids = malloc((n > 0 ? n : 1) * sizeof *ids);
    if (ids == NULL)
        return pg_fail(b, STORE_ERR, "out of memory");
    for (size_t k = 0; k < n; k++)
        ids[k] = c[k].id;
    enum store_rc rc = st->ops->begin(st);
    if (rc == STORE_OK) {
        struct pg_params p = {0};
        pp_owned(&p, pg_int_array(ids, (int)n));
        pp_time(&p, now_ms);
        rc = pg_run_count(b, P_UNMARK, &p, NULL);
    }
    free(ids);
    if (rc == STORE_OK)
        rc = st->ops->commit(st);
    return rc == STORE_OK ? STORE_OK : abort_tx(b, rc);
}

/* ---- sg-clean ---- */

/*
 * A row's age is its updated_at read as a date-time text as julianday()
 * reads it (pg.c's PG_MS); anything else (garbage, '', 'now', a bare number)
 * has no known age, and is never deleted by age.
 */
#define UPDATED_MS PG_MS("updated_at")

/* The cutoff text (YYYY-MM-DDTHH:MM:SS.SSS, UTC) as ms since the epoch; 0, or -1 if not one. */
static int cutoff_ms(const char *t, int64_t *ms)
{
    int y, mo, d, h, mi, s, frac = 0, used = 0;
    if (t == NULL || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) != 6)
        return -1;
    if (t[used] == '.') {
        int digits = 0;
        for (const char *c = t + used + 1; *c >= '0' && *c <= '9'; c++)
            if (digits++ < 3)
                frac = frac * 10 + (*c - '0');
        while (digits > 0 && digits < 3)
            frac *= 10, digits++;
    }
    int64_t sec;
    if (clock_utc_seconds(y, mo, d, h, mi, s, &sec) != 0)
        return -1;
    *ms = sec * 1000 + frac;
    return 0;
}

/*
 * Appends the WHERE clause of p: its rows whose updated_at is before the
 * cutoff or, with unreadable, those whose updated_at is no time at all.
 */
static int purge_where(struct pg *b, const struct store_purge *p, int unreadable, struct sql *s)
{
    int first = 1;
    if (unreadable) {
        sql_cond(s, &first, UPDATED_MS " IS NULL");
    } else {
        int64_t cut;
        if (cutoff_ms(p->before, &cut) != 0) {
            (void)pg_fail(b, STORE_ERR, "internal error: the cutoff is not a UTC time text");
            return -1;
        }
        sql_cond(s, &first, UPDATED_MS " < ");
        sql_int(s, cut);
    }
    if (p->states != NULL) {
        sql_cond(s, &first, "state");
        sql_list(s, p->states, 64);
    }
    if (p->read_only && p->table == STORE_INBOUND)
        sql_cond(s, &first, "read_count > 0");
    if (p->peer != NULL) {
        sql_cond(s, &first, "peer = ");
        sql_text(s, p->peer);
    }
    return 0;
}

/* Runs "head <table> <where of p> tail". */
static PGresult *purge_run(struct pg *b, const struct store_purge *p, const char *head,
                           int unreadable, const char *tail, int flags, enum store_rc *rc)
{
    struct sql *s = calloc(1, sizeof *s);
    if (s == NULL) {
        *rc = pg_fail(b, STORE_ERR, "out of memory");
        return NULL;
    }
    sql_add(s, head);
    sql_add(s, table_name(p->table));
    PGresult *r = NULL;
    if (purge_where(b, p, unreadable, s) != 0) {
        pp_free(&s->p);
        *rc = STORE_ERR;
    } else {
        sql_add(s, tail);
        r = sql_run(b, s, flags, rc);
    }
    free(s);
    return r;
}

/* The (state, count) rows of r (freed here) into *out and *n. */
static enum store_rc collect_states(struct pg *b, PGresult *r, struct store_state_count **out,
                                    size_t *n)
{
    size_t k = (size_t)PQntuples(r);
    struct store_state_count *v = k > 0 ? calloc(k, sizeof *v) : NULL;
    if (k > 0 && v == NULL) {
        PQclear(r);
        return pg_fail(b, STORE_ERR, "out of memory");
    }
    for (size_t i = 0; i < k; i++) {
        const char *state = pg_text(r, (int)i, 0);
        snprintf(v[i].state, sizeof v[i].state, "%s", state != NULL ? state : "(null)");
        v[i].n = pg_int(r, (int)i, 1);
    }
    PQclear(r);
    *out = v;
    *n = k;
    return STORE_OK;
}

enum store_rc pg_purge_count(struct store *st, const struct store_purge *p,
                             struct store_state_count **out, size_t *n)
{
    struct pg *b = pg_of(st);
    enum store_rc rc;
    PGresult *r = purge_run(b, p, "SELECT state, count(*) FROM ", 0,
                            " GROUP BY 1 ORDER BY 1 NULLS FIRST", PG_READ, &rc);
    return r != NULL ? collect_states(b, r, out, n) : rc;
}

/* Every row of a table by state, in state order (NULL first, as SQLite orders it). */
enum store_rc pg_count_states(struct store *st, enum store_table table,
                              struct store_state_count **out, size_t *n)
{
    struct pg *b = pg_of(st);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT state, count(*) FROM %s GROUP BY 1 ORDER BY 1 NULLS FIRST",
             table_name(table));
    struct pg_params p = {0};
    enum store_rc rc;
    PGresult *r = pg_run_sql(b, sql, PG_READ, &p, &rc);
    return r != NULL ? collect_states(b, r, out, n) : rc;
}

enum store_rc pg_purge_unreadable(struct store *st, const struct store_purge *p, int64_t *n)
{
    struct pg *b = pg_of(st);
    enum store_rc rc;
    PGresult *r = purge_run(b, p, "SELECT count(*) FROM ", 1, "", PG_READ, &rc);
    if (r == NULL)
        return rc;
    *n = PQntuples(r) > 0 ? pg_int(r, 0, 0) : 0;
    PQclear(r);
    return STORE_OK;
}

enum store_rc pg_purge(struct store *st, const struct store_purge *p, size_t n, int64_t *deleted)
{
    struct pg *b = pg_of(st);
    enum store_rc rc = st->ops->begin(st);
    for (size_t k = 0; k < n && rc == STORE_OK; k++) {
        int flags = p[k].table == STORE_OUTBOUND ? PG_W_OUT | PG_QUIET : PG_W_IN | PG_QUIET;
        PGresult *r = purge_run(b, &p[k], "DELETE FROM ", 0, "", flags, &rc);
        if (r != NULL) {
            deleted[k] = pg_changed(r);
            PQclear(r);
        }
    }
    if (rc == STORE_OK)
        rc = st->ops->commit(st);
    return rc == STORE_OK ? STORE_OK : abort_tx(b, rc);
}

/*
 * VACUUM (not FULL: that rewrites the tables under an exclusive lock, and
 * the daemon's turns would wait for it): the deleted rows' space is reused,
 * and empty pages at the tables' ends are given back. Not held to
 * statement_timeout; a table this role does not own is skipped (a warning).
 */
enum store_rc pg_vacuum(struct store *st)
{
    struct pg *b = pg_of(st);
    b->why[0] = '\0';
    if (!pg_live(b) && pg_reconnect(b) != 0)
        return b->gone ? STORE_GONE : STORE_ERR;
    enum store_rc rc = pg_simple(b, "SET statement_timeout = 0", NULL);
    if (rc == STORE_OK)
        rc = pg_simple(b, "VACUUM (ANALYZE) outbound_messages, inbound_messages, peer_sequence",
                       NULL);
    char why[sizeof b->why];
    memcpy(why, b->why, sizeof why);
    int stmt_ms = pg_statement_timeout_ms(b);
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %d", stmt_ms);
    (void)pg_simple(b, sql, NULL);
    memcpy(b->why, why, sizeof why);
    return rc;
}
