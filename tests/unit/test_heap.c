/*
 * heap: the earliest deadline is always on top, whatever is added, removed
 * or moved, checked against a plain reference array under thousands of
 * random operations.
 */
#include "util/heap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

static void test_empty_and_bad(void **state)
{
    (void)state;
    assert_null(heap_new(HEAP_MAX_CAPACITY + 1));
    heap_free(NULL);
    struct heap *h = heap_new(4);
    assert_non_null(h);
    size_t item = 99;
    assert_int_equal(heap_min(h, &item, NULL), -1);
    assert_int_equal(item, 99); /* untouched */
    assert_true(heap_next_deadline(h) == INT64_MAX);
    assert_int_equal(heap_count(h), 0);
    assert_int_equal(heap_add(h, 4, 1), -1); /* out of range */
    assert_int_equal(heap_add(h, 2, 1), 0);
    assert_int_equal(heap_add(h, 2, 0), -1); /* in already */
    assert_int_equal(heap_count(h), 1);
    heap_remove(h, 3); /* not in: nothing happens */
    heap_update(h, 3, 0);
    heap_remove(h, 99);
    assert_int_equal(heap_contains(h, 3), 0);
    assert_int_equal(heap_contains(h, 99), 0);
    assert_true(heap_next_deadline(h) == 1);
    heap_free(h);
    h = heap_new(0);
    assert_non_null(h);
    assert_int_equal(heap_add(h, 0, 1), -1);
    heap_free(h);
}

static void test_order(void **state)
{
    (void)state;
    struct heap *h = heap_new(16);
    assert_non_null(h);
    const int64_t d[] = {30, 10, 20, 50, 40, 10, -5, 35, INT64_MIN, INT64_MAX - 1};
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(heap_add(h, i, d[i]), 0);
    int64_t last = INT64_MIN;
    size_t item;
    int64_t dl;
    for (int n = 0; n < 10; n++) {
        assert_int_equal(heap_min(h, &item, &dl), 0);
        assert_true(dl == d[item]);
        assert_true(dl >= last);
        last = dl;
        heap_remove(h, item);
        assert_int_equal(heap_contains(h, item), 0);
    }
    assert_int_equal(heap_count(h), 0);
    heap_free(h);
}

static void test_update(void **state)
{
    (void)state;
    struct heap *h = heap_new(8);
    assert_non_null(h);
    assert_int_equal(heap_add(h, 1, 10), 0);
    assert_int_equal(heap_add(h, 2, 20), 0);
    assert_int_equal(heap_add(h, 3, 30), 0);
    size_t item;
    heap_update(h, 1, 50); /* the top moves down */
    assert_int_equal(heap_min(h, &item, NULL), 0);
    assert_int_equal(item, 2);
    heap_update(h, 3, 5); /* the last moves up */
    assert_int_equal(heap_min(h, &item, NULL), 0);
    assert_int_equal(item, 3);
    assert_true(heap_next_deadline(h) == 5);
    heap_update(h, 3, 5); /* the same: nothing moves */
    assert_int_equal(heap_min(h, &item, NULL), 0);
    assert_int_equal(item, 3);
    heap_free(h);
}

#define CAP 200

static void test_random_against_reference(void **state)
{
    (void)state;
    struct heap *h = heap_new(CAP);
    assert_non_null(h);
    int in[CAP] = {0};
    int64_t dl[CAP];
    size_t count = 0;
    srand(7);
    for (int op = 0; op < 50000; op++) {
        size_t i = (size_t)rand() % CAP;
        int64_t d = (int64_t)(rand() % 1000) - 500; /* many ties */
        switch (rand() % 4) {
        case 0:
            assert_int_equal(heap_add(h, i, d), in[i] ? -1 : 0);
            if (!in[i]) {
                in[i] = 1;
                dl[i] = d;
                count++;
            }
            break;
        case 1:
            heap_remove(h, i);
            count -= in[i] ? 1 : 0;
            in[i] = 0;
            break;
        case 2:
            heap_update(h, i, d);
            if (in[i])
                dl[i] = d;
            break;
        default: { /* pop the earliest */
            size_t top;
            int64_t td;
            if (heap_min(h, &top, &td) == 0) {
                assert_true(in[top] && dl[top] == td);
                heap_remove(h, top);
                in[top] = 0;
                count--;
            } else {
                assert_int_equal(count, 0);
            }
        }
        }
        int64_t want = INT64_MAX;
        for (size_t k = 0; k < CAP; k++) {
            assert_int_equal(heap_contains(h, k), in[k]);
            if (in[k] && dl[k] < want)
                want = dl[k];
        }
        assert_int_equal(heap_count(h), count);
        assert_true(heap_next_deadline(h) == want);
    }
    heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_bad),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
