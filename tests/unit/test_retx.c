/*
 * Unit tests for retx.[ch]: the in-flight table (bounded, keyed by
 * message_id) and its deadline heap, checked against a plain reference
 * array under thousands of random operations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/retx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static struct net_addr addr_of(unsigned port)
{
    struct net_addr a;
    memset(&a, 0, sizeof a);
    assert_int_equal(net_addr_parse("127.0.0.1", port, &a), 0);
    return a;
}

/* A valid 24-hex id made from n. */
static void make_id(char out[MESSAGE_ID_LEN + 1], unsigned long n)
{
    snprintf(out, MESSAGE_ID_LEN + 1, "%024lx", n);
}

static struct retx_entry *add(struct retx *r, unsigned long n, int64_t deadline)
{
    char id[MESSAGE_ID_LEN + 1];
    make_id(id, n);
    struct net_addr a = addr_of(9000 + (unsigned)(n % 1000));
    return retx_add(r, (int64_t)n, id, &a, (int64_t)n % 7, deadline);
}

static struct retx_entry *find(struct retx *r, unsigned long n)
{
    char id[MESSAGE_ID_LEN + 1];
    make_id(id, n);
    return retx_find(r, id);
}

/* ---- tests ---- */

static void test_empty(void **state)
{
    (void)state;
    struct retx *r = retx_new(8);
    assert_non_null(r);
    assert_int_equal(retx_count(r), 0);
    assert_int_equal(retx_room(r), 8);
    assert_true(retx_next_deadline(r) == INT64_MAX);
    assert_null(retx_due(r, INT64_MAX));
    assert_null(retx_find(r, "a1b2c3d4e5f60718293a4b5c"));
    retx_free(r);
    retx_free(NULL);
}

static void test_add_find_fields(void **state)
{
    (void)state;
    struct retx *r = retx_new(4);
    assert_non_null(r);
    struct net_addr dst = addr_of(61773);
    struct retx_entry *e = retx_add(r, 42, "a1b2c3d4e5f60718293a4b5c", &dst, 3, 5000);
    assert_non_null(e);
    struct retx_entry *g = retx_find(r, "a1b2c3d4e5f60718293a4b5c");
    assert_ptr_equal(g, e);
    assert_int_equal(g->rowid, 42);
    assert_string_equal(g->id, "a1b2c3d4e5f60718293a4b5c");
    assert_int_equal(g->retries, 3);
    assert_int_equal(g->deadline, 5000);
    assert_int_equal(g->dst.len, dst.len);
    assert_memory_equal(&g->dst.u, &dst.u, dst.len);
    /* the id is copied, not referenced */
    char id[MESSAGE_ID_LEN + 1] = "0123456789abcdef01234567";
    assert_non_null(retx_add(r, 43, id, &dst, 0, 6000));
    id[0] = 'f';
    assert_non_null(retx_find(r, "0123456789abcdef01234567"));
    assert_null(retx_find(r, id));
    /* near misses are not found */
    assert_null(retx_find(r, "a1b2c3d4e5f60718293a4b5d"));
    assert_null(retx_find(r, "a1b2c3d4e5f60718293a4b5"));
    assert_int_equal(retx_count(r), 2);
    assert_int_equal(retx_room(r), 2);
    retx_free(r);
}

static void test_capacity(void **state)
{
    (void)state;
    struct retx *r = retx_new(3);
    assert_non_null(r);
    assert_non_null(add(r, 1, 100));
    assert_non_null(add(r, 2, 200));
    assert_non_null(add(r, 3, 300));
    assert_int_equal(retx_room(r), 0);
    assert_null(add(r, 4, 50));
    assert_int_equal(retx_count(r), 3);
    assert_null(find(r, 4));
    assert_true(retx_next_deadline(r) == 100); /* the refused entry left no trace */
    retx_remove(r, find(r, 2));
    assert_int_equal(retx_room(r), 1);
    assert_non_null(add(r, 4, 50));
    assert_null(add(r, 5, 50));
    assert_true(retx_next_deadline(r) == 50);
    assert_int_equal(retx_count(r), 3);
    retx_free(r);
}

static void test_duplicate_refused(void **state)
{
    (void)state;
    struct retx *r = retx_new(4);
    assert_non_null(r);
    struct retx_entry *e = add(r, 7, 700);
    assert_non_null(e);
    assert_null(add(r, 7, 10));
    assert_int_equal(retx_count(r), 1);
    assert_ptr_equal(find(r, 7), e);
    assert_int_equal(e->deadline, 700);
    assert_true(retx_next_deadline(r) == 700);
    /* ids that are not 24 characters are refused */
    struct net_addr a = addr_of(1);
    assert_null(retx_add(r, 1, "abc", &a, 0, 1));
    assert_null(retx_add(r, 1, "", &a, 0, 1));
    assert_null(retx_add(r, 1, "a1b2c3d4e5f60718293a4b5c0", &a, 0, 1));
    assert_int_equal(retx_count(r), 1);
    /* after removal the id may be added again */
    retx_remove(r, e);
    assert_non_null(add(r, 7, 10));
    assert_true(retx_next_deadline(r) == 10);
    retx_free(r);
}

static void test_remove(void **state)
{
    (void)state;
    struct retx *r = retx_new(8);
    assert_non_null(r);
    for (unsigned long n = 1; n <= 5; n++)
        assert_non_null(add(r, n, (int64_t)n * 10));
    retx_remove(r, find(r, 1)); /* the heap's top */
    assert_null(find(r, 1));
    assert_true(retx_next_deadline(r) == 20);
    retx_remove(r, find(r, 5)); /* the heap's last */
    retx_remove(r, find(r, 3)); /* the middle */
    assert_null(find(r, 3));
    assert_null(find(r, 5));
    assert_non_null(find(r, 2));
    assert_non_null(find(r, 4));
    assert_int_equal(retx_count(r), 2);
    assert_ptr_equal(retx_due(r, 100), find(r, 2));
    retx_remove(r, find(r, 2));
    assert_ptr_equal(retx_due(r, 100), find(r, 4));
    retx_remove(r, find(r, 4));
    assert_int_equal(retx_count(r), 0);
    assert_true(retx_next_deadline(r) == INT64_MAX);
    assert_null(retx_due(r, INT64_MAX));
    retx_free(r);
}

static void test_due_order(void **state)
{
    (void)state;
    struct retx *r = retx_new(16);
    assert_non_null(r);
    const int64_t deadlines[] = {30, 10, 20, 50, 40, 10, -5, 35};
    for (unsigned long i = 0; i < 8; i++)
        assert_non_null(add(r, i + 1, deadlines[i]));
    assert_true(retx_next_deadline(r) == -5);
    assert_null(retx_due(r, -6));
    int64_t last = INT64_MIN;
    int got = 0;
    /* only what is due by now=30 */
    struct retx_entry *e;
    while ((e = retx_due(r, 30)) != NULL) {
        assert_true(e->deadline <= 30);
        assert_true(e->deadline >= last);
        last = e->deadline;
        retx_remove(r, e);
        got++;
    }
    assert_int_equal(got, 5); /* -5, 10, 10, 20, 30 */
    assert_true(retx_next_deadline(r) == 35);
    e = retx_due(r, 35);
    assert_non_null(e);
    assert_int_equal(e->deadline, 35);
    retx_free(r);
}

static void test_reschedule(void **state)
{
    (void)state;
    struct retx *r = retx_new(8);
    assert_non_null(r);
    struct retx_entry *a = add(r, 1, 10);
    struct retx_entry *b = add(r, 2, 20);
    struct retx_entry *c = add(r, 3, 30);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    /* later: the top moves down */
    retx_reschedule(r, a, 50);
    assert_int_equal(a->deadline, 50);
    assert_true(retx_next_deadline(r) == 20);
    assert_ptr_equal(retx_due(r, 1000), b);
    assert_null(retx_due(r, 19));
    /* earlier: the last moves up */
    retx_reschedule(r, c, 5);
    assert_true(retx_next_deadline(r) == 5);
    assert_ptr_equal(retx_due(r, 5), c);
    /* the same deadline: nothing moves */
    retx_reschedule(r, c, 5);
    assert_ptr_equal(retx_due(r, 5), c);
    /* order is now c(5), b(20), a(50), and entries are still found by id */
    assert_ptr_equal(find(r, 1), a);
    assert_ptr_equal(find(r, 3), c);
    retx_remove(r, c);
    assert_ptr_equal(retx_due(r, 100), b);
    retx_remove(r, b);
    assert_ptr_equal(retx_due(r, 100), a);
    assert_null(retx_due(r, 49));
    retx_free(r);
}

/* ---- randomized, against a reference ---- */

struct ref {
    unsigned long n;
    int64_t deadline;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static void check_against(struct retx *r, const struct ref *ref, size_t nref, size_t cap)
{
    assert_int_equal(retx_count(r), nref);
    assert_int_equal(retx_room(r), cap - nref);
    int64_t min = INT64_MAX;
    for (size_t i = 0; i < nref; i++) {
        struct retx_entry *e = find(r, ref[i].n);
        if (e == NULL)
            fail_msg("entry %lu missing", ref[i].n);
        assert_int_equal(e->rowid, (int64_t)ref[i].n);
        assert_int_equal(e->deadline, ref[i].deadline);
        if (ref[i].deadline < min)
            min = ref[i].deadline;
    }
    assert_true(retx_next_deadline(r) == min);
    struct retx_entry *due = retx_due(r, min);
    if (nref > 0) {
        assert_non_null(due);
        assert_int_equal(due->deadline, min);
        if (min > INT64_MIN)
            assert_null(retx_due(r, min - 1));
    } else {
        assert_null(due);
    }
}

static void test_randomized(void **state)
{
    (void)state;
    const size_t cap = 64;
    struct retx *r = retx_new(cap);
    assert_non_null(r);
    struct ref ref[64];
    size_t nref = 0;
    unsigned long next_n = 1;
    for (int op = 0; op < 5000; op++) {
        unsigned what = (unsigned)(rng() % 100);
        int64_t deadline = (int64_t)(rng() % 1000); /* small range: many ties */
        if (what < 40) {
            /* add (or be refused when full) */
            struct retx_entry *e = add(r, next_n, deadline);
            if (nref == cap) {
                assert_null(e);
            } else {
                assert_non_null(e);
                ref[nref].n = next_n;
                ref[nref].deadline = deadline;
                nref++;
            }
            next_n++;
        } else if (what < 50 && nref > 0) {
            /* a duplicate id is refused */
            size_t i = (size_t)(rng() % nref);
            assert_null(add(r, ref[i].n, deadline));
        } else if (what < 65 && nref > 0) {
            size_t i = (size_t)(rng() % nref);
            retx_remove(r, find(r, ref[i].n));
            ref[i] = ref[--nref];
        } else if (what < 85 && nref > 0) {
            size_t i = (size_t)(rng() % nref);
            retx_reschedule(r, find(r, ref[i].n), deadline);
            ref[i].deadline = deadline;
        } else if (what < 95) {
            /* take what is due, as the engine does */
            int64_t now = (int64_t)(rng() % 1000);
            struct retx_entry *e;
            int64_t last = INT64_MIN;
            while ((e = retx_due(r, now)) != NULL) {
                assert_true(e->deadline <= now);
                assert_true(e->deadline >= last);
                last = e->deadline;
                size_t i = 0;
                while (i < nref && ref[i].n != (unsigned long)e->rowid)
                    i++;
                assert_true(i < nref);
                retx_remove(r, e);
                ref[i] = ref[--nref];
            }
            for (size_t i = 0; i < nref; i++)
                assert_true(ref[i].deadline > now);
        } else {
            /* look up ids never added */
            assert_null(find(r, next_n + 1000000));
        }
        check_against(r, ref, nref, cap);
    }
    /* drain everything in order */
    int64_t last = INT64_MIN;
    size_t drained = 0;
    struct retx_entry *e;
    while ((e = retx_due(r, INT64_MAX)) != NULL) {
        assert_true(e->deadline >= last);
        last = e->deadline;
        retx_remove(r, e);
        drained++;
    }
    assert_int_equal(drained, nref);
    assert_int_equal(retx_count(r), 0);
    assert_true(retx_next_deadline(r) == INT64_MAX);
    retx_free(r);
}

/* Deadlines at the ends of int64_t. */
static void test_extreme_deadlines(void **state)
{
    (void)state;
    struct retx *r = retx_new(4);
    assert_non_null(r);
    struct retx_entry *a = add(r, 1, INT64_MAX);
    struct retx_entry *b = add(r, 2, INT64_MIN);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(retx_next_deadline(r) == INT64_MIN);
    assert_ptr_equal(retx_due(r, INT64_MIN), b);
    retx_remove(r, b);
    assert_null(retx_due(r, INT64_MAX - 1));
    assert_ptr_equal(retx_due(r, INT64_MAX), a);
    retx_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_add_find_fields),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_duplicate_refused),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_due_order),
        cmocka_unit_test(test_reschedule),
        cmocka_unit_test(test_randomized),
        cmocka_unit_test(test_extreme_deadlines),
    };
    return cmocka_run_group_tests_name("retx", tests, NULL, NULL);
}
