#include "daemon/xfer.h"

#include <stdlib.h>
#include <string.h>

#define ACKED 1u
#define LOST 2u

/* One part: 16 bytes. sendings saturates; it only ever matters whether it is 0, 1 or more. */
struct part_state {
    int64_t last_ms; /* its last sending */
    uint32_t serial; /* the number of its last sending among the message's */
    uint16_t sendings;
    uint8_t flags; /* ACKED, LOST */
};

_Static_assert(sizeof(struct part_state) <= 16, "16 bytes of state per part");

/*
 * The cursors make the common paths cheap: acknowledged parts below
 * low_unacked are never visited again, nor sent parts below next_new, nor
 * unsent ones from hi_sent on. oldest_ms is kept exact at the end of every
 * public call (stale only inside one), so xfer_deadline is O(1).
 */
struct xfer {
    uint64_t sequence;
    uint8_t id[PART_ID_BYTES];
    uint32_t length, count;
    uint16_t part_size;
    uint32_t n_acked, n_lost, n_flight;
    uint32_t low_unacked;  /* every part below it is acknowledged */
    uint32_t next_new;     /* every part below it has been sent or acknowledged */
    uint32_t low_lost;     /* no part below it is lost */
    uint32_t hi_sent;      /* no part from it on has been sent */
    uint32_t next_serial;  /* the number of the next sending */
    uint32_t acked_serial; /* the latest sending number acknowledged (if have_acked) */
    int have_acked;
    int oldest_stale;  /* oldest_ms may be too early: a part sent then left flight */
    int64_t oldest_ms; /* the earliest last sending of a part in flight; INT64_MAX if none */
    uint64_t sendings, retransmissions;
    uint8_t *bytes; /* the message, after part[] in the same allocation */
    struct part_state part[];
};

static int in_flight(const struct part_state *p)
{
    return p->sendings > 0 && (p->flags & (ACKED | LOST)) == 0;
}

/*
 * How many sendings later than a the sending b was, or -1 if b was not
 * later. Sending numbers wrap (RFC 1982 style): right while the sendings
 * compared are under 2^31 apart, which a part in flight always is (the
 * timer declares it lost long before).
 */
static int64_t serial_gap(uint32_t a, uint32_t b)
{
    uint32_t d = b - a;
    return d != 0 && d < 0x80000000u ? (int64_t)d : -1;
}

static int64_t add_sat(int64_t t, int64_t d)
{
    if (d < 0)
        d = 0;
    return t > INT64_MAX - d ? INT64_MAX : t + d;
}

struct xfer *xfer_new(const void *msg, uint32_t length, uint16_t part_size, uint64_t sequence,
                      const uint8_t id[PART_ID_BYTES])
{
    if (msg == NULL || id == NULL || length == 0 || length > PART_MAX_MESSAGE || part_size == 0)
        return NULL;
    /* part_count()'s rule, computed here so that this module stands without parts.c. */
    uint64_t count = ((uint64_t)length + part_size - 1) / part_size;
    if (count > XFER_MAX_PARTS || (count > 1 && part_size < PART_MIN_SIZE))
        return NULL;
    size_t head = sizeof(struct xfer) + (size_t)count * sizeof(struct part_state);
    struct xfer *x = malloc(head + length);
    if (x == NULL)
        return NULL;
    memset(x, 0, head);
    x->sequence = sequence;
    memcpy(x->id, id, PART_ID_BYTES);
    x->length = length;
    x->count = (uint32_t)count;
    x->part_size = part_size;
    x->low_lost = x->count;
    x->oldest_ms = INT64_MAX;
    x->bytes = (uint8_t *)x + head;
    memcpy(x->bytes, msg, length);
    return x;
}

void xfer_free(struct xfer *x)
{
    free(x);
}

uint32_t xfer_count(const struct xfer *x)
{
    return x->count;
}

uint32_t xfer_length(const struct xfer *x)
{
    return x->length;
}

int xfer_part(const struct xfer *x, uint32_t index, struct part_header *h, const uint8_t **data,
              size_t *data_len)
{
    if (index >= x->count)
        return -1;
    size_t off = (size_t)index * x->part_size;
    h->sequence = x->sequence;
    memcpy(h->id, x->id, PART_ID_BYTES);
    h->length = x->length;
    h->part_size = x->part_size;
    h->index = index;
    *data = x->bytes + off;
    *data_len = index + 1 == x->count ? x->length - off : x->part_size;
    return 0;
}

int64_t xfer_next(struct xfer *x)
{
    if (x->n_lost > 0) {
        /* n_lost > 0 means one is at or above low_lost, so this stops below count. */
        while ((x->part[x->low_lost].flags & LOST) == 0)
            x->low_lost++;
        return x->low_lost;
    }
    /* Skips parts sent, and parts acknowledged unsent (held by the receiver from an earlier run).
     */
    while (x->next_new < x->count &&
           (x->part[x->next_new].sendings > 0 || (x->part[x->next_new].flags & ACKED) != 0))
        x->next_new++;
    return x->next_new < x->count ? (int64_t)x->next_new : -1;
}

/* The earliest sending in flight, found again after the earliest one left. O(count). */
static void refresh_oldest(struct xfer *x)
{
    x->oldest_ms = INT64_MAX;
    x->oldest_stale = 0;
    if (x->n_flight == 0)
        return;
    for (uint32_t i = x->low_unacked; i < x->hi_sent; i++) {
        const struct part_state *p = &x->part[i];
        if (in_flight(p) && p->last_ms < x->oldest_ms)
            x->oldest_ms = p->last_ms;
    }
}

/* Part p (in flight) leaves flight: acknowledged, lost, or about to be sent again. */
static void leave_flight(struct xfer *x, const struct part_state *p)
{
    x->n_flight--;
    if (p->last_ms <= x->oldest_ms)
        x->oldest_stale = 1;
}

static void mark_lost(struct xfer *x, uint32_t i)
{
    struct part_state *p = &x->part[i];
    leave_flight(x, p);
    p->flags |= LOST;
    x->n_lost++;
    if (i < x->low_lost)
        x->low_lost = i;
}

void xfer_sent(struct xfer *x, uint32_t index, int64_t now_ms)
{
    if (index >= x->count)
        return;
    struct part_state *p = &x->part[index];
    x->sendings++;
    if (p->sendings > 0)
        x->retransmissions++;
    if ((p->flags & ACKED) != 0) {
        if (p->sendings < UINT16_MAX)
            p->sendings++;
        return;
    }
    if ((p->flags & LOST) != 0) {
        p->flags &= (uint8_t)~LOST;
        x->n_lost--;
    } else if (p->sendings > 0) {
        leave_flight(x, p); /* sent again while in flight: the caller's choice */
    }
    if (p->sendings < UINT16_MAX)
        p->sendings++;
    p->last_ms = now_ms;
    p->serial = x->next_serial++;
    x->n_flight++;
    if (index >= x->hi_sent)
        x->hi_sent = index + 1;
    if (x->oldest_stale)
        refresh_oldest(x);
    else if (now_ms < x->oldest_ms)
        x->oldest_ms = now_ms;
}

/*
 * Acknowledges the parts of lo..hi not acknowledged yet. Tracks, among
 * them, the latest sending number (*top) and the part sent latest of those
 * sent once (*karn, -1 if none).
 */
static uint32_t ack_range(struct xfer *x, uint32_t lo, uint32_t hi, int *have_top, uint32_t *top,
                          int64_t *karn)
{
    uint32_t newly = 0;
    for (uint32_t i = lo; i <= hi; i++) {
        struct part_state *p = &x->part[i];
        if ((p->flags & ACKED) != 0)
            continue;
        if ((p->flags & LOST) != 0) {
            p->flags &= (uint8_t)~LOST;
            x->n_lost--;
        } else if (p->sendings > 0) {
            leave_flight(x, p);
        }
        p->flags |= ACKED;
        x->n_acked++;
        newly++;
        if (p->sendings == 0)
            continue; /* held by the receiver before this xfer sent it: no timing */
        if (!*have_top || serial_gap(*top, p->serial) > 0) {
            *top = p->serial;
            *have_top = 1;
        }
        if (p->sendings == 1 && (*karn < 0 || serial_gap(x->part[*karn].serial, p->serial) > 0))
            *karn = i;
    }
    return newly;
}

/* Declares lost the parts in flight sent XFER_LOSS_THRESHOLD or more sendings before acked_serial.
 */
static uint32_t detect_losses(struct xfer *x)
{
    uint32_t lost = 0;
    for (uint32_t i = x->low_unacked; i < x->hi_sent && x->n_flight > 0; i++) {
        const struct part_state *p = &x->part[i];
        if (in_flight(p) && serial_gap(p->serial, x->acked_serial) >= XFER_LOSS_THRESHOLD) {
            mark_lost(x, i);
            lost++;
        }
    }
    return lost;
}

uint32_t xfer_on_ack(struct xfer *x, const struct part_range *r, int n, int64_t now_ms,
                     int64_t *rtt_ms, uint32_t *newly_lost)
{
    uint32_t newly = 0, top = 0;
    int have_top = 0;
    int64_t karn = -1;
    for (int k = 0; r != NULL && k < n; k++) {
        if (r[k].first > r[k].last || r[k].first >= x->count)
            continue;
        uint32_t lo = r[k].first > x->low_unacked ? r[k].first : x->low_unacked;
        uint32_t hi = r[k].last < x->count ? r[k].last : x->count - 1;
        if (lo <= hi)
            newly += ack_range(x, lo, hi, &have_top, &top, &karn);
    }
    while (x->low_unacked < x->count && (x->part[x->low_unacked].flags & ACKED) != 0)
        x->low_unacked++;
    *rtt_ms = -1;
    if (karn >= 0) {
        int64_t sent = x->part[karn].last_ms;
        *rtt_ms = now_ms > sent ? now_ms - sent : 0;
    }
    *newly_lost = 0;
    /* Only a later sending acknowledged can condemn more parts: the rest were judged before. */
    if (have_top && (!x->have_acked || serial_gap(x->acked_serial, top) > 0)) {
        x->acked_serial = top;
        x->have_acked = 1;
        *newly_lost = detect_losses(x);
    }
    if (x->oldest_stale)
        refresh_oldest(x);
    return newly;
}

uint32_t xfer_timeout(struct xfer *x, int64_t now_ms, int64_t rto_ms)
{
    if (x->n_flight == 0 || add_sat(x->oldest_ms, rto_ms) > now_ms)
        return 0;
    uint32_t lost = 0;
    for (uint32_t i = x->low_unacked; i < x->hi_sent; i++) {
        const struct part_state *p = &x->part[i];
        if (in_flight(p) && add_sat(p->last_ms, rto_ms) <= now_ms) {
            mark_lost(x, i);
            lost++;
        }
    }
    refresh_oldest(x);
    return lost;
}

int64_t xfer_deadline(const struct xfer *x, int64_t rto_ms)
{
    return x->n_flight == 0 ? INT64_MAX : add_sat(x->oldest_ms, rto_ms);
}

uint32_t xfer_in_flight(const struct xfer *x)
{
    return x->n_flight;
}

uint32_t xfer_lost(const struct xfer *x)
{
    return x->n_lost;
}

uint32_t xfer_acked(const struct xfer *x)
{
    return x->n_acked;
}

int xfer_complete(const struct xfer *x)
{
    return x->n_acked == x->count;
}

uint64_t xfer_sendings(const struct xfer *x)
{
    return x->sendings;
}

uint64_t xfer_retransmissions(const struct xfer *x)
{
    return x->retransmissions;
}

void xfer_restart(struct xfer *x)
{
    for (uint32_t i = 0; i < x->count; i++) {
        struct part_state *p = &x->part[i];
        p->flags = p->sendings > 0 ? LOST : 0; /* sent: again; never sent: still to come */
    }
    x->n_acked = 0;
    x->n_flight = 0;
    x->n_lost = 0;
    for (uint32_t i = 0; i < x->count; i++)
        x->n_lost += (x->part[i].flags & LOST) != 0;
    x->low_unacked = x->low_lost = x->next_new = 0;
    x->have_acked = 0;
    x->oldest_stale = 0;
    x->oldest_ms = INT64_MAX;
}
