/* peerkeys: see peerkeys.h; the exact inputs are in docs/wire.md, "Keys". */
#include "wire/peerkeys.h"

#include "util/secret.h"

#include <sodium.h>
#include <string.h>

#define LABEL_PAIR "securedgram pair key v2"
#define LABEL_DIRECTION "securedgram direction v2"
#define LABEL_FINGERPRINT "securedgram fingerprint v2"
#define LABEL_ID "securedgram key id v2"

/* label, then each name as one length byte and its bytes; -1 for a name out of bounds. */
static int hash_names(const uint8_t key[PEERKEYS_KEY_BYTES], const char *label, const char *x,
                      const char *y, uint8_t out[PEERKEYS_KEY_BYTES])
{
    size_t nx = strlen(x), ny = strlen(y);
    if (nx == 0 || ny == 0 || nx > PEERKEYS_NAME_MAX || ny > PEERKEYS_NAME_MAX || strcmp(x, y) == 0)
        return -1;
    crypto_generichash_state st;
    uint8_t lx = (uint8_t)nx, ly = (uint8_t)ny;
    crypto_generichash_init(&st, key, PEERKEYS_KEY_BYTES, PEERKEYS_KEY_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
    crypto_generichash_update(&st, &lx, 1);
    crypto_generichash_update(&st, (const uint8_t *)x, nx);
    crypto_generichash_update(&st, &ly, 1);
    crypto_generichash_update(&st, (const uint8_t *)y, ny);
    crypto_generichash_final(&st, out, PEERKEYS_KEY_BYTES);
    secret_wipe(&st, sizeof st);
    return 0;
}

int peerkeys_pair(const uint8_t master[PEERKEYS_KEY_BYTES], const char *a, const char *b,
                  uint8_t pair[PEERKEYS_KEY_BYTES])
{
    int lo_first = strcmp(a, b) < 0;
    return hash_names(master, LABEL_PAIR, lo_first ? a : b, lo_first ? b : a, pair);
}

int peerkeys_direction(const uint8_t pair[PEERKEYS_KEY_BYTES], const char *from, const char *to,
                       uint8_t key[PEERKEYS_KEY_BYTES])
{
    return hash_names(pair, LABEL_DIRECTION, from, to, key);
}

void peerkeys_id(const uint8_t key[PEERKEYS_KEY_BYTES], uint8_t id[PEERKEYS_ID_BYTES])
{
    uint8_t
        h[crypto_generichash_BYTES_MIN]; /* 16: BLAKE2b's shortest here; the first 8 are the id */
    crypto_generichash(h, sizeof h, (const uint8_t *)LABEL_ID, strlen(LABEL_ID), key,
                       PEERKEYS_KEY_BYTES);
    memcpy(id, h, PEERKEYS_ID_BYTES);
}

void peerkeys_fingerprint(const uint8_t pair[PEERKEYS_KEY_BYTES], uint8_t fp[PEERKEYS_ID_BYTES])
{
    uint8_t h[crypto_generichash_BYTES_MIN];
    crypto_generichash(h, sizeof h, (const uint8_t *)LABEL_FINGERPRINT, strlen(LABEL_FINGERPRINT),
                       pair, PEERKEYS_KEY_BYTES);
    memcpy(fp, h, PEERKEYS_ID_BYTES);
}
