#include "wire/replay.h"

#include "util/table.h"

#include <stdlib.h>

/*
 * The nonces are a table (key: the nonce, value: its datagram's timestamp);
 * ring[] lists their table indices in arrival order, oldest first, so that
 * they are forgotten in that order. Both are calloc'd: pages are touched
 * only as they fill.
 */
struct replay {
    struct table *nonces;
    uint32_t *ring;
    size_t capacity, oldest;
    uint64_t max_ts, floor;
    uint64_t full;
};

struct replay *replay_new(size_t capacity)
{
    if (capacity == 0 || capacity > UINT32_MAX / 4)
        return NULL;
    struct replay *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->capacity = capacity;
    r->nonces = table_new(capacity, REPLAY_NONCE_BYTES, sizeof(uint64_t));
    r->ring = calloc(capacity, sizeof *r->ring);
    if (r->nonces == NULL || r->ring == NULL) {
        replay_free(r);
        return NULL;
    }
    return r;
}

void replay_free(struct replay *r)
{
    if (r == NULL)
        return;
    table_free(r->nonces);
    free(r->ring);
    free(r);
}

/* Forgets the oldest nonces whose timestamps are below the floor: they can never be accepted. */
static void expire(struct replay *r)
{
    while (table_count(r->nonces) > 0) {
        uint64_t *ts = table_at(r->nonces, r->ring[r->oldest]);
        if (*ts >= r->floor)
            break;
        table_remove(r->nonces, ts);
        r->oldest = r->oldest + 1 < r->capacity ? r->oldest + 1 : 0;
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
    uint64_t *ts = table_insert(r->nonces, nonce); /* NULL: seen before, or no room */
    if (ts == NULL) {
        if (table_count(r->nonces) < r->capacity || table_find(r->nonces, nonce) != NULL)
            return REPLAY_SEEN;
        expire(r); /* full: room may come from nonces the floor has passed */
        ts = table_insert(r->nonces, nonce);
        if (ts == NULL) {
            r->full++;
            return REPLAY_FULL;
        }
    }
    *ts = ts_ns;
    size_t at = r->oldest + table_count(r->nonces) - 1; /* the ring has room: count <= capacity */
    r->ring[at < r->capacity ? at : at - r->capacity] = (uint32_t)table_index(r->nonces, ts);
    expire(r); /* never the one just added: ts_ns >= floor */
    return REPLAY_NEW;
}

uint64_t replay_full_refusals(const struct replay *r)
{
    return r->full;
}

size_t replay_count(const struct replay *r)
{
    return table_count(r->nonces);
}
