#include "util/secret.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void secret_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        sodium_memzero(p, n);
}

void secret_free_str(char *s)
{
    if (s == NULL)
        return;
    secret_wipe(s, strlen(s));
    free(s);
}

void secret_free(void *p, size_t n)
{
    secret_wipe(p, n);
    free(p);
}

__attribute__((noinline)) void secret_wipe_stack(void)
{
    unsigned char below[SECRET_STACK_BYTES];
    sodium_memzero(below, sizeof below);
    __asm__ __volatile__("" : : "r"(below) : "memory"); /* the frame is really there */
}
