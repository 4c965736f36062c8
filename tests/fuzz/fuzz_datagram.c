/*
 * Datagram handling from bytes to the daemon's decision (judge_datagram): with
 * the real key (seeded with valid sealed messages), and, built with
 * -DSG_FUZZ_NO_AUTH, with authentication skipped so the parser behind it is reached.
 * An input that starts as a version 2 header is judged as version 2; a third of
 * the others are tried against three keys (the real one last), as candidates of
 * the peers file are, opened into a scratch buffer.
 */
#include "wire/envelope_v2.h"
#include "fuzz_common.h"
#include "wire/judge.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct envelope_key *key, *other;
static struct replay *replay;
static uint8_t plain[ENVELOPE_MAX_DATAGRAM];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (key == NULL) {
        uint8_t raw[ENVELOPE_KEY_BYTES] = {1};
        if (envelope_init() != 0 || (key = envelope_key_from_hex(FUZZ_KEY)) == NULL ||
            (other = envelope_key_from_bytes(raw)) == NULL || (replay = replay_new(4096)) == NULL)
            abort();
    }
    if (size > ENVELOPE_MAX_DATAGRAM) /* the receive path drops these before judging */
        return 0;
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    /* Half the inputs skip the replay cache, or repeated nonces would hide the parser. */
    struct replay *rp = size % 2 ? replay : NULL;
    struct judge_key one = {key, rp, NULL, 0}, three[3] = {{other, NULL, NULL, 0},
                                                           {other, NULL, NULL, 0},
                                                           {key, rp, NULL, 0}};
    struct envelope_v2_header h;
    int v2 = envelope_v2_header(buf, size, &h) == 0, many = !v2 && size % 3 == 0;
    struct judge_ctx cx = {many ? three : &one,       many ? 3 : 1, v2,
                           v2 || many ? plain : NULL, FUZZ_NOW_NS,  10};
    struct judgement j;
    int trials = -1;
    enum judge_verdict v = judge_datagram(&cx, buf, size, &j, &trials);
    if (v >= JUDGE_VERDICTS || trials < 0 || trials > cx.nkeys)
        abort();
    const uint8_t *lo = cx.plain != NULL ? plain : buf;
    size_t room = cx.plain != NULL ? sizeof plain : size;
    if (v == JUDGE_MESSAGE || v == JUDGE_ACK) {
        /* What the engine relies on: a valid id, and JSON inside the datagram. */
        if (!message_id_valid(j.msg.id) || j.json < (const char *)lo ||
            j.json + j.json_len > (const char *)lo + room || j.json_len > size)
            abort();
        char ack[MESSAGE_ACK_MAX];
        struct message_in again;
        size_t n = message_ack_text(j.msg.id, ack);
        if (message_classify(ack, n, &again) != MESSAGE_VALID || again.kind != MESSAGE_ACK)
            abort();
    }
    free(buf);
    return 0;
}
