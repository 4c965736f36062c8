/*
 * envelope_impl: what envelope.c shares with envelope_v2.c, and no one else:
 * the key's layout, the nonce pool, and the byte order of timestamps.
 */
#ifndef SG_ENVELOPE_IMPL_H
#define SG_ENVELOPE_IMPL_H

#include "wire/envelope.h"

struct envelope_key {
    unsigned char k[ENVELOPE_KEY_BYTES];
};

/* n random bytes from this process's pool (drawn again after a fork). */
void envelope_random_bytes(unsigned char *out, size_t n);

void envelope_put_be64(unsigned char *p, uint64_t v);
uint64_t envelope_get_be64(const unsigned char *p);

#endif
