#include "wire/judge.h"

#include <string.h>

static const struct {
    const char *name, *reason;
} verdicts[JUDGE_VERDICTS] = {
    [JUDGE_MESSAGE] = {"message", "a message"},
    [JUDGE_ACK] = {"ack", "an acknowledgement"},
    [JUDGE_PART] = {"part", "a message part"},
    [JUDGE_PART_ACK] = {"part_ack", "a part acknowledgement"},
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
    [JUDGE_DROP_UNKNOWN_KEY] = {"unknown_key", "version 2 with a key id of no peer (not opened)"},
    [JUDGE_DROP_NOT_ALLOWED] = {"not_allowed",
                                "authentic, but from outside its peer's allowed networks"},
    [JUDGE_DROP_BAD_PART] = {"bad_part", "a malformed message part"},
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
/* Fuzzing build only: takes the bytes after the nonce (or header) as the plaintext, so the
 * fuzzer reaches the parser. */
static enum envelope_result open_datagram(const struct envelope_key *key, int v2, uint8_t *buf,
                                          size_t len, uint8_t *plain, uint64_t *ts,
                                          const char **json, size_t *json_len)
{
    (void)key;
    size_t head = v2 ? ENVELOPE_V2_HEADER_BYTES : ENVELOPE_NONCE_BYTES;
    if (len < head + ENVELOPE_TAG_BYTES || len > ENVELOPE_MAX_DATAGRAM)
        return ENVELOPE_SHORT;
    size_t mlen = len - head - ENVELOPE_TAG_BYTES;
    if (mlen < ENVELOPE_TS_BYTES)
        return ENVELOPE_MALFORMED;
    const uint8_t *p = buf + head;
    if (plain != NULL) {
        memcpy(plain, p, mlen);
        p = plain;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    *ts = v;
    *json = (const char *)p + ENVELOPE_TS_BYTES;
    *json_len = mlen - ENVELOPE_TS_BYTES;
    return ENVELOPE_OK;
}
#else
static enum envelope_result open_datagram(const struct envelope_key *key, int v2, uint8_t *buf,
                                          size_t len, uint8_t *plain, uint64_t *ts,
                                          const char **json, size_t *json_len)
{
    if (!v2)
        return envelope_open(key, buf, len, plain != NULL ? plain : buf + ENVELOPE_NONCE_BYTES, ts,
                             json, json_len);
    const uint8_t *body = NULL;
    /* in place, the header (the additional data, and the nonce the replay check reads) stays */
    enum envelope_result r = envelope_v2_open(
        key, buf, len, plain != NULL ? plain : buf + ENVELOPE_V2_HEADER_BYTES, ts, &body, json_len);
    if (r == ENVELOPE_OK)
        *json = (const char *)body;
    return r;
}
#endif

/* A JSON body (version 1, version 2 type 0x01): a message or an ACK. */
static enum judge_verdict judge_json(const char *json, size_t json_len, struct judgement *out)
{
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
    out->json = json;
    out->json_len = json_len;
    out->part_data = NULL;
    out->part_data_len = 0;
    out->nranges = 0;
    return msg.kind == MESSAGE_ACK ? JUDGE_ACK : JUDGE_MESSAGE;
}

/* A part's body (type 0x02). */
static enum judge_verdict judge_part(const uint8_t *body, size_t len, struct judgement *out)
{
    struct part_header h;
    const uint8_t *data = NULL;
    size_t data_len = 0;
    if (part_parse(body, len, &h, &data, &data_len) != 0)
        return JUDGE_DROP_BAD_PART;
    out->msg.kind = MESSAGE_DATA;
    part_id_to_hex(h.id, out->msg.id);
    out->json = NULL;
    out->json_len = 0;
    out->part = h;
    out->part_data = data;
    out->part_data_len = data_len;
    memcpy(out->part_id, h.id, PART_ID_BYTES);
    out->ack_length = 0;
    out->nranges = 0;
    return JUDGE_PART;
}

/* A part ACK's body (type 0x03). */
static enum judge_verdict judge_part_ack(const uint8_t *body, size_t len, struct judgement *out)
{
    uint8_t id[PART_ID_BYTES];
    uint32_t length = 0;
    struct part_range r[PART_ACK_RANGES_MAX];
    int n = 0;
    if (part_ack_parse(body, len, id, &length, r, PART_ACK_RANGES_MAX, &n) != 0)
        return JUDGE_DROP_BAD_PART;
    out->msg.kind = MESSAGE_ACK;
    part_id_to_hex(id, out->msg.id);
    out->json = NULL;
    out->json_len = 0;
    out->part_data = NULL;
    out->part_data_len = 0;
    memcpy(out->part_id, id, PART_ID_BYTES);
    out->ack_length = length;
    out->nranges = n;
    memcpy(out->ranges, r, (size_t)n * sizeof r[0]);
    return JUDGE_PART_ACK;
}

enum judge_verdict judge_datagram(const struct judge_ctx *cx, uint8_t *buf, size_t len,
                                  struct judgement *out, int *trials)
{
    uint64_t ts = 0;
    const char *json = NULL;
    size_t json_len = 0;
    int n = cx->nkeys < JUDGE_TRIALS_MAX ? cx->nkeys : JUDGE_TRIALS_MAX, k = 0;
    if (cx->v2 || cx->plain == NULL)
        n = n < 1 ? n : 1; /* one key: its id named it, or the datagram is opened in place */
    enum envelope_result r = ENVELOPE_AUTH;
    if (trials != NULL)
        *trials = 0;
    out->key_index = -1;
    if (len < (cx->v2 ? ENVELOPE_V2_OVERHEAD : ENVELOPE_MIN_DATAGRAM) ||
        len > ENVELOPE_MAX_DATAGRAM)
        return JUDGE_DROP_SHORT;
    for (; k < n; k++) {
        r = open_datagram(cx->keys[k].key, cx->v2, buf, len, cx->plain, &ts, &json, &json_len);
        if (trials != NULL)
            *trials = k + 1;
        if (r != ENVELOPE_AUTH)
            break;
    }
    switch (r) {
    case ENVELOPE_OK:
        out->key_index = k;
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
    /* version 2's nonce follows the version, type and key id; its first 12 bytes are random too */
    const uint8_t *nonce = cx->v2 ? buf + 4 + ENVELOPE_V2_ID_BYTES : buf;
    const struct judge_key *jk = &cx->keys[k];
    struct replay *rp = jk->replay;
    if (jk->made != NULL) {
        if (*jk->made == NULL && (*jk->made = replay_new(jk->made_max)) == NULL)
            return JUDGE_DROP_REPLAY_FULL;
        rp = *jk->made;
    }
    switch (rp != NULL ? replay_check(rp, nonce, ts, cx->window_s) : REPLAY_NEW) {
    case REPLAY_NEW:
        break;
    case REPLAY_SEEN:
        return JUDGE_DROP_REPLAY;
    case REPLAY_STALE:
        return JUDGE_DROP_STALE;
    default:
        return JUDGE_DROP_REPLAY_FULL;
    }
    /* the type is authenticated now (it is in the additional data) */
    enum judge_verdict v;
    switch (cx->v2 ? buf[1] : ENVELOPE_V2_TYPE_MESSAGE) {
    case ENVELOPE_V2_TYPE_MESSAGE:
        v = judge_json(json, json_len, out);
        break;
    case ENVELOPE_V2_TYPE_PART:
        v = judge_part((const uint8_t *)json, json_len, out);
        break;
    case ENVELOPE_V2_TYPE_PART_ACK:
        v = judge_part_ack((const uint8_t *)json, json_len, out);
        break;
    default: /* only if the caller skipped envelope_v2_header, which refuses other types */
        return JUDGE_DROP_MALFORMED;
    }
    if (v < JUDGE_DROP_SHORT) {
        out->ours = !cx->v2 && envelope_is_marked(buf, ts);
        out->ts_ns = ts;
    }
    return v;
}
