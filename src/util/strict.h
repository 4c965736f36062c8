/* strict: number parsing that accepts exactly what it documents, nothing more. */
#ifndef SG_STRICT_H
#define SG_STRICT_H

#include <stdint.h>

/*
 * Parses s as a decimal integer in [min, max]: digits only (no sign, no
 * spaces, no leading '+', no trailing text). Returns 0 and sets *out, or -1.
 */
__attribute__((warn_unused_result)) int strict_ulong(const char *s, unsigned long min,
                                                     unsigned long max, unsigned long *out);

/* As strict_ulong, for 64-bit values on every platform (row ids). */
__attribute__((warn_unused_result)) int strict_u64(const char *s, uint64_t min, uint64_t max,
                                                   uint64_t *out);

/* Parses s as a finite decimal number in [min, max] ("1", "0.5"). Returns 0 or -1. */
__attribute__((warn_unused_result)) int strict_double(const char *s, double min, double max,
                                                      double *out);

/* A unit suffix and what one of it is worth ("ms", 1; "s", 1000). */
struct strict_unit {
    const char *suffix;
    unsigned long scale;
};

/*
 * Parses s as a whole number with an optional suffix from units (the longest
 * that matches; none: the value is in units[0]'s scale), in [min, max] after
 * scaling. units ends with a {NULL, 0} entry. Returns 0 and sets *out, or -1.
 */
__attribute__((warn_unused_result)) int strict_scaled(const char *s,
                                                      const struct strict_unit *units,
                                                      unsigned long min, unsigned long max,
                                                      unsigned long *out);

#endif
