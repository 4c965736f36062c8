/*
 * rowcopy: an outbound row copied out of a store query. Rows are copied
 * before anything is written: a statement must not write to the table while
 * another statement of the connection is still stepping through it, and
 * the store's rows are valid only inside its callback. This file goes away
 * once the store hands out rows the caller owns.
 */
#ifndef SG_ROWCOPY_H
#define SG_ROWCOPY_H

#include "store/store.h"

struct rowcopy {
    struct store_outbound_row r; /* its strings point to the copies below */
    char *id, *dst, *port, *payload;
};

/*
 * Copies row into c (message_id up to 64 bytes, dst_addr up to NET_HOST_MAX,
 * dst_port_text up to 32, and the payload, NUL-terminated, if the row has
 * one). Returns 0, or -1 if out of memory (c is then empty).
 */
int rowcopy_take(struct rowcopy *c, const struct store_outbound_row *row);

/* Frees the copies and empties c. An empty (zeroed) c is fine. */
void rowcopy_clear(struct rowcopy *c);

#endif
