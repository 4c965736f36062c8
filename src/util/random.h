/*
 * random: unpredictable numbers for what is not a secret but must not be
 * guessed or repeat in step across hosts (the jitter of retransmission
 * timers). From libsodium's randombytes, the kernel's generator.
 */
#ifndef SG_RANDOM_H
#define SG_RANDOM_H

#include <stdint.h>

/* A uniformly random 32-bit number. */
uint32_t random_u32(void);

#endif
