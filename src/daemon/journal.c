/*
 * journal: owed changes, applied at the next BEGIN and forgotten at its
 * COMMIT; the store results of a transaction judged in one place; refused
 * rows remembered (poison) and left out of claims (skips); an outbound row
 * failed on the spot.
 */
#include "daemon/journal.h"

#include "daemon/sysio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int journal_init(struct journal *j, struct store *st, struct counters *c, int cap)
{
    memset(j, 0, sizeof *j);
    j->st = st;
    j->c = c;
    j->cap = cap;
    j->jobs = calloc((size_t)cap, sizeof *j->jobs);
    j->idx = calloc((size_t)cap, sizeof *j->idx);
    j->rowids = calloc((size_t)cap, sizeof *j->rowids);
    j->ids = calloc((size_t)cap, sizeof *j->ids);
    j->rows = calloc((size_t)cap, sizeof *j->rows);
    return j->jobs != NULL && j->idx != NULL && j->rowids != NULL && j->ids != NULL &&
                   j->rows != NULL
               ? 0
               : -1;
}

/* Forgets the first n jobs (they are in the database now, or skipped). */
static void forget(struct journal *j, int n)
{
    for (int i = 0; i < n; i++)
        free(j->jobs[i].why);
    memmove(j->jobs, j->jobs + n, (size_t)(j->n - n) * sizeof *j->jobs);
    j->n -= n;
}

void journal_fini(struct journal *j)
{
    if (j->jobs != NULL)
        forget(j, j->n);
    free(j->jobs);
    free(j->idx);
    free(j->rowids);
    free(j->ids);
    free(j->rows);
    j->jobs = NULL;
    j->idx = NULL;
    j->rowids = NULL;
    j->ids = NULL;
    j->rows = NULL;
    j->n = j->applied = 0;
}

int journal_add(struct journal *j, enum journal_kind kind, const char *id, int64_t rowid,
                int64_t retries, const char *why)
{
    if (j->n >= j->cap) {
        log_warn_limited(&j->lim_store, sysio_mono_ms(), "too many database changes waiting");
        return -1;
    }
    struct journal_job *job = &j->jobs[j->n++];
    job->kind = (uint8_t)kind;
    job->dead = 0;
    size_t len = id != NULL ? strnlen(id, MESSAGE_ID_LEN) : 0;
    memcpy(job->id, id != NULL ? id : "", len);
    job->id[len] = '\0';
    job->rowid = rowid;
    job->retries = retries;
    job->why = why != NULL ? strdup(why) : NULL;
    return 0;
}

/*
 * An outage (the database failing every call: a server restarting, a lock
 * held by a tool) is logged when it starts, again every OUTAGE_REMIND_MS
 * while it lasts, and when it ends: not once per retry.
 */
#define OUTAGE_REMIND_MS (5 * 60 * 1000)

static void outage_failed(struct journal *j, const char *what)
{
    int64_t now = sysio_mono_ms();
    j->outage_failures++;
    if (j->outage_since == 0) {
        j->outage_since = j->outage_told = now;
        log_warn("database: cannot %s: %s; retrying (told again when it works, or in 5 "
                 "minutes)",
                 what, store_errmsg(j->st));
    } else if (now - j->outage_told >= OUTAGE_REMIND_MS) {
        j->outage_told = now;
        log_warn("database: failing for %lld s (%llu attempts): cannot %s: %s; retrying",
                 (long long)((now - j->outage_since) / 1000),
                 (unsigned long long)j->outage_failures, what, store_errmsg(j->st));
    }
}

static void outage_over(struct journal *j)
{
    if (j->outage_since == 0)
        return;
    int64_t ms = sysio_mono_ms() - j->outage_since;
    log_info("database: working again after %lld.%01lld s (%llu failed attempts)",
             (long long)(ms / 1000), (long long)(ms % 1000 / 100),
             (unsigned long long)j->outage_failures);
    j->outage_since = j->outage_told = 0;
    j->outage_failures = 0;
}

int journal_result(struct journal *j, enum store_rc rc, const char *what)
{
    if (rc == STORE_OK) {
        outage_over(j);
        return 1;
    }
    if (rc == STORE_REFUSED || rc == STORE_DUP) {
        j->c->store_refused++;
        if (store_tx_aborted(j->st))
            j->redo = 1;
        return 0;
    }
    j->c->store_errors++;
    if (store_timed_out(j->st))
        j->c->store_timeouts++;
    outage_failed(j, what);
    return -1;
}

static const char *const job_names[] = {[JOURNAL_ACKED] = "its acknowledgement",
                                        [JOURNAL_ACK_SENT] = "that its ACK was sent",
                                        [JOURNAL_ACK_SENT_ROW] = "that its ACK was sent",
                                        [JOURNAL_ACK_FAILED] = "that its ACK failed",
                                        [JOURNAL_SENT] = "that it was sent",
                                        [JOURNAL_FAILED] = "that it failed"};

/*
 * The jobs of one kind, jobs[idx[0..n)], as one store call (one statement
 * where the backend can). *done gets the rows applied before a failure;
 * *matched (ACKED) how many rows were waiting for their ACK.
 */
static enum store_rc apply_kind(struct journal *j, int kind, const int *idx, int n, int *done,
                                int *matched)
{
    for (int k = 0; k < n; k++) { /* the arguments this kind takes */
        const struct journal_job *job = &j->jobs[idx[k]];
        if (kind == JOURNAL_ACKED || kind == JOURNAL_ACK_SENT_ROW)
            j->rowids[k] = job->rowid;
        else if (kind == JOURNAL_ACK_SENT || kind == JOURNAL_ACK_FAILED)
            j->ids[k] = job->id;
        else
            j->rows[k] = (struct store_sent){job->rowid, job->retries, job->why};
    }
    int64_t now = sysio_real_ms();
    switch (kind) {
    case JOURNAL_ACKED:
        return store_outbound_acked(j->st, j->rowids, n, now, matched, done);
    case JOURNAL_ACK_SENT:
        return store_inbound_ack_sent(j->st, j->ids, n, now, done);
    case JOURNAL_ACK_SENT_ROW:
        return store_inbound_ack_sent_rows(j->st, j->rowids, n, now, done);
    case JOURNAL_ACK_FAILED:
        return store_inbound_ack_failed(j->st, j->ids, n, now, done);
    case JOURNAL_SENT:
        return store_outbound_sent(j->st, j->rows, n, now, done);
    default:
        return store_outbound_failed(j->st, j->rows, n, now, done);
    }
}

/*
 * The order kinds are applied in. A row's changes keep their order (a
 * transient send error's SENT comes before that row's ACKED or FAILED; no
 * row has both of those, as either takes it out of flight), and of two ACKs
 * of one message, one sent and one failed, the sent one wins.
 */
static const uint8_t apply_order[] = {JOURNAL_SENT,     JOURNAL_ACKED,        JOURNAL_FAILED,
                                      JOURNAL_ACK_SENT, JOURNAL_ACK_SENT_ROW, JOURNAL_ACK_FAILED};

/* The database refused one job: it is skipped from now on, and the log says so. */
static void refused(struct journal *j, struct journal_job *job)
{
    job->dead = 1;
    if (job->kind == JOURNAL_ACKED || job->kind == JOURNAL_SENT || job->kind == JOURNAL_FAILED)
        log_warn_limited(&j->lim_rows, sysio_mono_ms(),
                         "outbound row %lld: the database refused to record %s (%s); "
                         "the row is left as it is",
                         (long long)job->rowid, job_names[job->kind], store_errmsg(j->st));
    else
        log_warn_limited(&j->lim_rows, sysio_mono_ms(),
                         "inbound message %s: the database refused to record %s (%s)", job->id,
                         job_names[job->kind], store_errmsg(j->st));
    if (job->kind == JOURNAL_FAILED)
        journal_skip(j, job->rowid);
}

/* Applies the jobs of one kind. 0, or -1 to abort the turn. */
static int apply_all(struct journal *j, int kind)
{
    int n = 0;
    for (int i = 0; i < j->n; i++)
        if (j->jobs[i].kind == kind && !j->jobs[i].dead)
            j->idx[n++] = i;
    for (int at = 0; at < n;) {
        int done = 0, matched = 0;
        enum store_rc rc = apply_kind(j, kind, j->idx + at, n - at, &done, &matched);
        int goes_on = rc == STORE_OK || rc == STORE_REFUSED || rc == STORE_DUP;
        if (kind == JOURNAL_ACKED && goes_on && matched < done)
            j->c->acks_unmatched += (uint64_t)(done - matched); /* of the rows it applied */
        if (rc == STORE_OK)
            return 0;
        int r = journal_result(j, rc, "record a state change");
        if (r < 0)
            return -1;
        refused(j, &j->jobs[j->idx[at + done]]); /* the row it stopped at */
        if (j->redo)
            return -1;
        at += done + 1;
    }
    return 0;
}

int journal_apply(struct journal *j)
{
    for (size_t k = 0; k < sizeof apply_order; k++)
        if (apply_all(j, apply_order[k]) != 0)
            return -1;
    j->applied = j->n;
    return 0;
}

int journal_fail_row(struct journal *j, const struct store_outbound_row *row, int64_t retries,
                     const char *why)
{
    if (journal_poisoned(j, row->rowid) == JOURNAL_REFUSED_FAIL)
        return 0;
    struct store_sent failed = {row->rowid, retries, why};
    int r = journal_result(j, store_outbound_failed(j->st, &failed, 1, sysio_real_ms(), NULL),
                           "mark a row send_failed");
    if (r == 0) {
        journal_poison(j, row->rowid, JOURNAL_REFUSED_FAIL);
        journal_skip(j, row->rowid);
        log_warn_limited(&j->lim_rows, sysio_mono_ms(),
                         "outbound row %lld to %.64s port %.32s: cannot be marked send_failed "
                         "(%s): the database refuses (%s); left out until a restart",
                         (long long)row->rowid, row->dst_addr, row->dst_port_text, why,
                         store_errmsg(j->st));
    } else if (r > 0 && row->peer != NULL) {
        j->failed++;
        log_warn_limited(&j->lim_rows, sysio_mono_ms(),
                         "outbound row %lld (message_id %s) to peer %.64s: send_failed: %s",
                         (long long)row->rowid, row->message_id != NULL ? row->message_id : "none",
                         row->peer, why);
    } else if (r > 0) {
        j->failed++;
        log_warn_limited(&j->lim_rows, sysio_mono_ms(),
                         "outbound row %lld (message_id %s) to %.64s port %.32s: send_failed: %s",
                         (long long)row->rowid, row->message_id != NULL ? row->message_id : "none",
                         row->dst_addr, row->dst_port_text, why);
    }
    return r;
}

int journal_fail_backlog(struct journal *j, const struct store_dest *dest, const char *peer,
                         int64_t older_than_ms, int64_t now)
{
    int n = 0;
    const char *why = "peer not answering; not sent";
    int r = journal_result(
        j,
        peer != NULL
            ? store_outbound_expire_peer(j->st, peer, older_than_ms, why, sysio_real_ms(), &n)
            : store_outbound_expire(j->st, dest, older_than_ms, why, sysio_real_ms(), &n),
        "fail the backlog of a peer not answering");
    if (r < 0 || j->redo)
        return -1;
    if (n > 0 && peer != NULL) {
        j->failed += (uint64_t)n;
        log_warn_limited(&j->lim_rows, now,
                         "%d outbound rows to peer %s: send_failed: peer not answering; not sent",
                         n, peer);
    } else if (n > 0) {
        j->failed += (uint64_t)n;
        log_warn_limited(&j->lim_rows, now,
                         "%d outbound rows to %s port %lld: send_failed: peer not answering; "
                         "not sent",
                         n, dest->addr, (long long)dest->port);
    }
    return 0;
}

void journal_committed(struct journal *j)
{
    forget(j, j->applied);
    j->applied = 0;
}

void journal_undo(struct journal *j)
{
    j->applied = 0;
}

int journal_poisoned(const struct journal *j, int64_t rowid)
{
    for (int i = 0; i < j->npoison; i++)
        if (j->poison[i].rowid == rowid)
            return j->poison[i].stage;
    return 0;
}

void journal_poison(struct journal *j, int64_t rowid, enum journal_stage stage)
{
    for (int i = 0; i < j->npoison; i++)
        if (j->poison[i].rowid == rowid) {
            j->poison[i].stage = (uint8_t)stage;
            return;
        }
    int at = j->npoison < JOURNAL_POISON_MAX ? j->npoison++ : j->poison_next++ % JOURNAL_POISON_MAX;
    j->poison[at].rowid = rowid;
    j->poison[at].stage = (uint8_t)stage;
}

void journal_skip(struct journal *j, int64_t rowid)
{
    if (j->nskips < JOURNAL_SKIP_MAX)
        j->skips[j->nskips++] = rowid;
}

void journal_prepare(struct journal *j)
{
    j->failed = 0;
    int kept = 0;
    for (int i = 0; i < j->nskips; i++)
        if (store_outbound_skip(j->st, &j->skips[i], 1) != STORE_OK)
            j->skips[kept++] = j->skips[i];
    j->nskips = kept;
}
