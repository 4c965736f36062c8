/*
 * clock: the one UTC formatter and its inverse, by known answers (the epoch,
 * leap days, the 2038 edge and past it, the ends of years 0001..9999), and
 * the clocks' basic promises.
 */
#include "util/clock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

static void check_format(int64_t sec, long nsec, int digits, const char *want)
{
    char out[CLOCK_UTC_TEXT_MAX];
    memset(out, '#', sizeof out);
    assert_int_equal(clock_format_utc(out, sizeof out, sec, nsec, digits), 0);
    assert_string_equal(out, want);
}

static void check_refused(int64_t sec, long nsec, int digits)
{
    char out[CLOCK_UTC_TEXT_MAX];
    memset(out, '#', sizeof out);
    assert_int_equal(clock_format_utc(out, sizeof out, sec, nsec, digits), -1);
    assert_string_equal(out, "");
}

static void test_format_known_answers(void **state)
{
    (void)state;
    check_format(0, 0, 9, "1970-01-01T00:00:00.000000000");
    check_format(-1, 0, 0, "1969-12-31T23:59:59");
    check_format(1763769601, 123456789, 9, "2025-11-22T00:00:01.123456789");
    check_format(1700000000, 1, 9, "2023-11-14T22:13:20.000000001");
    check_format(951782400, 999999999, 9,
                 "2000-02-29T00:00:00.999999999");             /* leap (divisible by 400) */
    check_format(1709210096, 0, 3, "2024-02-29T12:34:56.000"); /* leap (by 4) */
    check_format(-2203891200, 0, 0, "1900-03-01T00:00:00");    /* 1900: no 29th */
    check_format(-2203891200 - 1, 0, 0, "1900-02-28T23:59:59");
    check_format(4107542400 - 1, 0, 0, "2100-02-28T23:59:59"); /* 2100: no 29th */
    check_format(-11670998400, 0, 0, "1600-02-29T00:00:00");
    check_format(2147483647, 0, 0, "2038-01-19T03:14:07"); /* the last 32-bit second */
    check_format(2147483648, 0, 0, "2038-01-19T03:14:08");
    check_format(4102444800, 5, 9, "2100-01-01T00:00:00.000000005");
    check_format(18446744073, 709551615, 9, "2554-07-21T23:34:33.709551615"); /* UINT64_MAX ns */
    check_format(-62135596800, 0, 3, "0001-01-01T00:00:00.000");
    check_format(253402300799, 999999999, 9, "9999-12-31T23:59:59.999999999");
}

static void test_format_digits(void **state)
{
    (void)state;
    check_format(0, 987654321, 0, "1970-01-01T00:00:00");
    check_format(0, 987654321, 1, "1970-01-01T00:00:00.9");
    check_format(0, 987654321, 3, "1970-01-01T00:00:00.987"); /* truncated, not rounded */
    check_format(0, 999999999, 3, "1970-01-01T00:00:00.999");
    check_format(0, 987654321, 6, "1970-01-01T00:00:00.987654");
    check_format(0, 987654321, 9, "1970-01-01T00:00:00.987654321");
    check_format(0, 1000000, 3, "1970-01-01T00:00:00.001");
    assert_int_equal(strlen("1970-01-01T00:00:00.987654321") + 1, CLOCK_UTC_TEXT_MAX);
}

static void test_format_refused(void **state)
{
    (void)state;
    check_refused(-62135596800 - 1, 0, 3); /* year 0 */
    check_refused(253402300800, 0, 3);     /* year 10000 */
    check_refused(INT64_MAX, 0, 0);
    check_refused(INT64_MIN, 0, 0);
    check_refused(0, -1, 3);
    check_refused(0, 1000000000, 3);
    check_refused(0, 0, 10);
    check_refused(0, 0, -1);
    /* too small a buffer: refused, never cut */
    char small[24];
    assert_int_equal(clock_format_utc(small, sizeof small, 0, 0, 3), 0);
    assert_string_equal(small, "1970-01-01T00:00:00.000");
    assert_int_equal(clock_format_utc(small, sizeof small, 0, 0, 4), -1);
    assert_string_equal(small, "");
    assert_int_equal(clock_format_utc(small, 0, 0, 0, 0), -1);
}

/* The same second again, and back and forth (the formatter keeps the last second's text). */
static void test_format_same_second_again(void **state)
{
    (void)state;
    check_format(1763769601, 5, 3, "2025-11-22T00:00:01.000");
    check_format(1763769601, 999000000, 3, "2025-11-22T00:00:01.999");
    check_format(1763769602, 1000000, 3, "2025-11-22T00:00:02.001");
    check_format(1763769601, 123456789, 9, "2025-11-22T00:00:01.123456789");
    check_refused(253402300800, 0, 0); /* year 10000, right after a cached second */
    check_format(1763769601, 0, 0, "2025-11-22T00:00:01");
    check_format(-1, 999999999, 2, "1969-12-31T23:59:59.99");
}

static void check_seconds(int y, int mo, int d, int h, int mi, int s, int64_t want)
{
    int64_t got = 12345;
    assert_int_equal(clock_utc_seconds(y, mo, d, h, mi, s, &got), 0);
    assert_true(got == want);
}

static void check_bad_date(int y, int mo, int d, int h, int mi, int s)
{
    int64_t got = 12345;
    assert_int_equal(clock_utc_seconds(y, mo, d, h, mi, s, &got), -1);
    assert_true(got == 12345); /* untouched */
}

static void test_utc_seconds(void **state)
{
    (void)state;
    check_seconds(1970, 1, 1, 0, 0, 0, 0);
    check_seconds(1969, 12, 31, 23, 59, 59, -1);
    check_seconds(2000, 2, 29, 0, 0, 0, 951782400);
    check_seconds(2024, 2, 29, 12, 34, 56, 1709210096);
    check_seconds(2038, 1, 19, 3, 14, 7, 2147483647);
    check_seconds(2038, 1, 19, 3, 14, 8, 2147483648);
    check_seconds(1, 1, 1, 0, 0, 0, -62135596800);
    check_seconds(9999, 12, 31, 23, 59, 59, 253402300799);
    check_bad_date(2023, 2, 29, 0, 0, 0);
    check_bad_date(1900, 2, 29, 0, 0, 0);
    check_bad_date(2025, 4, 31, 0, 0, 0);
    check_bad_date(2025, 13, 1, 0, 0, 0);
    check_bad_date(2025, 0, 1, 0, 0, 0);
    check_bad_date(2025, 1, 0, 0, 0, 0);
    check_bad_date(2025, 1, 1, 24, 0, 0);
    check_bad_date(2025, 1, 1, 0, 60, 0);
    check_bad_date(2025, 1, 1, 0, 0, 60);
    check_bad_date(2025, 1, 1, -1, 0, 0);
    check_bad_date(0, 12, 31, 0, 0, 0);
    check_bad_date(10000, 1, 1, 0, 0, 0);
}

/* Every month start over four centuries: the formatter and its inverse agree. */
static void test_round_trip(void **state)
{
    (void)state;
    for (int y = 1896; y <= 2304; y++)
        for (int m = 1; m <= 12; m++) {
            int64_t s;
            char want[64], got[CLOCK_UTC_TEXT_MAX];
            assert_int_equal(clock_utc_seconds(y, m, 1, 13, 5, 9, &s), 0);
            assert_int_equal(clock_format_utc(got, sizeof got, s, 0, 0), 0);
            snprintf(want, sizeof want, "%04d-%02d-01T13:05:09", y, m);
            assert_string_equal(got, want);
            int64_t prev; /* the day before is the last of the previous month */
            assert_int_equal(clock_format_utc(got, sizeof got, s - 86400, 0, 0), 0);
            assert_int_equal(clock_utc_seconds(y - (m == 1), m == 1 ? 12 : m - 1,
                                               (got[8] - '0') * 10 + (got[9] - '0'), 13, 5, 9,
                                               &prev),
                             0);
            assert_true(prev == s - 86400);
        }
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t us = clock_mono_us(), ms = clock_mono_ms(), us2 = clock_mono_us();
    assert_true(us2 >= us);
    assert_true(ms >= us / 1000 && ms <= us2 / 1000);
    uint64_t ns = clock_real_ns();
    assert_true(ns > 1700000000ULL * 1000000000ULL); /* after November 2023 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known_answers),
        cmocka_unit_test(test_format_digits),
        cmocka_unit_test(test_format_refused),
        cmocka_unit_test(test_utc_seconds),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_format_same_second_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
