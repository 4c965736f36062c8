/*
 * The engine's state machine (engine_turn), driven by a sequence of datagrams
 * and database events through test doubles of its clocks and socket
 * (struct engine_io). Each input gets a fresh database in a temp directory, a
 * bound UDP socket that is never read or written (the doubles hand the engine
 * the input's datagrams and record what it sends), and a second, raw SQLite
 * connection that plays the other programs: sg-send inserting rows, sg-clean
 * deleting them, an operator's triggers, a writer holding the lock.
 *
 * Input:
 *   byte 0   configuration: window, max retries, retry interval, rate limit
 *   byte 1   how many rows to write before the engine starts (crash recovery)
 *   then those rows, then up to MAX_OPS operations, each an opcode byte and
 *   its arguments (see run_op): deliver a sealed message or ACK (right or
 *   wrong key, a timestamp at or past the window's edges, from one of a few
 *   peers, the daemon's own address or IPv6), replay an earlier datagram (ours
 *   or one the engine sent, possibly damaged), deliver garbage, move the
 *   clocks (the wall clock also backwards), insert an outbound row (good and
 *   bad addresses, ports, payloads, message_ids, states), take or release the
 *   write lock, add or drop a refusing trigger, clean rows as sg-clean and
 *   sg-recv would, choose per-datagram send errors, fail a receive, run turns.
 * At the end the lock is released and turns run (past any busy back-off)
 * until one provably commits: the raw connection's data_version moves.
 *
 * Invariants (abort() on violation), checked as each datagram is sent and
 * after every turn through the raw connection:
 *   - Everything sent opens under the key, carries a timestamp within the mark
 *     bits of the wall clock, and is JSON a peer accepts.
 *   - ACK only after commit: an ACK is sent only for a message_id that is in
 *     inbound_messages as the raw connection sees it at that moment (or, for a
 *     row sg-clean deleted since, as the retry of an ACK that failed before).
 *   - Silence: ACKs with no send error to an address for an id never outnumber
 *     the authentic, fresh, not-yet-seen messages with that id that came from
 *     that address (plus the rows recovery re-ACKs), and attempts never exceed
 *     that many chains of max_retries + 1. So nothing unauthenticated, stale,
 *     replayed (also after the wall clock steps back) or reflected gets an
 *     answer. This is stronger than "a turn of only garbage sends nothing",
 *     which cannot be asserted: ACK retries and retransmissions fall due in
 *     any turn.
 *   - Every inbound row the engine writes matches such a message: id, sender,
 *     payload and crypto timestamp; a datagram the engine sealed is stored only
 *     if the engine had sent it to itself.
 *   - A message is sent only for an outbound row committed as 'sending' or
 *     'sent' to that destination with that payload, and at most
 *     max_retries + 1 times per row.
 *   - An outbound row becomes 'acknowledged' only after an authentic fresh ACK
 *     for its message_id came from the address and port it names, after the
 *     engine had sent it there (an ACK the engine sealed counts only for a
 *     message it sent to itself).
 *   - States are the SPEC's; acknowledged, send_failed, ack_sent and
 *     ack_failed are terminal; nothing returns to 'pending'; a row is
 *     'sending' or 'sent' only after the engine handed it to the socket.
 *     'sending' may persist between turns (the change to 'sent' is journaled
 *     for the next transaction), so it is not forbidden after a turn; after
 *     the final commit it is.
 *   - Nothing owed is dropped, and a refused row costs only itself: after the
 *     final commit, a row whose ACK was accepted is 'acknowledged' and a
 *     message whose ACK was sent is no longer 'received' (issue 8, items 5 and
 *     6), unless a trigger of the input could refuse that very row (its
 *     payload carries the "t":K tag the trigger matches).
 *   - No crash, leak or unbounded growth (ASan, LSan, -rss_limit_mb).
 *
 * Determinism: the clocks move only as the input says (the monotonic clock
 * starts far ahead of the real one; the store's watch runs on the engine's
 * clock). What is random does not change the outcome: nonces (ours and the
 * engine's), the ids the engine makes for rows without one (the input names
 * them by order of appearance), and the engine's mark key (a datagram of ours
 * bears its mark once in 2^24). The store writes and ages rows by the
 * engine's wall clock (the input's), so the harness writes the rows it
 * inserts by the same clock: created_at is its "now" or long past, sent_at
 * absent or long past.
 */
#include "fuzz_common.h"

#include "conf/config.h"
#include "daemon/engine.h"
#include "wire/envelope.h"
#include "util/log.h"
#include "wire/message.h"
#include "util/net.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WRONG_KEY "5be1b6e3c0d1f2a3948576a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5"
#define MAX_OPS 64
#define MAX_DELIVER 64  /* datagrams per input */
#define MAX_ROWS 160    /* rows of either table per input */
#define MAX_SENDS 8192  /* datagrams the engine sends per input (bounded by the above) */
#define CAPTURE 32      /* the engine's latest datagrams, for replays */
#define POOL 8          /* message_ids the input picks from */
#define LEARNED 8       /* ids the engine made for rows without one */
#define PEER_PORT 40001 /* peers at 40001..40003: nothing listens, nothing is really sent */
#define MONO_START_US (INT64_C(1) << 50)
#define SEC_NS 1000000000ULL
#define BUSY_MS 1 /* the engine's busy timeout: a held lock costs a turn 1 ms, not 1 s */

enum ostate { O_PENDING, O_SENDING, O_SENT, O_ACKED, O_FAILED, O_N };
static const char *const ostate_name[O_N] = {"pending", "sending", "sent", "acknowledged",
                                             "send_failed"};
enum istate { I_RECEIVED, I_ACK_SENT, I_ACK_FAILED, I_N };
static const char *const istate_name[I_N] = {"received", "ack_sent", "ack_failed"};

/* An outbound row the harness wrote, and what the engine did with it. */
struct orow {
    int64_t rowid, insert_seq, first_ok_seq;
    int inserted, last; /* enum ostate */
    int seen, gone;
    int sends, attempted, attempted_ok, last_send_turn;
    int dst_ok;
    struct net_addr dst;
    int tags; /* the "t":K tags in its payload, which the input's triggers match */
    char id[MESSAGE_ID_LEN + 1]; /* as last read; "" if none or not valid */
};

/* An inbound row (written before the start, or by the engine). */
struct irow {
    int64_t rowid;
    int preseed, seen, gone, last, first_turn, tags;
    char id[MESSAGE_ID_LEN + 1];
};

/* An authentic, fresh datagram whose nonce was new, handed to the engine. */
struct dlv {
    int64_t seq;
    int turn;
    struct net_addr from;
    int kind; /* enum message_kind */
    char id[MESSAGE_ID_LEN + 1];
    int engine;           /* sealed by the engine (a replay of what it sent) */
    struct net_addr edst; /* where the engine had sent it */
    int sure;             /* also at or above the replay floor: the engine must take it */
    uint64_t ts;
    char *json; /* messages only */
    size_t json_len;
};

/* A datagram the engine sent. */
struct srec {
    int64_t seq;
    int turn, ack, err;
    char id[MESSAGE_ID_LEN + 1];
    struct net_addr to;
};

/* A datagram: queued for the engine, kept for a replay, or captured from it. */
struct dgram {
    uint8_t *buf;
    size_t len;
    struct net_addr from; /* queued ones */
    int engine;
    struct net_addr edst;
};

struct credit {
    char id[MESSAGE_ID_LEN + 1];
    struct net_addr from;
};

struct deleted {
    char id[MESSAGE_ID_LEN + 1];
    int64_t seq;
};

struct world {
    sqlite3 *raw;
    sqlite3_stmt *q_in_count, *q_out_by_id;
    struct engine *e;
    int64_t mono, seq;
    uint64_t real, nsent;
    uint64_t max_ts, floor; /* the replay floor, as replay.h defines it */
    struct net_addr self;
    int main_fd, turn;
    unsigned self_port, window, max_retries, send_mode;
    int locked, recv_err, ndelivered;
    int trig[4];
    int out_trig_tags, in_trig_tags; /* the tags any outbound / inbound update trigger matched */
    int ever_out_delete;
    int nq, nknown, ncap, cap_next, nnonces, ndlv, nsrec, norow, nirow, npre, ndel, nlearned;
    struct dgram q[MAX_DELIVER];     /* waiting for the engine's next receive */
    struct dgram known[MAX_DELIVER]; /* ours, for replays */
    struct dgram cap[CAPTURE];       /* the engine's, for replays (a ring) */
    struct dlv dlv[MAX_DELIVER];
    struct srec srec[MAX_SENDS];
    struct orow orow[MAX_ROWS];
    struct irow irow[MAX_ROWS];
    struct credit pre[MAX_ROWS]; /* rows recovery may ACK */
    struct deleted del[MAX_ROWS];
    uint8_t nonces[MAX_DELIVER][ENVELOPE_NONCE_BYTES];
    char learned[LEARNED][MESSAGE_ID_LEN + 1];
};

static struct world g;
static char dir[64]; /* this input's temp directory */
static struct envelope_key *key, *wrong_key;
static uint8_t plain[ENVELOPE_MAX_DATAGRAM + 1];

static const char pool[POOL][MESSAGE_ID_LEN + 1] = {
    "c0ffee000000000000000000", "c0ffee000000000000000001", "c0ffee000000000000000002",
    "c0ffee000000000000000003", "c0ffee000000000000000004", "c0ffee000000000000000005",
    "c0ffee000000000000000006", "c0ffee000000000000000007"};

static void remove_dir(const char *path)
{
    if (path[0] == '\0')
        return;
    DIR *d = opendir(path);
    struct dirent *ent;
    char file[4200];
    while (d != NULL && (ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) {
            snprintf(file, sizeof file, "%s/%s", path, ent->d_name);
            unlink(file);
        }
    }
    if (d != NULL)
        closedir(d);
    rmdir(path);
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_engine: turn %d: ", g.turn);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    remove_dir(dir);
    abort();
}

static int tracing;

/* SG_FUZZ_ENGINE_TRACE=1: what the harness does and sees, for reading a reproducer. */
__attribute__((format(printf, 1, 2))) static void trace(const char *fmt, ...)
{
    if (!tracing)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[turn %d] ", g.turn);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void show(const struct net_addr *a, char out[NET_HOST_MAX + 8])
{
    char host[NET_HOST_MAX];
    unsigned port;
    net_addr_format(a, host, &port);
    snprintf(out, NET_HOST_MAX + 8, "%s:%u", host, port);
}

/* ---- the input ---- */

struct input {
    const uint8_t *p;
    size_t n;
};

static int more(const struct input *in)
{
    return in->n > 0;
}

static uint8_t byte(struct input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

/* ---- the doubles ---- */

static int64_t fake_mono(void *ctx)
{
    (void)ctx;
    return g.mono;
}

static uint64_t fake_real(void *ctx)
{
    (void)ctx;
    return g.real;
}

static int fresh(uint64_t ts)
{
    uint64_t w = (uint64_t)g.window * SEC_NS;
    uint64_t lo = g.real > w ? g.real - w : 0;
    uint64_t hi = g.real > UINT64_MAX - w ? UINT64_MAX : g.real + w;
    return ts >= lo && ts <= hi;
}

static int nonce_seen(const uint8_t *nonce)
{
    for (int i = 0; i < g.nnonces; i++)
        if (memcmp(g.nonces[i], nonce, ENVELOPE_NONCE_BYTES) == 0)
            return 1;
    return 0;
}

/*
 * What the engine may make of a datagram handed to it: records it as a
 * delivery if it is authentic, fresh, a valid message or ACK, and its nonce
 * was not accepted before (an upper bound of what the engine accepts). The
 * replay floor (replay.h: the highest timestamp accepted less twice the
 * window) is modelled only to know which deliveries the engine surely took.
 */
static void observe(const struct dgram *d)
{
    uint64_t ts;
    const char *json;
    size_t len;
    if (d->len > ENVELOPE_MAX_DATAGRAM) /* dropped as truncated, before any check */
        return;
    if (envelope_open(key, d->buf, d->len, plain, &ts, &json, &len) != ENVELOPE_OK || !fresh(ts)) {
        trace("received %zu bytes: not authentic, or stale", d->len);
        return;
    }
    if (ts > g.max_ts)
        g.max_ts = ts;
    uint64_t keep = 2ULL * g.window * SEC_NS;
    if (g.max_ts > keep && g.max_ts - keep > g.floor)
        g.floor = g.max_ts - keep;
    int below = ts < g.floor, seen = nonce_seen(d->buf);
    if (!below && !seen && g.nnonces < MAX_DELIVER)
        memcpy(g.nonces[g.nnonces++], d->buf, ENVELOPE_NONCE_BYTES);
    struct message_in m;
    char where[NET_HOST_MAX + 8];
    show(&d->from, where);
    if (seen || message_classify(json, len, &m) != MESSAGE_VALID || g.ndlv >= MAX_DELIVER) {
        trace("received from %s: %s", where, seen ? "a replay" : "not a valid message");
        return;
    }
    trace("received from %s: %s %s%s%s", where, m.kind == MESSAGE_ACK ? "ACK" : "message", m.id,
          d->engine ? " (sealed by the engine)" : "", below ? " (below the replay floor)" : "");
    struct dlv *v = &g.dlv[g.ndlv++];
    memset(v, 0, sizeof *v);
    v->seq = ++g.seq;
    v->turn = g.turn;
    v->from = d->from;
    v->kind = m.kind;
    memcpy(v->id, m.id, sizeof v->id);
    v->engine = d->engine;
    v->edst = d->edst;
    v->sure = !below;
    v->ts = ts;
    if (m.kind == MESSAGE_DATA) {
        if ((v->json = malloc(len > 0 ? len : 1)) == NULL)
            abort();
        memcpy(v->json, json, len);
        v->json_len = len;
    }
}

/* Hands the engine the queued datagrams of the socket's family, then nothing. */
static int fake_recv(void *ctx, int fd, struct net_dgram *d, int n)
{
    (void)ctx;
    if (g.recv_err && fd == g.main_fd) { /* as an ICMP error reported on a UDP socket */
        g.recv_err = 0;
        errno = ECONNREFUSED;
        return -1;
    }
    int fam = fd == g.main_fd ? AF_INET : net_family(fd);
    int got = 0, kept = 0;
    for (int i = 0; i < g.nq; i++) {
        struct dgram *q = &g.q[i];
        if (got >= n || q->from.u.sa.sa_family != fam) {
            g.q[kept++] = *q;
            continue;
        }
        struct net_dgram *x = &d[got++];
        size_t len = q->len < x->cap ? q->len : x->cap;
        memcpy(x->buf, q->buf, len);
        x->len = len;
        x->truncated = q->len >= x->cap;
        x->addr = q->from;
        x->err = 0;
        observe(q);
        free(q->buf);
    }
    g.nq = kept;
    return got;
}

static int transient(int err)
{
    return err == EAGAIN || err == ENOBUFS;
}

static int same_id(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* The tags "t":0 .. "t":3 a payload holds, as the triggers' LIKE (ASCII case-insensitive) sees
 * them. */
static int tags_of(const char *p, size_t len)
{
    int tags = 0;
    for (size_t i = 0; i + 5 <= len; i++)
        if (p[i] == '"' && (p[i + 1] | 0x20) == 't' && p[i + 2] == '"' && p[i + 3] == ':' &&
            p[i + 4] >= '0' && p[i + 4] <= '3')
            tags |= 1 << (p[i + 4] - '0');
    return tags;
}

static int64_t deleted_seq(const char *id)
{
    for (int i = 0; i < g.ndel; i++)
        if (same_id(g.del[i].id, id))
            return g.del[i].seq;
    return 0;
}

static int inbound_has(const char *id)
{
    sqlite3_stmt *s = g.q_in_count;
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_ROW)
        fail("harness: cannot read inbound_messages: %s", sqlite3_errmsg(g.raw));
    int n = sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    return n > 0;
}

/* ACK only after commit; and never more ACKs than accepted messages (silence). */
static void check_ack_send(const struct net_addr *to, const char *id, int err)
{
    char where[NET_HOST_MAX + 8];
    show(to, where);
    if (!inbound_has(id)) {
        /* A row sg-clean deleted after an earlier attempt failed: that ACK is retried. */
        int64_t dseq = deleted_seq(id);
        int retry = 0;
        for (int i = 0; i < g.nsrec && dseq > 0 && !retry; i++) {
            const struct srec *r = &g.srec[i];
            retry = r->ack && r->err != 0 && r->seq < dseq && same_id(r->id, id) &&
                    net_addr_same_peer(&r->to, to);
        }
        if (!retry)
            fail("ACK for %s sent to %s, but no inbound row has that message_id (ACKed before "
                 "commit, or a refused insert ACKed)",
                 id, where);
    }
    int credits = 0, ok = err == 0, tries = 1;
    for (int i = 0; i < g.ndlv; i++)
        credits += g.dlv[i].kind == MESSAGE_DATA && same_id(g.dlv[i].id, id) &&
                   net_addr_same_peer(&g.dlv[i].from, to);
    for (int i = 0; i < g.npre; i++)
        credits += same_id(g.pre[i].id, id) && net_addr_same_peer(&g.pre[i].from, to);
    for (int i = 0; i < g.nsrec; i++) {
        const struct srec *r = &g.srec[i];
        if (r->ack && same_id(r->id, id) && net_addr_same_peer(&r->to, to)) {
            tries++;
            ok += r->err == 0;
        }
    }
    if (ok > credits)
        fail("ACK number %d for %s to %s, after only %d accepted messages with that id from "
             "there: a replayed, stale, reflected or unauthenticated datagram was answered",
             ok, id, where, credits);
    if ((uint64_t)tries > (uint64_t)credits * (g.max_retries + 1))
        fail("%d ACK attempts for %s to %s: more than %d chains of %u", tries, id, where, credits,
             g.max_retries + 1);
}

static struct orow *orow_find(int64_t rowid)
{
    for (int i = 0; i < g.norow; i++)
        if (g.orow[i].rowid == rowid)
            return &g.orow[i];
    return NULL;
}

/*
 * The destination a row names, read as the engine must (issue 8, items 15
 * and 17): text without a NUL byte, an integer port from 1 to 65535.
 */
static int row_dst(sqlite3_stmt *s, int ca, int cp, struct net_addr *out)
{
    const char *a = (const char *)sqlite3_column_text(s, ca);
    size_t alen = (size_t)sqlite3_column_bytes(s, ca);
    if (a == NULL || strlen(a) != alen || sqlite3_column_type(s, cp) != SQLITE_INTEGER)
        return 0;
    sqlite3_int64 port = sqlite3_column_int64(s, cp);
    return port >= 1 && port <= 65535 && net_addr_parse(a, (unsigned)port, out) == 0;
}

static int state_of(const char *text, const char *const *names, int n)
{
    for (int i = 0; text != NULL && i < n; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

static int pool_index(const char *id)
{
    for (int i = 0; i < POOL; i++)
        if (same_id(pool[i], id))
            return i;
    return -1;
}

static void learn(const char *id)
{
    if (pool_index(id) >= 0)
        return;
    for (int i = 0; i < g.nlearned; i++)
        if (same_id(g.learned[i], id))
            return;
    if (g.nlearned < LEARNED)
        memcpy(g.learned[g.nlearned++], id, MESSAGE_ID_LEN + 1);
}

/* A message goes out only for a committed row, to its destination, with its payload. */
static void check_msg_send(const struct net_addr *to, const char *id, const char *json, size_t len,
                           int err, int64_t seq)
{
    char where[NET_HOST_MAX + 8];
    show(to, where);
    sqlite3_stmt *s = g.q_out_by_id;
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_ROW)
        fail("message %s sent to %s, but no outbound row has that message_id", id, where);
    int64_t rowid = sqlite3_column_int64(s, 0);
    const char *state = (const char *)sqlite3_column_text(s, 1);
    int st = state_of(state, ostate_name, O_N);
    struct net_addr dst;
    int dst_ok = row_dst(s, 2, 3, &dst);
    const void *payload = sqlite3_column_blob(s, 4);
    size_t plen = (size_t)sqlite3_column_bytes(s, 4);
    if (st != O_SENDING && st != O_SENT)
        fail("message %s (row %lld) sent to %s while the row is '%s'", id, (long long)rowid, where,
             state != NULL ? state : "NULL");
    if (!dst_ok || !net_addr_same_peer(&dst, to))
        fail("message %s (row %lld) sent to %s, not to the row's destination", id, (long long)rowid,
             where);
    struct orow *o = orow_find(rowid);
    if (o == NULL)
        fail("message %s sent for row %lld, which the harness never wrote", id, (long long)rowid);
    if (plen != len || (len > 0 && memcmp(payload, json, len) != 0)) {
        /*
         * A row the engine claimed carries the payload it sends (the claim wrote it).
         * One another program wrote as 'sent' is sent as the SPEC makes it ready: with
         * its message_id inserted if it lacked one; the row is not rewritten.
         */
        struct message_out m;
        char why[160];
        int same = o->inserted != O_PENDING && payload != NULL &&
                   message_prepare(payload, plen, id, &m, why, sizeof why) == 0;
        if (same) {
            same = m.payload_len == len && memcmp(m.payload, json, len) == 0;
            message_out_clear(&m);
        }
        if (!same)
            fail("message %s (row %lld) sent with another payload than the row's", id,
                 (long long)rowid);
    }
    sqlite3_reset(s);
    if (++o->sends > (int)g.max_retries + 1)
        fail("row %lld sent %d times with max retries %u", (long long)rowid, o->sends,
             g.max_retries);
    o->attempted = 1;
    if ((err == 0 || transient(err)) && !o->attempted_ok) {
        o->attempted_ok = 1;
        o->first_ok_seq = seq;
    }
    o->last_send_turn = g.turn;
    learn(id);
}

static void keep_capture(const struct net_dgram *d)
{
    struct dgram *c = &g.cap[g.cap_next];
    if (g.ncap < CAPTURE)
        g.ncap++;
    else
        free(c->buf);
    g.cap_next = (g.cap_next + 1) % CAPTURE;
    if ((c->buf = malloc(d->len)) == NULL)
        abort();
    memcpy(c->buf, d->buf, d->len);
    c->len = d->len;
    c->engine = 1;
    c->edst = d->addr;
}

static void inspect_send(const struct net_dgram *d, int err)
{
    uint64_t ts;
    const char *json;
    size_t len;
    struct message_in m;
    if (envelope_open(key, d->buf, d->len, plain, &ts, &json, &len) != ENVELOPE_OK)
        fail("the engine sent a datagram that does not open under the key");
    uint64_t skew = ts > g.real ? ts - g.real : g.real - ts;
    if (skew >> ENVELOPE_MARK_BITS)
        fail("the engine sealed a timestamp %llu ns from the wall clock", (unsigned long long)skew);
    if (message_classify(json, len, &m) != MESSAGE_VALID)
        fail("the engine sent JSON a peer drops: %.*s", (int)(len < 200 ? len : 200), json);
    int64_t seq = ++g.seq;
    char where[NET_HOST_MAX + 8];
    show(&d->addr, where);
    trace("sent %s %s to %s, error %d", m.kind == MESSAGE_ACK ? "ACK" : "message", m.id, where,
          err);
    if (m.kind == MESSAGE_ACK)
        check_ack_send(&d->addr, m.id, err);
    else
        check_msg_send(&d->addr, m.id, json, len, err, seq);
    if (g.nsrec >= MAX_SENDS)
        fail("harness: more than %d datagrams sent", MAX_SENDS);
    struct srec *r = &g.srec[g.nsrec++];
    r->seq = seq;
    r->turn = g.turn;
    r->ack = m.kind == MESSAGE_ACK;
    r->err = err;
    memcpy(r->id, m.id, sizeof r->id);
    r->to = d->addr;
    keep_capture(d);
}

/* Errors by 4-bit code: half of them none. */
static const int send_errs[16] = {0,           0,
                                  0,           0,
                                  0,           0,
                                  0,           0,
                                  EAGAIN,      EAGAIN,
                                  ENOBUFS,     ECONNREFUSED,
                                  ENETUNREACH, EHOSTUNREACH,
                                  EMSGSIZE,    EPERM};

static int fake_send(void *ctx, int fd, struct net_dgram *d, int n)
{
    (void)ctx;
    (void)fd;
    int sent = 0;
    for (int i = 0; i < n; i++) {
        unsigned slot = (unsigned)(g.nsent++ % 4);
        int err = send_errs[(g.send_mode >> (4 * slot)) & 15];
        d[i].err = err;
        sent += err == 0;
        inspect_send(&d[i], err);
    }
    return sent;
}

static const struct engine_io io = {NULL, fake_mono, fake_real, fake_recv, fake_send};

/* ---- the checks after each turn ---- */

/* An authentic fresh ACK for the row came from its destination after it was sent there. */
static int ack_accepted(const struct orow *o, int sure, int before_turn)
{
    if (!o->dst_ok || !message_id_valid(o->id))
        return 0;
    for (int i = 0; i < g.ndlv; i++) {
        const struct dlv *d = &g.dlv[i];
        if (d->kind != MESSAGE_ACK || !same_id(d->id, o->id) ||
            !net_addr_same_peer(&d->from, &o->dst) || d->seq <= o->insert_seq)
            continue;
        if (d->engine && !net_addr_same_peer(&o->dst, &g.self))
            continue; /* our own ACK counts only for a message to ourselves */
        if (o->inserted == O_PENDING && (!o->attempted_ok || o->first_ok_seq > d->seq))
            continue;
        if (sure && (!d->sure || d->turn >= before_turn))
            continue;
        return 1;
    }
    return 0;
}

static void check_outbound(void)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(g.raw,
                           "SELECT id, message_id, dst_addr, dst_port, state FROM "
                           "outbound_messages",
                           -1, &s, NULL) != SQLITE_OK)
        fail("harness: %s", sqlite3_errmsg(g.raw));
    for (int i = 0; i < g.norow; i++)
        g.orow[i].seen = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t rowid = sqlite3_column_int64(s, 0);
        struct orow *o = orow_find(rowid);
        if (o == NULL || o->gone)
            fail("outbound row %lld appeared: the engine never writes outbound rows",
                 (long long)rowid);
        o->seen = 1;
        const char *id = (const char *)sqlite3_column_text(s, 1);
        snprintf(o->id, sizeof o->id, "%s", id != NULL && message_id_valid(id) ? id : "");
        o->dst_ok = row_dst(s, 2, 3, &o->dst);
        const char *state = (const char *)sqlite3_column_text(s, 4);
        int st = state_of(state, ostate_name, O_N);
        if (st < 0)
            fail("outbound row %lld is in state '%s'", (long long)rowid,
                 state != NULL ? state : "NULL");
        if ((o->last == O_ACKED || o->last == O_FAILED) && st != o->last)
            fail("outbound row %lld went from terminal '%s' to '%s'", (long long)rowid,
                 ostate_name[o->last], state);
        if (o->last != O_PENDING && st == O_PENDING)
            fail("outbound row %lld went from '%s' back to 'pending'", (long long)rowid,
                 ostate_name[o->last]);
        if (st == O_SENDING && o->inserted != O_SENDING && !o->attempted)
            fail("outbound row %lld is 'sending' but was never handed to the socket",
                 (long long)rowid);
        /* claimed straight to 'sent': its datagram is handed to the socket in the same turn */
        if (st == O_SENT && o->inserted == O_PENDING && !o->attempted)
            fail("outbound row %lld is 'sent' but was never handed to the socket",
                 (long long)rowid);
        if (st == O_ACKED && o->last != O_ACKED && o->inserted != O_ACKED && !ack_accepted(o, 0, 0))
            fail("outbound row %lld (%s) is 'acknowledged' without an ACK from its destination "
                 "after it was sent there",
                 (long long)rowid, o->id);
        if (st != o->last)
            trace("outbound row %lld (%s): %s -> %s", (long long)rowid, o->id, ostate_name[o->last],
                  state);
        o->last = st;
    }
    if (rc != SQLITE_DONE)
        fail("harness: reading outbound_messages: %s", sqlite3_errmsg(g.raw));
    sqlite3_finalize(s);
    for (int i = 0; i < g.norow; i++)
        if (!g.orow[i].seen && !g.orow[i].gone)
            fail("outbound row %lld vanished", (long long)g.orow[i].rowid);
}

static struct irow *irow_find(int64_t rowid)
{
    for (int i = 0; i < g.nirow; i++)
        if (g.irow[i].rowid == rowid)
            return &g.irow[i];
    return NULL;
}

/* A new inbound row must be a message that came in: id, sender, payload, timestamp. */
static void check_new_inbound(sqlite3_stmt *s, int64_t rowid, const char *id)
{
    struct net_addr from;
    const char *src = (const char *)sqlite3_column_text(s, 2);
    size_t slen = (size_t)sqlite3_column_bytes(s, 2);
    int port_int = sqlite3_column_type(s, 3) == SQLITE_INTEGER;
    sqlite3_int64 port = sqlite3_column_int64(s, 3);
    const void *payload = sqlite3_column_blob(s, 4);
    size_t plen = (size_t)sqlite3_column_bytes(s, 4);
    const char *ts = (const char *)sqlite3_column_text(s, 5);
    if (id == NULL || src == NULL || strlen(src) != slen || !port_int || port < 1 || port > 65535 ||
        net_addr_parse(src, (unsigned)port, &from) != 0)
        fail("inbound row %lld has a bad message_id or sender", (long long)rowid);
    for (int i = 0; i < g.ndlv; i++) {
        const struct dlv *d = &g.dlv[i];
        char want[32];
        if (d->kind != MESSAGE_DATA || !same_id(d->id, id) || !net_addr_same_peer(&d->from, &from))
            continue;
        store_format_ns(d->ts, want);
        if (d->json_len != plen || (plen > 0 && memcmp(d->json, payload, plen) != 0) ||
            ts == NULL || strcmp(ts, want) != 0)
            continue;
        if (d->engine && !net_addr_same_peer(&d->edst, &g.self))
            continue; /* a reflection of a message we sent to someone else */
        return;
    }
    fail("inbound row %lld (%s from %s port %lld) matches no authentic, fresh, new message "
         "that came from there",
         (long long)rowid, id, src, (long long)port);
}

static void check_inbound(void)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(g.raw,
                           "SELECT id, message_id, src_addr, src_port, payload, "
                           "crypto_timestamp, state FROM inbound_messages",
                           -1, &s, NULL) != SQLITE_OK)
        fail("harness: %s", sqlite3_errmsg(g.raw));
    for (int i = 0; i < g.nirow; i++)
        g.irow[i].seen = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t rowid = sqlite3_column_int64(s, 0);
        const char *id = (const char *)sqlite3_column_text(s, 1);
        struct irow *r = irow_find(rowid);
        if (r != NULL && r->gone)
            fail("inbound row %lld came back", (long long)rowid);
        if (r == NULL) {
            check_new_inbound(s, rowid, id);
            if (g.nirow >= MAX_ROWS)
                fail("harness: more than %d inbound rows", MAX_ROWS);
            r = &g.irow[g.nirow++];
            memset(r, 0, sizeof *r);
            r->rowid = rowid;
            r->first_turn = g.turn;
            r->last = I_RECEIVED;
            r->tags = tags_of((const char *)sqlite3_column_blob(s, 4),
                              (size_t)sqlite3_column_bytes(s, 4));
            snprintf(r->id, sizeof r->id, "%.24s", id);
            trace("inbound row %lld (%s) stored", (long long)rowid, r->id);
        }
        r->seen = 1;
        const char *state = (const char *)sqlite3_column_text(s, 6);
        int st = state_of(state, istate_name, I_N);
        if (st < 0)
            fail("inbound row %lld is in state '%s'", (long long)rowid,
                 state != NULL ? state : "NULL");
        if (st != r->last)
            trace("inbound row %lld (%s): %s -> %s", (long long)rowid, r->id, istate_name[r->last],
                  state);
        if (r->last != I_RECEIVED && st != r->last)
            fail("inbound row %lld went from terminal '%s' to '%s'", (long long)rowid,
                 istate_name[r->last], state);
        r->last = st;
    }
    if (rc != SQLITE_DONE)
        fail("harness: reading inbound_messages: %s", sqlite3_errmsg(g.raw));
    sqlite3_finalize(s);
    for (int i = 0; i < g.nirow; i++)
        if (!g.irow[i].seen && !g.irow[i].gone)
            fail("inbound row %lld vanished", (long long)g.irow[i].rowid);
}

/* After the harness deleted rows: those missing now are gone (not a fault). */
static void note_gone(void)
{
    sqlite3_stmt *s = NULL;
    for (int t = 0; t < 2; t++) {
        const char *q = t == 0 ? "SELECT 1 FROM outbound_messages WHERE id = ?1"
                               : "SELECT 1 FROM inbound_messages WHERE id = ?1";
        if (sqlite3_prepare_v2(g.raw, q, -1, &s, NULL) != SQLITE_OK)
            fail("harness: %s", sqlite3_errmsg(g.raw));
        int n = t == 0 ? g.norow : g.nirow;
        for (int i = 0; i < n; i++) {
            int64_t rowid = t == 0 ? g.orow[i].rowid : g.irow[i].rowid;
            sqlite3_reset(s);
            sqlite3_bind_int64(s, 1, rowid);
            if (sqlite3_step(s) != SQLITE_ROW) {
                if (t == 0)
                    g.orow[i].gone = 1;
                else
                    g.irow[i].gone = 1;
            }
        }
        sqlite3_finalize(s);
    }
}

static void turn(int db_event)
{
    g.turn++;
    if (engine_turn(g.e, db_event) != 0)
        fail("the engine stopped (its database was not removed or replaced)");
    check_outbound();
    check_inbound();
}

/* ---- the operations ---- */

static void src_addr(int sel, struct net_addr *out)
{
    static const char *const host[] = {"127.0.0.1", "127.0.0.1", "127.0.0.1",
                                       "127.0.0.1", "127.0.0.2", "::1"};
    int i = sel % 6;
    unsigned port = i == 3   ? g.self_port
                    : i == 1 ? PEER_PORT + 1
                    : i == 2 ? PEER_PORT + 2
                             : PEER_PORT;
    if (net_addr_parse(host[i], port, out) != 0)
        abort();
}

static void enqueue(const uint8_t *buf, size_t len, int src, int engine,
                    const struct net_addr *edst, int keep)
{
    if (g.ndelivered >= MAX_DELIVER)
        return;
    g.ndelivered++;
    struct dgram *q = &g.q[g.nq++];
    memset(q, 0, sizeof *q);
    if ((q->buf = malloc(len > 0 ? len : 1)) == NULL)
        abort();
    memcpy(q->buf, buf, len);
    q->len = len;
    src_addr(src, &q->from);
    q->engine = engine;
    if (edst != NULL)
        q->edst = *edst;
    if (keep && g.nknown < MAX_DELIVER) {
        struct dgram *k = &g.known[g.nknown++];
        *k = *q;
        if ((k->buf = malloc(len > 0 ? len : 1)) == NULL)
            abort();
        memcpy(k->buf, buf, len);
    }
}

static const char *pick_id(uint8_t sel)
{
    int k = sel % (POOL + g.nlearned);
    return k < POOL ? pool[k] : g.learned[k - POOL];
}

/* A timestamp at, inside and just past the window's edges, or absurd. */
static uint64_t pick_ts(uint8_t sel)
{
    uint64_t now = g.real, w = (uint64_t)g.window * SEC_NS;
    uint64_t jitter = (uint64_t)(sel >> 4) * 1000000ULL;
    switch (sel % 10) {
    case 0:
        return now + jitter;
    case 1:
        return now - SEC_NS - jitter;
    case 2:
        return now + SEC_NS + jitter;
    case 3:
        return now - w;
    case 4:
        return now + w;
    case 5:
        return now - w - 1;
    case 6:
        return now + w + 1;
    case 7:
        return now - 2 * w - SEC_NS;
    case 8:
        return now + 3600 * SEC_NS;
    default:
        return sel & 0x10 ? UINT64_MAX : 0;
    }
}

static void seal_and_queue(const char *json, size_t len, uint8_t ts_sel, uint8_t src, int wrong)
{
    uint8_t out[512];
    size_t n = envelope_seal(wrong ? wrong_key : key, pick_ts(ts_sel), json, len, out, sizeof out);
    if (n > 0)
        enqueue(out, n, src, 0, NULL, 1);
}

static void op_message(struct input *in)
{
    uint8_t id_sel = byte(in), src = byte(in), ts_sel = byte(in), var = byte(in);
    const char *id = pick_id(id_sel);
    int tag = (var >> 3) & 3;
    char json[256], upper[MESSAGE_ID_LEN + 1];
    int n;
    switch (var & 7) {
    case 0:
        n = snprintf(json, sizeof json, "{\"message_id\":\"%s\",\"t\":%d,\"n\":%lld}", id, tag,
                     (long long)g.seq);
        break;
    case 1:
        n = snprintf(json, sizeof json, "{\"message_id\":\"%s\",\"t\":%d}", id, tag);
        break;
    case 2:
        n = snprintf(json, sizeof json, "{\"t\":%d,\"message_id\":\"%s\",\"type\":\"note\"}", tag,
                     id);
        break;
    case 3:
        n = snprintf(json, sizeof json, "[\"%s\",%d]", id, tag);
        break;
    case 4:
        for (int i = 0; i <= MESSAGE_ID_LEN; i++)
            upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 32 : id[i]);
        n = snprintf(json, sizeof json, "{\"message_id\":\"%s\",\"t\":%d}", upper, tag);
        break;
    case 5:
        n = snprintf(json, sizeof json,
                     "{\"message_id\":\"%s\",\"t\":%d,\"deep\":[[[[[[[[{\"a\":null}]]]]]]]]}", id,
                     tag);
        break;
    default: { /* the rest of the object from the input */
        n = snprintf(json, sizeof json, "{\"message_id\":\"%s\",", id);
        int extra = byte(in) % 80;
        for (int i = 0; i < extra; i++)
            json[n++] = (char)byte(in);
        break;
    }
    }
    seal_and_queue(json, (size_t)n, ts_sel, src, var & 0x80);
}

static void op_ack(struct input *in)
{
    uint8_t id_sel = byte(in), src = byte(in), ts_sel = byte(in);
    char json[MESSAGE_ACK_MAX];
    size_t n = message_ack_text(pick_id(id_sel), json);
    seal_and_queue(json, n, ts_sel, src, (src & 0xc0) == 0xc0); /* a quarter under a wrong key */
}

/* An earlier datagram again, byte for byte (or with one byte flipped): ours or the engine's. */
static void op_replay(struct input *in)
{
    uint8_t idx = byte(in), src = byte(in), var = byte(in);
    int engine = (var & 1) && g.ncap > 0;
    if (!engine && g.nknown == 0)
        return;
    const struct dgram *d = engine ? &g.cap[idx % g.ncap] : &g.known[idx % g.nknown];
    uint8_t *copy = malloc(d->len > 0 ? d->len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, d->buf, d->len);
    if ((var & 2) && d->len > 0)
        copy[(size_t)(var >> 2) % d->len] ^= 1;
    enqueue(copy, d->len, src, d->engine, &d->edst, 0);
    free(copy);
}

static void op_garbage(struct input *in)
{
    uint8_t len = byte(in), src = byte(in);
    if (len == 255) { /* larger than any datagram: truncated */
        uint8_t *big = calloc(1, ENVELOPE_MAX_DATAGRAM + 1);
        if (big == NULL)
            abort();
        enqueue(big, ENVELOPE_MAX_DATAGRAM + 1, src, 0, NULL, 0);
        free(big);
        return;
    }
    uint8_t buf[128];
    size_t n = len % 96;
    for (size_t i = 0; i < n; i++)
        buf[i] = byte(in);
    enqueue(buf, n, src, 0, NULL, 1);
}

static void op_clock(struct input *in)
{
    uint8_t a = byte(in), b = byte(in);
    int64_t ms = a & 0x80 ? (a & 0x3f) : ((a & 0x3f) + 1) * (a & 0x40 ? 1000 : 50);
    g.mono += ms * 1000;
    switch (b & 3) {
    case 2: /* the wall clock steps back */
        g.real -= (uint64_t)((b >> 2) + 1) * SEC_NS;
        break;
    case 3: /* or jumps ahead */
        g.real += (uint64_t)((b >> 2) + 1) * 10 * SEC_NS;
        break;
    default:
        g.real += (uint64_t)ms * 1000000ULL;
    }
}

/* A payload for an outbound row: good, without an id, with another id, not JSON, too large. */
static char *make_payload(int var, int tag, const char *row_id, int j, size_t *len)
{
    size_t cap = 70100;
    char *p = malloc(cap);
    if (p == NULL)
        abort();
    int n = 0;
    switch (var & 7) {
    case 0:
        n = snprintf(p, cap, "{\"t\":%d,\"body\":\"hello\"}", tag);
        break;
    case 1:
        n = snprintf(p, cap, "{\"message_id\":\"%s\",\"t\":%d}", pool[j & 7], tag);
        break;
    case 2:
        n = row_id != NULL ? snprintf(p, cap, "{\"message_id\":\"%s\",\"t\":%d}", row_id, tag)
                           : snprintf(p, cap, "{\"t\":%d}", tag);
        break;
    case 3:
        n = snprintf(p, cap, "not json %d", tag);
        break;
    case 4:
        n = snprintf(p, cap, "[1,2,%d]", tag);
        break;
    case 5:   /* one datagram can never carry it */
    case 6: { /* at the limit once the message_id (40 bytes) is inserted, or just past it */
        size_t want = (var & 7) == 5 ? 70000 : (size_t)ENVELOPE_MAX_JSON - 40 - 1 + (size_t)(j & 3);
        n = snprintf(p, cap, "{\"t\":%d,\"pad\":\"", tag);
        while ((size_t)n < want - 2)
            p[n++] = 'a';
        p[n++] = '"';
        p[n++] = '}';
        p[n] = '\0';
        break;
    }
    default:
        n = snprintf(p, cap, "{\"message_id\":\"ABC\",\"t\":%d}", tag);
    }
    *len = (size_t)n;
    return p;
}

static void bind_dst(sqlite3_stmt *s, int sel)
{
    static const char bad_blob[] = "127.0.0.1\0\xff";
    static const char *const host[] = {"127.0.0.1",        "127.0.0.1", "127.0.0.1",
                                       "127.0.0.1",        "localhost", "::1",
                                       "::ffff:127.0.0.1", "127.0.0.2", "not-an-address"};
    int i = sel % 16;
    if (i < 9)
        sqlite3_bind_text(s, 2, host[i], -1, SQLITE_STATIC);
    else if (i == 13)
        sqlite3_bind_blob(s, 2, bad_blob, (int)sizeof bad_blob - 1, SQLITE_STATIC);
    else
        sqlite3_bind_text(s, 2, "127.0.0.1", -1, SQLITE_STATIC);
    switch (i) {
    case 1:
    case 6:
        sqlite3_bind_int(s, 3, PEER_PORT + 1);
        break;
    case 2:
        sqlite3_bind_int(s, 3, PEER_PORT + 2);
        break;
    case 3:
        sqlite3_bind_int(s, 3, (int)g.self_port);
        break;
    case 9:
        sqlite3_bind_int(s, 3, 0);
        break;
    case 10:
        sqlite3_bind_int(s, 3, 70000);
        break;
    case 11:
        sqlite3_bind_text(s, 3, "abc", -1, SQLITE_STATIC);
        break;
    case 12: /* 2^32 + P: must not be taken for P (issue 8, item 15) */
        sqlite3_bind_int64(s, 3, (INT64_C(1) << 32) + PEER_PORT);
        break;
    case 14: /* stored as the integer 40002 (column affinity) */
        sqlite3_bind_text(s, 3, "40002", -1, SQLITE_STATIC);
        break;
    case 15:
        sqlite3_bind_double(s, 3, PEER_PORT + 2.5);
        break;
    default:
        sqlite3_bind_int(s, 3, PEER_PORT);
    }
}

/*
 * Outbound rows, as sg-send or a script would write them (before the start: as
 * a crash left them): one, or a batch to one destination (to fill its flow
 * window; the others without a message_id). An old created_at makes a row one
 * a silent peer's backlog expiry may fail; the others are created at the
 * input's "now", the clock the engine ages them by.
 */
static void insert_outbound(struct input *in, int before_start)
{
    uint8_t b0 = byte(in), b1 = byte(in), b2 = byte(in), b3 = byte(in), b4 = byte(in);
    static const char *const sent_at[] = {NULL, "2000-01-01T00:00:00.000", "garbage",
                                          "2000-01-01T00:00:00.000"};
    static const int64_t retries[] = {0, 0, -3, 1000000};
    static const int batch[] = {1, 1, 3, 12};
    char upper[MESSAGE_ID_LEN + 1];
    const char *id = NULL;
    switch (b1 & 7) {
    case 3:
    case 4:
    case 5:
        id = pool[(b1 >> 3) & 7];
        break;
    case 6:
        id = "NOT-A-HEX-MESSAGE-ID";
        break;
    case 7:
        for (int i = 0; i <= MESSAGE_ID_LEN; i++) {
            char c = pool[(b1 >> 3) & 7][i];
            upper[i] = (char)(c >= 'a' && c <= 'f' ? c - 32 : c);
        }
        id = upper;
        break;
    }
    int st;
    if (before_start)
        st = (int[]){O_PENDING, O_SENDING, O_SENT, O_SENT}[b3 & 3];
    else
        st = (b3 & 7) < 5    ? O_PENDING
             : (b3 & 7) == 5 ? O_SENT
             : (b3 & 7) == 6 ? O_SENT
             : (b3 & 8)      ? O_ACKED
                             : (b3 & 0x40 ? O_SENDING : O_FAILED);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(g.raw,
                           "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, "
                           "payload, state, retry_count, sent_at, created_at) VALUES (?1, ?2, ?3, "
                           "?4, ?5, ?6, ?7, COALESCE(?8, ?9))",
                           -1, &s, NULL) != SQLITE_OK)
        fail("harness: %s", sqlite3_errmsg(g.raw));
    for (int k = 0; k < batch[(b4 >> 4) & 3] && g.norow < MAX_ROWS; k++) {
        const char *row_id = k == 0 ? id : NULL;
        size_t plen;
        char *payload =
            make_payload(k == 0 ? b2 : b2 & 0x18, (b2 >> 3) & 3, row_id, b2 >> 5, &plen);
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (row_id != NULL)
            sqlite3_bind_text(s, 1, row_id, -1, SQLITE_STATIC);
        bind_dst(s, b0);
        sqlite3_bind_text(s, 4, payload, (int)plen, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, ostate_name[st], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 6, retries[b4 & 3]);
        if (sent_at[(b3 >> 4) & 3] != NULL && st != O_PENDING)
            sqlite3_bind_text(s, 7, sent_at[(b3 >> 4) & 3], -1, SQLITE_STATIC);
        if (b4 & 4)
            sqlite3_bind_text(s, 8, "2000-01-01T00:00:00.000", -1, SQLITE_STATIC);
        char now[STORE_TIME_LEN];
        store_format_ms((int64_t)(g.real / 1000000ULL), now);
        sqlite3_bind_text(s, 9, now, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s), tags = tags_of(payload, plen);
        free(payload);
        if (rc != SQLITE_DONE)
            continue; /* a duplicate message_id, say */
        struct orow *o = &g.orow[g.norow++];
        memset(o, 0, sizeof *o);
        o->rowid = sqlite3_last_insert_rowid(g.raw);
        o->insert_seq = ++g.seq;
        o->tags = tags;
        /* engine_new's recovery makes 'sending' rows pending again */
        o->inserted = o->last = before_start && st == O_SENDING ? O_PENDING : st;
    }
    sqlite3_finalize(s);
}

/* An inbound row as a crash left it: the start-up recovery ACKs 'received' ones. */
static void insert_inbound(struct input *in)
{
    uint8_t b0 = byte(in), b1 = byte(in);
    const char *id = (b0 & 0x38) == 0x38 ? "not-an-id" : pool[b0 & 7];
    struct net_addr from;
    src_addr(b1, &from);
    char host[NET_HOST_MAX], payload[96];
    unsigned port;
    net_addr_format(&from, host, &port);
    snprintf(payload, sizeof payload, "{\"message_id\":\"%.24s\",\"t\":%d}", id, b0 >> 6);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(g.raw,
                           "INSERT INTO inbound_messages (message_id, src_addr, src_port, "
                           "payload, crypto_timestamp, state) VALUES (?1, ?2, ?3, ?4, "
                           "'2027-01-15T08:00:00.000000000', ?5)",
                           -1, &s, NULL) != SQLITE_OK)
        fail("harness: %s", sqlite3_errmsg(g.raw));
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, b1 & 0x80 ? "nowhere" : host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 3, (int)port);
    sqlite3_bind_text(s, 4, payload, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, b1 & 0x40 ? "ack_sent" : "received", -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE || g.nirow >= MAX_ROWS)
        return;
    struct irow *r = &g.irow[g.nirow++];
    memset(r, 0, sizeof *r);
    r->rowid = sqlite3_last_insert_rowid(g.raw);
    r->preseed = 1;
    r->tags = tags_of(payload, strlen(payload));
    r->last = b1 & 0x40 ? I_ACK_SENT : I_RECEIVED;
    snprintf(r->id, sizeof r->id, "%.24s", id);
    if (!(b1 & 0x80) && message_id_valid(id)) { /* recovery may ACK it there, once */
        struct credit *c = &g.pre[g.npre++];
        snprintf(c->id, sizeof c->id, "%.24s", id);
        c->from = from;
    }
}

static void op_lock(void)
{
    if (!g.locked) {
        g.locked = sqlite3_exec(g.raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    } else {
        if (sqlite3_exec(g.raw, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            fail("harness: COMMIT: %s", sqlite3_errmsg(g.raw));
        g.locked = 0;
    }
}

/* An operator's trigger that refuses some rows (by a tag in the payload, or by sender). */
static void op_trigger(struct input *in)
{
    uint8_t b0 = byte(in), b1 = byte(in);
    int slot = b0 & 3;
    char sql[512];
    if (g.trig[slot]) {
        snprintf(sql, sizeof sql, "DROP TRIGGER IF EXISTS fz%d", slot);
        if (sqlite3_exec(g.raw, sql, NULL, NULL, NULL) == SQLITE_OK)
            g.trig[slot] = 0;
        return;
    }
    static const char *const raise[] = {"IGNORE", "ABORT, 'refused by fz'", "FAIL, 'refused by fz'",
                                        "ROLLBACK, 'refused by fz'"};
    static const char *const ost[] = {"sending", "sent", "acknowledged", "send_failed"};
    static const char *const ist[] = {"ack_sent", "ack_failed"};
    int kind = (b0 >> 2) % 6, tag = b1 & 3, sel = (b1 >> 2) & 7;
    const char *r = raise[(b0 >> 5) & 3];
    char cond[160];
    snprintf(cond, sizeof cond, "NEW.payload LIKE '%%\"t\":%d%%'", tag);
    switch (kind) {
    case 0:
        snprintf(sql, sizeof sql,
                 "CREATE TRIGGER fz%d BEFORE INSERT ON inbound_messages WHEN %s BEGIN SELECT "
                 "RAISE(%s); END",
                 slot, cond, r);
        break;
    case 1:
    case 5:
        snprintf(sql, sizeof sql,
                 "CREATE TRIGGER fz%d %s UPDATE ON outbound_messages WHEN %s%s%s%s BEGIN SELECT "
                 "RAISE(%s); END",
                 slot, kind == 1 ? "BEFORE" : "AFTER", cond, sel < 4 ? " AND NEW.state = '" : "",
                 sel < 4 ? ost[sel] : "", sel < 4 ? "'" : "", r);
        g.out_trig_tags |= 1 << tag;
        break;
    case 2:
        snprintf(sql, sizeof sql,
                 "CREATE TRIGGER fz%d BEFORE UPDATE ON inbound_messages WHEN %s%s%s%s BEGIN SELECT "
                 "RAISE(%s); END",
                 slot, cond, sel < 2 ? " AND NEW.state = '" : "", sel < 2 ? ist[sel] : "",
                 sel < 2 ? "'" : "", r);
        g.in_trig_tags |= 1 << tag;
        break;
    case 3:
        snprintf(sql, sizeof sql,
                 "CREATE TRIGGER fz%d BEFORE INSERT ON inbound_messages WHEN NEW.src_port = %d "
                 "BEGIN SELECT RAISE(%s); END",
                 slot, PEER_PORT + tag % 3, r);
        break;
    default:
        snprintf(sql, sizeof sql,
                 "CREATE TRIGGER fz%d AFTER INSERT ON inbound_messages WHEN %s BEGIN SELECT "
                 "RAISE(%s); END",
                 slot, cond, r);
        break;
    }
    if (sqlite3_exec(g.raw, sql, NULL, NULL, NULL) == SQLITE_OK)
        g.trig[slot] = 1;
}

/* Remembers when inbound rows with these ids were deleted (their ACK retries may go on). */
static void note_inbound_deletes(const char *where)
{
    char sql[256];
    sqlite3_stmt *s = NULL;
    snprintf(sql, sizeof sql, "SELECT message_id FROM inbound_messages WHERE %s", where);
    if (sqlite3_prepare_v2(g.raw, sql, -1, &s, NULL) != SQLITE_OK)
        fail("harness: %s", sqlite3_errmsg(g.raw));
    int64_t seq = ++g.seq;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        if (id == NULL)
            continue;
        int i = 0;
        while (i < g.ndel && !same_id(g.del[i].id, id))
            i++;
        if (i == g.ndel && g.ndel < MAX_ROWS)
            snprintf(g.del[g.ndel++].id, MESSAGE_ID_LEN + 1, "%s", id);
        if (i < g.ndel)
            g.del[i].seq = seq;
    }
    sqlite3_finalize(s);
}

/* What sg-clean (default, --all-states) and sg-recv (marking read) do. */
static void op_clean(struct input *in)
{
    static const char *const inbound_where[] = {
        "state IN ('ack_sent', 'ack_failed') AND read_count > 0", "1"};
    char sql[256];
    uint8_t b = byte(in);
    switch (b % 6) {
    case 0:
    case 3:
        if (sqlite3_exec(g.raw,
                         b % 6 == 3 ? "DELETE FROM outbound_messages"
                                    : "DELETE FROM outbound_messages WHERE state IN "
                                      "('acknowledged', 'send_failed')",
                         NULL, NULL, NULL) == SQLITE_OK &&
            sqlite3_changes(g.raw) > 0)
            g.ever_out_delete = 1;
        break;
    case 1:
    case 4: {
        const char *where = inbound_where[b % 6 == 4];
        note_inbound_deletes(where);
        snprintf(sql, sizeof sql, "DELETE FROM inbound_messages WHERE %s", where);
        (void)sqlite3_exec(g.raw, sql, NULL, NULL, NULL);
        break;
    }
    case 2:
        (void)sqlite3_exec(g.raw, "UPDATE inbound_messages SET read_count = read_count + 1", NULL,
                           NULL, NULL);
        break;
    default:
        (void)sqlite3_exec(g.raw, "VACUUM", NULL, NULL, NULL); /* refused inside the lock */
    }
    note_gone();
}

static void run_op(struct input *in)
{
    static const char *const names[] = {"message",     "ack",        "replay",  "garbage", "clock",
                                        "insert",      "lock",       "trigger", "clean",   "turn",
                                        "send-errors", "recv-error", "turn"};
    uint8_t op = byte(in) % 13;
    trace("op %s", names[op]);
    switch (op) {
    case 0:
        op_message(in);
        break;
    case 1:
        op_ack(in);
        break;
    case 2:
        op_replay(in);
        break;
    case 3:
        op_garbage(in);
        break;
    case 4:
        op_clock(in);
        break;
    case 5:
        insert_outbound(in, 0);
        break;
    case 6:
        op_lock();
        break;
    case 7:
        op_trigger(in);
        break;
    case 8:
        op_clean(in);
        break;
    case 10:
        g.send_mode = byte(in);
        g.send_mode |= (unsigned)byte(in) << 8;
        break;
    case 11:
        g.recv_err = 1;
        break;
    default: { /* 9, 12: turns */
        uint8_t b = byte(in);
        for (int i = 0; i <= ((b >> 1) & 3); i++)
            turn(b & 1);
    }
    }
}

/* ---- liveness at the end: nothing owed was dropped ---- */

/*
 * settled: a turn in which the engine committed a full transaction (so it
 * wrote every change owed from the turns before it). A row a trigger could
 * refuse is left out; any other must have been written, whatever the
 * triggers did to the rows beside it (issue 8, items 5 and 6).
 */
static void check_settled(int settled)
{
    for (int i = 0; i < g.norow; i++) {
        const struct orow *o = &g.orow[i];
        if (o->gone || (o->tags & g.out_trig_tags) || o->inserted != O_PENDING)
            continue;
        if ((o->last == O_SENT || o->last == O_SENDING) && !g.ever_out_delete &&
            ack_accepted(o, 1, settled))
            fail("outbound row %lld (%s) is still '%s' after its ACK was accepted before turn %d",
                 (long long)o->rowid, o->id, ostate_name[o->last], settled);
        if (o->last == O_SENDING && o->last_send_turn < settled)
            fail("outbound row %lld is still 'sending' after turn %d's send and turn %d's commit",
                 (long long)o->rowid, o->last_send_turn, settled);
    }
    for (int i = 0; i < g.nirow; i++) {
        const struct irow *r = &g.irow[i];
        if (r->gone || r->last != I_RECEIVED || (r->tags & g.in_trig_tags))
            continue;
        for (int k = 0; k < g.nsrec; k++) {
            const struct srec *x = &g.srec[k];
            if (x->ack && x->err == 0 && same_id(x->id, r->id) && x->turn >= r->first_turn &&
                x->turn < settled)
                fail("inbound row %lld (%s) is still 'received' after its ACK was sent in turn %d "
                     "and turn %d committed",
                     (long long)r->rowid, r->id, x->turn, settled);
        }
    }
}

/* The raw connection's PRAGMA data_version: it moves when another connection commits a change. */
static int64_t data_version(void)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(g.raw, "PRAGMA data_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/*
 * The end: release the lock and run turns past any back-off until one commits
 * (the data version moves, nothing timed out) after at least one more turn;
 * then check that what was owed before that turn is in the database.
 */
static void drain(void)
{
    if (g.locked)
        op_lock();
    int settled = 0;
    for (int i = 0; i < 6 && (i < 2 || settled == 0); i++) {
        g.mono += 4000000;
        g.real += 4 * SEC_NS;
        int64_t v = data_version();
        uint64_t timeouts = engine_counters(g.e)->store_timeouts;
        turn(1);
        if (i > 0 && data_version() != v && engine_counters(g.e)->store_timeouts == timeouts)
            settled = g.turn;
    }
    if (settled > 0)
        check_settled(settled);
}

/* ---- one input ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (envelope_init() != 0 || (key = envelope_key_from_hex(FUZZ_KEY)) == NULL ||
        (wrong_key = envelope_key_from_hex(WRONG_KEY)) == NULL)
        abort();
    /* The engine warns about every drop; SG_FUZZ_ENGINE_LOG=1 shows them on stderr. */
    if (getenv("SG_FUZZ_ENGINE_LOG") == NULL && log_open("/dev/null", "fuzz_engine") != 0)
        abort();
    tracing = getenv("SG_FUZZ_ENGINE_TRACE") != NULL;
    return 0;
}

static int bind_socket(void)
{
    struct net_addr a;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof a.u;
    if (fd < 0 || net_addr_parse("127.0.0.1", 1, &a) != 0)
        fail("harness: socket: %s", strerror(errno));
    a.u.v4.sin_port = 0;
    if (bind(fd, &a.u.sa, sizeof a.u.v4) != 0 || getsockname(fd, &a.u.sa, &len) != 0)
        fail("harness: bind: %s", strerror(errno));
    g.self_port = ntohs(a.u.v4.sin_port);
    if (net_addr_parse("127.0.0.1", g.self_port, &g.self) != 0)
        abort();
    return fd;
}

static void start_engine(const char *db, struct store *st, struct config *cfg)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGPIPE};
    struct sigaction old[sizeof sigs / sizeof sigs[0]];
    char err[512];
    cfg->secret = strdup(FUZZ_KEY); /* the engine wipes and frees it */
    /*
     * The store makes its inotify watch only when engine_run polls for it
     * (store_watch_fd); engine_turn alone leaves it on its data_version checks
     * (db_event and the 1 s fallback), and spares each input the ~15 ms a watched
     * inotify fd takes to close. cfg->db only names the database in log lines.
     */
    cfg->db = strdup(db);
    cfg->address = strdup("127.0.0.1");
    if (cfg->secret == NULL || cfg->db == NULL || cfg->address == NULL)
        abort();
    cfg->port = g.self_port;
    struct engine_opts o = {.cfg = cfg, .fd = g.main_fd, .store = st, .io = &io};
    /* Keep libFuzzer's handlers: engine_turn needs none of the engine's. */
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], NULL, &old[i]);
    g.e = engine_new(&o, err, sizeof err);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &old[i], NULL);
    if (g.e == NULL)
        fail("harness: engine_new: %s", err);
}

static void free_world(void)
{
    for (int i = 0; i < g.nq; i++)
        free(g.q[i].buf);
    for (int i = 0; i < g.nknown; i++)
        free(g.known[i].buf);
    for (int i = 0; i < g.ncap; i++)
        free(g.cap[i].buf);
    for (int i = 0; i < g.ndlv; i++)
        free(g.dlv[i].json);
    sqlite3_finalize(g.q_in_count);
    sqlite3_finalize(g.q_out_by_id);
    sqlite3_close(g.raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned windows[] = {10, 1, 2, 5};
    static const unsigned max_retries[] = {3, 0, 1, 2, 5, 10, 3, 1};
    static const unsigned intervals[] = {1, 2, 5, 1};
    if (size < 2)
        return 0;
    struct input in = {data, size};
    memset(&g, 0, sizeof g);
    uint8_t c = byte(&in);
    struct config cfg = {0};
    cfg.window = g.window = windows[c & 3];
    cfg.max_retries = g.max_retries = max_retries[(c >> 2) & 7];
    cfg.retry_interval = intervals[(c >> 5) & 3];
    cfg.rate_limit = c & 0x80 ? 2 : 0;
    cfg.rate_burst = c & 0x80 ? 3 : 0;
    /* the defaults of the settings of messages in parts (the shared secret's timer stays fixed) */
    cfg.retry_policy = RETRY_AUTO;
    cfg.retry_min_ms = 100;
    cfg.retry_max_ms = 60000;
    cfg.max_message = 1u << 20;
    cfg.mtu = 1280;
    cfg.reassembly_memory = 64ul << 20;
    g.mono = MONO_START_US;
    g.real = FUZZ_NOW_NS;

    char db[96], err[512];
    snprintf(dir, sizeof dir, "%s/sg-fuzz-engine-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(dir) == NULL)
        fail("harness: mkdtemp: %s", strerror(errno));
    snprintf(db, sizeof db, "%s/fz.db", dir);
    struct store *st = NULL;
    if (store_open(db, STORE_CREATE, BUSY_MS, &st, err, sizeof err) != STORE_OK)
        fail("harness: store_open: %s", err);
    if (sqlite3_open_v2(db, &g.raw, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(g.raw, "SELECT count(*) FROM inbound_messages WHERE message_id = ?1", -1,
                           &g.q_in_count, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(g.raw,
                           "SELECT id, state, dst_addr, dst_port, payload FROM outbound_messages "
                           "WHERE message_id = ?1",
                           -1, &g.q_out_by_id, NULL) != SQLITE_OK)
        fail("harness: the raw connection: %s", sqlite3_errmsg(g.raw));

    /* Rows as a crash left them; then the engine, and its first turn (recovery). */
    g.main_fd = bind_socket();
    int pre = byte(&in) % 8;
    for (int i = 0; i < pre; i++) {
        if (byte(&in) & 1)
            insert_outbound(&in, 1);
        else
            insert_inbound(&in);
    }
    start_engine(db, st, &cfg);
    turn(0);

    for (int i = 0; i < MAX_OPS && more(&in); i++)
        run_op(&in);

    drain();

    engine_free(g.e);
    config_clear(&cfg);
    free_world();
    remove_dir(dir);
    dir[0] = '\0';
    return 0;
}
