/*
 * table: a hash table of fixed-size keys with a capacity fixed at creation.
 * All memory is allocated by table_new (nothing grows later, nothing is
 * allocated per insert), and pages of it are touched only as entries are
 * first used, so a large table that stays mostly empty costs little.
 *
 * Keys are hashed with SipHash-2-4 (libsodium's crypto_shorthash) under a
 * random key made for each table, so whoever chooses the keys (a source
 * address off the network) cannot aim them all at one chain.
 *
 * An entry is a key (copied in) and a value of value_bytes that the caller
 * reads and writes through the pointer it is given, aligned for any type of
 * at most 8 bytes. The pointer, and the entry's index (0 .. capacity - 1),
 * stay valid until the entry is removed or the table freed. Not thread-safe.
 */
#ifndef SG_TABLE_H
#define SG_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* The largest capacity table_new accepts. */
#define TABLE_MAX_CAPACITY ((size_t)1 << 30)

struct table;

/*
 * A table for up to capacity entries (0 is allowed: always full) of
 * key_bytes-byte keys (at least 1) and value_bytes-byte values (may be 0).
 * Returns NULL if memory or randomness cannot be had or capacity is above
 * TABLE_MAX_CAPACITY. Free with table_free.
 */
__attribute__((warn_unused_result)) struct table *table_new(size_t capacity, size_t key_bytes,
                                                            size_t value_bytes);

/* Frees t and every entry (values hold no references the table knows of). t may be NULL. */
void table_free(struct table *t);

/* The value of key's entry (key_bytes bytes are read), or NULL if there is none. */
void *table_find(const struct table *t, const void *key);

/*
 * Adds an entry for key with its value zeroed. Returns the value, or NULL if
 * the table is full or key is already in it (find it instead).
 */
__attribute__((warn_unused_result)) void *table_insert(struct table *t, const void *key);

/*
 * Removes the entry whose value is value (from table_find, _insert, _at or
 * _next); value is invalid afterwards. An entry removed already is left alone.
 */
void table_remove(struct table *t, void *value);

/* The key of the entry whose value is value (key_bytes bytes, read-only). */
const void *table_key(const struct table *t, const void *value);

/* The index of the entry whose value is value: 0 .. capacity - 1, stable while it is in t. */
size_t table_index(const struct table *t, const void *value);

/* The value of the entry at index i, or NULL if no entry is there (or i >= capacity). */
void *table_at(const struct table *t, size_t i);

/*
 * Iteration in index order: the value of the first entry at an index >= *pos,
 * with *pos set past it; NULL at the end. Start with *pos = 0. Entries may be
 * removed while iterating (the current one too); one inserted meanwhile may
 * or may not be visited.
 */
void *table_next(const struct table *t, size_t *pos);

/* Entries in t now. */
size_t table_count(const struct table *t);

/* The capacity t was made with. */
size_t table_capacity(const struct table *t);

/*
 * key's 64-bit SipHash under t's own random key (its low bits pick the
 * chain). For tests and diagnostics: two tables give one key different hashes.
 */
uint64_t table_hash(const struct table *t, const void *key);

#endif
