/*
 * reasm: putting messages sent in parts (wire/parts.h) together on the
 * receiver, within fixed bounds. Pure: no clock (times are passed in, ms),
 * no I/O, no crypto; only authenticated parts are ever handed to it.
 *
 * Memory: room for a whole message is taken when its first part arrives and
 * counted against three limits: the message's own (max_message), its
 * peer's (peer_bytes) and everyone's (total_bytes); its bitmap of parts
 * (at most 1/2048 of it) is not counted. A message that does not
 * fit evicts the oldest incomplete messages (by the time of their last
 * part): the peer's own while the peer is over its share, else anyone's.
 * An incomplete message whose last part is older than age_ms is evicted by
 * reasm_expire. Every eviction is counted.
 *
 * A complete message stays, holding its bytes, until the caller says what
 * became of it: reasm_stored (it is in the database: later parts of it are
 * answered REASM_STORED_BEFORE for done_ms) or reasm_drop (forgotten).
 *
 * Peers are named by a 64-bit key the caller makes (slot and generation);
 * lookups are keyed SipHash (util/table).
 */
#ifndef SG_REASM_H
#define SG_REASM_H

#include "wire/parts.h"

#include <stddef.h>
#include <stdint.h>

struct reasm;
struct reasm_msg; /* one message being put together (opaque) */

struct reasm_limits {
    size_t total_bytes;   /* all incomplete and complete-unstored messages (64 MiB) */
    size_t peer_bytes;    /* one peer's (a quarter of total) */
    uint32_t max_message; /* SECUREDGRAM_MAX_MESSAGE */
    size_t max_messages;  /* messages held at once */
    int64_t age_ms;       /* an incomplete message older than this is evicted (30000) */
    size_t done_max;      /* stored messages remembered (to re-ACK their parts) */
    int64_t done_ms;      /* for how long (60000) */
};

enum reasm_result {
    REASM_NEW_PART,      /* taken; the message is not complete yet */
    REASM_COMPLETE,      /* taken, and it completed the message (*out) */
    REASM_DUPLICATE,     /* a part it holds already, or of a complete message not yet stored */
    REASM_STORED_BEFORE, /* a part of a message stored before: ACK it again */
    REASM_MISMATCH,      /* sequence, length or part size differ from the message's first part */
    REASM_TOO_LARGE,     /* longer than max_message */
    REASM_NO_ROOM        /* cannot be made to fit, even by evicting (max_messages of
                            complete messages waiting to be stored, for example) */
};

struct reasm_stats {
    uint64_t completed;
    uint64_t evicted_age, evicted_memory; /* incomplete messages evicted */
    uint64_t too_large, mismatched, no_room;
    size_t bytes, messages; /* held now */
};

/* A table within the limits; NULL on no memory or limits that make no sense. */
__attribute__((warn_unused_result)) struct reasm *reasm_new(const struct reasm_limits *lim);
void reasm_free(struct reasm *r);

/*
 * New limits (a reload). Messages held over them are evicted at the next
 * reasm_add. max_messages and done_max are capped at reasm_new's (its tables
 * do not grow); limits reasm_new would refuse are ignored.
 */
void reasm_set_limits(struct reasm *r, const struct reasm_limits *lim);

/*
 * Takes one authenticated part (as part_parse read it) of peer's message.
 * *out is set for REASM_NEW_PART and REASM_COMPLETE (the message it went to).
 */
enum reasm_result reasm_add(struct reasm *r, uint64_t peer, const struct part_header *h,
                            const uint8_t *data, size_t data_len, int64_t now_ms,
                            struct reasm_msg **out);

/* A complete message's bytes (reasm_length of them), valid until reasm_stored or reasm_drop. */
const uint8_t *reasm_bytes(const struct reasm_msg *m);
uint32_t reasm_length(const struct reasm_msg *m);
const struct part_header *reasm_header(const struct reasm_msg *m); /* of its first part */
uint64_t reasm_peer(const struct reasm_msg *m);

/*
 * The ranges of parts an incomplete message holds, lowest first, at most max
 * (the lowest if there are more). Returns how many.
 */
int reasm_ranges(const struct reasm_msg *m, struct part_range *out, int max);

/*
 * The messages that took a new part since the last call, each once, at most
 * max into out (the rest come next call); complete ones are not listed.
 * Returns how many. For one part ACK per message per turn.
 */
int reasm_take_dirty(struct reasm *r, struct reasm_msg **out, int max);

/* The complete message m was stored: its bytes are freed, its id remembered for done_ms. */
void reasm_stored(struct reasm *r, struct reasm_msg *m, int64_t now_ms);

/* Forgets m (complete or not) and frees its bytes; nothing is remembered. */
void reasm_drop(struct reasm *r, struct reasm_msg *m);

/* Evicts incomplete messages whose last part is older than age_ms, and forgets old stored ids. */
void reasm_expire(struct reasm *r, int64_t now_ms);

/* When reasm_expire next has something to do (ms), or INT64_MAX. */
int64_t reasm_next_expiry(const struct reasm *r);

/* Forgets every message of peer (removed from the peers file), complete ones too. */
void reasm_forget_peer(struct reasm *r, uint64_t peer);

void reasm_get_stats(const struct reasm *r, struct reasm_stats *s);

#endif
