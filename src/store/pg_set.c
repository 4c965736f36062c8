/*
 * pg_set: several rows in one statement, for the PostgreSQL backend: the
 * rows go as array parameters, unnested by the statement (pg.c's *_SET
 * texts), one round trip for a turn's rows of one kind where one row at a
 * time would cost one each. The outcome is that of one row at a time: a set
 * statement is used only when no row comes twice (one at a time, the last
 * change of a row wins), and one that is refused (only a rule of the
 * operator's can refuse a row, and then it runs in a savepoint: pg.c) has
 * undone itself, and the rows are tried one at a time, which names the row
 * at fault. If the refusal ended the transaction instead, the call ends
 * there: rows applied one at a time after it would be committed on their own.
 *
 * Also the set-based claim (one UPDATE ... RETURNING per turn) with its
 * identify and release, and the inbound inserts.
 */
#include "store/pg_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_id(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, c = *(const int64_t *)y;
    return a < c ? -1 : a > c;
}

/* 1 if no id comes twice in ids[0..n); 0 also when out of memory (then one at a time). */
static int unique_ids(const int64_t *ids, int n)
{
    int64_t *v = malloc((size_t)n * sizeof *v);
    if (v == NULL)
        return 0;
    memcpy(v, ids, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_id);
    int unique = 1;
    for (int i = 1; i < n && unique; i++)
        unique = v[i] != v[i - 1];
    free(v);
    return unique;
}

/*
 * The outcome of a set statement over n rows: 1 if final (*done, if not
 * NULL, says how many rows it applied), 0 if it was refused, undid itself,
 * and the rows are to be tried one at a time. in_tx: a transaction was open
 * before it.
 */
static int set_final(struct pg *b, enum store_rc rc, int n, int in_tx, int *done)
{
    if ((rc == STORE_REFUSED || rc == STORE_DUP) && (!in_tx || pg_tx_open(b)))
        return 0;
    if (done != NULL)
        *done = rc == STORE_OK ? n : 0;
    return 1;
}

/*
 * Runs P_SENT or P_FAILED (or their set form qset) for each of v[0..n):
 * (rowid, retry_count, why or NULL, now), and for 'sent' this connection's
 * lease.
 */
static enum store_rc rows_update(struct pg *b, enum pg_query q, enum pg_query qset,
                                 const struct store_sent *v, int n, int64_t now_ms, int *done)
{
    int lease = q == P_SENT, in_tx = pg_tx_open(b);
    enum store_rc rc = STORE_OK;
    int64_t *ids = n > 1 ? malloc((size_t)n * sizeof *ids) : NULL;
    if (ids != NULL) {
        for (int i = 0; i < n; i++)
            ids[i] = v[i].rowid;
        if (unique_ids(ids, n)) {
            int64_t *retries = malloc((size_t)n * sizeof *retries);
            const char **whys = malloc((size_t)n * sizeof *whys);
            struct pg_params p = {0};
            for (int i = 0; retries != NULL && whys != NULL && i < n; i++) {
                retries[i] = v[i].retry_count;
                whys[i] = v[i].why;
            }
            pp_owned(&p, pg_int_array(ids, n));
            pp_owned(&p, retries != NULL ? pg_int_array(retries, n) : NULL);
            pp_owned(&p, whys != NULL ? pg_text_array(whys, n) : NULL);
            free(retries);
            free(whys);
            pp_time(&p, now_ms);
            if (lease) {
                pp_text(&p, b->me);
                pp_int(&p, PG_LEASE_S);
            }
            rc = pg_run_count(b, qset, &p, NULL);
            if (set_final(b, rc, n, in_tx, done)) {
                free(ids);
                return rc;
            }
            rc = STORE_OK;
        }
        free(ids);
    }
    int i = 0;
    for (; i < n && rc == STORE_OK; i++) {
        struct pg_params p = {0};
        pp_int(&p, v[i].rowid);
        pp_int(&p, v[i].retry_count);
        pp_text(&p, v[i].why);
        pp_time(&p, now_ms);
        if (lease) {
            pp_text(&p, b->me);
            pp_int(&p, PG_LEASE_S);
        }
        rc = pg_run_count(b, q, &p, NULL);
    }
    if (done != NULL)
        *done = rc == STORE_OK ? n : i - 1;
    return rc;
}

enum store_rc pg_outbound_sent(struct store *st, const struct store_sent *v, int n, int64_t now_ms,
                               int *done)
{
    return rows_update(pg_of(st), P_SENT, P_SENT_SET, v, n, now_ms, done);
}

enum store_rc pg_outbound_failed(struct store *st, const struct store_sent *v, int n,
                                 int64_t now_ms, int *done)
{
    return rows_update(pg_of(st), P_FAILED, P_FAILED_SET, v, n, now_ms, done);
}

/*
 * Runs the statement q (key, now), or its set form qset (keys as an array,
 * now), for rowids[0..n) or, if rowids is NULL, message_ids ids[0..n);
 * *matched (if not NULL) gets the rows changed.
 */
static enum store_rc by_key(struct pg *b, enum pg_query q, enum pg_query qset,
                            const int64_t *rowids, const char *const *ids, int n, int64_t now_ms,
                            int *matched, int *done)
{
    int in_tx = pg_tx_open(b), changed = 0;
    enum store_rc rc = STORE_OK;
    if (n > 1) {
        struct pg_params p = {0};
        pp_owned(&p, rowids != NULL ? pg_int_array(rowids, n) : pg_text_array(ids, n));
        pp_time(&p, now_ms);
        rc = pg_run_count(b, qset, &p, &changed);
        if (set_final(b, rc, n, in_tx, done)) {
            if (rc == STORE_OK && matched != NULL)
                *matched += changed;
            return rc;
        }
        rc = STORE_OK;
    }
    int i = 0;
    for (; i < n && rc == STORE_OK; i++) {
        struct pg_params p = {0};
        if (rowids != NULL)
            pp_int(&p, rowids[i]);
        else
            pp_text(&p, ids[i]);
        pp_time(&p, now_ms);
        changed = 0;
        rc = pg_run_count(b, q, &p, &changed);
        if (rc == STORE_REFUSED && rowids == NULL && p.bad != NULL)
            rc = STORE_OK; /* a message_id no text column can hold: no row has it */
        if (rc == STORE_OK && matched != NULL)
            *matched += changed > 0;
    }
    if (done != NULL)
        *done = rc == STORE_OK ? n : i - 1;
    return rc;
}

enum store_rc pg_outbound_acked(struct store *st, const int64_t *rowids, int n, int64_t now_ms,
                                int *matched, int *done)
{
    return by_key(pg_of(st), P_ACKED, P_ACKED_SET, rowids, NULL, n, now_ms, matched, done);
}

enum store_rc pg_inbound_ack_sent(struct store *st, const char *const *ids, int n, int64_t now_ms,
                                  int *done)
{
    return by_key(pg_of(st), P_IN_ACK_SENT, P_IN_ACK_SENT_SET, NULL, ids, n, now_ms, NULL, done);
}

enum store_rc pg_inbound_ack_sent_rows(struct store *st, const int64_t *rowids, int n,
                                       int64_t now_ms, int *done)
{
    return by_key(pg_of(st), P_IN_ACK_SENT_ROW, P_IN_ACK_SENT_ROW_SET, rowids, NULL, n, now_ms,
                  NULL, done);
}

enum store_rc pg_inbound_ack_failed(struct store *st, const char *const *ids, int n, int64_t now_ms,
                                    int *done)
{
    return by_key(pg_of(st), P_IN_ACK_FAILED, P_IN_ACK_FAILED_SET, NULL, ids, n, now_ms, NULL,
                  done);
}

/* ---- inbound inserts ---- */

/* After an insert that stored nothing: is it a duplicate, our own id, or refused? */
static enum store_rc inbound_why_not(struct pg *b, const struct store_inbound *m,
                                     enum store_in_result *res, const char *refusal)
{
    struct pg_params p = {0};
    pp_text(&p, m->message_id);
    enum store_rc rc;
    PGresult *r = pg_run(b, P_IN_EXISTS, &p, &rc);
    if (r == NULL)
        return rc;
    int stored = pg_int(r, 0, 0) != 0, ours = pg_int(r, 0, 1) != 0;
    PQclear(r);
    if (stored) {
        *res = STORE_IN_DUP;
        return STORE_OK;
    }
    if (ours && !m->to_self) {
        *res = STORE_IN_OWN;
        return STORE_OK;
    }
    return pg_fail(b, STORE_REFUSED, refusal);
}

#define NOTHING_STORED "the insert stored nothing (a trigger, or a UNIQUE index of the operator's?)"

/* The parameters of one row's P_IN_INSERT. */
static void insert_params(struct pg_params *p, const struct store_inbound *m, int64_t now_ms)
{
    char ts[32];
    store_format_ns(m->crypto_ts_ns, ts);
    pp_text(p, m->message_id);
    pp_text(p, m->src_addr);
    pp_int(p, m->src_port);
    pp_bytes(p, m->payload != NULL ? m->payload : "", m->payload_len);
    pp_short(p, ts);
    pp_time(p, now_ms);
    pp_text(p, m->peer);
    if (m->sequence > 0)
        pp_int(p, m->sequence);
    else
        pp_text(p, NULL); /* 0: none, stored as NULL */
    pp_text(p, m->to_self ? "true" : "false");
}

static enum store_rc insert_one(struct pg *b, const struct store_inbound *m, int64_t now_ms,
                                enum store_in_result *res, int64_t *rowid)
{
    *rowid = 0;
    struct pg_params p = {0};
    insert_params(&p, m, now_ms);
    enum store_rc rc;
    PGresult *r = pg_run(b, P_IN_INSERT, &p, &rc);
    if (r == NULL)
        return rc;
    int made = PQntuples(r) == 1;
    if (made)
        *rowid = pg_int(r, 0, 0);
    PQclear(r);
    if (!made)
        return inbound_why_not(b, m, res, NOTHING_STORED);
    *res = STORE_IN_NEW;
    if (*rowid > b->watch.own_in)
        b->watch.own_in = *rowid;
    return STORE_OK;
}

/* 1 if the n rows may go as one statement: n > 1, each one's text fit, no message_id twice. */
static int set_insert_allowed(const struct store_inbound *m, int n)
{
    if (n < 2)
        return 0;
    for (int i = 0; i < n; i++) {
        struct pg_params p = {0};
        insert_params(&p, &m[i], 0);
        if (p.bad != NULL || m[i].message_id == NULL || m[i].src_addr == NULL)
            return 0;
        for (int k = 0; k < i; k++)
            if (strcmp(m[k].message_id, m[i].message_id) == 0)
                return 0;
    }
    return 1;
}

/* A text[] literal of n strings of the rows (field f), or the payloads (lengths given). */
static char *column_array(const struct store_inbound *m, int n, int f)
{
    const char **v = malloc((size_t)n * sizeof *v);
    char(*ts)[32] = f == 4 ? malloc((size_t)n * sizeof *ts) : NULL;
    char **copies = f == 3 ? calloc((size_t)n, sizeof *copies) : NULL;
    char *lit = NULL;
    if (v == NULL || (f == 4 && ts == NULL) || (f == 3 && copies == NULL))
        goto out;
    for (int i = 0; i < n; i++) {
        switch (f) {
        case 0:
            v[i] = m[i].message_id;
            break;
        case 1:
            v[i] = m[i].src_addr;
            break;
        case 3: /* the payload is not NUL-terminated */
            if ((copies[i] = strndup(m[i].payload != NULL ? m[i].payload : "", m[i].payload_len)) ==
                NULL)
                goto out;
            v[i] = copies[i];
            break;
        case 4:
            store_format_ns(m[i].crypto_ts_ns, ts[i]);
            v[i] = ts[i];
            break;
        default:
            v[i] = m[i].peer;
            break;
        }
    }
    lit = pg_text_array(v, n);
out:
    for (int i = 0; copies != NULL && i < n; i++)
        free(copies[i]);
    free(copies);
    free(ts);
    free((void *)v);
    return lit;
}

/* The bigint[] or boolean[] literal of a field of the rows (2 port, 6 sequence, 7 to_self). */
static char *number_array(const struct store_inbound *m, int n, int f)
{
    size_t cap = (size_t)n * 24 + 3, at = 0;
    char *lit = malloc(cap);
    if (lit == NULL)
        return NULL;
    lit[at++] = '{';
    for (int i = 0; i < n; i++) {
        const char *sep = i > 0 ? "," : "";
        if (f == 7)
            at += (size_t)snprintf(lit + at, cap - at, "%s%c", sep, m[i].to_self ? 't' : 'f');
        else if (f == 2)
            at += (size_t)snprintf(lit + at, cap - at, "%s%u", sep, m[i].src_port);
        else if (m[i].sequence > 0)
            at += (size_t)snprintf(lit + at, cap - at, "%s%lld", sep, (long long)m[i].sequence);
        else
            at += (size_t)snprintf(lit + at, cap - at, "%sNULL", sep); /* 0: none */
    }
    snprintf(lit + at, cap - at, "}");
    return lit;
}

/*
 * The n rows in one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
 * NOTHING RETURNING id, message_id: each row returned is new, the others are
 * told apart as one at a time would (duplicate, our own, refused: the call
 * stops there; rows after a refused one were stored all the same, and a later
 * call finds them as duplicates).
 */
static enum store_rc insert_set(struct pg *b, const struct store_inbound *m, int n, int64_t now_ms,
                                enum store_in_result *res, int64_t *rowids, int *done, int *undone)
{
    struct pg_params p = {0};
    pp_owned(&p, column_array(m, n, 0));
    pp_owned(&p, column_array(m, n, 1));
    pp_owned(&p, number_array(m, n, 2));
    pp_owned(&p, column_array(m, n, 3));
    pp_owned(&p, column_array(m, n, 4));
    pp_owned(&p, column_array(m, n, 5));
    pp_owned(&p, number_array(m, n, 6));
    pp_owned(&p, number_array(m, n, 7));
    pp_time(&p, now_ms);
    enum store_rc rc;
    PGresult *r = pg_run(b, P_IN_INSERT_SET, &p, &rc);
    *undone = r == NULL; /* the statement failed: nothing of it was done */
    if (r == NULL)
        return rc;
    for (int i = 0; i < n; i++)
        rowids[i] = 0;
    for (int k = 0; k < PQntuples(r); k++) {
        const char *id = pg_text(r, k, 1);
        for (int i = 0; id != NULL && i < n; i++)
            if (rowids[i] == 0 && strcmp(m[i].message_id, id) == 0) {
                rowids[i] = pg_int(r, k, 0);
                if (rowids[i] > b->watch.own_in)
                    b->watch.own_in = rowids[i];
                break;
            }
    }
    PQclear(r);
    rc = STORE_OK;
    int i = 0;
    for (; i < n && rc == STORE_OK; i++)
        if (rowids[i] != 0)
            res[i] = STORE_IN_NEW;
        else
            rc = inbound_why_not(b, &m[i], &res[i], NOTHING_STORED);
    *done = rc == STORE_OK ? n : i - 1;
    return rc;
}

enum store_rc pg_inbound_insert(struct store *st, const struct store_inbound *m, int n,
                                int64_t now_ms, enum store_in_result *res, int64_t *rowids,
                                int *done)
{
    struct pg *b = pg_of(st);
    int64_t *ids = rowids != NULL ? rowids : malloc((size_t)n * sizeof *ids);
    int applied = 0, undone = 0, in_tx = pg_tx_open(b);
    enum store_rc rc = STORE_OK;
    if (ids == NULL)
        return pg_fail(b, STORE_ERR, "out of memory");
    if (set_insert_allowed(m, n)) {
        rc = insert_set(b, m, n, now_ms, res, ids, &applied, &undone);
        if (!undone || set_final(b, rc, n, in_tx, NULL)) {
            if (done != NULL)
                *done = applied;
            if (ids != rowids)
                free(ids);
            return rc;
        }
        rc = STORE_OK; /* refused as a whole: one at a time, which names the row */
    }
    int i = 0;
    for (; i < n && rc == STORE_OK; i++)
        rc = insert_one(b, &m[i], now_ms, &res[i], &ids[i]);
    if (done != NULL)
        *done = rc == STORE_OK ? n : i - 1;
    if (ids != rowids)
        free(ids);
    return rc;
}

/* ---- the set-based claim ---- */

static int cmp_row(const void *x, const void *y)
{
    const struct store_outbound_row *a = x, *c = y;
    return a->rowid < c->rowid ? -1 : a->rowid > c->rowid;
}

enum store_rc pg_outbound_claim(struct store *st, int limit, int64_t now_ms, struct store_rows *out)
{
    struct pg *b = pg_of(st);
    /* Every row the statement claims is kept, or given back. */
    int64_t *lost = malloc((size_t)(limit > 0 ? limit : 1) * sizeof *lost);
    if (lost == NULL)
        return pg_fail(b, STORE_ERR, "out of memory");
    struct pg_params p = {0};
    pp_int(&p, limit);
    pg_exclusion_params(b, &p);
    pp_text(&p, b->me);
    pp_int(&p, PG_LEASE_S);
    pp_time(&p, now_ms);
    enum store_rc rc;
    PGresult *res = pg_run(b, P_CLAIM, &p, &rc);
    int nlost = 0;
    if (res != NULL) {
        for (int i = 0; i < PQntuples(res); i++) {
            struct store_outbound_row r;
            pg_outbound_columns(res, i, &r);
            if (store_rows_add_out(out, &r) != 0 && nlost < limit)
                lost[nlost++] = r.rowid;
        }
        /* the copies are out's: sorted (RETURNING comes in any order) before res goes */
        qsort(out->out, (size_t)out->n, sizeof *out->out, cmp_row);
        PQclear(res);
        if (nlost > 0)
            rc = pg_outbound_release(st, lost, nlost, now_ms);
    }
    free(lost);
    if (rc != STORE_OK)
        out->n = 0;
    return rc;
}

enum store_rc pg_outbound_identify(struct store *st, int64_t rowid, const char *message_id,
                                   const char *payload, size_t payload_len, int64_t now_ms)
{
    return pg_write_identity(pg_of(st), P_IDENTIFY, rowid, message_id, payload, payload_len, 0,
                             now_ms, "the update of a claimed row");
}

enum store_rc pg_outbound_release(struct store *st, const int64_t *rowids, int n, int64_t now_ms)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_owned(&p, pg_int_array(rowids, n));
    pp_time(&p, now_ms);
    pp_text(&p, b->me);
    return pg_run_count(b, P_RELEASE, &p, NULL);
}

/* ---- the claim of a set of rows ---- */

/* The set form is for rows PostgreSQL text can hold, each message_id given. */
static int take_set_allowed(const struct store_take *v, int n)
{
    for (int i = 0; i < n; i++) {
        struct pg_params p = {0};
        pp_bytes(&p, v[i].payload, v[i].payload_len);
        pp_bytes(&p, v[i].message_id, v[i].message_id != NULL ? strlen(v[i].message_id) : 0);
        if (p.bad != NULL || v[i].message_id == NULL)
            return 0;
    }
    return 1;
}

/* The sequences as a bigint[] literal, NULL for none (0). */
static char *sequence_array(const struct store_take *v, int n)
{
    size_t cap = (size_t)n * 24 + 3, at = 0;
    char *lit = malloc(cap);
    if (lit == NULL)
        return NULL;
    lit[at++] = '{';
    for (int i = 0; i < n; i++)
        at += (size_t)(v[i].sequence > 0 ? snprintf(lit + at, cap - at, "%s%lld", i ? "," : "",
                                                    (long long)v[i].sequence)
                                         : snprintf(lit + at, cap - at, "%sNULL", i ? "," : ""));
    snprintf(lit + at, cap - at, "}");
    return lit;
}

/* The four arrays of P_TAKE_SET's parameters; 0, or -1 out of memory. */
static int take_set_params(struct pg_params *p, const struct store_take *v, int n)
{
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    const char **mids = malloc((size_t)n * sizeof *mids);
    char **bodies = calloc((size_t)n, sizeof *bodies);
    int ok = ids != NULL && mids != NULL && bodies != NULL;
    for (int i = 0; ok && i < n; i++) {
        ids[i] = v[i].rowid;
        mids[i] = v[i].message_id;
        /* the payload need not end in a NUL */
        if (v[i].payload != NULL && (bodies[i] = strndup(v[i].payload, v[i].payload_len)) == NULL)
            ok = 0;
    }
    if (ok) {
        char *lits[4] = {pg_int_array(ids, n), pg_text_array(mids, n),
                         pg_text_array((const char *const *)bodies, n), sequence_array(v, n)};
        for (int k = 0; k < 4; k++) {
            ok = ok && lits[k] != NULL;
            pp_owned(p, lits[k]);
        }
    }
    for (int i = 0; bodies != NULL && i < n; i++)
        free(bodies[i]);
    free(bodies);
    free(mids);
    free(ids);
    return ok ? 0 : -1;
}

/*
 * One statement for the set (P_TAKE_SET); the first row it did not take is
 * then taken alone, which tells why (pg_write_identity). One at a time when
 * the table has an operator's rules (each write in its savepoint), or a row
 * cannot go in an array.
 */
enum store_rc pg_outbound_take_set(struct store *st, const struct store_take *v, int n,
                                   int64_t now_ms, int *failed)
{
    struct pg *b = pg_of(st);
    enum store_rc rc = STORE_OK;
    *failed = 0;
    if (n < 2 || (b->rules & PG_W_OUT) || !take_set_allowed(v, n)) {
        for (int i = 0; i < n && rc == STORE_OK; i++) {
            rc = pg_outbound_take(st, v[i].rowid, v[i].message_id, v[i].payload, v[i].payload_len,
                                  v[i].sequence, now_ms);
            *failed = i;
        }
        return rc;
    }
    struct pg_params p = {0};
    if (take_set_params(&p, v, n) != 0) {
        pp_free(&p);
        return pg_fail(b, STORE_ERR, "out of memory");
    }
    pp_time(&p, now_ms);
    pp_text(&p, b->me);
    pp_int(&p, PG_LEASE_S);
    PGresult *r = pg_run(b, P_TAKE_SET, &p, &rc);
    if (r == NULL)
        return rc;
    char *taken = calloc((size_t)n, 1);
    if (taken == NULL) {
        PQclear(r);
        return pg_fail(b, STORE_ERR, "out of memory");
    }
    for (int k = 0; k < PQntuples(r); k++) {
        int64_t ord = pg_int(r, k, 0);
        if (ord >= 1 && ord <= n)
            taken[ord - 1] = 1;
    }
    PQclear(r);
    int i = 0;
    while (i < n && taken[i])
        i++;
    free(taken);
    if (i == n)
        return STORE_OK;
    *failed = i;
    rc = pg_outbound_take(st, v[i].rowid, v[i].message_id, v[i].payload, v[i].payload_len,
                          v[i].sequence, now_ms);
    return rc != STORE_OK
               ? rc
               : pg_fail(b, STORE_REFUSED, "the update to 'sent' of the set left it out");
}
