/*
 * ctl_metrics: what /metrics serves and `securedgram metrics` prints, from
 * the engine's own state, in the Prometheus text format (daemon/promtext.c
 * knows the format and the counters' names; this file the rest: queue,
 * peers, store, control socket, the process).
 */
#include "daemon/ctl.h"

#include "daemon/ctlsock.h"
#include "daemon/httpsrv.h"
#include "daemon/engine_impl.h"
#include "daemon/promtext.h"
#include "daemon/sysio.h"
#include "util/version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The states a table's rows may be in as the daemon and the tools write them: always shown. */
static const char *const outbound_states[] = {"pending",      "sending",     "sent",
                                              "acknowledged", "send_failed", NULL};
static const char *const inbound_states[] = {"received", "ack_sent", "ack_failed", NULL};

static int listed(const char *const *states, const char *s)
{
    for (int i = 0; states[i] != NULL; i++)
        if (strcmp(states[i], s) == 0)
            return 1;
    return 0;
}

/* securedgram_queue_rows{table,state}: the known states (0 if none), then any other found. */
static void queue_metrics(FILE *f, struct engine *e)
{
    static const char name[] = "securedgram_queue_rows";
    promtext_family(f, name, "gauge",
                    "Rows of each table by state (counted at most once a second).");
    const struct {
        enum store_table t;
        const char *table;
        const char *const *known;
    } tables[] = {{STORE_OUTBOUND, "outbound", outbound_states},
                  {STORE_INBOUND, "inbound", inbound_states}};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        const struct store_state_count *v = NULL;
        size_t n = 0;
        if (ctl_queue_counts(e, tables[i].t, &v, &n) != STORE_OK)
            continue; /* busy: no sample rather than a false 0 */
        for (int k = 0; tables[i].known[k] != NULL; k++) {
            int64_t rows = 0;
            for (size_t j = 0; j < n; j++)
                if (strcmp(v[j].state, tables[i].known[k]) == 0)
                    rows = v[j].n;
            const char *labels[] = {"table", tables[i].table, "state", tables[i].known[k], NULL};
            promtext_sample_u64(f, name, labels, (uint64_t)rows);
        }
        for (size_t j = 0; j < n; j++) {
            if (listed(tables[i].known, v[j].state))
                continue;
            const char *labels[] = {"table", tables[i].table, "state", v[j].state, NULL};
            promtext_sample_u64(f, name, labels, (uint64_t)v[j].n);
        }
    }
}

/* One family of a per-peer value: name{peer} for every peer of the peers file. */
#define PEER_FAMILY(f, e, metric, help, expr)                                                      \
    do {                                                                                           \
        promtext_family(f, metric, "counter", help);                                               \
        int pos_ = 0;                                                                              \
        for (struct peer * p; (p = peertab_next((e)->peers, &pos_)) != NULL;) {                    \
            const char *labels[] = {"peer", p->name, NULL};                                        \
            promtext_sample_u64(f, metric, labels, (uint64_t)(expr));                              \
        }                                                                                          \
    } while (0)

static void peer_metrics(FILE *f, struct engine *e)
{
    promtext_family(f, "securedgram_peers", "gauge", "Peers in force (the peers file).");
    promtext_sample_u64(f, "securedgram_peers", NULL, (uint64_t)peertab_count(e->peers));
    if (peertab_count(e->peers) == 0)
        return;
    static const char info[] = "securedgram_peer_info";
    promtext_family(f, info, "gauge",
                    "Each peer of the peers file (always 1), and its wire version.");
    int at = 0;
    for (struct peer *p; (p = peertab_next(e->peers, &at)) != NULL;) {
        char wire[8];
        snprintf(wire, sizeof wire, "%d", p->wire);
        const char *labels[] = {"peer", p->name, "wire", wire, NULL};
        promtext_sample_u64(f, info, labels, 1);
    }
    static const char seen[] = "securedgram_peer_last_seen_timestamp_seconds";
    promtext_family(f, seen, "gauge",
                    "When the peer's last authenticated datagram came (never seen: no sample).");
    int pos = 0;
    for (struct peer *p; (p = peertab_next(e->peers, &pos)) != NULL;) {
        if (p->st.last_seen_ns == 0)
            continue;
        const char *labels[] = {"peer", p->name, NULL};
        promtext_sample(f, seen, labels, (double)p->st.last_seen_ns / 1e9);
    }
    PEER_FAMILY(f, e, "securedgram_peer_messages_received_total",
                "Messages received from the peer.", p->st.verdicts[JUDGE_MESSAGE]);
    PEER_FAMILY(f, e, "securedgram_peer_messages_stored_total", "Messages from the peer stored.",
                p->st.stored);
    PEER_FAMILY(f, e, "securedgram_peer_messages_duplicate_total",
                "Messages from the peer received again after they were stored.", p->st.duplicates);
    PEER_FAMILY(f, e, "securedgram_peer_acks_received_total",
                "ACKs from the peer for messages sent to it.", p->st.acked);
    static const char dropped[] = "securedgram_peer_datagrams_dropped_total";
    promtext_family(f, dropped, "counter",
                    "Datagrams the peer's key opened that were dropped, by reason "
                    "(rate_limited: messages over its rate limit, always shown).");
    pos = 0;
    for (struct peer *p; (p = peertab_next(e->peers, &pos)) != NULL;) {
        const char *limited[] = {"peer", p->name, "reason", "rate_limited", NULL};
        promtext_sample_u64(f, dropped, limited, p->st.rate_limited);
        for (int v = JUDGE_DROP_SHORT; v < JUDGE_VERDICTS; v++) {
            if (p->st.verdicts[v] == 0)
                continue; /* most reasons cannot follow an open: only those seen */
            const char *labels[] = {"peer", p->name, "reason", judge_name((enum judge_verdict)v),
                                    NULL};
            promtext_sample_u64(f, dropped, labels, p->st.verdicts[v]);
        }
    }
}

static void store_metrics(FILE *f, const struct engine *e)
{
    if (e->last_commit_ns != 0) {
        promtext_family(f, "securedgram_store_last_commit_timestamp_seconds", "gauge",
                        "When the daemon last committed a transaction.");
        promtext_sample(f, "securedgram_store_last_commit_timestamp_seconds", NULL,
                        (double)e->last_commit_ns / 1e9);
    }
    int64_t journal = store_journal_bytes(e->st);
    if (journal >= 0) {
        promtext_family(f, "securedgram_store_journal_bytes", "gauge",
                        "Size of the database's write-ahead log.");
        promtext_sample_u64(f, "securedgram_store_journal_bytes", NULL, (uint64_t)journal);
    }
}

static void process_metrics(FILE *f, const struct engine *e)
{
    promtext_family(f, "securedgram_build_info", "gauge", "The running version (always 1).");
    const char *labels[] = {"version", SG_VERSION, NULL};
    promtext_sample_u64(f, "securedgram_build_info", labels, 1);
    promtext_family(f, "securedgram_start_time_seconds", "gauge", "When the daemon started.");
    promtext_sample(f, "securedgram_start_time_seconds", NULL, (double)e->started_ns / 1e9);
    if (e->ctl != NULL) {
        struct ctlsock_stats s;
        ctlsock_get_stats(e->ctl, &s);
        promtext_family(f, "securedgram_control_clients", "gauge",
                        "Clients connected to the control socket.");
        promtext_sample_u64(f, "securedgram_control_clients", NULL,
                            (uint64_t)ctlsock_clients(e->ctl));
        promtext_family(f, "securedgram_control_requests_total", "counter",
                        "Requests the control socket answered.");
        promtext_sample_u64(f, "securedgram_control_requests_total", NULL, s.requests);
    }
    if (e->http != NULL) {
        struct httpsrv_stats s;
        httpsrv_get_stats(e->http, &s);
        promtext_family(f, "securedgram_metrics_scrapes_total", "counter",
                        "Responses /metrics served before this one.");
        promtext_sample_u64(f, "securedgram_metrics_scrapes_total", NULL, s.served);
    }
}

char *ctl_metrics_text(struct engine *e, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (f == NULL)
        return NULL;
    struct counters_gauges g;
    engine_gauges(e, &g);
    process_metrics(f, e);
    (void)promtext_counters(f, &e->c, &g);
    queue_metrics(f, e);
    peer_metrics(f, e);
    store_metrics(f, e);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    *len = n;
    return text;
}
