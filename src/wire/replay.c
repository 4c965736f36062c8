#include "wire/replay.h"

#include <stdlib.h>
#include <string.h>

struct slot {
    uint8_t nonce[REPLAY_NONCE_BYTES];
    uint32_t next; /* hash chain: a slot index + 1, 0 ends it */
    uint64_t ts;
};

struct replay {
    size_t capacity, count, oldest; /* ring of slots in arrival order */
    size_t nbuckets;
    struct slot *slots;
    uint32_t *buckets; /* slot index + 1, 0 empty: calloc'd pages stay untouched until used */
    uint64_t max_ts, floor;
    uint64_t full;
};

struct replay *replay_new(size_t capacity)
{
    struct replay *r = calloc(1, sizeof *r);
    if (r == NULL || capacity == 0 || capacity > UINT32_MAX / 4) {
        free(r);
        return NULL;
    }
    r->capacity = capacity;
    r->nbuckets = 16;
    while (r->nbuckets < capacity)
        r->nbuckets *= 2;
    r->slots = calloc(capacity, sizeof *r->slots);
    r->buckets = calloc(r->nbuckets, sizeof *r->buckets);
    if (r->slots == NULL || r->buckets == NULL) {
        replay_free(r);
        return NULL;
    }
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

/* Nonces are random, and authenticated before they get here: their bytes are the hash. */
static size_t bucket_of(const struct replay *r, const uint8_t *nonce)
{
    uint64_t h;
    memcpy(&h, nonce, sizeof h);
    h ^= (uint64_t)nonce[8] << 3 ^ (uint64_t)nonce[11] << 17;
    return (size_t)(h & (r->nbuckets - 1));
}

static void unlink_slot(struct replay *r, uint32_t idx)
{
    uint32_t *pp = &r->buckets[bucket_of(r, r->slots[idx].nonce)];
    while (*pp != 0 && *pp != idx + 1)
        pp = &r->slots[*pp - 1].next;
    if (*pp == idx + 1)
        *pp = r->slots[idx].next;
}

/* Forgets the oldest nonces whose timestamps are below the floor: they can never be accepted. */
static void expire(struct replay *r)
{
    while (r->count > 0 && r->slots[r->oldest].ts < r->floor) {
        unlink_slot(r, (uint32_t)r->oldest);
        r->oldest = r->oldest + 1 < r->capacity ? r->oldest + 1 : 0;
        r->count--;
    }
}

/* Raises the floor (never lowers it, even if the window grows on a reload). */
static void raise_floor(struct replay *r, uint64_t ts, uint64_t window_s)
{
    if (ts > r->max_ts)
        r->max_ts = ts;
    uint64_t keep = window_s > UINT64_MAX / 2000000000ULL ? UINT64_MAX : window_s * 2000000000ULL;
    uint64_t floor = r->max_ts > keep ? r->max_ts - keep : 0;
    if (floor > r->floor)
        r->floor = floor;
}

enum replay_result replay_check(struct replay *r, const uint8_t nonce[REPLAY_NONCE_BYTES],
                                uint64_t ts_ns, uint64_t window_s)
{
    /*
     * Any authentic, fresh timestamp may raise the floor, recorded or not:
     * otherwise a full cache would never empty.
     */
    raise_floor(r, ts_ns, window_s);
    if (ts_ns < r->floor)
        return REPLAY_STALE;
    size_t b = bucket_of(r, nonce);
    for (uint32_t i = r->buckets[b]; i != 0; i = r->slots[i - 1].next)
        if (memcmp(r->slots[i - 1].nonce, nonce, REPLAY_NONCE_BYTES) == 0)
            return REPLAY_SEEN;
    expire(r);
    if (r->count == r->capacity) {
        r->full++;
        return REPLAY_FULL;
    }
    size_t at = r->oldest + r->count;
    uint32_t idx = (uint32_t)(at < r->capacity ? at : at - r->capacity);
    memcpy(r->slots[idx].nonce, nonce, REPLAY_NONCE_BYTES);
    r->slots[idx].ts = ts_ns;
    r->slots[idx].next = r->buckets[b];
    r->buckets[b] = idx + 1;
    r->count++;
    return REPLAY_NEW;
}

uint64_t replay_full_refusals(const struct replay *r)
{
    return r->full;
}

size_t replay_count(const struct replay *r)
{
    return r->count;
}
