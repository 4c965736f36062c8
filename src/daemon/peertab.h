/*
 * peertab: the running daemon's peers (securedgram-peers(5)). Built from a
 * parsed peers file and this host's name; holds each peer's keys in guarded
 * memory, finds a version 2 key by its id in one look-up of a keyed table,
 * the version 1 candidates of a source address by longest prefix
 * (util/prefixes) and the peer at an endpoint (for rows that name an
 * address), and keeps each peer's own state: replay cache, rate-limit
 * bucket, the endpoint learned by roaming, when it was last heard, and its
 * counters.
 *
 * A peer lives in a slot, and keeps it across reloads for as long as its name
 * stays in the file; a slot's generation changes when its peer is removed,
 * so what refers to a peer by (slot, generation) sees it gone.
 */
#ifndef SG_PEERTAB_H
#define SG_PEERTAB_H

#include "conf/peers.h"
#include "daemon/ratelimit.h"
#include "util/net.h"
#include "wire/envelope.h"
#include "wire/judge.h"

#include <stddef.h>
#include <stdint.h>

#define PEERTAB_ID_BYTES 8

struct replay;

/* What one peer did, for `securedgram peers`. */
struct peer_stats {
    uint64_t stored, duplicates, acked; /* messages stored, stored again, ours it acknowledged */
    uint64_t verdicts[JUDGE_VERDICTS];  /* its authenticated datagrams' verdicts, drops by reason */
    uint64_t rate_limited;
    uint64_t last_seen_ns; /* CLOCK_REALTIME of its last authenticated datagram; 0: never */
};

struct peer {
    char name[PEER_NAME_MAX + 1];
    int live; /* the slot holds a peer of the running configuration */
    uint32_t gen;
    int wire; /* 1 or 2 */
    int roaming;
    int has_endpoint;
    struct net_addr endpoint;      /* where its rows go: configured, or learned by roaming */
    struct net_addr conf_endpoint; /* as the file says (has_conf_endpoint) */
    int has_conf_endpoint;
    struct net_prefix allowed[PEER_ALLOWED_MAX];
    int nallowed;
    struct envelope_key *send; /* wire 2: K(this host -> peer); wire 1: the pair key */
    uint8_t send_id[PEERTAB_ID_BYTES];
    struct envelope_key *recv[2]; /* [0]: of `key`; [1]: of previous-key, or NULL */
    uint8_t recv_id[2][PEERTAB_ID_BYTES];
    int64_t previous_until; /* recv[1] is refused from this second (since the epoch) on */
    uint8_t fingerprint[PEERTAB_ID_BYTES];
    struct replay *replay; /* made on its first datagram */
    struct ratebucket bucket;
    struct peer_stats st;
    /* version 2: the numbers of our messages to it (docs/wire.md "Order") */
    int64_t seq_last;           /* the last given, this turn included */
    int64_t seq_committed;      /* the last a committed transaction gave (a rollback goes back) */
    struct net_addr parts_from; /* where its last part came from: part ACKs go there */
};

struct peertab;

/* An empty table (no peers), each peer's replay cache to hold replay_max nonces; NULL on no memory.
 */
__attribute__((warn_unused_result)) struct peertab *peertab_new(size_t replay_max);

/* Frees every key and replay cache. NULL is fine. */
void peertab_free(struct peertab *pt);

/*
 * Puts the peers of pc in force, for this host named me (NULL if no peer
 * needs it) with the master secret (NULL if none). A peer whose name was
 * there before keeps its slot, replay cache, bucket, counters and (if its
 * endpoint line is unchanged) the endpoint it roamed to; a peer no longer in
 * pc is removed. On failure (two keys with one id, no memory) nothing
 * changes: returns -1 with one line in err. Returns 0.
 */
__attribute__((warn_unused_result)) int peertab_apply(struct peertab *pt,
                                                      const struct peers_conf *pc, const char *me,
                                                      const uint8_t *master, char *err,
                                                      size_t errlen);

/* Peers in force. */
int peertab_count(const struct peertab *pt);

/* 1 if a peer in force speaks version 2 (then a version 2 header is looked for at all). */
int peertab_has_v2(const struct peertab *pt);

/* The peer in slot with generation gen, or NULL if it was removed since. */
struct peer *peertab_get(struct peertab *pt, int slot, uint32_t gen);

/* The live peer in slot (0 .. PEERS_MAX - 1), or NULL. */
struct peer *peertab_at(struct peertab *pt, int slot);

/* The slot of p. */
int peertab_slot(const struct peertab *pt, const struct peer *p);

/* Iteration over the peers in force: start with *pos = 0; NULL at the end. */
struct peer *peertab_next(struct peertab *pt, int *pos);

/* The peer named name, or NULL. */
struct peer *peertab_find(struct peertab *pt, const char *name);

/*
 * The peer whose version 2 receiving key has this id, with *which the key
 * (0 or 1) of p->recv; a previous key past its deadline at now_s is not
 * found. NULL if none: the datagram is dropped unopened.
 */
struct peer *peertab_by_id(struct peertab *pt, const uint8_t id[PEERTAB_ID_BYTES], int64_t now_s,
                           int *which);

/*
 * The version 1 keys to try for a datagram from `from`: the keys of the
 * wire 1 peers whose allowed contain it, longest prefix first (each
 * previous-key after its key), at most max, with their peers in peers[].
 * Returns how many.
 */
int peertab_v1_candidates(struct peertab *pt, const struct net_addr *from, int64_t now_s,
                          const struct envelope_key **keys, struct peer **peers, int max);

/*
 * The peer whose endpoint (configured, or roamed to) is dst, address and
 * port: a row that names an address goes to that peer. NULL if none.
 */
struct peer *peertab_by_endpoint(struct peertab *pt, const struct net_addr *dst);

/* p was heard from `to`: its endpoint (roaming = yes) moves there. */
void peertab_roam(struct peertab *pt, struct peer *p, const struct net_addr *to);

/* 1 if a lies inside one of p's allowed networks. */
int peer_allows(const struct peer *p, const struct net_addr *a);

/*
 * One line for each peer, for `securedgram peers` (tools/peersview.c reads
 * them): "peer NAME endpoint=HOST:PORT|- last_seen_ns=N stored=N
 * duplicates=N acknowledged=N rate_limited=N" then REASON=N for each drop
 * reason that is not zero. Returns a malloc'd text ("" with no peers), or
 * NULL if out of memory.
 */
char *peertab_report(struct peertab *pt);

/* The capacity of each peer's replay cache (p->replay, made by judge on its first authentic
 * datagram). */
size_t peertab_replay_max(const struct peertab *pt);

#endif
