/*
 * engine: the event loop.
 *
 * One turn ("tick") of the loop:
 *   1. receive up to ITEMS_MAX datagrams; open and classify each (drops are
 *      counted, never answered); ACKs become jobs, messages become items;
 *   2. if there is database work, run it in ONE transaction: the journal of
 *      state changes owed from earlier turns, the inserts of this turn's
 *      messages, due retransmissions, and newly claimed pending rows;
 *   3. only after COMMIT: send the ACKs of stored messages and the sealed
 *      outbound datagrams; what their sending changes (sent, ack_sent, ...)
 *      goes into the journal for the next transaction.
 * If the transaction fails (database locked, disk full), nothing of the turn
 * is sent: messages are not ACKed (their senders retransmit), claimed rows
 * stay pending, and the journal is kept for the next try.
 */
#define _GNU_SOURCE
#include "daemon/engine.h"

#include "wire/envelope.h"
#include "daemon/flow.h"
#include "wire/judge.h"
#include "wire/replay.h"
#include "util/log.h"
#include "wire/message.h"
#include "util/net.h"
#include "daemon/ratelimit.h"
#include "daemon/retx.h"
#include "conf/settings.h"
#include "daemon/statsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RX_SLOTS 64                 /* datagrams per recvmmsg */
#define ITEMS_MAX 1024              /* datagrams per turn, so messages per transaction */
#define ITEM_ARENA_BYTES (2u << 20) /* this turn's received JSON */
#define CLAIM_BATCH 512             /* pending rows claimed per turn */
#define INFLIGHT_MAX 8192           /* messages sent and waiting for their ACK */
#define PEERS_MAX 4096              /* destinations with a flow window */
/* Nonces remembered: 2 x window x accepted datagrams/s must stay below (28 MiB at most). */
#define REPLAY_MAX (1u << 20)
#define SENDQ_MAX 2048 /* datagrams sealed per turn */
/*
 * State changes owed to the database. ACKs are journaled only for messages in
 * flight, and sends happen only after a commit, so this bound is never
 * reached: a change is never dropped while its message is forgotten.
 */
#define JOURNAL_MAX (INFLIGHT_MAX + 4 * SENDQ_MAX + ACK_RETRY_MAX)
#define POISON_MAX 256     /* rows the database refused, remembered across turns */
#define SKIP_MAX 1024      /* rows to leave out of claims, written after the turn */
#define REDO_MAX 64        /* turns redone in one tick after a refusal rolled one back */
#define TURN_BUDGET_MS 500 /* a transaction running longer is interrupted (a slow trigger) */
#define TIMEOUT_BACKOFF_MAX_MS 3200
/* Look for 'sent' rows written by other programs every retry interval, 2 to 10 s apart. */
#define SWEEP_MIN_MS 2000
#define SWEEP_MAX_MS 10000
#define ARENA_BYTES (4u << 20)
#define ACK_RESERVE (ITEMS_MAX * 128) /* arena kept for this turn's ACKs */
#define ACK_RETRY_MAX 1024
#define SOCK_BUF_BYTES (4 << 20)
#define WATCH_CHECK_MS 1000 /* safety re-check of the database (store_poll) */
#define BUSY_BACKOFF_MS 100 /* after a failed transaction */
#define EAGAIN_RETRY_MS 200
#define ACK_RETRY_MS 1000
#define LOAD_BATCH 512

enum sock_idx { SOCK_MAIN, SOCK_ALT4, SOCK_ALT6, SOCK_COUNT };

struct sock {
    int fd;
    int af;
    int dual; /* an IPv6 wildcard socket that also reaches IPv4 */
};

enum job_kind { J_ACKED, J_ACK_SENT, J_ACK_FAILED, J_SENT, J_FAILED };

/* A database change owed: applied at the start of the next transaction. */
struct job {
    uint8_t kind;
    uint8_t dead; /* the database refused it: skipped, forgotten at the next commit */
    char id[MESSAGE_ID_LEN + 1];
    int64_t rowid, retries;
    char *why; /* malloc'd or NULL */
};

/* A row whose change the database refused, so that a redone turn does not try it again. */
enum poison_stage { P_UPDATE = 1, P_FAIL };
struct poison {
    int64_t rowid;
    uint8_t stage; /* P_UPDATE: its claim or retransmission update; P_FAIL: even send_failed */
};

enum out_kind { OUT_ACK, OUT_NEW, OUT_RETX };

/* What a sealed datagram of this turn is, for handling its send result. */
struct outmsg {
    uint8_t kind;
    uint8_t sock;
    char id[MESSAGE_ID_LEN + 1];
    int64_t rowid, retries;
    int attempts;           /* OUT_ACK */
    struct net_addr dst;    /* as the row names it (for the in-flight table) */
    struct retx_entry *ent; /* OUT_RETX */
};

/* A message received this turn. */
struct rx_item {
    struct message_in msg;
    uint8_t sock;
    int stored;
    int duplicate; /* its message_id was stored before (a retransmission) */
    int refused;   /* the database refused it, or it is one of ours: never ACKed */
    int to_self;   /* we sent it to ourselves: our outbound row with its id is expected */
    struct net_addr from;
    const char *json; /* in the item arena */
    size_t len;
    uint64_t ts;
};

/* An ACK whose sending failed, to try again. */
struct ack_retry {
    char id[MESSAGE_ID_LEN + 1];
    uint8_t sock;
    int attempts;
    struct net_addr to;
    int64_t due;
};

enum due_action { DUE_RESEND, DUE_DROP };

struct engine {
    struct engine_opts o;
    struct config *cfg;
    struct envelope_key *key;
    struct store *st;
    struct sock socks[SOCK_COUNT];
    struct retx *inflight;

    uint8_t *rxbuf;
    struct net_dgram rx[RX_SLOTS];
    struct rx_item *items; /* ITEMS_MAX */
    int nitems;
    char *item_arena;
    size_t item_used;

    struct flow_table *flows;
    struct replay *replay;
    struct ratelimit *limiter;
    struct blocked_dest {
        char addr[NET_HOST_MAX];
        int64_t port;
        struct net_addr dst;
        int64_t next_expiry; /* when its backlog is next checked against the deadline */
    } * blocked; /* destinations whose window is full (PEERS_MAX): claims leave them out */
    int nblocked, blocked_dirty;
    struct store_dest *exclude; /* PEERS_MAX: what sync_exclusions hands the store */
    struct store_rows rows;     /* CLAIM_BATCH rows read from the store: preallocated */
    struct load_ctx *load;      /* one, for load_sent */

    struct job *jobs;
    int njobs, jobs_applied;

    struct poison poison[POISON_MAX]; /* a ring */
    int npoison, poison_next;
    int64_t skips[SKIP_MAX];
    int nskips;
    int redo;  /* a refusal rolled the turn back: redo it without the refused row */
    int fatal; /* the database file or its -wal is gone: stop */
    int timeouts;
    int64_t next_sweep;
    int64_t now; /* this turn's CLOCK_MONOTONIC ms */

    struct net_dgram *out;
    struct outmsg *outm;
    struct net_dgram *batch; /* SENDQ_MAX: one socket's share of out, for sendmmsg */
    int *batch_index;
    int nout;
    uint8_t *arena;
    size_t arena_used;

    struct retx_entry *due[CLAIM_BATCH];
    uint8_t due_action[CLAIM_BATCH];
    int ndue;

    struct ack_retry *acks;
    int nacks;

    int want_claim, loading_sent, recovering_in;
    int64_t recover_upto; /* recovery ACKs rows stored before we started, not this run's own */
    int recover_past;     /* it has come to this run's rows */
    int recover_full;     /* this turn's send queue is full: recovery goes on next turn */
    int64_t load_after, recover_after;
    int64_t busy_until;
    uint64_t turn_failed; /* send_failed rows of the open transaction */

    struct engine_counters c;
    struct log_limiter lim_drop, lim_store, lim_send, lim_rows;
};

static volatile sig_atomic_t got_term, got_hup, got_usr1, got_usr2;
static int sig_wfd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP)
        got_hup = 1;
    else if (sig == SIGUSR1)
        got_usr1 = 1;
    else if (sig == SIGUSR2)
        got_usr2 = 1;
    else
        got_term = 1;
    if (sig_wfd >= 0)
        (void)!write(sig_wfd, "x", 1);
    errno = saved;
}

/* The clocks and the socket calls, or a test's doubles of them (engine_opts.io). */
static const struct engine_io *io;

static int64_t mono_us(void)
{
    if (io != NULL && io->mono_us != NULL)
        return io->mono_us(io->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
    return mono_us() / 1000;
}

static uint64_t real_ns(void)
{
    if (io != NULL && io->real_ns != NULL)
        return io->real_ns(io->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The wall clock as the store writes it: ms since the epoch. */
static int64_t real_ms(void)
{
    return (int64_t)(real_ns() / 1000000ULL);
}

static int recv_batch(int fd, struct net_dgram *d, int n)
{
    return io != NULL && io->recv_batch != NULL ? io->recv_batch(io->ctx, fd, d, n)
                                                : net_recv_batch(fd, d, n);
}

static int send_batch(int fd, struct net_dgram *d, int n)
{
    return io != NULL && io->send_batch != NULL ? io->send_batch(io->ctx, fd, d, n)
                                                : net_send_batch(fd, d, n);
}

/* ---- journal ---- */

/* Returns 0, or -1 if the journal is full (never, by its bound; the caller keeps its state). */
static int job_add(struct engine *e, enum job_kind kind, const char *id, int64_t rowid,
                   int64_t retries, const char *why)
{
    if (e->njobs >= JOURNAL_MAX) {
        log_warn_limited(&e->lim_store, mono_ms(), "too many database changes waiting");
        return -1;
    }
    struct job *j = &e->jobs[e->njobs++];
    j->kind = (uint8_t)kind;
    j->dead = 0;
    snprintf(j->id, sizeof j->id, "%s", id != NULL ? id : "");
    j->rowid = rowid;
    j->retries = retries;
    j->why = why != NULL ? strdup(why) : NULL;
    return 0;
}

/* Forgets the first n jobs (they are in the database now, or skipped). */
static void jobs_forget(struct engine *e, int n)
{
    for (int i = 0; i < n; i++)
        free(e->jobs[i].why);
    memmove(e->jobs, e->jobs + n, (size_t)(e->njobs - n) * sizeof *e->jobs);
    e->njobs -= n;
}

/* ---- refusals: one row the database will not take costs only itself ---- */

/* The stage at which the database refused rowid before (0: never). */
static int poisoned(const struct engine *e, int64_t rowid)
{
    for (int i = 0; i < e->npoison; i++)
        if (e->poison[i].rowid == rowid)
            return e->poison[i].stage;
    return 0;
}

static void poison_row(struct engine *e, int64_t rowid, enum poison_stage stage)
{
    for (int i = 0; i < e->npoison; i++)
        if (e->poison[i].rowid == rowid) {
            e->poison[i].stage = (uint8_t)stage;
            return;
        }
    int at = e->npoison < POISON_MAX ? e->npoison++ : e->poison_next++ % POISON_MAX;
    e->poison[at] = (struct poison){rowid, (uint8_t)stage};
}

/* Leaves a row out of every later claim (written to the store after the turn). */
static void skip_row(struct engine *e, int64_t rowid)
{
    if (e->nskips < SKIP_MAX)
        e->skips[e->nskips++] = rowid;
}

/*
 * Judges one statement's result inside the transaction: 1 done; 0 the
 * database refused this one row (the caller skips it and says which; if the
 * refusal ended the transaction, e->redo is set and the caller must abort
 * the turn so that it is redone without that row); -1 abort the turn
 * (busy, timed out, or a fault of the whole database: tried again later).
 */
static int judge(struct engine *e, enum store_rc rc, const char *what)
{
    if (rc == STORE_OK)
        return 1;
    if (rc == STORE_REFUSED || rc == STORE_DUP) {
        e->c.store_refused++;
        if (store_tx_aborted(e->st))
            e->redo = 1;
        return 0;
    }
    e->c.store_errors++;
    if (store_timed_out(e->st))
        e->c.store_timeouts++;
    log_warn_limited(&e->lim_store, mono_ms(), "database: cannot %s: %s; will retry", what,
                     store_errmsg(e->st));
    return -1;
}

static const char *const job_names[] = {[J_ACKED] = "its acknowledgement",
                                        [J_ACK_SENT] = "that its ACK was sent",
                                        [J_ACK_FAILED] = "that its ACK failed",
                                        [J_SENT] = "that it was sent",
                                        [J_FAILED] = "that it failed"};

static enum store_rc apply_job(struct engine *e, const struct job *j, int *matched)
{
    const char *id = j->id;
    struct store_sent row = {j->rowid, j->retries, j->why};
    switch (j->kind) {
    case J_ACKED:
        return store_outbound_acked(e->st, &j->rowid, 1, real_ms(), matched);
    case J_ACK_SENT:
        return store_inbound_ack_sent(e->st, &id, 1, real_ms(), NULL);
    case J_ACK_FAILED:
        return store_inbound_ack_failed(e->st, &id, 1, real_ms(), NULL);
    case J_SENT:
        return store_outbound_sent(e->st, &row, 1, real_ms(), NULL);
    default:
        return store_outbound_failed(e->st, &row, 1, real_ms(), NULL);
    }
}

static int apply_jobs(struct engine *e)
{
    for (int i = 0; i < e->njobs; i++) {
        struct job *j = &e->jobs[i];
        int matched = 1;
        if (j->dead)
            continue;
        int r = judge(e, apply_job(e, j, &matched), "record a state change");
        if (r < 0)
            return -1;
        if (r == 0) {
            j->dead = 1;
            if (j->kind == J_ACKED || j->kind == J_SENT || j->kind == J_FAILED)
                log_warn_limited(&e->lim_rows, mono_ms(),
                                 "outbound row %lld: the database refused to record %s (%s); "
                                 "the row is left as it is",
                                 (long long)j->rowid, job_names[j->kind], store_errmsg(e->st));
            else
                log_warn_limited(&e->lim_rows, mono_ms(),
                                 "inbound message %s: the database refused to record %s (%s)",
                                 j->id, job_names[j->kind], store_errmsg(e->st));
            if (j->kind == J_FAILED)
                skip_row(e, j->rowid);
            if (e->redo)
                return -1;
        } else if (j->kind == J_ACKED && !matched) {
            e->c.acks_unmatched++;
        }
    }
    e->jobs_applied = e->njobs;
    return 0;
}

/* ---- sockets and the send queue ---- */

/* The socket to reach dst from, and dst in that socket's family. -1 with err if none. */
static int sock_for(struct engine *e, const struct net_addr *dst, struct net_addr *out, char *err,
                    size_t errlen)
{
    struct sock *m = &e->socks[SOCK_MAIN];
    int af = dst->u.sa.sa_family;
    if (af == m->af || (m->dual && af == AF_INET))
        return net_addr_for_family(dst, m->af, out) == 0 ? SOCK_MAIN : -1;
    int idx = af == AF_INET ? SOCK_ALT4 : SOCK_ALT6;
    if (e->socks[idx].fd < 0) {
        char why[160];
        int fd = net_bind_beside(m->fd, af, SOCK_BUF_BYTES, why, sizeof why);
        if (fd < 0) {
            snprintf(err, errlen, "cannot send to %s addresses: %s",
                     af == AF_INET ? "IPv4" : "IPv6", why);
            return -1;
        }
        e->socks[idx].fd = fd;
        e->socks[idx].af = af;
    }
    *out = *dst;
    return idx;
}

static size_t arena_room(const struct engine *e)
{
    return ARENA_BYTES - e->arena_used;
}

/* Seals json into the arena as the next datagram of the turn; NULL if there is no room. */
static struct outmsg *queue_sealed(struct engine *e, int sock, const struct net_addr *to,
                                   const char *json, size_t len)
{
    if (e->nout >= SENDQ_MAX || arena_room(e) < len + ENVELOPE_OVERHEAD)
        return NULL;
    uint8_t *buf = e->arena + e->arena_used;
    size_t n = envelope_seal_marked(e->key, real_ns(), json, len, buf, arena_room(e));
    if (n == 0)
        return NULL;
    e->arena_used += n;
    struct net_dgram *d = &e->out[e->nout];
    memset(d, 0, sizeof *d);
    d->buf = buf;
    d->len = n;
    d->addr = *to;
    struct outmsg *m = &e->outm[e->nout++];
    memset(m, 0, sizeof *m);
    m->sock = (uint8_t)sock;
    return m;
}

static struct outmsg *queue_ack(struct engine *e, int sock, const struct net_addr *to,
                                const char *id, int attempts)
{
    char text[MESSAGE_ACK_MAX];
    size_t n = message_ack_text(id, text);
    struct outmsg *m = queue_sealed(e, sock, to, text, n);
    if (m != NULL) {
        m->kind = OUT_ACK;
        m->attempts = attempts;
        memcpy(m->id, id, sizeof m->id);
    }
    return m;
}

/* ---- flow windows ---- */

/* A message to dst left flight; a destination that has room again may be claimed for. */
static void flow_release(struct engine *e, const struct net_addr *dst, int acked)
{
    int was_blocked = e->nblocked > 0 && flow_blocked(e->flows, dst);
    flow_done(e->flows, dst, acked);
    if (!was_blocked || flow_blocked(e->flows, dst))
        return;
    for (int i = 0; i < e->nblocked; i++)
        if (net_addr_equal(&e->blocked[i].dst, dst)) {
            e->blocked[i] = e->blocked[--e->nblocked];
            e->blocked_dirty = 1;
            e->want_claim = 1;
            return;
        }
}

/*
 * Remembers a destination whose window is full, so the next claim leaves its
 * rows out, however many destinations are blocked (the flow table tracks at
 * most PEERS_MAX; an untracked one is never blocked).
 */
static void flow_note_blocked(struct engine *e, const struct store_outbound_row *row,
                              const struct net_addr *dst)
{
    for (int i = 0; i < e->nblocked; i++)
        if (net_addr_equal(&e->blocked[i].dst, dst))
            return;
    if (e->nblocked >= PEERS_MAX)
        return;
    struct blocked_dest *b = &e->blocked[e->nblocked++];
    snprintf(b->addr, NET_HOST_MAX, "%s", row->dst_addr);
    b->port = row->dst_port;
    b->dst = *dst;
    b->next_expiry = 0;
    e->blocked_dirty = 1;
}

/*
 * How long a message may wait for a destination that does not answer: as
 * long as its retries would take, (max_retries + 1) x retry_interval.
 */
static int64_t answer_deadline_ms(const struct engine *e)
{
    return ((int64_t)e->cfg->max_retries + 1) * (int64_t)e->cfg->retry_interval * 1000;
}

/*
 * A destination that has not answered for the deadline: its pending rows
 * older than the deadline fail now, instead of waiting behind its closed
 * window for ever. 0, or -1 to abort the turn.
 */
static int expire_blocked(struct engine *e)
{
    int64_t deadline = answer_deadline_ms(e);
    for (int i = 0; i < e->nblocked; i++) {
        struct blocked_dest *b = &e->blocked[i];
        if (e->now < b->next_expiry || flow_silent_ms(e->flows, &b->dst, e->now) < deadline)
            continue;
        b->next_expiry = e->now + (int64_t)e->cfg->retry_interval * 1000;
        struct store_dest d = {b->addr, b->port};
        int n = 0;
        int r = judge(e,
                      store_outbound_expire(e->st, &d, deadline, "peer not answering; not sent",
                                            real_ms(), &n),
                      "fail the backlog of a peer not answering");
        if (r < 0 || e->redo)
            return -1;
        if (n > 0) {
            e->turn_failed += (uint64_t)n;
            log_warn_limited(&e->lim_rows, e->now,
                             "%d outbound rows to %s port %lld: send_failed: peer not answering; "
                             "not sent",
                             n, b->addr, (long long)b->port);
        }
    }
    return 0;
}

/*
 * Before a transaction: tells the store what claims leave out. Outside the
 * transaction, so that a rolled-back turn does not undo it.
 */
static void sync_exclusions(struct engine *e)
{
    if (e->blocked_dirty) {
        struct store_dest *d = e->exclude;
        for (int i = 0; i < e->nblocked; i++)
            d[i] = (struct store_dest){e->blocked[i].addr, e->blocked[i].port};
        if (store_outbound_exclude(e->st, d, e->nblocked) == STORE_OK)
            e->blocked_dirty = 0;
    }
    int kept = 0;
    for (int i = 0; i < e->nskips; i++)
        if (store_outbound_skip(e->st, &e->skips[i], 1) != STORE_OK)
            e->skips[kept++] = e->skips[i];
    e->nskips = kept;
}

/* ---- receiving ---- */

static void drop(struct engine *e, uint64_t *counter, const struct net_addr *from, const char *why)
{
    (*counter)++;
    char host[NET_HOST_MAX];
    unsigned port;
    net_addr_format(from, host, &port);
    log_debug("datagram from %s port %u: dropped: %s", host, port, why);
    log_warn_limited(&e->lim_drop, mono_ms(), "dropped a datagram from %s port %u: %s", host, port,
                     why);
}

/*
 * An ACK counts only for a message in flight, and only from the address and
 * port that message was sent to. Nothing is journaled for any other ACK, so
 * a flood of them cannot crowd out the real ones.
 */
/*
 * 1 if ent is a message we sent to ourselves and from is ourselves too: the
 * one case where a datagram we sealed may be taken (the quick start's loop).
 */
static int self_exchange(const struct engine *e, const struct retx_entry *ent,
                         const struct net_addr *from)
{
    int fd = e->socks[SOCK_MAIN].fd;
    return ent != NULL && net_addr_is_self(fd, &ent->dst) && net_addr_is_self(fd, from);
}

static void drop_reflected(struct engine *e, const struct net_addr *from)
{
    drop(e, &e->c.verdicts[JUDGE_DROP_REFLECTED], from, judge_reason(JUDGE_DROP_REFLECTED));
}

static void handle_ack(struct engine *e, const struct net_dgram *d, const char *id, int ours)
{
    struct retx_entry *ent = retx_find(e->inflight, id);
    if (ours && !self_exchange(e, ent, &d->addr)) {
        drop_reflected(e, &d->addr);
        return;
    }
    if (ent == NULL) {
        e->c.acks_unmatched++;
        return;
    }
    if (!net_addr_same_peer(&d->addr, &ent->dst)) {
        drop(e, &e->c.acks_wrong_source, &d->addr,
             "an ACK from another address than its message was sent to");
        return;
    }
    if (job_add(e, J_ACKED, id, ent->rowid, 0, NULL) != 0)
        return; /* kept in flight: the retransmission is ACKed again */
    if (log_get_level() >= LOG_LEVEL_INFO) {
        char host[NET_HOST_MAX];
        unsigned port;
        net_addr_format(&d->addr, host, &port);
        log_info("acknowledged: outbound row %lld (message_id %s) by %s port %u",
                 (long long)ent->rowid, id, host, port);
    }
    flow_release(e, &ent->dst, 1);
    retx_remove(e->inflight, ent);
    e->want_claim = 1; /* room in flight again */
}

static void handle_dgram(struct engine *e, int sock, struct net_dgram *d, uint64_t now_ns,
                         int64_t now_ms)
{
    e->c.rx++;
    if (d->truncated) {
        drop(e, &e->c.drop_oversize, &d->addr, "larger than any datagram we accept");
        return;
    }
    struct judge_ctx cx = {e->key, now_ns, e->cfg->window, e->replay};
    struct judgement j;
    enum judge_verdict v = judge_datagram(&cx, d->buf, d->len, &j);
    if (log_get_level() >= LOG_LEVEL_DEBUG && (v == JUDGE_MESSAGE || v == JUDGE_ACK)) {
        char host[NET_HOST_MAX];
        unsigned port;
        net_addr_format(&d->addr, host, &port);
        log_debug("datagram from %s port %u, %zu bytes: %s, message_id %s%s", host, port, d->len,
                  judge_reason(v), j.msg.id, j.ours ? " (sealed by us)" : "");
    }
    if (v != JUDGE_MESSAGE && v != JUDGE_ACK) {
        drop(e, &e->c.verdicts[v], &d->addr, judge_reason(v));
        return;
    }
    if (v == JUDGE_ACK) {
        e->c.verdicts[v]++;
        handle_ack(e, d, j.msg.id, j.ours);
        return;
    }
    /*
     * A datagram of ours is taken only as a message we sent to ourselves;
     * a message with the id of one of ours in flight to anyone else is a
     * reflection (the database checks the same for rows not in memory).
     */
    struct retx_entry *own = retx_find(e->inflight, j.msg.id);
    int to_self = j.ours && self_exchange(e, own, &d->addr);
    if (j.ours && !to_self) {
        drop_reflected(e, &d->addr);
        return;
    }
    if (own != NULL && !to_self) {
        drop(e, &e->c.drop_own_id, &d->addr,
             "a message with the id of one of ours awaiting its ACK (a reflection?)");
        return;
    }
    e->c.verdicts[v]++;
    if (!ratelimit_allow(e->limiter, &d->addr, e->cfg->rate_limit, e->cfg->rate_burst, now_ms)) {
        drop(e, &e->c.drop_rate_limited, &d->addr, "over the sender's rate limit");
        return;
    }
    if (j.json_len > ITEM_ARENA_BYTES - e->item_used) {
        e->c.drop_unstored++; /* not this turn: the sender retransmits */
        return;
    }
    /* The receive slot is reused by the next recvmmsg: keep the JSON in the turn's arena. */
    char *copy = e->item_arena + e->item_used;
    memcpy(copy, j.json, j.json_len);
    e->item_used += j.json_len;
    struct rx_item *it = &e->items[e->nitems++];
    memset(it, 0, sizeof *it);
    it->msg = j.msg;
    it->sock = (uint8_t)sock;
    it->from = d->addr;
    it->json = copy;
    it->len = j.json_len;
    it->ts = j.ts_ns;
    it->to_self = to_self;
}

/* Receives what is waiting, a batch at a time, up to ITEMS_MAX datagrams a turn. */
static void receive(struct engine *e)
{
    int total = 0;
    uint64_t now_ns = real_ns();
    int64_t now_ms = mono_ms();
    for (int s = 0; s < SOCK_COUNT; s++) {
        int n = RX_SLOTS;
        while (e->socks[s].fd >= 0 && n == RX_SLOTS && total + RX_SLOTS <= ITEMS_MAX) {
            n = recv_batch(e->socks[s].fd, e->rx, RX_SLOTS);
            if (n < 0) {
                log_warn_limited(&e->lim_drop, mono_ms(), "receive error: %s", strerror(errno));
                break;
            }
            for (int i = 0; i < n; i++)
                handle_dgram(e, s, &e->rx[i], now_ns, now_ms);
            total += n;
        }
    }
}

/* Inserts this turn's messages; one the database refuses is skipped (never ACKed). */
static int store_items(struct engine *e)
{
    for (int i = 0; i < e->nitems; i++) {
        struct rx_item *it = &e->items[i];
        char host[NET_HOST_MAX];
        unsigned port;
        enum store_in_result res = STORE_IN_NEW;
        it->stored = 0;
        if (it->refused)
            continue;
        net_addr_format(&it->from, host, &port);
        struct store_inbound m = {it->msg.id, host, port, it->json, it->len, it->ts, it->to_self};
        enum store_rc rc = store_inbound_insert(e->st, &m, 1, real_ms(), &res, NULL);
        int r = judge(e, rc, "store a received message");
        if (r < 0)
            return -1;
        if (r == 0) {
            it->refused = 1;
            e->c.drop_refused++;
            log_warn_limited(&e->lim_rows, mono_ms(),
                             "message %s from %s port %u: the database refused it (%s); "
                             "not acknowledged",
                             it->msg.id, host, port, store_errmsg(e->st));
            if (e->redo)
                return -1;
            continue;
        }
        if (res == STORE_IN_OWN) {
            it->refused = 1;
            e->c.drop_own_id++;
            continue;
        }
        it->stored = 1;
        it->duplicate = res == STORE_IN_DUP;
    }
    return 0;
}

/* ---- outbound: claiming, retransmitting ---- */

struct claim_ctx {
    struct engine *e;
    int skipped;  /* rows left for lack of room this turn */
    int progress; /* rows claimed or failed */
    int abort;
};

/*
 * Marks a row send_failed and says so. If the database refuses even that,
 * the row is left as it is and out of later claims, and the log says so.
 */
static void fail_row(struct claim_ctx *cx, const struct store_outbound_row *row, int64_t retries,
                     const char *why)
{
    struct engine *e = cx->e;
    if (poisoned(e, row->rowid) == P_FAIL)
        return;
    struct store_sent failed = {row->rowid, retries, why};
    int r = judge(e, store_outbound_failed(e->st, &failed, 1, real_ms(), NULL),
                  "mark a row send_failed");
    if (r < 0) {
        cx->abort = 1;
    } else if (r == 0) {
        poison_row(e, row->rowid, P_FAIL);
        skip_row(e, row->rowid);
        log_warn_limited(&e->lim_rows, mono_ms(),
                         "outbound row %lld to %.64s port %.32s: cannot be marked send_failed "
                         "(%s): the database refuses (%s); left out until a restart",
                         (long long)row->rowid, row->dst_addr, row->dst_port_text, why,
                         store_errmsg(e->st));
        cx->abort = e->redo;
    } else {
        cx->progress++;
        e->turn_failed++;
        log_warn_limited(&e->lim_rows, mono_ms(),
                         "outbound row %lld (message_id %s) to %.64s port %.32s: send_failed: %s",
                         (long long)row->rowid, row->message_id != NULL ? row->message_id : "none",
                         row->dst_addr, row->dst_port_text, why);
    }
}

/*
 * The row's payload, read only if it can fit one datagram: a row that can
 * never fit fails from its size alone. 1 read (into *payload, which the
 * caller frees; row->payload points to it), 0 the row failed, -1 abort.
 */
static int read_payload(struct claim_ctx *cx, struct store_outbound_row *row, char **payload)
{
    struct engine *e = cx->e;
    char err[160];
    size_t len = 0;
    switch (store_outbound_payload(e->st, row->rowid, ENVELOPE_MAX_JSON, payload, &len)) {
    case STORE_OK:
        row->payload = *payload;
        row->payload_len = len;
        return 1;
    case STORE_REFUSED:
        snprintf(err, sizeof err, "payload is %zu bytes; one datagram carries at most %d", len,
                 ENVELOPE_MAX_JSON);
        fail_row(cx, row, row->retry_count, err);
        return 0;
    case STORE_GONE:
        fail_row(cx, row, row->retry_count, "payload is not text");
        return 0;
    default:
        (void)judge(e, STORE_BUSY, "read a payload");
        cx->abort = 1;
        return -1;
    }
}

/* Validates one claimed row, moves it to 'sending' and seals it. */
static void claim_row(struct claim_ctx *cx, struct store_outbound_row *row)
{
    struct engine *e = cx->e;
    char err[256], *payload = NULL;
    struct net_addr dst, to;
    if (poisoned(e, row->rowid) == P_FAIL)
        return;
    if (row->dst_port < 1 || row->dst_port > 65535) {
        snprintf(err, sizeof err, "dst_port '%.32s' is not a port number (1-65535)",
                 row->dst_port_text);
        fail_row(cx, row, row->retry_count, err);
        return;
    }
    if (net_addr_parse(row->dst_addr, (unsigned)row->dst_port, &dst) != 0) {
        snprintf(err, sizeof err, "dst_addr '%.64s' is not an IPv4 or IPv6 address", row->dst_addr);
        fail_row(cx, row, row->retry_count, err);
        return;
    }
    int sock = sock_for(e, &dst, &to, err, sizeof err);
    if (sock < 0) {
        fail_row(cx, row, row->retry_count, err);
        return;
    }
    int64_t deadline = answer_deadline_ms(e);
    if (row->age_ms >= deadline && flow_silent_ms(e->flows, &dst, e->now) >= deadline) {
        fail_row(cx, row, row->retry_count, "peer not answering; not sent");
        return;
    }
    if (!flow_admit(e->flows, &dst, 0)) {
        flow_note_blocked(e, row, &dst); /* stays pending until the window opens */
        return;
    }
    struct message_out m;
    int ok = read_payload(cx, row, &payload);
    if (ok > 0 && poisoned(e, row->rowid) == P_UPDATE) {
        fail_row(cx, row, row->retry_count, "the database refused to mark it sending");
        ok = 0;
    }
    if (ok > 0 && message_prepare(row->payload, row->payload_len, row->message_id, &m, err,
                                  sizeof err) != 0) {
        fail_row(cx, row, row->retry_count, err);
        ok = 0;
    }
    free(payload); /* message_prepare made its own copy */
    row->payload = NULL;
    if (ok <= 0) {
        flow_release(e, &dst, 0);
        return;
    }
    enum store_rc rc = store_outbound_sending(
        e->st, row->rowid, m.id, m.payload_changed ? m.payload : NULL, m.payload_len, real_ms());
    struct outmsg *om = NULL;
    if (rc == STORE_DUP && !store_tx_aborted(e->st)) {
        snprintf(err, sizeof err, "message_id %s is already used by another outbound row", m.id);
        fail_row(cx, row, row->retry_count, err);
    } else {
        int r = judge(e, rc, "claim a pending row");
        if (r == 0) {
            snprintf(err, sizeof err, "the database refused to mark it sending: %s",
                     store_errmsg(e->st));
            poison_row(e, row->rowid, P_UPDATE);
            if (!e->redo)
                fail_row(cx, row, row->retry_count, err);
        }
        om = r > 0 ? queue_sealed(e, sock, &to, m.payload, m.payload_len) : NULL;
        if (r < 0 || e->redo || (r > 0 && om == NULL))
            cx->abort = 1; /* no room after all: roll back, try next turn */
    }
    if (om != NULL) {
        cx->progress++;
        om->kind = OUT_NEW;
        om->rowid = row->rowid;
        om->retries = row->retry_count;
        om->dst = dst;
        memcpy(om->id, m.id, sizeof om->id);
    } else {
        flow_release(e, &dst, 0);
    }
    message_out_clear(&m);
}

static int claim(struct engine *e)
{
    size_t room = retx_room(e->inflight);
    int limit = room < CLAIM_BATCH ? (int)room : CLAIM_BATCH;
    int sendq_room = SENDQ_MAX - ITEMS_MAX - e->nout;
    if (limit > sendq_room)
        limit = sendq_room;
    if (limit <= 0 || arena_room(e) <= ACK_RESERVE)
        return 0;
    struct store_rows *rows = &e->rows;
    struct claim_ctx cx = {.e = e};
    int n = store_outbound_pending(e->st, limit, rows) == STORE_OK ? rows->n : -1;
    cx.skipped = n >= 0 && rows->full; /* no room in the row buffer: next turn */
    size_t budget = arena_room(e) - ACK_RESERVE, used = 0;
    for (int i = 0; i < n && !cx.abort; i++) {
        if (used > budget || budget - used < ENVELOPE_MAX_DATAGRAM) {
            cx.skipped = 1; /* no room left in this turn's arena: next turn */
        } else {
            size_t before = e->arena_used;
            claim_row(&cx, &rows->out[i]);
            used += e->arena_used - before;
        }
    }
    if (n < 0)
        return judge(e, STORE_BUSY, "read pending rows");
    if (cx.abort)
        return -1;
    /* More may wait; but rows all held back by full windows wait for an ACK instead. */
    e->want_claim = cx.skipped || (n == limit && cx.progress > 0);
    return 0;
}

/* Resends (or gives up on) one due row; sets the entry's fate in due_action[idx]. */
static void resend_row(struct engine *e, int idx, const struct store_outbound_row *row, int *abort)
{
    struct retx_entry *ent = e->due[idx];
    struct claim_ctx cx = {.e = e};
    char err[256];
    struct net_addr to;
    struct message_out m;
    const char *why = NULL;
    if (ent->retries >= (int64_t)e->cfg->max_retries)
        why = "max retries exceeded (no ACK)";
    else if (poisoned(e, row->rowid) != 0)
        why = "the database refused to record its retransmission";
    int sock = why != NULL ? -1 : sock_for(e, &ent->dst, &to, err, sizeof err);
    if (why == NULL && sock >= 0 && row->payload == NULL) /* too large: the store did not read it */
        snprintf(err, sizeof err, "payload is %zu bytes; one datagram carries at most %d",
                 row->payload_len, ENVELOPE_MAX_JSON);
    if (why == NULL && (sock < 0 || row->payload == NULL ||
                        message_prepare(row->payload, row->payload_len, row->message_id, &m, err,
                                        sizeof err) != 0))
        why = err;
    if (why != NULL) {
        fail_row(&cx, row, ent->retries, why);
        *abort = cx.abort;
        return;
    }
    e->due_action[idx] = DUE_RESEND;
    struct store_sent sent = {row->rowid, ent->retries + 1, NULL};
    int r =
        judge(e, store_outbound_sent(e->st, &sent, 1, real_ms(), NULL), "record a retransmission");
    struct outmsg *om = r > 0 ? queue_sealed(e, sock, &to, m.payload, m.payload_len) : NULL;
    message_out_clear(&m);
    if (r == 0) {
        poison_row(e, row->rowid, P_UPDATE);
        e->due_action[idx] = DUE_DROP;
        if (!e->redo) {
            fail_row(&cx, row, ent->retries, "the database refused to record its retransmission");
            *abort = cx.abort;
        }
    }
    if (r < 0 || e->redo)
        *abort = 1;
    if (om != NULL) {
        om->kind = OUT_RETX;
        om->rowid = row->rowid;
        om->retries = ent->retries + 1;
        om->ent = ent;
        memcpy(om->id, ent->id, sizeof om->id);
    }
}

/* Takes the due entries out of the timer order (rescheduled a full interval on) and resends them.
 */
static int retransmit_due(struct engine *e, int64_t now)
{
    struct retx_entry *ent;
    int64_t interval = (int64_t)e->cfg->retry_interval * 1000;
    e->ndue = 0;
    while (e->ndue < CLAIM_BATCH && (ent = retx_due(e->inflight, now)) != NULL) {
        if (arena_room(e) < ENVELOPE_MAX_DATAGRAM + ACK_RESERVE || e->nout >= SENDQ_MAX - ITEMS_MAX)
            break;
        retx_reschedule(e->inflight, ent, now + interval);
        flow_lost(e->flows, &ent->dst, now, interval);
        int idx = e->ndue++;
        e->due[idx] = ent;
        e->due_action[idx] = DUE_DROP; /* unless the row is found and resent */
        if (poisoned(e, ent->rowid) == P_FAIL)
            continue; /* the database takes no change to it: forget it */
        int abort = 0;
        int n = store_outbound_get_sent(e->st, ent->rowid, ENVELOPE_MAX_JSON, &e->rows) == STORE_OK
                    ? e->rows.n
                    : -1;
        if (n > 0)
            resend_row(e, idx, &e->rows.out[0], &abort);
        if (n < 0)
            return judge(e, STORE_BUSY, "read a row to retransmit");
        if (abort)
            return -1;
    }
    return 0;
}

/* After COMMIT: entries whose rows failed, vanished or were acknowledged leave the table. */
static void settle_due(struct engine *e)
{
    for (int i = 0; i < e->ndue; i++)
        if (e->due_action[i] == DUE_DROP) {
            flow_release(e, &e->due[i]->dst, 0);
            retx_remove(e->inflight, e->due[i]);
        }
    e->ndue = 0;
}

/* After a failed transaction: the due entries are due again at `at`. */
static void unsettle_due(struct engine *e, int64_t at)
{
    for (int i = 0; i < e->ndue; i++)
        retx_reschedule(e->inflight, e->due[i], at);
    e->ndue = 0;
}

struct load_ctx {
    struct engine *e;
    int64_t now;
    struct {
        int64_t rowid, retries;
    } bad[LOAD_BATCH]; /* rows whose id or address cannot be used */
    int nbad;
};

static void on_loaded_sent(void *ctx, const struct store_outbound_row *row)
{
    struct load_ctx *lx = ctx;
    struct engine *e = lx->e;
    struct net_addr dst;
    e->load_after = row->rowid;
    int64_t wait = (int64_t)e->cfg->retry_interval * 1000 - row->age_ms;
    if (wait < 0)
        wait = 0;
    if (row->message_id == NULL || !message_id_valid(row->message_id) ||
        net_addr_parse(row->dst_addr, (unsigned)(row->dst_port > 0 ? row->dst_port : 0), &dst) !=
            0) {
        if (lx->nbad < LOAD_BATCH) {
            lx->bad[lx->nbad].rowid = row->rowid;
            lx->bad[lx->nbad++].retries = row->retry_count;
        }
        return;
    }
    if (retx_add(e->inflight, row->rowid, row->message_id, &dst, row->retry_count,
                 lx->now + wait) != NULL)
        (void)flow_admit(e->flows, &dst, 1);
}

/*
 * Rows in 'sent' that are not in flight join the in-flight table as room
 * allows: at start (crash recovery), and every SWEEP_MS for rows another
 * program wrote as 'sent'. A row whose id or address cannot be used fails.
 */
static int load_sent(struct engine *e, int64_t now)
{
    size_t room = retx_room(e->inflight);
    int limit = room < LOAD_BATCH ? (int)room : LOAD_BATCH;
    if (limit == 0)
        return 0;
    struct load_ctx *lx = e->load;
    lx->nbad = 0;
    lx->e = e;
    lx->now = now;
    int n = store_outbound_load_sent(e->st, e->load_after, limit, real_ms(), &e->rows) == STORE_OK
                ? e->rows.n
                : -1;
    for (int i = 0; i < n; i++)
        on_loaded_sent(lx, &e->rows.out[i]);
    struct claim_ctx cx = {.e = e};
    for (int i = 0; i < lx->nbad && n >= 0 && !cx.abort; i++) {
        struct store_outbound_row r = {
            .rowid = lx->bad[i].rowid, .dst_addr = "?", .dst_port_text = "?"};
        fail_row(&cx, &r, lx->bad[i].retries,
                 "a 'sent' row without a usable message_id, dst_addr or dst_port");
    }
    if (n < 0)
        return judge(e, STORE_BUSY, "read rows left sent");
    if (cx.abort)
        return -1;
    if (n < limit)
        e->loading_sent = 0;
    return 0;
}

/* ---- one turn ---- */

/*
 * One transaction: everything owed and due (full), or only this turn's
 * messages (after a turn ran out of time: they are stored and ACKed even
 * while a slow trigger holds up the rest).
 */
static int write_turn(struct engine *e, int64_t now, int full)
{
    e->turn_failed = 0;
    sync_exclusions(e);
    if (judge(e, store_begin(e->st), "begin a transaction") <= 0)
        return -1;
    if ((full && apply_jobs(e) != 0) || store_items(e) != 0)
        goto abort;
    if (full && e->loading_sent && load_sent(e, now) != 0)
        goto abort;
    if (full && retransmit_due(e, now) != 0)
        goto abort;
    if (full && e->want_claim && claim(e) != 0)
        goto abort;
    if (full && e->nblocked > 0 && expire_blocked(e) != 0)
        goto abort;
    enum store_rc rc = store_commit(e->st);
    if (rc == STORE_GONE) {
        e->fatal = 1; /* nothing of this turn may be ACKed: it would be lost with the file */
        return -1;    /* (the commit has rolled back) */
    }
    if (judge(e, rc, "commit") <= 0)
        return -1;
    return 0;
abort:
    store_rollback(e->st);
    return -1;
}

static void ack_retry_add(struct engine *e, const struct outmsg *m, const struct net_addr *to,
                          int64_t now)
{
    if (m->attempts + 1 > (int)e->cfg->max_retries) {
        job_add(e, J_ACK_FAILED, m->id, 0, 0, NULL);
        return;
    }
    if (e->nacks >= ACK_RETRY_MAX)
        return; /* left 'received': ACKed again at the next start */
    struct ack_retry *a = &e->acks[e->nacks++];
    memcpy(a->id, m->id, sizeof a->id);
    a->sock = m->sock;
    a->attempts = m->attempts + 1;
    a->to = *to;
    a->due = now + ACK_RETRY_MS;
}

static int send_error_is_transient(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ENOMEM || err == EINTR;
}

/* What happened to one sealed datagram once sendmmsg said; logged with its row, id and peer. */
static void send_result(struct engine *e, int i, int64_t now)
{
    struct outmsg *m = &e->outm[i];
    int err = e->out[i].err;
    int64_t interval = (int64_t)e->cfg->retry_interval * 1000;
    char why[160], host[NET_HOST_MAX];
    unsigned port;
    net_addr_format(m->kind == OUT_RETX ? &m->ent->dst : &e->out[i].addr, host, &port);
    if (err != 0)
        snprintf(why, sizeof why, "send failed: %s", strerror(err));
    int failed = 0;
    switch (m->kind) {
    case OUT_ACK:
        if (err == 0) {
            e->c.acks_sent++;
            job_add(e, J_ACK_SENT, m->id, 0, 0, NULL);
            log_info("ACK sent for message %s to %s port %u", m->id, host, port);
        } else {
            ack_retry_add(e, m, &e->out[i].addr, now);
            log_warn_limited(&e->lim_send, mono_ms(), "ACK for message %s to %s port %u: %s", m->id,
                             host, port, why);
        }
        return;
    case OUT_NEW:
        if (err == 0 || send_error_is_transient(err)) {
            int64_t retries = m->retries + (err != 0);
            if (retx_add(e->inflight, m->rowid, m->id, &m->dst, retries,
                         now + (err != 0 ? EAGAIN_RETRY_MS : interval)) == NULL)
                flow_release(e, &m->dst, 0); /* cannot happen: room was checked */
            job_add(e, J_SENT, NULL, m->rowid, retries, err != 0 ? why : NULL);
            e->c.sent += err == 0;
            if (err == 0) {
                flow_note_send(e->flows, &m->dst, now);
                log_info("sent outbound row %lld (message_id %s) to %s port %u",
                         (long long)m->rowid, m->id, host, port);
            }
        } else {
            job_add(e, J_FAILED, NULL, m->rowid, m->retries, why);
            flow_release(e, &m->dst, 0);
            failed = 1;
        }
        break;
    default:
        if (err == 0) {
            e->c.retransmits++;
            m->ent->retries = m->retries;
            flow_note_send(e->flows, &m->ent->dst, now);
            log_info("retransmitted outbound row %lld (message_id %s, retry %lld) to %s port %u",
                     (long long)m->rowid, m->id, (long long)m->retries, host, port);
        } else if (send_error_is_transient(err)) {
            m->ent->retries = m->retries;
            retx_reschedule(e->inflight, m->ent, now + EAGAIN_RETRY_MS);
        } else {
            job_add(e, J_FAILED, NULL, m->rowid, m->retries, why);
            flow_release(e, &m->ent->dst, 0);
            retx_remove(e->inflight, m->ent);
            failed = 1;
        }
        break;
    }
    if (failed) {
        e->c.send_failed++;
        log_warn_limited(&e->lim_rows, mono_ms(),
                         "outbound row %lld (message_id %s) to %s port %u: send_failed: %s",
                         (long long)m->rowid, m->id, host, port, why);
    } else if (err != 0) {
        log_warn_limited(&e->lim_send, mono_ms(),
                         "outbound row %lld (message_id %s) to %s port %u: %s; will retry",
                         (long long)m->rowid, m->id, host, port, why);
    }
}

static void flush_sends(struct engine *e, int64_t now)
{
    struct net_dgram *batch = e->batch; /* SENDQ_MAX each: preallocated, not 160 KB of stack */
    int *index = e->batch_index;
    for (int s = 0; s < SOCK_COUNT; s++) {
        int n = 0;
        for (int i = 0; i < e->nout; i++)
            if (e->outm[i].sock == s) {
                batch[n] = e->out[i];
                index[n++] = i;
            }
        if (n == 0)
            continue;
        send_batch(e->socks[s].fd, batch, n);
        for (int k = 0; k < n; k++)
            e->out[index[k]].err = batch[k].err;
    }
    for (int i = 0; i < e->nout; i++)
        send_result(e, i, now);
    e->nout = 0;
    e->arena_used = 0;
}

static void on_unacked(void *ctx, const struct store_inbound_row *row)
{
    struct engine *e = ctx;
    struct net_addr from, to;
    char err[160];
    if (row->rowid > e->recover_upto)
        e->recover_past = 1; /* this run's own rows: ACKed as they were stored */
    if (e->recover_full || e->recover_past)
        return; /* the rest waits for the next turn */
    if (e->nout >= SENDQ_MAX || arena_room(e) < ENVELOPE_OVERHEAD + MESSAGE_ACK_MAX) {
        e->recover_full = 1;
        return;
    }
    e->recover_after = row->rowid;
    if (net_addr_parse(row->src_addr, (unsigned)(row->src_port > 0 ? row->src_port : 0), &from) !=
            0 ||
        !message_id_valid(row->message_id)) {
        job_add(e, J_ACK_FAILED, row->message_id, 0, 0, NULL);
        return;
    }
    int sock = sock_for(e, &from, &to, err, sizeof err);
    if (sock < 0 || queue_ack(e, sock, &to, row->message_id, 0) == NULL)
        job_add(e, J_ACK_FAILED, row->message_id, 0, 0, NULL);
}

/* Crash recovery: rows stored but never ACKed are ACKed now, a batch per turn. */
static void recover_inbound(struct engine *e)
{
    e->recover_full = 0;
    int n = store_inbound_unacked(e->st, e->recover_after, LOAD_BATCH, &e->rows) == STORE_OK
                ? e->rows.n
                : -1;
    for (int i = 0; i < n; i++)
        on_unacked(e, &e->rows.in[i]);
    if (n >= 0 && (n < LOAD_BATCH || e->recover_past) && !e->recover_full)
        e->recovering_in = 0;
}

static void queue_due_ack_retries(struct engine *e, int64_t now)
{
    int keep = 0;
    for (int i = 0; i < e->nacks; i++) {
        struct ack_retry *a = &e->acks[i];
        if (a->due <= now && e->nout < SENDQ_MAX) {
            struct outmsg *m = queue_ack(e, a->sock, &a->to, a->id, a->attempts);
            if (m != NULL)
                continue;
        }
        e->acks[keep++] = *a;
    }
    e->nacks = keep;
}

/* After COMMIT: ACK what was stored, send what was sealed. */
static void after_commit(struct engine *e, int full)
{
    jobs_forget(e, e->jobs_applied);
    e->jobs_applied = 0;
    e->c.send_failed += e->turn_failed;
    settle_due(e);
    if (full)
        e->busy_until = 0;
    for (int i = 0; i < e->nitems; i++) {
        struct rx_item *it = &e->items[i];
        if (!it->stored) {
            e->c.drop_unstored++;
            continue;
        }
        if (it->duplicate)
            e->c.duplicates++;
        else
            e->c.stored++;
        if (log_get_level() >= LOG_LEVEL_INFO) {
            char host[NET_HOST_MAX];
            unsigned port;
            net_addr_format(&it->from, host, &port);
            log_info("%s message %s from %s port %u",
                     it->duplicate ? "again (a duplicate):" : "stored", it->msg.id, host, port);
        }
        (void)queue_ack(e, it->sock, &it->from, it->msg.id, 0);
    }
}

/* After a failed transaction: nothing of it happened; what it claimed is pending again. */
static void undo_turn(struct engine *e, int64_t retry_at)
{
    e->jobs_applied = 0;
    unsettle_due(e, retry_at);
    for (int i = 0; i < e->nout; i++)
        if (e->outm[i].kind == OUT_NEW)
            flow_release(e, &e->outm[i].dst, 0); /* rolled back: still pending */
    e->nout = 0;
    e->arena_used = 0;
    e->want_claim = 1;
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
        e->redo = 0;
        if (write_turn(e, now, full) == 0)
            return 0;
        if (!e->redo)
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
    if (timed_out && e->nitems > 0 && !e->fatal && write_turn_redoing(e, now, 0) == 0) {
        after_commit(e, 0);
        return;
    }
    e->c.drop_unstored += (uint64_t)e->nitems;
}

static int has_db_work(const struct engine *e, int64_t now)
{
    return e->njobs > 0 || e->nitems > 0 || retx_next_deadline(e->inflight) <= now ||
           (e->want_claim && retx_room(e->inflight) > 0) ||
           (e->loading_sent && retx_room(e->inflight) > 0);
}

static void tick(struct engine *e)
{
    int64_t now = mono_ms();
    e->now = now;
    e->nitems = 0;
    e->item_used = 0;
    e->nout = 0;
    e->arena_used = 0;
    receive(e);
    if (now >= e->next_sweep) {
        int64_t every = (int64_t)e->cfg->retry_interval * 1000;
        e->next_sweep = now + (every < SWEEP_MIN_MS   ? SWEEP_MIN_MS
                               : every > SWEEP_MAX_MS ? SWEEP_MAX_MS
                                                      : every);
        e->loading_sent = 1; /* rows another program wrote as 'sent' are picked up */
        e->load_after = 0;
    }
    if (has_db_work(e, now) && (now >= e->busy_until || e->nitems > 0))
        run_turn(e, now);
    if (e->recovering_in && e->njobs < JOURNAL_MAX / 2)
        recover_inbound(e);
    queue_due_ack_retries(e, now);
    flush_sends(e, now);
    e->nitems = 0;
}

/* ---- signals, reload ---- */

static void reload(struct engine *e)
{
    struct config next;
    char err[512];
    int loose = 0;
    log_reopen(); /* rotation works even when the new configuration is refused */
    if (settings_load(e->o.flags, e->o.env_path, e->o.cwd, CONFIG_AT_RELOAD, 1, &next, &loose, err,
                      sizeof err) != 0) {
        log_warn("reload refused: %s; the running configuration is kept", err);
        return;
    }
    struct envelope_key *key = envelope_key_from_hex(next.secret);
    if (key == NULL) {
        log_warn("reload refused: cannot load the new secret; the running configuration is kept");
        config_clear(&next);
        return;
    }
    char changed[256];
    if (config_restart_only_changes(e->cfg, &next, changed, sizeof changed) > 0)
        log_warn("reload: %s changed; that takes effect only after a restart", changed);
    envelope_key_free(e->key);
    e->key = key;
    e->cfg->window = next.window;
    e->cfg->rate_limit = next.rate_limit;
    e->cfg->rate_burst = next.rate_burst;
    e->cfg->max_retries = next.max_retries;
    e->cfg->retry_interval = next.retry_interval;
    config_clear(&next);
    log_warn("configuration reloaded (window %us, max retries %u, retry interval %us, "
             "rate limit %u/%u)",
             e->cfg->window, e->cfg->max_retries, e->cfg->retry_interval, e->cfg->rate_limit,
             e->cfg->rate_burst);
}

/* One line of every counter, for USR1 and `securedgram status`. */
static void format_counters(const struct engine *e, char *out, size_t len)
{
    const struct engine_counters *c = &e->c;
    char drops[512];
    size_t used = 0;
    for (int v = JUDGE_DROP_SHORT; v < JUDGE_VERDICTS; v++)
        used +=
            (size_t)snprintf(drops + used, sizeof drops - used, "%s=%llu ",
                             judge_name((enum judge_verdict)v), (unsigned long long)c->verdicts[v]);
    snprintf(out, len,
             "rx=%llu stored=%llu duplicates=%llu acks_sent=%llu acks_received=%llu "
             "sent=%llu retransmits=%llu send_failed=%llu in_flight=%zu | dropped: %soversize=%llu "
             "rate_limited=%llu unstored=%llu refused=%llu own_id=%llu | ack_unmatched=%llu "
             "ack_wrong_source=%llu store_errors=%llu store_refused=%llu store_timeouts=%llu "
             "replay_cache=%zu",
             (unsigned long long)c->rx, (unsigned long long)c->stored,
             (unsigned long long)c->duplicates, (unsigned long long)c->acks_sent,
             (unsigned long long)c->verdicts[JUDGE_ACK], (unsigned long long)c->sent,
             (unsigned long long)c->retransmits, (unsigned long long)c->send_failed,
             retx_count(e->inflight), drops, (unsigned long long)c->drop_oversize,
             (unsigned long long)c->drop_rate_limited, (unsigned long long)c->drop_unstored,
             (unsigned long long)c->drop_refused, (unsigned long long)c->drop_own_id,
             (unsigned long long)c->acks_unmatched, (unsigned long long)c->acks_wrong_source,
             (unsigned long long)c->store_errors, (unsigned long long)c->store_refused,
             (unsigned long long)c->store_timeouts, replay_count(e->replay));
}

/*
 * Leaves the counters in the stats file for `securedgram status`, and logs
 * them if loud (USR1, shutdown). status sends USR2 (not loud): a monitor that
 * runs it every minute must not fill the log.
 */
static void log_counters(const struct engine *e, int loud)
{
    char line[1200];
    format_counters(e, line, sizeof line);
    if (loud)
        log_warn("counters: %s", line);
    if (e->o.stats_path == NULL)
        return;
    char text[1300];
    snprintf(text, sizeof text, "counters: %s\n", line);
    /* O_EXCL|O_NOFOLLOW temp file + rename: a link planted there is never followed */
    if (statsfile_write(e->o.stats_path, text) != 0 && loud)
        log_info("cannot write %s: %s", e->o.stats_path, strerror(errno));
}

static int signals_open(char *err, size_t errlen, int *rfd)
{
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    *rfd = p[0];
    sig_wfd = p[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* ---- life cycle ---- */

static int sig_rfd = -1;

struct engine *engine_new(const struct engine_opts *o, char *err, size_t errlen)
{
    struct engine *e = calloc(1, sizeof *e);
    if (e == NULL) {
        close(o->fd);
        store_close(o->store);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->o = *o;
    io = o->io;
    e->cfg = o->cfg;
    e->st = o->store;
    for (int s = 0; s < SOCK_COUNT; s++)
        e->socks[s].fd = -1;
    e->socks[SOCK_MAIN].fd = o->fd;
    e->socks[SOCK_MAIN].af = net_family(o->fd);
    struct net_addr any;
    if (e->socks[SOCK_MAIN].af == AF_INET6 && net_addr_parse("::", 1, &any) == 0) {
        struct sockaddr_in6 me;
        socklen_t len = sizeof me;
        e->socks[SOCK_MAIN].dual = getsockname(o->fd, (struct sockaddr *)&me, &len) == 0 &&
                                   memcmp(&me.sin6_addr, &any.u.v6.sin6_addr, 16) == 0;
    }
    e->key = envelope_key_from_hex(e->cfg->secret);
    if (e->key != NULL) {
        /* The key is in guarded memory now; the hex text need not stay in the heap. */
        explicit_bzero(e->cfg->secret, strlen(e->cfg->secret));
        free(e->cfg->secret);
        e->cfg->secret = NULL;
    }
    e->inflight = retx_new(INFLIGHT_MAX);
    e->rxbuf = malloc((size_t)RX_SLOTS * (ENVELOPE_MAX_DATAGRAM + 1));
    e->items = calloc(ITEMS_MAX, sizeof *e->items);
    e->item_arena = malloc(ITEM_ARENA_BYTES);
    e->flows = flow_new(PEERS_MAX, INFLIGHT_MAX);
    e->replay = replay_new(REPLAY_MAX);
    e->limiter = ratelimit_new(PEERS_MAX);
    e->jobs = calloc(JOURNAL_MAX, sizeof *e->jobs);
    e->out = calloc(SENDQ_MAX, sizeof *e->out);
    e->batch = calloc(SENDQ_MAX, sizeof *e->batch);
    e->batch_index = calloc(SENDQ_MAX, sizeof *e->batch_index);
    e->outm = calloc(SENDQ_MAX, sizeof *e->outm);
    e->arena = malloc(ARENA_BYTES);
    e->acks = calloc(ACK_RETRY_MAX, sizeof *e->acks);
    e->blocked = calloc(PEERS_MAX, sizeof *e->blocked);
    e->exclude = calloc(PEERS_MAX, sizeof *e->exclude);
    /* rows of a claim, a load or a recovery, and one row to retransmit with its payload */
    int rows_failed = store_rows_init(&e->rows, CLAIM_BATCH,
                                      CLAIM_BATCH * STORE_ROW_TEXT + ENVELOPE_MAX_JSON + 1);
    e->load = calloc(1, sizeof *e->load);
    if (e->key == NULL || e->inflight == NULL || e->rxbuf == NULL || e->items == NULL ||
        e->item_arena == NULL || e->flows == NULL || e->replay == NULL || e->limiter == NULL ||
        e->jobs == NULL || e->out == NULL || e->outm == NULL || e->arena == NULL ||
        e->acks == NULL || e->blocked == NULL || e->exclude == NULL || rows_failed ||
        e->load == NULL || e->batch == NULL || e->batch_index == NULL) {
        snprintf(err, errlen,
                 e->key == NULL ? "cannot load the secret into protected memory" : "out of memory");
        goto fail;
    }
    for (int i = 0; i < RX_SLOTS; i++) {
        e->rx[i].buf = e->rxbuf + (size_t)i * (ENVELOPE_MAX_DATAGRAM + 1);
        e->rx[i].cap = ENVELOPE_MAX_DATAGRAM + 1;
    }
    if (signals_open(err, errlen, &sig_rfd) != 0)
        goto fail;
    int moved = 0;
    if (store_recover_sending(e->st, real_ms(), &moved) != STORE_OK) {
        snprintf(err, errlen, "crash recovery failed: %s", store_errmsg(e->st));
        goto fail;
    }
    if (moved > 0)
        log_warn("recovery: %d outbound rows left 'sending' by an earlier run are pending again",
                 moved);
    if (store_watch_start(e->st, WATCH_CHECK_MS, mono_us()) != STORE_OK) {
        snprintf(err, errlen, "cannot watch the database: %s", store_errmsg(e->st));
        goto fail;
    }
    store_set_budget(e->st, TURN_BUDGET_MS);
    if (store_max_id(e->st, STORE_INBOUND, &e->recover_upto, NULL, 0) != STORE_OK)
        e->recover_upto = INT64_MAX; /* unreadable: recover them all */
    e->want_claim = e->loading_sent = e->recovering_in = 1;
    e->next_sweep = mono_ms() + SWEEP_MIN_MS;
    return e;
fail:
    engine_free(e);
    return NULL;
}

/* When the loop must next wake for its own reasons (ms, CLOCK_MONOTONIC). */
static int64_t next_wake_ms(const struct engine *e, int64_t now)
{
    int64_t wake = INT64_MAX;
    if (e->recovering_in)
        return now;
    if (has_db_work(e, now)) {
        int64_t t = e->njobs > 0 || e->want_claim || e->loading_sent
                        ? now
                        : retx_next_deadline(e->inflight);
        wake = t < e->busy_until ? e->busy_until : t;
    } else {
        wake = retx_next_deadline(e->inflight);
    }
    const struct log_limiter *lims[] = {&e->lim_drop, &e->lim_store, &e->lim_send, &e->lim_rows};
    if (e->next_sweep < wake)
        wake = e->next_sweep;
    for (int i = 0; i < 4; i++)
        if (lims[i]->suppressed > 0 && lims[i]->window_start_ms + 1000 < wake)
            wake = lims[i]->window_start_ms + 1000;
    for (int i = 0; i < e->nacks; i++)
        if (e->acks[i].due < wake)
            wake = e->acks[i].due;
    return wake;
}

/* Waits for a datagram, a signal, a database event or timeout_us; ppoll for sub-ms waits. */
static int wait_events(struct engine *e, struct pollfd *pfd, int64_t timeout_us)
{
    int n = 0;
    pfd[n++] = (struct pollfd){.fd = sig_rfd, .events = POLLIN};
    pfd[n++] = (struct pollfd){.fd = store_watch_fd(e->st), .events = POLLIN};
    for (int s = 0; s < SOCK_COUNT; s++)
        pfd[n++] = (struct pollfd){.fd = e->socks[s].fd, .events = POLLIN};
    if (timeout_us < 0)
        timeout_us = 0;
    if (timeout_us > (int64_t)INT_MAX * 1000)
        timeout_us = (int64_t)INT_MAX * 1000;
    struct timespec ts = {(time_t)(timeout_us / 1000000), (long)(timeout_us % 1000000) * 1000};
    if (ppoll(pfd, (nfds_t)n, &ts, NULL) < 0 && errno != EINTR) {
        log_warn("poll failed: %s", strerror(errno));
        return -1;
    }
    char sink[64];
    while (read(sig_rfd, sink, sizeof sink) > 0)
        ;
    return 0;
}

int engine_turn(struct engine *e, int db_event)
{
    int64_t now_us = mono_us();
    if (db_event || now_us >= store_poll_due_us(e->st)) {
        int changed = 0;
        if (store_poll(e->st, db_event, now_us, &changed) == STORE_GONE)
            e->fatal = 1;
        if (changed)
            e->want_claim = 1; /* another process committed: maybe new pending rows */
    }
    if (!e->fatal)
        tick(e);
    if (e->fatal) {
        log_warn("the database %s or its -wal file was removed or replaced while running; "
                 "stopping so that nothing more is acknowledged into a file no one will read",
                 e->cfg->db);
        return -1;
    }
    int64_t now = now_us / 1000;
    log_limiter_flush(&e->lim_drop, now, "warnings about dropped datagrams");
    log_limiter_flush(&e->lim_store, now, "database warnings");
    log_limiter_flush(&e->lim_send, now, "send warnings");
    log_limiter_flush(&e->lim_rows, now, "warnings about rows");
    return 0;
}

int engine_run(struct engine *e)
{
    if (store_watch_fd(e->st) < 0)
        log_info("no inotify for %s: checking for new rows every %d ms", e->cfg->db,
                 WATCH_CHECK_MS);
    while (!got_term) {
        int64_t now_us = mono_us();
        int64_t wake_ms = next_wake_ms(e, now_us / 1000);
        int64_t timeout_us = store_poll_due_us(e->st) - now_us;
        if (wake_ms != INT64_MAX && wake_ms * 1000 - now_us < timeout_us)
            timeout_us = wake_ms * 1000 - now_us;
        struct pollfd pfd[SOCK_COUNT + 2];
        if (wait_events(e, pfd, timeout_us) != 0)
            return -1;
        if (got_term)
            break;
        if (got_hup) {
            got_hup = 0;
            reload(e);
        }
        if (got_usr1 || got_usr2) {
            int loud = got_usr1;
            got_usr1 = got_usr2 = 0;
            log_counters(e, loud);
        }
        if (engine_turn(e, (pfd[1].revents & POLLIN) != 0) != 0)
            return -1;
    }
    /* Shutdown: record what is owed (rows just sent become 'sent'), then stop. */
    e->want_claim = e->loading_sent = 0;
    e->nitems = 0;
    if (e->njobs > 0 && write_turn(e, mono_ms(), 1) == 0)
        jobs_forget(e, e->jobs_applied);
    log_warn("shutting down");
    log_counters(e, 1);
    return 0;
}

void engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    for (int s = 0; s < SOCK_COUNT; s++)
        if (e->socks[s].fd >= 0)
            close(e->socks[s].fd);
    store_close(e->st);
    envelope_key_free(e->key);
    retx_free(e->inflight);
    if (e->jobs != NULL)
        jobs_forget(e, e->njobs);
    free(e->jobs);
    free(e->rxbuf);
    free(e->items);
    free(e->item_arena);
    flow_free(e->flows);
    replay_free(e->replay);
    ratelimit_free(e->limiter);
    free(e->out);
    free(e->outm);
    free(e->batch);
    free(e->batch_index);
    free(e->arena);
    free(e->acks);
    free(e->blocked);
    free(e->exclude);
    store_rows_free(&e->rows);
    free(e->load);
    if (sig_rfd >= 0)
        close(sig_rfd);
    if (sig_wfd >= 0)
        close(sig_wfd);
    sig_rfd = sig_wfd = -1;
    io = NULL;
    free(e);
}

const struct engine_counters *engine_counters(const struct engine *e)
{
    return &e->c;
}
