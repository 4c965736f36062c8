/*
 * clock: the process's clocks and its one way to write a UTC time as text.
 *
 *   monotonic  CLOCK_MONOTONIC, for deadlines and intervals (never steps)
 *   real       CLOCK_REALTIME, for timestamps that leave the process
 *
 * UTC text is ISO 8601 extended, YYYY-MM-DDTHH:MM:SS with 0 to 9 digits of
 * fraction after a '.', no zone letter: the fixed-width form the database
 * stores (crypto_timestamp with 9 digits, the tools' cutoffs with 3), which
 * sorts as it compares. Calendar arithmetic is libc's (gmtime_r, timegm),
 * proleptic Gregorian, years 0001..9999.
 */
#ifndef SG_CLOCK_H
#define SG_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Room for the longest UTC text, "YYYY-MM-DDTHH:MM:SS.NNNNNNNNN", and its NUL. */
#define CLOCK_UTC_TEXT_MAX 30

/* CLOCK_MONOTONIC in microseconds (from an arbitrary origin, the same for the whole system). */
int64_t clock_mono_us(void);

/* CLOCK_MONOTONIC in milliseconds (clock_mono_us() / 1000). */
int64_t clock_mono_ms(void);

/* CLOCK_REALTIME in nanoseconds since the Unix epoch (0 if the clock is set before it). */
uint64_t clock_real_ns(void);

/* CLOCK_REALTIME in milliseconds since the epoch: the time the store's rows record. */
int64_t clock_real_ms(void);

/*
 * Writes the UTC time sec seconds and nsec nanoseconds after the epoch (sec
 * may be negative) as YYYY-MM-DDTHH:MM:SS, then, if digits > 0, '.' and the
 * first digits digits of nsec (truncated, not rounded), and a NUL, into out
 * (room for out_size bytes; CLOCK_UTC_TEXT_MAX is always enough). Returns 0,
 * or -1 with out set to "" (when out_size > 0) if the year falls outside
 * 0001..9999, nsec outside 0..999999999, digits outside 0..9, or the text
 * does not fit.
 */
__attribute__((warn_unused_result)) int clock_format_utc(char *out, size_t out_size, int64_t sec,
                                                         long nsec, int digits);

/*
 * The seconds since the epoch of a UTC calendar time (month 1..12, day 1..31,
 * hour 0..23, minute and second 0..59), by timegm. Fields are checked, not
 * normalised: 31 April or 29 February of a common year is refused. Returns 0
 * and sets *sec, or -1 if a field is out of range or the year is outside
 * 0001..9999.
 */
__attribute__((warn_unused_result)) int clock_utc_seconds(int year, int month, int day, int hour,
                                                          int minute, int second, int64_t *sec);

#endif
