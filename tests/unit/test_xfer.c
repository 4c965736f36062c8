/*
 * Unit tests for xfer.[ch]: one message sent in parts. The parts, the order
 * of sending, part ACKs (hostile ranges included), Karn's rule, loss by
 * threshold and by timer, the deadline, and a naive reference model that
 * thousands of random operations are checked against; then a 1 MiB
 * message sent over a lossy simulated path to completion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/xfer.h"

#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static const uint8_t the_id[PART_ID_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static uint64_t rng_state = 88172645463325252u;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static uint8_t *pattern(size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 131 + (i >> 8) * 7 + 1);
    return b;
}

/* An xfer of count parts of 256 bytes (the last one full too). */
static struct xfer *make(uint32_t count)
{
    uint8_t *b = pattern((size_t)count * 256);
    struct xfer *x = xfer_new(b, count * 256, 256, 7, the_id);
    free(b);
    assert_non_null(x);
    assert_int_equal(xfer_count(x), count);
    return x;
}

static void send_all(struct xfer *x, int64_t now)
{
    for (int64_t i; (i = xfer_next(x)) >= 0;)
        xfer_sent(x, (uint32_t)i, now);
}

static uint32_t ack1(struct xfer *x, uint32_t first, uint32_t last, int64_t now, int64_t *rtt,
                     uint32_t *lost)
{
    struct part_range r = {first, last};
    return xfer_on_ack(x, &r, 1, now, rtt, lost);
}

/* ---- the parts ---- */

/* The parts' data, put together, is the message byte for byte; headers carry its fields. */
static void check_reproduces(uint32_t length, uint16_t part_size)
{
    uint8_t *msg = pattern(length);
    struct xfer *x = xfer_new(msg, length, part_size, 42, the_id);
    assert_non_null(x);
    uint32_t count = (uint32_t)(((uint64_t)length + part_size - 1) / part_size);
    assert_int_equal(xfer_count(x), count);
    assert_int_equal(xfer_length(x), length);
    uint8_t *out = malloc(length);
    assert_non_null(out);
    size_t pos = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct part_header h;
        const uint8_t *data;
        size_t len;
        assert_int_equal(xfer_part(x, i, &h, &data, &len), 0);
        assert_int_equal(h.sequence, 42);
        assert_memory_equal(h.id, the_id, PART_ID_BYTES);
        assert_int_equal(h.length, length);
        assert_int_equal(h.part_size, part_size);
        assert_int_equal(h.index, i);
        if (i + 1 < count)
            assert_int_equal(len, part_size);
        else
            assert_int_equal(len, length - (size_t)(count - 1) * part_size);
        assert_true(len > 0 && pos + len <= length);
        memcpy(out + pos, data, len);
        pos += len;
    }
    assert_int_equal(pos, length);
    assert_memory_equal(out, msg, length);
    struct part_header h;
    const uint8_t *data = NULL;
    size_t len = 99;
    assert_int_equal(xfer_part(x, count, &h, &data, &len), -1);
    assert_int_equal(xfer_part(x, UINT32_MAX, &h, &data, &len), -1);
    assert_null(data);
    assert_int_equal(len, 99);
    free(out);
    free(msg);
    xfer_free(x);
}

static void test_parts_reproduce(void **state)
{
    (void)state;
    check_reproduces(1, 1140);
    check_reproduces(1140, 1140);
    check_reproduces(1141, 1140);
    check_reproduces(100, 1000);
    check_reproduces(100, 100);
    check_reproduces(256 * 3, 256);
    check_reproduces(5000, 300);
    check_reproduces(1u << 20, 1140);
}

/* A 1 MiB message in parts of 1140 bytes: 920 parts, the last of 916. */
static void test_one_mib_layout(void **state)
{
    (void)state;
    uint8_t *msg = pattern(1u << 20);
    struct xfer *x = xfer_new(msg, 1u << 20, 1140, 1, the_id);
    assert_non_null(x);
    assert_int_equal(xfer_count(x), 920);
    struct part_header h;
    const uint8_t *data;
    size_t len;
    assert_int_equal(xfer_part(x, 919, &h, &data, &len), 0);
    assert_int_equal(len, 916);
    assert_memory_equal(data, msg + 919 * 1140, 916);
    free(msg);
    xfer_free(x);
}

/* Bad arguments are refused; the edges of the good ones are taken. */
static void test_bad_args(void **state)
{
    (void)state;
    uint8_t *msg = pattern(PART_MAX_MESSAGE + 1);
    assert_null(xfer_new(msg, 100, 0, 1, the_id));  /* part size 0 */
    assert_null(xfer_new(msg, 0, 1140, 1, the_id)); /* empty */
    assert_null(xfer_new(msg, PART_MAX_MESSAGE + 1, 1140, 1, the_id));
    assert_null(xfer_new(msg, 256, 255, 1, the_id)); /* 2 parts under the floor */
    assert_null(xfer_new(msg, 600, 100, 1, the_id));
    assert_null(xfer_new(msg, PART_MAX_MESSAGE, 255, 1, the_id)); /* 65794 parts */
    assert_null(xfer_new(NULL, 100, 1140, 1, the_id));
    assert_null(xfer_new(msg, 100, 1140, 1, NULL));
    struct xfer *x = xfer_new(msg, 255, 255, 1, the_id); /* one part: any size */
    assert_non_null(x);
    assert_int_equal(xfer_count(x), 1);
    xfer_free(x);
    x = xfer_new(msg, 1, 1, 0, the_id);
    assert_non_null(x);
    xfer_free(x);
    x = xfer_new(msg, PART_MAX_MESSAGE, PART_MIN_SIZE, 1, the_id); /* the most parts */
    assert_non_null(x);
    assert_int_equal(xfer_count(x), XFER_MAX_PARTS);
    send_all(x, 5);
    assert_int_equal(xfer_in_flight(x), XFER_MAX_PARTS);
    int64_t rtt;
    uint32_t lost;
    assert_int_equal(ack1(x, 0, UINT32_MAX, 6, &rtt, &lost), XFER_MAX_PARTS);
    assert_true(xfer_complete(x));
    xfer_free(x);
    xfer_free(NULL);
    free(msg);
}

/* ---- sending order ---- */

/* New parts go in index order; lost ones go first, lowest first. */
static void test_next_order(void **state)
{
    (void)state;
    struct xfer *x = make(20);
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(xfer_next(x), i);
        xfer_sent(x, i, 100);
    }
    assert_int_equal(xfer_next(x), 10);
    int64_t rtt;
    uint32_t lost;
    assert_int_equal(ack1(x, 5, 9, 150, &rtt, &lost), 5);
    assert_int_equal(lost, 5); /* 0..4: see test_threshold */
    assert_int_equal(xfer_next(x), 0);
    xfer_sent(x, 0, 160);
    assert_int_equal(xfer_next(x), 1);
    xfer_sent(x, 2, 160); /* out of order: still lowest lost first */
    assert_int_equal(xfer_next(x), 1);
    xfer_sent(x, 1, 160);
    assert_int_equal(xfer_next(x), 3);
    xfer_sent(x, 3, 160);
    xfer_sent(x, 4, 160);
    assert_int_equal(xfer_next(x), 10);
    send_all(x, 170);
    assert_int_equal(xfer_next(x), -1);
    assert_int_equal(xfer_in_flight(x), 15);
    assert_int_equal(xfer_sendings(x), 25);
    assert_int_equal(xfer_retransmissions(x), 5);
    xfer_free(x);
}

/* Parts the receiver holds before they are sent (an earlier run's) are never sent. */
static void test_acked_before_sent(void **state)
{
    (void)state;
    struct xfer *x = make(10);
    int64_t rtt;
    uint32_t lost;
    struct part_range r[2] = {{0, 3}, {5, 6}};
    assert_int_equal(xfer_on_ack(x, r, 2, 10, &rtt, &lost), 6);
    assert_int_equal(rtt, -1);
    assert_int_equal(lost, 0);
    assert_int_equal(xfer_next(x), 4);
    xfer_sent(x, 4, 20);
    assert_int_equal(xfer_next(x), 7);
    send_all(x, 20);
    assert_int_equal(xfer_sendings(x), 4);
    assert_int_equal(xfer_in_flight(x), 4);
    assert_int_equal(xfer_acked(x), 6);
    xfer_free(x);
}

/* ---- part ACKs ---- */

/* Ranges mark their parts; ranges or parts of ranges past the count are ignored. */
static void test_ack_ranges(void **state)
{
    (void)state;
    struct xfer *x = make(10);
    send_all(x, 0);
    int64_t rtt;
    uint32_t lost;
    struct part_range bad[] = {
        {10, 10}, {11, 20}, {UINT32_MAX, UINT32_MAX}, {7, 3}, {1000, 5},
    };
    assert_int_equal(xfer_on_ack(x, bad, 5, 1, &rtt, &lost), 0);
    assert_int_equal(rtt, -1);
    assert_int_equal(lost, 0);
    assert_int_equal(xfer_on_ack(x, NULL, 3, 1, &rtt, &lost), 0);
    assert_int_equal(xfer_on_ack(x, bad, -1, 1, &rtt, &lost), 0);
    assert_int_equal(xfer_in_flight(x), 10);

    struct part_range some[] = {{8, UINT32_MAX}, {0, 1}, {0, 1}, {1, 2}};
    assert_int_equal(xfer_on_ack(x, some, 4, 2, &rtt, &lost), 5); /* 8, 9, 0, 1, 2 */
    assert_int_equal(xfer_acked(x), 5);
    assert_int_equal(xfer_on_ack(x, some, 4, 3, &rtt, &lost), 0); /* again: nothing new */
    assert_int_equal(rtt, -1);
    assert_false(xfer_complete(x));
    struct part_range all = {0, UINT32_MAX};
    assert_int_equal(xfer_on_ack(x, &all, 1, 4, &rtt, &lost), 5);
    assert_true(xfer_complete(x));
    assert_int_equal(xfer_in_flight(x), 0);
    assert_int_equal(xfer_lost(x), 0);
    assert_int_equal(xfer_next(x), -1);
    assert_int_equal(xfer_deadline(x, 100), INT64_MAX);
    xfer_free(x);
}

/* Karn: a part sent more than once gives no sample; the latest sent of the rest does. */
static void test_karn(void **state)
{
    (void)state;
    struct xfer *x = make(4);
    xfer_sent(x, 0, 0);
    xfer_sent(x, 1, 10);
    xfer_sent(x, 2, 20);
    xfer_sent(x, 3, 30);
    int64_t rtt;
    uint32_t lost;
    assert_int_equal(ack1(x, 0, 1, 45, &rtt, &lost), 2);
    assert_int_equal(rtt, 35);                        /* part 1, sent at 10 */
    assert_int_equal(xfer_timeout(x, 1020, 1000), 1); /* part 2 */
    xfer_sent(x, 2, 1020);
    assert_int_equal(ack1(x, 2, 2, 1030, &rtt, &lost), 1);
    assert_int_equal(rtt, -1); /* sent twice: which sending was answered? */
    assert_int_equal(ack1(x, 3, 3, 1040, &rtt, &lost), 1);
    assert_int_equal(rtt, 1010);
    assert_true(xfer_complete(x));
    assert_int_equal(xfer_retransmissions(x), 1);

    /* A clock that went back gives 0, never a negative sample. */
    struct xfer *y = make(1);
    xfer_sent(y, 0, 500);
    assert_int_equal(ack1(y, 0, 0, 400, &rtt, &lost), 1);
    assert_int_equal(rtt, 0);
    xfer_free(y);
    xfer_free(x);
}

/*
 * The loss threshold. Parts 0..9 sent once, in order (sendings 0..9): an
 * ACK of 5..9 acknowledges sending 9, so every part in flight sent 3 or
 * more sendings before it, 0..6, is lost: 0..4, all five.
 */
static void test_threshold(void **state)
{
    (void)state;
    struct xfer *x = make(10);
    send_all(x, 0);
    int64_t rtt;
    uint32_t lost;
    assert_int_equal(ack1(x, 5, 9, 10, &rtt, &lost), 5);
    assert_int_equal(lost, 5);
    assert_int_equal(xfer_lost(x), 5);
    assert_int_equal(xfer_in_flight(x), 0);
    assert_int_equal(rtt, 10);
    xfer_free(x);

    /* The edge: 2 sendings below the latest acknowledged is not lost, 3 is. */
    x = make(10);
    send_all(x, 0);
    struct part_range r[2] = {{0, 4}, {6, 7}};
    assert_int_equal(xfer_on_ack(x, r, 2, 10, &rtt, &lost), 7);
    assert_int_equal(lost, 0); /* part 5: sending 5, latest acknowledged 7 */
    assert_int_equal(ack1(x, 8, 8, 11, &rtt, &lost), 1);
    assert_int_equal(lost, 1); /* part 5 now, not part 9 (sent after 8) */
    assert_int_equal(xfer_next(x), 5);
    assert_int_equal(ack1(x, 9, 9, 12, &rtt, &lost), 1);
    assert_int_equal(lost, 0);
    assert_int_equal(xfer_in_flight(x), 0);
    /* A lost part acknowledged after all (it was late, not lost) is no longer to be sent. */
    assert_int_equal(ack1(x, 5, 5, 13, &rtt, &lost), 1);
    assert_int_equal(rtt, 13); /* sent once, so the sample is sound, if long */
    xfer_free(x);
}

/*
 * Why the threshold counts sendings, not indexes: parts sent again go out
 * after higher indexes, in one millisecond. 0..4 lost and sent again at 5;
 * an ACK of 0..3 and 5..9 must not condemn part 4, sent after all of them.
 */
static void test_threshold_retransmitted(void **state)
{
    (void)state;
    struct xfer *x = make(10);
    send_all(x, 0);
    int64_t rtt;
    uint32_t lost;
    assert_int_equal(ack1(x, 5, 9, 4, &rtt, &lost), 5);
    assert_int_equal(lost, 5);
    send_all(x, 5); /* 0..4 again: sendings 10..14 */
    assert_int_equal(xfer_in_flight(x), 5);
    struct part_range r[2] = {{0, 3}, {5, 9}};
    assert_int_equal(xfer_on_ack(x, r, 2, 5, &rtt, &lost), 4);
    assert_int_equal(lost, 0); /* part 4 is sending 14, the latest acknowledged 13 */
    assert_int_equal(rtt, -1); /* all four were sent twice */
    assert_int_equal(xfer_in_flight(x), 1);
    assert_int_equal(xfer_deadline(x, 100), 105);
    assert_int_equal(xfer_timeout(x, 104, 100), 0);
    assert_int_equal(xfer_timeout(x, 105, 100), 1);
    assert_int_equal(xfer_next(x), 4);
    xfer_free(x);
}

/* ---- the timer ---- */

static void test_timeout_and_deadline(void **state)
{
    (void)state;
    struct xfer *x = make(5);
    assert_int_equal(xfer_deadline(x, 1000), INT64_MAX);
    assert_int_equal(xfer_timeout(x, INT64_MAX, 0), 0);
    xfer_sent(x, 0, 100);
    xfer_sent(x, 1, 200);
    xfer_sent(x, 2, 300);
    assert_int_equal(xfer_deadline(x, 1000), 1100);
    assert_int_equal(xfer_timeout(x, 1099, 1000), 0);
    assert_int_equal(xfer_timeout(x, 1100, 1000), 1);
    assert_int_equal(xfer_lost(x), 1);
    assert_int_equal(xfer_in_flight(x), 2);
    assert_int_equal(xfer_deadline(x, 1000), 1200);
    int64_t rtt;
    uint32_t lost;
    assert_int_equal(ack1(x, 1, 1, 1150, &rtt, &lost), 1);
    assert_int_equal(lost, 0); /* part 2 was sent after part 1 */
    assert_int_equal(xfer_deadline(x, 1000), 1300);
    xfer_sent(x, 0, 1160);
    assert_int_equal(xfer_deadline(x, 1000), 1300);
    assert_int_equal(xfer_timeout(x, 2159, 1000), 1); /* part 2 */
    assert_int_equal(xfer_deadline(x, 1000), 2160);
    assert_int_equal(xfer_timeout(x, 5000, 1000), 1); /* part 0 */
    assert_int_equal(xfer_deadline(x, 1000), INT64_MAX);
    assert_int_equal(xfer_in_flight(x), 0);
    assert_int_equal(xfer_lost(x), 2);
    assert_int_equal(xfer_timeout(x, INT64_MAX, 0), 0); /* lost parts are not lost twice */
    /* Saturation: no overflow at the end of time. */
    xfer_sent(x, 0, INT64_MAX - 5);
    assert_int_equal(xfer_deadline(x, 1000), INT64_MAX);
    assert_int_equal(xfer_deadline(x, -7), INT64_MAX - 5);
    xfer_free(x);
}

/*
 * The receiver forgot the message (evicted, or restarted): every part sent
 * before, acknowledged or not, is sent again, lowest first, before the parts
 * never sent; nothing is in flight, so no timer is due; the counts of
 * sendings go on, and the message completes only on new ACKs.
 */
static void test_restart(void **state)
{
    (void)state;
    struct xfer *x = make(6);
    for (uint32_t i = 0; i < 4; i++)
        xfer_sent(x, i, 100);
    int64_t rtt;
    uint32_t lost;
    assert_int_equal(ack1(x, 1, 2, 150, &rtt, &lost), 2);
    assert_int_equal(xfer_timeout(x, 1100, 1000), 2); /* parts 0 and 3 */
    xfer_sent(x, 0, 1200);
    assert_int_equal(xfer_sendings(x), 5);

    xfer_restart(x);
    assert_int_equal(xfer_acked(x), 0);
    assert_int_equal(xfer_in_flight(x), 0);
    assert_int_equal(xfer_lost(x), 4);
    assert_false(xfer_complete(x));
    assert_int_equal(xfer_deadline(x, 1000), INT64_MAX);
    assert_int_equal(xfer_timeout(x, INT64_MAX, 0), 0);
    uint32_t order[6];
    for (int k = 0; k < 6; k++) {
        int64_t i = xfer_next(x);
        assert_true(i >= 0);
        order[k] = (uint32_t)i;
        xfer_sent(x, order[k], 2000 + k);
    }
    for (uint32_t k = 0; k < 6; k++)
        assert_int_equal(order[k], k); /* the four sent before, then 4 and 5 */
    assert_int_equal(xfer_next(x), -1);
    assert_int_equal(xfer_sendings(x), 11);
    assert_int_equal(xfer_retransmissions(x), 5); /* 0 at 1200, then 0..3 again */
    assert_int_equal(xfer_in_flight(x), 6);
    assert_int_equal(ack1(x, 0, 5, 2100, &rtt, &lost), 6);
    assert_true(xfer_complete(x));
    assert_int_equal(rtt, 2100 - 2005); /* parts 4 and 5, sent once: Karn allows them */
    xfer_free(x);
}

/* A part sent again while in flight (the caller's choice) moves its deadline. */
static void test_resend_in_flight(void **state)
{
    (void)state;
    struct xfer *x = make(3);
    xfer_sent(x, 0, 10);
    xfer_sent(x, 1, 20);
    xfer_sent(x, 0, 30);
    assert_int_equal(xfer_in_flight(x), 2);
    assert_int_equal(xfer_deadline(x, 100), 120);
    int64_t rtt;
    uint32_t lost;
    assert_int_equal(ack1(x, 0, 1, 40, &rtt, &lost), 2);
    assert_int_equal(rtt, 20); /* part 1; part 0 was sent twice */
    xfer_sent(x, 0, 50);       /* an acknowledged part: counted, nothing else */
    assert_int_equal(xfer_in_flight(x), 0);
    assert_int_equal(xfer_sendings(x), 4);
    assert_int_equal(xfer_retransmissions(x), 2);
    xfer_sent(x, 3, 50); /* out of range: ignored */
    assert_int_equal(xfer_sendings(x), 4);
    assert_int_equal(xfer_next(x), 2);
    xfer_free(x);
}

/* ---- a naive model, checked against under random operations ---- */

struct ref_part {
    int acked, lost, sendings;
    int64_t last;
    uint64_t serial;
};

struct ref {
    uint32_t count;
    struct ref_part *p;
    uint64_t serial, sendings, retx;
    int have_acked;
    uint64_t acked_serial;
};

static int ref_in_flight(const struct ref_part *p)
{
    return p->sendings > 0 && !p->acked && !p->lost;
}

static int64_t ref_next(const struct ref *m)
{
    for (uint32_t i = 0; i < m->count; i++)
        if (m->p[i].lost)
            return i;
    for (uint32_t i = 0; i < m->count; i++)
        if (m->p[i].sendings == 0 && !m->p[i].acked)
            return i;
    return -1;
}

static void ref_sent(struct ref *m, uint32_t i, int64_t now)
{
    if (i >= m->count)
        return;
    struct ref_part *p = &m->p[i];
    m->sendings++;
    m->retx += p->sendings > 0;
    p->sendings++;
    if (p->acked)
        return;
    p->lost = 0;
    p->last = now;
    p->serial = m->serial++;
}

static uint32_t ref_ack(struct ref *m, const struct part_range *r, int n, int64_t now, int64_t *rtt,
                        uint32_t *lost)
{
    uint32_t newly = 0;
    int have_top = 0;
    uint64_t top = 0;
    int64_t karn = -1;
    for (int k = 0; k < n; k++)
        for (uint64_t i = r[k].first; i <= r[k].last && i < m->count; i++) {
            struct ref_part *p = &m->p[i];
            if (p->acked)
                continue;
            p->acked = 1;
            p->lost = 0;
            newly++;
            if (p->sendings > 0 && (!have_top || p->serial > top)) {
                top = p->serial;
                have_top = 1;
            }
            if (p->sendings == 1 && (karn < 0 || p->serial > m->p[karn].serial))
                karn = (int64_t)i;
        }
    *rtt = karn < 0 ? -1 : (now > m->p[karn].last ? now - m->p[karn].last : 0);
    *lost = 0;
    if (have_top && (!m->have_acked || top > m->acked_serial)) {
        m->have_acked = 1;
        m->acked_serial = top;
        for (uint32_t i = 0; i < m->count; i++)
            if (ref_in_flight(&m->p[i]) && m->p[i].serial + 3 <= top) {
                m->p[i].lost = 1;
                (*lost)++;
            }
    }
    return newly;
}

static uint32_t ref_timeout(struct ref *m, int64_t now, int64_t rto)
{
    uint32_t lost = 0;
    for (uint32_t i = 0; i < m->count; i++)
        if (ref_in_flight(&m->p[i]) && m->p[i].last + rto <= now) {
            m->p[i].lost = 1;
            lost++;
        }
    return lost;
}

static void ref_check(const struct ref *m, struct xfer *x, int64_t rto)
{
    uint32_t flight = 0, lost = 0, acked = 0;
    int64_t oldest = INT64_MAX;
    for (uint32_t i = 0; i < m->count; i++) {
        const struct ref_part *p = &m->p[i];
        if (ref_in_flight(p)) {
            flight++;
            if (p->last < oldest)
                oldest = p->last;
        }
        lost += (uint32_t)p->lost;
        acked += (uint32_t)p->acked;
    }
    assert_int_equal(xfer_in_flight(x), flight);
    assert_int_equal(xfer_lost(x), lost);
    assert_int_equal(xfer_acked(x), acked);
    assert_int_equal(xfer_complete(x), acked == m->count);
    assert_int_equal(xfer_deadline(x, rto), flight ? oldest + rto : INT64_MAX);
    assert_int_equal(xfer_sendings(x), m->sendings);
    assert_int_equal(xfer_retransmissions(x), m->retx);
    assert_int_equal(xfer_next(x), ref_next(m));
}

static void random_run(uint32_t count)
{
    struct xfer *x = make(count);
    struct ref m = {count, calloc(count, sizeof(struct ref_part)), 0, 0, 0, 0, 0};
    assert_non_null(m.p);
    int64_t now = 1000, rto = 40;
    for (int op = 0; op < 3000 && !xfer_complete(x); op++) {
        uint32_t v = rnd() % 100;
        now += rnd() % 3;
        if (v < 50) { /* send what comes next */
            int64_t i = xfer_next(x);
            if (i >= 0) {
                xfer_sent(x, (uint32_t)i, now);
                ref_sent(&m, (uint32_t)i, now);
            }
        } else if (v < 53) { /* send anything, even out of range */
            uint32_t i = rnd() % (count + 2);
            xfer_sent(x, i, now);
            ref_sent(&m, i, now);
        } else if (v < 90) { /* an ACK of random ranges, some hostile */
            struct part_range r[PART_ACK_RANGES_MAX];
            int n = (int)(rnd() % 5);
            for (int k = 0; k < n; k++) {
                r[k].first = rnd() % (count + 3);
                r[k].last = r[k].first + rnd() % 6;
                if (rnd() % 20 == 0)
                    r[k].last = UINT32_MAX;
                if (rnd() % 20 == 0)
                    r[k].first = r[k].last + 1; /* inverted */
            }
            int64_t rtt1, rtt2;
            uint32_t l1, l2;
            uint32_t a1 = xfer_on_ack(x, r, n, now, &rtt1, &l1);
            uint32_t a2 = ref_ack(&m, r, n, now, &rtt2, &l2);
            assert_int_equal(a1, a2);
            assert_int_equal(rtt1, rtt2);
            assert_int_equal(l1, l2);
        } else {
            uint32_t t1 = xfer_timeout(x, now, rto);
            assert_int_equal(t1, ref_timeout(&m, now, rto));
        }
        ref_check(&m, x, rto);
    }
    free(m.p);
    xfer_free(x);
}

static void test_against_model(void **state)
{
    (void)state;
    for (int run = 0; run < 60; run++)
        random_run(1 + rnd() % 80);
}

/* ---- a whole transfer ---- */

/* The receiver's part ACK: the ranges of parts it holds, at most 64, the lowest. Newly lost. */
static uint32_t receiver_ack(struct xfer *x, const uint8_t *held, int64_t now, int64_t *rtt)
{
    struct part_range r[PART_ACK_RANGES_MAX];
    int n = 0;
    for (uint32_t k = 0; k < xfer_count(x); k++) {
        if (!held[k])
            continue;
        if (n > 0 && r[n - 1].last + 1 == k)
            r[n - 1].last = k;
        else if (n < PART_ACK_RANGES_MAX)
            r[n++] = (struct part_range){k, k};
        else
            break;
    }
    uint32_t lost;
    (void)xfer_on_ack(x, r, n, now, rtt, &lost);
    return lost;
}

/*
 * 1 MiB in parts of 1140 over a path that loses one part in ten: the
 * receiver ACKs its ranges every 64 parts it takes (at most 64 ranges, the
 * lowest), losses are found by threshold and by timer, and the message
 * arrives whole.
 */
static void test_one_mib_transfer(void **state)
{
    (void)state;
    const uint32_t length = 1u << 20;
    uint8_t *msg = pattern(length);
    struct xfer *x = xfer_new(msg, length, 1140, 9, the_id);
    assert_non_null(x);
    uint32_t count = xfer_count(x);
    uint8_t *held = calloc(count, 1);
    uint8_t *got = calloc(length, 1);
    assert_non_null(held);
    assert_non_null(got);
    int64_t now = 0, rto = 50;
    uint32_t taken = 0, acks = 0, samples = 0, by_threshold = 0;
    for (int turn = 0; turn < 100000 && !xfer_complete(x); turn++) {
        now++;
        /* A window of 128 parts in flight. */
        for (int64_t i; xfer_in_flight(x) < 128 && (i = xfer_next(x)) >= 0;) {
            xfer_sent(x, (uint32_t)i, now);
            if (rnd() % 10 == 0)
                continue; /* lost on the way */
            struct part_header h;
            const uint8_t *data;
            size_t len;
            assert_int_equal(xfer_part(x, (uint32_t)i, &h, &data, &len), 0);
            memcpy(got + (size_t)h.index * h.part_size, data, len);
            held[h.index] = 1;
            if (++taken % 64 != 0)
                continue;
            int64_t rtt;
            by_threshold += receiver_ack(x, held, now, &rtt);
            acks++;
            samples += rtt >= 0;
        }
        if (xfer_deadline(x, rto) <= now)
            (void)xfer_timeout(x, now, rto);
        /* The receiver's final ACK covers the tail that no 64th part answered. */
        if (xfer_next(x) < 0 && xfer_in_flight(x) > 0 && turn % 7 == 0) {
            int64_t rtt;
            by_threshold += receiver_ack(x, held, now, &rtt);
        }
    }
    assert_true(xfer_complete(x));
    assert_memory_equal(got, msg, length);
    assert_true(acks > 10 && samples > 0);
    assert_true(by_threshold > 50); /* most losses are found without waiting for the timer */
    assert_true(xfer_retransmissions(x) >= by_threshold);
    assert_int_equal(xfer_sendings(x), count + xfer_retransmissions(x));
    assert_int_equal(xfer_in_flight(x), 0);
    assert_int_equal(xfer_lost(x), 0);
    free(held);
    free(got);
    free(msg);
    xfer_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_reproduce),
        cmocka_unit_test(test_one_mib_layout),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_next_order),
        cmocka_unit_test(test_acked_before_sent),
        cmocka_unit_test(test_ack_ranges),
        cmocka_unit_test(test_karn),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_threshold_retransmitted),
        cmocka_unit_test(test_timeout_and_deadline),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_resend_in_flight),
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_one_mib_transfer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
