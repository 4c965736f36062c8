/*
 * timeparse: ages and ISO 8601 datetimes for sg-clean. The fields are parsed
 * here; calendar arithmetic is util/clock's (timegm, gmtime_r), except local
 * time, which only mktime knows.
 */
#include "tools/timeparse.h"

#include "util/clock.h"

#include <string.h>
#include <time.h>

int timeparse_age(const char *s, int64_t *secs)
{
    int64_t n = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
        if (n > TIMEPARSE_MAX_AGE_S)
            return -1;
    }
    int64_t unit;
    switch (*p) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return -1;
    }
    if (p[1] != '\0' || n > TIMEPARSE_MAX_AGE_S / unit)
        return -1;
    *secs = n * unit;
    return 0;
}

/* Reads exactly n decimal digits at *p into *v and advances *p; -1 if they are not there. */
static int digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

/* Parses the date part YYYY-MM-DD. */
static int parse_date(const char **p, struct timeparse_tm *t)
{
    if (digits(p, 4, &t->year) != 0 || *(*p)++ != '-' || digits(p, 2, &t->month) != 0 ||
        *(*p)++ != '-' || digits(p, 2, &t->day) != 0)
        return -1;
    int64_t sec;
    return clock_utc_seconds(t->year, t->month, t->day, 0, 0, 0, &sec); /* the day in its month */
}

/* Parses HH:MM[:SS[.fraction]]. */
static int parse_time(const char **p, struct timeparse_tm *t)
{
    if (digits(p, 2, &t->hour) != 0 || *(*p)++ != ':' || digits(p, 2, &t->minute) != 0)
        return -1;
    if (**p == ':') {
        (*p)++;
        if (digits(p, 2, &t->second) != 0)
            return -1;
        if (**p == '.' || **p == ',') {
            (*p)++;
            int64_t scale = 100000000;
            int n = 0;
            for (; **p >= '0' && **p <= '9'; (*p)++, n++) {
                if (n < 9)
                    t->frac_ns += (**p - '0') * scale;
                scale /= 10;
            }
            if (n == 0)
                return -1;
        }
    }
    if (t->hour > 23 || t->minute > 59 || t->second > 59)
        return -1;
    return 0;
}

/* Parses Z, +HH:MM, +HHMM or +HH (or with '-') to the end of the text. */
static int parse_offset(const char *p, struct timeparse_tm *t)
{
    if (*p == '\0')
        return 0;
    t->has_offset = 1;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return 0;
    if (*p != '+' && *p != '-')
        return -1;
    int sign = *p++ == '-' ? -1 : 1, h = 0, m = 0;
    if (digits(&p, 2, &h) != 0)
        return -1;
    if (*p == ':')
        p++;
    if (*p != '\0' && digits(&p, 2, &m) != 0)
        return -1;
    if (*p != '\0' || h > 23 || m > 59)
        return -1;
    t->offset_minutes = sign * (h * 60 + m);
    return 0;
}

int timeparse_iso8601(const char *s, struct timeparse_tm *out)
{
    struct timeparse_tm t;
    memset(&t, 0, sizeof t);
    const char *p = s;
    if (parse_date(&p, &t) != 0)
        return -1;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -1;
        p++;
        if (parse_time(&p, &t) != 0 || parse_offset(p, &t) != 0)
            return -1;
    }
    *out = t;
    return 0;
}

/* Milliseconds to add for the fraction, rounded up. */
static int64_t frac_ms(const struct timeparse_tm *tm)
{
    return (tm->frac_ns + 999999) / 1000000;
}

int timeparse_utc_ms(const struct timeparse_tm *tm, int64_t *ms)
{
    int64_t secs;
    if (!tm->has_offset || clock_utc_seconds(tm->year, tm->month, tm->day, tm->hour, tm->minute,
                                             tm->second, &secs) != 0)
        return -1;
    *ms = (secs - (int64_t)tm->offset_minutes * 60) * 1000 + frac_ms(tm);
    return 0;
}

int timeparse_to_ms(const struct timeparse_tm *tm, int64_t *ms)
{
    if (tm->has_offset)
        return timeparse_utc_ms(tm, ms);
    struct tm lt;
    memset(&lt, 0, sizeof lt);
    lt.tm_year = tm->year - 1900;
    lt.tm_mon = tm->month - 1;
    lt.tm_mday = tm->day;
    lt.tm_hour = tm->hour;
    lt.tm_min = tm->minute;
    lt.tm_sec = tm->second;
    lt.tm_isdst = -1;
    time_t t = mktime(&lt);
    if (t == (time_t)-1 && lt.tm_year != 69 && lt.tm_year != 70)
        return -1;
    *ms = (int64_t)t * 1000 + frac_ms(tm);
    return 0;
}

int timeparse_format_utc(int64_t ms, char out[TIMEPARSE_TEXT_LEN])
{
    int64_t sec = ms / 1000, rem = ms % 1000;
    if (rem < 0) { /* floor: -1 ms is 23:59:59.999 of the day before */
        rem += 1000;
        sec--;
    }
    return clock_format_utc(out, TIMEPARSE_TEXT_LEN, sec, (long)rem * 1000000, 3);
}
