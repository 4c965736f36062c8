/*
 * The outbound rules (message_prepare) on any payload and row message_id:
 * whatever it accepts must be a JSON object that carries the chosen id.
 */
#include "wire/message.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* First byte: 0 = the row has no message_id, else the next 24 bytes are it. */
    char row_id[MESSAGE_ID_LEN + 1];
    const char *rid = NULL;
    if (size < 1)
        return 0;
    if (data[0] != 0) {
        if (size < 1 + MESSAGE_ID_LEN)
            return 0;
        memcpy(row_id, data + 1, MESSAGE_ID_LEN);
        row_id[MESSAGE_ID_LEN] = '\0';
        rid = row_id;
        data += MESSAGE_ID_LEN;
        size -= MESSAGE_ID_LEN;
    }
    data++;
    size--;
    struct message_out m;
    char err[256];
    if (message_prepare((const char *)data, size, rid, &m, err, sizeof err) != 0) {
        if (strlen(err) == 0)
            abort(); /* a refusal always says why */
        return 0;
    }
    struct message_in in;
    if (message_classify(m.payload, m.payload_len, &in) != MESSAGE_VALID ||
        in.kind != MESSAGE_DATA || strcmp(in.id, m.id) != 0 || !message_id_valid(m.id) ||
        (rid != NULL && strcmp(rid, m.id) != 0))
        abort();
    message_out_clear(&m);
    return 0;
}
