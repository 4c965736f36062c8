/* judge: every check of a received datagram, in order, with real sealed datagrams. */
#include "judge.h"

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
    struct judge_ctx cx = {k, NOW, 10, rp, 1000};
    enum judge_verdict v = judge_datagram(&cx, buf, n, j);
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
    struct judge_ctx cx = {k, NOW, 10, NULL, 0};
    uint8_t junk[100] = {0};
    assert_int_equal(judge_datagram(&cx, junk, 27, &j), JUDGE_DROP_SHORT);
    assert_int_equal(judge_datagram(&cx, junk, 100, &j), JUDGE_DROP_AUTH);
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
    struct judge_ctx cx = {k, NOW, 10, rp, 5000};
    struct judgement j;
    memcpy(copy, sealed, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j), JUDGE_MESSAGE);
    memcpy(copy, sealed, n);
    assert_int_equal(judge_datagram(&cx, copy, n, &j), JUDGE_DROP_REPLAY);
    n = envelope_seal(k, NOW, json, strlen(json), sealed, sizeof sealed);
    assert_int_equal(judge_datagram(&cx, sealed, n, &j), JUDGE_MESSAGE);
    envelope_key_free(k);
    replay_free(rp);
}

int main(void)
{
    assert_int_equal(envelope_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_and_ack),
        cmocka_unit_test(test_drops),
        cmocka_unit_test(test_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
