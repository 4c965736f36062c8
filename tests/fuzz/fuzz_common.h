/* Shared by the fuzz targets: a fixed key and clock, so a seed corpus of sealed datagrams stays
 * valid. */
#ifndef SG_FUZZ_COMMON_H
#define SG_FUZZ_COMMON_H

#define FUZZ_KEY "0793ad72ad74d74fd59403ddbbbcab8a466213935c2b7d8ff9f676b2cc7e3e36"
#define FUZZ_NOW_NS 1800000000000000000ULL

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * The input as a NUL-terminated string in an exact-size copy (ASan catches a
 * read past the NUL); NULL if memory is short. The caller frees it.
 */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
