/*
 * judge: from the bytes of one received datagram to what the daemon does with
 * it, every check in order: length, authenticity (version 1: ChaCha20-Poly1305
 * under each candidate key in turn, at most JUDGE_TRIALS_MAX; version 2:
 * XChaCha20-Poly1305 under the one key its key id names), the timestamp
 * window, replay (in the cache of the key that opened it), then the body by
 * its type: a JSON object with its message_id (version 1, version 2 type
 * 0x01), a part (0x02) or a part ACK (0x03) by the rules of wire/parts.h;
 * and whether we sealed it ourselves. Pure apart from the replay
 * caches it updates; the caller finds the keys and passes the clock. The
 * fuzzers drive exactly this function.
 */
#ifndef SG_JUDGE_H
#define SG_JUDGE_H

#include "wire/envelope.h"
#include "wire/envelope_v2.h"
#include "wire/message.h"
#include "wire/parts.h"
#include "wire/replay.h"

#include <stddef.h>
#include <stdint.h>

/*
 * What is taken comes first; every verdict from JUDGE_DROP_SHORT on is a
 * drop, and the renderings of the counters (counters, peertab, peersview)
 * list exactly those under "dropped". A new drop goes before JUDGE_VERDICTS.
 */
enum judge_verdict {
    JUDGE_MESSAGE,          /* store it, then ACK it */
    JUDGE_ACK,              /* an acknowledgement of one of ours */
    JUDGE_PART,             /* version 2 type 0x02: a part of a message, for reassembly */
    JUDGE_PART_ACK,         /* version 2 type 0x03: which parts of one of ours arrived */
    JUDGE_DROP_SHORT,       /* under 28 bytes (or over the maximum) */
    JUDGE_DROP_AUTH,        /* does not authenticate */
    JUDGE_DROP_MALFORMED,   /* authentic, but no room for the timestamp */
    JUDGE_DROP_STALE,       /* timestamp outside the window (or below the replay floor) */
    JUDGE_DROP_REFLECTED,   /* one of our own datagrams, sent back to us (set by the engine) */
    JUDGE_DROP_REPLAY,      /* this exact datagram was accepted before */
    JUDGE_DROP_REPLAY_FULL, /* the replay cache has no room: refused for now */
    JUDGE_DROP_JSON,        /* not a JSON object */
    JUDGE_DROP_BAD_ID,      /* message_id missing or not 24 lowercase hex */
    JUDGE_DROP_UNKNOWN_KEY, /* version 2 with a key id we do not know (set by the engine) */
    JUDGE_DROP_NOT_ALLOWED, /* authentic, from outside its peer's allowed (set by the engine) */
    JUDGE_DROP_BAD_PART,    /* an authentic part or part ACK that breaks the rules of parts */
    JUDGE_VERDICTS
};

#define JUDGE_TRIALS_MAX 4 /* keys tried on one version 1 datagram, whatever the caller passes */

/*
 * A key to try, and the replay cache of what it opened: replay, or if
 * made is not NULL the cache at *made, which is made (replay_new(made_max))
 * only once the key has opened a datagram, so that what does not
 * authenticate never costs memory.
 */
struct judge_key {
    const struct envelope_key *key;
    struct replay *replay; /* may be NULL (and made NULL): no replay check */
    struct replay **made;  /* not NULL: the cache is *made, replay is unused */
    size_t made_max;
};

struct judge_ctx {
    const struct judge_key *keys; /* version 1: tried in order; version 2: keys[0] only */
    int nkeys;
    int v2; /* the datagram is version 2 (envelope_v2_header accepted it, its key id known) */
    uint8_t *plain;    /* room for len bytes: the plaintext; NULL: opened in place (one key) */
    uint64_t now_ns;   /* CLOCK_REALTIME */
    uint64_t window_s; /* SECUREDGRAM_WINDOW */
};

/*
 * What an accepted datagram carries: msg, ours, ts_ns and key_index for every
 * accepted verdict (for a part or part ACK, msg.id is its id in hex and
 * msg.kind MESSAGE_DATA or MESSAGE_ACK); the rest as marked. Pointers point
 * into cx->plain, or the datagram buffer.
 */
struct judgement {
    struct message_in msg;
    int ours; /* sealed by this process (envelope_is_marked): the caller accepts it only if
                 it sent the message to itself; always 0 for version 2 (a direction key
                 does not open what it sealed) */
    uint64_t ts_ns;
    const char *json; /* JUDGE_MESSAGE, JUDGE_ACK (NULL for the others) */
    size_t json_len;
    int key_index; /* which of cx->keys opened it (-1: none) */
    /* JUDGE_PART: its header, and its data bytes (part_parse checked their length) */
    struct part_header part;
    const uint8_t *part_data;
    size_t part_data_len;
    /* JUDGE_PART and JUDGE_PART_ACK: the message id as bytes */
    uint8_t part_id[PART_ID_BYTES];
    /* JUDGE_PART_ACK: the message's length and the ranges held (copied: big-endian on the wire) */
    uint32_t ack_length;
    int nranges;
    struct part_range ranges[PART_ACK_RANGES_MAX];
};

/*
 * Judges one datagram. Without cx->plain, buf is opened in place (its
 * plaintext overwrites the ciphertext, and a failed open may zero it), so it
 * is changed whatever the verdict, and only keys[0] is tried. *out is set
 * only for JUDGE_MESSAGE, JUDGE_ACK, JUDGE_PART and JUDGE_PART_ACK, but for
 * out->key_index: the key that opened it, whatever the verdict, or -1 if none
 * did. A version 2 datagram is judged by its type (buf[1], authenticated with
 * the rest): 0x01 as JSON, 0x02 a part, 0x03 a part ACK. *trials (may be NULL) is set to the
 * number of keys tried, for the trial counter.
 */
__attribute__((warn_unused_result)) enum judge_verdict judge_datagram(const struct judge_ctx *cx,
                                                                      uint8_t *buf, size_t len,
                                                                      struct judgement *out,
                                                                      int *trials);

/* Why a datagram was dropped, for the log ("shorter than 28 bytes", ...). */
const char *judge_reason(enum judge_verdict v);

/* The counter name of a verdict ("short", "auth", ...). */
const char *judge_name(enum judge_verdict v);

#endif
