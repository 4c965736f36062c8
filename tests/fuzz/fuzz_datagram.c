/*
 * Datagram handling from bytes to the daemon's decision (judge_datagram): with
 * the real key (seeded with valid sealed messages), and, built with
 * -DSG_FUZZ_NO_AUTH, with authentication skipped so the parser behind it is reached.
 */
#include "fuzz_common.h"
#include "wire/judge.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct envelope_key *key;
static struct replay *replay;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (key == NULL) {
        if (envelope_init() != 0 || (key = envelope_key_from_hex(FUZZ_KEY)) == NULL ||
            (replay = replay_new(4096)) == NULL)
            abort();
    }
    if (size > ENVELOPE_MAX_DATAGRAM) /* the receive path drops these before judging */
        return 0;
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    /* Half the inputs skip the replay cache, or repeated nonces would hide the parser. */
    struct judge_ctx cx = {key, FUZZ_NOW_NS, 10, size % 2 ? replay : NULL};
    struct judgement j;
    enum judge_verdict v = judge_datagram(&cx, buf, size, &j);
    if (v >= JUDGE_VERDICTS)
        abort();
    if (v == JUDGE_MESSAGE || v == JUDGE_ACK) {
        /* What the engine relies on: a valid id, and JSON inside the datagram. */
        if (!message_id_valid(j.msg.id) || j.json < (const char *)buf ||
            j.json + j.json_len > (const char *)buf + size)
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
