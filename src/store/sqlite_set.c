/*
 * sqlite_set: several rows in one statement, for the SQLite backend. The rows
 * go as one JSON array bound to ?1 and read back with json_each; the
 * statements (sqlite.c) are UPDATE OR ABORT, so a refused row undoes the
 * whole statement and the caller (sqlite_queue.c) tries the rows one at a
 * time, which names the row at fault. That is allowed only when the table has
 * no trigger (only a trigger can end the whole transaction, RAISE(ROLLBACK),
 * and then the row at fault could not be named) and, for changes that carry
 * values, no row comes twice (one at a time, the last change of a row wins).
 * Also the set-based claim: one UPDATE ... RETURNING per turn.
 */
#include "store/sqlite_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JSON text under construction (malloc'd); oom once it could not grow. */
struct json {
    char *p;
    size_t len, cap;
    int oom;
};

static void json_add(struct json *j, const char *s, size_t n)
{
    if (j->oom)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *p = realloc(j->p, cap);
        if (p == NULL) {
            j->oom = 1;
            return;
        }
        j->p = p;
        j->cap = cap;
    }
    memcpy(j->p + j->len, s, n);
    j->len += n;
    j->p[j->len] = '\0';
}

static void json_int(struct json *j, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    json_add(j, t, (size_t)n);
}

/* A JSON string of s (NULL: null); control characters escaped, other bytes as they are. */
static void json_text(struct json *j, const char *s)
{
    if (s == NULL) {
        json_add(j, "null", 4);
        return;
    }
    json_add(j, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char t[8];
        if (c == '"' || c == '\\') {
            t[0] = '\\';
            t[1] = (char)c;
            json_add(j, t, 2);
        } else if (c < 0x20) {
            int len = snprintf(t, sizeof t, "\\u%04x", c);
            json_add(j, t, (size_t)len);
        } else {
            json_add(j, (const char *)&c, 1);
        }
    }
    json_add(j, "\"", 1);
}

/* 1 if rows of table may change in one statement: no trigger on it, n > 1. */
int sq_set_allowed(struct sq *b, const char *table, int n)
{
    if (n < 2)
        return 0;
    sqlite3_stmt *s = sq_stmt(b, Q_TRIGGERS);
    if (s != NULL)
        sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
    int row, none = 0;
    if (sq_step(b, s, &row) == STORE_OK) {
        none = row && sqlite3_column_int(s, 0) == 0;
        sqlite3_reset(s);
    }
    return none;
}

static int cmp_id(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, c = *(const int64_t *)y;
    return a < c ? -1 : a > c;
}

int sq_rowids_unique(const struct store_sent *rows, int n)
{
    int64_t *v = malloc((size_t)n * sizeof *v);
    if (v == NULL)
        return 0;
    for (int i = 0; i < n; i++)
        v[i] = rows[i].rowid;
    qsort(v, (size_t)n, sizeof *v, cmp_id);
    int unique = 1;
    for (int i = 1; i < n && unique; i++)
        unique = v[i] != v[i - 1];
    free(v);
    return unique;
}

/*
 * Runs the set statement q over the JSON array j (bound to ?1) at now (?2);
 * *changed gets the rows it changed. Frees j.
 */
static enum store_rc run_set(struct sq *b, enum sq_query q, struct json *j, int64_t now_ms,
                             int *changed)
{
    enum store_rc rc;
    if (j->oom) {
        snprintf(b->why, sizeof b->why, "out of memory");
        rc = STORE_ERR;
    } else {
        sqlite3_stmt *s = sq_stmt(b, q);
        if (s != NULL) {
            sqlite3_bind_text(s, 1, j->p, (int)j->len, SQLITE_STATIC);
            sq_bind_time(s, 2, now_ms);
        }
        rc = sq_run_counting(b, s, changed);
    }
    free(j->p);
    memset(j, 0, sizeof *j);
    return rc;
}

/* An array of [rowid, retry_count, why] for Q_SENT_SET / Q_FAILED_SET. */
enum store_rc sq_set_changes(struct sq *b, enum sq_query q, const struct store_sent *v, int n,
                             int64_t now_ms)
{
    struct json j = {0};
    json_add(&j, "[", 1);
    for (int k = 0; k < n; k++) {
        json_add(&j, k > 0 ? ",[" : "[", k > 0 ? 2 : 1);
        json_int(&j, v[k].rowid);
        json_add(&j, ",", 1);
        json_int(&j, v[k].retry_count);
        json_add(&j, ",", 1);
        json_text(&j, v[k].why);
        json_add(&j, "]", 1);
    }
    json_add(&j, "]", 1);
    return run_set(b, q, &j, now_ms, NULL);
}

enum store_rc sq_set_rowids(struct sq *b, enum sq_query q, const int64_t *rowids, int n,
                            int64_t now_ms, int *changed)
{
    struct json j = {0};
    json_add(&j, "[", 1);
    for (int k = 0; k < n; k++) {
        if (k > 0)
            json_add(&j, ",", 1);
        json_int(&j, rowids[k]);
    }
    json_add(&j, "]", 1);
    return run_set(b, q, &j, now_ms, changed);
}

enum store_rc sq_set_message_ids(struct sq *b, enum sq_query q, const char *const *ids, int n,
                                 int64_t now_ms)
{
    struct json j = {0};
    json_add(&j, "[", 1);
    for (int k = 0; k < n; k++) {
        if (k > 0)
            json_add(&j, ",", 1);
        json_text(&j, ids[k]);
    }
    json_add(&j, "]", 1);
    return run_set(b, q, &j, now_ms, NULL);
}

/* ---- the set-based claim ---- */

static int cmp_row(const void *x, const void *y)
{
    const struct store_outbound_row *a = x, *c = y;
    return a->rowid < c->rowid ? -1 : a->rowid > c->rowid;
}

enum store_rc sq_outbound_claim(struct store *st, int limit, int64_t now_ms, struct store_rows *out)
{
    struct sq *b = sq_of(st);
    /* Every row the statement claims must be kept, or given back: its changes are made
     * at the first step, whatever the buffer holds. */
    int64_t *lost = malloc((size_t)(limit > 0 ? limit : 1) * sizeof *lost);
    if (lost == NULL) {
        snprintf(b->why, sizeof b->why, "out of memory");
        return STORE_ERR;
    }
    int nlost = 0, row;
    sqlite3_stmt *s = sq_stmt(b, Q_CLAIM);
    if (s != NULL) {
        sqlite3_bind_int(s, 1, limit);
        sq_bind_time(s, 2, now_ms);
    }
    enum store_rc rc;
    while ((rc = sq_step(b, s, &row)) == STORE_OK && row) {
        struct store_outbound_row r;
        sq_outbound_columns(s, &r);
        if (store_rows_add_out(out, &r) != 0 && nlost < limit)
            lost[nlost++] = r.rowid;
    }
    if (rc == STORE_OK) {
        sqlite3_reset(s);
        qsort(out->out, (size_t)out->n, sizeof *out->out, cmp_row); /* RETURNING: any order */
        if (nlost > 0)
            rc = sq_outbound_release(st, lost, nlost, now_ms);
    }
    free(lost);
    if (rc != STORE_OK)
        out->n = 0;
    return rc;
}

enum store_rc sq_outbound_identify(struct store *st, int64_t rowid, const char *message_id,
                                   const char *payload, size_t payload_len, int64_t now_ms)
{
    return sq_write_identity(sq_of(st), Q_IDENTIFY, rowid, message_id, payload, payload_len, 0,
                             now_ms, "the update of a claimed row");
}

enum store_rc sq_outbound_release(struct store *st, const int64_t *rowids, int n, int64_t now_ms)
{
    return sq_set_rowids(sq_of(st), Q_RELEASE, rowids, n, now_ms, NULL);
}
