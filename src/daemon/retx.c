#include "daemon/retx.h"

#include "util/heap.h"
#include "util/table.h"

#include <stdlib.h>
#include <string.h>

/*
 * The entries live in a table keyed by the 24 id characters; the heap orders
 * them by deadline, each named by its table index.
 */
struct retx {
    struct table *entries;
    struct heap *deadlines;
};

struct retx *retx_new(size_t capacity)
{
    struct retx *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->entries = table_new(capacity, MESSAGE_ID_LEN, sizeof(struct retx_entry));
    r->deadlines = heap_new(capacity);
    if (r->entries == NULL || r->deadlines == NULL) {
        retx_free(r);
        return NULL;
    }
    return r;
}

void retx_free(struct retx *r)
{
    if (r == NULL)
        return;
    table_free(r->entries);
    heap_free(r->deadlines);
    free(r);
}

size_t retx_count(const struct retx *r)
{
    return table_count(r->entries);
}

size_t retx_room(const struct retx *r)
{
    return table_capacity(r->entries) - table_count(r->entries);
}

/* 1 if id is a key the table can hold: exactly MESSAGE_ID_LEN characters. */
static int id_ok(const char *id)
{
    return strnlen(id, MESSAGE_ID_LEN + 1) == MESSAGE_ID_LEN;
}

struct retx_entry *retx_find(struct retx *r, const char *id)
{
    return id_ok(id) ? table_find(r->entries, id) : NULL;
}

struct retx_entry *retx_add(struct retx *r, int64_t rowid, const char *id,
                            const struct net_addr *dst, int64_t retries, int64_t deadline)
{
    if (!id_ok(id))
        return NULL;
    struct retx_entry *e = table_insert(r->entries, id); /* NULL: full, or id in flight */
    if (e == NULL)
        return NULL;
    if (heap_add(r->deadlines, table_index(r->entries, e), deadline) != 0) {
        table_remove(r->entries, e); /* cannot happen: the heap has the table's capacity */
        return NULL;
    }
    e->rowid = rowid;
    e->first_ms = deadline;
    e->peer_slot = -1;
    e->peer_gen = 0;
    memcpy(e->id, id, sizeof e->id);
    e->dst = *dst;
    e->retries = retries;
    e->deadline = deadline;
    return e;
}

void retx_remove(struct retx *r, struct retx_entry *e)
{
    heap_remove(r->deadlines, table_index(r->entries, e));
    table_remove(r->entries, e);
}

void retx_reschedule(struct retx *r, struct retx_entry *e, int64_t deadline)
{
    e->deadline = deadline;
    heap_update(r->deadlines, table_index(r->entries, e), deadline);
}

struct retx_entry *retx_due(struct retx *r, int64_t now)
{
    size_t i;
    int64_t deadline;
    if (heap_min(r->deadlines, &i, &deadline) != 0 || deadline > now)
        return NULL;
    return table_at(r->entries, i);
}

int64_t retx_next_deadline(const struct retx *r)
{
    return heap_next_deadline(r->deadlines);
}
