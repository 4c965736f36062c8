/*
 * envelope_v2: the datagram of per-peer keys (docs/wire.md, "Version 2").
 *
 *   header    = version 0x02 (1) || type (1) || reserved, zero (2) || key id (8) || nonce (24)
 *   datagram  = header || XChaCha20-Poly1305-IETF(direction key, nonce, plaintext, AD = header)
 *   plaintext = timestamp (8, big-endian ns since the epoch) || body
 *
 * The key id tells the receiver which key to try (one, or none); the header
 * is authenticated with the body. Each direction of a pair has its own key
 * (peerkeys), so a datagram sent back to its sender does not open there.
 */
#ifndef SG_ENVELOPE_V2_H
#define SG_ENVELOPE_V2_H

#include "wire/envelope.h"

#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_V2_VERSION 0x02
#define ENVELOPE_V2_TYPE_MESSAGE 0x01  /* body: one JSON object (a message or an ACK) */
#define ENVELOPE_V2_TYPE_PART 0x02     /* body: a part of a message (wire/parts.h) */
#define ENVELOPE_V2_TYPE_PART_ACK 0x03 /* body: which parts of a message arrived (wire/parts.h) */
#define ENVELOPE_V2_ID_BYTES 8
#define ENVELOPE_V2_NONCE_BYTES 24
#define ENVELOPE_V2_HEADER_BYTES (4 + ENVELOPE_V2_ID_BYTES + ENVELOPE_V2_NONCE_BYTES)
#define ENVELOPE_V2_OVERHEAD (ENVELOPE_V2_HEADER_BYTES + ENVELOPE_TAG_BYTES + ENVELOPE_TS_BYTES)
#define ENVELOPE_V2_MAX_BODY (ENVELOPE_MAX_DATAGRAM - ENVELOPE_V2_OVERHEAD)

struct envelope_v2_header {
    uint8_t type;
    uint8_t key_id[ENVELOPE_V2_ID_BYTES];
};

/*
 * Reads the clear header, without any crypto: 0 if d could be a version 2
 * datagram (long enough, version 0x02, reserved bytes zero, a known type:
 * ENVELOPE_V2_TYPE_MESSAGE, _PART or _PART_ACK),
 * else -1 (then it may still be a version 1 datagram: its first bytes are a
 * random nonce).
 */
__attribute__((warn_unused_result)) int envelope_v2_header(const uint8_t *d, size_t len,
                                                           struct envelope_v2_header *h);

/*
 * Seals body under key (a direction key, whose id is key_id) with a random
 * nonce. Returns the datagram's length, or 0 if it does not fit cap or the
 * body is over ENVELOPE_V2_MAX_BODY.
 */
size_t envelope_v2_seal(const struct envelope_key *key, const uint8_t key_id[ENVELOPE_V2_ID_BYTES],
                        uint8_t type, uint64_t ts_ns, const void *body, size_t body_len,
                        uint8_t *out, size_t cap);

/* As envelope_v2_seal with a given nonce: only for known-answer tests. */
size_t envelope_v2_seal_with_nonce(const struct envelope_key *key,
                                   const uint8_t key_id[ENVELOPE_V2_ID_BYTES], uint8_t type,
                                   const uint8_t nonce[ENVELOPE_V2_NONCE_BYTES], uint64_t ts_ns,
                                   const void *body, size_t body_len, uint8_t *out, size_t cap);

/*
 * Opens a datagram whose header envelope_v2_header accepted. plain must hold
 * len bytes. On ENVELOPE_OK sets *ts_ns, *body (into plain) and *body_len;
 * else they are untouched.
 */
__attribute__((warn_unused_result)) enum envelope_result
envelope_v2_open(const struct envelope_key *key, const uint8_t *d, size_t len, uint8_t *plain,
                 uint64_t *ts_ns, const uint8_t **body, size_t *body_len);

#endif
