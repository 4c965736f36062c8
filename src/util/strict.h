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

#endif
