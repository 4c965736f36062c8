/*
 * secret: the one way to wipe memory that held a secret (the key, its hex
 * text, a file or a value that may contain either). Wiping goes through
 * sodium_memzero, which the compiler may not drop as a dead store, as it may
 * a memset before free().
 */
#ifndef SG_SECRET_H
#define SG_SECRET_H

#include <stddef.h>

/* Overwrites n bytes at p with zeros. p may be NULL (nothing is done). */
void secret_wipe(void *p, size_t n);

/* Wipes the NUL-terminated string s (its strlen bytes), then frees it. s may be NULL. */
void secret_free_str(char *s);

/* Wipes n bytes at p, then frees p (which came from malloc). p may be NULL. */
void secret_free(void *p, size_t n);

/*
 * Wipes the SECRET_STACK_BYTES of stack below the caller's frame: what the
 * functions it called left there (a parser's copy of a line, a decoder's of
 * the key's text) is not freed memory that a wipe before free() reaches.
 * For the daemon once its key is set up, at start and after a reload.
 */
#define SECRET_STACK_BYTES (64 * 1024)
void secret_wipe_stack(void);

#endif
