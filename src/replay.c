#include "replay.h"

#include <stdlib.h>
#include <string.h>

struct slot {
    uint8_t nonce[REPLAY_NONCE_BYTES];
    int32_t next; /* hash chain, -1 ends it */
    int64_t at;
};

struct replay {
    size_t capacity, count, oldest; /* ring of slots in arrival order */
    size_t nbuckets;
    struct slot *slots;
    int32_t *buckets;
    uint64_t early;
};

struct replay *replay_new(size_t capacity)
{
    struct replay *r = calloc(1, sizeof *r);
    if (r == NULL || capacity == 0 || capacity > INT32_MAX / 2) {
        free(r);
        return NULL;
    }
    r->capacity = capacity;
    r->nbuckets = 16;
    while (r->nbuckets < capacity)
        r->nbuckets *= 2;
    r->slots = calloc(capacity, sizeof *r->slots);
    r->buckets = malloc(r->nbuckets * sizeof *r->buckets);
    if (r->slots == NULL || r->buckets == NULL) {
        replay_free(r);
        return NULL;
    }
    memset(r->buckets, 0xff, r->nbuckets * sizeof *r->buckets); /* all -1 */
    return r;
}

void replay_free(struct replay *r)
{
    if (r == NULL)
        return;
    free(r->slots);
    free(r->buckets);
    free(r);
}

/* Nonces are random (and authenticated before they get here): their bytes are the hash. */
static size_t bucket_of(const struct replay *r, const uint8_t *nonce)
{
    uint64_t h;
    memcpy(&h, nonce, sizeof h);
    h ^= (uint64_t)nonce[8] << 3 ^ (uint64_t)nonce[11] << 17;
    return (size_t)(h & (r->nbuckets - 1));
}

static void unlink_slot(struct replay *r, int32_t idx)
{
    int32_t *pp = &r->buckets[bucket_of(r, r->slots[idx].nonce)];
    while (*pp != -1 && *pp != idx)
        pp = &r->slots[*pp].next;
    if (*pp == idx)
        *pp = r->slots[idx].next;
}

/* Drops the oldest slot; counts it if it was still within its keep time. */
static void evict_oldest(struct replay *r, int64_t now_ms, int64_t keep_ms)
{
    int32_t idx = (int32_t)r->oldest;
    if (now_ms - r->slots[idx].at < keep_ms)
        r->early++;
    unlink_slot(r, idx);
    r->oldest = r->oldest + 1 < r->capacity ? r->oldest + 1 : 0;
    r->count--;
}

int replay_check(struct replay *r, const uint8_t nonce[REPLAY_NONCE_BYTES], int64_t now_ms,
                 int64_t keep_ms)
{
    while (r->count > 0 && now_ms - r->slots[r->oldest].at >= keep_ms)
        evict_oldest(r, now_ms, keep_ms); /* expired: not counted as early */
    size_t b = bucket_of(r, nonce);
    for (int32_t i = r->buckets[b]; i != -1; i = r->slots[i].next)
        if (memcmp(r->slots[i].nonce, nonce, REPLAY_NONCE_BYTES) == 0)
            return 1;
    if (r->count == r->capacity)
        evict_oldest(r, now_ms, keep_ms);
    size_t at = r->oldest + r->count;
    int32_t idx = (int32_t)(at < r->capacity ? at : at - r->capacity);
    memcpy(r->slots[idx].nonce, nonce, REPLAY_NONCE_BYTES);
    r->slots[idx].at = now_ms;
    r->slots[idx].next = r->buckets[b];
    r->buckets[b] = idx;
    r->count++;
    return 0;
}

uint64_t replay_early_evictions(const struct replay *r)
{
    return r->early;
}
