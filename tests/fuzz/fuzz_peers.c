/* The peers file parser, on any bytes: accepted or refused with one line, never a crash or a leak.
 */
#include "conf/peers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct peers_conf pc;
    char err[512];
    if (peers_parse((const char *)data, size, "peers.conf", &pc, err, sizeof err) != 0) {
        if (strlen(err) == 0 || strchr(err, '\n') != NULL || pc.n != 0)
            abort(); /* one line that says why, and nothing kept */
        return 0;
    }
    for (int i = 0; i < pc.n; i++) {
        const struct peer_conf *p = &pc.peer[i];
        if (!peers_name_valid(p->name) || p->nallowed < 1 || p->nallowed > PEER_ALLOWED_MAX ||
            (p->wire != 1 && p->wire != 2) || peers_find(&pc, p->name) != p)
            abort(); /* what was accepted keeps the file's rules */
    }
    peers_free(&pc);
    return 0;
}
