/*
 * counters: what the daemon has seen and done since it started, and the one
 * list (COUNTERS_LIST) that names them, in order, for every rendering: the
 * line USR1 and shutdown log, the stats file `securedgram status` prints,
 * and (later) the control socket's JSON. Pure but for counters_report.
 */
#ifndef SG_COUNTERS_H
#define SG_COUNTERS_H

#include "daemon/histo.h"
#include "wire/judge.h"

#include <stddef.h>
#include <stdint.h>

/* What happened since start. Every field is rendered through COUNTERS_LIST. */
struct counters {
    uint64_t rx;
    uint64_t verdicts[JUDGE_VERDICTS]; /* every datagram's verdict, drops by reason */
    uint64_t drop_oversize, drop_rate_limited, drop_unstored;
    uint64_t drop_refused;      /* messages the database refused (constraint, trigger) */
    uint64_t drop_own_id;       /* messages carrying the id of one of ours awaiting an ACK */
    uint64_t acks_wrong_source; /* ACKs from another address than the message went to */
    uint64_t trial_opens; /* keys tried on received datagrams (at most JUDGE_TRIALS_MAX each) */
    uint64_t stored, duplicates, acks_sent, acks_unmatched;
    uint64_t acked; /* outbound messages acknowledged (ACKs that matched one in flight) */
    uint64_t sent, retransmits, send_failed, store_errors, store_refused, store_timeouts;
    uint64_t parts_sent, part_acks_sent; /* datagrams of messages in parts */
    uint64_t drop_too_large;             /* parts of messages over SECUREDGRAM_MAX_MESSAGE */
    /* latencies, for /metrics (counters_init sets their bounds) */
    struct histo insert_to_ack;   /* a row's created_at to its ACK's arrival */
    struct histo datagram_to_ack; /* a message's datagram read to its ACK sent (after commit) */
};

/* Zeroes c and gives its histograms their bounds. */
void counters_init(struct counters *c);

/* Values read at the moment of rendering rather than counted. */
struct counters_gauges {
    size_t in_flight;            /* messages sent and awaiting their ACK */
    size_t replay_cache;         /* nonces remembered */
    uint64_t reassembly_evicted; /* incomplete messages evicted (age or memory) */
    uint64_t reassembly_refused; /* parts refused for lack of room, or that did not match */
    size_t reassembly_bytes;     /* held now */
    uint64_t db_writes;          /* statements that wrote to the database (store_write_stats) */
    uint64_t db_rows;            /* rows they inserted, updated or deleted */
};

/* The parts of the line, in order: "a=1 b=2 | dropped: c=3 ... | d=4 ... | database: e=5 f=6". */
enum counters_group {
    COUNTERS_TRAFFIC,
    COUNTERS_DROP,
    COUNTERS_FAULT,
    COUNTERS_STORE,
    COUNTERS_GROUPS
};

/*
 * Every value, in the order of the line: X(group, name, value), value an
 * expression over c (const struct counters *) and g (const struct
 * counters_gauges *). The drops by verdict (judge_name: short=, auth=, ...)
 * open the COUNTERS_DROP group, before its entries here.
 */
#define COUNTERS_LIST(X)                                                                           \
    X(COUNTERS_TRAFFIC, "rx", c->rx)                                                               \
    X(COUNTERS_TRAFFIC, "stored", c->stored)                                                       \
    X(COUNTERS_TRAFFIC, "duplicates", c->duplicates)                                               \
    X(COUNTERS_TRAFFIC, "acks_sent", c->acks_sent)                                                 \
    X(COUNTERS_TRAFFIC, "acks_received", c->verdicts[JUDGE_ACK])                                   \
    X(COUNTERS_TRAFFIC, "acknowledged", c->acked)                                                  \
    X(COUNTERS_TRAFFIC, "sent", c->sent)                                                           \
    X(COUNTERS_TRAFFIC, "retransmits", c->retransmits)                                             \
    X(COUNTERS_TRAFFIC, "send_failed", c->send_failed)                                             \
    X(COUNTERS_TRAFFIC, "in_flight", g->in_flight)                                                 \
    X(COUNTERS_TRAFFIC, "trial_opens", c->trial_opens)                                             \
    X(COUNTERS_TRAFFIC, "parts_received", c->verdicts[JUDGE_PART])                                 \
    X(COUNTERS_TRAFFIC, "parts_sent", c->parts_sent)                                               \
    X(COUNTERS_TRAFFIC, "part_acks_received", c->verdicts[JUDGE_PART_ACK])                         \
    X(COUNTERS_TRAFFIC, "part_acks_sent", c->part_acks_sent)                                       \
    X(COUNTERS_TRAFFIC, "reassembly_bytes", g->reassembly_bytes)                                   \
    X(COUNTERS_DROP, "oversize", c->drop_oversize)                                                 \
    X(COUNTERS_DROP, "rate_limited", c->drop_rate_limited)                                         \
    X(COUNTERS_DROP, "unstored", c->drop_unstored)                                                 \
    X(COUNTERS_DROP, "refused", c->drop_refused)                                                   \
    X(COUNTERS_DROP, "own_id", c->drop_own_id)                                                     \
    X(COUNTERS_DROP, "too_large", c->drop_too_large)                                               \
    X(COUNTERS_DROP, "reassembly_evicted", g->reassembly_evicted)                                  \
    X(COUNTERS_DROP, "reassembly_refused", g->reassembly_refused)                                  \
    X(COUNTERS_FAULT, "ack_unmatched", c->acks_unmatched)                                          \
    X(COUNTERS_FAULT, "ack_wrong_source", c->acks_wrong_source)                                    \
    X(COUNTERS_FAULT, "store_errors", c->store_errors)                                             \
    X(COUNTERS_FAULT, "store_refused", c->store_refused)                                           \
    X(COUNTERS_FAULT, "store_timeouts", c->store_timeouts)                                         \
    X(COUNTERS_FAULT, "replay_cache", g->replay_cache)                                             \
    X(COUNTERS_STORE, "writes", g->db_writes)                                                      \
    X(COUNTERS_STORE, "rows", g->db_rows)

/* Room for the line (it is about 1,300 characters with 20-digit values). */
#define COUNTERS_LINE_MAX 1600

/*
 * Writes the line of every counter into out (len bytes, NUL-terminated,
 * truncated if len is too small): "rx=N stored=N ... in_flight=N | dropped:
 * short=N ... own_id=N | ack_unmatched=N ... replay_cache=N". Returns its
 * length (as snprintf would: the length it needed).
 */
size_t counters_format(const struct counters *c, const struct counters_gauges *g, char *out,
                       size_t len);

/*
 * Publishes the counters: rewrites the stats file at stats_path (if not
 * NULL) as "counters: LINE\n" for `securedgram status` (statsfile_write: a
 * planted link is never followed), and if loud (USR1, shutdown) logs
 * "counters: LINE" too. status sends USR2, not loud: a monitor that runs it
 * every minute must not fill the log. A file that cannot be written is
 * logged (info) only when loud. tail (may be NULL) is written after that
 * line: the peers' lines (peertab_report), for `securedgram peers`.
 */
void counters_report(const struct counters *c, const struct counters_gauges *g,
                     const char *stats_path, int loud, const char *tail);

#endif
