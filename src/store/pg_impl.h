/*
 * pg_impl: the PostgreSQL backend's own header, shared by pg.c (the
 * connection, the one way statements run), pg_tx.c (transactions), pg_sql.c (the text
 * of every fixed statement), pg_params.c (their parameters, checked),
 * pg_open.c (connecting, the schema, refusing what is not ours), pg_queue.c
 * (the daemon's rows), pg_set.c (several rows in one statement; the claim),
 * pg_admin.c (the tools' queries) and pg_watch.c (noticing other
 * connections' commits). Not for other modules.
 */
#ifndef SG_PG_IMPL_H
#define SG_PG_IMPL_H

#include "store/store_impl.h"

#include "store/pg_lib.h"

/*
 * Every fixed statement of the backend (texts and flags in pg_sql.c),
 * prepared on the session at first use and again after a reconnection.
 */
enum pg_query {
    P_PENDING,
    P_PENDING_LOCK,
    P_PENDING_EX,
    P_PENDING_EX_LOCK,
    P_PAYLOADS,
    P_LOAD_SENT,
    P_GET_SENT,
    P_TAKE,
    P_TAKE_SET,
    P_IDENTITY_WHY,
    P_SENT,
    P_FAILED,
    P_ACKED,
    P_SENT_SET,
    P_FAILED_SET,
    P_ACKED_SET,
    P_CLAIM,
    P_IDENTIFY,
    P_RELEASE,
    P_RECOVER,
    P_EXPIRE,
    P_EXPIRE_PEER,
    P_IN_INSERT,
    P_IN_INSERT_SET,
    P_IN_EXISTS,
    P_IN_ACK_SENT,
    P_IN_ACK_FAILED,
    P_IN_ACK_SENT_SET,
    P_IN_ACK_SENT_ROW,
    P_IN_ACK_SENT_ROW_SET,
    P_IN_ACK_FAILED_SET,
    P_IN_UNACKED,
    P_ENQUEUE,
    P_OUT_STATE,
    P_REQUEUE,
    P_MARK,
    P_UNMARK,
    P_FETCH_IN,
    P_FETCH_OUT,
    P_MAX_IN,
    P_MAX_OUT,
    P_SEQ_LOAD,
    P_SEQ_SAVE,
    P_WATCH,
    P_RENEW,
    P_COUNT
};

/* What a statement writes (PG_W_*: its table), so what a savepoint and a NOTIFY are for. */
enum {
    PG_W_OUT = 1,  /* outbound_messages */
    PG_W_IN = 2,   /* inbound_messages */
    PG_W_SEQ = 4,  /* peer_sequence */
    PG_READ = 8,   /* may be run again after a reconnection (a read, or idempotent) */
    PG_QUIET = 16, /* changes nothing others wait for: not counted, no NOTIFY */
    PG_WRITES = PG_W_OUT | PG_W_IN | PG_W_SEQ
};

/* Parameters of one statement: text (NULL: SQL NULL), or bytes sent as they are. */
#define PG_PARAMS_MAX 12
struct pg_params {
    int n;
    const char *v[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];      /* 0 text, 1 binary (a text's bytes) */
    char num[PG_PARAMS_MAX][32]; /* room for a number, a time, a short text */
    char *owned[PG_PARAMS_MAX];  /* arrays built for this statement, freed with it */
    const char *bad;             /* a value PostgreSQL text cannot hold: why */
};

void pp_int(struct pg_params *p, int64_t v);
void pp_time(struct pg_params *p, int64_t ms); /* store_format_ms's text */
void pp_text(struct pg_params *p, const char *s);
void pp_short(struct pg_params *p, const char *s);             /* copied: at most 31 bytes */
void pp_bytes(struct pg_params *p, const char *s, size_t len); /* NULL s: SQL NULL */
void pp_owned(struct pg_params *p, char *s);                   /* malloc'd text, freed by pp_free */
void pp_free(struct pg_params *p);

/*
 * Array literals ({...}) for bigint[] and text[] parameters, malloc'd (NULL
 * when out of memory). Text elements are quoted; a NULL one is NULL.
 */
char *pg_int_array(const int64_t *v, int n);
char *pg_text_array(const char *const *v, int n);

/* The watch (pg_watch.c): LISTEN on the connection, and a fallback check of the ids. */
struct pg_watch {
    int started;
    int channels; /* PG_W_OUT, PG_W_IN: the channels listened to */
    int noted;    /* a notification of another session came */
    int64_t fallback_us;
    int64_t next_check;      /* us, the caller's clock */
    int64_t max_out, max_in; /* the largest ids at the last check */
    int64_t own_out, own_in; /* the largest ids this connection inserted since */
    int64_t clock_offset;    /* the caller's clock minus CLOCK_MONOTONIC (us) */
    int64_t next_renew;      /* us, the caller's clock: the leases are renewed then */
};

/* The sets the claim leaves out (store_outbound_exclude, _exclude_peers, _skip). */
struct pg_set {
    int n, cap;
    char **text;  /* destinations' addresses, or peers' names (copies) */
    int64_t *num; /* destinations' ports, or skipped rows' ids */
    char *lit[2]; /* the array literals, made when first needed after a change */
};

struct pg {
    struct store base;
    PGconn *conn;
    enum store_open_mode mode;
    int busy_ms;
    char why[512];         /* why the last call failed */
    char me[128];          /* claimed_by: host:pid:16 hex digits (the advisory lock's key) */
    unsigned key[2];       /* the session advisory lock held while connected */
    char dbname[128];      /* for messages */
    unsigned dboid;        /* the database opened; another after a reconnection: GONE */
    int gone;              /* the database was dropped or replaced: every call is GONE */
    int broken;            /* connected again, but the session could not be set up */
    int prepared[P_COUNT]; /* prepared on this session */
    /* A reconnection (pg_open.c): started, advanced without blocking, backed off on failure. */
    int connecting;                  /* PQresetStart done, PQresetPoll not yet at OK */
    PostgresPollingStatusType phase; /* PQresetPoll's last answer: what to wait for */
    int64_t connect_started;         /* CLOCK_MONOTONIC ms */
    int64_t retry_at;                /* CLOCK_MONOTONIC ms: no new attempt before */
    int backoff_ms;                  /* the wait after the next failure */
    char reset_why[448];             /* why the last attempt failed */
    int budget_ms;
    int64_t deadline; /* CLOCK_MONOTONIC ms: the open transaction's budget ends; 0 none */
    int timed_out;
    int cancelled;         /* the statement running was given up at the deadline */
    int in_tx;             /* store_begin succeeded; no commit or rollback since */
    int aborted;           /* and the transaction has ended by itself since */
    int rules;             /* PG_W_* tables with rules of their own (savepoints needed) */
    int begin_prepared;    /* sg_begin is prepared on this session */
    char rules_fp[256];    /* the tables' fingerprint when rules was found */
    int64_t rules_at;      /* CLOCK_MONOTONIC ms of that full check; 0: check at once */
    int wrote;             /* PG_W_* tables the open transaction changed rows of */
    uint64_t writes, rows; /* store_write_stats */
    int notify_due_mask;   /* channels owed a NOTIFY (debounced) */
    int64_t notify_at;     /* CLOCK_MONOTONIC us of the last NOTIFY */
    struct pg_set blocked, blocked_peer, skipped;
    struct pg_watch watch;
};

static inline struct pg *pg_of(struct store *st)
{
    return (struct pg *)st;
}

static inline const struct pg *pg_const(const struct store *st)
{
    return (const struct pg *)st;
}

/*
 * A time text as ms since the epoch, NULL unless it is a date-time as
 * SQLite's julianday() reads one: YYYY-MM-DD, then optionally T or a space,
 * HH:MM, :SS, a fraction and a Z (another zone is not read). Never an error,
 * whatever the text (a cast of a bad text to timestamp would raise one and
 * end the transaction): the text is matched first and its fields added up;
 * a day past the month's end counts on, as julianday() does.
 */
/* Laid out by field by hand: clang-format cannot split this string well. */
/* clang-format off */
#define PG_MS_NORM(c) "replace(rtrim(" c ", 'Z'), ' ', 'T')"
#define PG_MS(c)                                                                                   \
    "(CASE WHEN " c " ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"                       \
        "([T ]([01][0-9]|2[0-4]):[0-5][0-9](:[0-5][0-9](\\.[0-9]+)?)?)?Z?$' "                     \
    "AND left(" c ", 4) <> '0000' THEN "                                                           \
    "(make_date(left(" c ", 4)::int, substr(" c ", 6, 2)::int, 1) "                                \
        "+ (substr(" c ", 9, 2)::int - 1) - date '1970-01-01')::bigint * 86400000 "                \
    "+ coalesce(nullif(substr(" PG_MS_NORM(c) ", 12, 2), '')::bigint * 3600000, 0) "               \
    "+ coalesce(nullif(substr(" PG_MS_NORM(c) ", 15, 2), '')::bigint * 60000, 0) "                 \
    "+ coalesce(nullif(substr(" PG_MS_NORM(c) ", 18, 2), '')::bigint * 1000, 0) "                  \
    "+ coalesce(nullif(rpad(substr(" PG_MS_NORM(c) ", 21, 3), 3, '0'), '000')::bigint, 0) END)"
/* clang-format on */

/* How long a row claimed by this connection is its own without another write (seconds). */
#define PG_LEASE_S 300
/* The watch renews this connection's leases this often, those ending within PG_RENEW_S (s). */
#define PG_RENEW_EVERY_S 60
#define PG_RENEW_S 150

/* statement_timeout: 10 x the busy timeout, at least 30 s (a safety net; pg_open.c). */
static inline int pg_statement_timeout_ms(const struct pg *b)
{
    return b->busy_ms > 3000 ? 10 * b->busy_ms : 30000;
}

/* ---- pg_sql.c ---- */

/* The text and PG_* flags of a fixed statement; store_begin's statements. */
const char *pg_sql(enum pg_query q);
int pg_sql_flags(enum pg_query q);
extern const char pg_begin_prepare_sql[];
extern const char pg_begin_sql[]; /* ends "EXECUTE sg_begin(": the arguments and ")" follow */

/* ---- pg_params.c: pp_* above, and reading results ---- */

/* A column as an integer (0 if NULL; a boolean as 0 or 1), as text (NULL if NULL). */
int64_t pg_int(const PGresult *r, int row, int col);
const char *pg_text(const PGresult *r, int row, int col);

/* Rows a write statement changed (its command tag), 0 if none. */
int64_t pg_changed(const PGresult *r);

/* ---- pg.c ---- */

/*
 * Runs the fixed statement q with p (freed here). Returns its result
 * (PGRES_TUPLES_OK or PGRES_COMMAND_OK; the caller PQclears it), or NULL with
 * *rc set (never STORE_OK) and the reason kept for store_errmsg.
 */
PGresult *pg_run(struct pg *b, enum pg_query q, struct pg_params *p, enum store_rc *rc);

/* The same for a statement built at run time (the tools' queries), flags as PG_*. */
PGresult *pg_run_sql(struct pg *b, const char *sql, int flags, struct pg_params *p,
                     enum store_rc *rc);

/* pg_run for a statement whose result is only its row count: *changed (if not NULL). */
enum store_rc pg_run_count(struct pg *b, enum pg_query q, struct pg_params *p, int *changed);

/* Runs a simple query (no parameters; several statements), for the backend's own plumbing. */
enum store_rc pg_simple(struct pg *b, const char *sql, PGresult **last);

/* Records a failure of the backend's own (not the server's): the reason, and rc. */
enum store_rc pg_fail(struct pg *b, enum store_rc rc, const char *why);

/* 1 if the session is there to use: connected, and set up. */
int pg_live(const struct pg *b);

/* 1 while the transaction of store_begin is open (neither ended nor aborted). */
int pg_tx_open(const struct pg *b);

/*
 * Connects again after a lost connection, without blocking for long
 * (pg_open.c): starts an attempt when none runs and the backoff allows it,
 * and advances the one running. A call that starts an attempt waits for it
 * up to PG_RECONNECT_WAIT_MS when a budget is set (the daemon), up to
 * PG_CONNECT_MS without one (a tool); an attempt already running is only
 * advanced, so a server that does not answer costs the loop no waits but
 * the first. 0 once the session is set up again, or -1 (reason kept).
 */
int pg_reconnect(struct pg *b);

/*
 * Drops the session now (a statement that outlived its deadline, where a
 * cancel request could itself hang): its socket is closed, so the server
 * rolls back what it ran, and a reconnection is started.
 */
void pg_drop(struct pg *b);

/* How long a connection attempt may take, and how long a daemon's call waits for one (ms). */
#define PG_CONNECT_MS 5000
#define PG_RECONNECT_WAIT_MS 200
/* The backoff between failed attempts: doubled from the first to the last (ms). */
#define PG_BACKOFF_FIRST_MS 200
#define PG_BACKOFF_MAX_MS 3200

/* Sends the NOTIFYs owed if they are due (debounced), outside a transaction only. */
void pg_notify_flush(struct pg *b, int force);

/* The first line of libpq's message for the connection (a lost one's why). */
void pg_conn_message(const struct pg *b, char *out, size_t len);

/* ---- pg_tx.c: the methods of transactions and of the budget ---- */

void pg_set_budget(struct store *st, int budget_ms);
int pg_timed_out(const struct store *st);
void pg_write_stats(const struct store *st, uint64_t *statements, uint64_t *rows);
int64_t pg_journal_bytes(const struct store *st);
enum store_rc pg_begin(struct store *st);
void pg_rollback(struct store *st);
enum store_rc pg_commit(struct store *st);
int pg_tx_aborted(const struct store *st);

/* ---- pg_open.c ---- */

/*
 * Sets up a new (or reset) session: its settings, its advisory lock, and, if
 * the watch runs, its LISTEN. 0, or -1 with err written.
 */
int pg_session_setup(struct pg *b, char *err, size_t errlen);

/*
 * Connects b to location and checks (or, if need be, applies) the schema:
 * STORE_OK, or the refusal with err written, never naming the location.
 */
enum store_rc pg_open_checks(struct pg *b, const char *location, char *err, size_t errlen);

/* ---- pg_queue.c ---- */

/*
 * Reads the columns every outbound row query starts with (id, message_id,
 * dst_addr, dst_port as text, retry_count, checked port, peer, sequence,
 * created_ms) of row i into *r; the rest zeroed. Strings point into res.
 */
void pg_outbound_columns(const PGresult *res, int i, struct store_outbound_row *r);

enum store_rc pg_recover_sending(struct store *st, int64_t now_ms, int *moved);
enum store_rc pg_outbound_pending(struct store *st, int limit, struct store_rows *out);
enum store_rc pg_outbound_exclude(struct store *st, const struct store_dest *dests, int n);
enum store_rc pg_outbound_exclude_peers(struct store *st, const char *const *peers, int n);
enum store_rc pg_outbound_skip(struct store *st, const int64_t *rowids, int n);
enum store_rc pg_outbound_expire(struct store *st, const struct store_dest *dest,
                                 int64_t older_than_ms, const char *why, int64_t now_ms,
                                 int *changed);
enum store_rc pg_outbound_expire_peer(struct store *st, const char *peer, int64_t older_than_ms,
                                      const char *why, int64_t now_ms, int *changed);
enum store_rc pg_outbound_payloads(struct store *st, size_t max, struct store_rows *out);
enum store_rc pg_outbound_load_sent(struct store *st, int64_t after, int limit, int64_t now_ms,
                                    struct store_rows *out);
enum store_rc pg_outbound_get_sent(struct store *st, int64_t rowid, size_t max,
                                   struct store_rows *out);
enum store_rc pg_outbound_take(struct store *st, int64_t rowid, const char *message_id,
                               const char *payload, size_t payload_len, int64_t sequence,
                               int64_t now_ms);
enum store_rc pg_inbound_unacked(struct store *st, int64_t after, int limit,
                                 struct store_rows *out);
enum store_rc pg_sequence_load(struct store *st, const char *after, struct store_sequence *out,
                               int cap, int *n);
enum store_rc pg_sequence_save(struct store *st, const char *peer, int64_t last);

/* The array literal of a set for the claim's parameters (made once per change), or NULL. */
const char *pg_set_literal(struct pg *b, struct pg_set *s, int which);

/* Adds the pending query's exclusion parameters ($2 .. $5) to p. */
void pg_exclusion_params(struct pg *b, struct pg_params *p);

/*
 * Writes message_id and the payload (NULL: the row's) of one row, the claim
 * (P_TAKE) or a claimed row's identity (P_IDENTIFY). STORE_DUP if another row
 * has the message_id, STORE_REFUSED if the row did not change.
 */
enum store_rc pg_write_identity(struct pg *b, enum pg_query q, int64_t rowid,
                                const char *message_id, const char *payload, size_t payload_len,
                                int64_t sequence, int64_t now_ms, const char *nothing);

/* ---- pg_set.c ---- */

enum store_rc pg_outbound_sent(struct store *st, const struct store_sent *v, int n, int64_t now_ms,
                               int *done);
enum store_rc pg_outbound_failed(struct store *st, const struct store_sent *v, int n,
                                 int64_t now_ms, int *done);
enum store_rc pg_outbound_acked(struct store *st, const int64_t *rowids, int n, int64_t now_ms,
                                int *matched, int *done);
enum store_rc pg_inbound_insert(struct store *st, const struct store_inbound *m, int n,
                                int64_t now_ms, enum store_in_result *res, int64_t *rowids,
                                int *done);
enum store_rc pg_inbound_ack_sent(struct store *st, const char *const *ids, int n, int64_t now_ms,
                                  int *done);
enum store_rc pg_inbound_ack_sent_rows(struct store *st, const int64_t *rowids, int n,
                                       int64_t now_ms, int *done);
enum store_rc pg_inbound_ack_failed(struct store *st, const char *const *ids, int n, int64_t now_ms,
                                    int *done);
enum store_rc pg_outbound_claim(struct store *st, int limit, int64_t now_ms,
                                struct store_rows *out);
enum store_rc pg_outbound_identify(struct store *st, int64_t rowid, const char *message_id,
                                   const char *payload, size_t payload_len, int64_t now_ms);
enum store_rc pg_outbound_release(struct store *st, const int64_t *rowids, int n, int64_t now_ms);
enum store_rc pg_outbound_take_set(struct store *st, const struct store_take *v, int n,
                                   int64_t now_ms, int *failed);

/* ---- pg_admin.c ---- */

enum store_rc pg_max_id(struct store *st, enum store_table table, int64_t *max);
enum store_rc pg_outbound_requeue(struct store *st, int64_t rowid, const char *peer, int64_t now_ms,
                                  int *changed);
enum store_rc pg_enqueue(struct store *st, const char *message_id, const char *dst_addr,
                         unsigned dst_port, const char *peer, const char *payload,
                         size_t payload_len, int64_t now_ms, int64_t *rowid);
enum store_rc pg_outbound_state(struct store *st, int64_t rowid, int *found,
                                char state[STORE_STATE_MAX], char *why, size_t whylen);
enum store_rc pg_select(struct store *st, const struct store_query *q, int64_t now_ms,
                        struct store_selected **out, size_t *n);
enum store_rc pg_fetch(struct store *st, enum store_table table, const struct store_selected *c,
                       struct store_record *rec, int *found);
enum store_rc pg_unmark(struct store *st, const struct store_selected *c, size_t n, int64_t now_ms);
enum store_rc pg_purge_count(struct store *st, const struct store_purge *p,
                             struct store_state_count **out, size_t *n);
enum store_rc pg_count_states(struct store *st, enum store_table table,
                              struct store_state_count **out, size_t *n);
enum store_rc pg_purge_unreadable(struct store *st, const struct store_purge *p, int64_t *n);
enum store_rc pg_purge(struct store *st, const struct store_purge *p, size_t n, int64_t *deleted);
enum store_rc pg_vacuum(struct store *st);

/* ---- pg_watch.c ---- */

enum store_rc pg_watch_start(struct store *st, int fallback_ms, int64_t now_us);
int pg_watch_fd(struct store *st);
int64_t pg_poll_due_us(const struct store *st);
enum store_rc pg_poll(struct store *st, int readable, int64_t now_us, int *changed);

/* The LISTEN statements for the watch's channels (after a reconnection too); 0 or -1. */
int pg_watch_listen(struct pg *b);

/* Takes the notifications libpq has read: another session's mark the watch. */
void pg_watch_drain(struct pg *b);

/* The channels' names. */
#define PG_CHANNEL_OUT "securedgram_outbound"
#define PG_CHANNEL_IN "securedgram_inbound"

#endif
