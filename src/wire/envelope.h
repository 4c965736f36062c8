/*
 * envelope: the wire format, and every use of libsodium.
 *
 *   datagram  = nonce (12) || ChaCha20-Poly1305-IETF(key, nonce, plaintext) (len + 16 tag)
 *   plaintext = timestamp (8, big-endian ns since the epoch) || JSON text
 *
 * No additional data. A datagram shorter than 28 bytes is refused before any
 * crypto; one that authenticates but carries fewer than 8 plaintext bytes is
 * refused as malformed.
 */
#ifndef SG_ENVELOPE_H
#define SG_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_KEY_BYTES 32
#define ENVELOPE_KEY_HEX_LEN 64
#define ENVELOPE_NONCE_BYTES 12
#define ENVELOPE_TAG_BYTES 16
#define ENVELOPE_TS_BYTES 8
#define ENVELOPE_MIN_DATAGRAM (ENVELOPE_NONCE_BYTES + ENVELOPE_TAG_BYTES)
#define ENVELOPE_OVERHEAD (ENVELOPE_MIN_DATAGRAM + ENVELOPE_TS_BYTES)
/* The largest UDP payload over IPv4; we never send more, over either family. */
#define ENVELOPE_MAX_DATAGRAM 65507
#define ENVELOPE_MAX_JSON (ENVELOPE_MAX_DATAGRAM - ENVELOPE_OVERHEAD)

struct envelope_key;

enum envelope_result {
    ENVELOPE_OK = 0,
    ENVELOPE_SHORT,     /* under 28 bytes, or over the maximum */
    ENVELOPE_AUTH,      /* did not authenticate under the key */
    ENVELOPE_MALFORMED, /* authentic, but no room for the timestamp */
};

/* Initialises libsodium. Returns 0, or -1 if it cannot. Call once, early. */
__attribute__((warn_unused_result)) int envelope_init(void);

/*
 * The one check of a secret's text: 1 if text is exactly ENVELOPE_KEY_HEX_LEN
 * hex digits (either case) and nothing else, else 0. Every place that takes
 * a secret (flag, environment, .env, secret file) checks it with this.
 */
int envelope_key_hex_valid(const char *text);

/*
 * Makes a key from a secret's text that envelope_key_hex_valid accepts. The key lives in
 * guarded, locked memory that is wiped when freed. Returns NULL if hex is not
 * valid (or NULL) or memory cannot be had.
 */
__attribute__((warn_unused_result)) struct envelope_key *envelope_key_from_hex(const char *hex);

/* Wipes and frees a key; NULL is fine. */
void envelope_key_free(struct envelope_key *key);

/* A key from 32 bytes (a peer's direction key), in the same guarded memory. NULL on no memory. */
__attribute__((warn_unused_result)) struct envelope_key *
envelope_key_from_bytes(const uint8_t bytes[ENVELOPE_KEY_BYTES]);

/*
 * Seals ts_ns || json[0..json_len) under key with a fresh random nonce into
 * out (capacity cap). Returns the datagram length, or 0 if json_len exceeds
 * ENVELOPE_MAX_JSON or the datagram would not fit in cap.
 */
size_t envelope_seal(const struct envelope_key *key, uint64_t ts_ns, const char *json,
                     size_t json_len, uint8_t *out, size_t cap);

/*
 * Our own datagrams carry a mark, so that one sent back to us (a reflection)
 * is known for ours: the low ENVELOPE_MARK_BITS bits of the timestamp are a
 * keyed hash (SipHash-2-4, under a random key of this process) of the nonce.
 * Peers see a timestamp within 17 ms of the time it was sealed; the wire
 * format is unchanged. A peer's datagram bears our mark by chance once in
 * 2^24 (it is dropped; its sender retransmits).
 */
#define ENVELOPE_MARK_BITS 24

/* As envelope_seal, with the timestamp now_ns carrying this process's mark. */
size_t envelope_seal_marked(const struct envelope_key *key, uint64_t now_ns, const char *json,
                            size_t json_len, uint8_t *out, size_t cap);

/* 1 if a datagram with this nonce and timestamp bears this process's mark. */
int envelope_is_marked(const uint8_t nonce[ENVELOPE_NONCE_BYTES], uint64_t ts_ns);

/*
 * As envelope_seal, with the given nonce instead of a random one. Only for
 * known-answer tests (a nonce must never be used twice with one key).
 */
size_t envelope_seal_with_nonce(const struct envelope_key *key,
                                const uint8_t nonce[ENVELOPE_NONCE_BYTES], uint64_t ts_ns,
                                const char *json, size_t json_len, uint8_t *out, size_t cap);

/*
 * Opens a datagram. plain must hold at least len bytes. On ENVELOPE_OK sets
 * *ts_ns, *json (pointing into plain) and *json_len; on any other result the
 * out-parameters are untouched and plain holds nothing meaningful.
 */
__attribute__((warn_unused_result)) enum envelope_result
envelope_open(const struct envelope_key *key, const uint8_t *dgram, size_t len, uint8_t *plain,
              uint64_t *ts_ns, const char **json, size_t *json_len);

/* 1 if ts_ns lies within window_s seconds either side of now_ns, else 0. */
int envelope_ts_fresh(uint64_t ts_ns, uint64_t now_ns, uint64_t window_s);

/* Fills out with n random bytes as 2n lowercase hex digits plus NUL (CSPRNG). */
void envelope_random_hex(char *out, size_t n);

/*
 * A new message id in out: 24 lowercase hex digits and a NUL. The first 12
 * count up from a random start (drawn again after a fork) and the last 12 are
 * fresh from the CSPRNG. Ids made one after another sort together, so each
 * lands beside the last in both sides' unique index (one index page written
 * per hundred messages, not one per message); the 48 random bits keep an id
 * unguessable, and two processes' ids cannot meet unless their counters do.
 */
void envelope_message_id(char out[25]);

#endif
