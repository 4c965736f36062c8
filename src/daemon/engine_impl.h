/*
 * engine_impl: the engine's state, shared by the files of the engine (the
 * turn, engine.c, and what operators see, ctl.c) and by no one else.
 */
#ifndef SG_ENGINE_IMPL_H
#define SG_ENGINE_IMPL_H

#include "daemon/engine.h"
#include "daemon/journal.h"
#include "daemon/loop.h"
#include "daemon/peertab.h"
#include "daemon/rx.h"
#include "daemon/sendq.h"
#include "daemon/tx.h"

struct ctlsock;

struct engine {
    struct config *cfg;                    /* the caller's; hot values change with engine_set_hot */
    char db_text[STORE_LOCATION_TEXT_MAX]; /* cfg->db as it may be shown (no password) */
    struct envelope_key *key; /* the shared secret's, or NULL: only the peers file's peers */
    struct peertab *peers;
    struct store *st;
    const char *stats_path;
    int watch_told; /* "no inotify" is logged once, not at every reload */
    struct counters c;
    struct journal j;
    struct sendq q;
    struct tx tx;
    struct rx rx;
    struct loop loop;
    int fatal;    /* the database file or its -wal is gone: stop */
    int timeouts; /* transactions in a row that ran out of time */
    int resuming; /* engine_run returned ENGINE_RELOAD: it goes on after the wait */
    int64_t busy_until;
    /* what operators see (daemon/ctl.c) */
    struct ctlsock *ctl;     /* the control socket, or NULL */
    int ctl_nfds;            /* its descriptors in the loop's extra ones (the first) */
    struct httpsrv *http;    /* /metrics, or NULL */
    int http_nfds;           /* its descriptors in the loop's extra ones, after ctl's */
    int wake;                /* a control client asked: check the database now */
    int64_t started_ms;      /* CLOCK_MONOTONIC */
    uint64_t started_ns;     /* CLOCK_REALTIME */
    uint64_t last_commit_ns; /* CLOCK_REALTIME of the last commit, 0: none yet */
    uint64_t rows_told;      /* rows written when subscribers were last told */
    struct {                 /* the queue's rows by state, as last counted (ctl_queue_counts) */
        struct store_state_count *v;
        size_t n;
        int64_t at_ms; /* CLOCK_MONOTONIC of the count; 0: none */
        enum store_rc rc;
    } queue[2]; /* STORE_OUTBOUND, STORE_INBOUND */
};

/* The values read at the moment of rendering, for the counters line, status and /metrics. */
void engine_gauges(const struct engine *e, struct counters_gauges *g);

#endif
