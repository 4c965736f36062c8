/*
 * heap: slots[0 .. count) is the heap, each slot an item and its deadline
 * (kept in the slot so sifting reads one array); pos[item] is the item's
 * slot + 1, or 0 when it is not in the heap.
 */
#include "util/heap.h"

#include <stdlib.h>

struct slot {
    int64_t deadline;
    uint32_t item;
};

struct heap {
    size_t capacity, count;
    struct slot *slots;
    uint32_t *pos;
};

struct heap *heap_new(size_t capacity)
{
    if (capacity > HEAP_MAX_CAPACITY)
        return NULL;
    struct heap *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->capacity = capacity;
    h->slots = calloc(capacity > 0 ? capacity : 1, sizeof *h->slots);
    h->pos = calloc(capacity > 0 ? capacity : 1, sizeof *h->pos);
    if (h->slots == NULL || h->pos == NULL) {
        heap_free(h);
        return NULL;
    }
    return h;
}

void heap_free(struct heap *h)
{
    if (h == NULL)
        return;
    free(h->slots);
    free(h->pos);
    free(h);
}

static void put(struct heap *h, size_t i, struct slot s)
{
    h->slots[i] = s;
    h->pos[s.item] = (uint32_t)i + 1;
}

static void sift_up(struct heap *h, size_t i)
{
    struct slot s = h->slots[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->slots[parent].deadline <= s.deadline)
            break;
        put(h, i, h->slots[parent]);
        i = parent;
    }
    put(h, i, s);
}

static void sift_down(struct heap *h, size_t i)
{
    struct slot s = h->slots[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->count)
            break;
        if (child + 1 < h->count && h->slots[child + 1].deadline < h->slots[child].deadline)
            child++;
        if (h->slots[child].deadline >= s.deadline)
            break;
        put(h, i, h->slots[child]);
        i = child;
    }
    put(h, i, s);
}

int heap_contains(const struct heap *h, size_t item)
{
    return item < h->capacity && h->pos[item] != 0;
}

int heap_add(struct heap *h, size_t item, int64_t deadline)
{
    if (item >= h->capacity || h->pos[item] != 0)
        return -1;
    struct slot s = {deadline, (uint32_t)item};
    put(h, h->count++, s);
    sift_up(h, h->count - 1);
    return 0;
}

void heap_remove(struct heap *h, size_t item)
{
    if (!heap_contains(h, item))
        return;
    size_t i = h->pos[item] - 1;
    h->pos[item] = 0;
    h->count--;
    if (i == h->count)
        return;
    put(h, i, h->slots[h->count]); /* the last slot fills the hole, then finds its place */
    sift_down(h, i);
    sift_up(h, h->pos[h->slots[i].item] - 1);
}

void heap_update(struct heap *h, size_t item, int64_t deadline)
{
    if (!heap_contains(h, item))
        return;
    size_t i = h->pos[item] - 1;
    h->slots[i].deadline = deadline;
    sift_down(h, i);
    sift_up(h, h->pos[item] - 1);
}

int heap_min(const struct heap *h, size_t *item, int64_t *deadline)
{
    if (h->count == 0)
        return -1;
    *item = h->slots[0].item;
    if (deadline != NULL)
        *deadline = h->slots[0].deadline;
    return 0;
}

int64_t heap_next_deadline(const struct heap *h)
{
    return h->count > 0 ? h->slots[0].deadline : INT64_MAX;
}

size_t heap_count(const struct heap *h)
{
    return h->count;
}
