/*
 * prefixes: one hash table keyed by (family, length, masked address), and
 * per family the list of lengths in use, longest first.
 */
#include "util/prefixes.h"

#include "util/table.h"

#include <stdlib.h>
#include <string.h>

struct net_key {
    uint8_t family; /* 4 or 6 */
    uint8_t bits;
    uint8_t bytes[16];
};

struct net_values {
    int n;
    int v[PREFIXES_PER_NET];
};

struct prefixes {
    struct table *nets;
    uint8_t lens[2][129]; /* per family (0: IPv4, 1: IPv6), the lengths in use, longest first */
    int nlens[2];
};

struct prefixes *prefixes_new(size_t cap)
{
    struct prefixes *px = calloc(1, sizeof *px);
    if (px == NULL)
        return NULL;
    px->nets = table_new(cap, sizeof(struct net_key), sizeof(struct net_values));
    if (px->nets == NULL) {
        free(px);
        return NULL;
    }
    return px;
}

void prefixes_free(struct prefixes *px)
{
    if (px == NULL)
        return;
    table_free(px->nets);
    free(px);
}

/* The key of the first bits bits of bytes (the rest zero). */
static void make_key(struct net_key *k, int v6, const uint8_t *bytes, unsigned bits)
{
    memset(k, 0, sizeof *k);
    k->family = v6 ? 6 : 4;
    k->bits = (uint8_t)bits;
    memcpy(k->bytes, bytes, bits / 8);
    if (bits % 8 != 0)
        k->bytes[bits / 8] = (uint8_t)(bytes[bits / 8] & (0xff00u >> (bits % 8)));
}

static void note_length(struct prefixes *px, int f, unsigned bits)
{
    int i = 0;
    while (i < px->nlens[f] && px->lens[f][i] > bits)
        i++;
    if (i < px->nlens[f] && px->lens[f][i] == bits)
        return;
    memmove(&px->lens[f][i + 1], &px->lens[f][i], (size_t)(px->nlens[f] - i));
    px->lens[f][i] = (uint8_t)bits;
    px->nlens[f]++;
}

int prefixes_add(struct prefixes *px, const struct net_prefix *p, int value)
{
    int v6 = p->family == AF_INET6;
    struct net_key k;
    make_key(&k, v6, p->bytes, p->bits);
    struct net_values *nv = table_find(px->nets, &k);
    if (nv == NULL) {
        nv = table_insert(px->nets, &k);
        if (nv == NULL)
            return -1;
        note_length(px, v6, p->bits);
    }
    if (nv->n >= PREFIXES_PER_NET)
        return 1;
    nv->v[nv->n++] = value;
    return 0;
}

int prefixes_match(const struct prefixes *px, const struct net_addr *a, int *out, int max)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *bytes;
    int v6 = 0;
    if (a->u.sa.sa_family == AF_INET) {
        bytes = (const uint8_t *)&a->u.v4.sin_addr;
    } else if (a->u.sa.sa_family == AF_INET6) {
        bytes = a->u.v6.sin6_addr.s6_addr;
        v6 = memcmp(bytes, mapped, sizeof mapped) != 0;
        if (!v6)
            bytes += 12;
    } else {
        return 0;
    }
    int n = 0;
    for (int i = 0; i < px->nlens[v6] && n < max; i++) {
        struct net_key k;
        make_key(&k, v6, bytes, px->lens[v6][i]);
        const struct net_values *nv = table_find(px->nets, &k);
        for (int j = 0; nv != NULL && j < nv->n && n < max; j++)
            out[n++] = nv->v[j];
    }
    return n;
}
