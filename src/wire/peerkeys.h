/*
 * peerkeys: the key schedule of per-peer keys (docs/wire.md, "Keys"). Every
 * pair of hosts has a pair key: written in the peers file, or derived from a
 * master secret and the two names. Each direction has a key of its own made
 * from it, so that nothing A sealed for B opens at A as if B had sent it; and
 * each direction key has an id, sent in the clear, by which the receiver
 * finds the key in one look-up. All three are keyed BLAKE2b (libsodium's
 * crypto_generichash) over a fixed label and the names, each preceded by its
 * length, so no two inputs read alike.
 */
#ifndef SG_PEERKEYS_H
#define SG_PEERKEYS_H

#include <stddef.h>
#include <stdint.h>

#define PEERKEYS_KEY_BYTES 32
#define PEERKEYS_ID_BYTES 8
#define PEERKEYS_NAME_MAX 64

/*
 * The pair key of hosts a and b from the master secret: the same whichever
 * side computes it (the names are taken in byte order). Returns 0, or -1 if a
 * name is empty or over PEERKEYS_NAME_MAX bytes, or a and b are the same.
 */
__attribute__((warn_unused_result)) int peerkeys_pair(const uint8_t master[PEERKEYS_KEY_BYTES],
                                                      const char *a, const char *b,
                                                      uint8_t pair[PEERKEYS_KEY_BYTES]);

/* The key that host from seals with for host to (and to opens with). Returns 0, or -1 as above. */
__attribute__((warn_unused_result)) int peerkeys_direction(const uint8_t pair[PEERKEYS_KEY_BYTES],
                                                           const char *from, const char *to,
                                                           uint8_t key[PEERKEYS_KEY_BYTES]);

/* The id sent in the clear with every datagram sealed with key. */
void peerkeys_id(const uint8_t key[PEERKEYS_KEY_BYTES], uint8_t id[PEERKEYS_ID_BYTES]);

/*
 * The fingerprint of a pair key, to compare the two hosts' files by eye
 * (securedgram peers): the same on both hosts, and nothing of the key.
 */
void peerkeys_fingerprint(const uint8_t pair[PEERKEYS_KEY_BYTES], uint8_t fp[PEERKEYS_ID_BYTES]);

#endif
