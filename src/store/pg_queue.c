/*
 * pg_queue: the PostgreSQL backend's rows for the daemon, one statement per
 * call (pg.c's table), the rows copied into the caller's struct store_rows
 * before the result is freed. The sets the claim leaves out (full windows,
 * silent peers, skipped rows) live here in memory, this connection's own as
 * SQLite's temp tables are, and go to the statements as array parameters
 * (no temp tables: their create and drop churn the catalog).
 *
 * Claims (see pg.c's LIVE): in the daemon's turn the pending rows are read
 * FOR UPDATE SKIP LOCKED and claimed pending -> sent with claimed_by = this
 * connection and a lease; the rows left 'sent' that store_outbound_load_sent
 * gives are this connection's and those whose lease has ended (it takes them
 * over); store_recover_sending moves back to 'pending' only rows whose lease
 * has ended. So several daemons on one database never send one row twice,
 * and a daemon that stopped has its rows taken back at once by the next.
 */
#include "store/pg_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pg_outbound_columns(const PGresult *res, int i, struct store_outbound_row *r)
{
    memset(r, 0, sizeof *r);
    r->rowid = pg_int(res, i, 0);
    r->message_id = pg_text(res, i, 1);
    r->dst_addr = pg_text(res, i, 2) != NULL ? pg_text(res, i, 2) : "";
    r->dst_port_text = pg_text(res, i, 3) != NULL ? pg_text(res, i, 3) : "";
    r->retry_count = pg_int(res, i, 4);
    if (r->retry_count < 0)
        r->retry_count = 0; /* a script's negative count would buy endless retries */
    r->dst_port = pg_int(res, i, 5);
    r->peer = pg_text(res, i, 6);
    r->sequence = pg_int(res, i, 7) > 0 ? pg_int(res, i, 7) : 0;
    r->created_ms = pg_int(res, i, 8); /* NULL (not a time) reads as 0 */
}

/*
 * Copies the outbound rows of res into out: the columns of
 * pg_outbound_columns, then age_ms, then the payload (NULL when over max) and
 * its size, where res has them. Frees res.
 */
static enum store_rc outbound_rows(PGresult *res, size_t max, struct store_rows *out)
{
    int n = PQntuples(res), ncols = PQnfields(res);
    for (int i = 0; i < n; i++) {
        struct store_outbound_row r;
        pg_outbound_columns(res, i, &r);
        if (ncols > 9)
            r.age_ms = pg_int(res, i, 9);
        if (ncols > 11) {
            r.payload = pg_text(res, i, 10);
            r.payload_len = (size_t)pg_int(res, i, 11);
            if (r.payload != NULL)
                r.payload_len = (size_t)PQgetlength(res, i, 10);
            if (r.payload_len > max)
                r.payload = NULL;
        }
        if (store_rows_add_out(out, &r) != 0)
            break; /* no room: the rest waits for the next call */
    }
    PQclear(res);
    return STORE_OK;
}

enum store_rc pg_recover_sending(struct store *st, int64_t now_ms, int *moved)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_time(&p, now_ms);
    pp_text(&p, b->me);
    return pg_run_count(b, P_RECOVER, &p, moved);
}

/* ---- the sets left out of the claim ---- */

static void set_clear(struct pg_set *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->text != NULL ? s->text[i] : NULL);
    s->n = 0;
    for (int k = 0; k < 2; k++) {
        free(s->lit[k]);
        s->lit[k] = NULL;
    }
}

/* Room for one more entry; 0, or -1 out of memory. */
static int set_grow(struct pg_set *s, int with_text)
{
    if (s->n < s->cap)
        return 0;
    int cap = s->cap ? s->cap * 2 : 16;
    int64_t *num = realloc(s->num, (size_t)cap * sizeof *num);
    if (num == NULL)
        return -1;
    s->num = num;
    if (with_text) {
        char **text = realloc(s->text, (size_t)cap * sizeof *text);
        if (text == NULL)
            return -1;
        s->text = text;
    }
    s->cap = cap;
    return 0;
}

/* Adds (text, num) to s (text copied, or NULL for a set of numbers). */
static int set_add(struct pg_set *s, const char *text, int64_t num)
{
    if (set_grow(s, text != NULL) != 0)
        return -1;
    char *copy = NULL;
    if (text != NULL && (copy = strdup(text)) == NULL)
        return -1;
    if (text != NULL)
        s->text[s->n] = copy;
    s->num[s->n++] = num;
    for (int k = 0; k < 2; k++) {
        free(s->lit[k]);
        s->lit[k] = NULL;
    }
    return 0;
}

const char *pg_set_literal(struct pg *b, struct pg_set *s, int which)
{
    (void)b;
    if (s->lit[which] == NULL)
        s->lit[which] = which == 0 && s->text != NULL
                            ? pg_text_array((const char *const *)s->text, s->n)
                            : pg_int_array(s->num, s->n);
    return s->lit[which];
}

void pg_exclusion_params(struct pg *b, struct pg_params *p)
{
    const char *lit[4] = {
        b->skipped.n > 0 ? pg_set_literal(b, &b->skipped, 1) : "{}",
        b->blocked.n > 0 ? pg_set_literal(b, &b->blocked, 0) : "{}",
        b->blocked.n > 0 ? pg_set_literal(b, &b->blocked, 1) : "{}",
        b->blocked_peer.n > 0 ? pg_set_literal(b, &b->blocked_peer, 0) : "{}",
    };
    for (int k = 0; k < 4; k++) {
        pp_text(p, lit[k]);
        if (lit[k] == NULL)
            p->bad = "out of memory";
    }
}

enum store_rc pg_outbound_exclude(struct store *st, const struct store_dest *dests, int n)
{
    struct pg *b = pg_of(st);
    set_clear(&b->blocked);
    for (int i = 0; i < n; i++)
        if (set_add(&b->blocked, dests[i].addr != NULL ? dests[i].addr : "", dests[i].port) != 0)
            return pg_fail(b, STORE_ERR, "out of memory");
    return STORE_OK;
}

enum store_rc pg_outbound_exclude_peers(struct store *st, const char *const *peers, int n)
{
    struct pg *b = pg_of(st);
    set_clear(&b->blocked_peer);
    for (int i = 0; i < n; i++)
        if (peers[i] != NULL && set_add(&b->blocked_peer, peers[i], 0) != 0)
            return pg_fail(b, STORE_ERR, "out of memory");
    return STORE_OK;
}

enum store_rc pg_outbound_skip(struct store *st, const int64_t *rowids, int n)
{
    struct pg *b = pg_of(st);
    for (int i = 0; i < n; i++) /* the set is never emptied */
        if (set_add(&b->skipped, NULL, rowids[i]) != 0)
            return pg_fail(b, STORE_ERR, "out of memory");
    return STORE_OK;
}

/* ---- reading rows ---- */

enum store_rc pg_outbound_pending(struct store *st, int limit, struct store_rows *out)
{
    struct pg *b = pg_of(st);
    int ex = b->blocked.n > 0 || b->blocked_peer.n > 0 || b->skipped.n > 0, lock = pg_tx_open(b);
    /* Nothing left out: the plain query, without the anti-joins. */
    enum pg_query q =
        ex ? (lock ? P_PENDING_EX_LOCK : P_PENDING_EX) : (lock ? P_PENDING_LOCK : P_PENDING);
    struct pg_params p = {0};
    pp_int(&p, limit);
    if (ex)
        pg_exclusion_params(b, &p);
    enum store_rc rc;
    PGresult *res = pg_run(b, q, &p, &rc);
    return res != NULL ? outbound_rows(res, 0, out) : rc;
}

enum store_rc pg_outbound_expire(struct store *st, const struct store_dest *dest,
                                 int64_t older_than_ms, const char *why, int64_t now_ms,
                                 int *changed)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_text(&p, dest->addr);
    pp_int(&p, dest->port);
    pp_int(&p, now_ms - older_than_ms);
    pp_text(&p, why);
    pp_time(&p, now_ms);
    pp_text(&p, b->skipped.n > 0 ? pg_set_literal(b, &b->skipped, 1) : "{}");
    return pg_run_count(b, P_EXPIRE, &p, changed);
}

enum store_rc pg_outbound_expire_peer(struct store *st, const char *peer, int64_t older_than_ms,
                                      const char *why, int64_t now_ms, int *changed)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_text(&p, peer);
    pp_int(&p, now_ms - older_than_ms);
    pp_text(&p, why);
    pp_time(&p, now_ms);
    pp_text(&p, b->skipped.n > 0 ? pg_set_literal(b, &b->skipped, 1) : "{}");
    return pg_run_count(b, P_EXPIRE_PEER, &p, changed);
}

/*
 * One statement for every row's payload, by id: a payload over max is
 * measured on the server (octet_length does not even read a TOASTed one) and
 * never sent.
 */
enum store_rc pg_outbound_payloads(struct store *st, size_t max, struct store_rows *out)
{
    struct pg *b = pg_of(st);
    if (out->n == 0)
        return STORE_OK;
    int64_t *ids = malloc((size_t)out->n * sizeof *ids);
    if (ids == NULL)
        return pg_fail(b, STORE_ERR, "out of memory");
    for (int i = 0; i < out->n; i++)
        ids[i] = out->out[i].rowid;
    struct pg_params p = {0};
    pp_owned(&p, pg_int_array(ids, out->n));
    free(ids);
    pp_int(&p, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
    enum store_rc rc;
    PGresult *res = pg_run(b, P_PAYLOADS, &p, &rc);
    if (res == NULL)
        return rc;
    int n = PQntuples(res) < out->n ? PQntuples(res) : out->n;
    for (int i = 0; i < n; i++) {
        struct store_outbound_row *row = &out->out[i];
        row->payload = NULL;
        if (!pg_int(res, i, 0)) {
            row->payload_len = STORE_PAYLOAD_UNREADABLE; /* gone since it was read */
            continue;
        }
        size_t size = (size_t)pg_int(res, i, 1);
        row->payload_len = size;
        if (size > max || PQgetisnull(res, i, 2))
            continue;
        char *at = store_rows_reserve(out, size);
        if (at == NULL) {
            out->n = i; /* no room: these rows wait for the next claim */
            out->full = 1;
            break;
        }
        memcpy(at, PQgetvalue(res, i, 2), size);
        row->payload = at;
    }
    PQclear(res);
    return STORE_OK;
}

enum store_rc pg_outbound_load_sent(struct store *st, int64_t after, int limit, int64_t now_ms,
                                    struct store_rows *out)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_int(&p, after);
    pp_int(&p, limit);
    pp_int(&p, now_ms);
    pp_text(&p, b->me);
    pp_int(&p, PG_LEASE_S);
    enum store_rc rc;
    PGresult *res = pg_run(b, P_LOAD_SENT, &p, &rc);
    return res != NULL ? outbound_rows(res, 0, out) : rc;
}

enum store_rc pg_outbound_get_sent(struct store *st, int64_t rowid, size_t max,
                                   struct store_rows *out)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_int(&p, rowid);
    pp_int(&p, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
    enum store_rc rc;
    PGresult *res = pg_run(b, P_GET_SENT, &p, &rc);
    return res != NULL ? outbound_rows(res, max, out) : rc;
}

/* ---- the claim of one row ---- */

enum store_rc pg_write_identity(struct pg *b, enum pg_query q, int64_t rowid,
                                const char *message_id, const char *payload, size_t payload_len,
                                int64_t sequence, int64_t now_ms, const char *nothing)
{
    struct pg_params p = {0};
    pp_int(&p, rowid);
    pp_text(&p, message_id);
    pp_bytes(&p, payload, payload_len);
    pp_time(&p, now_ms);
    pp_text(&p, b->me);
    pp_int(&p, PG_LEASE_S);
    if (q == P_TAKE) {
        if (sequence > 0)
            pp_int(&p, sequence);
        else
            pp_text(&p, NULL);
    }
    int changed = 0;
    enum store_rc rc = pg_run_count(b, q, &p, &changed);
    if (rc != STORE_OK || changed == 1)
        return rc;
    /* Nothing changed: another row's message_id, or the row moved on. */
    pp_int(&p, rowid);
    pp_text(&p, message_id);
    pp_text(&p, b->me);
    PGresult *r = pg_run(b, P_IDENTITY_WHY, &p, &rc);
    if (r == NULL)
        return rc;
    const char *state = pg_text(r, 0, 0);
    int ours = q == P_TAKE ? state != NULL && strcmp(state, "pending") == 0
                           : state != NULL && strcmp(state, "sending") == 0 && pg_int(r, 0, 1);
    int dup = ours && pg_int(r, 0, 2);
    PQclear(r);
    if (dup) {
        snprintf(b->why, sizeof b->why,
                 "duplicate key value violates unique constraint \"idx_outbound_message_id\" "
                 "(message_id %.64s is another outbound row's)",
                 message_id != NULL ? message_id : "");
        return STORE_DUP;
    }
    snprintf(b->why, sizeof b->why, "%s changed nothing (the row is no longer %s)", nothing,
             q == P_TAKE ? "pending" : "claimed by this connection");
    return STORE_REFUSED;
}

enum store_rc pg_outbound_take(struct store *st, int64_t rowid, const char *message_id,
                               const char *payload, size_t payload_len, int64_t sequence,
                               int64_t now_ms)
{
    return pg_write_identity(pg_of(st), P_TAKE, rowid, message_id, payload, payload_len, sequence,
                             now_ms, "the update to 'sent'");
}

/* ---- inbound ---- */

enum store_rc pg_inbound_unacked(struct store *st, int64_t after, int limit, struct store_rows *out)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_int(&p, after);
    pp_int(&p, limit);
    enum store_rc rc;
    PGresult *res = pg_run(b, P_IN_UNACKED, &p, &rc);
    if (res == NULL)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        struct store_inbound_row r;
        r.rowid = pg_int(res, i, 0);
        r.message_id = pg_text(res, i, 1) != NULL ? pg_text(res, i, 1) : "";
        r.src_addr = pg_text(res, i, 2) != NULL ? pg_text(res, i, 2) : "";
        r.src_port = pg_int(res, i, 3); /* -1 unless 1 .. 65535 */
        r.peer = pg_text(res, i, 4);
        r.sequence = pg_int(res, i, 5) > 0 ? pg_int(res, i, 5) : 0;
        if (store_rows_add_in(out, &r) != 0)
            break;
    }
    PQclear(res);
    return STORE_OK;
}

/* ---- each peer's last outbound sequence number ---- */

enum store_rc pg_sequence_load(struct store *st, const char *after, struct store_sequence *out,
                               int cap, int *n)
{
    struct pg *b = pg_of(st);
    struct pg_params p = {0};
    pp_text(&p, after != NULL ? after : ""); /* sent before out is written: after may be in it */
    pp_int(&p, cap);
    pp_int(&p, STORE_FIELD_MAX);
    enum store_rc rc;
    PGresult *res = pg_run(b, P_SEQ_LOAD, &p, &rc);
    if (res == NULL)
        return rc;
    for (int i = 0; i < PQntuples(res) && *n < cap; i++) {
        size_t len = (size_t)PQgetlength(res, i, 0);
        if (PQgetisnull(res, i, 0) || len == 0 || len > STORE_FIELD_MAX)
            continue; /* the query let through only what fits */
        struct store_sequence *v = &out[(*n)++];
        memcpy(v->peer, PQgetvalue(res, i, 0), len);
        v->peer[len] = '\0';
        v->last = pg_int(res, i, 1);
    }
    PQclear(res);
    return STORE_OK;
}

enum store_rc pg_sequence_save(struct store *st, const char *peer, int64_t last)
{
    struct pg *b = pg_of(st);
    if (peer == NULL) /* refused as the table would, without ending the transaction */
        return pg_fail(b, STORE_REFUSED,
                       "null value in column \"peer\" of relation \"peer_sequence\" violates "
                       "not-null constraint");
    struct pg_params p = {0};
    pp_text(&p, peer);
    pp_int(&p, last);
    return pg_run_count(b, P_SEQ_SAVE, &p, NULL);
}
