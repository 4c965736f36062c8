/*
 * peerkeys: the per-peer key schedule against tests/vectors/peerkeys.json
 * (made with Python's own BLAKE2b), and the properties the wire relies on:
 * one pair key for both sides, a key of its own for each direction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/hex.h"
#include "wire/peerkeys.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#ifndef SHARED_DIR
#error "SHARED_DIR must be defined (the Makefile passes it)"
#endif

#define VECTORS_PATH SHARED_DIR "/vectors/peerkeys.json"

static void hex_of(const json_t *v, const char *field, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(v, field));
    assert_non_null(s);
    assert_int_equal(hex_decode(out, n, s, strlen(s)), 0);
}

/* The direction key from -> to and its id, as vector v has them under key_FIELD and id_FIELD. */
static void check_direction(const json_t *v, const uint8_t pair[32], const char *from,
                            const char *to, const char *field)
{
    uint8_t want[32], got[32], wid[8], gid[8];
    char name[32];
    assert_int_equal(peerkeys_direction(pair, from, to, got), 0);
    snprintf(name, sizeof name, "key_%s", field);
    hex_of(v, name, want, 32);
    assert_memory_equal(got, want, 32);
    peerkeys_id(got, gid);
    snprintf(name, sizeof name, "id_%s", field);
    hex_of(v, name, wid, 8);
    assert_memory_equal(gid, wid, 8);
}

static void test_vectors(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(VECTORS_PATH, 0, &jerr);
    if (root == NULL)
        fail_msg("%s: %s", VECTORS_PATH, jerr.text);
    json_t *vs = json_object_get(root, "vectors");
    assert_true(json_array_size(vs) >= 5);
    size_t i;
    json_t *v;
    json_array_foreach(vs, i, v)
    {
        uint8_t master[32], want[32], got[32], pair[32];
        const char *a = json_string_value(json_object_get(v, "a"));
        const char *b = json_string_value(json_object_get(v, "b"));
        hex_of(v, "master", master, 32);
        assert_int_equal(peerkeys_pair(master, a, b, pair), 0);
        hex_of(v, "pair", want, 32);
        assert_memory_equal(pair, want, 32);
        assert_int_equal(peerkeys_pair(master, b, a, got), 0); /* the other side: the same */
        assert_memory_equal(got, want, 32);
        check_direction(v, pair, a, b, "a_to_b");
        check_direction(v, pair, b, a, "b_to_a");
        uint8_t fp[8], wfp[8];
        peerkeys_fingerprint(pair, fp);
        hex_of(v, "fingerprint", wfp, 8);
        assert_memory_equal(fp, wfp, 8);
    }
    json_decref(root);
}

static void test_properties(void **state)
{
    (void)state;
    uint8_t master[32] = {7}, other[32] = {8}, p1[32], p2[32], ab[32], ba[32];
    assert_int_equal(peerkeys_pair(master, "a", "b", p1), 0);
    assert_int_equal(peerkeys_pair(other, "a", "b", p2), 0);
    assert_memory_not_equal(p1, p2, 32); /* another master, other keys */
    assert_int_equal(peerkeys_pair(master, "a", "c", p2), 0);
    assert_memory_not_equal(p1, p2, 32); /* another pair, another key */
    /* names are length-prefixed: "ab"+"c" is not "a"+"bc" */
    assert_int_equal(peerkeys_pair(master, "ab", "c", p1), 0);
    assert_int_equal(peerkeys_pair(master, "a", "bc", p2), 0);
    assert_memory_not_equal(p1, p2, 32);
    assert_int_equal(peerkeys_direction(p1, "ab", "c", ab), 0);
    assert_int_equal(peerkeys_direction(p1, "c", "ab", ba), 0);
    assert_memory_not_equal(ab, ba, 32); /* each direction its own */
    uint8_t i1[8], i2[8];
    peerkeys_id(ab, i1);
    peerkeys_id(ba, i2);
    assert_memory_not_equal(i1, i2, 8);
    /* refused: a host paired with itself, empty or overlong names */
    char n65[66];
    memset(n65, 'x', 65);
    n65[65] = '\0';
    assert_int_equal(peerkeys_pair(master, "a", "a", p1), -1);
    assert_int_equal(peerkeys_pair(master, "", "a", p1), -1);
    assert_int_equal(peerkeys_pair(master, "a", n65, p1), -1);
    assert_int_equal(peerkeys_direction(p1, "a", "a", ab), -1);
    assert_int_equal(peerkeys_direction(p1, n65, "a", ab), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
