/*
 * envelope_v2: version 2 datagrams against tests/vectors/envelope_v2.json
 * (sealed by a plain-Python XChaCha20-Poly1305), and what the receiver
 * relies on: the header is read without crypto, every byte of it is
 * authenticated, one direction's key does not open the other's datagrams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/hex.h"
#include "wire/envelope_v2.h"

#include <jansson.h>
#include <string.h>

#ifndef SHARED_DIR
#error "SHARED_DIR must be defined (the Makefile passes it)"
#endif

#define VECTORS_PATH SHARED_DIR "/vectors/envelope_v2.json"

static size_t unhex(const json_t *v, const char *field, uint8_t *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(v, field));
    assert_non_null(s);
    size_t n = strlen(s) / 2;
    assert_true(n <= cap);
    assert_int_equal(hex_decode(out, n, s, 2 * n), 0);
    return n;
}

static void test_vectors(void **state)
{
    (void)state;
    assert_int_equal(envelope_init(), 0);
    json_error_t jerr;
    json_t *root = json_load_file(VECTORS_PATH, 0, &jerr);
    if (root == NULL)
        fail_msg("%s: %s", VECTORS_PATH, jerr.text);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "vectors"), i, v)
    {
        uint8_t keyb[32], id[8], nonce[24], want[512], got[512], plain[512];
        unhex(v, "key", keyb, sizeof keyb);
        unhex(v, "key_id", id, sizeof id);
        unhex(v, "nonce", nonce, sizeof nonce);
        size_t wn = unhex(v, "datagram_hex", want, sizeof want);
        const char *body = json_string_value(json_object_get(v, "body"));
        uint64_t ts = (uint64_t)json_integer_value(json_object_get(v, "timestamp_ns"));
        struct envelope_key *key = envelope_key_from_bytes(keyb);
        assert_non_null(key);
        size_t n = envelope_v2_seal_with_nonce(key, id, ENVELOPE_V2_TYPE_MESSAGE, nonce, ts, body,
                                               strlen(body), got, sizeof got);
        assert_int_equal(n, wn);
        assert_memory_equal(got, want, wn);
        struct envelope_v2_header h;
        assert_int_equal(envelope_v2_header(want, wn, &h), 0);
        assert_memory_equal(h.key_id, id, 8);
        uint64_t ts_out = 0;
        const uint8_t *b = NULL;
        size_t blen = 0;
        assert_int_equal(envelope_v2_open(key, want, wn, plain, &ts_out, &b, &blen), ENVELOPE_OK);
        assert_true(ts_out == ts);
        assert_int_equal(blen, strlen(body));
        assert_memory_equal(b, body, blen);
        /* every byte, header included, is authenticated */
        for (size_t k = 0; k < wn; k++) {
            uint8_t bad[512];
            memcpy(bad, want, wn);
            bad[k] ^= 0x01;
            assert_int_equal(envelope_v2_open(key, bad, wn, plain, &ts_out, &b, &blen),
                             ENVELOPE_AUTH);
        }
        envelope_key_free(key);
    }
    json_decref(root);
}

static void test_header(void **state)
{
    (void)state;
    uint8_t d[ENVELOPE_V2_OVERHEAD + 4];
    memset(d, 0, sizeof d);
    d[0] = ENVELOPE_V2_VERSION;
    d[1] = ENVELOPE_V2_TYPE_MESSAGE;
    memset(d + 4, 0xab, 8);
    struct envelope_v2_header h;
    assert_int_equal(envelope_v2_header(d, sizeof d, &h), 0);
    assert_int_equal(h.key_id[7], 0xab);
    assert_int_equal(envelope_v2_header(d, ENVELOPE_V2_OVERHEAD - 1, &h), -1); /* too short */
    d[0] = 1;
    assert_int_equal(envelope_v2_header(d, sizeof d, &h), -1); /* another version */
    d[0] = ENVELOPE_V2_VERSION;
    /* the known types: a message (or ACK), a part, a part ACK; no other */
    for (int t = 0; t < 256; t++) {
        d[1] = (uint8_t)t;
        int known = t == ENVELOPE_V2_TYPE_MESSAGE || t == ENVELOPE_V2_TYPE_PART ||
                    t == ENVELOPE_V2_TYPE_PART_ACK;
        assert_int_equal(envelope_v2_header(d, sizeof d, &h), known ? 0 : -1);
        if (known)
            assert_int_equal(h.type, t);
    }
    assert_int_equal(ENVELOPE_V2_TYPE_PART, 0x02);
    assert_int_equal(ENVELOPE_V2_TYPE_PART_ACK, 0x03);
    d[1] = ENVELOPE_V2_TYPE_MESSAGE;
    d[3] = 1;
    assert_int_equal(envelope_v2_header(d, sizeof d, &h), -1); /* reserved bits set */
    d[1] = ENVELOPE_V2_TYPE_PART;
    assert_int_equal(envelope_v2_header(d, sizeof d, &h), -1); /* for every type */
    d[3] = 0;
    d[2] = 0x80;
    assert_int_equal(envelope_v2_header(d, sizeof d, &h), -1);
}

static void test_directions_and_limits(void **state)
{
    (void)state;
    uint8_t ka[32], kb[32], id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    memset(ka, 0x11, 32);
    memset(kb, 0x22, 32);
    struct envelope_key *a = envelope_key_from_bytes(ka), *b = envelope_key_from_bytes(kb);
    static uint8_t d[ENVELOPE_MAX_DATAGRAM + 64], plain[ENVELOPE_MAX_DATAGRAM + 64];
    static char body[ENVELOPE_MAX_DATAGRAM];
    memset(body, 'x', sizeof body);
    size_t n = envelope_v2_seal(a, id, ENVELOPE_V2_TYPE_MESSAGE, 5, "{}", 2, d, sizeof d);
    assert_int_equal(n, ENVELOPE_V2_OVERHEAD + 2);
    uint64_t ts;
    const uint8_t *bp;
    size_t bl;
    assert_int_equal(envelope_v2_open(b, d, n, plain, &ts, &bp, &bl), ENVELOPE_AUTH);
    assert_int_equal(envelope_v2_open(a, d, n, plain, &ts, &bp, &bl), ENVELOPE_OK);
    /* two seals of one body differ (random nonces) */
    static uint8_t d2[128];
    assert_int_equal(envelope_v2_seal(a, id, ENVELOPE_V2_TYPE_MESSAGE, 5, "{}", 2, d2, sizeof d2),
                     n);
    assert_memory_not_equal(d, d2, n);
    /* the largest body fits one datagram exactly; one byte more does not */
    n = envelope_v2_seal(a, id, ENVELOPE_V2_TYPE_MESSAGE, 5, body, ENVELOPE_V2_MAX_BODY, d,
                         sizeof d);
    assert_int_equal(n, ENVELOPE_MAX_DATAGRAM);
    assert_int_equal(envelope_v2_open(a, d, n, plain, &ts, &bp, &bl), ENVELOPE_OK);
    assert_int_equal(bl, ENVELOPE_V2_MAX_BODY);
    assert_int_equal(envelope_v2_seal(a, id, ENVELOPE_V2_TYPE_MESSAGE, 5, body,
                                      ENVELOPE_V2_MAX_BODY + 1, d, sizeof d),
                     0);
    assert_int_equal(
        envelope_v2_seal(a, id, ENVELOPE_V2_TYPE_MESSAGE, 5, "{}", 2, d, ENVELOPE_V2_OVERHEAD + 1),
        0); /* no room */
    assert_int_equal(envelope_v2_open(a, d, ENVELOPE_V2_OVERHEAD - 1, plain, &ts, &bp, &bl),
                     ENVELOPE_SHORT);
    envelope_key_free(a);
    envelope_key_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_directions_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
