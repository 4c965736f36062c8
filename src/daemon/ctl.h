/*
 * ctl: what the control socket's clients may ask (the transport is
 * daemon/ctlsock.c). One JSON object a line each way; every request is
 * answered with one line, {"ok": true, ...} or {"ok": false, "error": "..."}.
 * A line that is not a JSON object with a known "op" is answered with an
 * error and the connection is closed.
 *
 *   {"op": "status"}     everything the daemon knows (docs: securedgram(8),
 *                        CONTROL SOCKET): version, uptime, pid, the settings
 *                        (never a secret or key), every counter and drop
 *                        reason, queue depths by table and state, the number
 *                        in flight, the peers, the store's health
 *   {"op": "report"}     the counters line USR1 logs ("counters") and the
 *                        per-peer lines ("peers") `securedgram peers` joins
 *                        with the peers file: what the stats file holds
 *   {"op": "subscribe"}  from now on, {"event": "changed", "committed_ns": N}
 *                        after each commit that wrote rows (sg-send --wait,
 *                        sg-recv --follow); N: when it committed, ns since the
 *                        epoch
 *   {"op": "wake"}       look at the database now (a program that inserted
 *                        rows where there is no inotify)
 *   {"op": "metrics"}    {"text": "..."}: what /metrics serves, the
 *                        Prometheus text format (daemon/ctl_metrics.c)
 *
 * Only "wake" changes anything, and what it does is what a new row does
 * anyway. Who may connect is who may open the socket (mode 0660: the
 * service user, its group, and root).
 */
#ifndef SG_CTL_H
#define SG_CTL_H

#include "store/store.h"

#include <stddef.h>

struct engine;

/* The queue's rows by state are counted at most this often; status and /metrics share them. */
#define CTL_QUEUE_CACHE_MS 1000

/*
 * table's rows by state (store_count_states), counted again only if the
 * last count is older than CTL_QUEUE_CACHE_MS: a scraper that asks without
 * pause costs one scan of the state index a second. The array stays the
 * engine's. Returns STORE_OK, or what the count returned (busy: unknown).
 */
enum store_rc ctl_queue_counts(struct engine *e, enum store_table table,
                               const struct store_state_count **v, size_t *n);

/* /metrics' text (malloc'd, *len bytes, NUL after), or NULL if memory ran out. */
char *ctl_metrics_text(struct engine *e, size_t *len);

/* Frees what ctl keeps (the queue counts). */
void ctl_free(struct engine *e);

/* After the loop's poll: accepts, reads and answers the control socket's and /metrics' clients. */
void ctl_service(struct engine *e);

/* After a turn: tells subscribers if it committed rows. */
void ctl_tell(struct engine *e);

#endif
