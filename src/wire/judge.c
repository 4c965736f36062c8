#include "wire/judge.h"

#include <string.h>

static const struct {
    const char *name, *reason;
} verdicts[JUDGE_VERDICTS] = {
    [JUDGE_MESSAGE] = {"message", "a message"},
    [JUDGE_ACK] = {"ack", "an acknowledgement"},
    [JUDGE_DROP_SHORT] = {"short", "shorter than 28 bytes"},
    [JUDGE_DROP_AUTH] = {"auth", "does not authenticate (wrong key or damaged)"},
    [JUDGE_DROP_MALFORMED] = {"malformed", "authentic but too short for a timestamp"},
    [JUDGE_DROP_STALE] = {"stale", "timestamp outside the window (clock skew or a late replay)"},
    [JUDGE_DROP_REFLECTED] = {"reflected", "one of our own datagrams sent back to us"},
    [JUDGE_DROP_REPLAY] = {"replay", "an exact replay of a datagram already accepted"},
    [JUDGE_DROP_REPLAY_FULL] = {"replay_full",
                                "the replay cache is full (more datagrams within the window "
                                "than it holds); the sender will retransmit"},
    [JUDGE_DROP_JSON] = {"json", "payload is not a JSON object"},
    [JUDGE_DROP_BAD_ID] = {"bad_id", "message_id missing or not 24 lowercase hex"},
};

const char *judge_reason(enum judge_verdict v)
{
    return v < JUDGE_VERDICTS ? verdicts[v].reason : "?";
}

const char *judge_name(enum judge_verdict v)
{
    return v < JUDGE_VERDICTS ? verdicts[v].name : "?";
}

#ifdef SG_FUZZ_NO_AUTH
/* Fuzzing build only: takes the bytes after the nonce as the plaintext, so the fuzzer reaches the
 * parser. */
static enum envelope_result open_datagram(const struct envelope_key *key, uint8_t *buf, size_t len,
                                          uint64_t *ts, const char **json, size_t *json_len)
{
    (void)key;
    if (len < ENVELOPE_MIN_DATAGRAM || len > ENVELOPE_MAX_DATAGRAM)
        return ENVELOPE_SHORT;
    size_t mlen = len - ENVELOPE_MIN_DATAGRAM;
    if (mlen < ENVELOPE_TS_BYTES)
        return ENVELOPE_MALFORMED;
    const uint8_t *p = buf + ENVELOPE_NONCE_BYTES;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    *ts = v;
    *json = (const char *)p + ENVELOPE_TS_BYTES;
    *json_len = mlen - ENVELOPE_TS_BYTES;
    return ENVELOPE_OK;
}
#else
static enum envelope_result open_datagram(const struct envelope_key *key, uint8_t *buf, size_t len,
                                          uint64_t *ts, const char **json, size_t *json_len)
{
    return envelope_open(key, buf, len, buf + ENVELOPE_NONCE_BYTES, ts, json, json_len);
}
#endif

enum judge_verdict judge_datagram(const struct judge_ctx *cx, uint8_t *buf, size_t len,
                                  struct judgement *out)
{
    uint64_t ts = 0;
    const char *json = NULL;
    size_t json_len = 0;
    switch (open_datagram(cx->key, buf, len, &ts, &json, &json_len)) {
    case ENVELOPE_OK:
        break;
    case ENVELOPE_SHORT:
        return JUDGE_DROP_SHORT;
    case ENVELOPE_AUTH:
        return JUDGE_DROP_AUTH;
    default:
        return JUDGE_DROP_MALFORMED;
    }
    if (!envelope_ts_fresh(ts, cx->now_ns, cx->window_s))
        return JUDGE_DROP_STALE;
    switch (cx->replay != NULL ? replay_check(cx->replay, buf, ts, cx->window_s) : REPLAY_NEW) {
    case REPLAY_NEW:
        break;
    case REPLAY_SEEN:
        return JUDGE_DROP_REPLAY;
    case REPLAY_STALE:
        return JUDGE_DROP_STALE;
    default:
        return JUDGE_DROP_REPLAY_FULL;
    }
    struct message_in msg;
    switch (message_classify(json, json_len, &msg)) {
    case MESSAGE_VALID:
        break;
    case MESSAGE_BAD_ID:
        return JUDGE_DROP_BAD_ID;
    default:
        return JUDGE_DROP_JSON;
    }
    out->msg = msg;
    out->ours = envelope_is_marked(buf, ts);
    out->ts_ns = ts;
    out->json = json;
    out->json_len = json_len;
    return msg.kind == MESSAGE_ACK ? JUDGE_ACK : JUDGE_MESSAGE;
}
