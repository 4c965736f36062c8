/*
 * reasm: messages sent in parts come out whole, byte for byte, in any order
 * of their parts; memory stays within every bound (the message's, the
 * peer's, everyone's, the count), and what is evicted to stay there is the
 * oldest incomplete message of the right peer; stored ids are answered
 * again; the dirty list never hands out a message that is gone.
 */
#include "daemon/reasm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#define PS 256   /* part size */
#define LEN 1024 /* a message of 4 parts */
#define NEED LEN /* what it counts: its bytes (its bitmap of parts is not counted) */
#define AGE 30000
#define DONE_MS 60000
#define PEER_A 0x0000000100000001ULL
#define PEER_B 0x0000000200000001ULL
#define PEER_C 0x0000000300000001ULL

static struct reasm_limits limits(void)
{
    struct reasm_limits l = {
        .total_bytes = 64 * NEED,
        .peer_bytes = 16 * NEED,
        .max_message = 1 << 20,
        .max_messages = 64,
        .age_ms = AGE,
        .done_max = 16,
        .done_ms = DONE_MS,
    };
    return l;
}

static struct reasm *make(const struct reasm_limits *l)
{
    struct reasm *r = reasm_new(l);
    assert_non_null(r);
    return r;
}

/* Byte k of message id n of peer: different for every message. */
static uint8_t byte_of(uint64_t peer, unsigned n, uint32_t k)
{
    return (uint8_t)(k * 31u + n * 7u + (unsigned)(peer >> 32) * 13u + (k >> 8));
}

static struct part_header hdr(unsigned n, uint32_t len, uint16_t ps, uint32_t index)
{
    struct part_header h;
    memset(&h, 0, sizeof h);
    h.sequence = 1000 + n;
    memset(h.id, 0xa5, sizeof h.id);
    memcpy(h.id, &n, sizeof n);
    h.length = len;
    h.part_size = ps;
    h.index = index;
    return h;
}

/* Hands reasm part index of h's message, its data as the rules give it. */
static enum reasm_result put_h(struct reasm *r, uint64_t peer, unsigned n,
                               const struct part_header *h, int64_t now, struct reasm_msg **out)
{
    static uint8_t data[65536];
    uint32_t count = part_count(h->length, h->part_size);
    size_t dlen =
        h->index + 1 < count ? h->part_size : h->length - (size_t)(count - 1) * h->part_size;
    for (size_t k = 0; k < dlen; k++)
        data[k] = byte_of(peer, n, (uint32_t)((size_t)h->index * h->part_size + k));
    return reasm_add(r, peer, h, data, dlen, now, out);
}

static enum reasm_result put(struct reasm *r, uint64_t peer, unsigned n, uint32_t index,
                             int64_t now, struct reasm_msg **out)
{
    struct part_header h = hdr(n, LEN, PS, index);
    return put_h(r, peer, n, &h, now, out);
}

/* m holds exactly message n of peer, len bytes. */
static void assert_whole(const struct reasm_msg *m, uint64_t peer, unsigned n, uint32_t len)
{
    assert_int_equal(reasm_length(m), len);
    assert_true(reasm_peer(m) == peer);
    const uint8_t *b = reasm_bytes(m);
    for (uint32_t k = 0; k < len; k++)
        if (b[k] != byte_of(peer, n, k))
            fail_msg("byte %u of message %u differs", k, n);
}

/* Starts message n of peer with its part 0 (incomplete). */
static struct reasm_msg *start(struct reasm *r, uint64_t peer, unsigned n, int64_t now)
{
    struct reasm_msg *m = NULL;
    assert_int_equal(put(r, peer, n, 0, now, &m), REASM_NEW_PART);
    assert_non_null(m);
    return m;
}

/* Completes message n of peer (parts 1..3 after start), returns it. */
static struct reasm_msg *finish(struct reasm *r, uint64_t peer, unsigned n, int64_t now)
{
    struct reasm_msg *m = NULL;
    assert_int_equal(put(r, peer, n, 1, now, &m), REASM_NEW_PART);
    assert_int_equal(put(r, peer, n, 2, now, &m), REASM_NEW_PART);
    assert_int_equal(put(r, peer, n, 3, now, &m), REASM_COMPLETE);
    return m;
}

static struct reasm_stats stats(const struct reasm *r)
{
    struct reasm_stats s;
    reasm_get_stats(r, &s);
    return s;
}

/* ---- tests ---- */

static void test_bad_limits(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    assert_null(reasm_new(NULL));
    l.max_messages = 0;
    assert_null(reasm_new(&l));
    l = limits();
    l.max_message = 0;
    assert_null(reasm_new(&l));
    l = limits();
    l.max_message = PART_MAX_MESSAGE + 1;
    assert_null(reasm_new(&l));
    l = limits();
    l.age_ms = 0;
    assert_null(reasm_new(&l));
    l = limits();
    l.total_bytes = 0;
    assert_null(reasm_new(&l));
    reasm_free(NULL);
    l = limits();
    struct reasm *r = make(&l);
    assert_true(reasm_next_expiry(r) == INT64_MAX);
    struct reasm_msg *out[4];
    assert_int_equal(reasm_take_dirty(r, out, 4), 0);
    reasm_free(r);
}

static void test_in_order(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    struct reasm_msg *m = start(r, PEER_A, 1, 0);
    struct reasm_msg *m2 = finish(r, PEER_A, 1, 10);
    assert_ptr_equal(m, m2);
    assert_whole(m, PEER_A, 1, LEN);
    const struct part_header *h = reasm_header(m);
    assert_int_equal(h->sequence, 1001);
    assert_int_equal(h->length, LEN);
    assert_int_equal(h->part_size, PS);
    struct part_header want = hdr(1, LEN, PS, 0);
    assert_memory_equal(h->id, want.id, PART_ID_BYTES);
    struct part_range rg[4];
    assert_int_equal(reasm_ranges(m, rg, 4), 1);
    assert_int_equal(rg[0].first, 0);
    assert_int_equal(rg[0].last, 3);
    assert_int_equal(stats(r).completed, 1);
    reasm_drop(r, m);
    assert_int_equal(stats(r).messages, 0);
    assert_int_equal(stats(r).bytes, 0);
    reasm_free(r);
}

static void test_out_of_order_and_ranges(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.total_bytes = l.peer_bytes = 2 << 20;
    struct reasm *r = make(&l);
    /* 1,000,000 bytes in parts of 1,000: 1,000 parts, the last one full. */
    const uint32_t len = 1000000;
    const uint16_t ps = 1000;
    struct reasm_msg *m = NULL;
    struct part_range rg[8];
    /* every odd part, then part 998 and 0 */
    for (uint32_t i = 1; i < 1000; i += 2) {
        struct part_header h = hdr(7, len, ps, i);
        assert_int_equal(put_h(r, PEER_A, 7, &h, 0, &m), REASM_NEW_PART);
    }
    assert_int_equal(reasm_ranges(m, rg, 8), 8); /* the lowest 8 of 500 */
    for (int k = 0; k < 8; k++) {
        assert_int_equal(rg[k].first, 2 * k + 1);
        assert_int_equal(rg[k].last, 2 * k + 1);
    }
    /* the evens, highest first: the message comes together from the top down */
    for (uint32_t i = 998;; i -= 2) {
        struct part_header h = hdr(7, len, ps, i);
        enum reasm_result res = put_h(r, PEER_A, 7, &h, 1, &m);
        if (i == 998) {
            assert_int_equal(res, REASM_NEW_PART);
            assert_int_equal(reasm_ranges(m, rg, 8), 8);
            assert_int_equal(rg[0].first, 1);
            assert_int_equal(rg[0].last, 1);
        }
        if (i == 0) {
            assert_int_equal(res, REASM_COMPLETE);
            break;
        }
        assert_int_equal(res, REASM_NEW_PART);
        if (i == 2) { /* only part 0 is missing */
            assert_int_equal(reasm_ranges(m, rg, 8), 1);
            assert_int_equal(rg[0].first, 1);
            assert_int_equal(rg[0].last, 999);
        }
    }
    assert_whole(m, PEER_A, 7, len);
    assert_int_equal(stats(r).bytes, len); /* its bitmap of 125 bytes is not counted */
    reasm_free(r);                         /* frees the complete message too (ASan: no leak) */
}

static void test_short_last_part_any_order(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    const uint32_t len = 3 * PS + 17; /* 4 parts, the last of 17 bytes */
    const uint32_t order[4] = {3, 1, 0, 2};
    struct reasm_msg *m = NULL;
    for (int k = 0; k < 4; k++) {
        struct part_header h = hdr(2, len, PS, order[k]);
        assert_int_equal(put_h(r, PEER_B, 2, &h, k, &m), k < 3 ? REASM_NEW_PART : REASM_COMPLETE);
    }
    assert_whole(m, PEER_B, 2, len);
    reasm_free(r);
}

static void test_one_part_completes_at_once(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    struct part_header h = hdr(3, 100, PS, 0);
    struct reasm_msg *m = NULL;
    assert_int_equal(put_h(r, PEER_A, 3, &h, 0, &m), REASM_COMPLETE);
    assert_whole(m, PEER_A, 3, 100);
    struct reasm_msg *out[2];
    assert_int_equal(reasm_take_dirty(r, out, 2), 0); /* complete: not listed */
    assert_true(reasm_next_expiry(r) == INT64_MAX);   /* complete: never ages out */
    reasm_expire(r, INT64_MAX / 2);
    assert_int_equal(stats(r).messages, 1);
    assert_int_equal(stats(r).completed, 1);
    assert_int_equal(stats(r).bytes, 100);
    reasm_free(r);
}

static void test_duplicates(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    struct reasm_msg *m = start(r, PEER_A, 1, 0);
    struct reasm_msg *o = (struct reasm_msg *)&o; /* a sentinel: untouched */
    assert_int_equal(put(r, PEER_A, 1, 0, 1, &o), REASM_DUPLICATE);
    assert_ptr_equal(o, (struct reasm_msg *)&o);
    assert_int_equal(put(r, PEER_A, 1, 2, 2, &o), REASM_NEW_PART);
    assert_int_equal(put(r, PEER_A, 1, 2, 3, &o), REASM_DUPLICATE);
    struct part_range rg[4];
    assert_int_equal(reasm_ranges(m, rg, 4), 2);
    assert_int_equal(rg[0].first, 0);
    assert_int_equal(rg[0].last, 0);
    assert_int_equal(rg[1].first, 2);
    assert_int_equal(rg[1].last, 2);
    assert_int_equal(put(r, PEER_A, 1, 1, 4, &o), REASM_NEW_PART);
    assert_int_equal(put(r, PEER_A, 1, 3, 5, &o), REASM_COMPLETE);
    assert_ptr_equal(o, m);
    assert_whole(m, PEER_A, 1, LEN); /* the duplicates changed nothing */
    assert_int_equal(stats(r).completed, 1);
    reasm_free(r);
}

static void test_duplicate_after_complete(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    struct reasm_msg *m = start(r, PEER_A, 1, 0);
    assert_ptr_equal(finish(r, PEER_A, 1, 1), m);
    struct reasm_msg *o = NULL;
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(put(r, PEER_A, 1, i, 2, &o), REASM_DUPLICATE);
    assert_null(o);
    assert_int_equal(stats(r).completed, 1);
    assert_whole(m, PEER_A, 1, LEN);
    reasm_free(r);
}

static void test_mismatch(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    struct reasm_msg *m = start(r, PEER_A, 1, 0);
    struct reasm_msg *o = NULL;
    struct part_header h = hdr(1, LEN, PS, 1);
    h.sequence++;
    assert_int_equal(put_h(r, PEER_A, 1, &h, 1, &o), REASM_MISMATCH);
    h = hdr(1, LEN + PS, PS, 1);
    assert_int_equal(put_h(r, PEER_A, 1, &h, 1, &o), REASM_MISMATCH);
    h = hdr(1, LEN, 2 * PS, 1);
    assert_int_equal(put_h(r, PEER_A, 1, &h, 1, &o), REASM_MISMATCH);
    /* defensive: data of the wrong length, an index past the last (part_parse lets neither in) */
    uint8_t data[2 * PS];
    memset(data, 0, sizeof data);
    h = hdr(1, LEN, PS, 1);
    assert_int_equal(reasm_add(r, PEER_A, &h, data, PS + 1, 1, &o), REASM_MISMATCH);
    assert_int_equal(reasm_add(r, PEER_A, &h, data, PS - 1, 1, &o), REASM_MISMATCH);
    h = hdr(1, LEN, PS, 4);
    assert_int_equal(reasm_add(r, PEER_A, &h, data, PS, 1, &o), REASM_MISMATCH);
    h = hdr(9, LEN, PS, 4); /* the same on a first part: nothing allocated */
    assert_int_equal(reasm_add(r, PEER_A, &h, data, PS, 1, &o), REASM_MISMATCH);
    h = hdr(9, 0, PS, 0);
    assert_int_equal(reasm_add(r, PEER_A, &h, data, 0, 1, &o), REASM_MISMATCH);
    h = hdr(9, LEN, 0, 0);
    assert_int_equal(reasm_add(r, PEER_A, &h, data, 0, 1, &o), REASM_MISMATCH);
    assert_null(o);
    assert_int_equal(stats(r).mismatched, 9);
    assert_int_equal(stats(r).messages, 1);
    assert_int_equal(stats(r).bytes, NEED);
    /* none of them was taken: the message still completes from its own parts */
    assert_ptr_equal(finish(r, PEER_A, 1, 2), m);
    assert_whole(m, PEER_A, 1, LEN);
    reasm_free(r);
}

static void test_too_large(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.max_message = 4000;
    struct reasm *r = make(&l);
    struct reasm_msg *o = NULL;
    struct part_header h = hdr(1, 4001, PS, 0);
    assert_int_equal(put_h(r, PEER_A, 1, &h, 0, &o), REASM_TOO_LARGE);
    h.index = 15;
    assert_int_equal(put_h(r, PEER_A, 1, &h, 0, &o), REASM_TOO_LARGE);
    assert_null(o);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.too_large, 2);
    assert_int_equal(s.messages, 0);
    assert_int_equal(s.bytes, 0);
    h = hdr(2, 4000, PS, 15); /* exactly the limit is taken */
    assert_int_equal(put_h(r, PEER_A, 2, &h, 0, &o), REASM_NEW_PART);
    reasm_free(r);
}

/*
 * At the smallest memory a user may set (4 x max_message, a quarter a peer),
 * a message of exactly max_message still fits its peer's share: only its
 * bytes count, not its bitmap of parts. Two peers' such messages at once.
 */
static void test_max_message_fits_smallest_memory(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.max_message = 16 * PS;
    l.total_bytes = 4 * (size_t)l.max_message;
    l.peer_bytes = l.total_bytes / 4;
    struct reasm *r = make(&l);
    struct reasm_msg *o = NULL;
    for (uint32_t i = 0; i < 16; i++)
        for (unsigned peer = 0; peer < 2; peer++) {
            struct part_header h = hdr(7, l.max_message, PS, i);
            enum reasm_result want = i < 15 ? REASM_NEW_PART : REASM_COMPLETE;
            assert_int_equal(put_h(r, peer ? PEER_B : PEER_A, 7, &h, i, &o), want);
        }
    assert_whole(o, PEER_B, 7, l.max_message);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.completed, 2);
    assert_int_equal(s.bytes, 2 * (size_t)l.max_message);
    assert_int_equal(s.evicted_memory + s.no_room, 0);
    reasm_free(r);
}

/* One peer flooding first parts evicts only its own oldest; another peer's message completes. */
static void test_peer_bound(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.peer_bytes = 3 * NEED;
    struct reasm *r = make(&l);
    start(r, PEER_B, 100, 0);
    start(r, PEER_A, 1, 1);
    start(r, PEER_A, 2, 2);
    start(r, PEER_A, 3, 3);
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_A, 1, 1, 4, &o), REASM_NEW_PART); /* 1 is now younger than 2 */
    for (unsigned n = 4; n < 40; n++)
        start(r, PEER_A, n, 4 + n);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.evicted_memory, 36);
    assert_int_equal(s.messages, 4); /* A's 3 youngest and B's */
    assert_int_equal(s.bytes, 4 * NEED);
    /* A's youngest are held (a part of them is no new message: it completes them) */
    for (unsigned n = 37; n < 40; n++) {
        assert_int_equal(put(r, PEER_A, n, 1, 100, &o), REASM_NEW_PART);
        assert_int_equal(put(r, PEER_A, n, 2, 100, &o), REASM_NEW_PART);
    }
    /* B, which started first and is the oldest of all, was never touched */
    struct reasm_msg *b = finish(r, PEER_B, 100, 101);
    assert_whole(b, PEER_B, 100, LEN);
    assert_int_equal(stats(r).evicted_memory, 36);
    reasm_free(r);
}

/* The message whose last part is least recent goes first, not the one started first. */
static void test_peer_bound_evicts_least_recent(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.peer_bytes = 2 * NEED;
    struct reasm *r = make(&l);
    start(r, PEER_A, 1, 0);
    start(r, PEER_A, 2, 1);
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_A, 1, 1, 2, &o), REASM_NEW_PART);
    start(r, PEER_A, 3, 3);                                        /* evicts 2 */
    assert_int_equal(put(r, PEER_A, 1, 2, 4, &o), REASM_NEW_PART); /* 1 still held */
    assert_int_equal(put(r, PEER_A, 2, 1, 5, &o), REASM_NEW_PART); /* 2 anew: evicts 3 */
    struct part_range rg[4];
    assert_int_equal(reasm_ranges(o, rg, 4), 1);
    assert_int_equal(rg[0].first, 1);
    assert_int_equal(rg[0].last, 1);
    assert_int_equal(stats(r).evicted_memory, 2);
    reasm_free(r);
}

static void test_global_bound(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.total_bytes = 3 * NEED;
    l.peer_bytes = 3 * NEED;
    struct reasm *r = make(&l);
    start(r, PEER_A, 1, 0);
    start(r, PEER_B, 2, 1);
    start(r, PEER_C, 3, 2);
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_A, 1, 1, 3, &o), REASM_NEW_PART); /* B's is now the oldest */
    start(r, PEER_C, 4, 4);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.evicted_memory, 1);
    assert_int_equal(s.bytes, 3 * NEED);
    assert_int_equal(put(r, PEER_B, 2, 1, 5, &o), REASM_NEW_PART); /* anew: evicts C's 3 */
    assert_int_equal(put(r, PEER_C, 3, 1, 6, &o), REASM_NEW_PART); /* anew: evicts A's 1 */
    assert_int_equal(stats(r).evicted_memory, 3);
    assert_int_equal(stats(r).bytes, 3 * NEED);
    reasm_free(r);
}

static void test_count_bound(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.max_messages = 3;
    struct reasm *r = make(&l);
    for (unsigned n = 1; n <= 10; n++)
        start(r, n % 2 ? PEER_A : PEER_B, n, n);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.messages, 3);
    assert_int_equal(s.evicted_memory, 7);
    struct reasm_msg *m = finish(r, PEER_A, 9, 20); /* one of the 3 youngest */
    assert_whole(m, PEER_A, 9, LEN);
    reasm_free(r);
}

/* Complete messages waiting to be stored are never evicted: new ones get no room. */
static void test_no_room_when_complete_fill(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.max_messages = 2;
    struct reasm *r = make(&l);
    start(r, PEER_A, 1, 0);
    struct reasm_msg *m1 = finish(r, PEER_A, 1, 0);
    struct reasm_msg *m2 = start(r, PEER_B, 2, 0);
    assert_ptr_equal(finish(r, PEER_B, 2, 0), m2);
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_C, 3, 0, 1, &o), REASM_NO_ROOM);
    assert_null(o);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.no_room, 1);
    assert_int_equal(s.evicted_memory, 0);
    assert_int_equal(s.messages, 2);
    assert_whole(m1, PEER_A, 1, LEN);
    assert_whole(m2, PEER_B, 2, LEN);
    reasm_stored(r, m1, 2);
    assert_int_equal(put(r, PEER_C, 3, 0, 3, &o), REASM_NEW_PART);
    reasm_free(r);
}

/* Bytes of complete messages count, and nothing is evicted for a message then refused. */
static void test_no_room_by_bytes(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.total_bytes = 3 * NEED;
    l.peer_bytes = 2 * NEED;
    struct reasm *r = make(&l);
    start(r, PEER_A, 1, 0);
    struct reasm_msg *a1 = finish(r, PEER_A, 1, 0);
    start(r, PEER_A, 2, 1);
    struct reasm_msg *a2 = finish(r, PEER_A, 2, 1);
    start(r, PEER_B, 3, 2); /* incomplete */
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_A, 4, 0, 3, &o), REASM_NO_ROOM); /* A's share is complete */
    assert_int_equal(stats(r).evicted_memory, 0); /* B's was not evicted for nothing */
    start(r, PEER_C, 5, 4);                       /* the total is full: evicts B's */
    assert_int_equal(stats(r).evicted_memory, 1);
    assert_int_equal(put(r, PEER_B, 3, 1, 5, &o), REASM_NEW_PART); /* anew: evicts C's */
    assert_int_equal(stats(r).evicted_memory, 2);
    assert_int_equal(stats(r).bytes, 3 * NEED);
    reasm_drop(r, a1);
    reasm_drop(r, a2);
    assert_int_equal(stats(r).bytes, NEED);
    assert_int_equal(stats(r).no_room, 1);
    reasm_free(r);
}

static void test_age_out(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    start(r, PEER_A, 1, 1000);
    start(r, PEER_B, 2, 2000);
    assert_int_equal(reasm_next_expiry(r), 1000 + AGE);
    reasm_expire(r, 1000 + AGE - 1);
    assert_int_equal(stats(r).messages, 2);
    reasm_expire(r, 1000 + AGE);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.messages, 1);
    assert_int_equal(s.evicted_age, 1);
    assert_int_equal(s.bytes, NEED);
    assert_int_equal(reasm_next_expiry(r), 2000 + AGE);
    /* a new part keeps a message alive */
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_B, 2, 1, 2000 + AGE - 1, &o), REASM_NEW_PART);
    assert_int_equal(reasm_next_expiry(r), 2000 + 2 * AGE - 1);
    reasm_expire(r, 2000 + AGE);
    assert_int_equal(stats(r).messages, 1);
    /* so does a duplicate: it is the sender sending again (see reasm.c) */
    assert_int_equal(put(r, PEER_B, 2, 1, 2000 + 2 * AGE - 2, &o), REASM_DUPLICATE);
    assert_int_equal(reasm_next_expiry(r), 2000 + 3 * AGE - 2);
    reasm_expire(r, 2000 + 3 * AGE - 2);
    assert_int_equal(stats(r).messages, 0);
    assert_int_equal(stats(r).evicted_age, 2);
    assert_true(reasm_next_expiry(r) == INT64_MAX);
    /* its part after that starts it again */
    assert_int_equal(put(r, PEER_B, 2, 3, 2000 + 3 * AGE, &o), REASM_NEW_PART);
    reasm_free(r);
}

static void test_stored_before(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    start(r, PEER_A, 1, 0);
    struct reasm_msg *m = finish(r, PEER_A, 1, 10);
    reasm_stored(r, m, 100);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.messages, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(reasm_next_expiry(r), 100 + DONE_MS);
    struct reasm_msg *o = NULL;
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(put(r, PEER_A, 1, i, 200, &o), REASM_STORED_BEFORE);
    assert_null(o);
    assert_int_equal(stats(r).messages, 0); /* nothing allocated */
    assert_int_equal(stats(r).bytes, 0);
    /* the same id from another peer is another message */
    assert_int_equal(put(r, PEER_B, 1, 0, 200, &o), REASM_NEW_PART);
    reasm_drop(r, o);
    reasm_expire(r, 100 + DONE_MS - 1);
    assert_int_equal(put(r, PEER_A, 1, 0, 100 + DONE_MS - 1, &o), REASM_STORED_BEFORE);
    reasm_expire(r, 100 + DONE_MS);
    assert_true(reasm_next_expiry(r) == INT64_MAX);
    assert_int_equal(put(r, PEER_A, 1, 0, 100 + DONE_MS, &o), REASM_NEW_PART);
    reasm_free(r);
}

/* An expired id not yet swept by reasm_expire is not answered either. */
static void test_stored_before_expired_unswept(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    struct part_header h = hdr(1, 10, PS, 0);
    struct reasm_msg *m = NULL;
    assert_int_equal(put_h(r, PEER_A, 1, &h, 0, &m), REASM_COMPLETE);
    reasm_stored(r, m, 0);
    assert_int_equal(put_h(r, PEER_A, 1, &h, DONE_MS, &m), REASM_COMPLETE);
    reasm_stored(r, m, DONE_MS);
    assert_int_equal(put_h(r, PEER_A, 1, &h, DONE_MS + 1, &m), REASM_STORED_BEFORE);
    assert_int_equal(reasm_next_expiry(r), 2 * DONE_MS);
    reasm_free(r);
}

static void test_done_full_forgets_oldest(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.done_max = 2;
    struct reasm *r = make(&l);
    for (unsigned n = 1; n <= 3; n++) {
        start(r, PEER_A, n, n);
        reasm_stored(r, finish(r, PEER_A, n, n), n);
    }
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_A, 3, 0, 10, &o), REASM_STORED_BEFORE);
    assert_int_equal(put(r, PEER_A, 2, 0, 10, &o), REASM_STORED_BEFORE);
    assert_int_equal(put(r, PEER_A, 1, 0, 10, &o), REASM_NEW_PART); /* forgotten */
    assert_int_equal(reasm_next_expiry(r), 10 + AGE);               /* 1's part; 2 is stored at 2 */
    reasm_drop(r, o);
    assert_int_equal(reasm_next_expiry(r), 2 + DONE_MS);
    reasm_free(r);
}

static void test_take_dirty(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.max_messages = 4;
    struct reasm *r = make(&l);
    struct reasm_msg *a = start(r, PEER_A, 1, 0);
    struct reasm_msg *b = start(r, PEER_B, 2, 1);
    struct reasm_msg *c = start(r, PEER_C, 3, 2);
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_A, 1, 1, 3, &o), REASM_NEW_PART); /* a is listed once */
    struct reasm_msg *out[4];
    assert_int_equal(reasm_take_dirty(r, out, 2), 2);
    assert_ptr_equal(out[0], a);
    assert_ptr_equal(out[1], b);
    assert_int_equal(reasm_take_dirty(r, out, 4), 1); /* the rest */
    assert_ptr_equal(out[0], c);
    assert_int_equal(reasm_take_dirty(r, out, 4), 0); /* each once */
    /* a duplicate is no new part */
    assert_int_equal(put(r, PEER_B, 2, 0, 4, &o), REASM_DUPLICATE);
    assert_int_equal(reasm_take_dirty(r, out, 4), 0);
    /* b takes a part and is dropped, c takes a part and completes, a takes one */
    assert_int_equal(put(r, PEER_B, 2, 1, 5, &o), REASM_NEW_PART);
    reasm_drop(r, b);
    assert_int_equal(put(r, PEER_C, 3, 1, 5, &o), REASM_NEW_PART);
    assert_int_equal(put(r, PEER_C, 3, 2, 5, &o), REASM_NEW_PART);
    assert_int_equal(put(r, PEER_C, 3, 3, 5, &o), REASM_COMPLETE);
    assert_int_equal(put(r, PEER_A, 1, 2, 6, &o), REASM_NEW_PART);
    assert_int_equal(reasm_take_dirty(r, out, 4), 1);
    assert_ptr_equal(out[0], a);
    /* a takes a part, then is evicted by the count bound: never handed out */
    assert_int_equal(put(r, PEER_A, 1, 3, 7, &o), REASM_COMPLETE); /* now a is complete */
    struct reasm_msg *d = start(r, PEER_A, 4, 8);
    struct reasm_msg *e = start(r, PEER_B, 5, 9);
    assert_int_equal(stats(r).messages, 4);        /* a, c complete; d, e */
    struct reasm_msg *f = start(r, PEER_C, 6, 10); /* evicts d, which is dirty */
    assert_int_equal(stats(r).evicted_memory, 1);
    assert_int_equal(reasm_take_dirty(r, out, 4), 2);
    assert_ptr_equal(out[0], e);
    assert_ptr_equal(out[1], f);
    (void)d;
    /* and one aged out while dirty */
    assert_int_equal(put(r, PEER_B, 5, 1, 11, &o), REASM_NEW_PART);
    reasm_expire(r, 11 + AGE);
    assert_int_equal(reasm_take_dirty(r, out, 4), 0);
    reasm_free(r);
}

static void test_forget_peer(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    start(r, PEER_A, 1, 0);
    finish(r, PEER_A, 1, 0); /* complete, not stored */
    start(r, PEER_A, 2, 1);
    start(r, PEER_A, 3, 1);
    start(r, PEER_B, 4, 2);
    reasm_forget_peer(r, PEER_C); /* none: nothing happens */
    assert_int_equal(stats(r).messages, 4);
    reasm_forget_peer(r, PEER_A);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.messages, 1);
    assert_int_equal(s.bytes, NEED);
    assert_int_equal(s.evicted_memory + s.evicted_age, 0);
    struct reasm_msg *out[4];
    assert_int_equal(reasm_take_dirty(r, out, 4), 1);
    assert_true(reasm_peer(out[0]) == PEER_B);
    assert_int_equal(reasm_next_expiry(r), 2 + AGE);
    struct reasm_msg *b = finish(r, PEER_B, 4, 3);
    assert_whole(b, PEER_B, 4, LEN);
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_A, 1, 0, 4, &o), REASM_NEW_PART); /* starts anew */
    reasm_free(r);
}

static void test_stats_and_bytes(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    struct reasm_msg *o = NULL;
    struct part_header h = hdr(1, 3000, PS, 0); /* 12 parts (a bitmap of 2 bytes, uncounted) */
    assert_int_equal(put_h(r, PEER_A, 1, &h, 0, &o), REASM_NEW_PART);
    h = hdr(2, 1, PS, 0);
    assert_int_equal(put_h(r, PEER_B, 2, &h, 0, &o), REASM_COMPLETE);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.bytes, 3000 + 1);
    assert_int_equal(s.messages, 2);
    assert_int_equal(s.completed, 1);
    assert_int_equal(s.evicted_age + s.evicted_memory + s.too_large + s.mismatched + s.no_room, 0);
    reasm_stored(r, o, 0);
    assert_int_equal(stats(r).bytes, 3000);
    reasm_expire(r, AGE);
    s = stats(r);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(s.messages, 0);
    assert_int_equal(s.evicted_age, 1);
    reasm_free(r);
}

static void test_set_limits(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    struct reasm *r = make(&l);
    for (unsigned n = 1; n <= 6; n++)
        start(r, n <= 4 ? PEER_A : PEER_B, n, n);
    struct reasm_msg *m = start(r, PEER_B, 7, 7);
    assert_ptr_equal(finish(r, PEER_B, 7, 7), m); /* complete: stays whatever the limits */
    l.peer_bytes = 2 * NEED;
    l.max_messages = 1000; /* above the tables' capacity: capped */
    reasm_set_limits(r, &l);
    assert_int_equal(stats(r).messages, 7); /* lazily: at the next add */
    struct reasm_msg *o = NULL;
    assert_int_equal(put(r, PEER_A, 4, 1, 8, &o), REASM_NEW_PART);
    struct reasm_stats s = stats(r);
    /* A: 1, 2 evicted (3, 4 stay); B: 5 evicted (6 and the complete 7 make 2) */
    assert_int_equal(s.evicted_memory, 3);
    assert_int_equal(s.messages, 4);
    assert_int_equal(put(r, PEER_A, 3, 1, 9, &o), REASM_NEW_PART);
    assert_int_equal(put(r, PEER_B, 6, 1, 9, &o), REASM_NEW_PART);
    assert_whole(m, PEER_B, 7, LEN);
    /* limits that make no sense are ignored */
    struct reasm_limits bad = l;
    bad.total_bytes = 0;
    reasm_set_limits(r, &bad);
    assert_int_equal(put(r, PEER_C, 8, 0, 10, &o), REASM_NEW_PART);
    assert_int_equal(stats(r).evicted_memory, 3);
    /* a lower max_message evicts incomplete messages over it */
    l.max_message = LEN - 1;
    reasm_set_limits(r, &l);
    assert_int_equal(put(r, PEER_C, 9, 0, 11, &o), REASM_TOO_LARGE);
    s = stats(r);
    assert_int_equal(s.evicted_memory, 3 + 4); /* 3, 4, 6, 8 */
    assert_int_equal(s.messages, 1);           /* 7, complete */
    reasm_free(r);
}

/*
 * Random parts of random messages of 3 peers under tight bounds: every
 * complete message is exactly its bytes, no bound is ever passed, the dirty
 * list hands out only messages held (ASan sees a freed one), and stats.bytes
 * comes back to 0.
 */
static void test_random(void **state)
{
    (void)state;
    struct reasm_limits l = limits();
    l.total_bytes = 20000;
    l.peer_bytes = 9000;
    l.max_messages = 12;
    l.done_max = 8;
    l.age_ms = 500;
    l.done_ms = 700;
    struct reasm *r = make(&l);
    srand(12345);
    const uint64_t peers[3] = {PEER_A, PEER_B, PEER_C};
    int64_t now = 0;
    for (int step = 0; step < 200000; step++) {
        int jump = step % 10000 == 0; /* now and then, a pause: everyone ages out */
        now += rand() % 3 + (jump ? 1000 : 0);
        if (jump)
            reasm_expire(r, now);
        uint64_t peer = peers[rand() % 3];
        unsigned n = (unsigned)(rand() % 24);
        uint32_t len = 1 + (n * 977u) % 5000;
        struct part_header h = hdr(n, len, PS, 0);
        h.index = (uint32_t)rand() % part_count(len, PS);
        struct reasm_msg *m = NULL;
        enum reasm_result res = put_h(r, peer, n, &h, now, &m);
        if (res == REASM_COMPLETE) {
            assert_whole(m, peer, n, len);
            if (rand() % 4 == 0)
                reasm_drop(r, m);
            else
                reasm_stored(r, m, now);
        }
        if (res == REASM_NEW_PART) {
            struct part_range rg[PART_ACK_RANGES_MAX];
            int k = reasm_ranges(m, rg, PART_ACK_RANGES_MAX);
            assert_true(k >= 1);
            for (int i = 0; i < k; i++) {
                assert_true(rg[i].first <= rg[i].last);
                assert_true(rg[i].last < part_count(len, PS));
                assert_true(i == 0 || rg[i].first > rg[i - 1].last + 1);
            }
        }
        if (step % 7 == 0) {
            struct reasm_msg *out[3];
            int k = reasm_take_dirty(r, out, 3);
            for (int i = 0; i < k; i++) {
                struct part_range rg[1];
                assert_int_equal(reasm_ranges(out[i], rg, 1), 1); /* reads its bitmap */
            }
        }
        if (step % 101 == 0)
            reasm_expire(r, now);
        if (step % 5003 == 0)
            reasm_forget_peer(r, peers[rand() % 3]);
        struct reasm_stats s = stats(r);
        assert_true(s.bytes <= l.total_bytes);
        assert_true(s.messages <= l.max_messages);
    }
    reasm_forget_peer(r, PEER_A);
    reasm_forget_peer(r, PEER_B);
    reasm_forget_peer(r, PEER_C);
    struct reasm_stats s = stats(r);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(s.messages, 0);
    assert_true(s.completed > 0 && s.evicted_memory > 0 && s.evicted_age > 0);
    reasm_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_limits),
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_out_of_order_and_ranges),
        cmocka_unit_test(test_short_last_part_any_order),
        cmocka_unit_test(test_one_part_completes_at_once),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_duplicate_after_complete),
        cmocka_unit_test(test_mismatch),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_max_message_fits_smallest_memory),
        cmocka_unit_test(test_peer_bound),
        cmocka_unit_test(test_peer_bound_evicts_least_recent),
        cmocka_unit_test(test_global_bound),
        cmocka_unit_test(test_count_bound),
        cmocka_unit_test(test_no_room_when_complete_fill),
        cmocka_unit_test(test_no_room_by_bytes),
        cmocka_unit_test(test_age_out),
        cmocka_unit_test(test_stored_before),
        cmocka_unit_test(test_stored_before_expired_unswept),
        cmocka_unit_test(test_done_full_forgets_oldest),
        cmocka_unit_test(test_take_dirty),
        cmocka_unit_test(test_forget_peer),
        cmocka_unit_test(test_stats_and_bytes),
        cmocka_unit_test(test_set_limits),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
