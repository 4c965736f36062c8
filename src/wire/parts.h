/*
 * parts: the bodies of version 2 datagrams of type 0x02 (a part of a
 * message) and 0x03 (which parts of a message arrived), as docs/wire.md
 * "Version 2: messages in parts" defines them. Pure: bytes in, fields out,
 * every length and every rule checked before use; no crypto, no clock.
 */
#ifndef SG_PARTS_H
#define SG_PARTS_H

#include <stddef.h>
#include <stdint.h>

#define PART_ID_BYTES 12     /* a message_id's 24 hex digits as bytes */
#define PART_HEADER_BYTES 32 /* sequence 8, id 12, length 4, part size 2, flags 2, index 4 */
#define PART_MIN_SIZE 256    /* the smallest part size of a message of several parts */
#define PART_MAX_MESSAGE (16u << 20) /* the hard ceiling of a message's length */
#define PART_COUNT_MAX 65536u        /* parts of one message: PART_MAX_MESSAGE / PART_MIN_SIZE */
#define PART_MTU_MIN 576
#define PART_MTU_MAX 65535
#define PART_MTU_HEADROOM 48    /* an IPv6 header and a UDP header */
#define PART_ACK_FIXED_BYTES 20 /* id 12, length 4, n 2, reserved 2 */
#define PART_ACK_RANGES_MAX 64

struct part_header {
    uint64_t sequence; /* 0: none */
    uint8_t id[PART_ID_BYTES];
    uint32_t length;    /* of the whole message */
    uint16_t part_size; /* data bytes in every part but the last */
    uint32_t index;
};

struct part_range {
    uint32_t first, last; /* inclusive */
};

/* The number of parts of a message of length bytes in parts of part_size (0 if part_size is 0). */
uint32_t part_count(uint32_t length, uint16_t part_size);

/*
 * The data bytes of one part, whose datagram fits an IP packet of mtu bytes
 * (PART_MTU_MIN..PART_MTU_MAX; clamped to that range), capped at what a
 * version 2 datagram can carry and at 65535.
 */
uint16_t part_size_for_mtu(unsigned mtu);

/*
 * Reads a part's body (len bytes): 0 with *h, *data (into body) and
 * *data_len set if every rule of docs/wire.md holds, else -1 (a bad part)
 * with nothing set. The rules: flags zero, length 1..PART_MAX_MESSAGE, part
 * size not 0 and at least PART_MIN_SIZE if the message has more than one
 * part, index below the count, and exactly the data bytes the index gives.
 */
__attribute__((warn_unused_result)) int part_parse(const uint8_t *body, size_t len,
                                                   struct part_header *h, const uint8_t **data,
                                                   size_t *data_len);

/*
 * Writes a part's body: the header h, then data_len bytes of data, which
 * must be what the rules give part h->index. Returns the body's length, or 0
 * if h breaks a rule, data_len is wrong, or it does not fit cap.
 */
size_t part_write(const struct part_header *h, const void *data, size_t data_len, uint8_t *out,
                  size_t cap);

/*
 * Reads a part ACK's body: 0 with id, *length and up to max ranges in r
 * (*n of them) if it is well formed, else -1 with nothing set. Well formed:
 * reserved zero, length 1..PART_MAX_MESSAGE, 1 <= n <= PART_ACK_RANGES_MAX,
 * the body exactly as long as n says, each range first <= last <
 * PART_COUNT_MAX, ranges ascending and apart (next.first > prev.last + 1:
 * ranges that touch are one range). All n are checked; if n > max only the
 * first (lowest) max are kept. Whether the ranges fit the message is for the
 * caller, which knows its count.
 */
__attribute__((warn_unused_result)) int part_ack_parse(const uint8_t *body, size_t len,
                                                       uint8_t id[PART_ID_BYTES], uint32_t *length,
                                                       struct part_range *r, int max, int *n);

/*
 * Writes a part ACK's body of n ranges (1..PART_ACK_RANGES_MAX), which must
 * follow the rules part_ack_parse checks. Its length, or 0 if they do not,
 * or it does not fit cap.
 */
size_t part_ack_write(const uint8_t id[PART_ID_BYTES], uint32_t length, const struct part_range *r,
                      int n, uint8_t *out, size_t cap);

/* A message_id (24 lowercase hex digits) as 12 bytes, and back. 0, or -1 if not valid. */
int part_id_from_hex(const char *hex, uint8_t id[PART_ID_BYTES]);
void part_id_to_hex(const uint8_t id[PART_ID_BYTES], char hex[2 * PART_ID_BYTES + 1]);

#endif
