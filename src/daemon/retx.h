/*
 * retx: the messages in flight (sent, not yet acknowledged) and when each is
 * due for retransmission. Pure: no clock and no I/O; the caller passes times
 * in milliseconds. Capacity is fixed at creation, so memory is bounded however
 * long the queue in the database grows.
 *
 * Lookup by message_id is a hash (util/table, O(1)); the next deadline is a
 * binary heap (util/heap, O(log n) to add, remove or reschedule).
 */
#ifndef SG_RETX_H
#define SG_RETX_H

#include "wire/message.h"
#include "util/net.h"

#include <stddef.h>
#include <stdint.h>

struct retx;

struct retx_bulk; /* a message in parts: daemon/txparts.c */

struct retx_entry {
    int64_t rowid;
    char id[MESSAGE_ID_LEN + 1];
    uint8_t v2;      /* sealed in version 2 (the retry policy auto makes its timer adaptive) */
    uint8_t resent;  /* sent more than once (or loaded at start): no sample (Karn) */
    uint8_t backoff; /* its timer fired this many times since it last made progress */
    struct net_addr dst;
    int64_t retries;    /* retry_count of the row */
    int64_t deadline;   /* ms; change it only through retx_reschedule */
    int64_t first_ms;   /* when this run first sent it (loaded at start: its last sending), ms */
    int64_t sent_ms;    /* its last sending in this run (0: none yet), for a round-trip sample */
    int64_t sequence;   /* its number to its peer (docs/wire.md "Order"), 0: none */
    int64_t created_ms; /* its row's created_at, ms since the epoch (0: unknown), for metrics */
    int peer_slot;      /* the peer it was sealed for (daemon/peertab.h), or -1 */
    uint32_t peer_gen;
    struct retx_bulk *bulk; /* a message sent in parts, or NULL */
};

/* A table for at most capacity entries; NULL if memory cannot be had. */
__attribute__((warn_unused_result)) struct retx *retx_new(size_t capacity);
void retx_free(struct retx *r);

size_t retx_count(const struct retx *r);
size_t retx_room(const struct retx *r);

/*
 * Adds an entry (copied). Returns it, or NULL if the table is full or id is
 * already in flight.
 */
struct retx_entry *retx_add(struct retx *r, int64_t rowid, const char *id,
                            const struct net_addr *dst, int64_t retries, int64_t deadline);

/* The entry for id, or NULL. */
struct retx_entry *retx_find(struct retx *r, const char *id);

/* Removes an entry (which becomes invalid). */
void retx_remove(struct retx *r, struct retx_entry *e);

/* Moves an entry's deadline. */
void retx_reschedule(struct retx *r, struct retx_entry *e, int64_t deadline);

/* The entry with the earliest deadline if that deadline is <= now, else NULL. */
struct retx_entry *retx_due(struct retx *r, int64_t now);

/* The earliest deadline, or INT64_MAX when nothing is in flight. */
int64_t retx_next_deadline(const struct retx *r);

#endif
