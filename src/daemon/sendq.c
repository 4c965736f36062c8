/*
 * sendq: this turn's sealed datagrams in one arena, and the sockets they
 * leave through.
 */
#include "daemon/sendq.h"

#include "daemon/sysio.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCK_BUF_BYTES (4 << 20)

/* 1 if fd is an IPv6 socket bound to the wildcard (it reaches IPv4 as well: not V6ONLY). */
static int dual_stack(int fd)
{
    struct net_addr any;
    struct sockaddr_in6 me;
    socklen_t len = sizeof me;
    if (net_addr_parse("::", 1, &any) != 0)
        return 0;
    return getsockname(fd, (struct sockaddr *)&me, &len) == 0 &&
           memcmp(&me.sin6_addr, &any.u.v6.sin6_addr, 16) == 0;
}

int sendq_init(struct sendq *q, int main_fd, const struct envelope_key *key, int cap,
               size_t arena_bytes)
{
    memset(q, 0, sizeof *q);
    for (int s = 0; s < SENDQ_SOCKS; s++)
        q->socks[s].fd = -1;
    q->socks[SENDQ_MAIN].fd = main_fd;
    q->socks[SENDQ_MAIN].af = net_family(main_fd);
    if (q->socks[SENDQ_MAIN].af == AF_INET6)
        q->socks[SENDQ_MAIN].dual = dual_stack(main_fd);
    q->key = key;
    q->cap = cap;
    q->arena_cap = arena_bytes;
    q->out = calloc((size_t)cap, sizeof *q->out);
    q->msg = calloc((size_t)cap, sizeof *q->msg);
    q->batch = calloc((size_t)cap, sizeof *q->batch);
    q->batch_index = calloc((size_t)cap, sizeof *q->batch_index);
    q->arena = malloc(arena_bytes);
    q->body = malloc(ENVELOPE_V2_MAX_BODY);
    return q->out != NULL && q->msg != NULL && q->batch != NULL && q->batch_index != NULL &&
                   q->arena != NULL && q->body != NULL
               ? 0
               : -1;
}

void sendq_fini(struct sendq *q)
{
    for (int s = 0; s < SENDQ_SOCKS; s++)
        if (q->socks[s].fd >= 0)
            close(q->socks[s].fd);
    free(q->out);
    free(q->msg);
    free(q->batch);
    free(q->batch_index);
    free(q->arena);
    free(q->body);
    memset(q, 0, sizeof *q);
    for (int s = 0; s < SENDQ_SOCKS; s++)
        q->socks[s].fd = -1;
}

int sendq_route(struct sendq *q, const struct net_addr *dst, struct net_addr *out, char *err,
                size_t errlen)
{
    int af = dst->u.sa.sa_family;
    if (af == q->socks[SENDQ_MAIN].af || (q->socks[SENDQ_MAIN].dual && af == AF_INET))
        return net_addr_for_family(dst, q->socks[SENDQ_MAIN].af, out) == 0 ? SENDQ_MAIN : -1;
    int idx = af == AF_INET ? SENDQ_ALT4 : SENDQ_ALT6;
    if (q->socks[idx].fd < 0) {
        char why[160];
        int fd = net_bind_beside(q->socks[SENDQ_MAIN].fd, af, SOCK_BUF_BYTES, why, sizeof why);
        if (fd < 0) {
            snprintf(err, errlen, "cannot send to %s addresses: %s",
                     af == AF_INET ? "IPv4" : "IPv6", why);
            return -1;
        }
        q->socks[idx].fd = fd;
        q->socks[idx].af = af;
    }
    *out = *dst;
    return idx;
}

size_t sendq_room(const struct sendq *q)
{
    return q->arena_cap - q->used;
}

/* Seals body as the next datagram: version 2 of type `type` if `as` names a v2 key, else v1. */
static struct sendq_msg *seal(struct sendq *q, int sock, const struct net_addr *to, uint8_t type,
                              const void *body, size_t len, const struct sendq_as *as)
{
    const struct envelope_key *key = as != NULL ? as->key : q->key;
    int v2 = as != NULL && as->v2_id != NULL;
    if (q->n >= q->cap || sendq_room(q) < len + (v2 ? ENVELOPE_V2_OVERHEAD : ENVELOPE_OVERHEAD) ||
        key == NULL || (!v2 && type != ENVELOPE_V2_TYPE_MESSAGE))
        return NULL;
    uint8_t *buf = q->arena + q->used;
    size_t n =
        v2 ? envelope_v2_seal(key, as->v2_id, type, sysio_real_ns(), body, len, buf, sendq_room(q))
           : envelope_seal_marked(key, sysio_real_ns(), body, len, buf, sendq_room(q));
    if (n == 0)
        return NULL;
    q->used += n;
    struct net_dgram *d = &q->out[q->n];
    memset(d, 0, sizeof *d);
    d->buf = buf;
    d->len = n;
    d->addr = *to;
    struct sendq_msg *m = &q->msg[q->n++];
    memset(m, 0, sizeof *m);
    m->sock = (uint8_t)sock;
    m->peer_slot = as != NULL ? as->peer_slot : -1;
    m->peer_gen = as != NULL ? as->peer_gen : 0;
    m->v2 = (uint8_t)v2;
    return m;
}

struct sendq_msg *sendq_seal(struct sendq *q, int sock, const struct net_addr *to, const char *json,
                             size_t len, const struct sendq_as *as)
{
    return seal(q, sock, to, ENVELOPE_V2_TYPE_MESSAGE, json, len, as);
}

struct sendq_msg *sendq_part(struct sendq *q, int sock, const struct net_addr *to,
                             const struct part_header *h, const void *data, size_t len,
                             const struct sendq_as *as)
{
    size_t n = part_write(h, data, len, q->body, ENVELOPE_V2_MAX_BODY);
    if (n == 0 || as == NULL || as->v2_id == NULL)
        return NULL;
    return seal(q, sock, to, ENVELOPE_V2_TYPE_PART, q->body, n, as);
}

struct sendq_msg *sendq_part_ack(struct sendq *q, int sock, const struct net_addr *to,
                                 const uint8_t id[PART_ID_BYTES], uint32_t length,
                                 const struct part_range *r, int n, const struct sendq_as *as)
{
    size_t len = part_ack_write(id, length, r, n, q->body, ENVELOPE_V2_MAX_BODY);
    struct sendq_msg *m = len == 0 || as == NULL || as->v2_id == NULL
                              ? NULL
                              : seal(q, sock, to, ENVELOPE_V2_TYPE_PART_ACK, q->body, len, as);
    if (m != NULL) {
        m->kind = SENDQ_PART_ACK;
        part_id_to_hex(id, m->id);
    }
    return m;
}

struct sendq_msg *sendq_ack(struct sendq *q, int sock, const struct net_addr *to, const char *id,
                            int attempts, const struct sendq_as *as)
{
    char text[MESSAGE_ACK_MAX];
    size_t n = message_ack_text(id, text);
    struct sendq_msg *m = sendq_seal(q, sock, to, text, n, as);
    if (m != NULL) {
        m->kind = SENDQ_ACK;
        m->attempts = attempts;
        memcpy(m->id, id, sizeof m->id);
    }
    return m;
}

void sendq_flush(struct sendq *q)
{
    for (int s = 0; s < SENDQ_SOCKS; s++) {
        int n = 0;
        for (int i = 0; i < q->n; i++)
            if (q->msg[i].sock == s) {
                q->batch[n] = q->out[i];
                q->batch_index[n++] = i;
            }
        if (n == 0)
            continue;
        sysio_send_batch(q->socks[s].fd, q->batch, n);
        for (int k = 0; k < n; k++)
            q->out[q->batch_index[k]].err = q->batch[k].err;
    }
}

void sendq_reset(struct sendq *q)
{
    q->n = 0;
    q->used = 0;
}
