/*
 * ctl: the control socket's requests (daemon/ctl.h), answered from the
 * engine's own state. Replies are built with jansson; what the socket does
 * with bytes is daemon/ctlsock.c's.
 */
#include "daemon/ctl.h"

#include "daemon/ctlsock.h"
#include "daemon/httpsrv.h"
#include "daemon/engine_impl.h"
#include "daemon/sysio.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/version.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG_SUBSCRIBED 1u

/* ns since the epoch as UTC text with milliseconds ("2026-12-02T13:45:00.123Z"), or null if 0. */
static json_t *utc(uint64_t ns)
{
    char t[CLOCK_UTC_TEXT_MAX];
    if (ns == 0 || clock_format_utc(t, sizeof t, (int64_t)(ns / 1000000000u),
                                    (long)(ns % 1000000000u), 3) != 0)
        return json_null();
    return json_sprintf("%sZ", t);
}

/* The settings, as a user would check them; never a secret, a key or a key file's contents. */
static json_t *config_summary(const struct engine *e)
{
    const struct config *c = e->cfg;
    json_t *o = json_pack(
        "{s:s, s:i, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:i, s:i, s:i, s:s, s:i, s:i, "
        "s:i, s:i, s:I, s:i, s:i, s:b, s:i}",
        "address", c->address, "port", (int)c->port, "db", e->db_text, "user", c->user, "log",
        c->log, "log_format", c->log_json ? "json" : "text", "control", c->control, "metrics",
        c->metrics, "peers_file", c->peers_file, "window_seconds", (int)c->window, "max_retries",
        (int)c->max_retries, "retry_interval_seconds", (int)c->retry_interval,
        "give_up_after_seconds", (int)c->give_up_after, "retry_policy",
        config_retry_policy_name(c->retry_policy), "retry_min_ms", (int)c->retry_min_ms,
        "retry_max_ms", (int)c->retry_max_ms, "max_message", (int)c->max_message, "mtu",
        (int)c->mtu, "reassembly_memory", (json_int_t)c->reassembly_memory, "rate_limit",
        (int)c->rate_limit, "rate_burst", (int)c->rate_burst, "shared_secret", e->key != NULL,
        "peers", peertab_count(e->peers));
    if (o != NULL && c->name != NULL)
        json_object_set_new(o, "name", json_string(c->name));
    return o;
}

/* Into o, each drop by verdict, by its reason's name: {"short": N, "auth": N, ...}. */
static void verdicts_json(json_t *o, const uint64_t verdicts[JUDGE_VERDICTS])
{
    for (int v = JUDGE_DROP_SHORT; v < JUDGE_VERDICTS; v++)
        json_object_set_new(o, judge_name((enum judge_verdict)v),
                            json_integer((json_int_t)verdicts[v]));
}

/* Every counter: {"rx": N, ...} and {"short": N, ...} of the drops, in COUNTERS_LIST's names. */
static void counters_json(const struct engine *e, json_t *counters, json_t *dropped)
{
    const struct counters *c = &e->c;
    struct counters_gauges gauges, *g = &gauges;
    engine_gauges(e, g);
    verdicts_json(dropped, c->verdicts);
#define COUNTER_JSON(group, name, value)                                                           \
    json_object_set_new((group) == COUNTERS_DROP ? dropped : counters, name,                       \
                        json_integer((json_int_t)(value)));
    COUNTERS_LIST(COUNTER_JSON)
#undef COUNTER_JSON
}

enum store_rc ctl_queue_counts(struct engine *e, enum store_table table,
                               const struct store_state_count **v, size_t *n)
{
    int i = table == STORE_INBOUND;
    int64_t now = sysio_mono_ms();
    if (e->queue[i].at_ms == 0 || now - e->queue[i].at_ms >= CTL_QUEUE_CACHE_MS) {
        struct store_state_count *nv = NULL;
        size_t nn = 0;
        e->queue[i].rc = store_count_states(e->st, table, &nv, &nn);
        if (e->queue[i].rc == STORE_OK) {
            free(e->queue[i].v);
            e->queue[i].v = nv;
            e->queue[i].n = nn;
        }
        e->queue[i].at_ms = now > 0 ? now : 1;
    }
    *v = e->queue[i].v;
    *n = e->queue[i].n;
    return e->queue[i].rc;
}

void ctl_free(struct engine *e)
{
    for (int i = 0; i < 2; i++) {
        free(e->queue[i].v);
        e->queue[i].v = NULL;
    }
}

/* {"outbound": {"pending": N, ...}, "inbound": {...}}: the rows of each table by state. */
static json_t *queue_json(struct engine *e)
{
    json_t *q = json_object();
    const struct {
        enum store_table t;
        const char *name;
    } tables[] = {{STORE_OUTBOUND, "outbound"}, {STORE_INBOUND, "inbound"}};
    for (size_t i = 0; q != NULL && i < sizeof tables / sizeof tables[0]; i++) {
        const struct store_state_count *v = NULL;
        size_t n = 0;
        if (ctl_queue_counts(e, tables[i].t, &v, &n) != STORE_OK) {
            json_object_set_new(q, tables[i].name, json_null()); /* busy: shown as unknown */
            continue;
        }
        json_t *t = json_object();
        for (size_t k = 0; k < n; k++)
            json_object_set_new(t, v[k].state, json_integer((json_int_t)v[k].n));
        json_object_set_new(q, tables[i].name, t);
    }
    return q;
}

static json_t *peers_json(struct engine *e)
{
    json_t *list = json_array();
    int pos = 0;
    for (struct peer *p; list != NULL && (p = peertab_next(e->peers, &pos)) != NULL;) {
        char ep[NET_ENDPOINT_MAX];
        json_t *endpoint = json_null();
        if (p->has_endpoint) {
            net_endpoint_format(&p->endpoint, ep);
            endpoint = json_string(ep);
        }
        json_t *dropped = json_object();
        if (dropped != NULL)
            verdicts_json(dropped, p->st.verdicts);
        json_array_append_new(
            list,
            json_pack("{s:s, s:i, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:o}", "name", p->name, "wire",
                      p->wire, "endpoint", endpoint, "last_seen", utc(p->st.last_seen_ns), "stored",
                      (json_int_t)p->st.stored, "duplicates", (json_int_t)p->st.duplicates,
                      "acknowledged", (json_int_t)p->st.acked, "rate_limited",
                      (json_int_t)p->st.rate_limited, "messages_received",
                      (json_int_t)p->st.verdicts[JUDGE_MESSAGE], "dropped", dropped));
    }
    return list;
}

static json_t *store_json(const struct engine *e)
{
    uint64_t writes, rows;
    store_write_stats(e->st, &writes, &rows);
    int64_t journal = store_journal_bytes(e->st);
    return json_pack("{s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I}", "db", e->db_text, "last_commit",
                     utc(e->last_commit_ns), "journal_bytes",
                     journal >= 0 ? json_integer(journal) : json_null(), "writes",
                     (json_int_t)writes, "rows_written", (json_int_t)rows, "errors",
                     (json_int_t)e->c.store_errors, "timeouts", (json_int_t)e->c.store_timeouts,
                     "refused", (json_int_t)e->c.store_refused);
}

/* The control socket's own: clients now, subscribers among them, and what was dropped. */
static json_t *control_json(const struct engine *e)
{
    struct ctlsock_stats s;
    ctlsock_get_stats(e->ctl, &s);
    int subscribers = 0;
    for (int i = 0; i < CTLSOCK_CLIENTS_MAX; i++)
        subscribers += (ctlsock_tag(e->ctl, i) & TAG_SUBSCRIBED) != 0;
    return json_pack("{s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "clients", ctlsock_clients(e->ctl),
                     "subscribers", subscribers, "accepted", (json_int_t)s.accepted, "refused",
                     (json_int_t)s.refused, "dropped_long", (json_int_t)s.dropped_long,
                     "dropped_idle", (json_int_t)s.dropped_idle, "dropped_slow",
                     (json_int_t)s.dropped_slow, "requests", (json_int_t)s.requests);
}

static json_t *status_json(struct engine *e)
{
    json_t *counters = json_object(), *dropped = json_object();
    if (counters != NULL && dropped != NULL)
        counters_json(e, counters, dropped);
    int64_t up_ms = sysio_mono_ms() - e->started_ms;
    return json_pack("{s:s, s:I, s:o, s:f, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o}", "version",
                     SG_VERSION, "pid", (json_int_t)getpid(), "started", utc(e->started_ns),
                     "uptime_seconds", (double)up_ms / 1000.0, "config", config_summary(e),
                     "counters", counters, "dropped", dropped, "in_flight",
                     (json_int_t)retx_count(e->tx.inflight), "queue", queue_json(e), "peers",
                     peers_json(e), "store", store_json(e), "control", control_json(e));
}

/* Sends o (taken) as one line; close: then closes the connection. */
static void reply(struct ctlsock *cs, int client, json_t *o, unsigned flags)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}\n";
        (void)ctlsock_reply(cs, client, oom, sizeof oom - 1, flags);
        return;
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps's NUL becomes the line's end */
    (void)ctlsock_reply(cs, client, text, n + 1, flags);
    free(text);
}

static void refuse(struct ctlsock *cs, int client, const char *why)
{
    reply(cs, client, json_pack("{s:b, s:s}", "ok", 0, "error", why), CTLSOCK_CLOSE);
}

static void request(void *ctx, struct ctlsock *cs, int client, const char *line, size_t len)
{
    struct engine *e = ctx;
    json_error_t jerr;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *op = json_is_object(req) ? json_string_value(json_object_get(req, "op")) : NULL;
    if (op == NULL) {
        refuse(cs, client,
               "a request is one JSON object with an \"op\" (status, report, "
               "metrics, subscribe or wake)");
    } else if (strcmp(op, "status") == 0) {
        json_t *st = status_json(e);
        reply(cs, client, st != NULL ? json_pack("{s:b, s:o}", "ok", 1, "status", st) : NULL, 0);
    } else if (strcmp(op, "report") == 0) {
        char counters[COUNTERS_LINE_MAX];
        struct counters_gauges g;
        engine_gauges(e, &g);
        counters_format(&e->c, &g, counters, sizeof counters);
        char *peers = peertab_report(e->peers);
        reply(cs, client,
              peers != NULL
                  ? json_pack("{s:b, s:s, s:s}", "ok", 1, "counters", counters, "peers", peers)
                  : NULL,
              0);
        free(peers);
    } else if (strcmp(op, "subscribe") == 0) {
        ctlsock_set_tag(cs, client, ctlsock_tag(cs, client) | TAG_SUBSCRIBED);
        reply(cs, client, json_pack("{s:b, s:s}", "ok", 1, "db", e->db_text), 0);
    } else if (strcmp(op, "metrics") == 0) {
        size_t n = 0;
        char *text = ctl_metrics_text(e, &n);
        reply(cs, client, text != NULL ? json_pack("{s:b, s:s%}", "ok", 1, "text", text, n) : NULL,
              0);
        free(text);
    } else if (strcmp(op, "wake") == 0) {
        e->wake = 1;
        reply(cs, client, json_pack("{s:b}", "ok", 1), 0);
    } else {
        refuse(cs, client, "unknown op (status, report, metrics, subscribe or wake)");
    }
    json_decref(req);
}

/* /metrics' body, for httpsrv. */
static char *metrics_body(void *ctx, size_t *len)
{
    return ctl_metrics_text(ctx, len);
}

void ctl_service(struct engine *e)
{
    int64_t now = sysio_mono_ms();
    if (e->ctl != NULL)
        ctlsock_service(e->ctl, &e->loop.pfd[LOOP_SLOTS], e->ctl_nfds, now, request, e);
    if (e->http != NULL)
        httpsrv_service(e->http, &e->loop.pfd[LOOP_SLOTS + e->ctl_nfds], e->http_nfds, now,
                        metrics_body, e);
}

void ctl_tell(struct engine *e)
{
    uint64_t writes, rows;
    store_write_stats(e->st, &writes, &rows);
    if (rows == e->rows_told)
        return;
    e->rows_told = rows;
    /* when it committed (CLOCK_REALTIME ns): make bench times commit -> wake with it */
    char changed[80];
    int n = snprintf(changed, sizeof changed, "{\"event\":\"changed\",\"committed_ns\":%llu}\n",
                     (unsigned long long)e->last_commit_ns);
    ctlsock_broadcast(e->ctl, TAG_SUBSCRIBED, changed, (size_t)n);
}
