/* Shared by the fuzz targets: a fixed key and clock, so a seed corpus of sealed datagrams stays
 * valid. */
#ifndef SG_FUZZ_COMMON_H
#define SG_FUZZ_COMMON_H

#define FUZZ_KEY "0793ad72ad74d74fd59403ddbbbcab8a466213935c2b7d8ff9f676b2cc7e3e36"
#define FUZZ_NOW_NS 1800000000000000000ULL

#endif
