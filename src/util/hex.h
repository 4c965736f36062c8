/*
 * hex: bytes to and from hexadecimal text, through libsodium's constant-time
 * codecs (sodium_bin2hex, sodium_hex2bin), so the same code may handle the
 * secret: no branch or table lookup depends on a digit's value.
 */
#ifndef SG_HEX_H
#define SG_HEX_H

#include <stddef.h>

/*
 * Writes the n bytes at bin as 2n lowercase hex digits and a NUL into out,
 * which has room for out_size bytes. Returns 0, or -1 if out_size < 2n + 1
 * (out is then set to "" when out_size > 0).
 */
int hex_encode(char *out, size_t out_size, const void *bin, size_t n);

/*
 * Decodes exactly n bytes: hex_len must be 2n and the hex_len characters at
 * hex hex digits of either case, nothing else (no spaces, no "0x"). Returns
 * 0 with out[0..n) filled, or -1 with out[0..n) zeroed.
 */
__attribute__((warn_unused_result)) int hex_decode(void *out, size_t n, const char *hex,
                                                   size_t hex_len);

/*
 * 1 if each of the len characters at s is a hex digit (either case), else 0;
 * 1 for len 0. Any length, odd too. Decodes through a scratch buffer that is
 * wiped before it returns.
 */
int hex_digits_only(const char *s, size_t len);

#endif
