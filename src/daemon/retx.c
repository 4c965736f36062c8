#include "daemon/retx.h"

#include <stdlib.h>
#include <string.h>

struct retx {
    size_t capacity, count, nbuckets;
    struct retx_entry *pool;      /* capacity entries */
    struct retx_entry *free_list; /* unused entries */
    struct retx_entry **buckets;  /* hash chains by id */
    struct retx_entry **heap;     /* min-heap by deadline */
};

struct retx *retx_new(size_t capacity)
{
    struct retx *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->capacity = capacity;
    r->nbuckets = 16;
    while (r->nbuckets < capacity * 2)
        r->nbuckets *= 2;
    r->pool = calloc(capacity, sizeof *r->pool);
    r->buckets = calloc(r->nbuckets, sizeof *r->buckets);
    r->heap = calloc(capacity, sizeof *r->heap);
    if (r->pool == NULL || r->buckets == NULL || r->heap == NULL) {
        retx_free(r);
        return NULL;
    }
    for (size_t i = capacity; i-- > 0;) {
        r->pool[i].next = r->free_list;
        r->free_list = &r->pool[i];
    }
    return r;
}

void retx_free(struct retx *r)
{
    if (r == NULL)
        return;
    free(r->pool);
    free(r->buckets);
    free(r->heap);
    free(r);
}

size_t retx_count(const struct retx *r)
{
    return r->count;
}

size_t retx_room(const struct retx *r)
{
    return r->capacity - r->count;
}

/* FNV-1a over the 24 id characters; ids are random, so any mix will do. */
static size_t bucket_of(const struct retx *r, const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < MESSAGE_ID_LEN && id[i] != '\0'; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ULL;
    return (size_t)(h & (r->nbuckets - 1));
}

static void heap_set(struct retx *r, size_t i, struct retx_entry *e)
{
    r->heap[i] = e;
    e->heap_index = i;
}

static void sift_up(struct retx *r, size_t i)
{
    struct retx_entry *e = r->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (r->heap[parent]->deadline <= e->deadline)
            break;
        heap_set(r, i, r->heap[parent]);
        i = parent;
    }
    heap_set(r, i, e);
}

static void sift_down(struct retx *r, size_t i)
{
    struct retx_entry *e = r->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= r->count)
            break;
        if (child + 1 < r->count && r->heap[child + 1]->deadline < r->heap[child]->deadline)
            child++;
        if (r->heap[child]->deadline >= e->deadline)
            break;
        heap_set(r, i, r->heap[child]);
        i = child;
    }
    heap_set(r, i, e);
}

struct retx_entry *retx_find(struct retx *r, const char *id)
{
    for (struct retx_entry *e = r->buckets[bucket_of(r, id)]; e != NULL; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

struct retx_entry *retx_add(struct retx *r, int64_t rowid, const char *id,
                            const struct net_addr *dst, int64_t retries, int64_t deadline)
{
    if (r->free_list == NULL || strlen(id) != MESSAGE_ID_LEN || retx_find(r, id) != NULL)
        return NULL;
    struct retx_entry *e = r->free_list;
    r->free_list = e->next;
    e->rowid = rowid;
    memcpy(e->id, id, sizeof e->id);
    e->dst = *dst;
    e->retries = retries;
    e->deadline = deadline;
    size_t b = bucket_of(r, id);
    e->next = r->buckets[b];
    r->buckets[b] = e;
    heap_set(r, r->count, e);
    r->count++;
    sift_up(r, e->heap_index);
    return e;
}

void retx_remove(struct retx *r, struct retx_entry *e)
{
    struct retx_entry **pp = &r->buckets[bucket_of(r, e->id)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    size_t i = e->heap_index;
    r->count--;
    if (i != r->count) {
        heap_set(r, i, r->heap[r->count]);
        sift_down(r, i);
        sift_up(r, r->heap[i]->heap_index);
    }
    e->next = r->free_list;
    r->free_list = e;
}

void retx_reschedule(struct retx *r, struct retx_entry *e, int64_t deadline)
{
    e->deadline = deadline;
    sift_down(r, e->heap_index);
    sift_up(r, e->heap_index);
}

struct retx_entry *retx_due(struct retx *r, int64_t now)
{
    return r->count > 0 && r->heap[0]->deadline <= now ? r->heap[0] : NULL;
}

int64_t retx_next_deadline(const struct retx *r)
{
    return r->count > 0 ? r->heap[0]->deadline : INT64_MAX;
}
