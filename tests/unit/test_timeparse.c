/*
 * Unit tests for timeparse.[ch]: ages, every accepted ISO 8601 form and the
 * rejected ones, UTC conversion with offsets, local time under fixed TZ
 * rules, and the database's timestamp text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tools/timeparse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---- */

static int64_t age(const char *s)
{
    int64_t v = -1;
    assert_int_equal(timeparse_age(s, &v), 0);
    return v;
}

static void assert_bad_age(const char *s)
{
    int64_t v = 12345;
    if (timeparse_age(s, &v) == 0)
        fail_msg("accepted age '%s'", s);
    assert_int_equal(v, 12345); /* untouched */
}

/* The UTC text of an ISO 8601 datetime that has an offset (or under the current TZ). */
static void assert_utc(const char *in, const char *want)
{
    struct timeparse_tm tm;
    int64_t ms;
    char out[TIMEPARSE_TEXT_LEN];
    if (timeparse_iso8601(in, &tm) != 0)
        fail_msg("rejected '%s'", in);
    assert_int_equal(timeparse_to_ms(&tm, &ms), 0);
    assert_int_equal(timeparse_format_utc(ms, out), 0);
    assert_string_equal(out, want);
}

static void assert_bad_iso(const char *in)
{
    struct timeparse_tm tm;
    if (timeparse_iso8601(in, &tm) == 0)
        fail_msg("accepted '%s'", in);
}

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* ---- ages ---- */

static void test_age_units(void **state)
{
    (void)state;
    assert_int_equal(age("0s"), 0);
    assert_int_equal(age("90s"), 90);
    assert_int_equal(age("5m"), 300);
    assert_int_equal(age("2h"), 7200);
    assert_int_equal(age("30d"), 30 * 86400);
    assert_int_equal(age("2w"), 14 * 86400);
    assert_int_equal(age("007d"), 7 * 86400);
}

static void test_age_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {"",    "d",   "30",   "30D", "30x", "-1d",  "+1d",
                                      " 1d", "1d ", "1.5d", "1dd", "1 d", "1e3s", "0x10s"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_bad_age(bad[k]);
}

static void test_age_limits(void **state)
{
    (void)state;
    assert_int_equal(age("9999w") / 86400, 9999 * 7);
    char s[64];
    snprintf(s, sizeof s, "%llds", (long long)TIMEPARSE_MAX_AGE_S);
    assert_int_equal(age(s), TIMEPARSE_MAX_AGE_S);
    snprintf(s, sizeof s, "%llds", (long long)TIMEPARSE_MAX_AGE_S + 1);
    assert_bad_age(s);
    assert_bad_age("99999999999999999999999999s"); /* no overflow */
    assert_bad_age("9999999999w");
}

/* ---- ISO 8601 ---- */

static void test_iso_forms_with_offset(void **state)
{
    (void)state;
    assert_utc("2025-01-31T12:00Z", "2025-01-31T12:00:00.000");
    assert_utc("2025-01-31T12:34:56Z", "2025-01-31T12:34:56.000");
    assert_utc("2025-01-31t12:34:56z", "2025-01-31T12:34:56.000");
    assert_utc("2025-01-31 12:34:56Z", "2025-01-31T12:34:56.000");
    assert_utc("2025-01-31T12:34:56.5Z", "2025-01-31T12:34:56.500");
    assert_utc("2025-01-31T12:34:56,25Z", "2025-01-31T12:34:56.250");
    assert_utc("2025-01-31T12:34:56.123Z", "2025-01-31T12:34:56.123");
    assert_utc("2025-01-31T12:00:00+02:00", "2025-01-31T10:00:00.000");
    assert_utc("2025-01-31T12:00:00+0530", "2025-01-31T06:30:00.000");
    assert_utc("2025-01-31T12:00:00-05", "2025-01-31T17:00:00.000");
    assert_utc("2025-01-01T01:00:00+02:00", "2024-12-31T23:00:00.000");
    assert_utc("2024-12-31T23:30:00-01:00", "2025-01-01T00:30:00.000");
    assert_utc("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000");
    assert_utc("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000");
    assert_utc("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999");
    assert_utc("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000");
    assert_utc("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999");
}

/* Finer than a millisecond rounds up: "before 12:00:00.0005" includes 12:00:00.000. */
static void test_iso_fraction_rounds_up(void **state)
{
    (void)state;
    assert_utc("2025-01-31T12:00:00.0005Z", "2025-01-31T12:00:00.001");
    assert_utc("2025-01-31T12:00:00.000000001Z", "2025-01-31T12:00:00.001");
    assert_utc("2025-01-31T12:00:00.9999999999999Z", "2025-01-31T12:00:01.000");
    assert_utc("2025-12-31T23:59:59.9999Z", "2026-01-01T00:00:00.000");
}

static void test_iso_fields(void **state)
{
    (void)state;
    struct timeparse_tm tm;
    assert_int_equal(timeparse_iso8601("2025-03-04T05:06:07.089-10:30", &tm), 0);
    assert_int_equal(tm.year, 2025);
    assert_int_equal(tm.month, 3);
    assert_int_equal(tm.day, 4);
    assert_int_equal(tm.hour, 5);
    assert_int_equal(tm.minute, 6);
    assert_int_equal(tm.second, 7);
    assert_int_equal(tm.frac_ns, 89000000);
    assert_int_equal(tm.has_offset, 1);
    assert_int_equal(tm.offset_minutes, -630);
    assert_int_equal(timeparse_iso8601("2025-03-04", &tm), 0);
    assert_int_equal(tm.has_offset, 0);
    assert_int_equal(tm.hour, 0);
    int64_t ms;
    assert_int_equal(timeparse_utc_ms(&tm, &ms), -1); /* no offset: not UTC */
}

static void test_iso_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2025",
        "2025-01",
        "2025-1-31",
        "25-01-31",
        "2025/01/31",
        "20250131",
        "2025-01-31T",
        "2025-01-31T12",
        "2025-01-31T1:00",
        "2025-01-31T12:0",
        "2025-01-31T12:00:0",
        "2025-01-31T12:00:00.",
        "2025-01-31T12:00:00.Z",
        "2025-01-31Z",
        "2025-01-31+02:00",
        "2025-01-31T12:00:00 Z",
        "2025-01-31T12:00:00ZZ",
        "2025-01-31T12:00:00+2",
        "2025-01-31T12:00:00+02:0",
        "2025-01-31T12:00:00+02:000",
        "2025-01-31T12:00:00+24:00",
        "2025-01-31T12:00:00+02:60",
        "2025-01-31T12:00:00x",
        "2025-00-10",
        "2025-13-10",
        "2025-01-00",
        "2025-01-32",
        "2025-02-29",
        "2023-02-29",
        "1900-02-29",
        "2025-04-31",
        "0000-01-01",
        "2025-01-31T24:00",
        "2025-01-31T23:60",
        "2025-01-31T23:59:60",
        "2025-01-31X12:00",
        " 2025-01-31",
        "2025-01-31 ",
        "-2025-01-31",
        "+2025-01-31",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_bad_iso(bad[k]);
    assert_utc("2000-02-29T00:00Z", "2000-02-29T00:00:00.000"); /* 400-year leap */
}

/* Without an offset the time is local: checked under fixed POSIX TZ rules. */
static void test_iso_local_time(void **state)
{
    (void)state;
    char *old = getenv("TZ") != NULL ? strdup(getenv("TZ")) : NULL;
    set_tz("UTC0");
    assert_utc("2025-01-31", "2025-01-31T00:00:00.000");
    assert_utc("2025-01-31T12:00", "2025-01-31T12:00:00.000");
    set_tz("XXX-3"); /* three hours east of UTC */
    assert_utc("2025-01-31", "2025-01-30T21:00:00.000");
    assert_utc("2025-01-31T12:00:00.250", "2025-01-31T09:00:00.250");
    assert_utc("2025-01-31T12:00:00Z", "2025-01-31T12:00:00.000"); /* Z ignores TZ */
    set_tz("EST5EDT,M3.2.0,M11.1.0");
    assert_utc("2025-01-15T12:00", "2025-01-15T17:00:00.000"); /* winter: -5 */
    assert_utc("2025-07-15T12:00", "2025-07-15T16:00:00.000"); /* summer: -4 */
    if (old != NULL) {
        set_tz(old);
        free(old);
    } else {
        unsetenv("TZ");
        tzset();
    }
}

/* ---- formatting ---- */

static void test_format(void **state)
{
    (void)state;
    char out[TIMEPARSE_TEXT_LEN];
    assert_int_equal(timeparse_format_utc(0, out), 0);
    assert_string_equal(out, "1970-01-01T00:00:00.000");
    assert_int_equal(timeparse_format_utc(-1, out), 0);
    assert_string_equal(out, "1969-12-31T23:59:59.999");
    assert_int_equal(timeparse_format_utc(INT64_C(1700000000123), out), 0);
    assert_string_equal(out, "2023-11-14T22:13:20.123");
    assert_int_equal(timeparse_format_utc(INT64_C(951782400000), out), 0);
    assert_string_equal(out, "2000-02-29T00:00:00.000");
    /* Outside 0001..9999: refused, out empty. */
    int64_t y1 = INT64_C(-62135596800000); /* 0001-01-01 */
    assert_int_equal(timeparse_format_utc(y1, out), 0);
    assert_string_equal(out, "0001-01-01T00:00:00.000");
    assert_int_equal(timeparse_format_utc(y1 - 1, out), -1);
    assert_string_equal(out, "");
    int64_t y10k = INT64_C(253402300800000); /* 10000-01-01 */
    assert_int_equal(timeparse_format_utc(y10k - 1, out), 0);
    assert_string_equal(out, "9999-12-31T23:59:59.999");
    assert_int_equal(timeparse_format_utc(y10k, out), -1);
    assert_int_equal(timeparse_format_utc(INT64_MIN / 2, out), -1);
    assert_int_equal(timeparse_format_utc(INT64_MAX / 2, out), -1);
}

/* The UTC time of a parsed datetime against libc's timegm over four centuries of month starts. */
static void test_utc_against_timegm(void **state)
{
    (void)state;
    for (int y = 1800; y <= 2200; y++)
        for (int m = 1; m <= 12; m++) {
            char text[40];
            struct timeparse_tm t;
            int64_t ms;
            snprintf(text, sizeof text, "%04d-%02d-01T00:00:01Z", y, m);
            assert_int_equal(timeparse_iso8601(text, &t), 0);
            assert_int_equal(timeparse_utc_ms(&t, &ms), 0);
            struct tm tm;
            memset(&tm, 0, sizeof tm);
            tm.tm_year = y - 1900;
            tm.tm_mon = m - 1;
            tm.tm_mday = 1;
            tm.tm_sec = 1;
            assert_int_equal(ms, (int64_t)timegm(&tm) * 1000);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_age_units),
        cmocka_unit_test(test_age_rejects),
        cmocka_unit_test(test_age_limits),
        cmocka_unit_test(test_iso_forms_with_offset),
        cmocka_unit_test(test_iso_fraction_rounds_up),
        cmocka_unit_test(test_iso_fields),
        cmocka_unit_test(test_iso_rejects),
        cmocka_unit_test(test_iso_local_time),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_utc_against_timegm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
