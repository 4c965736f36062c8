/*
 * replay: the nonces of recently accepted datagrams, so an exact replay inside
 * the timestamp window is recognised (neither stored again nor re-ACKed),
 * while a retransmission (sealed again, so a new nonce) is not. Pure: the
 * caller passes the time. Fixed capacity: when more datagrams arrive within
 * the keep time than it holds, the oldest nonces are forgotten early (a
 * replay of one of those is still never stored twice: message_id is unique).
 */
#ifndef SG_REPLAY_H
#define SG_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_NONCE_BYTES 12

struct replay;

/* A cache for capacity nonces; NULL on no memory. */
__attribute__((warn_unused_result)) struct replay *replay_new(size_t capacity);
void replay_free(struct replay *r);

/*
 * 1 if nonce was recorded within keep_ms before now_ms (a replay). Otherwise
 * records it and returns 0.
 */
int replay_check(struct replay *r, const uint8_t nonce[REPLAY_NONCE_BYTES], int64_t now_ms,
                 int64_t keep_ms);

/* Nonces forgotten before their keep time ran out (the cache was too small). */
uint64_t replay_early_evictions(const struct replay *r);

#endif
