/*
 * table: insert, find, remove and iteration checked against a plain
 * reference array under thousands of random operations; a full table
 * refuses; each table hashes under its own key.
 */
#include "util/table.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

/* A value with an 8-byte member, to see that values are aligned for it. */
struct val {
    uint64_t n;
    uint8_t tag;
};

static void key_of(unsigned n, uint8_t key[18])
{
    memset(key, 0, 18);
    memcpy(key, &n, sizeof n);
    key[17] = (uint8_t)(n * 7);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_null(table_new(4, 0, 8));
    assert_null(table_new(TABLE_MAX_CAPACITY + 1, 4, 8));
    table_free(NULL);
    struct table *t = table_new(0, 4, 0); /* capacity 0: always full */
    assert_non_null(t);
    assert_null(table_insert(t, "abcd"));
    assert_null(table_find(t, "abcd"));
    assert_int_equal(table_count(t), 0);
    size_t pos = 0;
    assert_null(table_next(t, &pos));
    assert_null(table_at(t, 0));
    table_free(t);
}

static void test_basic(void **state)
{
    (void)state;
    struct table *t = table_new(8, 18, sizeof(struct val));
    assert_non_null(t);
    assert_int_equal(table_capacity(t), 8);
    uint8_t k[18];
    key_of(1, k);
    struct val *v = table_insert(t, k);
    assert_non_null(v);
    assert_int_equal((uintptr_t)v % 8, 0);
    assert_int_equal(v->n, 0); /* zeroed */
    v->n = 42;
    assert_ptr_equal(table_find(t, k), v);
    assert_null(table_insert(t, k)); /* already in */
    assert_memory_equal(table_key(t, v), k, 18);
    assert_ptr_equal(table_at(t, table_index(t, v)), v);
    /* the key is copied, not referenced */
    k[0] ^= 1;
    assert_null(table_find(t, k));
    k[0] ^= 1;
    /* one byte anywhere in the key makes another key */
    for (int i = 0; i < 18; i++) {
        uint8_t o[18];
        memcpy(o, k, 18);
        o[i] ^= 0x80;
        assert_null(table_find(t, o));
    }
    table_remove(t, v);
    assert_null(table_find(t, k));
    assert_int_equal(table_count(t), 0);
    table_remove(t, v); /* again: nothing happens */
    assert_int_equal(table_count(t), 0);
    /* its slot is used again, zeroed */
    struct val *w = table_insert(t, k);
    assert_ptr_equal(w, v);
    assert_int_equal(w->n, 0);
    table_free(t);
}

static void test_full_refuses(void **state)
{
    (void)state;
    struct table *t = table_new(100, 18, sizeof(struct val));
    assert_non_null(t);
    uint8_t k[18];
    for (unsigned i = 0; i < 100; i++) {
        key_of(i, k);
        struct val *v = table_insert(t, k);
        assert_non_null(v);
        v->n = i;
    }
    key_of(100, k);
    assert_null(table_insert(t, k));
    assert_int_equal(table_count(t), 100);
    assert_null(table_find(t, k)); /* the refused key left no trace */
    for (unsigned i = 0; i < 100; i++) {
        key_of(i, k);
        struct val *v = table_find(t, k);
        assert_non_null(v);
        assert_int_equal(v->n, i);
    }
    key_of(37, k);
    table_remove(t, table_find(t, k));
    key_of(100, k);
    assert_non_null(table_insert(t, k));
    key_of(101, k);
    assert_null(table_insert(t, k));
    table_free(t);
}

/* Two tables hash the same key differently: each makes its own SipHash key. */
static void test_keys_differ_per_table(void **state)
{
    (void)state;
    struct table *a = table_new(16, 18, 0), *b = table_new(16, 18, 0);
    assert_non_null(a);
    assert_non_null(b);
    uint8_t k[18];
    int same = 0;
    for (unsigned i = 0; i < 64; i++) {
        key_of(i, k);
        assert_true(table_hash(a, k) == table_hash(a, k)); /* stable within a table */
        same += table_hash(a, k) == table_hash(b, k);
    }
    assert_int_equal(same, 0); /* each equality has odds of 2^-64 */
    /* and the low bits (the chain) are not all alike either */
    int low_same = 0;
    for (unsigned i = 0; i < 64; i++) {
        key_of(i, k);
        low_same += (table_hash(a, k) & 15) == (table_hash(b, k) & 15);
    }
    assert_true(low_same < 32);
    table_free(a);
    table_free(b);
}

/* Iteration visits each entry once; removing the current one as it goes is allowed. */
static void test_iteration(void **state)
{
    (void)state;
    struct table *t = table_new(50, 4, sizeof(unsigned));
    assert_non_null(t);
    for (unsigned i = 0; i < 50; i++) {
        unsigned *v = table_insert(t, &i);
        assert_non_null(v);
        *v = i;
    }
    for (unsigned i = 0; i < 50; i += 3)
        table_remove(t, table_find(t, &i));
    int seen[50] = {0};
    size_t pos = 0;
    unsigned n = 0;
    for (unsigned *v; (v = table_next(t, &pos)) != NULL; n++) {
        assert_true(*v < 50);
        assert_memory_equal(table_key(t, v), v, sizeof *v);
        seen[*v]++;
        if (*v % 2 == 0)
            table_remove(t, v);
    }
    assert_int_equal(n, 50 - 17);
    for (unsigned i = 0; i < 50; i++)
        assert_int_equal(seen[i], i % 3 == 0 ? 0 : 1);
    assert_int_equal(table_count(t), 50 - 17 - 16);
    pos = 0;
    for (unsigned *v; (v = table_next(t, &pos)) != NULL;)
        assert_true(*v % 2 == 1 && *v % 3 != 0);
    table_free(t);
}

/* ---- randomized, against a reference ---- */

#define CAP 300
#define SPACE 700 /* keys drawn from 0 .. SPACE - 1: finds miss, inserts collide */

struct ref {
    int in[SPACE];
    uint64_t val[SPACE];
    size_t count;
};

static void check_all(struct table *t, const struct ref *r)
{
    assert_int_equal(table_count(t), r->count);
    uint8_t k[32] = {0};
    for (unsigned i = 0; i < SPACE; i++) {
        memcpy(k, &i, sizeof i);
        uint64_t *v = table_find(t, k);
        if (r->in[i]) {
            assert_non_null(v);
            assert_int_equal(*v, r->val[i]);
        } else {
            assert_null(v);
        }
    }
    size_t pos = 0, n = 0;
    for (uint64_t *v; (v = table_next(t, &pos)) != NULL; n++) {
        unsigned i;
        memcpy(&i, table_key(t, v), sizeof i);
        assert_true(i < SPACE && r->in[i] && r->val[i] == *v);
        assert_ptr_equal(table_at(t, table_index(t, v)), v);
        assert_true(table_index(t, v) < CAP);
    }
    assert_int_equal(n, r->count);
}

static void random_run(size_t key_bytes, unsigned seed)
{
    struct table *t = table_new(CAP, key_bytes, sizeof(uint64_t));
    assert_non_null(t);
    static struct ref r;
    memset(&r, 0, sizeof r);
    srand(seed);
    uint8_t k[32] = {0};
    for (int op = 0; op < 20000; op++) {
        unsigned i = (unsigned)rand() % SPACE;
        memcpy(k, &i, sizeof i);
        int what = rand() % 10;
        if (what < 5) { /* insert */
            uint64_t *v = table_insert(t, k);
            if (r.in[i] || r.count == CAP) {
                assert_null(v);
            } else {
                assert_non_null(v);
                assert_int_equal(*v, 0);
                *v = r.val[i] = ((uint64_t)rand() << 16) ^ (uint64_t)op;
                r.in[i] = 1;
                r.count++;
            }
        } else if (what < 8) { /* remove */
            uint64_t *v = table_find(t, k);
            assert_true((v != NULL) == (r.in[i] != 0));
            if (v != NULL) {
                table_remove(t, v);
                r.in[i] = 0;
                r.count--;
            }
        } else { /* update */
            uint64_t *v = table_find(t, k);
            assert_true((v != NULL) == (r.in[i] != 0));
            if (v != NULL)
                *v = r.val[i] = (uint64_t)op * 31;
        }
        if (op % 1000 == 0)
            check_all(t, &r);
    }
    check_all(t, &r);
    table_free(t);
}

static void test_random_against_reference(void **state)
{
    (void)state;
    random_run(4, 1);
    random_run(12, 2); /* replay's nonces */
    random_run(16, 3); /* ratelimit's hosts */
    random_run(18, 4); /* flow's addresses */
    random_run(24, 5); /* retx's message ids */
    random_run(5, 6);  /* an odd size: values still aligned */
}

/* A large table whose pool is touched only as it fills, still finding everything. */
static void test_large(void **state)
{
    (void)state;
    struct table *t = table_new(1u << 20, 12, sizeof(uint64_t));
    assert_non_null(t);
    uint8_t k[12] = {0};
    for (unsigned i = 0; i < 50000; i++) {
        memcpy(k + 4, &i, sizeof i);
        uint64_t *v = table_insert(t, k);
        assert_non_null(v);
        assert_int_equal((uintptr_t)v % 8, 0);
        *v = i;
    }
    for (unsigned i = 0; i < 50000; i++) {
        memcpy(k + 4, &i, sizeof i);
        uint64_t *v = table_find(t, k);
        assert_non_null(v);
        assert_int_equal(*v, i);
    }
    assert_null(table_at(t, 50000)); /* never handed out */
    table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments), cmocka_unit_test(test_basic),
        cmocka_unit_test(test_full_refuses),  cmocka_unit_test(test_keys_differ_per_table),
        cmocka_unit_test(test_iteration),     cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
