/*
 * engine: the daemon's event loop. One thread, one poll(): datagrams are
 * handled as they arrive, rows other processes commit are noticed through
 * the store's watch (store_watch_fd, store_poll), and retransmissions run
 * from an in-memory timer heap. No fixed sleeps.
 *
 * Every database write of one turn of the loop goes into one transaction.
 * A message is ACKed only after the transaction that stored it committed.
 *
 * The engine never reads a file: on HUP engine_run returns ENGINE_RELOAD,
 * the caller reads the configuration again and hands over what may change
 * while running (engine_set_hot), and calls engine_run again.
 */
#ifndef SG_ENGINE_H
#define SG_ENGINE_H

#include "conf/config.h"
#include "daemon/counters.h"
#include "store/store.h"
#include "util/net.h"

#include <stddef.h>
#include <stdint.h>

struct engine;
struct envelope_key; /* wire/envelope.h */
struct ctlsock;      /* daemon/ctlsock.h */
struct httpsrv;      /* daemon/httpsrv.h */

/*
 * The clocks and socket calls the engine uses. Any member left NULL (or io
 * itself NULL) is the real one: CLOCK_MONOTONIC, CLOCK_REALTIME,
 * net_recv_batch, net_send_batch. The fuzzer and tests substitute doubles.
 */
struct engine_io {
    void *ctx;
    int64_t (*mono_us)(void *ctx);
    uint64_t (*real_ns)(void *ctx);
    int (*recv_batch)(void *ctx, int fd, struct net_dgram *d, int n);
    int (*send_batch)(void *ctx, int fd, struct net_dgram *d, int n);
};

struct engine_opts {
    struct config *cfg;  /* running config (borrowed); engine_set_hot changes it */
    int fd;              /* the bound UDP socket (the engine closes it) */
    struct store *store; /* open database (the engine closes it) */
    struct ctlsock *ctl; /* the control socket (daemon/ctlsock.h), or NULL; the engine closes it */
    struct httpsrv *metrics;    /* /metrics (daemon/httpsrv.h), or NULL; the engine closes it */
    const char *stats_path;     /* where USR1 and USR2 leave the counters, or NULL */
    const struct engine_io *io; /* NULL: the real clocks and sockets */
};

/* What a reload may change in a running engine; everything else takes a restart. */
struct engine_hot {
    unsigned window; /* seconds */
    unsigned max_retries;
    unsigned give_up_after;  /* seconds; 0: max_retries decides */
    unsigned retry_interval; /* seconds */
    enum config_retry_policy retry_policy;
    unsigned retry_min_ms, retry_max_ms;
    unsigned max_message, mtu;       /* bytes */
    unsigned long reassembly_memory; /* bytes */
    unsigned rate_limit;             /* messages per second per sender address; 0: no limit */
    unsigned rate_burst;
    const struct peers_conf *peers; /* the peers file as read again (NULL: none) */
    const uint8_t *master;          /* its master secret, or NULL */
};

/* engine_run's result when a HUP asks for a reload. */
#define ENGINE_RELOAD 1

/*
 * Sets up the engine: the key (from o->cfg->secret, whose hex text is then
 * wiped and freed; none if it is NULL), the peers (from o->cfg->peers, which
 * is then wiped and freed, with the master secret), buffers, the in-flight table, signal handling
 * and the database watch, and runs crash recovery (sending -> pending). Takes ownership of o->fd,
 * o->store, o->ctl and o->metrics even on failure. Returns NULL with the reason in err.
 */
__attribute__((warn_unused_result)) struct engine *engine_new(const struct engine_opts *o,
                                                              char *err, size_t errlen);

/*
 * One turn of the loop without waiting: what engine_run does after each
 * wake-up (db_event: the database watch fired). Returns 0, or -1 if the
 * engine must stop (its database is gone). For the fuzzer and tests.
 */
int engine_turn(struct engine *e, int db_event);

/*
 * Runs until TERM, INT or QUIT, then records what is owed and returns 0.
 * Returns ENGINE_RELOAD when a HUP came: the caller re-reads its
 * configuration, calls engine_set_hot if it is good (and keeps the running
 * one if not), and calls engine_run again, which goes on where it stopped
 * (the counters signals and the turn of that wake-up come next). Returns
 * -1 if the engine must stop (poll failed, or the database is gone).
 */
int engine_run(struct engine *e);

/*
 * Puts validated hot values, the peers and a new shared key in force at once
 * (the caller has checked them; the running config is updated). The peers
 * are applied per peer (peertab_apply: those unchanged keep their state);
 * if that fails, nothing changes and -1 is returned with one line in err.
 * Takes ownership of key (NULL: no shared secret any more) either way; the
 * old key is wiped and freed. Returns 0.
 */
__attribute__((warn_unused_result)) int engine_set_hot(struct engine *e,
                                                       const struct engine_hot *hot,
                                                       struct envelope_key *key, char *err,
                                                       size_t errlen);

/* Frees everything (closes the socket and the database); NULL is fine. */
void engine_free(struct engine *e);

/* Peers in force. */
int engine_peer_count(const struct engine *e);

/* The counters so far. */
const struct counters *engine_counters(const struct engine *e);

#endif
