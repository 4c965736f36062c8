/*
 * judge: from the bytes of one received datagram to what the daemon does with
 * it, every check in order: length, authenticity (ChaCha20-Poly1305), the
 * timestamp window, replay, JSON object, message_id; and whether we sealed
 * it ourselves. Pure apart from the
 * replay cache it updates; the caller passes the clock. The fuzzers drive
 * exactly this function.
 */
#ifndef SG_JUDGE_H
#define SG_JUDGE_H

#include "wire/envelope.h"
#include "wire/message.h"
#include "wire/replay.h"

#include <stddef.h>
#include <stdint.h>

enum judge_verdict {
    JUDGE_MESSAGE,          /* store it, then ACK it */
    JUDGE_ACK,              /* an acknowledgement of one of ours */
    JUDGE_DROP_SHORT,       /* under 28 bytes (or over the maximum) */
    JUDGE_DROP_AUTH,        /* does not authenticate */
    JUDGE_DROP_MALFORMED,   /* authentic, but no room for the timestamp */
    JUDGE_DROP_STALE,       /* timestamp outside the window (or below the replay floor) */
    JUDGE_DROP_REFLECTED,   /* one of our own datagrams, sent back to us (set by the engine) */
    JUDGE_DROP_REPLAY,      /* this exact datagram was accepted before */
    JUDGE_DROP_REPLAY_FULL, /* the replay cache has no room: refused for now */
    JUDGE_DROP_JSON,        /* not a JSON object */
    JUDGE_DROP_BAD_ID,      /* message_id missing or not 24 lowercase hex */
    JUDGE_VERDICTS
};

struct judge_ctx {
    const struct envelope_key *key;
    uint64_t now_ns;       /* CLOCK_REALTIME */
    uint64_t window_s;     /* SECUREDGRAM_WINDOW */
    struct replay *replay; /* may be NULL: no replay check */
};

/* What an accepted datagram carries (valid for JUDGE_MESSAGE and JUDGE_ACK). */
struct judgement {
    struct message_in msg;
    int ours; /* sealed by this process (envelope_is_marked): the caller accepts it only if
                 it sent the message to itself */
    uint64_t ts_ns;
    const char *json; /* points into the datagram buffer */
    size_t json_len;
};

/*
 * Judges one datagram. buf is opened in place (its plaintext overwrites the
 * ciphertext), so it is changed whatever the verdict. *out is set only for
 * JUDGE_MESSAGE and JUDGE_ACK.
 */
__attribute__((warn_unused_result)) enum judge_verdict
judge_datagram(const struct judge_ctx *cx, uint8_t *buf, size_t len, struct judgement *out);

/* Why a datagram was dropped, for the log ("shorter than 28 bytes", ...). */
const char *judge_reason(enum judge_verdict v);

/* The counter name of a verdict ("short", "auth", ...). */
const char *judge_name(enum judge_verdict v);

#endif
