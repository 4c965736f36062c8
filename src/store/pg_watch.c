/*
 * pg_watch: how the PostgreSQL backend notices other connections' commits
 * (the daemon's new rows, sg-recv --follow, sg-send --wait).
 *
 * Every store connection that commits a change of outbound or inbound rows
 * sends one empty NOTIFY on securedgram_outbound or securedgram_inbound
 * (pg.c: once per commit at most, debounced to one per 50 ms, in a
 * transaction of its own). A watching connection LISTENs (the daemon on
 * securedgram_outbound only: it has nothing to do with others' inbound rows;
 * the tools on both), on its own session: store_watch_fd is its socket, and a
 * readable socket means "maybe". Notifications libpq read while waiting for
 * a statement's result are taken then, and make store_poll_due_us now. Its
 * own notifications (the same backend pid) are not reported.
 *
 * Programs that are not securedgram's send no NOTIFY (a script's INSERT,
 * psql): the fallback check, every fallback_ms, compares the largest id of
 * each table with the last check's, so their inserts are found within that
 * time; an insert of this connection's own (whose id it knows) is not
 * reported. Their updates are not seen by it (a script that moves rows back
 * to 'pending' by hand should NOTIFY securedgram_outbound, or they wait for
 * the daemon's next claim). A NOTIFY is also lost in a server crash; after a
 * reconnection the watch always reports a change.
 *
 * The watch also renews this connection's leases (P_RENEW), every
 * PG_RENEW_EVERY_S: a row in flight is its daemon's however long its
 * retransmissions take, and another daemon takes it only once this one's
 * session is gone.
 */
#include "util/clock.h"
#include "store/pg_impl.h"

#include <stdio.h>
#include <string.h>

int pg_watch_listen(struct pg *b)
{
    const char *sql = b->watch.channels == PG_W_OUT ? "LISTEN " PG_CHANNEL_OUT
                                                    : "LISTEN " PG_CHANNEL_OUT
                                                      "; LISTEN " PG_CHANNEL_IN;
    return pg_simple(b, sql, NULL) == STORE_OK ? 0 : -1;
}

void pg_watch_drain(struct pg *b)
{
    if (b->conn == NULL)
        return;
    int me = PQbackendPID(b->conn);
    PGnotify *n;
    while ((n = PQnotifies(b->conn)) != NULL) {
        if (n->be_pid != me)
            b->watch.noted = 1;
        PQfreemem(n);
    }
}

/* The largest ids now: 0, or -1 (the reason kept). */
static int max_ids(struct pg *b, int64_t *out, int64_t *in)
{
    struct pg_params p = {0};
    enum store_rc rc;
    PGresult *r = pg_run(b, P_WATCH, &p, &rc);
    if (r == NULL)
        return -1;
    *out = pg_int(r, 0, 0);
    *in = pg_int(r, 0, 1);
    PQclear(r);
    return 0;
}

/* The leases of this connection's rows in flight, renewed (P_RENEW); 0, or -1. */
static int renew_leases(struct pg *b)
{
    struct pg_params p = {0};
    pp_text(&p, b->me);
    pp_int(&p, PG_LEASE_S);
    pp_int(&p, PG_RENEW_S);
    return pg_run_count(b, P_RENEW, &p, NULL) == STORE_OK ? 0 : -1;
}

enum store_rc pg_watch_start(struct store *st, int fallback_ms, int64_t now_us)
{
    struct pg *b = pg_of(st);
    struct pg_watch *w = &b->watch;
    w->channels = b->mode == STORE_CREATE ? PG_W_OUT : PG_W_OUT | PG_W_IN;
    b->why[0] = '\0';
    if (!pg_live(b) && pg_reconnect(b) != 0)
        return b->gone ? STORE_GONE : STORE_ERR;
    if (!w->started && pg_watch_listen(b) != 0)
        return STORE_ERR;
    w->started = 1; /* from here on a reconnection LISTENs again */
    if (max_ids(b, &w->max_out, &w->max_in) != 0)
        return STORE_ERR;
    pg_watch_drain(b);
    w->noted = 0; /* from now on */
    w->own_out = w->own_in = 0;
    w->fallback_us = (int64_t)fallback_ms * 1000;
    w->next_check = now_us + w->fallback_us;
    w->next_renew = now_us + (int64_t)PG_RENEW_EVERY_S * 1000000;
    w->clock_offset = now_us - clock_mono_us();
    return STORE_OK;
}

int pg_watch_fd(struct store *st)
{
    struct pg *b = pg_of(st);
    return b->watch.started && pg_live(b) ? PQsocket(b->conn) : -1;
}

/* How often a reconnection that is running is advanced (us). */
#define RECONNECT_POLL_US 10000

/* A NOTIFY owed is sent within NOTIFY_GAP_US of the last (pg.c): poll by then. */
#define NOTIFY_DUE_US 50000

int64_t pg_poll_due_us(const struct store *st)
{
    const struct pg *b = pg_const(st);
    const struct pg_watch *w = &b->watch;
    if (!w->started)
        return INT64_MAX;
    if (w->noted)
        return 0; /* taken while a statement ran: report it now */
    int64_t due = w->next_check;
    /* a reconnection is advanced by store_poll: often while it runs, at the backoff's end after */
    int64_t retry = b->connecting                    ? clock_mono_us() + RECONNECT_POLL_US
                    : b->retry_at > 0 && !pg_live(b) ? b->retry_at * 1000
                                                     : INT64_MAX;
    if (retry != INT64_MAX && retry + w->clock_offset < due)
        due = retry + w->clock_offset;
    if (b->notify_due_mask != 0) {
        int64_t notify = b->notify_at + NOTIFY_DUE_US + w->clock_offset;
        if (notify < due)
            due = notify;
    }
    return due;
}

enum store_rc pg_poll(struct store *st, int readable, int64_t now_us, int *changed)
{
    struct pg *b = pg_of(st);
    struct pg_watch *w = &b->watch;
    if (!w->started)
        return pg_fail(b, STORE_ERR, "the database is not being watched (store_watch_start)");
    b->why[0] = '\0';
    w->clock_offset = now_us - clock_mono_us();
    if (readable && pg_live(b) && !PQconsumeInput(b->conn))
        (void)0; /* the connection is gone: found below */
    if (b->gone)
        return pg_fail(b, STORE_GONE, "the PostgreSQL database was dropped or replaced");
    if (!pg_live(b) && pg_reconnect(b) != 0) {
        w->next_check = now_us + w->fallback_us;
        return b->gone ? STORE_GONE : STORE_ERR;
    }
    pg_watch_drain(b);
    pg_notify_flush(b, 0);
    if (now_us >= w->next_renew && renew_leases(b) == 0)
        w->next_renew = now_us + (int64_t)PG_RENEW_EVERY_S * 1000000;
    int64_t out = 0, in = 0;
    if (max_ids(b, &out, &in) != 0) {
        w->next_check = now_us + w->fallback_us;
        return b->gone ? STORE_GONE : STORE_ERR;
    }
    int inserted = (out != w->max_out && out != w->own_out) || (in != w->max_in && in != w->own_in);
    w->max_out = out;
    w->max_in = in;
    w->own_out = w->own_in = 0;
    pg_watch_drain(b);
    if (w->noted || inserted)
        *changed = 1;
    w->noted = 0;
    w->next_check = now_us + w->fallback_us;
    return STORE_OK;
}
