/*
 * promtext: the names, types and help of what COUNTERS_LIST holds, and the
 * format's few rules (escaping, +Inf, a family's lines together).
 */
#include "daemon/promtext.h"

#include <inttypes.h>
#include <string.h>

void promtext_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void labels_out(FILE *f, const char *const *labels)
{
    if (labels == NULL || labels[0] == NULL)
        return;
    fputc('{', f);
    for (int i = 0; labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
        fprintf(f, "%s%s=\"", i > 0 ? "," : "", labels[i]);
        for (const char *v = labels[i + 1]; *v != '\0'; v++) {
            if (*v == '\\' || *v == '"')
                fputc('\\', f);
            if (*v == '\n')
                fputs("\\n", f);
            else
                fputc(*v, f);
        }
        fputc('"', f);
    }
    fputc('}', f);
}

void promtext_sample(FILE *f, const char *name, const char *const *labels, double value)
{
    fputs(name, f);
    labels_out(f, labels);
    fprintf(f, " %.17g\n", value);
}

void promtext_sample_u64(FILE *f, const char *name, const char *const *labels, uint64_t value)
{
    fputs(name, f);
    labels_out(f, labels);
    fprintf(f, " %" PRIu64 "\n", value);
}

void promtext_histo(FILE *f, const char *name, const char *help, const struct histo *h)
{
    char metric[128], le[32];
    promtext_family(f, name, "histogram", help);
    snprintf(metric, sizeof metric, "%s_bucket", name);
    for (int i = 0; i <= h->nbounds; i++) {
        if (i < h->nbounds)
            snprintf(le, sizeof le, "%g", (double)h->bounds_us[i] / 1e6);
        else
            snprintf(le, sizeof le, "+Inf");
        const char *labels[] = {"le", le, NULL};
        promtext_sample_u64(f, metric, labels, histo_cumulative(h, i));
    }
    snprintf(metric, sizeof metric, "%s_sum", name);
    promtext_sample(f, metric, NULL, (double)h->sum_us / 1e6);
    snprintf(metric, sizeof metric, "%s_count", name);
    promtext_sample_u64(f, metric, NULL, h->count);
}

/* COUNTERS_LIST's names outside the drops, as metrics. */
static const struct {
    const char *counter, *metric, *type, *help;
} names[] = {
    {"rx", "securedgram_datagrams_received_total", "counter", "Datagrams received."},
    {"stored", "securedgram_messages_stored_total", "counter",
     "Messages stored in the inbound table."},
    {"duplicates", "securedgram_messages_duplicate_total", "counter",
     "Messages received again after they were stored (re-acknowledged, not stored)."},
    {"acks_sent", "securedgram_acks_sent_total", "counter", "ACKs sent."},
    {"acks_received", "securedgram_acks_received_total", "counter",
     "ACK datagrams received (again for the same message, or for none in flight, too)."},
    {"acknowledged", "securedgram_messages_acknowledged_total", "counter",
     "Outbound messages acknowledged: ACKs that matched a message in flight."},
    {"sent", "securedgram_messages_sent_total", "counter", "Outbound messages sent a first time."},
    {"retransmits", "securedgram_retransmissions_total", "counter",
     "Outbound messages sent again for want of an ACK."},
    {"send_failed", "securedgram_messages_send_failed_total", "counter",
     "Outbound rows that became send_failed."},
    {"in_flight", "securedgram_messages_in_flight", "gauge",
     "Outbound messages sent and awaiting their ACK."},
    {"trial_opens", "securedgram_trial_opens_total", "counter",
     "Keys tried on received version 1 datagrams."},
    {"parts_received", "securedgram_parts_received_total", "counter",
     "Datagrams received that carry a part of a message."},
    {"parts_sent", "securedgram_parts_sent_total", "counter",
     "Datagrams sent that carry a part of a message."},
    {"part_acks_received", "securedgram_part_acks_received_total", "counter",
     "Acknowledgements of parts received."},
    {"part_acks_sent", "securedgram_part_acks_sent_total", "counter",
     "Acknowledgements of parts sent."},
    {"reassembly_bytes", "securedgram_reassembly_bytes", "gauge",
     "Bytes held for messages in parts not yet complete."},
    {"ack_unmatched", "securedgram_acks_unmatched_total", "counter",
     "ACKs for no message in flight."},
    {"ack_wrong_source", "securedgram_acks_wrong_source_total", "counter",
     "ACKs from another address or key than their message went to."},
    {"store_errors", "securedgram_store_errors_total", "counter", "Database errors."},
    {"store_refused", "securedgram_store_refused_total", "counter",
     "Writes the database refused (constraints, triggers)."},
    {"store_timeouts", "securedgram_store_timeouts_total", "counter",
     "Transactions that ran out of time (busy database)."},
    {"replay_cache", "securedgram_replay_cache_nonces", "gauge",
     "Nonces remembered against replays."},
    {"writes", "securedgram_store_writes_total", "counter",
     "Statements that wrote to the database."},
    {"rows", "securedgram_store_rows_written_total", "counter",
     "Rows those statements inserted, updated or deleted."},
};

static int metric_index(const char *counter)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].counter, counter) == 0)
            return (int)i;
    return -1;
}

#define DROPPED "securedgram_datagrams_dropped_total"

int promtext_counters(FILE *f, const struct counters *c, const struct counters_gauges *g)
{
    int unnamed = 0;
    promtext_family(f, DROPPED, "counter",
                    "Datagrams dropped, by reason (after reassembly: messages, or parts).");
    for (int v = JUDGE_DROP_SHORT; v < JUDGE_VERDICTS; v++) {
        const char *labels[] = {"reason", judge_name((enum judge_verdict)v), NULL};
        promtext_sample_u64(f, DROPPED, labels, c->verdicts[v]);
    }
#define PROM_DROP(group, name, value)                                                              \
    if ((group) == COUNTERS_DROP) {                                                                \
        const char *labels[] = {"reason", name, NULL};                                             \
        promtext_sample_u64(f, DROPPED, labels, (uint64_t)(value));                                \
    }
    COUNTERS_LIST(PROM_DROP)
#undef PROM_DROP
#define PROM_OTHER(group, name, value)                                                             \
    if ((group) != COUNTERS_DROP) {                                                                \
        int k = metric_index(name);                                                                \
        if (k < 0) {                                                                               \
            unnamed++;                                                                             \
        } else {                                                                                   \
            promtext_family(f, names[k].metric, names[k].type, names[k].help);                     \
            promtext_sample_u64(f, names[k].metric, NULL, (uint64_t)(value));                      \
        }                                                                                          \
    }
    COUNTERS_LIST(PROM_OTHER)
#undef PROM_OTHER
    promtext_histo(f, "securedgram_insert_to_ack_seconds",
                   "From an outbound row's created_at to its ACK's arrival.", &c->insert_to_ack);
    promtext_histo(f, "securedgram_datagram_to_ack_seconds",
                   "From reading a message's datagram to sending its ACK, the commit included.",
                   &c->datagram_to_ack);
    return unnamed;
}
