/*
 * table: one pool of capacity entries, each
 *
 *   uint32_t link | uint32_t hash | key (key_bytes) | padding | value | padding
 *
 * with entries and values 8-byte aligned. hash is the low 32 bits of the
 * key's SipHash: it picks the bucket (there are at most 2^30) without hashing
 * again on removal, and most keys on a chain that are not the one sought are
 * passed over without a memcmp. An entry in use is on its chain: link is the
 * index + 1 of the next entry on it (0 ends it). A removed entry is on the
 * free list: link is FREE_BIT | the index + 1 of the next free one. Entries
 * at or past `used` have never been handed out; they are taken in order when
 * the free list is empty, so the pool's pages (calloc'd) are touched only as
 * the table fills. Buckets hold the index + 1 of a chain's first entry (0:
 * empty); there are a power of two of them, at least capacity, so a full
 * table's chains average at most one entry.
 */
#include "util/table.h"

#include "util/secret.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 8
#define FREE_BIT 0x80000000u
#define HEADER_BYTES (2 * sizeof(uint32_t))
/* The largest key or value: far beyond any use, far below an overflow of the sizes. */
#define MAX_PART_BYTES ((size_t)1 << 20)

struct table {
    size_t capacity, count;
    size_t used; /* entries ever handed out: pool[0 .. used) */
    size_t key_bytes, value_off, value_bytes, entry_bytes;
    uint32_t mask;      /* buckets - 1 */
    uint32_t free_list; /* index + 1 of a removed entry, 0: none */
    uint32_t *buckets;
    unsigned char *pool;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
};

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

struct table *table_new(size_t capacity, size_t key_bytes, size_t value_bytes)
{
    if (capacity > TABLE_MAX_CAPACITY || key_bytes == 0 || key_bytes > MAX_PART_BYTES ||
        value_bytes > MAX_PART_BYTES || sodium_init() < 0)
        return NULL;
    struct table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->capacity = capacity;
    t->key_bytes = key_bytes;
    t->value_off = round_up(HEADER_BYTES + key_bytes);
    t->value_bytes = value_bytes;
    t->entry_bytes = round_up(t->value_off + value_bytes);
    size_t nbuckets = 16;
    while (nbuckets < capacity)
        nbuckets *= 2;
    t->mask = (uint32_t)(nbuckets - 1);
    t->buckets = calloc(nbuckets, sizeof *t->buckets);
    t->pool = calloc(capacity > 0 ? capacity : 1, t->entry_bytes);
    if (t->buckets == NULL || t->pool == NULL) {
        table_free(t);
        return NULL;
    }
    crypto_shorthash_keygen(t->hash_key);
    return t;
}

void table_free(struct table *t)
{
    if (t == NULL)
        return;
    free(t->buckets);
    free(t->pool);
    secret_wipe(t->hash_key, sizeof t->hash_key);
    free(t);
}

static unsigned char *entry(const struct table *t, size_t i)
{
    return t->pool + i * t->entry_bytes;
}

static uint32_t *link_of(unsigned char *e)
{
    return (uint32_t *)(void *)e; /* entries are ALIGN-aligned */
}

static uint32_t *hash_of(unsigned char *e)
{
    return (uint32_t *)(void *)(e + sizeof(uint32_t));
}

static unsigned char *key_of(unsigned char *e)
{
    return e + HEADER_BYTES;
}

static unsigned char *entry_of_value(const struct table *t, const void *value)
{
    return (unsigned char *)value - t->value_off;
}

uint64_t table_hash(const struct table *t, const void *key)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, key, t->key_bytes, t->hash_key);
    memcpy(&v, h, sizeof v);
    return v;
}

/*
 * The link that points at key's entry (*result != 0), or the end of key's
 * chain (*result == 0). h: the low 32 bits of key's hash.
 */
static uint32_t *find_link(const struct table *t, const void *key, uint32_t h)
{
    uint32_t *pp = &t->buckets[h & t->mask];
    while (*pp != 0) {
        unsigned char *e = entry(t, *pp - 1);
        if (*hash_of(e) == h && memcmp(key_of(e), key, t->key_bytes) == 0)
            break;
        pp = link_of(e);
    }
    return pp;
}

void *table_find(const struct table *t, const void *key)
{
    uint32_t i = *find_link(t, key, (uint32_t)table_hash(t, key));
    return i != 0 ? entry(t, i - 1) + t->value_off : NULL;
}

void *table_insert(struct table *t, const void *key)
{
    uint32_t h = (uint32_t)table_hash(t, key);
    uint32_t *tail = find_link(t, key, h);
    if (*tail != 0)
        return NULL; /* already in */
    size_t i;
    if (t->free_list != 0) {
        i = t->free_list - 1;
        t->free_list = *link_of(entry(t, i)) & ~FREE_BIT;
    } else if (t->used < t->capacity) {
        i = t->used++;
    } else {
        return NULL;
    }
    unsigned char *e = entry(t, i);
    *link_of(e) = 0;
    *hash_of(e) = h;
    *tail = (uint32_t)i + 1; /* appended: tail is the end of key's chain */
    memcpy(key_of(e), key, t->key_bytes);
    memset(e + t->value_off, 0, t->value_bytes);
    t->count++;
    return e + t->value_off;
}

void table_remove(struct table *t, void *value)
{
    unsigned char *e = entry_of_value(t, value);
    uint32_t i = (uint32_t)table_index(t, value) + 1;
    uint32_t *pp = &t->buckets[*hash_of(e) & t->mask];
    while (*pp != 0 && *pp != i)
        pp = link_of(entry(t, *pp - 1));
    if (*pp != i)
        return; /* removed already: nothing to do */
    *pp = *link_of(e);
    *link_of(e) = FREE_BIT | t->free_list;
    t->free_list = i;
    t->count--;
}

const void *table_key(const struct table *t, const void *value)
{
    return key_of(entry_of_value(t, value));
}

size_t table_index(const struct table *t, const void *value)
{
    return (size_t)(entry_of_value(t, value) - t->pool) / t->entry_bytes;
}

void *table_at(const struct table *t, size_t i)
{
    if (i >= t->used || (*link_of(entry(t, i)) & FREE_BIT) != 0)
        return NULL;
    return entry(t, i) + t->value_off;
}

void *table_next(const struct table *t, size_t *pos)
{
    for (size_t i = *pos; i < t->used; i++) {
        void *v = table_at(t, i);
        if (v != NULL) {
            *pos = i + 1;
            return v;
        }
    }
    *pos = t->used;
    return NULL;
}

size_t table_count(const struct table *t)
{
    return t->count;
}

size_t table_capacity(const struct table *t)
{
    return t->capacity;
}
