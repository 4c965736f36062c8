/*
 * heap: a binary min-heap of deadlines over items named by small integers
 * (0 .. capacity - 1, e.g. the indices of a util/table), which knows where
 * each item sits, so that any item can be removed or moved in O(log n), not
 * only the earliest. Capacity is fixed at creation. Pure: no clock; a
 * deadline is any int64_t the caller compares by (ms, us, ...).
 */
#ifndef SG_HEAP_H
#define SG_HEAP_H

#include <stddef.h>
#include <stdint.h>

/* The largest capacity heap_new accepts. */
#define HEAP_MAX_CAPACITY ((size_t)1 << 30)

struct heap;

/* A heap for items 0 .. capacity - 1. NULL on no memory or capacity > HEAP_MAX_CAPACITY. */
__attribute__((warn_unused_result)) struct heap *heap_new(size_t capacity);

/* Frees h. h may be NULL. */
void heap_free(struct heap *h);

/* Adds item with deadline. Returns 0, or -1 if item >= capacity or it is in the heap already. */
__attribute__((warn_unused_result)) int heap_add(struct heap *h, size_t item, int64_t deadline);

/* Takes item out (if it is in the heap; else nothing happens). */
void heap_remove(struct heap *h, size_t item);

/* Moves item (which must be in the heap; else nothing happens) to a new deadline. */
void heap_update(struct heap *h, size_t item, int64_t deadline);

/*
 * The item with the earliest deadline (ties in no set order): returns 0 and
 * sets *item and, if deadline is not NULL, *deadline; -1 if the heap is empty.
 */
int heap_min(const struct heap *h, size_t *item, int64_t *deadline);

/* The earliest deadline, or INT64_MAX if the heap is empty. */
int64_t heap_next_deadline(const struct heap *h);

/* 1 if item is in the heap, else 0. */
int heap_contains(const struct heap *h, size_t item);

/* Items in the heap. */
size_t heap_count(const struct heap *h);

#endif
