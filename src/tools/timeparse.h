/*
 * timeparse: the times sg-clean takes on its command line, without I/O.
 *
 *   age       N followed by one unit: s, m, h, d or w ("90s", "30d", "2w")
 *   datetime  ISO 8601 extended format:
 *               YYYY-MM-DD                        (midnight)
 *               YYYY-MM-DDTHH:MM[:SS[.fraction]]  ('T', 't' or one space between)
 *             a date-time may end in Z, or an offset +HH:MM, +HHMM or +HH (or -);
 *             without one it is local time.
 *
 * Times are milliseconds since the Unix epoch (UTC), in int64_t, and must
 * fall in the years 0001..9999 so that they format as the database's fixed
 * width text, YYYY-MM-DDTHH:MM:SS.SSS, which sorts as it compares.
 */
#ifndef SG_TIMEPARSE_H
#define SG_TIMEPARSE_H

#include <stdint.h>

/* Text of a UTC time as the database stores it, plus NUL. */
#define TIMEPARSE_TEXT_LEN 24

/* The largest age accepted, in seconds (a little over 9999 years). */
#define TIMEPARSE_MAX_AGE_S (INT64_C(9999) * 366 * 86400)

/*
 * Parses an age ("30d") into seconds. The number is decimal digits only
 * (no sign, no spaces) and the unit one lowercase letter of s, m, h, d, w.
 * Returns 0 and sets *secs, or -1 (bad text, or above TIMEPARSE_MAX_AGE_S).
 */
__attribute__((warn_unused_result)) int timeparse_age(const char *s, int64_t *secs);

/* A datetime as written: fields checked for range (the day against its month). */
struct timeparse_tm {
    int year, month, day, hour, minute, second;
    int64_t frac_ns;    /* fraction of the second, in nanoseconds (0..999999999) */
    int has_offset;     /* Z or an explicit offset was given */
    int offset_minutes; /* east of UTC (Z: 0) */
};

/*
 * Parses an ISO 8601 datetime (see above). Returns 0 and fills *out, or -1
 * if the text is not one of the accepted forms or a field is out of range.
 */
__attribute__((warn_unused_result)) int timeparse_iso8601(const char *s, struct timeparse_tm *out);

/*
 * The UTC time of a parsed datetime that has an offset, in ms since the epoch;
 * a fraction finer than a millisecond is rounded up, so that "before t"
 * keeps its meaning at millisecond resolution. Returns 0, or -1 (no offset,
 * or fields out of range: those from timeparse_iso8601 never are).
 */
__attribute__((warn_unused_result)) int timeparse_utc_ms(const struct timeparse_tm *tm,
                                                         int64_t *ms);

/*
 * As timeparse_utc_ms, but a datetime without an offset is taken as local
 * time in the process's time zone (TZ), by mktime. Returns 0 or -1.
 */
__attribute__((warn_unused_result)) int timeparse_to_ms(const struct timeparse_tm *tm, int64_t *ms);

/*
 * Formats ms since the epoch as YYYY-MM-DDTHH:MM:SS.SSS (UTC) into out, by
 * clock_format_utc. Returns 0, or -1 (out set to "") if the year is outside
 * 0001..9999.
 */
__attribute__((warn_unused_result)) int timeparse_format_utc(int64_t ms,
                                                             char out[TIMEPARSE_TEXT_LEN]);

#endif
