/* envelope_v2: see envelope_v2.h and docs/wire.md, "Version 2". */
#include "wire/envelope_v2.h"

#include "wire/envelope_impl.h"

#include <sodium.h>
#include <string.h>

static int known_type(uint8_t type)
{
    return type == ENVELOPE_V2_TYPE_MESSAGE || type == ENVELOPE_V2_TYPE_PART ||
           type == ENVELOPE_V2_TYPE_PART_ACK;
}

int envelope_v2_header(const uint8_t *d, size_t len, struct envelope_v2_header *h)
{
    if (len < ENVELOPE_V2_OVERHEAD || len > ENVELOPE_MAX_DATAGRAM || d[0] != ENVELOPE_V2_VERSION ||
        !known_type(d[1]) || d[2] != 0 || d[3] != 0)
        return -1;
    h->type = d[1];
    memcpy(h->key_id, d + 4, ENVELOPE_V2_ID_BYTES);
    return 0;
}

static size_t seal(const struct envelope_key *key, const uint8_t key_id[ENVELOPE_V2_ID_BYTES],
                   uint8_t type, const uint8_t *given_nonce, uint64_t ts_ns, const void *body,
                   size_t body_len, uint8_t *out, size_t cap)
{
    if (body_len > ENVELOPE_V2_MAX_BODY || cap < ENVELOPE_V2_OVERHEAD ||
        body_len > cap - ENVELOPE_V2_OVERHEAD)
        return 0;
    uint8_t *nonce = out + 4 + ENVELOPE_V2_ID_BYTES;
    uint8_t *plain = out + ENVELOPE_V2_HEADER_BYTES;
    out[0] = ENVELOPE_V2_VERSION;
    out[1] = type;
    out[2] = out[3] = 0;
    memcpy(out + 4, key_id, ENVELOPE_V2_ID_BYTES);
    if (given_nonce != NULL)
        memcpy(nonce, given_nonce, ENVELOPE_V2_NONCE_BYTES);
    else
        envelope_random_bytes(nonce, ENVELOPE_V2_NONCE_BYTES);
    envelope_put_be64(plain, ts_ns);
    memmove(plain + ENVELOPE_TS_BYTES, body, body_len); /* in place: c may equal m */
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(plain, &clen, plain, ENVELOPE_TS_BYTES + body_len,
                                               out, ENVELOPE_V2_HEADER_BYTES, NULL, nonce, key->k);
    return ENVELOPE_V2_HEADER_BYTES + (size_t)clen;
}

size_t envelope_v2_seal(const struct envelope_key *key, const uint8_t key_id[ENVELOPE_V2_ID_BYTES],
                        uint8_t type, uint64_t ts_ns, const void *body, size_t body_len,
                        uint8_t *out, size_t cap)
{
    return seal(key, key_id, type, NULL, ts_ns, body, body_len, out, cap);
}

size_t envelope_v2_seal_with_nonce(const struct envelope_key *key,
                                   const uint8_t key_id[ENVELOPE_V2_ID_BYTES], uint8_t type,
                                   const uint8_t nonce[ENVELOPE_V2_NONCE_BYTES], uint64_t ts_ns,
                                   const void *body, size_t body_len, uint8_t *out, size_t cap)
{
    return seal(key, key_id, type, nonce, ts_ns, body, body_len, out, cap);
}

enum envelope_result envelope_v2_open(const struct envelope_key *key, const uint8_t *d, size_t len,
                                      uint8_t *plain, uint64_t *ts_ns, const uint8_t **body,
                                      size_t *body_len)
{
    if (len < ENVELOPE_V2_OVERHEAD || len > ENVELOPE_MAX_DATAGRAM)
        return ENVELOPE_SHORT;
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &plen, NULL, d + ENVELOPE_V2_HEADER_BYTES, len - ENVELOPE_V2_HEADER_BYTES, d,
            ENVELOPE_V2_HEADER_BYTES, d + 4 + ENVELOPE_V2_ID_BYTES, key->k) != 0)
        return ENVELOPE_AUTH;
    *ts_ns = envelope_get_be64(plain);
    *body = plain + ENVELOPE_TS_BYTES;
    *body_len = (size_t)plen - ENVELOPE_TS_BYTES;
    return ENVELOPE_OK;
}
