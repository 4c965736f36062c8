/* judge: every check of a received datagram, in order, with real sealed datagrams. */
#include "wire/judge.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define NOW 1800000000000000000ULL /* ns */
#define ID "0123456789abcdef01234567"

static const char *KEY = "0793ad72ad74d74fd59403ddbbbcab8a466213935c2b7d8ff9f676b2cc7e3e36";

static enum judge_verdict judge_json(const char *json, uint64_t ts, struct replay *rp,
                                     struct judgement *j)
{
    static uint8_t buf[ENVELOPE_MAX_DATAGRAM + 1];
    struct envelope_key *k = envelope_key_from_hex(KEY);
    size_t n = envelope_seal(k, ts, json, strlen(json), buf, sizeof buf);
    assert_true(n > 0);
    struct judge_key jk = {k, rp, NULL, 0};
    struct judge_ctx cx = {&jk, 1, 0, NULL, NOW, 10};
    enum judge_verdict v = judge_datagram(&cx, buf, n, j, NULL);
    envelope_key_free(k);
    return v;
}

static void test_message_and_ack(void **state)
{
    (void)state;
    struct judgement j;
    assert_int_equal(judge_json("{\"message_id\":\"" ID "\",\"x\":1}", NOW, NULL, &j),
                     JUDGE_MESSAGE);
    assert_string_equal(j.msg.id, ID);
    assert_int_equal(j.ts_ns, NOW);
    assert_int_equal(j.json_len, strlen("{\"message_id\":\"" ID "\",\"x\":1}"));
    assert_memory_equal(j.json, "{\"message_id\"", 13);
    assert_int_equal(judge_json("{\"type\":\"ACK\",\"message_id\":\"" ID "\"}", NOW, NULL, &j),
                     JUDGE_ACK);
}

static void test_drops(void **state)
{
    (void)state;
    struct judgement j;
    assert_int_equal(judge_json("{\"message_id\":\"" ID "\"}", NOW - 11000000000ULL, NULL, &j),
                     JUDGE_DROP_STALE);
    assert_int_equal(judge_json("{\"message_id\":\"" ID "\"}", NOW + 11000000000ULL, NULL, &j),
                     JUDGE_DROP_STALE);
    assert_int_equal(judge_json("[1,2]", NOW, NULL, &j), JUDGE_DROP_JSON);
    assert_int_equal(judge_json("", NOW, NULL, &j), JUDGE_DROP_JSON);
    assert_int_equal(judge_json("{\"message_id\":\"ABC\"}", NOW, NULL, &j), JUDGE_DROP_BAD_ID);

    struct envelope_key *k = envelope_key_from_hex(KEY);
    struct judge_key jk = {k, NULL, NULL, 0};
    struct judge_ctx cx = {&jk, 1, 0, NULL, NOW, 10};
    uint8_t junk[100] = {0};
    assert_int_equal(judge_datagram(&cx, junk, 27, &j, NULL), JUDGE_DROP_SHORT);
    assert_int_equal(judge_datagram(&cx, junk, 100, &j, NULL), JUDGE_DROP_AUTH);
    envelope_key_free(k);
    assert_string_equal(judge_name(JUDGE_DROP_REPLAY), "replay");
    assert_non_null(strstr(judge_reason(JUDGE_DROP_SHORT), "28"));
}

/* The same bytes twice: the second is a replay; sealed again (new nonce) it is not. */
static void test_replay(void **state)
{
    (void)state;
    struct replay *rp = replay_new(64);
    struct envelope_key *k = envelope_key_from_hex(KEY);
    const char *json = "{\"message_id\":\"" ID "\"}";
    uint8_t sealed[128], copy[128];
    size_t n = envelope_seal(k, NOW, json, strlen(json), sealed, sizeof sealed);
    struct judge_key jk = {k, rp, NULL, 0};
    struct judge_ctx cx = {&jk, 1, 0, NULL, NOW, 10};
    struct judgement j;
    memcpy(copy, sealed, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j, NULL), JUDGE_MESSAGE);
    memcpy(copy, sealed, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j, NULL), JUDGE_DROP_REPLAY);
    n = envelope_seal(k, NOW, json, strlen(json), sealed, sizeof sealed);
    assert_int_equal(judge_datagram(&cx, sealed, n, &j, NULL), JUDGE_MESSAGE);
    envelope_key_free(k);
    replay_free(rp);
}

/*
 * A key whose cache is made on demand: datagrams that do not authenticate
 * (forgeries, or another key's) leave it unmade, so they cost no memory; the
 * first that opens makes it, and it then catches a replay.
 */
static void test_replay_made_after_auth(void **state)
{
    (void)state;
    struct envelope_key *k = envelope_key_from_hex(KEY);
    struct envelope_key *other = envelope_key_from_hex(ID ID "0123456789abcdef");
    assert_non_null(other);
    const char *json = "{\"message_id\":\"" ID "\"}";
    uint8_t sealed[128], copy[128];
    struct replay *made = NULL;
    struct judge_key jk = {k, NULL, &made, 64};
    struct judge_ctx cx = {&jk, 1, 0, NULL, NOW, 10};
    struct judgement j;
    size_t n = envelope_seal(other, NOW, json, strlen(json), sealed, sizeof sealed);
    assert_int_equal(judge_datagram(&cx, sealed, n, &j, NULL), JUDGE_DROP_AUTH);
    uint8_t junk[100] = {0};
    assert_int_equal(judge_datagram(&cx, junk, sizeof junk, &j, NULL), JUDGE_DROP_AUTH);
    assert_null(made);
    n = envelope_seal(k, NOW, json, strlen(json), sealed, sizeof sealed);
    memcpy(copy, sealed, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j, NULL), JUDGE_MESSAGE);
    assert_non_null(made);
    assert_int_equal(replay_count(made), 1);
    memcpy(copy, sealed, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j, NULL), JUDGE_DROP_REPLAY);
    replay_free(made);
    envelope_key_free(other);
    envelope_key_free(k);
}

/*
 * A datagram we sealed ourselves, sent back to us (a message or an ACK), is
 * known for ours however fresh (the engine refuses it unless it was sent to
 * ourselves); a peer's is not. The mark keeps the timestamp within 2^24 ns of
 * the time it was sealed.
 */
static void test_reflected(void **state)
{
    (void)state;
    struct envelope_key *k = envelope_key_from_hex(KEY);
    const char *msgs[] = {"{\"message_id\":\"" ID "\"}",
                          "{\"type\":\"ACK\",\"message_id\":\"" ID "\"}"};
    for (int i = 0; i < 2; i++) {
        uint8_t buf[128];
        size_t n = envelope_seal_marked(k, NOW, msgs[i], strlen(msgs[i]), buf, sizeof buf);
        assert_true(n > 0);
        struct judge_key jk = {k, NULL, NULL, 0};
        struct judge_ctx cx = {&jk, 1, 0, NULL, NOW, 10};
        struct judgement j;
        assert_int_equal(judge_datagram(&cx, buf, n, &j, NULL), i == 0 ? JUDGE_MESSAGE : JUDGE_ACK);
        assert_int_equal(j.ours, 1);
        /* the timestamp it carries is the sealing time, give or take the mark */
        uint64_t ts;
        const char *json;
        size_t len;
        n = envelope_seal_marked(k, NOW, msgs[i], strlen(msgs[i]), buf, sizeof buf);
        uint8_t plain[128];
        assert_int_equal(envelope_open(k, buf, n, plain, &ts, &json, &len), ENVELOPE_OK);
        assert_true(ts >= NOW - (1u << ENVELOPE_MARK_BITS) &&
                    ts < NOW + (1u << ENVELOPE_MARK_BITS));
        /* sealed by a peer (no mark of ours), the same text is accepted */
        n = envelope_seal(k, NOW, msgs[i], strlen(msgs[i]), buf, sizeof buf);
        assert_int_equal(judge_datagram(&cx, buf, n, &j, NULL), i == 0 ? JUDGE_MESSAGE : JUDGE_ACK);
        assert_int_equal(j.ours, 0);
    }
    /* of 10,000 peer datagrams none is taken for ours by chance (1 in 2^24 each) */
    int marked = 0;
    for (int i = 0; i < 10000; i++) {
        uint8_t buf[128];
        size_t n = envelope_seal(k, NOW + (uint64_t)i, msgs[0], strlen(msgs[0]), buf, sizeof buf);
        marked += envelope_is_marked(buf, NOW + (uint64_t)i);
        assert_true(n > 0);
    }
    assert_int_equal(marked, 0);
    envelope_key_free(k);
}

/* A key of 32 bytes all equal to b. */
static struct envelope_key *key_of(uint8_t b)
{
    uint8_t raw[ENVELOPE_KEY_BYTES];
    memset(raw, b, sizeof raw);
    return envelope_key_from_bytes(raw);
}

/*
 * Version 1 candidates: the right key among wrong ones opens wherever it is
 * within the cap, and no more than JUDGE_TRIALS_MAX keys are ever tried, so a
 * datagram that opens under none costs at most that many opens.
 */
static void test_trial_cap(void **state)
{
    (void)state;
    const char *json = "{\"message_id\":\"" ID "\"}";
    struct envelope_key *keys[8];
    struct judge_key jk[8];
    for (int i = 0; i < 8; i++) {
        keys[i] = key_of((uint8_t)(i + 1));
        jk[i] = (struct judge_key){keys[i], NULL, NULL, 0};
    }
    static uint8_t buf[256], plain[256];
    for (int right = 0; right < 8; right++) {
        size_t n = envelope_seal(keys[right], NOW, json, strlen(json), buf, sizeof buf);
        struct judge_ctx cx = {jk, 8, 0, plain, NOW, 10};
        struct judgement j;
        int trials = -1;
        enum judge_verdict v = judge_datagram(&cx, buf, n, &j, &trials);
        if (right < JUDGE_TRIALS_MAX) {
            assert_int_equal(v, JUDGE_MESSAGE);
            assert_int_equal(j.key_index, right);
            assert_int_equal(trials, right + 1);
            assert_string_equal(j.msg.id, ID);
        } else {
            assert_int_equal(v, JUDGE_DROP_AUTH);
            assert_int_equal(trials, JUDGE_TRIALS_MAX);
        }
    }
    /* no key at all: nothing is opened */
    struct judge_ctx none = {jk, 0, 0, plain, NOW, 10};
    struct judgement j;
    int trials = -1;
    assert_int_equal(judge_datagram(&none, buf, 100, &j, &trials), JUDGE_DROP_AUTH);
    assert_int_equal(trials, 0);
    for (int i = 0; i < 8; i++)
        envelope_key_free(keys[i]);
}

/* Version 2: one key, the header authenticated, the replay cache of that key, never "ours". */
static void test_v2(void **state)
{
    (void)state;
    const char *json = "{\"message_id\":\"" ID "\",\"v\":2}";
    struct envelope_key *k = key_of(7), *other = key_of(8);
    uint8_t id[ENVELOPE_V2_ID_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};
    static uint8_t buf[256], copy[256], plain[256];
    size_t n =
        envelope_v2_seal(k, id, ENVELOPE_V2_TYPE_MESSAGE, NOW, json, strlen(json), buf, sizeof buf);
    assert_true(n > 0);
    struct replay *rp = replay_new(16);
    struct judge_key jk[2] = {{k, rp, NULL, 0}, {other, NULL, NULL, 0}};
    struct judge_ctx cx = {jk, 2, 1, plain, NOW, 10};
    struct judgement j;
    int trials = 0;
    memcpy(copy, buf, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j, &trials), JUDGE_MESSAGE);
    assert_int_equal(trials, 1);
    assert_int_equal(j.ours, 0);
    assert_int_equal(j.json_len, strlen(json));
    assert_memory_equal(j.json, json, j.json_len);
    memcpy(copy, buf, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j, NULL), JUDGE_DROP_REPLAY);
    /* a changed header byte (the key id) does not authenticate */
    memcpy(copy, buf, n);
    copy[5] ^= 1;
    assert_int_equal(judge_datagram(&cx, copy, n, &j, NULL), JUDGE_DROP_AUTH);
    /* the wrong key, even with room for more, is the only one tried */
    struct judge_ctx wrong = {jk + 1, 1, 1, plain, NOW, 10};
    memcpy(copy, buf, n);
    assert_int_equal(judge_datagram(&wrong, copy, n, &j, &trials), JUDGE_DROP_AUTH);
    assert_int_equal(trials, 1);
    assert_int_equal(judge_datagram(&cx, copy, ENVELOPE_V2_OVERHEAD - 1, &j, NULL),
                     JUDGE_DROP_SHORT);
    replay_free(rp);
    envelope_key_free(k);
    envelope_key_free(other);
}

/*
 * Version 2 parts and part ACKs: judged by their type, with the checks of
 * every datagram first (authentic, fresh, not replayed), then the rules of
 * parts; opened into plain or in place alike.
 */
static void test_v2_parts(void **state)
{
    (void)state;
    struct envelope_key *k = key_of(9);
    uint8_t id[ENVELOPE_V2_ID_BYTES] = {8, 7, 6, 5, 4, 3, 2, 1};
    static uint8_t body[600], buf[700], copy[700], plain[700], data[188];
    struct part_header h = {.sequence = 3, .length = 700, .part_size = 256, .index = 2};
    assert_int_equal(part_id_from_hex(ID, h.id), 0);
    memset(data, 'p', sizeof data);
    size_t bl = part_write(&h, data, sizeof data, body, sizeof body);
    assert_int_equal(bl, PART_HEADER_BYTES + 188);
    size_t n = envelope_v2_seal(k, id, ENVELOPE_V2_TYPE_PART, NOW, body, bl, buf, sizeof buf);
    struct replay *rp = replay_new(16);
    struct judge_key jk = {k, rp, NULL, 0};
    struct judge_ctx cx = {&jk, 1, 1, plain, NOW, 10};
    struct judgement j;
    memcpy(copy, buf, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j, NULL), JUDGE_PART);
    assert_string_equal(j.msg.id, ID);
    assert_true(j.part.sequence == 3 && j.part.length == 700 && j.part.part_size == 256 &&
                j.part.index == 2);
    assert_int_equal(j.part_data_len, 188);
    assert_true(j.part_data == plain + ENVELOPE_TS_BYTES + PART_HEADER_BYTES);
    assert_int_equal(j.ours, 0);
    assert_null(j.json);
    memcpy(copy, buf, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j, NULL), JUDGE_DROP_REPLAY);
    /* in place (no plain): the data points into the datagram */
    struct judge_ctx inplace = {&jk, 1, 1, NULL, NOW, 10};
    n = envelope_v2_seal(k, id, ENVELOPE_V2_TYPE_PART, NOW, body, bl, buf, sizeof buf);
    assert_int_equal(judge_datagram(&inplace, buf, n, &j, NULL), JUDGE_PART);
    assert_true(j.part_data ==
                buf + ENVELOPE_V2_HEADER_BYTES + ENVELOPE_TS_BYTES + PART_HEADER_BYTES);
    assert_memory_equal(j.part_data, data, sizeof data);
    /* stale before the rules of parts */
    n = envelope_v2_seal(k, id, ENVELOPE_V2_TYPE_PART, NOW - 11000000000ULL, body, bl, buf,
                         sizeof buf);
    assert_int_equal(judge_datagram(&cx, buf, n, &j, NULL), JUDGE_DROP_STALE);
    /* one byte of data too few: authentic, but a bad part, and the key that opened it known */
    n = envelope_v2_seal(k, id, ENVELOPE_V2_TYPE_PART, NOW, body, bl - 1, buf, sizeof buf);
    j.key_index = 5;
    assert_int_equal(judge_datagram(&cx, buf, n, &j, NULL), JUDGE_DROP_BAD_PART);
    assert_int_equal(j.key_index, 0);
    /* a part ACK */
    struct part_range r[2] = {{0, 0}, {2, 2}};
    uint8_t pid[PART_ID_BYTES];
    assert_int_equal(part_id_from_hex(ID, pid), 0);
    bl = part_ack_write(pid, 700, r, 2, body, sizeof body);
    n = envelope_v2_seal(k, id, ENVELOPE_V2_TYPE_PART_ACK, NOW, body, bl, buf, sizeof buf);
    assert_int_equal(judge_datagram(&cx, buf, n, &j, NULL), JUDGE_PART_ACK);
    assert_string_equal(j.msg.id, ID);
    assert_memory_equal(j.part_id, pid, PART_ID_BYTES);
    assert_int_equal(j.ack_length, 700);
    assert_int_equal(j.nranges, 2);
    assert_int_equal(j.ranges[1].first, 2);
    n = envelope_v2_seal(k, id, ENVELOPE_V2_TYPE_PART_ACK, NOW, body, bl + 1, buf, sizeof buf);
    assert_int_equal(judge_datagram(&cx, buf, n, &j, NULL), JUDGE_DROP_BAD_PART);
    /* a JSON message sealed as a part is a bad part; as type 0x01 a message, as before */
    const char *json = "{\"message_id\":\"" ID "\"}";
    n = envelope_v2_seal(k, id, ENVELOPE_V2_TYPE_PART, NOW, json, strlen(json), buf, sizeof buf);
    assert_int_equal(judge_datagram(&cx, buf, n, &j, NULL), JUDGE_DROP_BAD_PART);
    n = envelope_v2_seal(k, id, ENVELOPE_V2_TYPE_MESSAGE, NOW, json, strlen(json), buf, sizeof buf);
    assert_int_equal(judge_datagram(&inplace, buf, n, &j, NULL), JUDGE_MESSAGE);
    assert_int_equal(j.json_len, strlen(json));
    /* the names and reasons */
    assert_string_equal(judge_name(JUDGE_PART), "part");
    assert_string_equal(judge_name(JUDGE_PART_ACK), "part_ack");
    assert_string_equal(judge_name(JUDGE_DROP_BAD_PART), "bad_part");
    assert_string_equal(judge_reason(JUDGE_PART), "a message part");
    assert_string_equal(judge_reason(JUDGE_PART_ACK), "a part acknowledgement");
    assert_string_equal(judge_reason(JUDGE_DROP_BAD_PART), "a malformed message part");
    /* what is taken comes before the drops, and every verdict has a name */
    assert_true(JUDGE_PART < JUDGE_DROP_SHORT && JUDGE_PART_ACK < JUDGE_DROP_SHORT);
    assert_true(JUDGE_DROP_BAD_PART > JUDGE_DROP_SHORT);
    for (int v = 0; v < JUDGE_VERDICTS; v++)
        assert_string_not_equal(judge_name((enum judge_verdict)v), "?");
    replay_free(rp);
    envelope_key_free(k);
}

int main(void)
{
    assert_int_equal(envelope_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_and_ack),
        cmocka_unit_test(test_drops),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_replay_made_after_auth),
        cmocka_unit_test(test_reflected),
        cmocka_unit_test(test_trial_cap),
        cmocka_unit_test(test_v2),
        cmocka_unit_test(test_v2_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
