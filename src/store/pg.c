/*
 * pg: the PostgreSQL backend (libpq, non-blocking, every wait bounded).
 * This file has the connection: the one path every statement runs through
 * (pg_run: parameters checked, prepared once per session, sent and waited
 * for within a deadline, the SQLSTATE mapped, a savepoint where a refusal
 * must not end the transaction, a lost connection made again), the NOTIFY
 * that wakes other sessions, and the method table at the end. Transactions
 * are in pg_tx.c, the statements' texts in pg_sql.c, their parameters in
 * pg_params.c, opening and reconnecting in pg_open.c, the daemon's rows in
 * pg_queue.c and pg_set.c, the tools' queries in pg_admin.c, the watch in
 * pg_watch.c.
 *
 * Results. SQLSTATE 23505 (unique) is STORE_DUP; the rest of class 23
 * (not null 23502, check 23514, foreign key, exclusion), class 22 (a value
 * the column cannot hold: 22001 too long, 22P02 invalid text, 22021 bad
 * encoding, ...) and P0001 (a trigger's RAISE EXCEPTION) are STORE_REFUSED;
 * 40001, 40P01, 55P03 (lock_timeout: the busy timeout) and 57014 (a
 * statement cancelled: statement_timeout) are STORE_BUSY, and so is a
 * statement given up at its deadline;
 * anything else is STORE_ERR. The server's message is kept for
 * store_errmsg, on one line.
 *
 * Refusals. In PostgreSQL any error ends (aborts) the transaction, where
 * SQLite undoes only the statement. The statements are written so that the
 * schema's own rules never raise one: a message_id taken is found by the
 * statement itself (NOT EXISTS, or INSERT ... ON CONFLICT DO NOTHING, then
 * a look at why nothing changed), and a value PostgreSQL text cannot hold (a
 * NUL byte, invalid UTF-8) is refused here, before it is sent. Only rules an
 * operator added (a trigger, a CHECK, another UNIQUE index, another column,
 * ...) can then refuse a row; store_begin looks for them (one catalog query
 * sent with BEGIN, under the tables' locks, so they cannot change during the
 * transaction), and while a table has any, each write to it runs inside
 * SAVEPOINT sg_row: a refusal then rolls back to it and costs only its row,
 * as in SQLite. Without savepoints an unexpected error (a race on a
 * message_id with another session) ends the transaction, and
 * store_tx_aborted() says so: the engine redoes the turn. No savepoint on the
 * common path: each one costs a round trip, and more than 64 of them in one
 * transaction overflow the subtransaction cache, which slows every other
 * session's snapshots.
 *
 * Locks and time. store_begin takes the ROW EXCLUSIVE lock of the three
 * tables at once (the lock every write takes anyway; it conflicts with no
 * other writer, only with EXCLUSIVE and stronger: DDL, or a tool that holds
 * the tables), so that, as with SQLite's BEGIN IMMEDIATE, a turn that cannot
 * write fails at its start. lock_timeout is the busy timeout.
 *
 * Never blocked for long (the daemon's loop waits on these calls). The
 * connection is in non-blocking mode: every statement is sent and its
 * results waited for with poll(), within a deadline: the transaction's
 * budget (store_set_budget) in a transaction, the budget from the call's
 * start outside one (none in the tools, which set no budget). A statement
 * still running at its deadline has its session dropped (pg_drop: a cancel
 * request would open a new connection and wait, unbounded, for an answer);
 * the transaction is rolled back by the server, and the call returns
 * STORE_BUSY with store_timed_out() 1, as SQLite's progress handler does.
 * statement_timeout is only a safety net (pg_open.c).
 *
 * A lost connection: a call connects again without blocking (pg_reconnect:
 * an attempt waits at most PG_RECONNECT_WAIT_MS, then goes on from store_poll;
 * failed attempts back off from PG_BACKOFF_FIRST_MS to PG_BACKOFF_MAX_MS).
 * Outside a transaction a read is then run again; a write is not (it may have
 * been committed before the connection went): STORE_ERR. In a transaction
 * the transaction is gone with the connection: STORE_ERR, and
 * store_tx_aborted() is 1. A database dropped meanwhile (or dropped and made
 * again: another oid) is STORE_GONE from then on.
 */
#define _GNU_SOURCE
#include "util/clock.h"
#include "store/pg_impl.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pg_live(const struct pg *b)
{
    return b->conn != NULL && !b->broken && !b->connecting && PQstatus(b->conn) == CONNECTION_OK;
}

int pg_tx_open(const struct pg *b)
{
    return b->in_tx && !b->aborted;
}

enum store_rc pg_fail(struct pg *b, enum store_rc rc, const char *why)
{
    snprintf(b->why, sizeof b->why, "%s", why);
    return rc;
}

/* The first line of libpq's message for the connection (for a lost one). */
void pg_conn_message(const struct pg *b, char *out, size_t len)
{
    const char *m = PQerrorMessage(b->conn);
    size_t n = strcspn(m, "\n");
    snprintf(out, len, "%.*s", (int)(n < 300 ? n : 300), m);
}

/* SQLSTATE to result (see the top of this file). */
static enum store_rc rc_of(const char *state)
{
    if (state == NULL || strlen(state) != 5)
        return STORE_ERR;
    if (strcmp(state, "23505") == 0)
        return STORE_DUP;
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0 || strcmp(state, "P0001") == 0)
        return STORE_REFUSED;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0 ||
        strcmp(state, "57014") == 0)
        return STORE_BUSY;
    return STORE_ERR;
}

/* Keeps the server's reason of a failed result r (NULL: the connection's) on one line. */
static enum store_rc keep_reason(struct pg *b, const PGresult *r)
{
    const char *prim = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    if (prim != NULL && detail != NULL) {
        snprintf(b->why, sizeof b->why, "%.300s (%.200s)", prim, detail);
    } else if (prim != NULL) {
        snprintf(b->why, sizeof b->why, "%s", prim);
    } else {
        char m[320];
        pg_conn_message(b, m, sizeof m);
        snprintf(b->why, sizeof b->why, "%s", m[0] != '\0' ? m : "no answer from PostgreSQL");
    }
    for (char *c = b->why; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    return rc_of(r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
}

/* ---- sending and waiting ---- */

/*
 * Sends what libpq holds (non-blocking mode: a large statement may not fit
 * the socket at once), waits for every result of the command and returns
 * the first error, or the last result; NULL if none came (the connection
 * failed, or was dropped at the deadline). deadline: CLOCK_MONOTONIC ms,
 * 0 for none. A command still running then is not cancelled but its session
 * dropped (pg_drop): PQcancel opens a new connection and waits for the
 * server's answer, with no bound, so a server that stopped answering would
 * stop the caller with it; a closed socket ends the statement on the server
 * as well (client_connection_check_interval, pg_open.c).
 */
static PGresult *collect(struct pg *b, int64_t deadline)
{
    PGresult *keep = NULL;
    for (;;) {
        int flushing = PQflush(b->conn);
        while (flushing == 1 || (flushing == 0 && PQisBusy(b->conn))) {
            int fd = PQsocket(b->conn), timeout = -1;
            if (fd < 0)
                break;
            if (deadline > 0) {
                int64_t left = deadline - clock_mono_ms();
                if (left <= 0) {
                    b->cancelled = b->timed_out = 1;
                    pg_drop(b);
                    PQclear(keep);
                    return NULL;
                }
                timeout = left > INT_MAX ? INT_MAX : (int)left;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLIN | (flushing == 1 ? POLLOUT : 0)};
            int n = poll(&pfd, 1, timeout);
            if (n < 0 && errno != EINTR)
                break;
            if (n > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(b->conn))
                break;
            if (flushing == 1)
                flushing = PQflush(b->conn);
        }
        if (flushing < 0)
            break;
        PGresult *r = PQgetResult(b->conn);
        if (r == NULL)
            break;
        if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r); /* the first error is the one */
            continue;
        }
        PQclear(keep);
        keep = r;
    }
    return keep;
}

/* The deadline of a statement sent now: the transaction's, else the budget from now (ms). */
static int64_t call_deadline(const struct pg *b)
{
    if (pg_tx_open(b) && b->deadline > 0)
        return b->deadline;
    return b->budget_ms > 0 ? clock_mono_ms() + b->budget_ms : 0;
}

static int result_ok(const PGresult *r)
{
    ExecStatusType s = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

enum store_rc pg_simple(struct pg *b, const char *sql, PGresult **last)
{
    if (last != NULL)
        *last = NULL;
    /* the plumbing (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, the session's setup) gets the budget */
    int64_t deadline = b->budget_ms > 0 ? clock_mono_ms() + b->budget_ms : 0;
    PGresult *r = PQsendQuery(b->conn, sql) ? collect(b, deadline) : NULL;
    pg_watch_drain(b);
    if (!result_ok(r)) {
        enum store_rc rc = keep_reason(b, r);
        PQclear(r);
        return rc != STORE_OK ? rc : STORE_ERR;
    }
    if (last != NULL)
        *last = r;
    else
        PQclear(r);
    return STORE_OK;
}

/* Ends the open transaction after an error in it: rolled back, store_tx_aborted() says so. */
static void abort_tx(struct pg *b)
{
    char why[sizeof b->why];
    memcpy(why, b->why, sizeof why);
    if (pg_live(b) && PQtransactionStatus(b->conn) != PQTRANS_IDLE)
        (void)pg_simple(b, "ROLLBACK", NULL);
    memcpy(b->why, why, sizeof why);
    b->aborted = 1;
    b->deadline = 0;
}

/* The statement name of q on the session. */
static void stmt_name(enum pg_query q, char out[16])
{
    snprintf(out, 16, "sg%d", (int)q);
}

/* Sends q (prepared first if need be) or sql, and waits for its result. */
static PGresult *send_one(struct pg *b, int q, const char *sql, const struct pg_params *p)
{
    char name[16];
    int64_t deadline = call_deadline(b);
    if (q >= 0) {
        stmt_name((enum pg_query)q, name);
        if (!b->prepared[q]) {
            PGresult *r =
                PQsendPrepare(b->conn, name, pg_sql(q), 0, NULL) ? collect(b, deadline) : NULL;
            if (!result_ok(r))
                return r;
            PQclear(r);
            b->prepared[q] = 1;
        }
        return PQsendQueryPrepared(b->conn, name, p->n, p->v, p->len, p->fmt, 0)
                   ? collect(b, deadline)
                   : NULL;
    }
    return PQsendQueryParams(b->conn, sql, p->n, NULL, p->v, p->len, p->fmt, 0)
               ? collect(b, deadline)
               : NULL;
}

/* After a write: the counters, and what the commit (or, outside a transaction, now) notifies. */
static void wrote(struct pg *b, int flags, const PGresult *r)
{
    int64_t n = pg_changed(r);
    b->writes++;
    b->rows += n > 0 ? (uint64_t)n : 0;
    if (n <= 0 || !(flags & (PG_W_OUT | PG_W_IN)))
        return;
    if (pg_tx_open(b)) {
        b->wrote |= flags & (PG_W_OUT | PG_W_IN);
    } else {
        b->notify_due_mask |= flags & (PG_W_OUT | PG_W_IN);
        pg_notify_flush(b, 0);
    }
}

/* The one way statements run (pg_run, pg_run_sql). */
static PGresult *run(struct pg *b, int q, const char *sql, int flags, struct pg_params *p,
                     enum store_rc *rc)
{
    PGresult *res = NULL;
    int reconnected = 0, timed = 0;
    *rc = STORE_OK;
    b->why[0] = '\0';
    if (!pg_tx_open(b))
        b->timed_out = 0; /* a call of its own: only its deadline counts */
    if (b->gone) {
        *rc = pg_fail(b, STORE_GONE, "the PostgreSQL database was dropped or replaced");
        goto out;
    }
    if (p->bad != NULL) {
        *rc = pg_fail(b, strcmp(p->bad, "out of memory") == 0 ? STORE_ERR : STORE_REFUSED, p->bad);
        goto out;
    }
again:
    if (!pg_live(b)) {
        if (b->in_tx && !b->aborted) {
            *rc =
                pg_fail(b, STORE_ERR, "lost the connection to PostgreSQL: the transaction is gone");
            b->aborted = 1;
            goto out;
        }
        if (reconnected || pg_reconnect(b) != 0) {
            *rc = b->gone ? STORE_GONE : STORE_ERR;
            goto out;
        }
        reconnected = 1;
    }
    if (pg_tx_open(b) && b->deadline > 0 && clock_mono_ms() > b->deadline) {
        b->timed_out = timed = 1; /* SQLite's progress handler would stop it at once */
        goto failed;
    }
    int sp = pg_tx_open(b) && (flags & b->rules & PG_WRITES) != 0;
    if (sp && pg_simple(b, "SAVEPOINT sg_row", NULL) != STORE_OK) {
        *rc = STORE_ERR;
        abort_tx(b);
        goto out;
    }
    b->cancelled = 0;
    res = send_one(b, q, sql, p);
    pg_watch_drain(b);
    timed = b->cancelled;
    if (timed) {
        PQclear(res); /* given up, even if it ended first: the turn is over all the same */
        res = NULL;
        goto failed;
    }
    if (result_ok(res)) {
        if (sp && pg_simple(b, "RELEASE SAVEPOINT sg_row", NULL) != STORE_OK) {
            PQclear(res);
            res = NULL;
            *rc = STORE_ERR;
            abort_tx(b);
            goto out;
        }
        if ((flags & PG_WRITES) && !(flags & PG_QUIET))
            wrote(b, flags, res);
        goto out;
    }
    if (!pg_live(b)) {
        char m[320];
        pg_conn_message(b, m, sizeof m);
        PQclear(res);
        res = NULL;
        if (!b->in_tx && (flags & PG_READ) && !reconnected)
            goto again; /* a read, outside a transaction: again on a new session */
        snprintf(b->why, sizeof b->why, "lost the connection to PostgreSQL%s: %s",
                 b->in_tx              ? " (the transaction is gone)"
                 : (flags & PG_WRITES) ? " (the change may or may not have been made)"
                                       : "",
                 m);
        *rc = STORE_ERR;
        if (b->in_tx)
            b->aborted = 1;
        goto out;
    }
    if (sp && !timed) {
        *rc = keep_reason(b, res);
        PQclear(res);
        res = NULL;
        if (*rc == STORE_OK)
            *rc = STORE_ERR;
        if (pg_simple(b, "ROLLBACK TO SAVEPOINT sg_row; RELEASE SAVEPOINT sg_row", NULL) !=
            STORE_OK)
            abort_tx(b);
        goto out;
    }
failed:
    *rc = res != NULL ? keep_reason(b, res) : STORE_ERR;
    PQclear(res);
    res = NULL;
    if (*rc == STORE_OK)
        *rc = STORE_ERR;
    if (timed) {
        *rc = STORE_BUSY;
        snprintf(b->why, sizeof b->why,
                 "a statement ran longer than %d ms (a slow trigger?); the turn was rolled back",
                 b->budget_ms);
    }
    if (b->in_tx && !b->aborted) {
        abort_tx(b);
        if (*rc == STORE_REFUSED || *rc == STORE_DUP)
            b->rules_at = 0; /* a rule the last check missed? check again at the next BEGIN */
    }
out:
    pp_free(p);
    return res;
}

PGresult *pg_run(struct pg *b, enum pg_query q, struct pg_params *p, enum store_rc *rc)
{
    return run(b, (int)q, NULL, pg_sql_flags(q), p, rc);
}

PGresult *pg_run_sql(struct pg *b, const char *sql, int flags, struct pg_params *p,
                     enum store_rc *rc)
{
    return run(b, -1, sql, flags, p, rc);
}

enum store_rc pg_run_count(struct pg *b, enum pg_query q, struct pg_params *p, int *changed)
{
    enum store_rc rc;
    PGresult *r = pg_run(b, q, p, &rc);
    if (r != NULL && changed != NULL)
        *changed = (int)pg_changed(r);
    PQclear(r);
    return rc;
}

/* ---- the NOTIFY that wakes other sessions (pg_watch.c listens) ---- */

/* Sent at most this often; a commit within it is told when it ends. */
#define NOTIFY_GAP_US 50000

/*
 * One empty notification per channel owed, in a transaction of its own that
 * does not wait for the WAL flush: notifying in the writing transaction would
 * hold the cluster's one notify lock through its commit, serialising every
 * daemon's commits (data/schema-pg.sql). Debounced: at most one every
 * NOTIFY_GAP_US per connection, not one per row or per commit. A hint only;
 * the listeners poll anyway. Other programs' inserts send none: the watch's
 * fallback check finds them.
 */
void pg_notify_flush(struct pg *b, int force)
{
    if (b->notify_due_mask == 0 || !pg_live(b) || PQtransactionStatus(b->conn) != PQTRANS_IDLE)
        return;
    int64_t now = clock_mono_us();
    if (!force && now - b->notify_at < NOTIFY_GAP_US)
        return;
    char sql[256];
    snprintf(sql, sizeof sql, "BEGIN; SET LOCAL synchronous_commit = off; SELECT %s%s%s; COMMIT",
             b->notify_due_mask & PG_W_OUT ? "pg_notify('" PG_CHANNEL_OUT "', '')" : "",
             (b->notify_due_mask & (PG_W_OUT | PG_W_IN)) == (PG_W_OUT | PG_W_IN) ? ", " : "",
             b->notify_due_mask & PG_W_IN ? "pg_notify('" PG_CHANNEL_IN "', '')" : "");
    char why[sizeof b->why];
    memcpy(why, b->why, sizeof why);
    if (pg_simple(b, sql, NULL) != STORE_OK && pg_live(b) &&
        PQtransactionStatus(b->conn) != PQTRANS_IDLE)
        (void)pg_simple(b, "ROLLBACK", NULL);
    memcpy(b->why, why, sizeof why);
    b->notify_due_mask = 0;
    b->notify_at = now;
}

/* ---- life cycle ---- */

static const struct store_ops pg_ops;

static void set_free(struct pg_set *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->text != NULL ? s->text[i] : NULL);
    free(s->text);
    free(s->num);
    free(s->lit[0]);
    free(s->lit[1]);
    memset(s, 0, sizeof *s);
}

static void pg_close(struct store *st)
{
    struct pg *b = pg_of(st);
    if (pg_live(b)) {
        if (PQtransactionStatus(b->conn) != PQTRANS_IDLE)
            (void)pg_simple(b, "ROLLBACK", NULL);
        pg_notify_flush(b, 1);
        /* Now, not when the server notices the session gone: a successor takes our rows at once. */
        (void)pg_simple(b, "SELECT pg_advisory_unlock_all()", NULL);
    }
    PQfinish(b->conn);
    set_free(&b->blocked);
    set_free(&b->blocked_peer);
    set_free(&b->skipped);
    free(b);
}

enum store_rc store_pg_open(const char *location, enum store_open_mode mode, int busy_ms,
                            struct store **out, char *err, size_t errlen)
{
    if (pg_lib_load(err, errlen) != 0)
        return STORE_ERR;
    struct pg *b = calloc(1, sizeof *b);
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERR;
    }
    b->base.ops = &pg_ops;
    b->mode = mode;
    b->busy_ms = busy_ms > 0 ? busy_ms : 1;
    enum store_rc rc = pg_open_checks(b, location, err, errlen);
    if (rc != STORE_OK) {
        pg_close(&b->base);
        return rc;
    }
    *out = &b->base;
    return STORE_OK;
}

static const char *pg_errmsg(const struct store *st)
{
    const struct pg *b = pg_const(st);
    return b->why[0] != '\0' ? b->why : "no error";
}

static const struct store_ops pg_ops = {
    .version = STORE_OPS_VERSION,
    .name = "postgresql",
    .close = pg_close,
    .errmsg = pg_errmsg,
    .set_budget = pg_set_budget,
    .timed_out = pg_timed_out,
    .write_stats = pg_write_stats,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .tx_aborted = pg_tx_aborted,
    .watch_start = pg_watch_start,
    .watch_fd = pg_watch_fd,
    .poll_due_us = pg_poll_due_us,
    .poll = pg_poll,
    .recover_sending = pg_recover_sending,
    .outbound_pending = pg_outbound_pending,
    .outbound_exclude = pg_outbound_exclude,
    .outbound_skip = pg_outbound_skip,
    .outbound_expire = pg_outbound_expire,
    .outbound_payloads = pg_outbound_payloads,
    .outbound_load_sent = pg_outbound_load_sent,
    .outbound_get_sent = pg_outbound_get_sent,
    .outbound_take = pg_outbound_take,
    .outbound_sent = pg_outbound_sent,
    .outbound_failed = pg_outbound_failed,
    .outbound_acked = pg_outbound_acked,
    .outbound_claim = pg_outbound_claim,
    .outbound_identify = pg_outbound_identify,
    .outbound_release = pg_outbound_release,
    .inbound_insert = pg_inbound_insert,
    .inbound_ack_sent = pg_inbound_ack_sent,
    .inbound_ack_sent_rows = pg_inbound_ack_sent_rows,
    .inbound_ack_failed = pg_inbound_ack_failed,
    .inbound_unacked = pg_inbound_unacked,
    .max_id = pg_max_id,
    .enqueue = pg_enqueue,
    .outbound_state = pg_outbound_state,
    .select = pg_select,
    .fetch = pg_fetch,
    .unmark = pg_unmark,
    .purge_count = pg_purge_count,
    .purge_unreadable = pg_purge_unreadable,
    .purge = pg_purge,
    .vacuum = pg_vacuum,
    .outbound_exclude_peers = pg_outbound_exclude_peers,
    .outbound_expire_peer = pg_outbound_expire_peer,
    .outbound_requeue = pg_outbound_requeue,
    .sequence_load = pg_sequence_load,
    .sequence_save = pg_sequence_save,
    .journal_bytes = pg_journal_bytes,
    .count_states = pg_count_states,
    .outbound_take_set = pg_outbound_take_set,
};
