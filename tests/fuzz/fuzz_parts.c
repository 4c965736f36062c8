/*
 * The bodies of parts (type 0x02) and part ACKs (type 0x03), on any bytes:
 * part_parse and part_ack_parse never read out of bounds, what they accept
 * keeps every rule, and written back (part_write, part_ack_write) gives the
 * same bytes, so reader and writer agree on the format exactly.
 */
#include "wire/parts.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[PART_HEADER_BYTES + 65536];

static void check_part(const uint8_t *data, size_t size)
{
    struct part_header h;
    const uint8_t *d = NULL;
    size_t dl = 0;
    if (part_parse(data, size, &h, &d, &dl) != 0)
        return;
    uint32_t count = part_count(h.length, h.part_size);
    if (d != data + PART_HEADER_BYTES || dl != size - PART_HEADER_BYTES || dl == 0 ||
        h.length < 1 || h.length > PART_MAX_MESSAGE || count > PART_COUNT_MAX || h.index >= count ||
        (count > 1 && h.part_size < PART_MIN_SIZE) || (h.index + 1 < count && dl != h.part_size))
        abort(); /* accepted what breaks a rule */
    size_t n = part_write(&h, d, dl, out, sizeof out);
    if (n != size || memcmp(out, data, size) != 0)
        abort();
}

static void check_ack(const uint8_t *data, size_t size)
{
    uint8_t id[PART_ID_BYTES];
    uint32_t length = 0;
    struct part_range r[PART_ACK_RANGES_MAX];
    int n = -1;
    if (part_ack_parse(data, size, id, &length, r, PART_ACK_RANGES_MAX, &n) != 0)
        return;
    if (n < 1 || n > PART_ACK_RANGES_MAX || size != PART_ACK_FIXED_BYTES + 8 * (size_t)n ||
        length < 1 || length > PART_MAX_MESSAGE)
        abort();
    for (int i = 0; i < n; i++)
        if (r[i].first > r[i].last || r[i].last >= PART_COUNT_MAX ||
            (i > 0 && r[i].first <= (uint64_t)r[i - 1].last + 1))
            abort();
    size_t w = part_ack_write(id, length, r, n, out, sizeof out);
    if (w != size || memcmp(out, data, size) != 0)
        abort();
    /* room for fewer ranges: accepted all the same, the lowest kept */
    struct part_range few[2];
    int m = -1;
    if (part_ack_parse(data, size, id, &length, few, 2, &m) != 0 || m != (n < 2 ? n : 2) ||
        memcmp(few, r, (size_t)m * sizeof *few) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* each input is tried as both kinds of body, in an exact-size copy (ASan sees past its end) */
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    check_part(copy, size);
    check_ack(copy, size);
    free(copy);
    return 0;
}
