#include "daemon/reasm.h"

#include "util/table.h"

#include <stdlib.h>
#include <string.h>

/*
 * Three tables, all made at reasm_new (nothing is allocated later but the
 * messages' own buffers):
 *
 *   msgs   (peer, id) -> struct reasm_msg     capacity max_messages
 *   peers  peer -> struct peer                capacity max_messages (a peer has an
 *                                             entry only while it holds a message)
 *   done   (peer, id) -> struct done          capacity done_max
 *
 * Table values stay where they are until removed, so the lists below link
 * them by pointer. Every list is intrusive and doubly linked: any member
 * leaves in O(1), which is what lets an evicted or dropped message leave the
 * dirty list at once (no dangling pointer is ever handed out).
 *
 *   lru      every incomplete message, oldest last part first (expiry, global eviction)
 *   peer lru the same, one list per peer: a peer over its share evicts its own
 *            oldest without walking past everyone else's messages (a flooding peer
 *            would make that walk O(max_messages) per eviction), and the peer entry
 *            exists anyway to count the peer's bytes
 *   dirty    incomplete messages that took a part since the last reasm_take_dirty
 *   done     remembered ids, oldest first (forgotten from the head)
 *
 * Complete messages are on no list: they are never evicted, and only
 * reasm_forget_peer (rare: a peers file reload) has to find them, by walking
 * the table. Times are the caller's monotonic clock; the lists are in time
 * order because each member joins at the tail with the latest time.
 */

#define KEY_BYTES (8 + PART_ID_BYTES)

struct node {
    struct node *prev, *next;
};

struct list {
    struct node *head, *tail;
};

struct peer {
    size_t bytes;          /* of all its messages */
    size_t complete_bytes; /* of those complete, waiting to be stored */
    size_t messages;
    struct list lru;
};

struct reasm_msg {
    struct node lru, by_peer, dirty;
    struct part_header h; /* the first part's */
    uint64_t peer;
    struct peer *p; /* its peer's entry: there as long as the message is */
    uint8_t *buf;   /* h.length bytes, then the bitmap of count bits */
    size_t bytes;   /* what buf counts against the limits: h.length (not the bitmap) */
    uint32_t count, have;
    int64_t last_ms;
    uint8_t complete, on_dirty;
};

struct done {
    struct node link; /* first: a node is its done */
    int64_t at;       /* when it was stored */
};

struct reasm {
    struct reasm_limits lim; /* max_messages and done_max capped at the tables' capacity */
    struct table *msgs, *peers, *done;
    struct list lru, dirty, done_list;
    size_t bytes, complete_bytes, complete_count;
    int relimit; /* reasm_set_limits was called: enforce at the next reasm_add */
    struct reasm_stats st;
};

#define MSG_OF(n, field)                                                                           \
    ((struct reasm_msg *)(void *)((char *)(n)-offsetof(struct reasm_msg, field)))

static void list_push(struct list *l, struct node *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static void list_unlink(struct list *l, struct node *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static void key_of(uint64_t peer, const uint8_t id[PART_ID_BYTES], uint8_t key[KEY_BYTES])
{
    memcpy(key, &peer, 8);
    memcpy(key + 8, id, PART_ID_BYTES);
}

/* a + b, saturated (deadlines of very large ages never wrap). */
static int64_t add_sat(int64_t a, int64_t b)
{
    return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int limits_ok(const struct reasm_limits *lim)
{
    return lim != NULL && lim->total_bytes > 0 && lim->peer_bytes > 0 && lim->max_message > 0 &&
           lim->max_message <= PART_MAX_MESSAGE && lim->max_messages > 0 &&
           lim->max_messages <= TABLE_MAX_CAPACITY && lim->done_max <= TABLE_MAX_CAPACITY &&
           lim->age_ms > 0 && lim->done_ms >= 0;
}

struct reasm *reasm_new(const struct reasm_limits *lim)
{
    if (!limits_ok(lim))
        return NULL;
    struct reasm *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->lim = *lim;
    r->msgs = table_new(lim->max_messages, KEY_BYTES, sizeof(struct reasm_msg));
    r->peers = table_new(lim->max_messages, sizeof(uint64_t), sizeof(struct peer));
    r->done = table_new(lim->done_max, KEY_BYTES, sizeof(struct done));
    if (r->msgs == NULL || r->peers == NULL || r->done == NULL) {
        reasm_free(r);
        return NULL;
    }
    return r;
}

void reasm_free(struct reasm *r)
{
    if (r == NULL)
        return;
    if (r->msgs != NULL) {
        size_t pos = 0;
        struct reasm_msg *m;
        while ((m = table_next(r->msgs, &pos)) != NULL)
            free(m->buf);
    }
    table_free(r->msgs);
    table_free(r->peers);
    table_free(r->done);
    free(r);
}

/*
 * The tables do not grow, so a reload cannot raise max_messages or done_max
 * past what reasm_new was given; limits that make no sense are ignored (this
 * cannot fail, and the old limits are safe).
 */
void reasm_set_limits(struct reasm *r, const struct reasm_limits *lim)
{
    if (!limits_ok(lim))
        return;
    r->lim = *lim;
    if (r->lim.max_messages > table_capacity(r->msgs))
        r->lim.max_messages = table_capacity(r->msgs);
    if (r->lim.done_max > table_capacity(r->done))
        r->lim.done_max = table_capacity(r->done);
    r->relimit = 1;
}

/* Takes m out of every list, its bytes off every count, and frees it; m is invalid after. */
static void release(struct reasm *r, struct reasm_msg *m)
{
    struct peer *p = m->p;
    if (m->complete) {
        r->complete_bytes -= m->bytes;
        r->complete_count--;
        p->complete_bytes -= m->bytes;
    } else {
        list_unlink(&r->lru, &m->lru);
        list_unlink(&p->lru, &m->by_peer);
        if (m->on_dirty)
            list_unlink(&r->dirty, &m->dirty);
    }
    r->bytes -= m->bytes;
    p->bytes -= m->bytes;
    if (--p->messages == 0)
        table_remove(r->peers, p);
    free(m->buf);
    table_remove(r->msgs, m);
}

static void evict(struct reasm *r, struct reasm_msg *m, uint64_t *counter)
{
    (*counter)++;
    release(r, m);
}

static void forget_done(struct reasm *r, struct done *d)
{
    list_unlink(&r->done_list, &d->link);
    table_remove(r->done, d);
}

/*
 * Brings what is held within limits lowered by reasm_set_limits: incomplete
 * messages now too long, then each peer's oldest while it is over its share
 * (one walk, oldest first), then anyone's oldest. Complete ones stay.
 */
static void enforce(struct reasm *r)
{
    struct node *n = r->lru.head;
    while (n != NULL) {
        struct reasm_msg *m = MSG_OF(n, lru);
        n = n->next; /* before m goes */
        if (m->h.length > r->lim.max_message || m->p->bytes > r->lim.peer_bytes)
            evict(r, m, &r->st.evicted_memory);
    }
    while (r->lru.head != NULL &&
           (r->bytes > r->lim.total_bytes || table_count(r->msgs) > r->lim.max_messages))
        evict(r, MSG_OF(r->lru.head, lru), &r->st.evicted_memory);
    while (table_count(r->done) > r->lim.done_max)
        forget_done(r, (struct done *)(void *)r->done_list.head);
    r->relimit = 0;
}

/* The data bytes the rules give part index of m (0 if index is past the last). */
static size_t part_bytes(uint32_t length, uint16_t part_size, uint32_t count, uint32_t index)
{
    if (index >= count)
        return 0;
    if (index + 1 < count)
        return part_size;
    return (size_t)(length - (uint64_t)(count - 1) * part_size);
}

static int has_part(const struct reasm_msg *m, uint32_t i)
{
    return (m->buf[m->h.length + i / 8] >> (i % 8)) & 1;
}

/*
 * Puts part h->index into m (checked by the caller: in range, data_len
 * right, not held yet), and moves m to the tails of its lists.
 */
static enum reasm_result take_part(struct reasm *r, struct reasm_msg *m,
                                   const struct part_header *h, const uint8_t *data,
                                   size_t data_len, int64_t now_ms)
{
    m->buf[m->h.length + h->index / 8] |= (uint8_t)(1u << (h->index % 8));
    memcpy(m->buf + (size_t)h->index * m->h.part_size, data, data_len);
    m->have++;
    m->last_ms = now_ms;
    list_unlink(&r->lru, &m->lru);
    list_unlink(&m->p->lru, &m->by_peer);
    if (m->have < m->count) {
        list_push(&r->lru, &m->lru);
        list_push(&m->p->lru, &m->by_peer);
        if (!m->on_dirty) {
            m->on_dirty = 1;
            list_push(&r->dirty, &m->dirty);
        }
        return REASM_NEW_PART;
    }
    if (m->on_dirty) { /* complete: it gets the message's ACK, not a part ACK */
        m->on_dirty = 0;
        list_unlink(&r->dirty, &m->dirty);
    }
    m->complete = 1;
    m->p->complete_bytes += m->bytes;
    r->complete_bytes += m->bytes;
    r->complete_count++;
    r->st.completed++;
    return REASM_COMPLETE;
}

/* A part of a message held already. */
static enum reasm_result add_to(struct reasm *r, struct reasm_msg *m, const struct part_header *h,
                                const uint8_t *data, size_t data_len, int64_t now_ms,
                                struct reasm_msg **out)
{
    if (h->sequence != m->h.sequence || h->length != m->h.length ||
        h->part_size != m->h.part_size ||
        data_len != part_bytes(m->h.length, m->h.part_size, m->count, h->index) || data_len == 0) {
        r->st.mismatched++;
        return REASM_MISMATCH;
    }
    if (m->complete)
        return REASM_DUPLICATE;
    if (has_part(m, h->index)) {
        /*
         * A duplicate still counts as a sign of life: only authenticated parts
         * reach us and the replay cache drops copies of one datagram, so it is
         * the sender retransmitting (its part ACK was lost). Letting the
         * message age out under a live sender would throw its parts away; a
         * key holder who wants memory held can have it with new parts anyway,
         * and the peer's share bounds it either way.
         */
        m->last_ms = now_ms;
        list_unlink(&r->lru, &m->lru);
        list_push(&r->lru, &m->lru);
        list_unlink(&m->p->lru, &m->by_peer);
        list_push(&m->p->lru, &m->by_peer);
        return REASM_DUPLICATE;
    }
    *out = m;
    return take_part(r, m, h, data, data_len, now_ms);
}

/*
 * Evicts until a new message of need bytes for peer fits: the peer's own
 * oldest while it is over its share, then anyone's oldest while the total
 * or the count is over. Checks first that evicting every incomplete message
 * would be enough, so that nothing is evicted for a message then refused.
 * 0 if it fits now, -1 if it cannot.
 */
static int make_room(struct reasm *r, uint64_t peer, size_t need)
{
    const struct reasm_limits *lim = &r->lim;
    struct peer *p = table_find(r->peers, &peer);
    size_t peer_complete = p != NULL ? p->complete_bytes : 0;
    if (peer_complete + need > lim->peer_bytes || r->complete_bytes + need > lim->total_bytes ||
        r->complete_count >= lim->max_messages)
        return -1;
    /* Each loop ends: what is over is incomplete bytes or messages, so a list is not empty. */
    while ((p = table_find(r->peers, &peer)) != NULL && p->bytes + need > lim->peer_bytes &&
           p->lru.head != NULL)
        evict(r, MSG_OF(p->lru.head, by_peer), &r->st.evicted_memory);
    while ((r->bytes + need > lim->total_bytes || table_count(r->msgs) >= lim->max_messages) &&
           r->lru.head != NULL)
        evict(r, MSG_OF(r->lru.head, lru), &r->st.evicted_memory);
    p = table_find(r->peers, &peer);
    return (p == NULL || p->bytes + need <= lim->peer_bytes) &&
                   r->bytes + need <= lim->total_bytes && table_count(r->msgs) < lim->max_messages
               ? 0
               : -1;
}

/* The first part of a message not held: room for all of it, then the part. */
static enum reasm_result add_new(struct reasm *r, uint64_t peer, const uint8_t key[KEY_BYTES],
                                 const struct part_header *h, const uint8_t *data, size_t data_len,
                                 int64_t now_ms, struct reasm_msg **out)
{
    if (h->length > r->lim.max_message) {
        r->st.too_large++;
        return REASM_TOO_LARGE;
    }
    uint32_t count = part_count(h->length, h->part_size);
    if (count == 0 || data_len == 0 ||
        data_len != part_bytes(h->length, h->part_size, count, h->index)) {
        r->st.mismatched++; /* part_parse lets none of these through */
        return REASM_MISMATCH;
    }
    /*
     * Only the message's own bytes count against the limits, so that a
     * message of max_message fits a peer's share of the smallest total
     * allowed (4 x max_message); its bitmap of parts, at most 1/2048 of it
     * (PART_MIN_SIZE bits a byte), is allocated beside them uncounted.
     */
    size_t bitmap = ((size_t)count + 7) / 8;
    size_t need = (size_t)h->length;
    uint8_t *buf = NULL;
    if (make_room(r, peer, need) != 0 || (buf = malloc(need + bitmap)) == NULL) {
        r->st.no_room++;
        return REASM_NO_ROOM;
    }
    struct reasm_msg *m = table_insert(r->msgs, key);
    struct peer *p = table_find(r->peers, &peer);
    if (p == NULL)
        p = table_insert(r->peers, &peer);
    if (m == NULL || p == NULL) { /* cannot happen: make_room left a free entry in both */
        if (m != NULL)
            table_remove(r->msgs, m);
        if (p != NULL && p->messages == 0)
            table_remove(r->peers, p);
        free(buf);
        r->st.no_room++;
        return REASM_NO_ROOM;
    }
    memset(buf + h->length, 0, bitmap);
    m->h = *h;
    m->peer = peer;
    m->p = p;
    m->buf = buf;
    m->bytes = need;
    m->count = count;
    p->messages++;
    p->bytes += need;
    r->bytes += need;
    list_push(&r->lru, &m->lru); /* take_part moves it to the tails, which it is at */
    list_push(&p->lru, &m->by_peer);
    *out = m;
    return take_part(r, m, h, data, data_len, now_ms);
}

enum reasm_result reasm_add(struct reasm *r, uint64_t peer, const struct part_header *h,
                            const uint8_t *data, size_t data_len, int64_t now_ms,
                            struct reasm_msg **out)
{
    if (r->relimit)
        enforce(r);
    uint8_t key[KEY_BYTES];
    key_of(peer, h->id, key);
    struct reasm_msg *held = table_find(r->msgs, key);
    struct reasm_msg *m = NULL;
    enum reasm_result res;
    if (held != NULL) {
        res = add_to(r, held, h, data, data_len, now_ms, &m);
    } else {
        struct done *d = table_find(r->done, key);
        if (d != NULL && now_ms < add_sat(d->at, r->lim.done_ms))
            return REASM_STORED_BEFORE; /* never allocates */
        if (d != NULL)
            forget_done(r, d); /* expired, not yet swept */
        res = add_new(r, peer, key, h, data, data_len, now_ms, &m);
    }
    if (res == REASM_NEW_PART || res == REASM_COMPLETE)
        *out = m;
    return res;
}

const uint8_t *reasm_bytes(const struct reasm_msg *m)
{
    return m->buf;
}

uint32_t reasm_length(const struct reasm_msg *m)
{
    return m->h.length;
}

const struct part_header *reasm_header(const struct reasm_msg *m)
{
    return &m->h;
}

uint64_t reasm_peer(const struct reasm_msg *m)
{
    return m->peer;
}

/* The first index at or after i whose bit is want (or count); whole bytes skipped at once. */
static uint32_t scan(const struct reasm_msg *m, uint32_t i, int want)
{
    const uint8_t *bm = m->buf + m->h.length;
    uint8_t skip = want ? 0x00 : 0xff; /* a byte of only the bit we do not want */
    while (i < m->count) {
        if (i % 8 == 0 && bm[i / 8] == skip)
            i += 8; /* a byte of 0xff lies wholly below count: bits past it are never set */
        else if (has_part(m, i) == want)
            return i;
        else
            i++;
    }
    return m->count;
}

int reasm_ranges(const struct reasm_msg *m, struct part_range *out, int max)
{
    int n = 0;
    uint32_t i = 0;
    while (n < max) {
        uint32_t first = scan(m, i, 1);
        if (first >= m->count)
            break;
        i = scan(m, first, 0);
        out[n].first = first;
        out[n].last = i - 1;
        n++;
    }
    return n;
}

int reasm_take_dirty(struct reasm *r, struct reasm_msg **out, int max)
{
    int n = 0;
    while (n < max && r->dirty.head != NULL) {
        struct reasm_msg *m = MSG_OF(r->dirty.head, dirty);
        list_unlink(&r->dirty, &m->dirty);
        m->on_dirty = 0;
        out[n++] = m;
    }
    return n;
}

void reasm_stored(struct reasm *r, struct reasm_msg *m, int64_t now_ms)
{
    uint8_t key[KEY_BYTES];
    key_of(m->peer, m->h.id, key);
    release(r, m);
    if (r->lim.done_max == 0 || r->lim.done_ms == 0)
        return;
    struct done *d = table_find(r->done, key);
    if (d != NULL) /* cannot happen (a remembered id never allocates); keep it right anyway */
        forget_done(r, d);
    while (table_count(r->done) >= r->lim.done_max) /* full: the oldest is forgotten */
        forget_done(r, (struct done *)(void *)r->done_list.head);
    d = table_insert(r->done, key);
    if (d == NULL)
        return;
    d->at = now_ms;
    list_push(&r->done_list, &d->link);
}

void reasm_drop(struct reasm *r, struct reasm_msg *m)
{
    release(r, m);
}

void reasm_expire(struct reasm *r, int64_t now_ms)
{
    while (r->lru.head != NULL) {
        struct reasm_msg *m = MSG_OF(r->lru.head, lru);
        if (now_ms < add_sat(m->last_ms, r->lim.age_ms))
            break;
        evict(r, m, &r->st.evicted_age);
    }
    while (r->done_list.head != NULL) {
        struct done *d = (struct done *)(void *)r->done_list.head;
        if (now_ms < add_sat(d->at, r->lim.done_ms))
            break;
        forget_done(r, d);
    }
}

int64_t reasm_next_expiry(const struct reasm *r)
{
    int64_t t = INT64_MAX;
    if (r->lru.head != NULL)
        t = add_sat(MSG_OF(r->lru.head, lru)->last_ms, r->lim.age_ms);
    if (r->done_list.head != NULL) {
        int64_t d =
            add_sat(((const struct done *)(const void *)r->done_list.head)->at, r->lim.done_ms);
        if (d < t)
            t = d;
    }
    return t;
}

void reasm_forget_peer(struct reasm *r, uint64_t peer)
{
    const struct peer *p = table_find(r->peers, &peer);
    size_t left = p != NULL ? p->messages : 0; /* p goes with its last message */
    size_t pos = 0;
    struct reasm_msg *m;
    while (left > 0 && (m = table_next(r->msgs, &pos)) != NULL) {
        if (m->peer == peer) {
            release(r, m); /* table_next allows removing the current entry */
            left--;
        }
    }
}

void reasm_get_stats(const struct reasm *r, struct reasm_stats *s)
{
    *s = r->st;
    s->bytes = r->bytes;
    s->messages = table_count(r->msgs);
}
