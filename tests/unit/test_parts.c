/*
 * parts: the bodies of message parts (type 0x02) and part ACKs (type 0x03),
 * docs/wire.md "Version 2: messages in parts". Every rule at its boundary,
 * round trips, the part size for an MTU, and tests/vectors/parts.json
 * (sealed by plain Python): sealed again with libsodium byte for byte, and
 * judged as the receiver judges them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/hex.h"
#include "wire/envelope_v2.h"
#include "wire/judge.h"
#include "wire/parts.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifndef SHARED_DIR
#error "SHARED_DIR must be defined (the Makefile passes it)"
#endif

#define VECTORS_PATH SHARED_DIR "/vectors/parts.json"
#define MIB16 (16u << 20)

static const uint8_t ID[PART_ID_BYTES] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                                          0xcd, 0xef, 0x01, 0x23, 0x45, 0x67};

/* Room for the largest body (a part of 65,535 bytes, more than a datagram carries). */
static uint8_t body[PART_HEADER_BYTES + 65536 + 16], data[65536 + 16];

static struct part_header hdr(uint32_t length, uint16_t part_size, uint32_t index)
{
    struct part_header h = {
        .sequence = 42, .length = length, .part_size = part_size, .index = index};
    memcpy(h.id, ID, PART_ID_BYTES);
    return h;
}

/* Field by field: a struct's padding is not compared. */
static void assert_same_header(const struct part_header *a, const struct part_header *b)
{
    assert_true(a->sequence == b->sequence);
    assert_memory_equal(a->id, b->id, PART_ID_BYTES);
    assert_int_equal(a->length, b->length);
    assert_int_equal(a->part_size, b->part_size);
    assert_int_equal(a->index, b->index);
}

/* A body of h with data_len data bytes, written by hand (part_write would refuse a bad one). */
static size_t raw_part(const struct part_header *h, uint16_t flags, size_t data_len)
{
    uint8_t *p = body;
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(h->sequence >> (8 * i));
    memcpy(p, h->id, PART_ID_BYTES);
    p += PART_ID_BYTES;
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(h->length >> (8 * i));
    *p++ = (uint8_t)(h->part_size >> 8);
    *p++ = (uint8_t)h->part_size;
    *p++ = (uint8_t)(flags >> 8);
    *p++ = (uint8_t)flags;
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(h->index >> (8 * i));
    memset(p, 'd', data_len);
    return PART_HEADER_BYTES + data_len;
}

/* part_parse's answer on a hand-made body of h with data_len bytes. */
static int parses(uint32_t length, uint16_t part_size, uint32_t index, size_t data_len)
{
    struct part_header h = hdr(length, part_size, index), got;
    size_t n = raw_part(&h, 0, data_len);
    const uint8_t *d = NULL;
    size_t dl = 0;
    int r = part_parse(body, n, &got, &d, &dl);
    if (r == 0) {
        assert_true(d == body + PART_HEADER_BYTES);
        assert_int_equal(dl, data_len);
        assert_memory_equal(&got.id, ID, PART_ID_BYTES);
        assert_true(got.sequence == 42 && got.length == length && got.part_size == part_size &&
                    got.index == index);
    }
    return r;
}

static void test_count(void **state)
{
    (void)state;
    assert_int_equal(part_count(700, 256), 3);
    assert_int_equal(part_count(512, 256), 2);
    assert_int_equal(part_count(1, 1140), 1);
    assert_int_equal(part_count(5, 0), 0);
    assert_int_equal(part_count(MIB16, PART_MIN_SIZE), PART_COUNT_MAX);
    assert_int_equal(part_count(MIB16 + 1, PART_MIN_SIZE), PART_COUNT_MAX + 1);
    assert_true(part_count(UINT32_MAX, 1) == UINT32_MAX);      /* no wrap */
    assert_true(part_count(UINT32_MAX, 65535) == 65537);       /* 65535 * 65537 = 2^32 - 1 */
    assert_true(part_count(UINT32_MAX, UINT16_MAX) == 65537u); /* the same, spelt otherwise */
}

static void test_rules(void **state)
{
    (void)state;
    /* 700 in parts of 256: 256, 256, 188 */
    assert_int_equal(parses(700, 256, 0, 256), 0);
    assert_int_equal(parses(700, 256, 1, 256), 0);
    assert_int_equal(parses(700, 256, 2, 188), 0);
    assert_int_equal(parses(700, 256, 1, 255), -1);
    assert_int_equal(parses(700, 256, 1, 257), -1);
    assert_int_equal(parses(700, 256, 2, 187), -1);
    assert_int_equal(parses(700, 256, 2, 189), -1);
    assert_int_equal(parses(700, 256, 3, 1), -1); /* index == count */
    assert_int_equal(parses(700, 256, UINT32_MAX, 1), -1);
    /* a last part exactly part size */
    assert_int_equal(parses(512, 256, 1, 256), 0);
    /* length: 1..16 MiB */
    assert_int_equal(parses(0, 256, 0, 0), -1);
    assert_int_equal(parses(0, 256, 0, 1), -1);
    assert_int_equal(parses(1, 256, 0, 1), 0);
    assert_int_equal(parses(1, 1, 0, 1), 0);
    assert_int_equal(parses(MIB16, 65535, 256, MIB16 - 256u * 65535), 0);
    assert_int_equal(parses(MIB16 + 1, 65535, 256, MIB16 + 1 - 256u * 65535), -1);
    assert_int_equal(parses(UINT32_MAX, 65535, 65536, UINT32_MAX - 65536u * 65535), -1);
    /* part size: not 0; under 256 only for one part */
    assert_int_equal(parses(1, 0, 0, 1), -1);
    assert_int_equal(parses(300, 255, 0, 255), -1);
    assert_int_equal(parses(300, 255, 1, 45), -1);
    assert_int_equal(parses(300, 256, 1, 44), 0);
    assert_int_equal(parses(255, 255, 0, 255), 0); /* one part of 255 */
    assert_int_equal(parses(100, 50, 0, 50), -1);  /* two parts of 50 */
    assert_int_equal(parses(50, 100, 0, 50), 0);   /* part size above length: one part */
    /* count: 65,536 parts of 256 is the most */
    assert_int_equal(parses(MIB16, 256, 65535, 256), 0);
    assert_int_equal(parses(MIB16, 256, 0, 256), 0);
    assert_int_equal(parses(MIB16, 256, 65536, 256), -1);
    assert_int_equal(parses(MIB16 + 1, 256, 65536, 1), -1); /* 65,537 parts */
    assert_int_equal(parses(MIB16 + 1, 256, 0, 256), -1);
    /* flags */
    struct part_header h = hdr(700, 256, 0), got;
    const uint8_t *d;
    size_t dl;
    for (unsigned f = 1; f <= 0x8000; f <<= 1) {
        size_t n = raw_part(&h, (uint16_t)f, 256);
        assert_int_equal(part_parse(body, n, &got, &d, &dl), -1);
    }
    /* shorter than the header, any length */
    size_t n = raw_part(&h, 0, 0);
    for (size_t k = 0; k <= n; k++)
        assert_int_equal(part_parse(body, k, &got, &d, &dl), -1);
}

static void test_write(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    struct part_header hs[] = {hdr(700, 256, 0),       hdr(700, 256, 2),
                               hdr(1, 1140, 0),        hdr(MIB16, 256, 65535),
                               hdr(MIB16, 65535, 256), hdr(65535, 65535, 0)};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        const struct part_header *h = &hs[i];
        size_t want =
            h->index + 1 < part_count(h->length, h->part_size)
                ? h->part_size
                : h->length - (size_t)(part_count(h->length, h->part_size) - 1) * h->part_size;
        size_t n = part_write(h, data, want, body, sizeof body);
        assert_int_equal(n, PART_HEADER_BYTES + want);
        assert_int_equal(part_write(h, data, want, body, n - 1), 0); /* no room */
        assert_int_equal(part_write(h, data, want + 1, body, sizeof body), 0);
        assert_int_equal(part_write(h, data, want - 1, body, sizeof body), 0);
        n = part_write(h, data, want, body, n); /* exactly room */
        struct part_header got;
        const uint8_t *d;
        size_t dl;
        assert_int_equal(part_parse(body, n, &got, &d, &dl), 0);
        assert_same_header(&got, h);
        assert_int_equal(dl, want);
        assert_memory_equal(d, data, want);
    }
    /* what part_parse refuses, part_write does not write */
    struct part_header bad[] = {hdr(0, 256, 0), hdr(1, 0, 0), hdr(300, 255, 0), hdr(700, 256, 3),
                                hdr(MIB16 + 1, 65535, 0)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (size_t dl = 0; dl <= 256; dl++)
            assert_int_equal(part_write(&bad[i], data, dl, body, sizeof body), 0);
    /* in place: the data already where the body's data goes */
    struct part_header h = hdr(700, 256, 1), got;
    memcpy(body + PART_HEADER_BYTES, data, 256);
    assert_int_equal(part_write(&h, body + PART_HEADER_BYTES, 256, body, sizeof body), 288);
    const uint8_t *d;
    size_t dl;
    assert_int_equal(part_parse(body, 288, &got, &d, &dl), 0);
    assert_memory_equal(d, data, 256);
}

static void test_mtu(void **state)
{
    (void)state;
    assert_int_equal(part_size_for_mtu(1280), 1140);
    assert_int_equal(part_size_for_mtu(576), 436);
    assert_int_equal(part_size_for_mtu(65535), 65395);
    assert_int_equal(part_size_for_mtu(0), 436);
    assert_int_equal(part_size_for_mtu(575), 436);
    assert_int_equal(part_size_for_mtu(65536), 65395);
    assert_int_equal(part_size_for_mtu(UINT_MAX), 65395);
    /* a full part's datagram is the MTU less the IP and UDP headers, and fits a datagram */
    for (unsigned m = PART_MTU_MIN; m <= PART_MTU_MAX; m++) {
        unsigned ps = part_size_for_mtu(m);
        assert_true(ps >= PART_MIN_SIZE);
        assert_int_equal(ENVELOPE_V2_OVERHEAD + PART_HEADER_BYTES + ps, m - PART_MTU_HEADROOM);
        assert_true(PART_HEADER_BYTES + ps <= ENVELOPE_V2_MAX_BODY);
    }
}

static uint8_t ack[PART_ACK_FIXED_BYTES + 8 * 70];

/* A part ACK body of n ranges, by hand; reserved as given. */
static size_t raw_ack(uint32_t length, const struct part_range *r, int n, uint16_t wire_n,
                      uint16_t reserved)
{
    uint8_t *p = ack;
    memcpy(p, ID, PART_ID_BYTES);
    p += PART_ID_BYTES;
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(length >> (8 * i));
    *p++ = (uint8_t)(wire_n >> 8);
    *p++ = (uint8_t)wire_n;
    *p++ = (uint8_t)(reserved >> 8);
    *p++ = (uint8_t)reserved;
    for (int k = 0; k < n; k++)
        for (int j = 0; j < 2; j++) {
            uint32_t v = j == 0 ? r[k].first : r[k].last;
            for (int i = 3; i >= 0; i--)
                *p++ = (uint8_t)(v >> (8 * i));
        }
    return (size_t)(p - ack);
}

static int ack_parses(uint32_t length, const struct part_range *r, int n)
{
    size_t len = raw_ack(length, r, n, (uint16_t)n, 0);
    uint8_t id[PART_ID_BYTES];
    uint32_t got_len = 0;
    struct part_range got[PART_ACK_RANGES_MAX];
    int got_n = -1;
    int res = part_ack_parse(ack, len, id, &got_len, got, PART_ACK_RANGES_MAX, &got_n);
    if (res == 0) {
        assert_memory_equal(id, ID, PART_ID_BYTES);
        assert_int_equal(got_len, length);
        assert_int_equal(got_n, n);
        assert_memory_equal(got, r, (size_t)n * sizeof *r);
        /* and written back, the same bytes */
        uint8_t again[sizeof ack];
        assert_int_equal(part_ack_write(id, got_len, got, got_n, again, sizeof again), len);
        assert_memory_equal(again, ack, len);
    } else {
        uint8_t out[sizeof ack];
        assert_int_equal(part_ack_write(ID, length, r, n, out, sizeof out), 0);
    }
    return res;
}

static void test_ack(void **state)
{
    (void)state;
    struct part_range r[70];
    r[0] = (struct part_range){0, 0};
    assert_int_equal(ack_parses(700, r, 1), 0);
    assert_int_equal(ack_parses(700, r, 0), -1); /* no range */
    assert_int_equal(ack_parses(0, r, 1), -1);
    assert_int_equal(ack_parses(MIB16, r, 1), 0);
    assert_int_equal(ack_parses(MIB16 + 1, r, 1), -1);
    r[0] = (struct part_range){3, 2};
    assert_int_equal(ack_parses(700, r, 1), -1); /* first > last */
    r[0] = (struct part_range){0, 65535};
    assert_int_equal(ack_parses(MIB16, r, 1), 0);
    r[0] = (struct part_range){0, 65536};
    assert_int_equal(ack_parses(MIB16, r, 1), -1); /* no message has part 65536 */
    r[0] = (struct part_range){UINT32_MAX, UINT32_MAX};
    assert_int_equal(ack_parses(MIB16, r, 1), -1);
    /* apart: the next begins at least two past the last's end */
    r[0] = (struct part_range){0, 2};
    r[1] = (struct part_range){4, 4};
    assert_int_equal(ack_parses(5000, r, 2), 0);
    r[1] = (struct part_range){3, 4};
    assert_int_equal(ack_parses(5000, r, 2), -1); /* touching */
    r[1] = (struct part_range){2, 4};
    assert_int_equal(ack_parses(5000, r, 2), -1); /* overlapping */
    r[1] = (struct part_range){0, 2};
    assert_int_equal(ack_parses(5000, r, 2), -1); /* the same again */
    r[0] = (struct part_range){10, 12};
    r[1] = (struct part_range){0, 2};
    assert_int_equal(ack_parses(5000, r, 2), -1); /* descending */
    /* 64 ranges at most */
    for (int i = 0; i < 70; i++)
        r[i] = (struct part_range){(uint32_t)(3 * i), (uint32_t)(3 * i + 1)};
    assert_int_equal(ack_parses(MIB16, r, 64), 0);
    assert_int_equal(ack_parses(MIB16, r, 65), -1);
    /* the body exactly as long as n says */
    uint8_t id[PART_ID_BYTES];
    uint32_t len;
    struct part_range got[PART_ACK_RANGES_MAX];
    int n;
    size_t bl = raw_ack(5000, r, 2, 2, 0);
    for (size_t k = 0; k < bl + 8; k++)
        assert_int_equal(part_ack_parse(ack, k, id, &len, got, PART_ACK_RANGES_MAX, &n),
                         k == bl ? 0 : -1);
    bl = raw_ack(5000, r, 2, 3, 0);
    assert_int_equal(part_ack_parse(ack, bl, id, &len, got, PART_ACK_RANGES_MAX, &n), -1);
    bl = raw_ack(5000, r, 2, 1, 0);
    assert_int_equal(part_ack_parse(ack, bl, id, &len, got, PART_ACK_RANGES_MAX, &n), -1);
    for (unsigned f = 1; f <= 0x8000; f <<= 1) {
        bl = raw_ack(5000, r, 2, 2, (uint16_t)f);
        assert_int_equal(part_ack_parse(ack, bl, id, &len, got, PART_ACK_RANGES_MAX, &n), -1);
    }
    /* more ranges than the caller has room for: all checked, the lowest kept */
    bl = raw_ack(MIB16, r, 10, 10, 0);
    n = -1;
    assert_int_equal(part_ack_parse(ack, bl, id, &len, got, 3, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(got, r, 3 * sizeof *r);
    assert_int_equal(part_ack_parse(ack, bl, id, &len, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    r[9] = r[8];
    bl = raw_ack(MIB16, r, 10, 10, 0);
    assert_int_equal(part_ack_parse(ack, bl, id, &len, got, 3, &n), -1); /* past max, still bad */
    /* no room to write */
    r[0] = (struct part_range){0, 0};
    uint8_t out[PART_ACK_FIXED_BYTES + 8];
    assert_int_equal(part_ack_write(ID, 700, r, 1, out, sizeof out), sizeof out);
    assert_int_equal(part_ack_write(ID, 700, r, 1, out, sizeof out - 1), 0);
}

static void test_id_hex(void **state)
{
    (void)state;
    uint8_t id[PART_ID_BYTES], keep[PART_ID_BYTES];
    char hex[2 * PART_ID_BYTES + 1];
    assert_int_equal(part_id_from_hex("0123456789abcdef01234567", id), 0);
    assert_memory_equal(id, ID, PART_ID_BYTES);
    part_id_to_hex(id, hex);
    assert_string_equal(hex, "0123456789abcdef01234567");
    memcpy(keep, id, sizeof id);
    const char *bad[] = {"0123456789ABCDEF01234567", "0123456789abcdeF01234567",
                         "0123456789abcdef0123456",  "0123456789abcdef012345678",
                         "0123456789abcdef0123456g", "",
                         " 123456789abcdef01234567", "0123456789abcdef01234567 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(part_id_from_hex(bad[i], id), -1);
        assert_memory_equal(id, keep, sizeof id); /* untouched */
    }
    assert_int_equal(part_id_from_hex(NULL, id), -1);
    uint8_t ff[PART_ID_BYTES];
    memset(ff, 0xff, sizeof ff);
    part_id_to_hex(ff, hex);
    assert_string_equal(hex, "ffffffffffffffffffffffff");
}

/* ---- the vectors ---- */

static size_t unhex(const json_t *v, const char *field, uint8_t *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(v, field));
    assert_non_null(s);
    size_t n = strlen(s) / 2;
    assert_true(n <= cap);
    assert_int_equal(hex_decode(out, n, s, 2 * n), 0);
    return n;
}

static uint64_t num(const json_t *v, const char *field)
{
    json_t *x = json_object_get(v, field);
    assert_true(json_is_integer(x));
    return (uint64_t)json_integer_value(x);
}

/* A vector's datagram, sealed by Python: sealed again here, compared, judged. */
struct sealed {
    struct envelope_key *key;
    uint8_t kid[ENVELOPE_V2_ID_BYTES], body[ENVELOPE_MAX_DATAGRAM], dgram[ENVELOPE_MAX_DATAGRAM];
    size_t body_len, dgram_len;
    uint64_t ts;
};

static void reseal(const json_t *v, uint8_t type, struct sealed *s)
{
    uint8_t k[ENVELOPE_KEY_BYTES], nonce[ENVELOPE_V2_NONCE_BYTES];
    static uint8_t got[ENVELOPE_MAX_DATAGRAM];
    unhex(v, "key", k, sizeof k);
    unhex(v, "key_id", s->kid, sizeof s->kid);
    unhex(v, "nonce", nonce, sizeof nonce);
    s->body_len = unhex(v, "body_hex", s->body, sizeof s->body);
    s->dgram_len = unhex(v, "datagram_hex", s->dgram, sizeof s->dgram);
    s->ts = num(v, "timestamp_ns");
    assert_int_equal(num(v, "type"), type);
    s->key = envelope_key_from_bytes(k);
    assert_non_null(s->key);
    size_t n = envelope_v2_seal_with_nonce(s->key, s->kid, type, nonce, s->ts, s->body, s->body_len,
                                           got, sizeof got);
    assert_int_equal(n, s->dgram_len);
    assert_memory_equal(got, s->dgram, n);
    struct envelope_v2_header h;
    assert_int_equal(envelope_v2_header(s->dgram, s->dgram_len, &h), 0);
    assert_int_equal(h.type, type);
    assert_memory_equal(h.key_id, s->kid, ENVELOPE_V2_ID_BYTES);
}

/* Judges d (len bytes) as the receiver would: version 2, one key, a replay cache, now = ts. */
static enum judge_verdict judge_v2(struct envelope_key *key, uint8_t *d, size_t len, uint64_t ts,
                                   struct judgement *j)
{
    static uint8_t plain[ENVELOPE_MAX_DATAGRAM];
    struct replay *rp = replay_new(16);
    struct judge_key jk = {key, rp, NULL, 0};
    struct judge_ctx cx = {&jk, 1, 1, plain, ts, 10};
    enum judge_verdict v = judge_datagram(&cx, d, len, j, NULL);
    replay_free(rp);
    return v;
}

/* The message being put together from the vectors' parts, to check it reads as a message. */
static char whole[4096];

static void check_part(const json_t *v)
{
    static struct sealed s;
    reseal(v, ENVELOPE_V2_TYPE_PART, &s);
    uint8_t dat[2048];
    size_t dl = unhex(v, "data_hex", dat, sizeof dat);
    const char *mid = json_string_value(json_object_get(v, "message_id"));
    struct part_header h = {.sequence = num(v, "sequence"),
                            .length = (uint32_t)num(v, "length"),
                            .part_size = (uint16_t)num(v, "part_size"),
                            .index = (uint32_t)num(v, "index")};
    assert_int_equal(part_id_from_hex(mid, h.id), 0);
    assert_int_equal(part_count(h.length, h.part_size), num(v, "count"));
    /* part_write gives the body's bytes */
    uint8_t b[2048];
    assert_int_equal(part_write(&h, dat, dl, b, sizeof b), s.body_len);
    assert_memory_equal(b, s.body, s.body_len);
    /* judged: a part with its fields, its data pointing into the plaintext */
    struct judgement j;
    assert_int_equal(judge_v2(s.key, s.dgram, s.dgram_len, s.ts, &j), JUDGE_PART);
    assert_string_equal(j.msg.id, mid);
    assert_memory_equal(j.part_id, h.id, PART_ID_BYTES);
    assert_same_header(&j.part, &h);
    assert_int_equal(j.part_data_len, dl);
    assert_memory_equal(j.part_data, dat, dl);
    assert_int_equal(j.ours, 0);
    assert_true(j.ts_ns == s.ts);
    assert_int_equal(j.key_index, 0);
    assert_null(j.json);
    assert_true(h.length <= sizeof whole);
    memcpy(whole + (size_t)h.index * h.part_size, dat, dl);
    if (h.index + 1 == part_count(h.length, h.part_size)) {
        /* the last of its message (the vectors list parts in order): the whole is its JSON */
        struct message_in m;
        assert_int_equal(message_classify(whole, h.length, &m), MESSAGE_VALID);
        assert_string_equal(m.id, mid);
    }
    /* the type decides how the body is read: as type 0x01 it is no JSON, as 0x03 no part ACK */
    static uint8_t other[ENVELOPE_MAX_DATAGRAM];
    size_t on = envelope_v2_seal(s.key, s.kid, ENVELOPE_V2_TYPE_MESSAGE, s.ts, s.body, s.body_len,
                                 other, sizeof other);
    assert_int_equal(judge_v2(s.key, other, on, s.ts, &j), JUDGE_DROP_JSON);
    on = envelope_v2_seal(s.key, s.kid, ENVELOPE_V2_TYPE_PART_ACK, s.ts, s.body, s.body_len, other,
                          sizeof other);
    assert_int_equal(judge_v2(s.key, other, on, s.ts, &j), JUDGE_DROP_BAD_PART);
    /* the type byte is authenticated: changed, the datagram does not open */
    s.dgram[1] = ENVELOPE_V2_TYPE_PART_ACK;
    assert_int_equal(judge_v2(s.key, s.dgram, s.dgram_len, s.ts, &j), JUDGE_DROP_AUTH);
    envelope_key_free(s.key);
}

static void check_ack(const json_t *v)
{
    static struct sealed s;
    reseal(v, ENVELOPE_V2_TYPE_PART_ACK, &s);
    const char *mid = json_string_value(json_object_get(v, "message_id"));
    uint8_t id[PART_ID_BYTES];
    assert_int_equal(part_id_from_hex(mid, id), 0);
    uint32_t length = (uint32_t)num(v, "length");
    struct part_range r[PART_ACK_RANGES_MAX];
    size_t i, n = json_array_size(json_object_get(v, "ranges"));
    json_t *x;
    assert_true(n >= 1 && n <= PART_ACK_RANGES_MAX);
    json_array_foreach(json_object_get(v, "ranges"), i, x)
    {
        r[i].first = (uint32_t)json_integer_value(json_array_get(x, 0));
        r[i].last = (uint32_t)json_integer_value(json_array_get(x, 1));
    }
    uint8_t b[1024];
    assert_int_equal(part_ack_write(id, length, r, (int)n, b, sizeof b), s.body_len);
    assert_memory_equal(b, s.body, s.body_len);
    struct judgement j;
    assert_int_equal(judge_v2(s.key, s.dgram, s.dgram_len, s.ts, &j), JUDGE_PART_ACK);
    assert_string_equal(j.msg.id, mid);
    assert_memory_equal(j.part_id, id, PART_ID_BYTES);
    assert_int_equal(j.ack_length, length);
    assert_int_equal(j.nranges, (int)n);
    assert_memory_equal(j.ranges, r, n * sizeof r[0]);
    assert_int_equal(j.ours, 0);
    assert_null(j.json);
    envelope_key_free(s.key);
}

/* A bad body: refused by its parser, and sealed properly, judged bad_part. */
static void check_bad(const json_t *v, struct envelope_key *key)
{
    static uint8_t b[ENVELOPE_MAX_DATAGRAM], d[ENVELOPE_MAX_DATAGRAM];
    const char *why = json_string_value(json_object_get(v, "why"));
    assert_non_null(why);
    size_t bl = unhex(v, "body_hex", b, sizeof b);
    uint8_t type = (uint8_t)num(v, "type"), kid[ENVELOPE_V2_ID_BYTES] = {1, 2, 3};
    if (type == ENVELOPE_V2_TYPE_PART) {
        struct part_header h;
        const uint8_t *dp;
        size_t dl;
        if (part_parse(b, bl, &h, &dp, &dl) != -1)
            fail_msg("part_parse accepted a bad part: %s", why);
    } else {
        assert_int_equal(type, ENVELOPE_V2_TYPE_PART_ACK);
        uint8_t id[PART_ID_BYTES];
        uint32_t len;
        struct part_range r[PART_ACK_RANGES_MAX];
        int n;
        if (part_ack_parse(b, bl, id, &len, r, PART_ACK_RANGES_MAX, &n) != -1)
            fail_msg("part_ack_parse accepted a bad part ACK: %s", why);
    }
    size_t dn = envelope_v2_seal(key, kid, type, 1800000000000000000ULL, b, bl, d, sizeof d);
    assert_true(dn > 0);
    struct judgement j;
    enum judge_verdict got = judge_v2(key, d, dn, 1800000000000000000ULL, &j);
    if (got != JUDGE_DROP_BAD_PART)
        fail_msg("%s: judged %s, not bad_part", why, judge_name(got));
    assert_int_equal(j.key_index, 0);
}

static void test_vectors(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(VECTORS_PATH, 0, &jerr);
    if (root == NULL)
        fail_msg("%s: %s", VECTORS_PATH, jerr.text);
    size_t i;
    json_t *v;
    assert_true(json_array_size(json_object_get(root, "parts")) >= 5);
    json_array_foreach(json_object_get(root, "parts"), i, v) check_part(v);
    assert_true(json_array_size(json_object_get(root, "part_acks")) >= 2);
    json_array_foreach(json_object_get(root, "part_acks"), i, v) check_ack(v);
    uint8_t k[ENVELOPE_KEY_BYTES];
    memset(k, 0x42, sizeof k);
    struct envelope_key *key = envelope_key_from_bytes(k);
    assert_true(json_array_size(json_object_get(root, "bad_bodies")) >= 20);
    json_array_foreach(json_object_get(root, "bad_bodies"), i, v) check_bad(v, key);
    envelope_key_free(key);
    json_decref(root);
}

int main(void)
{
    assert_int_equal(envelope_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count),   cmocka_unit_test(test_rules), cmocka_unit_test(test_write),
        cmocka_unit_test(test_mtu),     cmocka_unit_test(test_ack),   cmocka_unit_test(test_id_hex),
        cmocka_unit_test(test_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
