/*
 * dests: the destinations of outbound messages, as the send path paces
 * them. Each has a flow window (daemon/flow.c: how many messages may be in
 * flight to it); a destination whose window is full is "blocked", and claims
 * leave its rows out (in SQL, so that however many rows wait for it they
 * cost nothing) until an ACK opens its window again. A blocked destination
 * that has not answered for as long as its retries would take has its old
 * backlog failed ("peer not answering; not sent") rather than wait for ever.
 * Pure: the caller passes the time, and writes what it learns here to the
 * store (daemon/tx.c).
 */
#ifndef SG_DESTS_H
#define SG_DESTS_H

#include "conf/config.h"
#include "store/store.h"
#include "util/net.h"

#include <stdint.h>

#define DESTS_MAX 4096 /* destinations with a flow window, and blocked at once */

struct dests_blocked; /* a destination whose window is full */

struct dests {
    struct config *cfg; /* borrowed, set before dests_init: max_retries, retry_interval (hot) */

    /* own */
    struct flow_table *flows;      /* windows of at most max_window messages */
    struct dests_blocked *blocked; /* DESTS_MAX */
    int nblocked;
    int dirty;                  /* the store's list of excluded destinations is out of date */
    struct store_dest *exclude; /* DESTS_MAX: what dests_exclusions hands out */
    const char **exclude_peers; /* DESTS_MAX: and dests_peer_exclusions */
    int nexclude_peers;
    struct store_dest silent; /* what dests_next_silent hands out */
    const char *silent_peer;  /* with it: the peer its rows name, or NULL */
};

/* Allocates the tables, windows of at most max_window. 0, or -1 (then safe to dests_fini). */
__attribute__((warn_unused_result)) int dests_init(struct dests *d, uint32_t max_window);

/* Frees the tables. A zeroed d is fine. */
void dests_fini(struct dests *d);

/*
 * How long a message may wait for a destination that does not answer: as
 * long as its retries would take, (max_retries + 1) x retry_interval (ms),
 * or SECUREDGRAM_GIVE_UP_AFTER when it is set.
 */
int64_t dests_deadline_ms(const struct dests *d);

/*
 * A message to dst left flight: acknowledged (acked 1: its window grows) or
 * given up (0). Returns 1 if dst was blocked and has room now (the caller
 * should claim again), else 0.
 */
/*
 * If dst's window has room (parts that left flight may have opened it), it is
 * blocked no more. Returns 1 if that unblocked it: the next claim may take its rows.
 */
int dests_unblock(struct dests *d, const struct net_addr *dst);

int dests_release(struct dests *d, const struct net_addr *dst, int acked);

enum dests_verdict {
    DESTS_GO,     /* it may go: counted in dst's window */
    DESTS_WAIT,   /* dst's window is full: dst is blocked, the row stays pending */
    DESTS_SILENT, /* dst has not answered for the deadline, and the row is as old: fail it */
};

/*
 * May the message of row (claimed at now, ms) go to dst (its dst_addr and
 * dst_port, parsed)? A destination with a full window is remembered as
 * blocked, so that the next claim leaves its rows out; beyond DESTS_MAX
 * blocked destinations it is not (the flow table tracks no more; an
 * untracked destination is never blocked).
 */
enum dests_verdict dests_admit(struct dests *d, const struct store_outbound_row *row,
                               const struct net_addr *dst, int64_t now);

/*
 * The destinations claims leave out, if that changed since the store last
 * took the list (dests_excluded): *n of them, valid until the next change.
 * NULL if it did not change. Rows that name a peer are left out by its name
 * instead: dests_peer_exclusions, made by the same call.
 */
const struct store_dest *dests_exclusions(struct dests *d, int *n);

/* The peers whose rows claims leave out, as the last dests_exclusions made them (*n). */
const char *const *dests_peer_exclusions(const struct dests *d, int *n);

/* The store took the list of dests_exclusions. */
void dests_excluded(struct dests *d);

/*
 * The next blocked destination, from index *i on (start at 0), that has not
 * answered for the deadline at now (ms) and whose backlog is due for a
 * check, which is then due again a retry interval later. NULL when there is
 * none left. The result is valid until the next call; d->silent_peer then
 * names the peer whose rows those are, or is NULL (rows that name an address).
 */
const struct store_dest *dests_next_silent(struct dests *d, int *i, int64_t now);

#endif
