/*
 * timeparse: ages and ISO 8601 datetimes for sg-clean. Calendar arithmetic is
 * done here (proleptic Gregorian, no libc), except local time, which only
 * mktime knows.
 */
#include "tools/timeparse.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY INT64_C(86400000)

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

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Parses the date part YYYY-MM-DD. */
static int parse_date(const char **p, struct timeparse_tm *t)
{
    if (digits(p, 4, &t->year) != 0 || *(*p)++ != '-' || digits(p, 2, &t->month) != 0 ||
        *(*p)++ != '-' || digits(p, 2, &t->day) != 0)
        return -1;
    if (t->year < 1 || t->month < 1 || t->month > 12 || t->day < 1 ||
        t->day > days_in_month(t->year, t->month))
        return -1;
    return 0;
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

int64_t timeparse_days_from_civil(int year, int month, int day)
{
    /* Howard Hinnant's days_from_civil. */
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Milliseconds to add for the fraction, rounded up. */
static int64_t frac_ms(const struct timeparse_tm *tm)
{
    return (tm->frac_ns + 999999) / 1000000;
}

int timeparse_utc_ms(const struct timeparse_tm *tm, int64_t *ms)
{
    if (!tm->has_offset)
        return -1;
    int64_t days = timeparse_days_from_civil(tm->year, tm->month, tm->day);
    int64_t secs = days * 86400 + tm->hour * 3600 + tm->minute * 60 + tm->second -
                   (int64_t)tm->offset_minutes * 60;
    *ms = secs * 1000 + frac_ms(tm);
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
    out[0] = '\0';
    int64_t days = ms >= 0 ? ms / MS_PER_DAY : -((-ms + MS_PER_DAY - 1) / MS_PER_DAY);
    int64_t rem = ms - days * MS_PER_DAY;
    /* Howard Hinnant's civil_from_days. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    if (y < 1 || y > 9999)
        return -1;
    char tmp[64]; /* the fields are in range: the text is TIMEPARSE_TEXT_LEN - 1 long */
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03d", (int)y, (int)m, (int)d,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
             (int)(rem % 1000));
    memcpy(out, tmp, TIMEPARSE_TEXT_LEN - 1);
    out[TIMEPARSE_TEXT_LEN - 1] = '\0';
    return 0;
}
