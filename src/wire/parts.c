/*
 * parts: see parts.h and docs/wire.md, "Version 2: messages in parts".
 *
 *   part     = sequence (8) || id (12) || length (4) || part size (2) || flags (2, zero)
 *              || index (4) || data
 *   part ACK = id (12) || length (4) || n (2) || reserved (2, zero) || n x (first (4) || last (4))
 *
 * Big-endian throughout. The writers check every rule the readers do, so
 * whatever part_write or part_ack_write produce, the other side accepts.
 */
#include "wire/parts.h"

#include "util/hex.h"
#include "wire/envelope_v2.h"
#include "wire/message.h"

#include <string.h>

/* Where each field of a part begins. */
enum {
    AT_SEQUENCE = 0,
    AT_ID = 8,
    AT_LENGTH = AT_ID + PART_ID_BYTES,
    AT_PART_SIZE = AT_LENGTH + 4,
    AT_FLAGS = AT_PART_SIZE + 2,
    AT_INDEX = AT_FLAGS + 2,
    AT_DATA = AT_INDEX + 4,
};
_Static_assert(AT_DATA == PART_HEADER_BYTES, "the part header's fields add up to its size");

/* And of a part ACK. */
enum {
    ACK_AT_LENGTH = PART_ID_BYTES,
    ACK_AT_N = ACK_AT_LENGTH + 4,
    ACK_AT_RESERVED = ACK_AT_N + 2,
    ACK_AT_RANGES = ACK_AT_RESERVED + 2,
    ACK_RANGE_BYTES = 8,
};
_Static_assert(ACK_AT_RANGES == PART_ACK_FIXED_BYTES, "the part ACK's fields add up");
/* A part ACK of 64 ranges is 532 bytes: it fits any datagram the MTU allows. */
_Static_assert(PART_ACK_FIXED_BYTES + PART_ACK_RANGES_MAX * 8 <= ENVELOPE_V2_MAX_BODY,
               "a full part ACK fits one datagram");
/* 16 MiB in parts of 256 is exactly 65,536 parts: the count limit follows from the others. */
_Static_assert(PART_MAX_MESSAGE / PART_MIN_SIZE == PART_COUNT_MAX, "count limit is consistent");

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

uint32_t part_count(uint32_t length, uint16_t part_size)
{
    if (part_size == 0)
        return 0;
    /* in 64 bits: length + part_size - 1 may pass 2^32 */
    return (uint32_t)(((uint64_t)length + part_size - 1) / part_size);
}

uint16_t part_size_for_mtu(unsigned mtu)
{
    if (mtu < PART_MTU_MIN)
        mtu = PART_MTU_MIN;
    if (mtu > PART_MTU_MAX)
        mtu = PART_MTU_MAX;
    /* PART_MTU_MIN leaves 436 bytes, so none of these subtractions can wrap */
    unsigned size = mtu - PART_MTU_HEADROOM - ENVELOPE_V2_OVERHEAD - PART_HEADER_BYTES;
    if (size > ENVELOPE_V2_MAX_BODY - PART_HEADER_BYTES)
        size = ENVELOPE_V2_MAX_BODY - PART_HEADER_BYTES;
    return size > UINT16_MAX ? UINT16_MAX : (uint16_t)size;
}
_Static_assert(PART_MTU_MIN - PART_MTU_HEADROOM - ENVELOPE_V2_OVERHEAD - PART_HEADER_BYTES >=
                   PART_MIN_SIZE,
               "the smallest MTU still gives parts of PART_MIN_SIZE");

/*
 * The data bytes part h->index must carry, or 0 if h breaks a rule: length
 * 1..PART_MAX_MESSAGE, part size not 0 (and PART_MIN_SIZE or more if there is
 * more than one part), index below the count. Every part holds at least 1 byte.
 */
static size_t data_len_for(const struct part_header *h)
{
    if (h->length < 1 || h->length > PART_MAX_MESSAGE || h->part_size == 0)
        return 0;
    uint32_t count = part_count(h->length, h->part_size);
    if ((count > 1 && h->part_size < PART_MIN_SIZE) || count > PART_COUNT_MAX || h->index >= count)
        return 0;
    if (h->index < count - 1)
        return h->part_size;
    return (size_t)(h->length - (uint64_t)(count - 1) * h->part_size);
}

int part_parse(const uint8_t *body, size_t len, struct part_header *h, const uint8_t **data,
               size_t *data_len)
{
    if (len < PART_HEADER_BYTES || get16(body + AT_FLAGS) != 0)
        return -1;
    struct part_header got;
    got.sequence = get64(body + AT_SEQUENCE);
    memcpy(got.id, body + AT_ID, PART_ID_BYTES);
    got.length = get32(body + AT_LENGTH);
    got.part_size = get16(body + AT_PART_SIZE);
    got.index = get32(body + AT_INDEX);
    size_t want = data_len_for(&got);
    if (want == 0 || len - PART_HEADER_BYTES != want)
        return -1;
    *h = got;
    *data = body + PART_HEADER_BYTES;
    *data_len = want;
    return 0;
}

size_t part_write(const struct part_header *h, const void *data, size_t data_len, uint8_t *out,
                  size_t cap)
{
    size_t want = data_len_for(h);
    if (want == 0 || data_len != want || cap < PART_HEADER_BYTES ||
        data_len > cap - PART_HEADER_BYTES)
        return 0;
    memmove(out + PART_HEADER_BYTES, data, data_len); /* first: data may lie where out is */
    put64(out + AT_SEQUENCE, h->sequence);
    memcpy(out + AT_ID, h->id, PART_ID_BYTES);
    put32(out + AT_LENGTH, h->length);
    put16(out + AT_PART_SIZE, h->part_size);
    put16(out + AT_FLAGS, 0);
    put32(out + AT_INDEX, h->index);
    return PART_HEADER_BYTES + data_len;
}

/*
 * 1 if the n ranges at r are each first <= last, below PART_COUNT_MAX, and
 * ascending with a gap between neighbours (touching ranges are one range).
 */
static int ranges_ok(const struct part_range *r, int n)
{
    for (int i = 0; i < n; i++) {
        if (r[i].first > r[i].last || r[i].last >= PART_COUNT_MAX)
            return 0;
        if (i > 0 && r[i].first <= (uint64_t)r[i - 1].last + 1)
            return 0;
    }
    return 1;
}

static int ack_length_ok(uint32_t length)
{
    return length >= 1 && length <= PART_MAX_MESSAGE;
}

int part_ack_parse(const uint8_t *body, size_t len, uint8_t id[PART_ID_BYTES], uint32_t *length,
                   struct part_range *r, int max, int *n)
{
    if (len < PART_ACK_FIXED_BYTES || get16(body + ACK_AT_RESERVED) != 0)
        return -1;
    uint16_t count = get16(body + ACK_AT_N);
    uint32_t total = get32(body + ACK_AT_LENGTH);
    if (count < 1 || count > PART_ACK_RANGES_MAX || !ack_length_ok(total) ||
        len - PART_ACK_FIXED_BYTES != (size_t)count * ACK_RANGE_BYTES)
        return -1;
    struct part_range all[PART_ACK_RANGES_MAX];
    for (int i = 0; i < count; i++) {
        const uint8_t *p = body + ACK_AT_RANGES + (size_t)i * ACK_RANGE_BYTES;
        all[i].first = get32(p);
        all[i].last = get32(p + 4);
    }
    if (!ranges_ok(all, count))
        return -1;
    int keep = max < 0 ? 0 : max < count ? max : count;
    memcpy(id, body, PART_ID_BYTES);
    *length = total;
    if (keep > 0)
        memcpy(r, all, (size_t)keep * sizeof *r);
    *n = keep;
    return 0;
}

size_t part_ack_write(const uint8_t id[PART_ID_BYTES], uint32_t length, const struct part_range *r,
                      int n, uint8_t *out, size_t cap)
{
    if (n < 1 || n > PART_ACK_RANGES_MAX || !ack_length_ok(length) || !ranges_ok(r, n))
        return 0;
    size_t total = PART_ACK_FIXED_BYTES + (size_t)n * ACK_RANGE_BYTES;
    if (cap < total)
        return 0;
    memcpy(out, id, PART_ID_BYTES);
    put32(out + ACK_AT_LENGTH, length);
    put16(out + ACK_AT_N, (uint16_t)n);
    put16(out + ACK_AT_RESERVED, 0);
    for (int i = 0; i < n; i++) {
        uint8_t *p = out + ACK_AT_RANGES + (size_t)i * ACK_RANGE_BYTES;
        put32(p, r[i].first);
        put32(p + 4, r[i].last);
    }
    return total;
}

int part_id_from_hex(const char *hex, uint8_t id[PART_ID_BYTES])
{
    /* message_id_valid: exactly 24 lowercase digits; hex_decode alone takes uppercase too */
    uint8_t got[PART_ID_BYTES];
    if (hex == NULL || !message_id_valid(hex) ||
        hex_decode(got, PART_ID_BYTES, hex, 2 * PART_ID_BYTES) != 0)
        return -1;
    memcpy(id, got, PART_ID_BYTES);
    return 0;
}

void part_id_to_hex(const uint8_t id[PART_ID_BYTES], char hex[2 * PART_ID_BYTES + 1])
{
    /* cannot fail: the room is exactly 2n + 1 */
    (void)hex_encode(hex, 2 * PART_ID_BYTES + 1, id, PART_ID_BYTES);
}
