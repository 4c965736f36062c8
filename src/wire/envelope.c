/*
 * envelope: seal and open datagrams; the only file that includes <sodium.h>.
 *
 * Nonces come from a small pool filled by randombytes_buf() (the kernel
 * CSPRNG) so that sealing does not cost a system call per datagram. The pool
 * is discarded if the process forks, so two processes never share nonces.
 */
#include "wire/envelope.h"
#include "wire/envelope_impl.h"

#include "util/hex.h"
#include "util/secret.h"

#include <sodium.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#define POOL_BYTES 4096

/*
 * A forked child must not reuse its parent's random bytes or mark key. Each
 * fork counts one generation up (pthread_atfork), and what was made in
 * another generation is made again: a load instead of a getpid() syscall on
 * every seal.
 */
static volatile unsigned fork_generation = 1;
static pthread_once_t fork_watch = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    fork_generation++;
}

static void watch_forks(void)
{
    (void)pthread_atfork(NULL, NULL, on_fork_child);
}

/* This process's generation (never 0: 0 stands for "not made yet"). */
static unsigned generation(void)
{
    (void)pthread_once(&fork_watch, watch_forks);
    return fork_generation;
}

static unsigned char pool[POOL_BYTES];
static size_t pool_used = POOL_BYTES;
static unsigned pool_generation;

void envelope_random_bytes(unsigned char *out, size_t n)
{
    if (n > POOL_BYTES / 4) {
        randombytes_buf(out, n);
        return;
    }
    unsigned gen = generation();
    if (pool_generation != gen || n > POOL_BYTES - pool_used) {
        randombytes_buf(pool, POOL_BYTES);
        pool_used = 0;
        pool_generation = gen;
    }
    memcpy(out, pool + pool_used, n);
    secret_wipe(pool + pool_used, n);
    pool_used += n;
}

int envelope_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

int envelope_key_hex_valid(const char *text)
{
    size_t len = strnlen(text, ENVELOPE_KEY_HEX_LEN + 1);
    return len == ENVELOPE_KEY_HEX_LEN && hex_digits_only(text, len);
}

struct envelope_key *envelope_key_from_hex(const char *hex)
{
    if (hex == NULL || !envelope_key_hex_valid(hex))
        return NULL;
    struct envelope_key *key = sodium_malloc(sizeof *key);
    if (key == NULL)
        return NULL;
    /* Straight into guarded memory: the key is never in an ordinary buffer. */
    if (hex_decode(key->k, sizeof key->k, hex, ENVELOPE_KEY_HEX_LEN) != 0) {
        sodium_free(key);
        return NULL;
    }
    sodium_mprotect_readonly(key);
    return key;
}

struct envelope_key *envelope_key_from_bytes(const uint8_t bytes[ENVELOPE_KEY_BYTES])
{
    struct envelope_key *key = sodium_malloc(sizeof *key);
    if (key == NULL)
        return NULL;
    memcpy(key->k, bytes, sizeof key->k);
    sodium_mprotect_readonly(key);
    return key;
}

void envelope_key_free(struct envelope_key *key)
{
    if (key != NULL)
        sodium_free(key); /* wipes before unmapping */
}

void envelope_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t envelope_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static size_t seal(const struct envelope_key *key, const uint8_t *given_nonce, uint64_t ts_ns,
                   const char *json, size_t json_len, uint8_t *out, size_t cap)
{
    if (json_len > ENVELOPE_MAX_JSON || cap < ENVELOPE_OVERHEAD ||
        json_len > cap - ENVELOPE_OVERHEAD)
        return 0;
    unsigned char *nonce = out;
    unsigned char *plain = out + ENVELOPE_NONCE_BYTES;
    if (given_nonce != NULL)
        memcpy(nonce, given_nonce, ENVELOPE_NONCE_BYTES);
    else
        envelope_random_bytes(nonce, ENVELOPE_NONCE_BYTES);
    /* Build the plaintext in place; libsodium allows c == m. */
    envelope_put_be64(plain, ts_ns);
    memcpy(plain + ENVELOPE_TS_BYTES, json, json_len);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(plain, &clen, plain, ENVELOPE_TS_BYTES + json_len,
                                              NULL, 0, NULL, nonce, key->k);
    return ENVELOPE_NONCE_BYTES + (size_t)clen;
}

size_t envelope_seal(const struct envelope_key *key, uint64_t ts_ns, const char *json,
                     size_t json_len, uint8_t *out, size_t cap)
{
    return seal(key, NULL, ts_ns, json, json_len, out, cap);
}

static unsigned char mark_key[crypto_shorthash_KEYBYTES];
static unsigned mark_generation;

/* This process's mark of a nonce; the key is made on first use and again after a fork. */
static uint64_t mark_of(const uint8_t *nonce)
{
    unsigned gen = generation();
    if (mark_generation != gen) {
        crypto_shorthash_keygen(mark_key);
        mark_generation = gen;
    }
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, nonce, ENVELOPE_NONCE_BYTES, mark_key);
    return envelope_get_be64(h) & ((1ULL << ENVELOPE_MARK_BITS) - 1);
}

size_t envelope_seal_marked(const struct envelope_key *key, uint64_t now_ns, const char *json,
                            size_t json_len, uint8_t *out, size_t cap)
{
    if (cap < ENVELOPE_NONCE_BYTES)
        return 0;
    uint8_t nonce[ENVELOPE_NONCE_BYTES];
    envelope_random_bytes(nonce, sizeof nonce);
    uint64_t ts = (now_ns & ~((1ULL << ENVELOPE_MARK_BITS) - 1)) | mark_of(nonce);
    return seal(key, nonce, ts, json, json_len, out, cap);
}

int envelope_is_marked(const uint8_t nonce[ENVELOPE_NONCE_BYTES], uint64_t ts_ns)
{
    return mark_generation == generation() &&
           (ts_ns & ((1ULL << ENVELOPE_MARK_BITS) - 1)) == mark_of(nonce);
}

size_t envelope_seal_with_nonce(const struct envelope_key *key,
                                const uint8_t nonce[ENVELOPE_NONCE_BYTES], uint64_t ts_ns,
                                const char *json, size_t json_len, uint8_t *out, size_t cap)
{
    return seal(key, nonce, ts_ns, json, json_len, out, cap);
}

enum envelope_result envelope_open(const struct envelope_key *key, const uint8_t *dgram, size_t len,
                                   uint8_t *plain, uint64_t *ts_ns, const char **json,
                                   size_t *json_len)
{
    if (len < ENVELOPE_MIN_DATAGRAM || len > ENVELOPE_MAX_DATAGRAM)
        return ENVELOPE_SHORT;
    unsigned long long mlen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(plain, &mlen, NULL, dgram + ENVELOPE_NONCE_BYTES,
                                                  len - ENVELOPE_NONCE_BYTES, NULL, 0, dgram,
                                                  key->k) != 0)
        return ENVELOPE_AUTH;
    if (mlen < ENVELOPE_TS_BYTES)
        return ENVELOPE_MALFORMED;
    *ts_ns = envelope_get_be64(plain);
    *json = (const char *)plain + ENVELOPE_TS_BYTES;
    *json_len = (size_t)mlen - ENVELOPE_TS_BYTES;
    return ENVELOPE_OK;
}

int envelope_ts_fresh(uint64_t ts_ns, uint64_t now_ns, uint64_t window_s)
{
    const uint64_t ns = 1000000000ULL;
    uint64_t w = window_s > UINT64_MAX / ns ? UINT64_MAX : window_s * ns;
    uint64_t lo = now_ns > w ? now_ns - w : 0;
    uint64_t hi = now_ns > UINT64_MAX - w ? UINT64_MAX : now_ns + w;
    return ts_ns >= lo && ts_ns <= hi;
}

void envelope_random_hex(char *out, size_t n)
{
    unsigned char b[64];
    out[0] = '\0';
    while (n > 0) {
        size_t chunk = n < sizeof b ? n : sizeof b;
        envelope_random_bytes(b, chunk);
        (void)hex_encode(out, 2 * chunk + 1, b, chunk); /* fits: out has room for 2n + 1 */
        out += 2 * chunk;
        n -= chunk;
    }
    secret_wipe(b, sizeof b);
}

static uint64_t id_counter;
static unsigned id_generation;

void envelope_message_id(char out[25])
{
    unsigned char b[14]; /* the count's 8 bytes, big-endian; the id is b[2..14) */
    unsigned gen = generation();
    if (id_generation != gen) {
        envelope_random_bytes(b, 8);
        id_counter = envelope_get_be64(b);
        id_generation = gen;
    }
    envelope_put_be64(b, id_counter++); /* big-endian, so the hex sorts as the count does */
    envelope_random_bytes(b + 8, 6);
    (void)hex_encode(out, 25, b + 2, 12);
    secret_wipe(b, sizeof b);
}
