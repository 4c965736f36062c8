#include "util/strict.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int strict_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int strict_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    uint64_t v;
    if (strict_u64(s, min, max, &v) != 0)
        return -1;
    *out = (unsigned long)v;
    return 0;
}

int strict_double(const char *s, double min, double max, double *out)
{
    if (s == NULL || !((*s >= '0' && *s <= '9') || *s == '.'))
        return -1;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return -1;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int strict_scaled(const char *s, const struct strict_unit *units, unsigned long min,
                  unsigned long max, unsigned long *out)
{
    if (s == NULL || units == NULL || units[0].suffix == NULL)
        return -1;
    size_t n = strlen(s), best = 0;
    unsigned long scale = units[0].scale;
    for (const struct strict_unit *u = units; u->suffix != NULL; u++) {
        size_t ul = strlen(u->suffix);
        if (ul > best && ul < n && memcmp(s + n - ul, u->suffix, ul) == 0) {
            best = ul;
            scale = u->scale;
        }
    }
    char digits[32];
    if (n - best >= sizeof digits || scale == 0)
        return -1;
    memcpy(digits, s, n - best);
    digits[n - best] = '\0';
    unsigned long count;
    if (strict_ulong(digits, 0, max / scale, &count) != 0 || count * scale < min)
        return -1;
    *out = count * scale;
    return 0;
}
