/*
 * 64-bit time_t where the C library offers both (32-bit glibc): the interface
 * is in int64_t, so nothing outside this file sees the difference, and years
 * past 2038 format the same everywhere.
 */
#define _FILE_OFFSET_BITS 64
#define _TIME_BITS 64
#include "util/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_ms(void)
{
    return clock_mono_us() / 1000;
}

uint64_t clock_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t clock_real_ms(void)
{
    return (int64_t)(clock_real_ns() / 1000000);
}

/* 1 if tm (as gmtime_r or timegm leave it) lies in the years 0001..9999. */
static int year_in_range(const struct tm *tm)
{
    return tm->tm_year >= 1 - 1900 && tm->tm_year <= 9999 - 1900;
}

/* The last second formatted, per thread: a busy daemon formats one second thousands of times. */
static _Thread_local int64_t cached_sec = INT64_MIN;
static _Thread_local char cached_text[20];

int clock_format_utc(char *out, size_t out_size, int64_t sec, long nsec, int digits)
{
    if (out_size > 0)
        out[0] = '\0';
    size_t len = digits > 0 ? 20 + (size_t)digits : 19; /* the fields are fixed width */
    if (nsec < 0 || nsec > 999999999 || digits < 0 || digits > 9 || len >= out_size)
        return -1;
    if (sec != cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        if ((int64_t)t != sec || gmtime_r(&t, &tm) == NULL || !year_in_range(&tm))
            return -1;
        /* strftime's %Y does not pad years below 1000 everywhere: the fields are printed here. */
        char text[64];
        snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        memcpy(cached_text, text, 19); /* fixed width: the year is in range */
        cached_sec = sec;
    }
    memcpy(out, cached_text, 19);
    if (digits > 0) {
        out[19] = '.';
        long f = nsec;
        for (int i = 9; i > digits; i--)
            f /= 10; /* truncated, as %.Nf of the nine digits would not be */
        for (int i = digits; i > 0; i--, f /= 10)
            out[19 + i] = (char)('0' + f % 10);
    }
    out[len] = '\0';
    return 0;
}

int clock_utc_seconds(int year, int month, int day, int hour, int minute, int second, int64_t *sec)
{
    if (year < 1 || year > 9999)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 &&
        (year != 1969 || month != 12 || day != 31 || hour != 23 || minute != 59 || second != 59))
        return -1; /* does not fit time_t (an old 32-bit C library) */
    /* timegm normalises (31 April becomes 1 May): a field that moved was out of range. */
    if (tm.tm_year != year - 1900 || tm.tm_mon != month - 1 || tm.tm_mday != day ||
        tm.tm_hour != hour || tm.tm_min != minute || tm.tm_sec != second)
        return -1;
    *sec = (int64_t)t;
    return 0;
}
