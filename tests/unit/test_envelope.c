/*
 * Unit tests for envelope.[ch]: the wire format.
 *
 *   - every vector of tests/vectors/envelope.json (made by the original
 *     Ruby implementation) opens, or is refused, as it says;
 *   - what envelope_seal produces opens with plain libsodium (the wire
 *     contract, independent of envelope_open);
 *   - tampering with any byte, truncating, or exceeding the size limits is
 *     refused with the right result, and out-parameters stay untouched;
 *   - timestamp window arithmetic at its edges, key parsing, random ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wire/envelope.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SHARED_DIR
#error "SHARED_DIR must be defined (the Makefile passes it)"
#endif

#define VECTORS_PATH SHARED_DIR "/vectors/envelope.json"

static const char KEY_HEX[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char OTHER_KEY_HEX[] =
    "f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100";
static const char ACK_TEXT[] = "{\"type\":\"ACK\",\"message_id\":\"a1b2c3d4e5f60718293a4b5c\"}";

#define TS_SENTINEL 0x5a5a5a5a5a5a5a5aULL
#define LEN_SENTINEL ((size_t)0xa5a5a5a5u)
static const char json_sentinel[] = "untouched";

/* ---- helpers ---- */

static void load_key_raw(const char *hex, unsigned char raw[ENVELOPE_KEY_BYTES])
{
    size_t got = 0;
    assert_int_equal(sodium_hex2bin(raw, ENVELOPE_KEY_BYTES, hex, strlen(hex), NULL, &got, NULL),
                     0);
    assert_int_equal(got, ENVELOPE_KEY_BYTES);
}

/* Decodes hex into a malloc'd buffer (at least 1 byte) and sets *len. */
static uint8_t *hex_decode(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    uint8_t *out = malloc(n / 2 + 1);
    assert_non_null(out);
    size_t got = 0;
    assert_int_equal(sodium_hex2bin(out, n / 2 + 1, hex, n, NULL, &got, NULL), 0);
    assert_int_equal(got, n / 2);
    *len = got;
    return out;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

/*
 * Seals ts || body of body_len bytes with raw libsodium (not envelope_seal),
 * nonce all 0x42, into a malloc'd datagram; returns it and sets *len.
 */
static uint8_t *raw_seal_plain(const char *key_hex, const uint8_t *plain, size_t plain_len,
                               size_t *len)
{
    unsigned char k[ENVELOPE_KEY_BYTES];
    load_key_raw(key_hex, k);
    uint8_t *d = malloc(ENVELOPE_MIN_DATAGRAM + plain_len);
    assert_non_null(d);
    memset(d, 0x42, ENVELOPE_NONCE_BYTES);
    unsigned long long clen = 0;
    assert_int_equal(crypto_aead_chacha20poly1305_ietf_encrypt(
                         d + ENVELOPE_NONCE_BYTES, &clen, plain, plain_len, NULL, 0, NULL, d, k),
                     0);
    assert_int_equal(clen, plain_len + ENVELOPE_TAG_BYTES);
    *len = ENVELOPE_NONCE_BYTES + (size_t)clen;
    return d;
}

struct opened {
    enum envelope_result r;
    uint64_t ts;
    const char *json;
    size_t json_len;
};

/* Opens with sentinel out-parameters so a failed open can be checked for leaving them alone. */
static struct opened open_dgram(const struct envelope_key *key, const uint8_t *d, size_t len,
                                uint8_t *plain)
{
    struct opened o = {ENVELOPE_OK, TS_SENTINEL, json_sentinel, LEN_SENTINEL};
    o.r = envelope_open(key, d, len, plain, &o.ts, &o.json, &o.json_len);
    return o;
}

static void assert_untouched(const struct opened *o)
{
    assert_true(o->ts == TS_SENTINEL);
    assert_ptr_equal(o->json, json_sentinel);
    assert_int_equal(o->json_len, LEN_SENTINEL);
}

/* Flips byte i (one bit, varying with i) and checks the datagram no longer opens. */
static void assert_flip_fails(const struct envelope_key *key, uint8_t *d, size_t len, size_t i,
                              uint8_t *plain)
{
    uint8_t mask = (uint8_t)(1u << (i % 8));
    d[i] ^= mask;
    struct opened o = open_dgram(key, d, len, plain);
    d[i] ^= mask;
    if (o.r != ENVELOPE_AUTH)
        fail_msg("flipping byte %zu of %zu: result %d, expected ENVELOPE_AUTH", i, len, (int)o.r);
    assert_untouched(&o);
}

static json_t *load_vectors(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(VECTORS_PATH, 0, &jerr);
    if (root == NULL)
        fail_msg("cannot load %s: %s (line %d)", VECTORS_PATH, jerr.text, jerr.line);
    json_t *v = json_object_get(root, "vectors");
    assert_true(json_is_array(v));
    assert_true(json_array_size(v) >= 9);
    return root;
}

static const char *vstr(json_t *v, const char *field)
{
    json_t *s = json_object_get(v, field);
    if (!json_is_string(s))
        fail_msg("vector field %s is not a string", field);
    return json_string_value(s);
}

static json_t *vector_named(json_t *root, const char *name)
{
    json_t *arr = json_object_get(root, "vectors"), *v;
    size_t i;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(vstr(v, "name"), name) == 0)
            return v;
    }
    fail_msg("vector %s not found", name);
    return NULL;
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    return envelope_init() == 0 ? 0 : -1;
}

static int key_setup(void **state)
{
    struct envelope_key *k = envelope_key_from_hex(KEY_HEX);
    *state = k;
    return k != NULL ? 0 : -1;
}

static int key_teardown(void **state)
{
    envelope_key_free(*state);
    return 0;
}

/* ---- the vectors ---- */

static void test_vectors(void **state)
{
    (void)state;
    json_t *root = load_vectors();
    json_t *arr = json_object_get(root, "vectors"), *v;
    size_t i, accepted = 0, rejected = 0;
    json_array_foreach(arr, i, v)
    {
        const char *name = vstr(v, "name");
        const char *expected = vstr(v, "expected");
        struct envelope_key *key = envelope_key_from_hex(vstr(v, "key_hex"));
        if (key == NULL)
            fail_msg("%s: key_hex refused", name);
        size_t len = 0;
        uint8_t *d = hex_decode(vstr(v, "datagram_hex"), &len);
        uint8_t *plain = malloc(len + 1);
        assert_non_null(plain);
        struct opened o = open_dgram(key, d, len, plain);
        if (strcmp(expected, "accept") == 0) {
            json_t *pt = json_object_get(v, "plaintext");
            assert_true(json_is_string(pt));
            size_t want_len = (size_t)json_integer_value(json_object_get(v, "plaintext_len"));
            assert_int_equal(json_string_length(pt), want_len);
            uint64_t want_ts = (uint64_t)json_integer_value(json_object_get(v, "timestamp_ns"));
            if (o.r != ENVELOPE_OK)
                fail_msg("%s: expected accept, got %d", name, (int)o.r);
            if (o.ts != want_ts)
                fail_msg("%s: timestamp %llu, expected %llu", name, (unsigned long long)o.ts,
                         (unsigned long long)want_ts);
            if (o.json_len != want_len)
                fail_msg("%s: json_len %zu, expected %zu", name, o.json_len, want_len);
            assert_memory_equal(o.json, json_string_value(pt), want_len);
            assert_ptr_equal(o.json, (const char *)plain + ENVELOPE_TS_BYTES);
            /* the nonce is the datagram's first 12 bytes */
            size_t nlen = 0;
            uint8_t *nonce = hex_decode(vstr(v, "nonce_hex"), &nlen);
            assert_int_equal(nlen, ENVELOPE_NONCE_BYTES);
            assert_memory_equal(nonce, d, ENVELOPE_NONCE_BYTES);
            /*
             * The other direction: sealed by us with the same nonce, timestamp and
             * plaintext, the datagram is the original's byte for byte, so the
             * original accepts what we send.
             */
            uint8_t *ours = malloc(len + 1);
            assert_non_null(ours);
            size_t n = envelope_seal_with_nonce(key, nonce, want_ts, json_string_value(pt),
                                                want_len, ours, len + 1);
            if (n != len || memcmp(ours, d, len) != 0)
                fail_msg("%s: our datagram differs from the original's", name);
            free(ours);
            free(nonce);
            accepted++;
        } else {
            assert_string_equal(expected, "reject");
            enum envelope_result want =
                len < ENVELOPE_MIN_DATAGRAM ? ENVELOPE_SHORT : ENVELOPE_AUTH;
            if (o.r != want)
                fail_msg("%s: expected reject (%d), got %d", name, (int)want, (int)o.r);
            assert_untouched(&o);
            rejected++;
        }
        free(plain);
        free(d);
        envelope_key_free(key);
    }
    assert_true(accepted >= 6);
    assert_true(rejected >= 3);
    json_decref(root);
}

/* Every byte of each small accept vector, flipped, makes it fail to open. */
static void test_vectors_flip_every_byte(void **state)
{
    (void)state;
    json_t *root = load_vectors();
    const char *names[] = {"empty-plaintext", "one-byte", "utf8-100-bytes", "json-1400-bytes",
                           "ack-json"};
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        json_t *v = vector_named(root, names[n]);
        struct envelope_key *key = envelope_key_from_hex(vstr(v, "key_hex"));
        assert_non_null(key);
        size_t len = 0;
        uint8_t *d = hex_decode(vstr(v, "datagram_hex"), &len);
        uint8_t *plain = malloc(len);
        assert_non_null(plain);
        for (size_t i = 0; i < len; i++)
            assert_flip_fails(key, d, len, i, plain);
        /* and the untouched datagram still opens */
        assert_int_equal(open_dgram(key, d, len, plain).r, ENVELOPE_OK);
        free(plain);
        free(d);
        envelope_key_free(key);
    }
    json_decref(root);
}

/* The 60000-byte vector: a sample of positions, so it stays fast under ASan. */
static void test_vector_60000_flip_sample(void **state)
{
    (void)state;
    json_t *root = load_vectors();
    json_t *v = vector_named(root, "json-60000-bytes");
    struct envelope_key *key = envelope_key_from_hex(vstr(v, "key_hex"));
    assert_non_null(key);
    size_t len = 0;
    uint8_t *d = hex_decode(vstr(v, "datagram_hex"), &len);
    assert_int_equal(len, 60000 + ENVELOPE_OVERHEAD);
    uint8_t *plain = malloc(len);
    assert_non_null(plain);
    size_t tried = 0;
    for (size_t i = 0; i < len; i++) {
        if (i < 64 || i >= len - 64 || i % 997 == 0) {
            assert_flip_fails(key, d, len, i, plain);
            tried++;
        }
    }
    assert_true(tried > 128 + 50);
    struct opened o = open_dgram(key, d, len, plain);
    assert_int_equal(o.r, ENVELOPE_OK);
    assert_int_equal(o.json_len, 60000);
    free(plain);
    free(d);
    envelope_key_free(key);
    json_decref(root);
}

/* The vectors open in place too (the daemon decrypts into its receive buffer). */
static void test_vectors_open_in_place(void **state)
{
    (void)state;
    json_t *root = load_vectors();
    json_t *arr = json_object_get(root, "vectors"), *v;
    size_t i;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(vstr(v, "expected"), "accept") != 0)
            continue;
        struct envelope_key *key = envelope_key_from_hex(vstr(v, "key_hex"));
        assert_non_null(key);
        size_t len = 0;
        uint8_t *d = hex_decode(vstr(v, "datagram_hex"), &len);
        struct opened o = open_dgram(key, d, len, d + ENVELOPE_NONCE_BYTES);
        assert_int_equal(o.r, ENVELOPE_OK);
        assert_true(o.ts == (uint64_t)json_integer_value(json_object_get(v, "timestamp_ns")));
        json_t *pt = json_object_get(v, "plaintext");
        assert_int_equal(o.json_len, json_string_length(pt));
        assert_ptr_equal(o.json, (const char *)d + ENVELOPE_NONCE_BYTES + ENVELOPE_TS_BYTES);
        assert_memory_equal(o.json, json_string_value(pt), o.json_len);
        free(d);
        envelope_key_free(key);
    }
    json_decref(root);
}

/* ---- seal ---- */

/* What envelope_seal writes is nonce || AEAD(be64(ts) || json), readable by plain libsodium. */
static void test_seal_wire_format(void **state)
{
    const struct envelope_key *key = *state;
    const uint64_t ts = 1763769601123456789ULL;
    uint8_t d[256];
    size_t n = envelope_seal(key, ts, ACK_TEXT, strlen(ACK_TEXT), d, sizeof d);
    assert_int_equal(n, ENVELOPE_OVERHEAD + strlen(ACK_TEXT));
    unsigned char k[ENVELOPE_KEY_BYTES];
    load_key_raw(KEY_HEX, k);
    uint8_t plain[256];
    unsigned long long mlen = 0;
    assert_int_equal(
        crypto_aead_chacha20poly1305_ietf_decrypt(plain, &mlen, NULL, d + ENVELOPE_NONCE_BYTES,
                                                  n - ENVELOPE_NONCE_BYTES, NULL, 0, d, k),
        0);
    assert_int_equal(mlen, ENVELOPE_TS_BYTES + strlen(ACK_TEXT));
    uint8_t be[8];
    put_be64(be, ts);
    assert_memory_equal(plain, be, 8);
    assert_memory_equal(plain + 8, ACK_TEXT, strlen(ACK_TEXT));
}

static void test_seal_open_roundtrip(void **state)
{
    const struct envelope_key *key = *state;
    const size_t sizes[] = {0, 1, 54, 1400, 60000, ENVELOPE_MAX_JSON};
    char *json = malloc(ENVELOPE_MAX_JSON);
    uint8_t *d = malloc(ENVELOPE_MAX_DATAGRAM);
    uint8_t *plain = malloc(ENVELOPE_MAX_DATAGRAM);
    assert_non_null(json);
    assert_non_null(d);
    assert_non_null(plain);
    for (size_t i = 0; i < ENVELOPE_MAX_JSON; i++)
        json[i] = (char)('a' + i % 26);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint64_t ts = 1700000000000000000ULL + s * 1000003ULL;
        size_t n = envelope_seal(key, ts, json, sizes[s], d, ENVELOPE_MAX_DATAGRAM);
        assert_int_equal(n, sizes[s] + ENVELOPE_OVERHEAD);
        struct opened o = open_dgram(key, d, n, plain);
        assert_int_equal(o.r, ENVELOPE_OK);
        assert_true(o.ts == ts);
        assert_int_equal(o.json_len, sizes[s]);
        if (sizes[s] > 0)
            assert_memory_equal(o.json, json, sizes[s]);
    }
    /* timestamps at the ends of the range survive the big-endian encoding */
    const uint64_t edge[] = {0, 1, 0x0102030405060708ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        size_t n = envelope_seal(key, edge[i], "{}", 2, d, ENVELOPE_MAX_DATAGRAM);
        assert_int_equal(n, 2 + ENVELOPE_OVERHEAD);
        struct opened o = open_dgram(key, d, n, plain);
        assert_int_equal(o.r, ENVELOPE_OK);
        assert_true(o.ts == edge[i]);
    }
    free(plain);
    free(d);
    free(json);
}

/* Every datagram gets a fresh nonce: the same input never seals to the same bytes. */
static void test_seal_fresh_nonce(void **state)
{
    const struct envelope_key *key = *state;
    uint8_t a[128], b[128];
    size_t na = envelope_seal(key, 42, ACK_TEXT, strlen(ACK_TEXT), a, sizeof a);
    for (int i = 0; i < 100; i++) {
        size_t nb = envelope_seal(key, 42, ACK_TEXT, strlen(ACK_TEXT), b, sizeof b);
        assert_int_equal(na, nb);
        assert_memory_not_equal(a, b, ENVELOPE_NONCE_BYTES);
        assert_memory_not_equal(a + ENVELOPE_NONCE_BYTES, b + ENVELOPE_NONCE_BYTES,
                                na - ENVELOPE_NONCE_BYTES);
    }
}

/*
 * A forked child neither reuses its parent's random bytes (the nonce pool) nor
 * knows its parent's mark: both are made again in the child.
 */
static void test_fork_fresh_randomness(void **state)
{
    const struct envelope_key *key = *state;
    uint8_t parent[128], child[128] = {0}, marked[128];
    size_t nm =
        envelope_seal_marked(key, 1ULL << 40, ACK_TEXT, strlen(ACK_TEXT), marked, sizeof marked);
    assert_true(nm > 0);
    uint8_t plain[128];
    uint64_t ts = 0;
    const char *json = NULL;
    size_t json_len = 0;
    assert_int_equal(envelope_open(key, marked, nm, plain, &ts, &json, &json_len), ENVELOPE_OK);
    assert_true(envelope_is_marked(marked, ts));
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t out[128 + 1] = {0};
        size_t n = envelope_seal(key, 42, ACK_TEXT, strlen(ACK_TEXT), out + 1, sizeof out - 1);
        out[0] = (uint8_t)envelope_is_marked(marked, ts);
        _exit(n > 0 && write(fds[1], out, sizeof out) == (ssize_t)sizeof out ? 0 : 1);
    }
    close(fds[1]);
    uint8_t got[128 + 1];
    assert_int_equal(read(fds[0], got, sizeof got), (ssize_t)sizeof got);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    memcpy(child, got + 1, sizeof child);
    assert_int_equal(got[0], 0); /* the child's mark key is its own */
    assert_true(envelope_seal(key, 42, ACK_TEXT, strlen(ACK_TEXT), parent, sizeof parent) > 0);
    assert_memory_not_equal(parent, child, ENVELOPE_NONCE_BYTES);
    assert_true(envelope_is_marked(marked, ts)); /* and the parent's is still its own */
}

static void test_seal_limits(void **state)
{
    const struct envelope_key *key = *state;
    size_t big = ENVELOPE_MAX_DATAGRAM + 64;
    char *json = calloc(1, big);
    uint8_t *d = malloc(big);
    assert_non_null(json);
    assert_non_null(d);
    /* one byte too much JSON, even with room in out */
    assert_int_equal(envelope_seal(key, 1, json, ENVELOPE_MAX_JSON + 1, d, big), 0);
    /* out one byte too small, exactly big enough */
    assert_int_equal(envelope_seal(key, 1, json, 10, d, ENVELOPE_OVERHEAD + 9), 0);
    assert_int_equal(envelope_seal(key, 1, json, 10, d, ENVELOPE_OVERHEAD + 10),
                     ENVELOPE_OVERHEAD + 10);
    /* out smaller than the overhead (no wrap-around in cap - overhead) */
    assert_int_equal(envelope_seal(key, 1, json, 0, d, ENVELOPE_OVERHEAD - 1), 0);
    assert_int_equal(envelope_seal(key, 1, json, 0, d, 0), 0);
    assert_int_equal(envelope_seal(key, 1, json, 0, d, ENVELOPE_OVERHEAD), ENVELOPE_OVERHEAD);
    /* the largest JSON makes the largest datagram */
    assert_int_equal(envelope_seal(key, 1, json, ENVELOPE_MAX_JSON, d, big), ENVELOPE_MAX_DATAGRAM);
    free(d);
    free(json);
}

/* ---- open: refusals ---- */

static void test_flip_every_byte_sealed(void **state)
{
    const struct envelope_key *key = *state;
    uint8_t d[128], plain[128];
    size_t n = envelope_seal(key, 1763769600000000000ULL, ACK_TEXT, strlen(ACK_TEXT), d, sizeof d);
    assert_int_equal(n, 90);
    for (size_t i = 0; i < n; i++)
        assert_flip_fails(key, d, n, i, plain);
    /* every bit of the first, a middle and the last byte */
    const size_t pos[] = {0, ENVELOPE_NONCE_BYTES, n / 2, n - 1};
    for (size_t p = 0; p < sizeof pos / sizeof pos[0]; p++) {
        for (int bit = 0; bit < 8; bit++) {
            d[pos[p]] ^= (uint8_t)(1u << bit);
            struct opened o = open_dgram(key, d, n, plain);
            d[pos[p]] ^= (uint8_t)(1u << bit);
            assert_int_equal(o.r, ENVELOPE_AUTH);
            assert_untouched(&o);
        }
    }
    assert_int_equal(open_dgram(key, d, n, plain).r, ENVELOPE_OK);
}

static void test_wrong_key(void **state)
{
    const struct envelope_key *key = *state;
    struct envelope_key *other = envelope_key_from_hex(OTHER_KEY_HEX);
    assert_non_null(other);
    uint8_t d[128], plain[128];
    size_t n = envelope_seal(key, 5, ACK_TEXT, strlen(ACK_TEXT), d, sizeof d);
    struct opened o = open_dgram(other, d, n, plain);
    assert_int_equal(o.r, ENVELOPE_AUTH);
    assert_untouched(&o);
    assert_int_equal(open_dgram(key, d, n, plain).r, ENVELOPE_OK);
    envelope_key_free(other);
}

static void test_short_lengths(void **state)
{
    const struct envelope_key *key = *state;
    uint8_t d[128], plain[128];
    size_t n = envelope_seal(key, 7, ACK_TEXT, strlen(ACK_TEXT), d, sizeof d);
    for (size_t len = 0; len < ENVELOPE_MIN_DATAGRAM; len++) {
        struct opened o = open_dgram(key, d, len, plain);
        if (o.r != ENVELOPE_SHORT)
            fail_msg("length %zu: result %d, expected ENVELOPE_SHORT", len, (int)o.r);
        assert_untouched(&o);
    }
    /* from 28 bytes on, a truncated datagram is tried and fails authentication */
    for (size_t len = ENVELOPE_MIN_DATAGRAM; len < n; len++) {
        struct opened o = open_dgram(key, d, len, plain);
        if (o.r != ENVELOPE_AUTH)
            fail_msg("truncated to %zu: result %d, expected ENVELOPE_AUTH", len, (int)o.r);
        assert_untouched(&o);
    }
}

/* Authentic, but the plaintext has no room for the 8-byte timestamp. */
static void test_malformed_short_plaintext(void **state)
{
    const struct envelope_key *key = *state;
    uint8_t body[ENVELOPE_TS_BYTES];
    memset(body, 0x11, sizeof body);
    uint8_t plain[64];
    for (size_t pl = 0; pl < ENVELOPE_TS_BYTES; pl++) {
        size_t len = 0;
        uint8_t *d = raw_seal_plain(KEY_HEX, body, pl, &len);
        assert_int_equal(len, ENVELOPE_MIN_DATAGRAM + pl);
        struct opened o = open_dgram(key, d, len, plain);
        if (o.r != ENVELOPE_MALFORMED)
            fail_msg("plaintext of %zu bytes: result %d, expected ENVELOPE_MALFORMED", pl,
                     (int)o.r);
        assert_untouched(&o);
        free(d);
    }
    /* exactly 8 bytes: a timestamp and empty JSON text */
    uint8_t be[8];
    put_be64(be, 0x0011223344556677ULL);
    size_t len = 0;
    uint8_t *d = raw_seal_plain(KEY_HEX, be, sizeof be, &len);
    struct opened o = open_dgram(key, d, len, plain);
    assert_int_equal(o.r, ENVELOPE_OK);
    assert_true(o.ts == 0x0011223344556677ULL);
    assert_int_equal(o.json_len, 0);
    free(d);
}

/* Authentic datagrams: the largest opens, one byte more is refused before any crypto. */
static void test_over_maximum(void **state)
{
    const struct envelope_key *key = *state;
    size_t pl_max = ENVELOPE_MAX_DATAGRAM - ENVELOPE_MIN_DATAGRAM;
    uint8_t *body = malloc(pl_max + 1000);
    uint8_t *plain = malloc(ENVELOPE_MAX_DATAGRAM + 1000);
    assert_non_null(body);
    assert_non_null(plain);
    memset(body, '{', pl_max + 1000);
    put_be64(body, 99);

    size_t len = 0;
    uint8_t *d = raw_seal_plain(KEY_HEX, body, pl_max, &len);
    assert_int_equal(len, ENVELOPE_MAX_DATAGRAM);
    struct opened o = open_dgram(key, d, len, plain);
    assert_int_equal(o.r, ENVELOPE_OK);
    assert_int_equal(o.json_len, ENVELOPE_MAX_JSON);
    assert_true(o.ts == 99);
    free(d);

    const size_t extra[] = {1, 2, 1000};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        d = raw_seal_plain(KEY_HEX, body, pl_max + extra[i], &len);
        assert_int_equal(len, ENVELOPE_MAX_DATAGRAM + extra[i]);
        o = open_dgram(key, d, len, plain);
        if (o.r != ENVELOPE_SHORT)
            fail_msg("authentic datagram of %zu bytes: result %d, expected ENVELOPE_SHORT", len,
                     (int)o.r);
        assert_untouched(&o);
        free(d);
    }
    free(plain);
    free(body);
}

/* plain may be the datagram's own buffer, just past the nonce. */
static void test_open_in_place(void **state)
{
    const struct envelope_key *key = *state;
    const size_t sizes[] = {0, 54, 1400};
    char json[1400];
    for (size_t i = 0; i < sizeof json; i++)
        json[i] = (char)('0' + i % 10);
    uint8_t d[1400 + ENVELOPE_OVERHEAD];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = envelope_seal(key, 1234567890123ULL + s, json, sizes[s], d, sizeof d);
        assert_int_equal(n, sizes[s] + ENVELOPE_OVERHEAD);
        struct opened o = open_dgram(key, d, n, d + ENVELOPE_NONCE_BYTES);
        assert_int_equal(o.r, ENVELOPE_OK);
        assert_true(o.ts == 1234567890123ULL + s);
        assert_int_equal(o.json_len, sizes[s]);
        assert_ptr_equal(o.json, (const char *)d + ENVELOPE_NONCE_BYTES + ENVELOPE_TS_BYTES);
        if (sizes[s] > 0)
            assert_memory_equal(o.json, json, sizes[s]);
    }
}

/* ---- timestamps ---- */

#define NS 1000000000ULL

static void test_ts_fresh_edges(void **state)
{
    (void)state;
    const uint64_t now = 1763769600000000000ULL;
    assert_int_equal(envelope_ts_fresh(now, now, 10), 1);
    assert_int_equal(envelope_ts_fresh(now - 10 * NS, now, 10), 1);
    assert_int_equal(envelope_ts_fresh(now + 10 * NS, now, 10), 1);
    assert_int_equal(envelope_ts_fresh(now - 10 * NS - 1, now, 10), 0);
    assert_int_equal(envelope_ts_fresh(now + 10 * NS + 1, now, 10), 0);
    assert_int_equal(envelope_ts_fresh(0, now, 10), 0);
    assert_int_equal(envelope_ts_fresh(UINT64_MAX, now, 10), 0);
    /* window 1 */
    assert_int_equal(envelope_ts_fresh(now - NS, now, 1), 1);
    assert_int_equal(envelope_ts_fresh(now - NS - 1, now, 1), 0);
}

static void test_ts_fresh_window_zero(void **state)
{
    (void)state;
    const uint64_t now = 1763769600000000000ULL;
    assert_int_equal(envelope_ts_fresh(now, now, 0), 1);
    assert_int_equal(envelope_ts_fresh(now - 1, now, 0), 0);
    assert_int_equal(envelope_ts_fresh(now + 1, now, 0), 0);
    assert_int_equal(envelope_ts_fresh(0, 0, 0), 1);
    assert_int_equal(envelope_ts_fresh(1, 0, 0), 0);
    assert_int_equal(envelope_ts_fresh(UINT64_MAX, UINT64_MAX, 0), 1);
    assert_int_equal(envelope_ts_fresh(UINT64_MAX - 1, UINT64_MAX, 0), 0);
}

static void test_ts_fresh_overflow(void **state)
{
    (void)state;
    /* now + window past UINT64_MAX: the upper bound saturates, no wrap to "stale" */
    uint64_t now = UINT64_MAX - 5;
    assert_int_equal(envelope_ts_fresh(UINT64_MAX, now, 10), 1);
    assert_int_equal(envelope_ts_fresh(now, now, 10), 1);
    assert_int_equal(envelope_ts_fresh(now - 10 * NS, now, 10), 1);
    assert_int_equal(envelope_ts_fresh(now - 10 * NS - 1, now, 10), 0);
    assert_int_equal(envelope_ts_fresh(0, now, 10), 0);
    /* a window whose nanoseconds overflow 64 bits accepts everything, never wraps */
    uint64_t huge = UINT64_MAX / NS + 1;
    assert_int_equal(envelope_ts_fresh(0, 1763769600000000000ULL, huge), 1);
    assert_int_equal(envelope_ts_fresh(UINT64_MAX, 1763769600000000000ULL, huge), 1);
    assert_int_equal(envelope_ts_fresh(0, 1763769600000000000ULL, UINT64_MAX), 1);
    assert_int_equal(envelope_ts_fresh(UINT64_MAX, 0, UINT64_MAX), 1);
    /* the largest window that does not overflow still has edges */
    uint64_t w = UINT64_MAX / NS; /* 18446744073 s */
    assert_int_equal(envelope_ts_fresh(w * NS, 0, w), 1);
    assert_int_equal(envelope_ts_fresh(w * NS + 1, 0, w), 0);
}

static void test_ts_fresh_now_below_window(void **state)
{
    (void)state;
    /* now - window would go below zero: the lower bound is 0, no wrap-around */
    uint64_t now = 5 * NS;
    assert_int_equal(envelope_ts_fresh(0, now, 10), 1);
    assert_int_equal(envelope_ts_fresh(now, now, 10), 1);
    assert_int_equal(envelope_ts_fresh(now + 10 * NS, now, 10), 1);
    assert_int_equal(envelope_ts_fresh(now + 10 * NS + 1, now, 10), 0);
    assert_int_equal(envelope_ts_fresh(UINT64_MAX, now, 10), 0);
    assert_int_equal(envelope_ts_fresh(UINT64_MAX - 4 * NS, now, 10), 0);
    assert_int_equal(envelope_ts_fresh(0, 0, 10), 1);
    assert_int_equal(envelope_ts_fresh(10 * NS, 0, 10), 1);
    assert_int_equal(envelope_ts_fresh(10 * NS + 1, 0, 10), 0);
}

/* ---- keys ---- */

static void test_key_from_hex(void **state)
{
    (void)state;
    char buf[80];
    /* 63 and 65 digits */
    snprintf(buf, sizeof buf, "%.63s", KEY_HEX);
    assert_null(envelope_key_from_hex(buf));
    snprintf(buf, sizeof buf, "%s0", KEY_HEX);
    assert_null(envelope_key_from_hex(buf));
    assert_null(envelope_key_from_hex(""));
    assert_null(envelope_key_from_hex(NULL));
    /* a non-hex character anywhere among 64 */
    const size_t at[] = {0, 1, 31, 62, 63};
    const char bad[] = {'g', 'G', 'z', ' ', ':', '-', 'x'};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        for (size_t b = 0; b < sizeof bad; b++) {
            snprintf(buf, sizeof buf, "%s", KEY_HEX);
            buf[at[i]] = bad[b];
            struct envelope_key *k = envelope_key_from_hex(buf);
            if (k != NULL)
                fail_msg("accepted a key with '%c' at %zu", bad[b], at[i]);
        }
    }
    /* upper case is the same key as lower case */
    char upper[ENVELOPE_KEY_HEX_LEN + 1];
    for (size_t i = 0; i <= ENVELOPE_KEY_HEX_LEN; i++)
        upper[i] = (char)(KEY_HEX[i] >= 'a' && KEY_HEX[i] <= 'f' ? KEY_HEX[i] - 32 : KEY_HEX[i]);
    assert_string_not_equal(upper, KEY_HEX);
    struct envelope_key *ku = envelope_key_from_hex(upper);
    struct envelope_key *kl = envelope_key_from_hex(KEY_HEX);
    assert_non_null(ku);
    assert_non_null(kl);
    uint8_t d[128], plain[128];
    size_t n = envelope_seal(ku, 77, ACK_TEXT, strlen(ACK_TEXT), d, sizeof d);
    struct opened o = open_dgram(kl, d, n, plain);
    assert_int_equal(o.r, ENVELOPE_OK);
    assert_true(o.ts == 77);
    /* the key really is the hex's bytes: libsodium opens what it seals */
    unsigned char raw[ENVELOPE_KEY_BYTES];
    load_key_raw(KEY_HEX, raw);
    unsigned long long mlen = 0;
    assert_int_equal(
        crypto_aead_chacha20poly1305_ietf_decrypt(plain, &mlen, NULL, d + ENVELOPE_NONCE_BYTES,
                                                  n - ENVELOPE_NONCE_BYTES, NULL, 0, d, raw),
        0);
    envelope_key_free(ku);
    envelope_key_free(kl);
    envelope_key_free(NULL);
}

/* ---- random hex ---- */

static void assert_lower_hex(const char *s, size_t len)
{
    assert_int_equal(strlen(s), len);
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            fail_msg("'%c' at %zu is not a lowercase hex digit", s[i], i);
}

static void test_random_hex(void **state)
{
    (void)state;
    char a[256], b[256];
    const size_t ns[] = {0, 1, 12, 63, 64, 65, 100};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        memset(a, '#', sizeof a);
        envelope_random_hex(a, ns[i]);
        assert_lower_hex(a, 2 * ns[i]);
        assert_int_equal(a[2 * ns[i] + 1], '#'); /* wrote 2n digits and a NUL, no more */
    }
    /* 12 bytes, as for a message_id: differs between calls */
    envelope_random_hex(a, 12);
    for (int i = 0; i < 1000; i++) {
        envelope_random_hex(b, 12);
        assert_lower_hex(b, 24);
        assert_string_not_equal(a, b);
        memcpy(a, b, sizeof b);
    }
    /* every digit shows up: not stuck on a subset */
    int seen[16] = {0};
    for (int i = 0; i < 50; i++) {
        envelope_random_hex(a, 100);
        for (size_t j = 0; j < 200; j++)
            seen[a[j] <= '9' ? a[j] - '0' : a[j] - 'a' + 10] = 1;
    }
    for (int d = 0; d < 16; d++)
        assert_true(seen[d]);
}

/*
 * Message ids: 24 lowercase hex digits; one after another they sort in the
 * order made (the first half counts up by one), so they land together in the
 * unique indexes; the second half is never repeated; a forked child counts
 * from a start of its own.
 */
static void test_message_id(void **state)
{
    (void)state;
    char prev[25], id[25];
    envelope_message_id(prev);
    assert_lower_hex(prev, 24);
    for (int i = 0; i < 2000; i++) {
        memset(id, '#', sizeof id);
        envelope_message_id(id);
        assert_lower_hex(id, 24);
        unsigned long long a, b;
        char half[13];
        memcpy(half, prev, 12);
        half[12] = '\0';
        a = strtoull(half, NULL, 16);
        memcpy(half, id, 12);
        b = strtoull(half, NULL, 16);
        assert_true(b == ((a + 1) & 0xffffffffffffULL)); /* counts up: sorts in order made */
        assert_memory_not_equal(prev + 12, id + 12, 12); /* random half: fresh every time */
        memcpy(prev, id, sizeof id);
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char child[25];
        envelope_message_id(child);
        _exit(write(fds[1], child, sizeof child) == (ssize_t)sizeof child ? 0 : 1);
    }
    close(fds[1]);
    char child[25];
    assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    envelope_message_id(id);
    assert_lower_hex(child, 24);
    assert_memory_not_equal(child, id, 12); /* not the parent's next count */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_vectors_flip_every_byte),
        cmocka_unit_test(test_vector_60000_flip_sample),
        cmocka_unit_test(test_vectors_open_in_place),
        cmocka_unit_test_setup_teardown(test_seal_wire_format, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_seal_open_roundtrip, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_seal_fresh_nonce, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_fork_fresh_randomness, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_seal_limits, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_flip_every_byte_sealed, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_short_lengths, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_short_plaintext, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_over_maximum, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(test_open_in_place, key_setup, key_teardown),
        cmocka_unit_test(test_ts_fresh_edges),
        cmocka_unit_test(test_ts_fresh_window_zero),
        cmocka_unit_test(test_ts_fresh_overflow),
        cmocka_unit_test(test_ts_fresh_now_below_window),
        cmocka_unit_test(test_key_from_hex),
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test(test_message_id),
    };
    return cmocka_run_group_tests_name("envelope", tests, group_setup, NULL);
}
