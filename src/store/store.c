/*
 * store: what is the same whichever backend holds the queue. store_open
 * picks the backend by the location; every other public function hands its
 * call to the backend's method (store_impl.h), checking only what the
 * interface promises; the row buffers, the state names and the time formats
 * are here, so that every backend copies rows and writes times alike.
 */
#include "store/store.h"

#include "util/clock.h"
#include "store/store_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- life cycle ---- */

static int is_uri(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

void store_location_text(const char *location, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    if (!is_uri(location)) {
        snprintf(out, outlen, "%s", location);
        return;
    }
    const char *auth = strstr(location, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL; /* the last '@': a password's own '@' should be %40, but may not be */
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    size_t o = 0;
    const char *p = location;
    if (colon != NULL) { /* user:password@ -> user:***@ */
        o = (size_t)snprintf(out, outlen, "%.*s:***", (int)(colon - location), location);
        p = at;
    }
    for (; *p != '\0' && o + 1 < outlen; p++) {
        out[o++] = *p;
        if ((*p == '?' || *p == '&') && strncmp(p + 1, "password=", 9) == 0) {
            int n = snprintf(out + o, outlen - o, "password=***");
            o += n > 0 && (size_t)n < outlen - o ? (size_t)n : outlen - o - 1;
            p += 9 + strcspn(p + 10, "&#"); /* to the parameter's last byte */
        }
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

/* The path behind "sqlite:" or "sqlite://" (postgresql:// and postgres:// are PostgreSQL's). */
static const char *sqlite_path(const char *location)
{
    if (strncmp(location, "sqlite:", 7) != 0)
        return location;
    location += 7;
    return strncmp(location, "//", 2) == 0 ? location + 2 : location;
}

enum store_rc store_open(const char *location, enum store_open_mode mode, int busy_ms,
                         struct store **out, char *err, size_t errlen)
{
    *out = NULL;
    /* A URI is never repeated in a message: it may hold a password. */
    if (is_uri(location))
        return store_pg_open(location, mode, busy_ms, out, err, errlen);
    const char *path = sqlite_path(location);
    if (path[0] == '\0') {
        snprintf(err, errlen, "no database path in '%s'", location);
        return STORE_ERR;
    }
    return store_sqlite_open(path, mode, busy_ms, out, err, errlen);
}

void store_close(struct store *st)
{
    if (st != NULL)
        st->ops->close(st);
}

const char *store_errmsg(const struct store *st)
{
    return st->ops->errmsg(st);
}

/* ---- transactions ---- */

void store_set_budget(struct store *st, int budget_ms)
{
    st->ops->set_budget(st, budget_ms > 0 ? budget_ms : 0);
}

void store_write_stats(const struct store *st, uint64_t *statements, uint64_t *rows)
{
    st->ops->write_stats(st, statements, rows);
}

int64_t store_journal_bytes(const struct store *st)
{
    return st->ops->version >= 5 ? st->ops->journal_bytes(st) : -1;
}

enum store_rc store_count_states(struct store *st, enum store_table table,
                                 struct store_state_count **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return st->ops->version >= 5 ? st->ops->count_states(st, table, out, n) : STORE_ERR;
}

int store_timed_out(const struct store *st)
{
    return st->ops->timed_out(st);
}

enum store_rc store_begin(struct store *st)
{
    return st->ops->begin(st);
}

enum store_rc store_commit(struct store *st)
{
    return st->ops->commit(st);
}

void store_rollback(struct store *st)
{
    st->ops->rollback(st);
}

int store_tx_aborted(const struct store *st)
{
    return st->ops->tx_aborted(st);
}

/* ---- commits by other processes ---- */

enum store_rc store_watch_start(struct store *st, int fallback_ms, int64_t now_us)
{
    return st->ops->watch_start(st, fallback_ms > 0 ? fallback_ms : 1000, now_us);
}

int store_watch_fd(struct store *st)
{
    return st->ops->watch_fd(st);
}

int64_t store_poll_due_us(const struct store *st)
{
    return st->ops->poll_due_us(st);
}

enum store_rc store_poll(struct store *st, int readable, int64_t now_us, int *changed)
{
    *changed = 0;
    return st->ops->poll(st, readable, now_us, changed);
}

/* ---- row buffers ---- */

int store_rows_init(struct store_rows *r, int cap, size_t text_bytes)
{
    memset(r, 0, sizeof *r);
    r->out = calloc((size_t)(cap > 0 ? cap : 1), sizeof *r->out);
    r->in = calloc((size_t)(cap > 0 ? cap : 1), sizeof *r->in);
    r->text = malloc(text_bytes > 0 ? text_bytes : 1);
    r->cap = cap > 0 ? cap : 0;
    r->text_size = text_bytes;
    if (r->out == NULL || r->in == NULL || r->text == NULL) {
        store_rows_free(r);
        return -1;
    }
    return 0;
}

void store_rows_free(struct store_rows *r)
{
    free(r->out);
    free(r->in);
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* Empties r for a call that fills it; limit is cut to its room. */
static int rows_reset(struct store_rows *r, int limit)
{
    r->n = 0;
    r->full = 0;
    r->text_used = 0;
    return limit < 0 ? 0 : limit > r->cap ? r->cap : limit;
}

/* A copy of len bytes of s (NUL-terminated) in r's text, or NULL when it does not fit. */
static const char *rows_copy(struct store_rows *r, const char *s, size_t len)
{
    if (len >= r->text_size - r->text_used)
        return NULL;
    char *at = r->text + r->text_used;
    memcpy(at, s, len);
    at[len] = '\0';
    r->text_used += len + 1;
    return at;
}

char *store_rows_reserve(struct store_rows *r, size_t len)
{
    if (len >= r->text_size - r->text_used)
        return NULL;
    char *at = r->text + r->text_used;
    at[len] = '\0';
    r->text_used += len + 1;
    return at;
}

/* As rows_copy for a field: cut to STORE_FIELD_MAX bytes; NULL stays NULL (*ok stays 1). */
static const char *rows_field(struct store_rows *r, const char *s, int *ok)
{
    if (s == NULL)
        return NULL;
    size_t len = strnlen(s, STORE_FIELD_MAX);
    const char *c = rows_copy(r, s, len);
    if (c == NULL)
        *ok = 0;
    return c;
}

/*
 * As rows_field for a peer name, which is never cut (a cut name could be
 * another peer's): one longer than STORE_FIELD_MAX is STORE_BAD_TEXT.
 */
static const char *rows_name(struct store_rows *r, const char *s, int *ok)
{
    if (s != NULL && strnlen(s, STORE_FIELD_MAX + 1) > STORE_FIELD_MAX)
        s = STORE_BAD_TEXT;
    return rows_field(r, s, ok);
}

int store_rows_add_out(struct store_rows *r, const struct store_outbound_row *row)
{
    size_t mark = r->text_used;
    int ok = r->n < r->cap;
    struct store_outbound_row c = *row;
    if (ok) {
        c.message_id = rows_field(r, row->message_id, &ok);
        c.dst_addr = rows_field(r, row->dst_addr != NULL ? row->dst_addr : "", &ok);
        c.dst_port_text = rows_field(r, row->dst_port_text != NULL ? row->dst_port_text : "", &ok);
        c.peer = rows_name(r, row->peer, &ok);
    }
    if (ok && row->payload != NULL &&
        (c.payload = rows_copy(r, row->payload, row->payload_len)) == NULL)
        ok = 0;
    if (!ok) {
        r->text_used = mark;
        r->full = 1;
        return -1;
    }
    r->out[r->n++] = c;
    return 0;
}

int store_rows_add_in(struct store_rows *r, const struct store_inbound_row *row)
{
    size_t mark = r->text_used;
    int ok = r->n < r->cap;
    struct store_inbound_row c = *row;
    if (ok) {
        c.message_id = rows_field(r, row->message_id != NULL ? row->message_id : "", &ok);
        c.src_addr = rows_field(r, row->src_addr != NULL ? row->src_addr : "", &ok);
        c.peer = rows_name(r, row->peer, &ok);
    }
    if (!ok) {
        r->text_used = mark;
        r->full = 1;
        return -1;
    }
    r->in[r->n++] = c;
    return 0;
}

int store_record_fill(struct store_record *rec, int64_t id, const struct store_col *cols, int n)
{
    size_t need = 0;
    for (int k = 0; k < n; k++)
        need += (cols[k].name != NULL ? strlen(cols[k].name) + 1 : 0) +
                (cols[k].text != NULL ? cols[k].len + 1 : 0);
    if (n > rec->colcap) {
        struct store_col *c = realloc(rec->col, (size_t)n * sizeof *c);
        if (c == NULL)
            return -1;
        rec->col = c;
        rec->colcap = n;
    }
    if (need > rec->bufcap) {
        char *b = realloc(rec->buf, need);
        if (b == NULL)
            return -1;
        rec->buf = b;
        rec->bufcap = need;
    }
    char *at = rec->buf;
    for (int k = 0; k < n; k++) {
        struct store_col *c = &rec->col[k];
        *c = cols[k];
        if (cols[k].name != NULL) {
            size_t l = strlen(cols[k].name);
            memcpy(at, cols[k].name, l + 1);
            c->name = at;
            at += l + 1;
        }
        if (cols[k].text != NULL) {
            memcpy(at, cols[k].text, cols[k].len);
            at[cols[k].len] = '\0';
            c->text = at;
            at += cols[k].len + 1;
        }
    }
    rec->id = id;
    rec->ncols = n;
    return 0;
}

void store_record_free(struct store_record *rec)
{
    free(rec->col);
    free(rec->buf);
    memset(rec, 0, sizeof *rec);
}

/* ---- the daemon ---- */

enum store_rc store_recover_sending(struct store *st, int64_t now_ms, int *moved)
{
    *moved = 0;
    return st->ops->recover_sending(st, now_ms, moved);
}

enum store_rc store_outbound_pending(struct store *st, int limit, struct store_rows *out)
{
    return st->ops->outbound_pending(st, rows_reset(out, limit), out);
}

enum store_rc store_outbound_exclude(struct store *st, const struct store_dest *dests, int n)
{
    return st->ops->outbound_exclude(st, dests, n > 0 ? n : 0);
}

/* The methods of version 2 (rows for peers): a backend of version 1 has no peer column. */
enum store_rc store_outbound_exclude_peers(struct store *st, const char *const *peers, int n)
{
    if (st->ops->version < 2)
        return STORE_ERR;
    return st->ops->outbound_exclude_peers(st, peers, n > 0 ? n : 0);
}

enum store_rc store_outbound_expire_peer(struct store *st, const char *peer, int64_t older_than_ms,
                                         const char *why, int64_t now_ms, int *changed)
{
    *changed = 0;
    if (st->ops->version < 2)
        return STORE_ERR;
    return st->ops->outbound_expire_peer(st, peer, older_than_ms, why, now_ms, changed);
}

enum store_rc store_outbound_skip(struct store *st, const int64_t *rowids, int n)
{
    return n > 0 ? st->ops->outbound_skip(st, rowids, n) : STORE_OK;
}

enum store_rc store_outbound_expire(struct store *st, const struct store_dest *dest,
                                    int64_t older_than_ms, const char *why, int64_t now_ms,
                                    int *changed)
{
    *changed = 0;
    return st->ops->outbound_expire(st, dest, older_than_ms, why, now_ms, changed);
}

enum store_rc store_outbound_payloads(struct store *st, size_t max, struct store_rows *out)
{
    return st->ops->outbound_payloads(st, max, out);
}

enum store_rc store_outbound_load_sent(struct store *st, int64_t after, int limit, int64_t now_ms,
                                       struct store_rows *out)
{
    return st->ops->outbound_load_sent(st, after, rows_reset(out, limit), now_ms, out);
}

enum store_rc store_outbound_get_sent(struct store *st, int64_t rowid, size_t max,
                                      struct store_rows *out)
{
    (void)rows_reset(out, 1);
    return st->ops->outbound_get_sent(st, rowid, max, out);
}

enum store_rc store_outbound_take(struct store *st, int64_t rowid, const char *message_id,
                                  const char *payload, size_t payload_len, int64_t sequence,
                                  int64_t now_ms)
{
    return st->ops->outbound_take(st, rowid, message_id, payload, payload_len,
                                  sequence > 0 ? sequence : 0, now_ms);
}

enum store_rc store_outbound_take_set(struct store *st, const struct store_take *v, int n,
                                      int64_t now_ms, int *failed)
{
    *failed = 0;
    if (n <= 0)
        return STORE_OK;
    if (st->ops->version >= 6 && st->ops->outbound_take_set != NULL)
        return st->ops->outbound_take_set(st, v, n, now_ms, failed);
    for (int i = 0; i < n; i++) {
        enum store_rc rc = store_outbound_take(st, v[i].rowid, v[i].message_id, v[i].payload,
                                               v[i].payload_len, v[i].sequence, now_ms);
        if (rc != STORE_OK) {
            *failed = i;
            return rc;
        }
    }
    return STORE_OK;
}

/* For the n-row writes: *done (if asked for) starts at 0, and no rows is no work. */
static int no_rows(int n, int *done)
{
    if (done != NULL)
        *done = 0;
    return n <= 0;
}

enum store_rc store_outbound_sent(struct store *st, const struct store_sent *v, int n,
                                  int64_t now_ms, int *done)
{
    return no_rows(n, done) ? STORE_OK : st->ops->outbound_sent(st, v, n, now_ms, done);
}

enum store_rc store_outbound_failed(struct store *st, const struct store_sent *v, int n,
                                    int64_t now_ms, int *done)
{
    return no_rows(n, done) ? STORE_OK : st->ops->outbound_failed(st, v, n, now_ms, done);
}

enum store_rc store_outbound_acked(struct store *st, const int64_t *rowids, int n, int64_t now_ms,
                                   int *matched, int *done)
{
    *matched = 0;
    if (n <= 0 && done != NULL)
        *done = 0;
    return n <= 0 ? STORE_OK : st->ops->outbound_acked(st, rowids, n, now_ms, matched, done);
}

enum store_rc store_outbound_claim(struct store *st, int limit, int64_t now_ms,
                                   struct store_rows *out)
{
    return st->ops->outbound_claim(st, rows_reset(out, limit), now_ms, out);
}

enum store_rc store_outbound_identify(struct store *st, int64_t rowid, const char *message_id,
                                      const char *payload, size_t payload_len, int64_t now_ms)
{
    return st->ops->outbound_identify(st, rowid, message_id, payload, payload_len, now_ms);
}

enum store_rc store_outbound_release(struct store *st, const int64_t *rowids, int n, int64_t now_ms)
{
    return n > 0 ? st->ops->outbound_release(st, rowids, n, now_ms) : STORE_OK;
}

enum store_rc store_inbound_insert(struct store *st, const struct store_inbound *m, int n,
                                   int64_t now_ms, enum store_in_result *res, int64_t *rowids,
                                   int *done)
{
    return no_rows(n, done) ? STORE_OK
                            : st->ops->inbound_insert(st, m, n, now_ms, res, rowids, done);
}

enum store_rc store_inbound_ack_sent(struct store *st, const char *const *message_ids, int n,
                                     int64_t now_ms, int *done)
{
    return no_rows(n, done) ? STORE_OK
                            : st->ops->inbound_ack_sent(st, message_ids, n, now_ms, done);
}

enum store_rc store_inbound_ack_sent_rows(struct store *st, const int64_t *rowids, int n,
                                          int64_t now_ms, int *done)
{
    return no_rows(n, done) ? STORE_OK
                            : st->ops->inbound_ack_sent_rows(st, rowids, n, now_ms, done);
}

enum store_rc store_inbound_ack_failed(struct store *st, const char *const *message_ids, int n,
                                       int64_t now_ms, int *done)
{
    return no_rows(n, done) ? STORE_OK
                            : st->ops->inbound_ack_failed(st, message_ids, n, now_ms, done);
}

enum store_rc store_inbound_unacked(struct store *st, int64_t after, int limit,
                                    struct store_rows *out)
{
    return st->ops->inbound_unacked(st, after, rows_reset(out, limit), out);
}

/* The methods of version 4 (sequence numbers): a backend of version 3 has no peer_sequence. */
enum store_rc store_sequence_load(struct store *st, const char *after, struct store_sequence *out,
                                  int cap, int *n)
{
    *n = 0;
    if (st->ops->version < 4)
        return STORE_ERR;
    return cap > 0 ? st->ops->sequence_load(st, after, out, cap, n) : STORE_OK;
}

enum store_rc store_sequence_save(struct store *st, const char *peer, int64_t last)
{
    if (st->ops->version < 4)
        return STORE_ERR;
    return last > 0 ? st->ops->sequence_save(st, peer, last) : STORE_OK;
}

/* ---- the tools ---- */

/* The tools' err line for rc (nothing for STORE_OK). */
static enum store_rc tool_rc(const struct store *st, enum store_rc rc, char *err, size_t errlen)
{
    if (rc == STORE_OK || err == NULL || errlen == 0)
        return rc;
    if (rc == STORE_BUSY)
        snprintf(err, errlen, "%s", STORE_BUSY_TEXT);
    else
        snprintf(err, errlen, "Database error: %s", store_errmsg(st));
    return rc;
}

static const struct {
    const char *name;
    enum store_table table;
    int active;
} states[] = {
    {"pending", STORE_OUTBOUND, 1},     {"sending", STORE_OUTBOUND, 1},
    {"sent", STORE_OUTBOUND, 1},        {"acknowledged", STORE_OUTBOUND, 0},
    {"send_failed", STORE_OUTBOUND, 0}, {"received", STORE_INBOUND, 1},
    {"ack_sent", STORE_INBOUND, 0},     {"ack_failed", STORE_INBOUND, 0},
};

int store_state_table(const char *state, int *active)
{
    for (size_t k = 0; k < sizeof states / sizeof states[0]; k++)
        if (strcmp(states[k].name, state) == 0) {
            *active = states[k].active;
            return (int)states[k].table;
        }
    return 0;
}

const char *store_states_text(enum store_table table)
{
    return table == STORE_OUTBOUND ? "pending, sending, sent, acknowledged, send_failed"
                                   : "received, ack_sent, ack_failed";
}

enum store_rc store_max_id(struct store *st, enum store_table table, int64_t *max, char *err,
                           size_t errlen)
{
    return tool_rc(st, st->ops->max_id(st, table, max), err, errlen);
}

enum store_rc store_enqueue(struct store *st, const char *message_id, const char *dst_addr,
                            unsigned dst_port, const char *peer, const char *payload,
                            size_t payload_len, int64_t now_ms, int64_t *rowid, char *err,
                            size_t errlen)
{
    enum store_rc rc = st->ops->enqueue(st, message_id, dst_addr, dst_port, peer, payload,
                                        payload_len, now_ms, rowid);
    if (rc == STORE_DUP && err != NULL) {
        snprintf(err, errlen, "message_id %s is already used by another outbound message",
                 message_id != NULL ? message_id : "(none)");
        return rc;
    }
    return tool_rc(st, rc, err, errlen);
}

enum store_rc store_outbound_requeue(struct store *st, int64_t rowid, const char *peer,
                                     int64_t now_ms, int *changed, char *err, size_t errlen)
{
    *changed = 0;
    return tool_rc(st, st->ops->outbound_requeue(st, rowid, peer, now_ms, changed), err, errlen);
}

enum store_rc store_outbound_state(struct store *st, int64_t rowid, int *found,
                                   char state[STORE_STATE_MAX], char *why, size_t whylen, char *err,
                                   size_t errlen)
{
    *found = 0;
    return tool_rc(st, st->ops->outbound_state(st, rowid, found, state, why, whylen), err, errlen);
}

enum store_rc store_select(struct store *st, const struct store_query *q, int64_t now_ms,
                           struct store_selected **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    return tool_rc(st, st->ops->select(st, q, now_ms, out, n), err, errlen);
}

enum store_rc store_fetch(struct store *st, enum store_table table, const struct store_selected *c,
                          struct store_record *rec, int *found, char *err, size_t errlen)
{
    *found = 0;
    return tool_rc(st, st->ops->fetch(st, table, c, rec, found), err, errlen);
}

enum store_rc store_unmark(struct store *st, const struct store_selected *c, size_t n,
                           int64_t now_ms, char *err, size_t errlen)
{
    return tool_rc(st, st->ops->unmark(st, c, n, now_ms), err, errlen);
}

enum store_rc store_purge_count(struct store *st, const struct store_purge *p,
                                struct store_state_count **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    return tool_rc(st, st->ops->purge_count(st, p, out, n), err, errlen);
}

enum store_rc store_purge_unreadable(struct store *st, const struct store_purge *p, int64_t *n,
                                     char *err, size_t errlen)
{
    return tool_rc(st, st->ops->purge_unreadable(st, p, n), err, errlen);
}

enum store_rc store_purge(struct store *st, const struct store_purge *p, size_t n, int64_t *deleted,
                          char *err, size_t errlen)
{
    return tool_rc(st, st->ops->purge(st, p, n, deleted), err, errlen);
}

enum store_rc store_vacuum(struct store *st, char *err, size_t errlen)
{
    return tool_rc(st, st->ops->vacuum(st), err, errlen);
}

/* ---- time ---- */

void store_format_ms(int64_t ms, char out[STORE_TIME_LEN])
{
    if (ms < 0 ||
        clock_format_utc(out, STORE_TIME_LEN, ms / 1000, (long)(ms % 1000) * 1000000, 3) != 0)
        snprintf(out, STORE_TIME_LEN, "1970-01-01T00:00:00.000");
}

void store_format_ns(uint64_t ns, char out[32])
{
    if (clock_format_utc(out, 32, (int64_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL), 9) !=
        0)
        snprintf(out, 32, "1970-01-01T00:00:00.000000000");
}
