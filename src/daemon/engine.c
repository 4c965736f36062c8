/*
 * engine: one turn of the loop, and the loop around it.
 *
 * One turn ("tick"):
 *   1. receive up to RX_ITEMS_MAX datagrams and judge each (daemon/rx.c):
 *      drops are counted, never answered; ACKs become journal entries,
 *      messages become items;
 *   2. if there is database work, run it in ONE transaction: the journal of
 *      changes owed from earlier turns (daemon/journal.c), the inserts of
 *      this turn's messages (rx.c), due retransmissions and newly claimed
 *      pending rows (daemon/tx.c);
 *   3. only after COMMIT: send the ACKs of stored messages and the sealed
 *      outbound datagrams (daemon/sendq.c); what their sending changes goes
 *      into the journal for the next transaction (rx.c, daemon/sent.c).
 * If the transaction fails (database locked, disk full), nothing of the turn
 * is sent: messages are not ACKed (their senders retransmit), claimed rows
 * stay pending, and the journal is kept. A refusal that rolled the whole
 * transaction back redoes the turn at once without the refused row; a
 * transaction that ran out of time is tried again with a growing back-off,
 * and this turn's messages are stored on their own meanwhile.
 *
 * The engine owns what the turn shares (config, key, store and its watch,
 * counters) and every part's state; the parts reach one another only
 * through the pointers it gives them.
 */
#include "daemon/engine_impl.h"

#include "daemon/ctl.h"
#include "daemon/ctlsock.h"
#include "daemon/httpsrv.h"
#include "daemon/journal.h"
#include "daemon/reasm.h"
#include "daemon/sent.h"
#include "daemon/sysio.h"
#include "util/log.h"
#include "util/secret.h"
#include "wire/envelope.h"
#include "wire/replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SENDQ_MAX 2048                   /* datagrams sealed per turn */
#define SENDQ_ARENA_BYTES (4u << 20)     /* and their bytes */
#define ACK_RESERVE (RX_ITEMS_MAX * 128) /* arena kept for this turn's ACKs */
/* Changes owed: never reached (ACKs journaled only for messages in flight, sends after commit). */
#define JOURNAL_MAX (TX_INFLIGHT_MAX + 4 * SENDQ_MAX + RX_ACK_RETRY_MAX)
/* Nonces remembered: 2 x window x accepted datagrams/s must stay below (28 MiB at most). */
#define REPLAY_MAX (1u << 20)
#define SENDERS_MAX 4096   /* senders with a token bucket */
#define REDO_MAX 64        /* turns redone in one tick after a refusal rolled one back */
#define TURN_BUDGET_MS 500 /* a transaction running longer is interrupted (a slow trigger) */
#define TIMEOUT_BACKOFF_MAX_MS 3200
#define WATCH_CHECK_MS 1000 /* safety re-check of the database (store_poll) */
#define BUSY_BACKOFF_MS 100 /* after a failed transaction */

/* ---- one turn ---- */

/*
 * One transaction: everything owed and due (full), or only this turn's
 * messages (after a turn ran out of time: they are stored and ACKed even
 * while a slow trigger holds up the rest).
 */
static int write_turn(struct engine *e, int64_t now, int full)
{
    tx_prepare(&e->tx);
    journal_prepare(&e->j);
    if (journal_result(&e->j, store_begin(e->st), "begin a transaction") <= 0)
        return -1;
    if ((full && journal_apply(&e->j) != 0) || rx_store(&e->rx) != 0)
        goto abort;
    if (full && tx_write(&e->tx, now) != 0)
        goto abort;
    enum store_rc rc = store_commit(e->st);
    if (rc == STORE_GONE) {
        e->fatal = 1; /* nothing of this turn may be ACKed: it would be lost with the file */
        return -1;    /* (the commit has rolled back) */
    }
    if (journal_result(&e->j, rc, "commit") <= 0)
        return -1;
    return 0;
abort:
    store_rollback(e->st);
    return -1;
}

/* After COMMIT: ACK what was stored, send what was sealed. */
static void after_commit(struct engine *e, int full)
{
    journal_committed(&e->j);
    e->last_commit_ns = sysio_real_ns();
    tx_committed(&e->tx);
    if (full)
        e->busy_until = 0;
    rx_committed(&e->rx);
}

/* After a failed transaction: nothing of it happened; what it claimed is pending again. */
static void undo_turn(struct engine *e, int64_t retry_at)
{
    journal_undo(&e->j);
    tx_undo(&e->tx, retry_at);
    sendq_reset(&e->q);
}

static void after_failure(struct engine *e, int64_t now)
{
    int64_t backoff = BUSY_BACKOFF_MS;
    if (store_timed_out(e->st)) {
        /* a slow trigger: try less often, up to a few seconds apart */
        backoff <<= e->timeouts < 5 ? e->timeouts : 5;
        if (backoff > TIMEOUT_BACKOFF_MAX_MS)
            backoff = TIMEOUT_BACKOFF_MAX_MS;
        e->timeouts++;
    }
    e->busy_until = now + backoff;
    undo_turn(e, e->busy_until);
}

/*
 * write_turn, redone at once without a row whose refusal rolled it back
 * (each redo has one more refused row, so it ends). 0 committed, -1 not.
 */
static int write_turn_redoing(struct engine *e, int64_t now, int full)
{
    for (int round = 0; round < REDO_MAX && !e->fatal; round++) {
        e->j.redo = 0;
        if (write_turn(e, now, full) == 0)
            return 0;
        if (!e->j.redo)
            return -1;
        undo_turn(e, now);
    }
    return -1;
}

/* The turn's database work; if it ran out of time, this turn's messages are stored on their own. */
static void run_turn(struct engine *e, int64_t now)
{
    if (write_turn_redoing(e, now, 1) == 0) {
        e->timeouts = 0;
        after_commit(e, 1);
        return;
    }
    int timed_out = store_timed_out(e->st);
    after_failure(e, now);
    if (timed_out && e->rx.nitems > 0 && !e->fatal && write_turn_redoing(e, now, 0) == 0) {
        after_commit(e, 0);
        return;
    }
    rx_unstored(&e->rx);
}

static int has_db_work(const struct engine *e, int64_t now)
{
    return e->j.n > 0 || e->rx.nitems > 0 || tx_has_work(&e->tx, now);
}

/*
 * Sends the turn's datagrams; each one's result goes to the part that queued
 * it. The first sending of an ACK times its message from when the turn read
 * the datagrams (rx_us) to now, its commit included.
 */
static void flush(struct engine *e, int64_t now, int64_t rx_us)
{
    sendq_flush(&e->q);
    int64_t sent_us = sysio_mono_us();
    for (int i = 0; i < e->q.n; i++) {
        const struct sendq_msg *m = &e->q.msg[i];
        if (m->kind == SENDQ_ACK && m->attempts == 0 && e->q.out[i].err == 0)
            histo_observe(&e->c.datagram_to_ack, sent_us - rx_us);
        if (m->kind == SENDQ_ACK)
            rx_ack_result(&e->rx, m, &e->q.out[i], now);
        else if (m->kind == SENDQ_PART_ACK)
            e->c.part_acks_sent += e->q.out[i].err == 0; /* the next part brings another */
        else
            sent_result(&e->tx, m, &e->q.out[i], now);
    }
    sendq_reset(&e->q);
}

static void tick(struct engine *e)
{
    int64_t now = sysio_mono_ms();
    rx_turn_start(&e->rx);
    sendq_reset(&e->q);
    int64_t rx_us = sysio_mono_us();
    rx_receive(&e->rx);
    tx_turn_start(&e->tx, now);
    if (has_db_work(e, now) && (now >= e->busy_until || e->rx.nitems > 0))
        run_turn(e, now);
    if (e->rx.recovering && e->j.n < e->j.cap / 2)
        rx_recover(&e->rx);
    rx_queue_retries(&e->rx, now);
    rx_part_acks(&e->rx, now);
    tx_pump(&e->tx, now);
    flush(e, now, rx_us);
    e->rx.nitems = 0;
}

int engine_turn(struct engine *e, int db_event)
{
    int64_t now_us = sysio_mono_us();
    if (db_event || now_us >= store_poll_due_us(e->st)) {
        int changed = 0;
        if (store_poll(e->st, db_event, now_us, &changed) == STORE_GONE)
            e->fatal = 1;
        if (changed)
            e->tx.want_claim = 1; /* another process committed: maybe new pending rows */
    }
    if (!e->fatal)
        tick(e);
    if (e->fatal) {
        log_warn("the database %s or its -wal file was removed or replaced while running; "
                 "stopping so that nothing more is acknowledged into a file no one will read",
                 e->db_text);
        return -1;
    }
    int64_t now = now_us / 1000;
    log_limiter_flush(&e->rx.lim_drop, now, "warnings about dropped datagrams");
    log_limiter_flush(&e->j.lim_store, now, "database warnings");
    log_limiter_flush(&e->q.lim_send, now, "send warnings");
    log_limiter_flush(&e->j.lim_rows, now, "warnings about rows");
    return 0;
}

/* ---- the loop ---- */

/* The earlier of wake and the end of a limiter's second, if it holds lines back. */
static int64_t limiter_wake(const struct log_limiter *lim, int64_t wake)
{
    if (lim->suppressed > 0 && lim->window_start_ms + 1000 < wake)
        return lim->window_start_ms + 1000;
    return wake;
}

/* When the loop must next wake for its own reasons (ms, CLOCK_MONOTONIC). */
static int64_t next_wake_ms(const struct engine *e, int64_t now)
{
    int64_t wake;
    if (e->rx.recovering)
        return now;
    if (has_db_work(e, now)) {
        int64_t t = e->j.n > 0 || tx_eager(&e->tx) ? now : tx_next_deadline(&e->tx);
        wake = t < e->busy_until ? e->busy_until : t;
    } else {
        wake = tx_next_deadline(&e->tx);
    }
    if (e->tx.next_sweep < wake)
        wake = e->tx.next_sweep;
    wake = limiter_wake(&e->rx.lim_drop, wake);
    wake = limiter_wake(&e->j.lim_store, wake);
    wake = limiter_wake(&e->q.lim_send, wake);
    wake = limiter_wake(&e->j.lim_rows, wake);
    return rx_next_wake(&e->rx, wake);
}

/* Waits for a datagram, a signal, a database event, or the earliest deadline. */
static int wait_events(struct engine *e)
{
    int64_t now_us = sysio_mono_us();
    int64_t wake_ms = next_wake_ms(e, now_us / 1000);
    int64_t deadline_us = store_poll_due_us(e->st);
    if (wake_ms != INT64_MAX && wake_ms * 1000 < deadline_us)
        deadline_us = wake_ms * 1000;
    loop_watch(&e->loop, LOOP_DB, store_watch_fd(e->st));
    for (int s = 0; s < SENDQ_SOCKS; s++)
        loop_watch(&e->loop, (enum loop_slot)(LOOP_SOCK_MAIN + s), e->q.socks[s].fd);
    loop_extra_reset(&e->loop);
    int64_t d = INT64_MAX;
    e->ctl_nfds = e->http_nfds = 0;
    if (e->ctl != NULL) {
        e->ctl_nfds = ctlsock_pollfds(e->ctl, loop_extra(&e->loop, CTLSOCK_POLLFDS));
        loop_extra_unused(&e->loop, CTLSOCK_POLLFDS - e->ctl_nfds);
        d = ctlsock_deadline(e->ctl);
    }
    if (e->http != NULL) {
        e->http_nfds = httpsrv_pollfds(e->http, loop_extra(&e->loop, HTTPSRV_POLLFDS));
        loop_extra_unused(&e->loop, HTTPSRV_POLLFDS - e->http_nfds);
        int64_t h = httpsrv_deadline(e->http);
        d = h < d ? h : d;
    }
    if (d != INT64_MAX && d * 1000 < deadline_us)
        deadline_us = d * 1000;
    return loop_wait(&e->loop, now_us, deadline_us);
}

void engine_gauges(const struct engine *e, struct counters_gauges *g)
{
    struct reasm_stats rs;
    reasm_get_stats(e->rx.reasm, &rs);
    *g = (struct counters_gauges){.in_flight = retx_count(e->tx.inflight),
                                  .replay_cache = replay_count(e->rx.replay),
                                  .reassembly_evicted = rs.evicted_age + rs.evicted_memory,
                                  .reassembly_refused = rs.no_room + rs.mismatched,
                                  .reassembly_bytes = rs.bytes};
    store_write_stats(e->st, &g->db_writes, &g->db_rows);
}

static void report_counters(const struct engine *e, int loud)
{
    struct counters_gauges g;
    engine_gauges(e, &g);
    char *peers =
        e->stats_path != NULL && peertab_count(e->peers) > 0 ? peertab_report(e->peers) : NULL;
    counters_report(&e->c, &g, e->stats_path, loud, peers);
    free(peers);
}

int engine_run(struct engine *e)
{
    if (!e->watch_told && store_watch_fd(e->st) < 0)
        log_info("no inotify for %s: checking for new rows every %d ms", e->db_text,
                 WATCH_CHECK_MS);
    e->watch_told = 1;
    while (e->resuming || !loop_stopping()) {
        if (!e->resuming) {
            if (wait_events(e) != 0)
                return -1;
            if (loop_stopping())
                break;
            if (loop_take(LOOP_HUP)) {
                e->resuming = 1; /* the caller reloads, then calls again */
                return ENGINE_RELOAD;
            }
        }
        e->resuming = 0;
        int usr1 = loop_take(LOOP_USR1), usr2 = loop_take(LOOP_USR2);
        if (usr1 || usr2)
            report_counters(e, usr1);
        if (e->ctl != NULL || e->http != NULL)
            ctl_service(e);
        int db_event = loop_readable(&e->loop, LOOP_DB) || e->wake;
        e->wake = 0;
        if (engine_turn(e, db_event) != 0)
            return -1;
        if (e->ctl != NULL)
            ctl_tell(e);
    }
    /* Shutdown: record what is owed (rows just sent become 'sent'), then stop. */
    tx_quiesce(&e->tx);
    e->rx.nitems = 0;
    if (e->j.n > 0 && write_turn(e, sysio_mono_ms(), 1) == 0)
        journal_committed(&e->j);
    log_warn("shutting down");
    report_counters(e, 1);
    return 0;
}

int engine_set_hot(struct engine *e, const struct engine_hot *hot, struct envelope_key *key,
                   char *err, size_t errlen)
{
    static const struct peers_conf none = {0};
    if (peertab_apply(e->peers, hot->peers != NULL ? hot->peers : &none, e->cfg->name, hot->master,
                      err, errlen) != 0) {
        envelope_key_free(key);
        return -1;
    }
    envelope_key_free(e->key);
    e->key = key;
    e->rx.key = key;
    e->q.key = key;
    e->cfg->window = hot->window;
    e->cfg->rate_limit = hot->rate_limit;
    e->cfg->rate_burst = hot->rate_burst;
    e->cfg->max_retries = hot->max_retries;
    e->cfg->give_up_after = hot->give_up_after;
    e->cfg->retry_interval = hot->retry_interval;
    e->cfg->retry_policy = hot->retry_policy;
    e->cfg->retry_min_ms = hot->retry_min_ms;
    e->cfg->retry_max_ms = hot->retry_max_ms;
    e->cfg->max_message = hot->max_message;
    e->cfg->mtu = hot->mtu;
    e->cfg->reassembly_memory = hot->reassembly_memory;
    rx_set_part_limits(&e->rx);
    if (tx_sequences_load(&e->tx, err, errlen) != 0)
        log_warn("reload: %s; the numbers of new peers' messages start again", err);
    return 0;
}

/* ---- life cycle ---- */

/* The key from the config's hex text, which then need not stay in the heap (NULL: none). */
static struct envelope_key *take_key(struct config *cfg)
{
    if (cfg->secret == NULL)
        return NULL;
    struct envelope_key *key = envelope_key_from_hex(cfg->secret);
    if (key != NULL) {
        secret_wipe(cfg->secret, strlen(cfg->secret));
        free(cfg->secret);
        cfg->secret = NULL;
    }
    return key;
}

/*
 * Every part's own memory, the send queue first (it owns fd from now on, so
 * that engine_free closes it whatever fails). Returns 0, or -1 with the
 * reason in err.
 */
static int init_parts(struct engine *e, int fd, char *err, size_t errlen)
{
    int bad = sendq_init(&e->q, fd, NULL, SENDQ_MAX, SENDQ_ARENA_BYTES) != 0;
    int has_secret = e->cfg->secret != NULL;
    e->key = take_key(e->cfg);
    e->q.key = e->key;
    e->peers = peertab_new(REPLAY_MAX);
    if (e->peers == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* the peers' keys go into guarded memory; the parsed file's copies are wiped */
    int peers_bad = peertab_apply(e->peers, &e->cfg->peers, e->cfg->name,
                                  e->cfg->has_master ? e->cfg->master : NULL, err, errlen) != 0;
    peers_free(&e->cfg->peers);
    secret_wipe(e->cfg->master, sizeof e->cfg->master);
    e->cfg->has_master = 0;
    if (peers_bad)
        return -1;
    bad |= journal_init(&e->j, e->st, &e->c, JOURNAL_MAX) != 0;
    e->tx = (struct tx){
        .cfg = e->cfg, .st = e->st, .j = &e->j, .q = &e->q, .c = &e->c, .peers = e->peers};
    e->tx.ack_slots = RX_ITEMS_MAX;
    e->tx.ack_bytes = ACK_RESERVE;
    bad |= tx_init(&e->tx) != 0;
    e->rx = (struct rx){.cfg = e->cfg, .st = e->st, .j = &e->j, .q = &e->q, .tx = &e->tx};
    e->rx.key = e->key;
    e->rx.c = &e->c;
    e->rx.peers = e->peers;
    bad |= rx_init(&e->rx, REPLAY_MAX, SENDERS_MAX) != 0;
    if ((has_secret && e->key == NULL) || bad) {
        snprintf(err, errlen,
                 has_secret && e->key == NULL ? "cannot load the secret into protected memory"
                                              : "out of memory");
        return -1;
    }
    return 0;
}

/* The database side of the start: crash recovery, the watch, the time budget. */
static int start_store(struct engine *e, char *err, size_t errlen)
{
    if (tx_recover(&e->tx, err, errlen) != 0 || tx_sequences_load(&e->tx, err, errlen) != 0)
        return -1;
    if (store_watch_start(e->st, WATCH_CHECK_MS, sysio_mono_us()) != STORE_OK) {
        snprintf(err, errlen, "cannot watch the database: %s", store_errmsg(e->st));
        return -1;
    }
    store_set_budget(e->st, TURN_BUDGET_MS);
    rx_start_recovery(&e->rx);
    return 0;
}

struct engine *engine_new(const struct engine_opts *o, char *err, size_t errlen)
{
    struct engine *e = calloc(1, sizeof *e);
    if (e == NULL) {
        close(o->fd);
        store_close(o->store);
        ctlsock_close(o->ctl);
        httpsrv_close(o->metrics);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    counters_init(&e->c);
    sysio_use(o->io);
    e->cfg = o->cfg;
    store_location_text(o->cfg->db, e->db_text, sizeof e->db_text);
    e->st = o->store;
    e->stats_path = o->stats_path;
    e->ctl = o->ctl;
    e->http = o->metrics;
    e->started_ms = sysio_mono_ms();
    e->started_ns = sysio_real_ns();
    if (init_parts(e, o->fd, err, errlen) != 0 || loop_open(&e->loop, err, errlen) != 0 ||
        start_store(e, err, errlen) != 0) {
        engine_free(e);
        return NULL;
    }
    tx_start(&e->tx, sysio_mono_ms());
    return e;
}

void engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    sendq_fini(&e->q); /* closes the sockets */
    store_close(e->st);
    envelope_key_free(e->key);
    peertab_free(e->peers);
    tx_fini(&e->tx);
    journal_fini(&e->j);
    rx_fini(&e->rx);
    loop_close(&e->loop);
    ctlsock_close(e->ctl);
    httpsrv_close(e->http);
    ctl_free(e);
    sysio_use(NULL);
    free(e);
}

int engine_peer_count(const struct engine *e)
{
    return peertab_count(e->peers);
}

const struct counters *engine_counters(const struct engine *e)
{
    return &e->c;
}
