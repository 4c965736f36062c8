/*
 * journal: the state changes the daemon owes the database, and the rows the
 * database refused.
 *
 * What sending changes (sent, ack_sent, ...) is not needed in the database
 * before the next turn (docs/design.md, "Why a journal"), so it is written
 * down here and applied at the start of the next transaction
 * (journal_apply), then forgotten once that transaction committed
 * (journal_committed), or kept for the next one if it did not
 * (journal_undo). ACKs are journaled only for messages in flight and sends
 * happen only after a commit, so the capacity the engine gives it is never
 * reached: a change is never dropped while its message is forgotten.
 *
 * Every result of a store call inside the transaction goes through
 * journal_result, which counts it and says whether to go on, skip the one
 * row, or abort the turn. A row the database refused is remembered
 * (journal_poison) so that a redone turn does not try it again, and may be
 * left out of every later claim (journal_skip, written to the store outside
 * the transaction by journal_prepare).
 */
#ifndef SG_JOURNAL_H
#define SG_JOURNAL_H

#include "daemon/counters.h"
#include "store/store.h"
#include "util/log.h"
#include "wire/message.h"

#include <stdint.h>

#define JOURNAL_POISON_MAX 256 /* refused rows remembered across turns (a ring) */
#define JOURNAL_SKIP_MAX 1024  /* rows to leave out of claims, written after the turn */

enum journal_kind {
    JOURNAL_ACKED,        /* outbound row rowid was acknowledged */
    JOURNAL_ACK_SENT,     /* the ACK of inbound message id was sent */
    JOURNAL_ACK_SENT_ROW, /* the ACK of inbound row rowid (just stored) was sent */
    JOURNAL_ACK_FAILED,   /* the ACK of inbound message id cannot be sent */
    JOURNAL_SENT,         /* outbound row rowid was sent (retries, why: a transient error) */
    JOURNAL_FAILED        /* outbound row rowid failed (retries, why) */
};

/* A database change owed: applied at the start of the next transaction. */
struct journal_job {
    uint8_t kind; /* enum journal_kind */
    uint8_t dead; /* the database refused it: skipped, forgotten at the next commit */
    char id[MESSAGE_ID_LEN + 1];
    int64_t rowid, retries;
    char *why; /* malloc'd or NULL */
};

/* The stage at which the database refused a row's change. */
enum journal_stage {
    JOURNAL_REFUSED_UPDATE = 1, /* its claim or retransmission update */
    JOURNAL_REFUSED_FAIL,       /* even send_failed */
    JOURNAL_TAKE_ALONE          /* left out of a set claim: claimed on its own, which says why */
};

struct journal {
    struct store *st;   /* borrowed */
    struct counters *c; /* borrowed: store_refused, store_errors, store_timeouts, acks_unmatched */
    struct journal_job *jobs;
    int n, cap;
    /* journal_apply's arguments for one kind of change, cap each: preallocated */
    int *idx;
    int64_t *rowids;
    const char **ids;
    struct store_sent *rows;
    int applied;     /* jobs[0..applied) were applied in the open transaction */
    int redo;        /* a refusal ended the transaction: the turn is redone without that row */
    uint64_t failed; /* rows marked send_failed in the open transaction (tx counts them) */
    struct {
        int64_t rowid;
        uint8_t stage; /* enum journal_stage */
    } poison[JOURNAL_POISON_MAX];
    int npoison, poison_next;
    int64_t skips[JOURNAL_SKIP_MAX];
    int nskips;
    int64_t outage_since, outage_told; /* CLOCK_MONOTONIC ms: every call failing since; told */
    uint64_t outage_failures;          /* calls failed in it */
    struct log_limiter lim_store;      /* "database warnings" */
    struct log_limiter lim_rows;       /* "warnings about rows": refusals, failures of one row */
};

/*
 * Sets up an empty journal of cap jobs over st, counting into c (both
 * borrowed). Returns 0, or -1 if out of memory (j is then safe to
 * journal_fini).
 */
__attribute__((warn_unused_result)) int journal_init(struct journal *j, struct store *st,
                                                     struct counters *c, int cap);

/* Frees the jobs (what is owed is lost: call it at exit). A zeroed j is fine. */
void journal_fini(struct journal *j);

/*
 * Owes one change (id and why are copied; either may be NULL). Returns 0, or
 * -1 if the journal is full (never, by its bound; logged, and the caller
 * keeps its own state).
 */
int journal_add(struct journal *j, enum journal_kind kind, const char *id, int64_t rowid,
                int64_t retries, const char *why);

/*
 * Judges one statement's result inside the transaction; what names the
 * statement for the log ("record a state change"). Returns 1 done; 0 the
 * database refused this one row (counted in store_refused; the caller skips
 * it and says which; if the refusal ended the transaction, j->redo is set and
 * the caller must abort the turn so that it is redone without that row); -1
 * abort the turn (busy, timed out, or a fault of the whole database: counted,
 * logged with a limit, tried again later).
 */
int journal_result(struct journal *j, enum store_rc rc, const char *what);

/*
 * Inside the open transaction: applies every owed change, in order, but those
 * refused before. A change the database refuses is marked dead and logged
 * (a refused JOURNAL_FAILED also leaves its row out of claims); an ACK for a
 * row no longer 'sent' counts in acks_unmatched. Returns 0, or -1 to abort
 * the turn (see journal_result; j->redo may be set).
 */
int journal_apply(struct journal *j);

/*
 * Inside the transaction: marks outbound row send_failed now, with retries
 * and why, and logs it (limited). If the database refuses even that (now or
 * before), the row is left as it is, poisoned and out of later claims, and
 * the log says so. Returns 1 marked (counted in j->failed); 0 not marked
 * (j->redo may be set: then abort the turn); -1 abort the turn.
 */
int journal_fail_row(struct journal *j, const struct store_outbound_row *row, int64_t retries,
                     const char *why);

/*
 * Inside the transaction: fails the pending rows to dest (or, if peer is not
 * NULL, the rows that name that peer) older than older_than_ms (a
 * destination not answering), counted in j->failed and
 * logged (limited) at now (ms). Returns 0, or -1 to abort the turn (j->redo
 * may be set).
 */
int journal_fail_backlog(struct journal *j, const struct store_dest *dest, const char *peer,
                         int64_t older_than_ms, int64_t now);

/* The transaction committed: the changes it applied are forgotten. */
void journal_committed(struct journal *j);

/* The transaction rolled back: nothing was applied; all is owed still. */
void journal_undo(struct journal *j);

/* The stage at which the database refused rowid before (enum journal_stage), or 0. */
int journal_poisoned(const struct journal *j, int64_t rowid);

/* Remembers that the database refused rowid at stage (the oldest is forgotten when full). */
void journal_poison(struct journal *j, int64_t rowid, enum journal_stage stage);

/* Leaves rowid out of every later claim (written by journal_prepare; dropped when full). */
void journal_skip(struct journal *j, int64_t rowid);

/*
 * Before a transaction, outside it (so that a rolled-back turn does not undo
 * it): hands the rows to skip to the store (store_outbound_skip; those it
 * could not take are kept for the next call), and counts the transaction's
 * failures from 0.
 */
void journal_prepare(struct journal *j);

#endif
