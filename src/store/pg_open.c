/*
 * pg_open: connecting to PostgreSQL, and what is checked then: that the
 * location is a URI libpq reads (never repeated in a message: it may hold a
 * password), that the server answers and takes the login, that the database
 * exists, that its schema is ours (data/schema-pg.sql, embedded at build
 * time, applied when it is missing or older, refused when newer), and the
 * session's settings, set again after every reconnection.
 *
 * The session (one per store, with its own settings and locks: not through a
 * transaction-pooling proxy):
 *   lock_timeout = the busy timeout (STORE_BUSY past it);
 *   statement_timeout = 10 x that, at least 30 s: a safety net for a server
 *     that stops answering (the turn's budget is kept by the client, pg.c);
 *   idle_in_transaction_session_timeout = 60 s: a client stopped inside a
 *     transaction cannot hold the rows' locks, or stop the tables' vacuum, for
 *     longer;
 *   client_connection_check_interval = 1 s (PostgreSQL 14 and later): a
 *     statement whose session the client dropped at its deadline (pg.c) ends
 *     within a second, its locks with it, not when it would have finished;
 *   TimeZone = UTC, client_encoding = UTF8;
 *   application_name = securedgram, connect_timeout = 5 s and TCP keepalives
 *     unless the URI says otherwise (connect_timeout binds the first
 *     connection, made at start, which waits for its answer; a reconnection is
 *     made without blocking, PG_CONNECT_MS at most, pg_reconnect);
 *   a session advisory lock on a random key K, the identity behind
 *     claimed_by (host:pid:K): held exactly as long as the session lives, so
 *     that other daemons can tell a live claimer from a dead one (pg.c).
 */
#define _GNU_SOURCE
#include "store/pg_impl.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/random.h"
#include "store/schema_pg.h" /* generated from data/schema-pg.sql: static const char schema_pg_sql[] */

/* The newest version of data/schema-pg.sql this build knows (its securedgram_schema rows). */
#define PG_SCHEMA_VERSION 1

static void discard_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "already exists, skipping" and the like: nothing for the daemon's stderr */
}

/* "HOST port PORT" of the connection, for messages (a host or a socket directory; no secret). */
static void where(PGconn *c, char *out, size_t len)
{
    const char *h = PQhost(c), *p = PQport(c);
    snprintf(out, len, "%s%s%s", h != NULL && h[0] != '\0' ? h : "localhost",
             p != NULL && p[0] != '\0' ? " port " : "", p != NULL ? p : "");
}

/* libpq's reason, one line: after "FATAL:" (the server's), else after "failed: ". */
static void reason(PGconn *c, char *out, size_t len)
{
    const char *m = PQerrorMessage(c), *at = strstr(m, "FATAL:");
    if (at != NULL)
        at += 6;
    else if ((at = strstr(m, "failed: ")) != NULL)
        at += 8;
    else
        at = m;
    while (*at == ' ')
        at++;
    size_t n = strcspn(at, "\n");
    snprintf(out, len, "%.*s", (int)(n < 300 ? n : 300), n > 0 ? at : "no reason given");
}

/* 1 if a failed connection's message says the database is not there. */
static int no_database(PGconn *c)
{
    const char *m = PQerrorMessage(c);
    return strstr(m, "database \"") != NULL && strstr(m, "does not exist") != NULL;
}

/*
 * Why a connection failed, in our words (libpq gives no SQLSTATE for it: the
 * server's English text is matched, lc_messages C or en as servers have it).
 */
static enum store_rc connect_failure(PGconn *c, char *err, size_t errlen)
{
    char at[200], why[320];
    const char *m = PQerrorMessage(c), *user = PQuser(c), *db = PQdb(c);
    where(c, at, sizeof at);
    reason(c, why, sizeof why);
    if (no_database(c)) {
        snprintf(err, errlen,
                 "database not found: database \"%s\" does not exist on PostgreSQL at %s (create "
                 "it first: createdb -O %s %s)",
                 db != NULL ? db : "?", at, user != NULL ? user : "USER", db != NULL ? db : "DB");
        return STORE_GONE;
    }
    if (PQconnectionNeedsPassword(c) || strstr(m, "authentication failed") != NULL ||
        strstr(m, "no password supplied") != NULL || strstr(m, "no pg_hba.conf entry") != NULL ||
        (strstr(m, "role \"") != NULL && strstr(m, "does not exist") != NULL)) {
        snprintf(err, errlen, "PostgreSQL refused the login for user %s at %s: %s",
                 user != NULL ? user : "?", at, why);
        return STORE_ERR;
    }
    snprintf(err, errlen, "cannot connect to PostgreSQL at %s: %s", at, why);
    return STORE_ERR;
}

/* A fresh random identity for claimed_by: host:pid:K, K the advisory lock's two 31-bit keys. */
static void new_identity(struct pg *b)
{
    char host[65] = "";
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "localhost");
    for (char *c = host; *c != '\0'; c++)
        if (*c == ':' || (unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
            *c = '_'; /* K is found after the last ':' */
    b->key[0] = random_u32() & 0x7fffffffu;
    b->key[1] = random_u32() & 0x7fffffffu;
    snprintf(b->me, sizeof b->me, "%s:%ld:%08x%08x", host, (long)getpid(), b->key[0], b->key[1]);
}

int pg_session_setup(struct pg *b, char *err, size_t errlen)
{
    PQsetNoticeProcessor(b->conn, discard_notice, NULL);
    int stmt_ms = pg_statement_timeout_ms(b);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SET lock_timeout = %d; SET statement_timeout = %d; "
             "SET idle_in_transaction_session_timeout = 60000; SET TimeZone = 'UTC'; "
             "SET client_encoding = 'UTF8'; %sSELECT oid FROM pg_catalog.pg_database WHERE "
             "datname = current_database()",
             b->busy_ms, stmt_ms,
             PQserverVersion(b->conn) >= 140000 ? "SET client_connection_check_interval = 1000; "
                                                : "");
    PGresult *r = NULL;
    if (pg_simple(b, sql, &r) != STORE_OK || PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen, "cannot set up the PostgreSQL session: %s", b->why);
        return -1;
    }
    unsigned oid = (unsigned)pg_int(r, 0, 0);
    PQclear(r);
    if (b->dboid != 0 && oid != b->dboid) {
        b->gone = 1;
        snprintf(err, errlen,
                 "the PostgreSQL database \"%s\" was dropped and made again while open", b->dbname);
        return -1;
    }
    b->dboid = oid;
    /*
     * Our key again after a reconnection, so that our claims stay ours; if
     * the old session still holds it (the server has not yet noticed it
     * gone), a new identity: the old one's rows are taken back once it ends.
     */
    for (int tries = 0;; tries++) {
        if (b->me[0] == '\0' || tries > 0)
            new_identity(b);
        snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%u, %u)", b->key[0], b->key[1]);
        if (pg_simple(b, sql, &r) != STORE_OK || PQntuples(r) != 1) {
            PQclear(r);
            snprintf(err, errlen, "cannot set up the PostgreSQL session: %s", b->why);
            return -1;
        }
        int got = pg_int(r, 0, 0) != 0;
        PQclear(r);
        if (got)
            break;
        if (tries == 4) {
            snprintf(err, errlen, "cannot set up the PostgreSQL session: no free advisory lock");
            return -1;
        }
    }
    if (b->watch.started && pg_watch_listen(b) != 0) {
        snprintf(err, errlen, "cannot LISTEN on the PostgreSQL session: %s", b->why);
        return -1;
    }
    return 0;
}

/* After a connection is made: sends never block (collect waits for the socket). */
static void connected(struct pg *b)
{
    (void)PQsetnonblocking(b->conn, 1);
}

/* An attempt failed: why, and when the next may start (the backoff doubles). */
static int attempt_failed(struct pg *b, const char *why, int64_t now)
{
    b->connecting = 0;
    b->backoff_ms = b->backoff_ms == 0                   ? PG_BACKOFF_FIRST_MS
                    : b->backoff_ms >= PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS
                                                         : 2 * b->backoff_ms;
    b->retry_at = now + b->backoff_ms;
    snprintf(b->reset_why, sizeof b->reset_why, "%.440s", why);
    snprintf(b->why, sizeof b->why, "%s", b->reset_why);
    return -1;
}

/* The connection is made: the session is set up again, as at open. */
static int attempt_done(struct pg *b, int64_t now)
{
    b->connecting = 0;
    connected(b);
    memset(b->prepared, 0, sizeof b->prepared);
    b->begin_prepared = 0;
    b->rules_at = 0;
    char err[400];
    if (pg_session_setup(b, err, sizeof err) != 0) {
        b->broken = 1; /* connected, but not a session to use: the next attempt starts over */
        return attempt_failed(b, err, now);
    }
    b->broken = 0;
    b->backoff_ms = 0;
    b->retry_at = 0;
    b->watch.noted = 1; /* notifications may have been lost meanwhile: look again */
    b->why[0] = '\0';
    return 0;
}

/* PQresetPoll until the connection is made, fails, or wait_until (ms) passes. */
static int advance(struct pg *b, int64_t wait_until)
{
    for (;;) {
        int64_t now = clock_mono_ms();
        if (b->phase == PGRES_POLLING_OK)
            return attempt_done(b, now);
        if (b->phase == PGRES_POLLING_FAILED) {
            char err[400], why[448];
            if (no_database(b->conn))
                b->gone = 1;
            (void)connect_failure(b->conn, err, sizeof err);
            snprintf(why, sizeof why, "lost the connection to PostgreSQL: %.400s", err);
            return attempt_failed(b, why, now);
        }
        if (now - b->connect_started >= PG_CONNECT_MS)
            return attempt_failed(b,
                                  "lost the connection to PostgreSQL: no answer to a new "
                                  "connection within 5 s",
                                  now);
        int64_t until = wait_until < b->connect_started + PG_CONNECT_MS
                            ? wait_until
                            : b->connect_started + PG_CONNECT_MS;
        struct pollfd pfd = {
            .fd = PQsocket(b->conn),
            .events = b->phase == PGRES_POLLING_READING ? POLLIN : POLLOUT,
        };
        int left = until > now ? (int)(until - now) : 0;
        int ready = pfd.fd >= 0 ? poll(&pfd, 1, left) : 1;
        if (ready == 0 && left == 0) {
            snprintf(b->why, sizeof b->why, "%s (connecting to PostgreSQL again)",
                     b->reset_why[0] != '\0' ? b->reset_why : "lost the connection to PostgreSQL");
            return -1;
        }
        if (ready > 0)
            b->phase = PQresetPoll(b->conn);
    }
}

/* Closes the session and starts a new connection; the caller advances it. */
static void attempt_start(struct pg *b, int64_t now)
{
    b->connecting = 1;
    b->connect_started = now;
    b->phase = PQresetStart(b->conn) ? PGRES_POLLING_WRITING : PGRES_POLLING_FAILED;
}

int pg_reconnect(struct pg *b)
{
    int64_t now = clock_mono_ms();
    if (b->connecting)
        return advance(b, 0);
    if (now < b->retry_at) {
        snprintf(b->why, sizeof b->why, "%s (trying again in %lld ms)", b->reset_why,
                 (long long)(b->retry_at - now));
        return -1;
    }
    attempt_start(b, now);
    return advance(b, now + (b->budget_ms > 0 ? PG_RECONNECT_WAIT_MS : PG_CONNECT_MS));
}

void pg_drop(struct pg *b)
{
    snprintf(b->reset_why, sizeof b->reset_why,
             "the PostgreSQL session was dropped: a statement ran past its deadline");
    attempt_start(b, clock_mono_ms());
    (void)advance(b, 0);
}

/* Applies data/schema-pg.sql (its own transaction, under its advisory lock). */
static enum store_rc apply_schema(struct pg *b, char *err, size_t errlen)
{
    enum store_rc rc = pg_simple(b, schema_pg_sql, NULL);
    if (rc == STORE_OK)
        return STORE_OK;
    char why[sizeof b->why];
    memcpy(why, b->why, sizeof why);
    if (pg_live(b) && PQtransactionStatus(b->conn) != PQTRANS_IDLE)
        (void)pg_simple(b, "ROLLBACK", NULL);
    snprintf(err, errlen, "cannot set up the tables in the PostgreSQL database \"%s\": %s",
             b->dbname, why);
    return rc == STORE_BUSY ? STORE_BUSY : STORE_ERR;
}

/*
 * Our tables in the session's current schema (where data/schema-pg.sql makes
 * them), and the schema's version (0: no version table, or no row).
 */
static const char probe_sql[] =
    "SELECT current_schema(), count(*) FILTER (WHERE c.relname = 'outbound_messages'), "
    "count(*) FILTER (WHERE c.relname = 'inbound_messages'), count(*) FILTER (WHERE c.relname = "
    "'peer_sequence'), count(*) FILTER (WHERE c.relname = 'securedgram_schema') FROM "
    "pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
    "n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname IN "
    "('outbound_messages', 'inbound_messages', 'peer_sequence', 'securedgram_schema')";

static enum store_rc check_schema(struct pg *b, char *err, size_t errlen)
{
    PGresult *r = NULL;
    if (pg_simple(b, probe_sql, &r) != STORE_OK || PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen, "cannot read the PostgreSQL database \"%s\": %s", b->dbname, b->why);
        return STORE_ERR;
    }
    char schema[128];
    const char *s = pg_text(r, 0, 0);
    snprintf(schema, sizeof schema, "%s", s != NULL ? s : "");
    int out = pg_int(r, 0, 1) > 0, in = pg_int(r, 0, 2) > 0, seq = pg_int(r, 0, 3) > 0,
        versions = pg_int(r, 0, 4) > 0;
    PQclear(r);
    if (schema[0] == '\0') {
        snprintf(err, errlen,
                 "cannot use the PostgreSQL database \"%s\": no schema of its search_path exists",
                 b->dbname);
        return STORE_ERR;
    }
    if (b->mode != STORE_CREATE && (!out || !in)) {
        snprintf(err, errlen,
                 "PostgreSQL database \"%s\" (schema %s) is not a securedgram database (no table "
                 "%s)",
                 b->dbname, schema, !out ? "outbound_messages" : "inbound_messages");
        return STORE_ERR;
    }
    int64_t version = 0;
    if (versions) {
        if (pg_simple(b, "SELECT coalesce(max(version), 0) FROM securedgram_schema", &r) !=
                STORE_OK ||
            PQntuples(r) != 1) {
            PQclear(r);
            snprintf(err, errlen,
                     "cannot read the schema version of the PostgreSQL database "
                     "\"%s\": %s",
                     b->dbname, b->why);
            return STORE_ERR;
        }
        version = pg_int(r, 0, 0);
        PQclear(r);
    }
    if (version > PG_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "the PostgreSQL database \"%s\" (schema %s) has securedgram's schema version "
                 "%lld, newer than this build knows (%d): use a newer securedgram",
                 b->dbname, schema, (long long)version, PG_SCHEMA_VERSION);
        return STORE_ERR;
    }
    if (version < PG_SCHEMA_VERSION || !out || !in) {
        enum store_rc rc = apply_schema(b, err, errlen);
        if (rc != STORE_OK)
            return rc;
        seq = 1; /* made, or the schema refused the database */
    }
    if (!seq) {
        snprintf(err, errlen,
                 "the PostgreSQL database \"%s\" (schema %s) lacks the table peer_sequence "
                 "(dropped by hand?): restore it from data/schema-pg.sql",
                 b->dbname, schema);
        return STORE_ERR;
    }
    return STORE_OK;
}

enum store_rc pg_open_checks(struct pg *b, const char *location, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(location, &perr);
    PQfreemem(perr); /* it may quote the password: not repeated */
    if (opts == NULL) {
        snprintf(err, errlen,
                 "the PostgreSQL location is not a URI libpq can read (it is not "
                 "repeated here: it may hold a password)");
        return STORE_ERR;
    }
    PQconninfoFree(opts);
    /* Before dbname, the URI's own settings win; after it, ours do. */
    const char *keys[] = {
        "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "dbname",           "client_encoding", NULL};
    const char *values[] = {"5", "securedgram", "30", "10", "3", location, "UTF8", NULL};
    b->conn = PQconnectdbParams(keys, values, 1);
    if (b->conn == NULL) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERR;
    }
    if (PQstatus(b->conn) != CONNECTION_OK)
        return connect_failure(b->conn, err, errlen);
    snprintf(b->dbname, sizeof b->dbname, "%s", PQdb(b->conn) != NULL ? PQdb(b->conn) : "?");
    if (PQserverVersion(b->conn) < 120000) {
        snprintf(err, errlen, "PostgreSQL %d is too old for securedgram: 12 or later is needed",
                 PQserverVersion(b->conn) / 10000);
        return STORE_ERR;
    }
    connected(b);
    if (pg_session_setup(b, err, errlen) != 0)
        return STORE_ERR;
    return check_schema(b, err, errlen);
}
