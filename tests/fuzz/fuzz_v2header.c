/*
 * Version 2 datagrams, on any bytes: the clear header is read without crypto
 * and refuses what it must (another version, reserved bits, a type other than
 * a message, a part or a part ACK); a datagram it accepts is opened with a fixed key
 * (and almost always fails to authenticate), never read out of bounds.
 */
#include "wire/envelope_v2.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct envelope_key *key;
static uint8_t plain[ENVELOPE_MAX_DATAGRAM + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (key == NULL) {
        uint8_t k[ENVELOPE_KEY_BYTES];
        memset(k, 0x5a, sizeof k);
        if (envelope_init() != 0 || (key = envelope_key_from_bytes(k)) == NULL)
            abort();
    }
    struct envelope_v2_header h;
    if (envelope_v2_header(data, size, &h) != 0)
        return 0;
    if (size < ENVELOPE_V2_OVERHEAD || data[0] != ENVELOPE_V2_VERSION || data[2] || data[3] ||
        (data[1] != ENVELOPE_V2_TYPE_MESSAGE && data[1] != ENVELOPE_V2_TYPE_PART &&
         data[1] != ENVELOPE_V2_TYPE_PART_ACK) ||
        h.type != data[1] || memcmp(h.key_id, data + 4, ENVELOPE_V2_ID_BYTES) != 0)
        abort(); /* accepted what it must refuse, or misread the id */
    uint64_t ts = 0;
    const uint8_t *body = NULL;
    size_t len = 0;
    if (envelope_v2_open(key, data, size, plain, &ts, &body, &len) == ENVELOPE_OK &&
        (body != plain + ENVELOPE_TS_BYTES || len != size - ENVELOPE_V2_OVERHEAD))
        abort();
    return 0;
}
