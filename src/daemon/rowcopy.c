/* rowcopy: outbound rows copied out of a store callback. */
#include "daemon/rowcopy.h"

#include "util/net.h"

#include <stdlib.h>
#include <string.h>

void rowcopy_clear(struct rowcopy *c)
{
    free(c->id);
    free(c->dst);
    free(c->port);
    free(c->payload);
    memset(c, 0, sizeof *c);
}

int rowcopy_take(struct rowcopy *c, const struct store_outbound_row *row)
{
    memset(c, 0, sizeof *c);
    c->r = *row;
    c->id = row->message_id != NULL ? strndup(row->message_id, 64) : NULL;
    c->dst = strndup(row->dst_addr, NET_HOST_MAX);
    c->port = strndup(row->dst_port_text != NULL ? row->dst_port_text : "", 32);
    if (row->payload != NULL && (c->payload = malloc(row->payload_len + 1)) != NULL) {
        memcpy(c->payload, row->payload, row->payload_len);
        c->payload[row->payload_len] = '\0';
    }
    if ((row->message_id != NULL && c->id == NULL) || c->dst == NULL || c->port == NULL ||
        (row->payload != NULL && c->payload == NULL)) {
        rowcopy_clear(c);
        return -1;
    }
    c->r.message_id = c->id;
    c->r.dst_addr = c->dst;
    c->r.dst_port_text = c->port;
    c->r.payload = c->payload;
    return 0;
}
