/*
 * Unit tests for daemon/histo.[ch]: observations land in the bucket of the
 * first bound at or above them (Prometheus's le), the buckets read
 * cumulatively, +Inf holds everything, and the sum is exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/histo.h"

static void test_buckets_by_upper_bound(void **state)
{
    (void)state;
    static const int64_t bounds[] = {10, 100, 1000};
    struct histo h;
    histo_init(&h, bounds, 3);
    histo_observe(&h, 10);   /* le 10: a bound is inclusive */
    histo_observe(&h, 11);   /* le 100 */
    histo_observe(&h, 1000); /* le 1000 */
    histo_observe(&h, 5000); /* +Inf only */
    histo_observe(&h, -5);   /* a clock step back counts as 0 */
    assert_int_equal(histo_cumulative(&h, 0), 2);
    assert_int_equal(histo_cumulative(&h, 1), 3);
    assert_int_equal(histo_cumulative(&h, 2), 4);
    assert_int_equal(histo_cumulative(&h, 3), 5);
    assert_int_equal(h.count, 5);
    assert_int_equal(h.sum_us, 10 + 11 + 1000 + 5000);
}

static void test_shipped_bounds_ascend(void **state)
{
    (void)state;
    const int64_t *b[] = {HISTO_INSERT_ACK_US, HISTO_DATAGRAM_ACK_US};
    int n[] = {HISTO_INSERT_ACK_N, HISTO_DATAGRAM_ACK_N};
    for (int k = 0; k < 2; k++) {
        assert_true(n[k] > 0 && n[k] <= HISTO_BOUNDS_MAX);
        for (int i = 1; i < n[k]; i++)
            assert_true(b[k][i] > b[k][i - 1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_by_upper_bound),
        cmocka_unit_test(test_shipped_bounds_ascend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
