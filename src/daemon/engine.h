/*
 * engine: the daemon's event loop. One thread, one poll(): datagrams are
 * handled as they arrive, rows other processes commit are noticed through
 * the store's watch (store_watch_fd, store_poll), and retransmissions run
 * from an in-memory timer heap. No fixed sleeps.
 *
 * Every database write of one turn of the loop goes into one transaction.
 * A message is ACKed only after the transaction that stored it committed.
 */
#ifndef SG_ENGINE_H
#define SG_ENGINE_H

#include "conf/config.h"
#include "wire/judge.h"
#include "util/net.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

struct engine;

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
    struct config *cfg;             /* running config; hot values change on HUP */
    const struct config_raw *flags; /* command-line values, kept across reloads */
    const char *env_path;           /* absolute path of the .env file */
    const char *cwd;                /* for relative paths on reload */
    int fd;                         /* the bound UDP socket (the engine closes it) */
    struct store *store;            /* open database (the engine closes it) */
    const char *stats_path;         /* where USR1 leaves the counters, or NULL */
    const struct engine_io *io;     /* NULL: the real clocks and sockets */
};

/* What happened since start (shown on USR1). */
struct engine_counters {
    uint64_t rx;
    uint64_t verdicts[JUDGE_VERDICTS]; /* every datagram's verdict, drops by reason */
    uint64_t drop_oversize, drop_rate_limited, drop_unstored;
    uint64_t drop_refused;      /* messages the database refused (constraint, trigger) */
    uint64_t drop_own_id;       /* messages carrying the id of one of ours awaiting an ACK */
    uint64_t acks_wrong_source; /* ACKs from another address than the message went to */
    uint64_t stored, duplicates, acks_sent, acks_unmatched;
    uint64_t sent, retransmits, send_failed, store_errors, store_refused, store_timeouts;
};

/*
 * Sets up the engine: key, buffers, the in-flight table, signal handling and
 * the database watch, and runs crash recovery (sending -> pending). Takes
 * ownership of o->fd and o->store even on failure. Returns NULL with the
 * reason in err.
 */
__attribute__((warn_unused_result)) struct engine *engine_new(const struct engine_opts *o,
                                                              char *err, size_t errlen);

/*
 * One turn of the loop without waiting: what engine_run does after each
 * wake-up (db_event: the database watch fired). Returns 0, or -1 if the
 * engine must stop (its database is gone). For the fuzzer and tests.
 */
int engine_turn(struct engine *e, int db_event);

/* Runs until TERM, INT or QUIT. Returns 0 after a clean shutdown. */
int engine_run(struct engine *e);

/* Frees everything (closes the socket and the database); NULL is fine. */
void engine_free(struct engine *e);

/* The counters so far. */
const struct engine_counters *engine_counters(const struct engine *e);

#endif
