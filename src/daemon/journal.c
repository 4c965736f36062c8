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
    return j->jobs != NULL ? 0 : -1;
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
    j->jobs = NULL;
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
    snprintf(job->id, sizeof job->id, "%s", id != NULL ? id : "");
    job->rowid = rowid;
    job->retries = retries;
    job->why = why != NULL ? strdup(why) : NULL;
    return 0;
}

int journal_result(struct journal *j, enum store_rc rc, const char *what)
{
    if (rc == STORE_OK)
        return 1;
    if (rc == STORE_REFUSED || rc == STORE_DUP) {
        j->c->store_refused++;
        if (store_tx_aborted(j->st))
            j->redo = 1;
        return 0;
    }
    j->c->store_errors++;
    if (store_timed_out(j->st))
        j->c->store_timeouts++;
    log_warn_limited(&j->lim_store, sysio_mono_ms(), "database: cannot %s: %s; will retry", what,
                     store_errmsg(j->st));
    return -1;
}

static const char *const job_names[] = {[JOURNAL_ACKED] = "its acknowledgement",
                                        [JOURNAL_ACK_SENT] = "that its ACK was sent",
                                        [JOURNAL_ACK_FAILED] = "that its ACK failed",
                                        [JOURNAL_SENT] = "that it was sent",
                                        [JOURNAL_FAILED] = "that it failed"};

static enum store_rc apply_job(struct journal *j, const struct journal_job *job, int *matched)
{
    const char *id = job->id;
    struct store_sent row = {job->rowid, job->retries, job->why};
    int64_t now = sysio_real_ms();
    switch (job->kind) {
    case JOURNAL_ACKED:
        return store_outbound_acked(j->st, &job->rowid, 1, now, matched);
    case JOURNAL_ACK_SENT:
        return store_inbound_ack_sent(j->st, &id, 1, now, NULL);
    case JOURNAL_ACK_FAILED:
        return store_inbound_ack_failed(j->st, &id, 1, now, NULL);
    case JOURNAL_SENT:
        return store_outbound_sent(j->st, &row, 1, now, NULL);
    default:
        return store_outbound_failed(j->st, &row, 1, now, NULL);
    }
}

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

int journal_apply(struct journal *j)
{
    for (int i = 0; i < j->n; i++) {
        struct journal_job *job = &j->jobs[i];
        int matched = 1;
        if (job->dead)
            continue;
        int r = journal_result(j, apply_job(j, job, &matched), "record a state change");
        if (r < 0)
            return -1;
        if (r == 0) {
            refused(j, job);
            if (j->redo)
                return -1;
        } else if (job->kind == JOURNAL_ACKED && !matched) {
            j->c->acks_unmatched++;
        }
    }
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
    } else if (r > 0) {
        j->failed++;
        log_warn_limited(&j->lim_rows, sysio_mono_ms(),
                         "outbound row %lld (message_id %s) to %.64s port %.32s: send_failed: %s",
                         (long long)row->rowid, row->message_id != NULL ? row->message_id : "none",
                         row->dst_addr, row->dst_port_text, why);
    }
    return r;
}

int journal_fail_backlog(struct journal *j, const struct store_dest *dest, int64_t older_than_ms,
                         int64_t now)
{
    int n = 0;
    int r =
        journal_result(j,
                       store_outbound_expire(j->st, dest, older_than_ms,
                                             "peer not answering; not sent", sysio_real_ms(), &n),
                       "fail the backlog of a peer not answering");
    if (r < 0 || j->redo)
        return -1;
    if (n > 0) {
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
