/*
 * replay: the nonces of accepted datagrams, so that an exact replay inside
 * the timestamp window is recognised (neither stored again nor re-ACKed),
 * while a retransmission (sealed again, so a new nonce) is not. Pure: the
 * caller passes the datagram's timestamp and the window.
 *
 * A nonce is kept for as long as its datagram's own timestamp could still be
 * accepted, judged against a floor that never moves back: floor = the
 * highest timestamp accepted so far minus twice the window. A datagram whose
 * timestamp is below the floor is refused as stale whatever the wall clock
 * says, so a replay is refused after the clock steps back, too. Nothing is
 * ever forgotten early: when the cache is full of nonces still needed, a new
 * datagram is refused (its sender retransmits) rather than an old nonce
 * dropped. So at most capacity / (2 x window) authenticated datagrams a second
 * are accepted; see securedgram(8), SECURITY.
 */
#ifndef SG_REPLAY_H
#define SG_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_NONCE_BYTES 12

struct replay;

enum replay_result {
    REPLAY_NEW,   /* recorded: accept the datagram */
    REPLAY_SEEN,  /* this nonce was accepted before: an exact replay */
    REPLAY_STALE, /* the timestamp is below the floor: refuse it */
    REPLAY_FULL,  /* no room: refuse it for now */
};

/* A cache for capacity nonces; NULL on no memory. Pages are touched only as they fill. */
__attribute__((warn_unused_result)) struct replay *replay_new(size_t capacity);
void replay_free(struct replay *r);

/*
 * Judges a nonce of an authentic datagram whose timestamp (ns since the
 * epoch) has passed the freshness check for window_s; records it if new.
 */
enum replay_result replay_check(struct replay *r, const uint8_t nonce[REPLAY_NONCE_BYTES],
                                uint64_t ts_ns, uint64_t window_s);

/* Datagrams refused because the cache was full. */
uint64_t replay_full_refusals(const struct replay *r);

/* Nonces held now. */
size_t replay_count(const struct replay *r);

#endif
