#include "util/random.h"

#include <sodium.h>

uint32_t random_u32(void)
{
    return randombytes_random();
}
