/*
 * sendq: the sockets, and the datagrams a turn seals to send through them.
 *
 * A turn seals its datagrams (ACKs, new messages, retransmissions) into one
 * preallocated arena as it goes; they are sent only after the turn's
 * transaction committed, one sendmmsg per socket (sendq_flush), then the
 * queue is emptied (sendq_reset). Nothing here grows: the queue has cap
 * entries and the arena arena_bytes, both fixed by sendq_init.
 *
 * The main socket is the bound one. A destination of the other family gets a
 * socket of its own beside it, opened on first use (net_bind_beside: only
 * next to a loopback bind). Each queued datagram carries what it is
 * (struct sendq_msg), for whoever handles its send result.
 */
#ifndef SG_SENDQ_H
#define SG_SENDQ_H

#include "util/log.h"
#include "util/net.h"
#include "wire/envelope.h"
#include "wire/envelope_v2.h"
#include "wire/message.h"
#include "wire/parts.h"

#include <stddef.h>
#include <stdint.h>

struct retx_entry; /* daemon/retx.h */

enum sendq_sock { SENDQ_MAIN, SENDQ_ALT4, SENDQ_ALT6, SENDQ_SOCKS };

enum sendq_kind {
    SENDQ_ACK,     /* an ACK of an inbound message (daemon/rx.c) */
    SENDQ_NEW,     /* a claimed outbound row, sent the first time (daemon/tx.c) */
    SENDQ_RETX,    /* a retransmission of a row in flight (daemon/tx.c) */
    SENDQ_PART,    /* a part of a message in flight, sent or sent again (daemon/tx.c) */
    SENDQ_PART_ACK /* which parts of an inbound message arrived (daemon/rx.c) */
};

/* How a datagram is sealed: version 1 under key, or version 2 under key whose id is v2_id. */
struct sendq_as {
    const struct envelope_key *key;
    const uint8_t *v2_id; /* NULL: version 1 */
    int peer_slot;        /* the peer it goes to (daemon/peertab.h), or -1: the shared secret */
    uint32_t peer_gen;
};

/* What a sealed datagram of this turn is, for handling its send result. */
struct sendq_msg {
    uint8_t kind; /* enum sendq_kind */
    uint8_t sock; /* enum sendq_sock */
    char id[MESSAGE_ID_LEN + 1];
    int64_t rowid, retries;
    int attempts;           /* SENDQ_ACK: sendings that failed before */
    struct net_addr dst;    /* SENDQ_NEW: as the row names it (for the in-flight table) */
    struct retx_entry *ent; /* SENDQ_RETX */
    int peer_slot;          /* as sealed (struct sendq_as) */
    uint32_t peer_gen;
    uint8_t v2;         /* sealed in version 2 */
    int64_t sequence;   /* SENDQ_NEW: its number to its peer (0: none) */
    int64_t created_ms; /* SENDQ_NEW: its row's created_at (ms since the epoch, 0: unknown) */
};

struct sendq {
    struct {
        int fd; /* -1: not open */
        int af;
        int dual; /* an IPv6 wildcard socket that also reaches IPv4 */
    } socks[SENDQ_SOCKS];
    const struct envelope_key *key; /* borrowed; the engine replaces it on reload */
    struct net_dgram *out;          /* cap: this turn's datagrams; out[i].err after the flush */
    struct sendq_msg *msg;          /* cap: what out[i] is */
    int n, cap;
    struct net_dgram *batch; /* cap: one socket's share of out, for sendmmsg */
    int *batch_index;
    uint8_t *arena;
    size_t arena_cap, used;
    uint8_t *body; /* ENVELOPE_V2_MAX_BODY: where a part's body is laid out before sealing */
    struct log_limiter lim_send; /* "send warnings" */
};

/*
 * Sets up an empty queue of cap datagrams and arena_bytes of arena, around
 * the bound socket main_fd (owned from now on, even on failure: closed by
 * sendq_fini), sealing under key (borrowed). Returns 0, or -1 if out of
 * memory (q is then safe to sendq_fini).
 */
__attribute__((warn_unused_result)) int sendq_init(struct sendq *q, int main_fd,
                                                   const struct envelope_key *key, int cap,
                                                   size_t arena_bytes);

/* Closes every socket and frees the queue. A zeroed q with its fds at -1 is fine. */
void sendq_fini(struct sendq *q);

/*
 * The socket to reach dst from (enum sendq_sock), and in *out dst as that
 * socket's family names it; a socket beside the main one is opened on first
 * use. Returns -1 with one line in err when dst cannot be reached.
 */
int sendq_route(struct sendq *q, const struct net_addr *dst, struct net_addr *out, char *err,
                size_t errlen);

/* Bytes left in this turn's arena. */
size_t sendq_room(const struct sendq *q);

/*
 * Seals json (len bytes) as `as` says (NULL: version 1 under the shared key)
 * with a fresh nonce and the wall clock, as the next datagram of the turn, to
 * go to `to` through sock. Returns its entry (zeroed but for sock and the
 * peer: the caller fills in what it is; valid until sendq_reset), or NULL if
 * the queue or the arena is full or there is no key.
 */
struct sendq_msg *sendq_seal(struct sendq *q, int sock, const struct net_addr *to, const char *json,
                             size_t len, const struct sendq_as *as);

/*
 * Seals a part (version 2 type 0x02: the header h and its data) as `as` says,
 * which must name a version 2 key. As sendq_seal otherwise: the entry, or
 * NULL if full, there is no version 2 key or the part breaks a rule.
 */
struct sendq_msg *sendq_part(struct sendq *q, int sock, const struct net_addr *to,
                             const struct part_header *h, const void *data, size_t len,
                             const struct sendq_as *as);

/* Seals a part ACK (type 0x03) of n ranges; its entry, kind SENDQ_PART_ACK, or NULL. */
struct sendq_msg *sendq_part_ack(struct sendq *q, int sock, const struct net_addr *to,
                                 const uint8_t id[PART_ID_BYTES], uint32_t length,
                                 const struct part_range *r, int n, const struct sendq_as *as);

/*
 * Seals the ACK of message id (attempts: sendings of it that failed before)
 * as sendq_seal does. Returns its entry, kind SENDQ_ACK, or NULL if full.
 */
struct sendq_msg *sendq_ack(struct sendq *q, int sock, const struct net_addr *to, const char *id,
                            int attempts, const struct sendq_as *as);

/*
 * Sends every queued datagram, one batch per socket; then q->out[i].err is 0
 * or the errno of datagram i. The queue is kept (for the results) until
 * sendq_reset.
 */
void sendq_flush(struct sendq *q);

/* Empties the queue and the arena (every entry becomes invalid). */
void sendq_reset(struct sendq *q);

#endif
