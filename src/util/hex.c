#include "util/hex.h"

#include "util/secret.h"

#include <sodium.h>
#include <stdint.h>

int hex_encode(char *out, size_t out_size, const void *bin, size_t n)
{
    if (n > (SIZE_MAX - 1) / 2 || out_size < 2 * n + 1) {
        if (out_size > 0)
            out[0] = '\0';
        return -1;
    }
    sodium_bin2hex(out, out_size, bin, n);
    return 0;
}

int hex_decode(void *out, size_t n, const char *hex, size_t hex_len)
{
    size_t got = 0;
    /* Without hex_end, sodium_hex2bin fails unless all hex_len characters are digits. */
    if (n > SIZE_MAX / 2 || hex_len != 2 * n ||
        sodium_hex2bin(out, n, hex, hex_len, NULL, &got, NULL) != 0 || got != n) {
        secret_wipe(out, n);
        return -1;
    }
    return 0;
}

int hex_digits_only(const char *s, size_t len)
{
    unsigned char scratch[32];
    int ok = 1;
    while (ok && len >= 2) {
        size_t chunk = len < 2 * sizeof scratch ? len & ~(size_t)1 : 2 * sizeof scratch;
        ok = hex_decode(scratch, chunk / 2, s, chunk) == 0;
        s += chunk;
        len -= chunk;
    }
    if (ok && len == 1) { /* an odd one out: check it as the low digit of a byte */
        char pair[2] = {'0', s[0]};
        ok = hex_decode(scratch, 1, pair, 2) == 0;
    }
    secret_wipe(scratch, sizeof scratch);
    return ok;
}
