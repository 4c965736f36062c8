/*
 * peertab: slots of peers, and three look-ups rebuilt whole at each apply
 * (key id -> slot, name -> slot, networks -> slots), so that a reload that
 * fails half way leaves everything as it was.
 */
#include "daemon/peertab.h"

#include "util/prefixes.h"
#include "util/secret.h"
#include "util/table.h"
#include "wire/peerkeys.h"
#include "wire/replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct id_ref {
    int slot, which;
};

/* The look-ups, made whole for each apply. */
struct lookups {
    struct table *ids;   /* version 2 receiving key id -> struct id_ref */
    struct table *names; /* name (PEER_NAME_MAX + 1 bytes, zero-padded) -> int slot */
    struct prefixes *v1; /* the wire 1 peers' allowed -> slot */
};

struct peertab {
    struct peer *slot; /* PEERS_MAX */
    int n;             /* peers in force */
    size_t replay_max;
    struct lookups lk;
    struct table *endpoints; /* net_addr_key of an endpoint -> int slot; roaming moves it */
};

/* What apply makes for one peer before anything is changed. */
struct built {
    int slot;
    int kept; /* the slot held this name before */
    struct envelope_key *send, *recv[2];
    uint8_t send_id[PEERTAB_ID_BYTES], recv_id[2][PEERTAB_ID_BYTES];
    uint8_t fingerprint[PEERTAB_ID_BYTES];
};

static void lookups_free(struct lookups *lk);

/* Look-ups for n peers, nets1 networks of wire 1 peers. 0, or -1 (then freed). */
static int lookups_new(struct lookups *lk, int n, size_t nets1)
{
    lk->ids = table_new(2 * (size_t)n, PEERTAB_ID_BYTES, sizeof(struct id_ref));
    lk->names = table_new((size_t)n, PEER_NAME_MAX + 1, sizeof(int));
    lk->v1 = prefixes_new(nets1);
    if (lk->ids != NULL && lk->names != NULL && lk->v1 != NULL)
        return 0;
    lookups_free(lk);
    return -1;
}

static void lookups_free(struct lookups *lk)
{
    table_free(lk->ids);
    table_free(lk->names);
    prefixes_free(lk->v1);
    memset(lk, 0, sizeof *lk);
}

struct peertab *peertab_new(size_t replay_max)
{
    struct peertab *pt = calloc(1, sizeof *pt);
    if (pt == NULL)
        return NULL;
    pt->replay_max = replay_max;
    pt->slot = calloc(PEERS_MAX, sizeof *pt->slot);
    pt->endpoints = table_new(PEERS_MAX, NET_ADDR_KEY_BYTES, sizeof(int));
    if (pt->slot == NULL || pt->endpoints == NULL || lookups_new(&pt->lk, 0, 0) != 0) {
        peertab_free(pt);
        return NULL;
    }
    return pt;
}

static void drop_keys(struct envelope_key **send, struct envelope_key *recv[2])
{
    envelope_key_free(*send);
    envelope_key_free(recv[0]);
    envelope_key_free(recv[1]);
    *send = recv[0] = recv[1] = NULL;
}

void peertab_free(struct peertab *pt)
{
    if (pt == NULL)
        return;
    for (int i = 0; pt->slot != NULL && i < PEERS_MAX; i++) {
        drop_keys(&pt->slot[i].send, pt->slot[i].recv);
        replay_free(pt->slot[i].replay);
    }
    free(pt->slot);
    lookups_free(&pt->lk);
    table_free(pt->endpoints);
    free(pt);
}

static void name_key(char out[PEER_NAME_MAX + 1], const char *name)
{
    memset(out, 0, PEER_NAME_MAX + 1);
    snprintf(out, PEER_NAME_MAX + 1, "%s", name);
}

/* The direction keys and ids of one peer (c), from its pair key. */
static int make_keys(const struct peer_conf *c, const char *me, const uint8_t *master,
                     struct built *b)
{
    uint8_t pair[PEER_KEY_BYTES], k[PEER_KEY_BYTES];
    int rc = -1;
    if (c->key_kind == PEER_KEY_DERIVE) {
        if (master == NULL || peerkeys_pair(master, me, c->name, pair) != 0)
            goto out;
    } else {
        memcpy(pair, c->key, sizeof pair);
    }
    peerkeys_fingerprint(pair, b->fingerprint);
    if (c->wire == 1) {
        b->send = envelope_key_from_bytes(pair);
        b->recv[0] = envelope_key_from_bytes(pair);
        b->recv[1] = c->has_previous ? envelope_key_from_bytes(c->previous) : NULL;
        rc = b->send == NULL || b->recv[0] == NULL || (c->has_previous && b->recv[1] == NULL);
        goto out;
    }
    if (peerkeys_direction(pair, me, c->name, k) != 0 ||
        (b->send = envelope_key_from_bytes(k)) == NULL)
        goto out;
    peerkeys_id(k, b->send_id);
    if (peerkeys_direction(pair, c->name, me, k) != 0 ||
        (b->recv[0] = envelope_key_from_bytes(k)) == NULL)
        goto out;
    peerkeys_id(k, b->recv_id[0]);
    if (c->has_previous && memcmp(c->previous, pair, sizeof pair) != 0) {
        if (peerkeys_direction(c->previous, c->name, me, k) != 0 ||
            (b->recv[1] = envelope_key_from_bytes(k)) == NULL)
            goto out;
        peerkeys_id(k, b->recv_id[1]);
    }
    rc = 0;
out:
    secret_wipe(pair, sizeof pair);
    secret_wipe(k, sizeof k);
    return rc;
}

/* The new look-ups for pc, with b[i].slot already chosen. */
static int build_lookups(const struct peers_conf *pc, const struct built *b,
                         const struct lookups *lk, char *err, size_t errlen)
{
    for (int i = 0; i < pc->n; i++) {
        const struct peer_conf *c = &pc->peer[i];
        char nk[PEER_NAME_MAX + 1];
        name_key(nk, c->name);
        int *slot = table_insert(lk->names, nk);
        if (slot == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *slot = b[i].slot;
        for (int w = 0; c->wire == 2 && w < 2; w++) {
            if (b[i].recv[w] == NULL)
                continue;
            struct id_ref *r = table_insert(lk->ids, b[i].recv_id[w]);
            if (r == NULL) {
                const struct id_ref *o = table_find(lk->ids, b[i].recv_id[w]);
                const char *other = "?";
                for (int j = 0; o != NULL && j < i; j++)
                    if (b[j].slot == o->slot)
                        other = pc->peer[j].name;
                snprintf(err, errlen,
                         "peer %s: a key of it has the same key id as one of peer %s (the same "
                         "key given twice?)",
                         c->name, other);
                return -1;
            }
            r->slot = b[i].slot;
            r->which = w;
        }
        for (int a = 0; a < c->nallowed && c->wire == 1; a++)
            if (prefixes_add(lk->v1, &c->allowed[a], b[i].slot) < 0) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
    }
    return 0;
}

/* Chooses each peer's slot: its old one if its name was there, else a free one. */
static void choose_slots(struct peertab *pt, const struct peers_conf *pc, struct built *b,
                         uint8_t *taken)
{
    for (int i = 0; i < pc->n; i++) {
        char nk[PEER_NAME_MAX + 1];
        name_key(nk, pc->peer[i].name);
        const int *old = table_find(pt->lk.names, nk);
        b[i].slot = -1;
        if (old != NULL && pt->slot[*old].live) {
            b[i].slot = *old;
            b[i].kept = 1;
            taken[*old] = 1;
        }
    }
    int next = 0;
    for (int i = 0; i < pc->n; i++) {
        if (b[i].slot >= 0)
            continue;
        while (taken[next]) /* a removed peer's slot may be reused: its generation changes */
            next++;
        b[i].slot = next;
        taken[next] = 1;
    }
}

/* Empties a slot: keys and replay cache freed, and a new generation, so references see it gone. */
static void slot_clear(struct peer *p)
{
    drop_keys(&p->send, p->recv);
    replay_free(p->replay);
    uint32_t gen = p->gen + 1;
    memset(p, 0, sizeof *p);
    p->gen = gen;
}

/* Takes the configuration of c (and its keys from b) into p, keeping p's state if kept. */
static void install(struct peer *p, const struct peer_conf *c, struct built *b)
{
    int same_endpoint = b->kept && p->has_conf_endpoint == c->has_endpoint &&
                        (!c->has_endpoint || net_addr_same_peer(&p->conf_endpoint, &c->endpoint));
    if (!b->kept) {
        slot_clear(p);
        snprintf(p->name, sizeof p->name, "%s", c->name);
    }
    drop_keys(&p->send, p->recv);
    p->live = 1;
    p->wire = c->wire;
    p->roaming = c->roaming;
    p->has_conf_endpoint = c->has_endpoint;
    p->conf_endpoint = c->endpoint;
    if (!(same_endpoint && p->roaming)) {
        p->has_endpoint = c->has_endpoint;
        p->endpoint = c->endpoint;
    }
    memcpy(p->allowed, c->allowed, sizeof p->allowed);
    p->nallowed = c->nallowed;
    p->previous_until = c->has_previous ? c->previous_until : 0;
    p->send = b->send;
    p->recv[0] = b->recv[0];
    p->recv[1] = b->recv[1];
    memcpy(p->send_id, b->send_id, sizeof p->send_id);
    memcpy(p->recv_id, b->recv_id, sizeof p->recv_id);
    memcpy(p->fingerprint, b->fingerprint, sizeof p->fingerprint);
    b->send = b->recv[0] = b->recv[1] = NULL;
}

static void endpoint_add(struct peertab *pt, struct peer *p)
{
    uint8_t key[NET_ADDR_KEY_BYTES];
    net_addr_key(&p->endpoint, key);
    int *slot = table_insert(pt->endpoints, key);
    if (slot != NULL)
        *slot = peertab_slot(pt, p);
}

/* The endpoints table, made again from the peers in force (the first of two at one endpoint). */
static void index_endpoints(struct peertab *pt)
{
    size_t pos = 0;
    for (void *v; (v = table_next(pt->endpoints, &pos)) != NULL;)
        table_remove(pt->endpoints, v);
    for (int s = 0; s < PEERS_MAX; s++)
        if (pt->slot[s].live && pt->slot[s].has_endpoint)
            endpoint_add(pt, &pt->slot[s]);
}

int peertab_apply(struct peertab *pt, const struct peers_conf *pc, const char *me,
                  const uint8_t *master, char *err, size_t errlen)
{
    size_t nets1 = 0;
    for (int i = 0; i < pc->n; i++)
        nets1 += pc->peer[i].wire == 1 ? (size_t)pc->peer[i].nallowed : 0;
    struct built *b = calloc((size_t)(pc->n > 0 ? pc->n : 1), sizeof *b);
    uint8_t *taken = calloc(PEERS_MAX, 1);
    struct lookups next = {0};
    int rc = -1;
    snprintf(err, errlen, "out of memory");
    if (b == NULL || taken == NULL || lookups_new(&next, pc->n, nets1) != 0)
        goto out;
    for (int i = 0; i < pc->n; i++)
        if (make_keys(&pc->peer[i], me, master, &b[i]) != 0) {
            snprintf(err, errlen, "peer %s: cannot make its keys", pc->peer[i].name);
            goto out;
        }
    choose_slots(pt, pc, b, taken);
    if (build_lookups(pc, b, &next, err, errlen) != 0)
        goto out;
    /* nothing fails from here on */
    for (int s = 0; s < PEERS_MAX; s++) {
        struct peer *p = &pt->slot[s];
        if (p->live && !taken[s])
            slot_clear(p);
    }
    for (int i = 0; i < pc->n; i++)
        install(&pt->slot[b[i].slot], &pc->peer[i], &b[i]);
    pt->n = pc->n;
    struct lookups old = pt->lk;
    pt->lk = next;
    next = old; /* freed below */
    index_endpoints(pt);
    rc = 0;
out:
    for (int i = 0; b != NULL && i < pc->n; i++)
        drop_keys(&b[i].send, b[i].recv);
    free(b);
    free(taken);
    lookups_free(&next);
    if (rc == 0 && errlen > 0)
        err[0] = '\0';
    return rc;
}

int peertab_count(const struct peertab *pt)
{
    return pt->n;
}

int peertab_has_v2(const struct peertab *pt)
{
    return table_count(pt->lk.ids) > 0;
}

struct peer *peertab_at(struct peertab *pt, int slot)
{
    return slot >= 0 && slot < PEERS_MAX && pt->slot[slot].live ? &pt->slot[slot] : NULL;
}

struct peer *peertab_get(struct peertab *pt, int slot, uint32_t gen)
{
    if (slot < 0 || slot >= PEERS_MAX || !pt->slot[slot].live || pt->slot[slot].gen != gen)
        return NULL;
    return &pt->slot[slot];
}

int peertab_slot(const struct peertab *pt, const struct peer *p)
{
    return (int)(p - pt->slot);
}

struct peer *peertab_next(struct peertab *pt, int *pos)
{
    for (; *pos < PEERS_MAX; (*pos)++)
        if (pt->slot[*pos].live)
            return &pt->slot[(*pos)++];
    return NULL;
}

struct peer *peertab_find(struct peertab *pt, const char *name)
{
    char nk[PEER_NAME_MAX + 1];
    if (strlen(name) > PEER_NAME_MAX)
        return NULL;
    name_key(nk, name);
    const int *s = table_find(pt->lk.names, nk);
    return s != NULL ? &pt->slot[*s] : NULL;
}

struct peer *peertab_by_id(struct peertab *pt, const uint8_t id[PEERTAB_ID_BYTES], int64_t now_s,
                           int *which)
{
    const struct id_ref *r = table_find(pt->lk.ids, id);
    if (r == NULL)
        return NULL;
    struct peer *p = &pt->slot[r->slot];
    if (r->which == 1 && now_s >= p->previous_until)
        return NULL;
    *which = r->which;
    return p;
}

int peertab_v1_candidates(struct peertab *pt, const struct net_addr *from, int64_t now_s,
                          const struct envelope_key **keys, struct peer **peers, int max)
{
    int slots[2 * JUDGE_TRIALS_MAX], n = 0;
    int m = prefixes_match(pt->lk.v1, from, slots, (int)(sizeof slots / sizeof slots[0]));
    for (int i = 0; i < m && n < max; i++) {
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= slots[j] == slots[i];
        struct peer *p = &pt->slot[slots[i]];
        if (dup)
            continue;
        for (int w = 0; w < 2 && n < max; w++)
            if (p->recv[w] != NULL && (w == 0 || now_s < p->previous_until)) {
                keys[n] = p->recv[w];
                peers[n++] = p;
            }
    }
    return n;
}

struct peer *peertab_by_endpoint(struct peertab *pt, const struct net_addr *dst)
{
    uint8_t key[NET_ADDR_KEY_BYTES];
    net_addr_key(dst, key);
    const int *slot = table_find(pt->endpoints, key);
    return slot != NULL ? &pt->slot[*slot] : NULL;
}

void peertab_roam(struct peertab *pt, struct peer *p, const struct net_addr *to)
{
    if (p->has_endpoint) {
        uint8_t key[NET_ADDR_KEY_BYTES];
        net_addr_key(&p->endpoint, key);
        int *slot = table_find(pt->endpoints, key);
        if (slot != NULL && *slot == peertab_slot(pt, p))
            table_remove(pt->endpoints, slot);
    }
    p->endpoint = *to;
    p->has_endpoint = 1;
    endpoint_add(pt, p);
}

int peer_allows(const struct peer *p, const struct net_addr *a)
{
    for (int i = 0; i < p->nallowed; i++)
        if (net_prefix_contains(&p->allowed[i], a))
            return 1;
    return 0;
}

size_t peertab_replay_max(const struct peertab *pt)
{
    return pt->replay_max;
}

char *peertab_report(struct peertab *pt)
{
    size_t cap = (size_t)pt->n * (PEER_NAME_MAX + 300 + 40 * JUDGE_VERDICTS) + 1, used = 0;
    char *text = malloc(cap);
    if (text == NULL)
        return NULL;
    text[0] = '\0';
    int pos = 0;
    for (struct peer *p; (p = peertab_next(pt, &pos)) != NULL && used < cap;) {
        char ep[NET_ENDPOINT_MAX] = "-";
        if (p->has_endpoint)
            net_endpoint_format(&p->endpoint, ep);
        used += (size_t)snprintf(
            text + used, cap - used,
            "peer %s endpoint=%s last_seen_ns=%llu stored=%llu "
            "duplicates=%llu acknowledged=%llu rate_limited=%llu",
            p->name, ep, (unsigned long long)p->st.last_seen_ns, (unsigned long long)p->st.stored,
            (unsigned long long)p->st.duplicates, (unsigned long long)p->st.acked,
            (unsigned long long)p->st.rate_limited);
        for (int v = JUDGE_DROP_SHORT; v < JUDGE_VERDICTS && used < cap; v++)
            if (p->st.verdicts[v] != 0)
                used += (size_t)snprintf(text + used, cap - used, " %s=%llu",
                                         judge_name((enum judge_verdict)v),
                                         (unsigned long long)p->st.verdicts[v]);
        if (used < cap)
            used += (size_t)snprintf(text + used, cap - used, "\n");
    }
    return text;
}
